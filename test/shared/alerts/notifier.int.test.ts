import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AlertInput, decodeAlertMessage, publishAlert } from '../../../shared/alerts/alert.js';
import { type ChatSender, fetchChatSender } from '../../../shared/alerts/delivery.js';
import { createNotifier, handleAlertMessage } from '../../../shared/alerts/index.js';
import {
  type AlertDoc,
  alertDocId,
  Notifier,
  type NotifierOptions,
} from '../../../shared/alerts/notifier.js';
import { firestoreTokenBuckets } from '../../../shared/alerts/rate-limit.js';
import { type Channel, parseRoutingDocument } from '../../../shared/alerts/routing.js';
import {
  envSecretSource,
  secretManagerSource,
  secretSource,
} from '../../../shared/alerts/secrets.js';
import { fixedClock } from '../../../shared/clock.js';
import { InvalidInputError, TransientError } from '../../../shared/errors.js';
import { createLogger } from '../../../shared/logging/logger.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';
import { deniedAlert, digestFor } from './samples.js';
import { type SecretManagerServer, startSecretManagerServer } from './secret-manager-server.js';
import { startWebhookServer, type WebhookServer } from './webhook-server.js';

const START = '2026-11-29T10:00:00.000Z';
const MINUTE = 60_000;

describeWithEmulators('Notifier against the Firestore emulator and local chat webhooks', () => {
  const db = new Firestore({ projectId: emulators?.projectId });
  const logLines: string[] = [];
  const logger = createLogger({ sink: (line) => logLines.push(line) });
  /** Every webhook URL and credential part handed out, for the no-leak check at the end. */
  const secretsUsed: string[] = [];
  const env: Record<string, string> = {};
  let server: WebhookServer;
  let sm: SecretManagerServer;
  let serverNow: () => number = () => 0;

  beforeAll(async () => {
    server = await startWebhookServer(() => serverNow());
    sm = await startSecretManagerServer({});
  });
  afterAll(async () => {
    await server.close();
    await sm.close();
    await db.terminate();
  });

  function smSecrets() {
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'fixed-test-token', expiry_date: Date.now() + 3_600_000 });
    return secretManagerSource({
      clientOptions: {
        fallback: true,
        apiEndpoint: '127.0.0.1',
        port: sm.port,
        protocol: 'http',
        authClient: auth,
      } as never,
    });
  }

  interface Rig {
    notifier: Notifier;
    clock: ReturnType<typeof fixedClock>;
    sleeps: number[];
    chatPath: string;
    slackPath: string;
    /** The Slack path including its secret segment (what the fake scripts answers on). */
    slackFullPath: string;
    options: NotifierOptions;
    renew(overrides?: Partial<NotifierOptions>): Notifier;
  }

  /**
   * A team with a Google Chat space (URL in an env var) and a Slack webhook (URL in Secret
   * Manager, read through the real client), unique to the test so tests do not share buckets.
   */
  function rig(
    name: string,
    opts: {
      chat?: boolean;
      slack?: boolean;
      digestMinutes?: number;
      notifier?: Partial<NotifierOptions>;
    } = {},
  ): Rig {
    const clock = fixedClock(START);
    serverNow = () => clock.now().getTime();
    const sleeps: number[] = [];
    const chat = server.chatUrl(`${name}AAA`);
    const slack = server.slackUrl('T000', `B${name}`);
    secretsUsed.push(chat.url, chat.key, chat.token, slack.url, slack.secret);
    env[`CHAT_${name}`] = chat.url;
    const smName = `projects/acme/secrets/slack-${name}/versions/latest`;
    sm.secrets.set(smName, slack.url);
    const channels: Channel[] = [];
    if (opts.chat !== false) {
      channels.push({
        kind: 'google-chat',
        secret: `env:CHAT_${name}`,
        space: `chat-${name}`,
        ...(opts.digestMinutes ? { digest: { intervalMinutes: opts.digestMinutes } } : {}),
      });
    }
    if (opts.slack !== false) {
      channels.push({
        kind: 'slack',
        secret: smName,
        space: `slack-${name}`,
        ...(opts.digestMinutes ? { digest: { intervalMinutes: opts.digestMinutes } } : {}),
      });
    }
    const routing = parseRoutingDocument({
      teams: { payments: { channels }, other: { channels: [channels[0]] } },
      rules: [{ repositories: ['us-docker.pkg.dev/acme-prod/payments/**'], team: 'payments' }],
    });
    const options: NotifierOptions = {
      db,
      routing,
      secrets: secretSource({ env: envSecretSource(env), secretManager: smSecrets() }),
      sender: fetchChatSender({ timeoutMs: 300, now: () => clock.now() }),
      clock,
      logger,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock.advance(ms);
      },
      random: () => 0.5,
      ...opts.notifier,
    };
    return {
      notifier: new Notifier(options),
      clock,
      sleeps,
      chatPath: `/v1/spaces/${name}AAA/messages`,
      slackPath: `/services/T000/B${name}/`,
      slackFullPath: new URL(slack.url).pathname,
      options,
      renew: (overrides = {}) => new Notifier({ ...options, ...overrides }),
    };
  }

  async function alertDoc(space: string, alert: AlertInput): Promise<AlertDoc> {
    const { parseAlert } = await import('../../../shared/alerts/alert.js');
    const snap = await db
      .collection('alerts')
      .doc(alertDocId(space, parseAlert(alert)))
      .get();
    return snap.data() as AlertDoc;
  }

  function requestsOn(path: string) {
    return server.requests.filter((m) => m.path.startsWith(path));
  }

  it('a denied image produces exactly one Google Chat card and one Slack message, with finding ids and fixed versions', async () => {
    const r = rig('denied');
    const results = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(results.map((x) => [x.space, x.status])).toEqual([
      ['chat-denied', 'delivered'],
      ['slack-denied', 'delivered'],
    ]);

    const chat = server.acceptedOn(r.chatPath);
    expect(chat).toHaveLength(1);
    expect(chat[0].query.key).toMatch(/^chatkey/);
    const card = (chat[0].body.cardsV2 as { card: Record<string, unknown> }[])[0].card;
    expect(card.header).toEqual({
      title: 'Image denied for prod',
      subtitle: 'us-docker.pkg.dev/acme-prod/payments/api:1.4.2@sha256:aaaaaaaaaaaa',
    });
    const cardJson = JSON.stringify(card);
    for (const s of [
      'CVE-2023-5363',
      '3.0.11-1~deb12u2',
      'CVE-2023-4911',
      '2.36-9+deb12u3',
      'vulnerabilities.maximumFixableSeverity',
    ]) {
      expect(cardJson).toContain(s);
    }

    const slack = server.acceptedOn(r.slackPath);
    expect(slack).toHaveLength(1);
    const blocks = JSON.stringify(slack[0].body.blocks);
    expect(blocks).toContain('CVE-2023-5363 (HIGH): openssl 3.0.11-1~deb12u1 → 3.0.11-1~deb12u2');
    expect(blocks).toContain('CVE-2023-4911 (HIGH): glibc 2.36-9+deb12u1 → 2.36-9+deb12u3');
    expect(slack[0].body.text).toEqual(expect.stringContaining('Image denied for prod'));

    const doc = await alertDoc('chat-denied', deniedAlert());
    expect(doc).toMatchObject({ status: 'delivered', attempts: 1, messageIds: ['msg-1'] });
  });

  it('the same event delivered three times sends one message; the same facts re-detected send nothing; new facts send again', async () => {
    const r = rig('dedupe');
    const first = await r.notifier.handle(deniedAlert(), 'msg-1');
    const second = await r.notifier.handle(deniedAlert(), 'msg-1');
    const third = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(first.map((x) => x.status)).toEqual(['delivered', 'delivered']);
    expect([...second, ...third].map((x) => x.status)).toEqual(Array(4).fill('duplicate'));

    r.clock.advance(3 * 3_600_000);
    const reevaluated = await r.notifier.handle(
      deniedAlert({ detectedAt: '2026-11-29T13:00:00Z' }),
      'msg-2',
    );
    expect(reevaluated.map((x) => x.status)).toEqual(['duplicate', 'duplicate']);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(1);
    expect(server.acceptedOn(r.slackPath)).toHaveLength(1);

    const base = deniedAlert() as Extract<AlertInput, { type: 'image-denied' }>;
    const worse = deniedAlert({
      findings: [
        ...(base.findings ?? []),
        {
          id: 'CVE-2024-3094',
          package: 'xz-utils',
          installedVersion: '5.6.0-0.2',
          fixedVersion: '5.6.1+really5.4.5-1',
          severity: 'CRITICAL',
          fixState: 'fixed',
        },
      ],
    } as never);
    await r.notifier.handle(worse, 'msg-3');
    expect(server.acceptedOn(r.chatPath)).toHaveLength(2);
    expect(JSON.stringify(server.acceptedOn(r.chatPath)[1].body)).toContain('CVE-2024-3094');

    // Past the 24 h window the same facts are news again (a daily reminder at most).
    r.clock.advance(24 * 3_600_000);
    await r.notifier.handle(deniedAlert(), 'msg-4');
    expect(server.acceptedOn(r.chatPath)).toHaveLength(3);
    expect((await alertDoc('chat-dedupe', deniedAlert())).messageIds).toEqual([
      'msg-1',
      'msg-2',
      'msg-4',
    ]);
  });

  it('429 with Retry-After: 2 is waited out and the message then delivered once', async () => {
    const r = rig('ratelimited', { slack: false });
    server.script(r.chatPath, [{ status: 429, headers: { 'retry-after': '2' } }]);
    const results = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(results[0].status).toBe('delivered');
    expect(r.sleeps).toEqual([2000]);
    expect(requestsOn(r.chatPath)).toHaveLength(2);
    expect(requestsOn(r.chatPath)[1].at - requestsOn(r.chatPath)[0].at).toBe(2000);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(1);
    expect(await alertDoc('chat-ratelimited', deniedAlert())).toMatchObject({
      status: 'delivered',
      attempts: 2,
    });
  });

  it('500 three times then 200 delivers once, backing off exponentially with (injected) jitter', async () => {
    const r = rig('flaky', { slack: false });
    server.script(r.chatPath, [{ status: 500 }, { status: 502 }, { status: 503 }]);
    const results = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(results[0].status).toBe('delivered');
    // random() = 0.5 of min(60 s, 1 s · 2^n)
    expect(r.sleeps).toEqual([500, 1000, 2000]);
    expect(requestsOn(r.chatPath)).toHaveLength(4);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(1);
  });

  it('a hanging webhook times out and is retried', async () => {
    const r = rig('hanging', { chat: false });
    server.script(r.slackFullPath, [{ hang: true }]);
    const results = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(results[0].status).toBe('delivered');
    expect(requestsOn(r.slackPath)).toHaveLength(2);
    expect(server.acceptedOn(r.slackPath)).toHaveLength(1);
    // Slack's bucket holds one token a second, so the retry after 500 ms backoff waits for it too.
    expect(r.sleeps[0]).toBe(500);
    const doc = await alertDoc('slack-hanging', deniedAlert());
    expect(doc).toMatchObject({
      status: 'delivered',
      attempts: 2,
      lastError: 'timed out after 300 ms',
    });
  });

  it('400 is dead-lettered with its reason, never retried, and not sent again', async () => {
    const r = rig('badrequest', { slack: false });
    server.script(r.chatPath, [
      {
        status: 400,
        body: `{"error":{"code":400,"message":"Invalid JSON payload received at ${env.CHAT_badrequest}"}}`,
      },
    ]);
    const results = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(results[0].status).toBe('dead');
    expect(requestsOn(r.chatPath)).toHaveLength(1);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(0);
    const doc = await alertDoc('chat-badrequest', deniedAlert());
    expect(doc.status).toBe('dead');
    expect(doc.reason).toMatch(/^HTTP 400: .*Invalid JSON payload received at/);
    expect(doc.reason).not.toContain(env.CHAT_badrequest);
    expect(doc.reason).not.toMatch(/chatkey|chattoken/);

    const again = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(again[0].status).toBe('duplicate');
    expect(requestsOn(r.chatPath)).toHaveLength(1);
  });

  it('a webhook failing every time is dead-lettered when attempts are exhausted', async () => {
    const r = rig('exhausted', { slack: false, notifier: { maxAttempts: 3 } });
    server.script(r.chatPath, Array(5).fill({ status: 500 }));
    const results = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(results[0].status).toBe('dead');
    expect(requestsOn(r.chatPath)).toHaveLength(3);
    expect((await alertDoc('chat-exhausted', deniedAlert())).reason).toBe(
      'gave up after 3 attempts; last: HTTP 500',
    );
  });

  it('200 alerts for one Google Chat space within a minute go out at no more than 60 a minute, none lost, none duplicated', async () => {
    const r = rig('burst', { slack: false });
    const start = r.clock.now().getTime();
    for (let i = 0; i < 200; i++) {
      // Arrivals are 300 ms apart (all 200 within one minute); waiting for tokens moves time on.
      const arrival = start + i * 300;
      if (r.clock.now().getTime() < arrival) r.clock.set(new Date(arrival));
      const alert = deniedAlert({
        image: { ...deniedAlert().image, digest: digestFor(i) },
      } as never);
      const res = await r.notifier.handle(alert, `burst-${i}`);
      expect(res[0].status).toBe('delivered');
    }
    const got = server.acceptedOn(r.chatPath);
    expect(got).toHaveLength(200);
    const subtitles = got.map(
      (m) =>
        (m.body.cardsV2 as { card: { header: { subtitle: string } } }[])[0].card.header.subtitle,
    );
    expect(new Set(subtitles).size).toBe(200);
    const times = got.map((m) => m.at).sort((a, b) => a - b);
    let maxPerMinute = 0;
    for (let lo = 0, hi = 0; hi < times.length; hi++) {
      while (times[hi] - times[lo] >= MINUTE) lo++;
      maxPerMinute = Math.max(maxPerMinute, hi - lo + 1);
    }
    expect(maxPerMinute).toBeLessThanOrEqual(60);
    expect(maxPerMinute).toBeGreaterThan(50);
    const delivered = await db
      .collection('alerts')
      .where('space', '==', 'chat-burst')
      .where('status', '==', 'delivered')
      .get();
    expect(delivered.size).toBe(200);
  });

  it('instances share one bucket per space: 14 concurrent takes at one instant get exactly the 10-token burst', async () => {
    const buckets = firestoreTokenBuckets(db);
    const limits = { capacity: 10, refillPerSecond: 50 / 60 };
    const now = Date.parse(START);
    const results = await Promise.all(
      Array.from({ length: 14 }, () => buckets.take('chat-shared', now, limits)),
    );
    expect(results.filter((x) => x.granted)).toHaveLength(10);
    for (const x of results.filter((y) => !y.granted)) expect(x.waitMs).toBe(1200);
  });

  it('with no token in reach the alert stays pending and a TransientError asks Pub/Sub to redeliver; the redelivery sends it', async () => {
    const r = rig('deferred', { chat: false, notifier: { maxWaitMs: 0 } });
    const a1 = deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(1) } } as never);
    const a2 = deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(2) } } as never);
    expect((await r.notifier.handle(a1, 'm1'))[0].status).toBe('delivered');
    await expect(r.notifier.handle(a2, 'm2')).rejects.toBeInstanceOf(TransientError);
    expect((await alertDoc('slack-deferred', a2)).status).toBe('pending');
    expect(server.acceptedOn(r.slackPath)).toHaveLength(1);

    r.clock.advance(1000);
    expect((await r.notifier.handle(a2, 'm2'))[0].status).toBe('delivered');
    expect(server.acceptedOn(r.slackPath)).toHaveLength(2);
  });

  it('flushPending sends what a lost redelivery left pending', async () => {
    const r = rig('sweep', { chat: false, notifier: { maxWaitMs: 0 } });
    const a1 = deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(1) } } as never);
    const a2 = deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(2) } } as never);
    await r.notifier.handle(a1, 'm1');
    await expect(r.notifier.handle(a2, 'm2')).rejects.toBeInstanceOf(TransientError);
    r.clock.advance(1000);
    const swept = await r.notifier.flushPending();
    expect(swept.filter((x) => x.space === 'slack-sweep').map((x) => x.status)).toEqual([
      'delivered',
    ]);
    expect(server.acceptedOn(r.slackPath)).toHaveLength(2);
    expect((await alertDoc('slack-sweep', a2)).status).toBe('delivered');
  });

  it('a delivery answered at its deadline sends nothing and hands its claim back: the redelivery sends it at once, one message', async () => {
    const r = rig('deadline', { chat: false });
    const alert = deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(7) } } as never);
    const late = new AbortController();
    late.abort();
    await expect(r.notifier.handle(alert, 'm1', { signal: late.signal })).rejects.toBeInstanceOf(
      TransientError,
    );
    expect(server.acceptedOn(r.slackPath)).toHaveLength(0);
    const held = await alertDoc('slack-deadline', alert);
    expect(held).toMatchObject({ status: 'pending', leaseId: null, notBeforeMs: 0 });
    expect(held.lastError).toBe('handler deadline passed');

    // No clock advance: a lease left held would make this redelivery wait for it.
    expect((await r.notifier.handle(alert, 'm1'))[0].status).toBe('delivered');
    expect(server.acceptedOn(r.slackPath)).toHaveLength(1);

    const other = deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(8) } } as never);
    await expect(r.notifier.handle(other, 'm2', { signal: late.signal })).rejects.toBeInstanceOf(
      TransientError,
    );
    const swept = await r.notifier.flushPending(late.signal);
    expect(swept).toEqual([]);
    expect((await alertDoc('slack-deadline', other)).status).toBe('pending');
    expect(server.acceptedOn(r.slackPath)).toHaveLength(1);
  });

  it('notifier killed between send and acknowledge: the alert is not lost and is sent exactly once more (one duplicate)', async () => {
    const r = rig('crash', { slack: false });
    const real = r.options.sender;
    const crashing = {
      async send(url, body) {
        const out = await real.send(url, body);
        // The webhook accepted the message; the process dies before recording it.
        throw new Error(`process killed after webhook answered ${out.outcome}`);
      },
    } satisfies ChatSender;
    const dying = r.renew({ sender: crashing });
    await expect(dying.handle(deniedAlert(), 'msg-1')).rejects.toThrow(/process killed/);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(1);
    expect((await alertDoc('chat-crash', deniedAlert())).status).toBe('sending');

    // Pub/Sub redelivers at once: the claim is still leased, so nothing is sent yet.
    const restarted = r.renew();
    await expect(restarted.handle(deniedAlert(), 'msg-1')).rejects.toBeInstanceOf(TransientError);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(1);

    // After the lease (2 min) the next redelivery sends it again: the one duplicate.
    r.clock.advance(120_001);
    expect((await restarted.handle(deniedAlert(), 'msg-1'))[0].status).toBe('delivered');
    expect(server.acceptedOn(r.chatPath)).toHaveLength(2);
    expect(server.acceptedOn(r.chatPath)[1].body).toEqual(server.acceptedOn(r.chatPath)[0].body);

    // Any later redelivery is de-duplicated.
    expect((await restarted.handle(deniedAlert(), 'msg-1'))[0].status).toBe('duplicate');
    expect(server.acceptedOn(r.chatPath)).toHaveLength(2);
  });

  it('digest mode folds a space’s alerts into one message per interval', async () => {
    const r = rig('digest', { chat: false, digestMinutes: 60 });
    const alerts = Array.from({ length: 5 }, (_, i) =>
      deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(100 + i) } } as never),
    );
    for (const [i, a] of alerts.entries()) {
      expect((await r.notifier.handle(a, `d-${i}`))[0].status).toBe('queued');
    }
    expect((await r.notifier.handle(alerts[0], 'd-0'))[0].status).toBe('duplicate');
    expect(requestsOn(r.slackPath)).toHaveLength(0);

    await r.notifier.flushDigests();
    const first = server.acceptedOn(r.slackPath);
    expect(first).toHaveLength(1);
    expect(first[0].body.text).toEqual(expect.stringMatching(/^5 Clearance alerts/));
    const blocks = JSON.stringify(first[0].body.blocks);
    for (let i = 0; i < 5; i++) {
      expect(blocks).toContain(`@sha256:${digestFor(100 + i).slice(7, 19)}`);
    }
    expect((await alertDoc('slack-digest', alerts[0])).status).toBe('digested');

    const later = Array.from({ length: 2 }, (_, i) =>
      deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(200 + i) } } as never),
    );
    for (const [i, a] of later.entries()) await r.notifier.handle(a, `l-${i}`);
    r.clock.advance(10 * MINUTE);
    await r.notifier.flushDigests();
    expect(server.acceptedOn(r.slackPath)).toHaveLength(1);

    r.clock.advance(51 * MINUTE);
    await r.notifier.flushDigests();
    const all = server.acceptedOn(r.slackPath);
    expect(all).toHaveLength(2);
    expect(all[1].body.text).toEqual(expect.stringMatching(/^2 Clearance alerts/));
    // A redelivery of a folded alert stays folded.
    expect((await r.notifier.handle(alerts[1], 'd-1'))[0].status).toBe('duplicate');
  });

  it('one space failing does not resend to the other: the redelivery only retries what is still pending', async () => {
    const r = rig('partial', { notifier: { maxWaitMs: 5_000 } });
    server.script(r.chatPath, [{ status: 503, headers: { 'retry-after': '30' } }]);
    const err = await r.notifier.handle(deniedAlert(), 'msg-1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(server.acceptedOn(r.slackPath)).toHaveLength(1);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(0);
    const pending = await alertDoc('chat-partial', deniedAlert());
    expect(pending).toMatchObject({ status: 'pending', attempts: 1, lastError: 'HTTP 503' });
    expect(pending.notBeforeMs).toBe(Date.parse(START) + 30_000);

    // Redelivered too early: still waiting for Retry-After, nothing is sent.
    r.clock.advance(10_000);
    await expect(r.notifier.handle(deniedAlert(), 'msg-1')).rejects.toBeInstanceOf(TransientError);
    expect(requestsOn(r.chatPath)).toHaveLength(1);

    r.clock.advance(20_000);
    const res = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(res.map((x) => [x.space, x.status])).toEqual([
      ['chat-partial', 'delivered'],
      ['slack-partial', 'duplicate'],
    ]);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(1);
    expect(server.acceptedOn(r.slackPath)).toHaveLength(1);
    expect((await alertDoc('chat-partial', deniedAlert())).attempts).toBe(2);
  });

  it('a digest run killed after the webhook accepted it is resumed by the next flush: exactly one duplicate digest', async () => {
    const r = rig('digestcrash', { slack: false, digestMinutes: 15 });
    for (let i = 0; i < 3; i++) {
      await r.notifier.handle(
        deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(300 + i) } } as never),
        `dc-${i}`,
      );
    }
    const real = r.options.sender;
    const dying = r.renew({
      sender: {
        async send(url, body) {
          await real.send(url, body);
          throw new Error('process killed');
        },
      } satisfies ChatSender,
    });
    await expect(dying.flushDigests()).rejects.toThrow(/process killed/);
    expect(server.acceptedOn(r.chatPath)).toHaveLength(1);

    await r.notifier.flushDigests();
    expect(server.acceptedOn(r.chatPath)).toHaveLength(1);
    r.clock.advance(120_001);
    await r.notifier.flushDigests();
    const got = server.acceptedOn(r.chatPath);
    expect(got).toHaveLength(2);
    expect(got[1].body).toEqual(got[0].body);
    expect(got[0].body.text).toBe('3 Clearance alerts');
    r.clock.advance(120_001);
    await r.notifier.flushDigests();
    expect(server.acceptedOn(r.chatPath)).toHaveLength(2);
  });

  it('a missing webhook secret dead-letters the alert with a reason naming the reference', async () => {
    const r = rig('nosecret', { slack: false });
    delete env.CHAT_nosecret;
    const res = await r.notifier.handle(deniedAlert(), 'msg-1');
    expect(res[0].status).toBe('dead');
    expect((await alertDoc('chat-nosecret', deniedAlert())).reason).toBe(
      'webhook secret env:CHAT_nosecret unusable: environment variable CHAT_nosecret is not set',
    );
  });

  it('refuses an invalid alert (ack and record it) and drops one no team or fallback claims, with a log line', async () => {
    const r = rig('unrouted');
    await expect(r.notifier.handle({ type: 'image-denied' }, 'bad')).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    const stranger = deniedAlert({
      image: { ...deniedAlert().image, repository: 'someone/else' },
    } as never);
    expect(await r.notifier.handle(stranger, 'm')).toEqual([]);
    expect(logLines.some((l) => l.includes('alert matches no team'))).toBe(true);
  });

  it('an alert published with publishAlert on a real Pub/Sub topic arrives and is delivered', async () => {
    const r = rig('pubsub', { slack: false });
    const pubsub = new PubSub({ projectId: emulators?.projectId });
    try {
      const [topic] = await pubsub.createTopic('clearance-alerts-test');
      const [sub] = await topic.createSubscription('notify-owners-test');
      const id = await publishAlert(topic, deniedAlert());
      const [pulled] = await new Promise<[{ id: string; data: Buffer; ack(): void }]>(
        (resolve, reject) => {
          sub.once('message', (m) => resolve([m]));
          sub.once('error', reject);
        },
      );
      pulled.ack();
      await sub.close();
      expect(pulled.id).toBe(id);
      const res = await r.notifier.handle(decodeAlertMessage(pulled.data), pulled.id);
      expect(res[0].status).toBe('delivered');
      expect(server.acceptedOn(r.chatPath)).toHaveLength(1);
    } finally {
      await pubsub.close();
    }
  });

  it('handleAlertMessage: a base64 push body is delivered; a malformed one is rejected with its issues', async () => {
    const chat = server.chatUrl('wiredAAA');
    secretsUsed.push(chat.url, chat.key, chat.token);
    env.CHAT_wired = chat.url;
    const clock = fixedClock(START);
    serverNow = () => clock.now().getTime();
    const notifier = createNotifier({
      db,
      logger,
      clock,
      secrets: secretSource({ env: envSecretSource(env) }),
      routingDocument: [
        'teams:',
        '  payments:',
        '    channels:',
        '      - { kind: google-chat, secret: "env:CHAT_wired", space: chat-wired }',
        'rules:',
        '  - { repositories: ["us-docker.pkg.dev/acme-prod/**"], team: payments }',
      ].join('\n'),
    });
    const data = Buffer.from(JSON.stringify(deniedAlert())).toString('base64');
    const ok = await handleAlertMessage(notifier, data, 'push-1', logger);
    expect(ok).toMatchObject({ outcome: 'handled', results: [{ status: 'delivered' }] });
    expect(server.acceptedOn('/v1/spaces/wiredAAA/messages')).toHaveLength(1);

    const bad = Buffer.from(JSON.stringify({ type: 'image-denied', image: {} })).toString('base64');
    const rejected = await handleAlertMessage(notifier, bad, 'push-2', logger);
    expect(rejected).toMatchObject({ outcome: 'rejected' });
    expect((rejected as { issues: string[] }).issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^image\.digest: /),
        expect.stringMatching(/^environment: /),
      ]),
    );
  });

  it('no webhook URL or secret part appears in any captured log line or alert record', async () => {
    expect(logLines.length).toBeGreaterThan(50);
    expect(logLines.some((l) => l.includes('alert delivered'))).toBe(true);
    expect(logLines.some((l) => l.includes('alert dead-lettered'))).toBe(true);
    const records = (await db.collection('alerts').get()).docs.map((d) => JSON.stringify(d.data()));
    expect(secretsUsed.length).toBeGreaterThan(20);
    for (const secret of secretsUsed) {
      for (const line of logLines) expect(line).not.toContain(secret);
      for (const rec of records) expect(rec).not.toContain(secret);
    }
    for (const line of logLines)
      expect(line).not.toMatch(/127\.0\.0\.1:\d+\/(v1\/spaces|services)/);
  });
});
