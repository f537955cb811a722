import { Firestore } from '@google-cloud/firestore';
import * as ff from '@google-cloud/functions-framework';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fixedClock } from '../../../shared/clock.js';
import { InvalidInputError, TransientError } from '../../../shared/errors.js';
import { jsonOf } from '../../../shared/events/pubsub-message.js';
import { externalDocId } from '../../../shared/ledger/collections.js';
import { createLogger } from '../../../shared/logging/logger.js';
import { pubsubFunction } from '../../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../../shared/runtime/register.js';
import { createRoot } from '../../../shared/runtime/root.js';
import { eventually, type FunctionServer, serveFunction } from '../../support/function-server.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';

describeWithEmulators('Pub/Sub push → functions-framework cloudEvent function → Firestore', () => {
  const projectId = emulators?.projectId ?? 'none';
  const lines: string[] = [];
  const root = createRoot(process.env, {
    logger: createLogger({ sink: (l) => lines.push(l) }),
    clock: fixedClock('2026-11-29T10:00:00Z'),
  });
  const db = new Firestore({ projectId });
  const pubsub = new PubSub({ projectId });
  let failNext = 0;
  let server: FunctionServer;
  let gated: FunctionServer;

  beforeAll(async () => {
    ff.cloudEvent(
      'recordMessage',
      pubsubFunction(
        'test-record',
        async (msg) => {
          if (failNext > 0) {
            failNext -= 1;
            throw new TransientError('simulated outage');
          }
          const body = jsonOf(msg) as { n?: unknown };
          if (typeof body.n !== 'number') throw new InvalidInputError('n must be a number');
          await db
            .collection('received')
            .doc(msg.messageId)
            .set({ n: body.n, attrs: msg.attributes });
        },
        () => root,
      ),
    );
    server = await serveFunction('recordMessage');
    // Registered as the functions are (through the body gate), rejecting everything.
    registerEvent(
      'rejectGated',
      pubsubFunction(
        'test-gated',
        async () => {
          throw new InvalidInputError('never reached for an envelope without a message');
        },
        () => root,
      ),
    );
    gated = await serveFunction('rejectGated');
  });
  afterAll(async () => {
    await server.close();
    await gated?.close();
    await Promise.all([db.terminate(), pubsub.close()]);
  });

  async function topicWithPush(name: string) {
    const [topic] = await pubsub.createTopic(name);
    await topic.createSubscription(`${name}-push`, {
      pushConfig: { pushEndpoint: `${server.url}/projects/${projectId}/topics/${name}` },
      ackDeadlineSeconds: 10,
      retryPolicy: { minimumBackoff: { seconds: 0 }, maximumBackoff: { seconds: 1 } },
    });
    return topic;
  }

  it('records a published message through a push subscription', async () => {
    const topic = await topicWithPush('plumbing');
    const id = await topic.publishMessage({ json: { n: 7 }, attributes: { a: 'b' } });
    const doc = await eventually(async () => {
      const s = await db.collection('received').doc(id).get();
      return s.exists ? s.data() : undefined;
    });
    expect(doc).toEqual({ n: 7, attrs: { a: 'b' } });
  });

  it('redelivers after a transient failure and then records once', async () => {
    const topic = await topicWithPush('plumbing-retry');
    failNext = 1;
    const id = await topic.publishMessage({ json: { n: 8 } });
    const doc = await eventually(async () => {
      const s = await db.collection('received').doc(id).get();
      return s.exists ? s.data() : undefined;
    });
    expect(doc?.n).toBe(8);
    expect(failNext).toBe(0);
    expect(lines.some((l) => l.includes('transient failure'))).toBe(true);
  });

  it('dead-letters a malformed message with its raw payload and acknowledges it', async () => {
    const topic = await topicWithPush('plumbing-bad');
    const id = await topic.publishMessage({ data: Buffer.from('{"n":"seven"}') });
    const dl = await eventually(async () => {
      const s = await db
        .collection('deadLetters')
        .doc(externalDocId(`test-record:${id}`))
        .get();
      return s.exists ? s.data() : undefined;
    });
    expect(dl?.raw).toBe('{"n":"seven"}');
    expect(dl?.rawEncoding).toBe('utf8');
    expect(dl?.reason).toContain('n must be a number');
    expect((await db.collection('received').doc(id).get()).exists).toBe(false);
  });

  it('keeps data that is not UTF-8 byte for byte, as base64', async () => {
    const topic = await topicWithPush('plumbing-binary');
    const bytes = Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0xff, 0xfe, 0xc3, 0x28, 0x7d]);
    const id = await topic.publishMessage({ data: bytes });
    const dl = await eventually(async () => {
      const s = await db
        .collection('deadLetters')
        .doc(externalDocId(`test-record:${id}`))
        .get();
      return s.exists ? s.data() : undefined;
    });
    // Decoding as UTF-8 would have replaced the three invalid bytes by U+FFFD.
    expect(dl).toMatchObject({ rawEncoding: 'base64', rawBytes: bytes.length, truncated: false });
    expect(Buffer.from(String(dl?.raw), 'base64').equals(bytes)).toBe(true);
  });

  it('dead-letters a request that is not a Pub/Sub CloudEvent', async () => {
    const res = await fetch(`${server.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(res.status).toBeLessThan(300);
    const all = await db.collection('deadLetters').where('source', '==', 'test-record').get();
    expect(all.docs.some((d) => String(d.get('reason')).includes('not a Pub/Sub CloudEvent'))).toBe(
      true,
    );
  });

  it('keeps an envelope without a message exactly as received (not "{}")', async () => {
    // Odd spacing, key order and an unknown field: only the request's own bytes keep all of it.
    const body =
      '{ "subscription" : "projects/p/subscriptions/s",\n  "deliveryAttempt": 3, "x": [1,2] }';
    const res = await fetch(`${gated.url}/projects/p/topics/t`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBeLessThan(300);
    const dl = await eventually(async () => {
      const all = await db.collection('deadLetters').where('source', '==', 'test-gated').get();
      return all.docs.find((d) => d.get('raw') === body)?.data();
    });
    expect(dl).toMatchObject({ rawEncoding: 'utf8', rawBytes: Buffer.byteLength(body) });
    expect(String(dl.reason)).toContain('not a Pub/Sub CloudEvent');
  });

  it('dead-letters push bodies that are no envelope at all, byte for byte, without the framework crashing', async () => {
    const bodies: { type: string; body: string }[] = [
      { type: 'application/json', body: '{"message": RAW-MALFORMED' },
      { type: 'application/json', body: 'null' },
      { type: 'application/json', body: '"just a string"' },
      { type: 'application/json', body: '[1,2,3]' },
      { type: 'text/plain', body: 'plain text push' },
    ];
    for (const { type, body } of bodies) {
      const res = await fetch(`${gated.url}/projects/p/topics/t`, {
        method: 'POST',
        headers: { 'content-type': type },
        body,
      });
      // Acknowledged: kept as a dead letter, never retried, and never the framework's 500.
      expect(res.status, body).toBeLessThan(300);
      const dl = await eventually(async () => {
        const all = await db.collection('deadLetters').where('source', '==', 'test-gated').get();
        return all.docs.find((d) => d.get('raw') === body)?.data();
      });
      expect(dl.rawBytes, body).toBe(Buffer.byteLength(body));
    }
  });
});
