// The back half of the loop through the real functions: a verdict message makes attestImage sign or
// revoke, and the alert it raises reaches the owner's chat space through notifyOwners.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import * as ff from '@google-cloud/functions-framework';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ChatSink, startChatSink } from '../../scripts/lib/chat-sink.js';
import { type GrafeasServer, startGrafeasServer } from '../../scripts/lib/grafeas-server.js';
import { ImageRecord } from '../../shared/image-record.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { externalDocId } from '../../shared/ledger/collections.js';
import type { Verdict } from '../../shared/verdict.js';
import { deniedAlert } from '../shared/alerts/samples.js';
import { eventually, type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';
import { pushMessage } from './support.js';

const POLICY_HASH = `sha256:${'ab'.repeat(32)}`;

const ROUTING = `version: 1
labelKeys: [owner]
teams:
  payments:
    channels:
      - { kind: google-chat, secret: 'env:TEST_CHAT_WEBHOOK', space: payments-chat }
fallback:
  channels:
    - { kind: google-chat, secret: 'env:TEST_CHAT_WEBHOOK', space: payments-chat }
`;

describeWithEmulators('attestImage and notifyOwners through Pub/Sub', () => {
  const projectId = emulators?.projectId ?? 'none';
  const keys = mkdtempSync(join(tmpdir(), 'clearance-keys-'));
  const db = new Firestore({ projectId });
  const pubsub = new PubSub({ projectId });
  const digest = `sha256:${'e'.repeat(64)}`;
  const id = imageDocId('us-docker.pkg.dev', 'acme/apps/api', digest);
  let grafeas: GrafeasServer;
  let chat: ChatSink;
  let attest: FunctionServer;
  let notify: FunctionServer;
  let acknowledged = 0;

  beforeAll(async () => {
    grafeas = await startGrafeasServer();
    chat = await startChatSink();
    Object.assign(process.env, {
      CLEARANCE_ALERTS_TOPIC: 'an-alerts',
      CLEARANCE_VERDICTS_TOPIC: 'an-verdicts',
      CLEARANCE_REEVALUATE_TOPIC: 'an-reevaluate',
      CLEARANCE_SIGNER: 'local',
      CLEARANCE_LOCAL_KEY_FILE: join(keys, 'attestor.pem'),
      CLEARANCE_ATTESTOR_NOTE: `projects/${projectId}/notes/clearance-attestor`,
      CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: grafeas.url,
      CLEARANCE_ROUTING: ROUTING,
      TEST_CHAT_WEBHOOK: chat.googleChatUrl,
      CLEARANCE_LOG_LEVEL: 'ERROR',
    });
    const { attestImage } = await import('../../functions/attest-image/index.js');
    await import('../../functions/notify-owners/index.js');
    // The real handler, counting deliveries it acknowledged (a throw means Pub/Sub redelivers).
    ff.cloudEvent('attestImageCounted', async (event: ff.CloudEvent<unknown>) => {
      await attestImage(event);
      acknowledged += 1;
    });
    attest = await serveFunction('attestImageCounted');
    notify = await serveFunction('notifyOwners');
    for (const [topic, server] of [
      ['an-verdicts', attest],
      ['an-alerts', notify],
    ] as const) {
      const [t] = await pubsub.createTopic(topic);
      await t.createSubscription(`${topic}-push`, {
        pushConfig: { pushEndpoint: `${server.url}/projects/${projectId}/topics/${topic}` },
        retryPolicy: { minimumBackoff: { seconds: 0 }, maximumBackoff: { seconds: 1 } },
      });
    }
    await pubsub.createTopic('an-reevaluate');
  });
  afterAll(async () => {
    await Promise.all([attest.close(), notify.close(), grafeas.close(), chat.close()]);
    await Promise.all([db.terminate(), pubsub.close()]);
    rmSync(keys, { recursive: true, force: true });
  });

  const verdict = (decision: Verdict['decision']): Verdict => ({
    environment: 'prod',
    decision,
    mode: 'enforce',
    reasons:
      decision === 'deny'
        ? [
            {
              ruleId: 'vulnerabilities.blocked-cve',
              level: 'deny',
              message: 'CVE-2021-44228 is blocked',
              remediation: null,
            },
          ]
        : [],
    policyHash: POLICY_HASH,
    evaluatedAt: '2026-11-29T10:00:00.000Z',
  });
  const read = async () => ImageRecord.parse((await db.collection('images').doc(id).get()).data());

  it('signs an allowed image once, and revokes it with an alert to its owner when it is denied', async () => {
    await db
      .collection('images')
      .doc(id)
      .set(
        ImageRecord.parse({
          id,
          registry: 'us-docker.pkg.dev',
          repository: 'acme/apps/api',
          digest,
          tags: ['1.0'],
          labels: { owner: 'payments' },
          verdicts: { prod: verdict('allow') },
          state: 'evaluated',
          version: 3,
          updatedAt: '2026-11-29T10:00:00.000Z',
        }),
      );
    const message = { imageId: id, cause: 'verdict-changed', policyHash: POLICY_HASH };
    // Delivered twice: still one occurrence and one attestation per format.
    await pubsub.topic('an-verdicts').publishMessage({ json: message });
    await pubsub.topic('an-verdicts').publishMessage({ json: message });
    const attested = await eventually(
      async () => {
        const r = await read();
        return r.attestations.length === 2 ? r : undefined;
      },
      30_000,
      'two attestations',
    );
    expect(attested.attestations.map((a) => a.format).sort()).toEqual(['binauthz', 'dsse']);
    expect(attested.state).toBe('attested');
    const occurrences = () =>
      [...grafeas.occurrences.values()].filter(
        (o) => o.kind === 'ATTESTATION' || 'attestation' in o,
      );
    await eventually(
      async () => (acknowledged >= 2 ? true : undefined),
      30_000,
      'both deliveries acknowledged',
    );
    expect(occurrences()).toHaveLength(1);
    expect(occurrences()[0]).toMatchObject({
      resourceUri: `https://us-docker.pkg.dev/acme/apps/api@${digest}`,
    });

    await db
      .collection('images')
      .doc(id)
      .set({ ...(await read()), verdicts: { prod: verdict('deny') }, version: 10 });
    await pubsub.topic('an-verdicts').publishMessage({ json: message });
    const revoked = await eventually(
      async () => {
        const r = await read();
        return r.attestations.every((a) => a.revokedAt) ? r : undefined;
      },
      30_000,
      'revocation',
    );
    expect(revoked.attestations[0]?.revokedReason).toBeTruthy();
    expect(occurrences()).toHaveLength(0);
    const card = await eventually(
      async () => chat.messages.find((m) => JSON.stringify(m.body).includes('api')),
      30_000,
      'the chat card',
    );
    expect(card.kind).toBe('google-chat');
    expect(JSON.stringify(card.body)).toContain('cardsV2');
    expect(JSON.stringify(card.body)).toMatch(/revoked/i);
  });

  it('an alert whose bytes are not UTF-8 is dead-lettered byte for byte and sends nothing', async () => {
    const json = JSON.stringify(
      deniedAlert({
        image: {
          registry: 'us-docker.pkg.dev',
          repository: 'acme/apps/not-utf8',
          digest,
          tags: [],
        },
        labels: { owner: 'payments' },
      }),
    );
    const cut = json.indexOf('"owner":"') + '"owner":"'.length;
    // Read leniently this was "pay\uFFFDments", a valid alert: it was sent, and nothing was kept.
    const data = Buffer.concat([
      Buffer.from(json.slice(0, cut)),
      Buffer.from('pay'),
      Buffer.from([0xff]),
      Buffer.from(json.slice(cut + 3)),
    ]);
    const sent = chat.messages.length;
    const push = await pushMessage(notify, 'an-alerts', null, { rawData: data.toString('base64') });
    expect(push.status).toBeLessThan(300);
    const dl = (
      await db
        .collection('deadLetters')
        .doc(externalDocId(`alerts:${push.messageId}`))
        .get()
    ).data();
    expect(dl).toMatchObject({ rawEncoding: 'base64', rawBytes: data.length });
    expect(String(dl?.reason)).toMatch(/not valid UTF-8/);
    expect(Buffer.from(String(dl?.raw), 'base64').equals(data)).toBe(true);
    expect(
      chat.messages.slice(sent).filter((m) => JSON.stringify(m.body).includes('not-utf8')),
    ).toEqual([]);
  });
});
