// JSON from outside as bytes: every decoder refuses bytes that are not UTF-8 instead of reading U+FFFD into a field.
import { describe, expect, it } from 'vitest';
import { decodeAlertMessage } from '../../shared/alerts/alert.js';
import { InvalidInputError } from '../../shared/errors.js';
import { parseGcrEventData } from '../../shared/events/gcr-event.js';
import { jsonOf } from '../../shared/events/pubsub-message.js';
import { notificationKind } from '../../shared/findings/container-analysis.js';
import { parseJsonBytes, utf8OrNull } from '../../shared/json-bytes.js';
import { parseBody } from '../../shared/runtime/body-gate.js';
import { deniedAlert } from './alerts/samples.js';

/** `json` with one byte that is never UTF-8 (0xff) put inside its first string value after `after`. */
function withBadByte(json: string, after: string): Buffer {
  const at = json.indexOf(after);
  if (at < 0) throw new Error(`${after} not in ${json}`);
  const cut = at + after.length;
  return Buffer.concat([
    Buffer.from(json.slice(0, cut)),
    Buffer.from([0xff]),
    Buffer.from(json.slice(cut)),
  ]);
}

const D = `sha256:${'a'.repeat(64)}`;

describe('parseJsonBytes', () => {
  it('parses UTF-8 JSON, a leading byte-order mark included', () => {
    expect(parseJsonBytes(Buffer.from('{"a":"é"}'), 'x')).toEqual({ a: 'é' });
    expect(parseJsonBytes(Buffer.from('\uFEFF{"a":1}'), 'x')).toEqual({ a: 1 });
  });

  it('refuses bytes that are not UTF-8, empty data and non-JSON, naming what it read', () => {
    const bad = withBadByte('{"a":"b"}', '"a":"');
    expect(() => parseJsonBytes(bad, 'the body')).toThrow(/the body is not valid UTF-8/);
    expect(() => parseJsonBytes(Buffer.from('  '), 'the body')).toThrow(/the body is empty/);
    expect(() => parseJsonBytes(Buffer.from('{"secret'), 'the body')).toThrow(
      /^the body is not JSON$/,
    );
  });

  it('utf8OrNull keeps the exact text (byte-order mark included) or says the bytes are not UTF-8', () => {
    expect(utf8OrNull(Buffer.from('\uFEFFx'))).toBe('\uFEFFx');
    expect(utf8OrNull(Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]))).toBeNull();
  });
});

describe('every inbound JSON decoder is strict', () => {
  it('an alert whose label is not UTF-8 is refused, not sent with U+FFFD', () => {
    const json = JSON.stringify(deniedAlert({ labels: { team: 'payments' } }));
    const bad = withBadByte(json, '"team":"');
    expect(() => decodeAlertMessage(bad)).toThrow(InvalidInputError);
    expect(() => decodeAlertMessage(bad.toString('base64'))).toThrow(/not valid UTF-8/);
    expect(decodeAlertMessage(Buffer.from(json)).labels.team).toBe('payments');
  });

  it('a gcr message, an occurrence notification and Pub/Sub data', () => {
    const gcr = JSON.stringify({
      action: 'INSERT',
      digest: `gcr.io/p/a@${D}`,
      tag: 'gcr.io/p/a:v1',
    });
    expect(() => parseGcrEventData(withBadByte(gcr, '"tag":"gcr.io/p/a:v'))).toThrow(
      /not valid UTF-8/,
    );
    const note = JSON.stringify({
      name: 'projects/p/occurrences/abc',
      kind: 'DISCOVERY',
      notificationTime: '2020-11-06T15:03:50.531082Z',
    });
    expect(() => notificationKind(withBadByte(note, 'occurrences/ab'))).toThrow(/not valid UTF-8/);
    expect(() => jsonOf({ data: withBadByte(note, '"kind":"') })).toThrow(/not valid UTF-8/);
  });

  it('an HTTP JSON body', () => {
    const headers = { 'content-type': 'application/json' };
    expect(() => parseBody(headers, withBadByte('{"image":"x"}', '"image":"'))).toThrow(
      /not valid UTF-8/,
    );
    expect(parseBody(headers, Buffer.from('{"image":"é"}'))).toEqual({ image: 'é' });
  });
});
