import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../shared/errors.js';
import {
  decodePubSubEvent,
  jsonOf,
  PUBSUB_EVENT_TYPE,
} from '../../../shared/events/pubsub-message.js';
import { fixture } from '../real-world-fixtures.js';

const now = new Date('2026-11-29T10:00:00Z');
const event = (data: unknown) => ({ id: 'e1', type: PUBSUB_EVENT_TYPE, data });

describe('decodePubSubEvent', () => {
  it('decodes the data, attributes, id and publish time of a real push envelope', () => {
    const envelope = fixture<{ message: Record<string, unknown>; subscription: string }>(
      'pubsub/pubsub-push-envelope-attributes.json',
    );
    const msg = decodePubSubEvent(event(envelope), 1024 * 1024, now);
    expect(msg.messageId).toBe(String(envelope.message.messageId ?? envelope.message.message_id));
    expect(msg.attributes).toEqual(envelope.message.attributes ?? {});
    expect(msg.data.toString('base64')).toBe(envelope.message.data ?? '');
  });

  it('accepts the envelope that carries both spellings of the id fields', () => {
    const envelope = fixture<{ message: Record<string, unknown> }>(
      'pubsub/pubsub-push-envelope-duplicated-fields.json',
    );
    const msg = decodePubSubEvent(event(envelope), 1024 * 1024, now);
    expect(msg.messageId).toBeTruthy();
    expect(msg.publishTime).toMatch(/^\d{4}-/);
  });

  it('decodes a message without data, which functions-framework passes on as the bare envelope', () => {
    // What the framework hands the handler for {"message":{"attributes":…,"messageId":…}}: it
    // converts an envelope into a CloudEvent only when the message has data.
    const bare = {
      message: {
        attributes: { action: 'flush' },
        messageId: 'm-attrs-only',
        publishTime: '2026-11-29T09:59:00Z',
      },
      subscription: 'projects/p/subscriptions/alerts-push',
    };
    const msg = decodePubSubEvent(bare as never, 1024, now);
    expect(msg).toMatchObject({
      messageId: 'm-attrs-only',
      publishTime: '2026-11-29T09:59:00Z',
      attributes: { action: 'flush' },
      subscription: 'projects/p/subscriptions/alerts-push',
    });
    expect(msg.data.length).toBe(0);
  });

  it.each([
    ['an empty event (no CloudEvent headers)', {}],
    ['another event type', { id: 'x', type: 'google.cloud.storage.object.v1.finalized', data: {} }],
    ['data that is no envelope', event({ hello: 1 })],
    ['data that is not base64', event({ message: { data: '%%%' } })],
    ['oversized data', event({ message: { data: Buffer.alloc(2048).toString('base64') } })],
  ])('refuses %s as invalid input', (_name, e) => {
    expect(() => decodePubSubEvent(e as never, 1024, now)).toThrow(InvalidInputError);
  });

  it('jsonOf refuses empty and non-JSON data', () => {
    expect(() => jsonOf({ data: Buffer.from('') })).toThrow(/empty/);
    expect(() => jsonOf({ data: Buffer.from('{nope') })).toThrow(/not JSON/);
    expect(jsonOf({ data: Buffer.from('{"a":1}') })).toEqual({ a: 1 });
  });

  it('jsonOf refuses JSON whose bytes are not UTF-8 instead of reading U+FFFD into a field', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"kind":"VULNERABILITY","note":"a'),
      Buffer.from([0xff]),
      Buffer.from('"}'),
    ]);
    expect(() => jsonOf({ data: bytes })).toThrow(/not valid UTF-8/);
    expect(jsonOf({ data: Buffer.from('{"a":"é"}') })).toEqual({ a: 'é' });
  });
});
