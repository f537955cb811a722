import { describe, expect, it } from 'vitest';
import { TransientError } from '../../../shared/errors.js';
import {
  createLogger,
  redact,
  registerSecret,
  traceFields,
} from '../../../shared/logging/logger.js';

describe('logger', () => {
  it('writes one Cloud Logging JSON line per entry with severity and message', () => {
    const lines: string[] = [];
    const log = createLogger({ sink: (l) => lines.push(l), fields: { function: 'f' } });
    log.info('hello', { n: 1 });
    log.child({ requestId: 'r' }).error('boom', { err: new Error('bad') });
    const [a, b] = lines.map((l) => JSON.parse(l));
    expect(a).toEqual({ severity: 'INFO', message: 'hello', function: 'f', n: 1 });
    expect(b).toMatchObject({
      severity: 'ERROR',
      message: 'boom',
      function: 'f',
      requestId: 'r',
      err: { name: 'Error', message: 'bad' },
    });
  });

  it('drops entries below the minimum severity', () => {
    const lines: string[] = [];
    const log = createLogger({ sink: (l) => lines.push(l), minSeverity: 'WARNING' });
    log.debug('d');
    log.info('i');
    log.warn('w');
    expect(lines.map((l) => JSON.parse(l).severity)).toEqual(['WARNING']);
  });

  it('never writes a chat webhook URL, a bearer token or a registered secret', () => {
    registerSecret('s3cr3t-registered-value');
    const lines: string[] = [];
    const log = createLogger({ sink: (l) => lines.push(l) });
    log.warn('delivery failed https://hooks.slack.com/services/T000/B000/XXXX', {
      url: 'https://chat.googleapis.com/v1/spaces/AAA/messages?key=k1&token=t1',
      header: 'Bearer abcdefghijklmnop',
      other: 'value s3cr3t-registered-value here',
    });
    const out = lines.join('\n');
    for (const leak of [
      'hooks.slack.com/services/T000',
      'spaces/AAA',
      'token=t1',
      'abcdefghijklmnop',
      's3cr3t-registered-value',
    ]) {
      expect(out).not.toContain(leak);
    }
    expect(redact('plain text')).toBe('plain text');
  });

  it('leaves prose about bearer credentials readable while redacting real tokens', () => {
    expect(redact('missing bearer credentials')).toBe('missing bearer credentials');
    expect(redact('expected Bearer authentication')).toBe('expected Bearer authentication');
    for (const token of [
      'ya29.a0AfH6SMBx',
      'eyJhbGciOiJSUzI1NiJ9.e30.sig',
      'abcDEFghijk',
      't0k3n-value',
    ]) {
      expect(redact(`Authorization: Bearer ${token}`), token).toBe(
        'Authorization: Bearer [redacted]',
      );
    }
  });

  it('keeps the cause chain of an error: the network code of a transient failure', () => {
    const lines: string[] = [];
    const log = createLogger({ sink: (l) => lines.push(l) });
    const dns = Object.assign(new Error('getaddrinfo ENOTFOUND registry.example'), {
      code: 'ENOTFOUND',
      syscall: 'getaddrinfo',
    });
    const fetchFailed = new TypeError('fetch failed', { cause: dns });
    const err = new TransientError('registry registry.example unreachable', {
      cause: fetchFailed,
      details: { registry: 'registry.example' },
    });
    log.error('transient failure, the message will be redelivered', { err });
    const entry = JSON.parse(lines[0] as string);
    expect(entry.err).toMatchObject({
      name: 'TransientError',
      code: 'unavailable',
      details: { registry: 'registry.example' },
      cause: {
        name: 'TypeError',
        message: 'fetch failed',
        cause: { code: 'ENOTFOUND', syscall: 'getaddrinfo' },
      },
    });
  });

  it('adds the trace from X-Cloud-Trace-Context or traceparent', () => {
    expect(
      traceFields({ 'x-cloud-trace-context': '105445aa7843bc8bf206b12000100000/1;o=1' }, 'p'),
    ).toEqual({
      'logging.googleapis.com/trace': 'projects/p/traces/105445aa7843bc8bf206b12000100000',
      'logging.googleapis.com/spanId': '1',
    });
    expect(
      traceFields({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, 'p'),
    ).toMatchObject({
      'logging.googleapis.com/trace': 'projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736',
    });
    expect(traceFields({}, 'p')).toEqual({});
  });
});
