import * as ff from '@google-cloud/functions-framework';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClearanceError } from '../../../shared/errors.js';
import { httpFunction } from '../../../shared/http/http-function.js';
import { createLogger } from '../../../shared/logging/logger.js';
import { handlersSettled } from '../../../shared/runtime/deadline.js';
import { createRoot } from '../../../shared/runtime/root.js';
import { type FunctionServer, serveFunction } from '../../support/function-server.js';

describe('httpFunction (through functions-framework)', () => {
  const lines: string[] = [];
  const root = createRoot(
    { CLEARANCE_MAX_BODY_BYTES: '1024', CLEARANCE_HANDLER_DEADLINE_MS: '100' },
    { logger: createLogger({ sink: (l) => lines.push(l) }) },
  );
  let server: FunctionServer;
  let withDeadline: FunctionServer;
  let noDeadline: FunctionServer;
  const aborted: boolean[] = [];

  beforeAll(async () => {
    ff.http(
      'httpWrapperProbe',
      httpFunction(
        'probe',
        async (req) => {
          if (req.path === '/bad')
            throw new ClearanceError('invalid-input', 'field x is wrong', {
              details: { issues: [{ path: 'x', message: 'wrong' }] },
            });
          if (req.path === '/crash')
            throw new Error('secret internals at /srv/app.js:12 token=abc123');
          if (req.path === '/down') throw new ClearanceError('unavailable', 'firestore down');
          return { status: 200, body: { ok: true } };
        },
        { getRoot: () => root },
      ) as unknown as ff.HttpFunction,
    );
    server = await serveFunction('httpWrapperProbe');
    // The same slow handler, once with the deadline and once without.
    const slow = (deadline: boolean) =>
      httpFunction(
        'slow',
        async (_req, { signal }) => {
          await new Promise((r) => setTimeout(r, 300));
          aborted.push(signal.aborted);
          return { status: 200, body: { done: true } };
        },
        { getRoot: () => root, deadline },
      ) as unknown as ff.HttpFunction;
    ff.http('httpWrapperSlowDeadline', slow(true));
    ff.http('httpWrapperSlowNoDeadline', slow(false));
    withDeadline = await serveFunction('httpWrapperSlowDeadline');
    noDeadline = await serveFunction('httpWrapperSlowNoDeadline');
  });
  afterAll(async () => {
    await Promise.all([server.close(), withDeadline.close(), noDeadline.close()]);
  });

  it('answers with a request id header', async () => {
    const res = await fetch(`${server.url}/ok`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses a body over the cap with 413', async () => {
    const res = await fetch(`${server.url}/ok`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 'x'.repeat(2000) }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'payload-too-large',
    );
  });

  it('explains client errors with their issues', async () => {
    const res = await fetch(`${server.url}/bad`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: {
        code: 'invalid-input',
        message: 'field x is wrong',
        problems: [{ path: 'x', message: 'wrong' }],
      },
    });
  });

  it('never returns internals on a server error, only the request id', async () => {
    const res = await fetch(`${server.url}/crash`);
    const text = await res.text();
    expect(res.status).toBe(503);
    expect(text).not.toContain('secret internals');
    expect(text).not.toContain('app.js');
    expect(JSON.parse(text).error).toEqual({
      code: 'unavailable',
      message: 'internal error',
      requestId: res.headers.get('x-request-id'),
    });
    expect(lines.join('\n')).not.toContain('abc123');
  });

  it('maps a transient failure to 503 so callers retry', async () => {
    expect((await fetch(`${server.url}/down`)).status).toBe(503);
  });

  it('answers 504 with Retry-After at the handler deadline, and tells the still-running work', async () => {
    const res = await fetch(`${withDeadline.url}/`, { method: 'POST' });
    expect(res.status).toBe(504);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('timeout');
    expect(await handlersSettled(2_000)).toBe(true);
    expect(aborted.at(-1)).toBe(true);
  });

  it('waits for the work without the deadline option', async () => {
    const res = await fetch(`${noDeadline.url}/`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(aborted.at(-1)).toBe(false);
  });
});
