// ingestReport with no credential configured at all: it fails closed.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators } from '../support/integration.js';
import { testDb } from './support.js';

describeWithEmulators('ingestReport without configured authentication', () => {
  let server: FunctionServer;
  const db = testDb();

  beforeAll(async () => {
    for (const k of [
      'CLEARANCE_REPORT_TOKEN',
      'CLEARANCE_REPORT_AUDIENCES',
      'CLEARANCE_REPORT_ALLOWED_CALLERS',
    ])
      delete process.env[k];
    process.env.CLEARANCE_LOG_LEVEL = 'ERROR';
    await import('../../functions/ingest-report/index.js');
    server = await serveFunction('ingestReport');
  });
  afterAll(async () => {
    await server?.close();
    await db.terminate();
  });

  it('refuses every caller, whatever token it sends', async () => {
    for (const authorization of ['Bearer anything', 'Bearer ', '']) {
      const res = await fetch(`${server.url}/?image=gcr.io/a/b@sha256:${'a'.repeat(64)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ SchemaVersion: 2, Results: [] }),
      });
      expect(res.status).toBe(401);
      const body = (await res.json()) as { error: { message: string } };
      expect(body.error.message).toMatch(/not configured/);
    }
    expect((await db.collection('images').get()).size).toBe(0);
  });
});
