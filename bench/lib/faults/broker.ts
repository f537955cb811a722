// The suite's Pub/Sub push delivery: envelopes posted to the function servers, failed deliveries redelivered with backoff until acknowledged or dead-lettered.
import { sleep } from '../../../scripts/lib/process.js';

export interface Delivery {
  topic: string;
  /** Base URL of the function server (or the fault proxy in front of it). */
  endpoint: string;
  messageId: string;
  publishTime: string;
  data: Buffer;
  attributes?: Record<string, string>;
  /**
   * A webhook instead of a push envelope: `data` is POSTed as is to `endpoint` + `path`. The
   * sender is a registry that retries a notification until it gets a 2xx, as Pub/Sub does.
   */
  http?: { path: string; headers: Record<string, string> };
  attempts: number;
  /** The round from which it may be delivered (again). */
  due: number;
}

export interface BrokerStats {
  posted: number;
  acknowledged: number;
  failed: number;
  /** Answers by status class (2xx, 4xx, 5xx, or `error` when no answer came). */
  statuses: Record<string, number>;
  /** The same per topic (`webhook` for the webhook channel). */
  byTopic: Record<string, Record<string, number>>;
  deadLettered: Delivery[];
}

export interface BrokerOptions {
  projectId: string;
  /** Deliveries before a message is dead-lettered: the subscription's max_delivery_attempts. */
  maxAttempts: number;
  /** The longest backoff, in rounds (Pub/Sub's maximum_backoff, compressed). */
  maxBackoffRounds: number;
  /** What a push waits for an answer: the subscription's ack deadline. */
  timeoutMs: number;
}

/**
 * Behaves as a push subscription with a dead-letter policy does: a 2xx acknowledges; anything
 * else (or no answer within the ack deadline) is redelivered after an exponential backoff, until
 * the attempts run out and the message goes to the dead-letter topic (kept here). Time is
 * counted in rounds, so a run does not wait Pub/Sub's real minutes of backoff.
 */
export class PushBroker {
  readonly stats: BrokerStats = {
    posted: 0,
    acknowledged: 0,
    failed: 0,
    statuses: {},
    byTopic: {},
    deadLettered: [],
  };
  /** Message ids acknowledged at least once, in the order of their first acknowledgement. */
  readonly acknowledgedIds = new Set<string>();
  private fresh: Delivery[] = [];
  private retries: Delivery[] = [];

  constructor(private readonly opts: BrokerOptions) {}

  /** Adds deliveries in the given order (first in, first delivered). */
  enqueue(...deliveries: Delivery[]): void {
    this.fresh.push(...deliveries);
  }

  /** Adds a delivery among the new ones at a place `random` picks (it arrives among them). */
  enqueueAmong(d: Delivery, random: () => number): void {
    this.fresh.splice(Math.floor(random() * (this.fresh.length + 1)), 0, d);
  }

  get pending(): number {
    return this.fresh.length + this.retries.length;
  }

  /** The next round's batch: redeliveries that are due first, then new deliveries. */
  take(round: number, batch: number): Delivery[] {
    const due = this.retries.filter((d) => d.due <= round).slice(0, batch);
    const dueSet = new Set(due);
    this.retries = this.retries.filter((d) => !dueSet.has(d));
    const fresh = this.fresh.splice(0, batch - due.length);
    return [...due, ...fresh];
  }

  /** Delivers a batch concurrently; failures are scheduled again or dead-lettered. */
  async deliver(round: number, batch: readonly Delivery[]): Promise<void> {
    await Promise.all(batch.map((d) => this.deliverOne(round, d)));
  }

  /** Delivers one message until it is acknowledged or dead-lettered (the clean run's path). */
  async deliverNow(d: Delivery): Promise<boolean> {
    for (;;) {
      if (await this.post(d)) return true;
      if (d.attempts >= this.opts.maxAttempts) {
        this.stats.deadLettered.push(d);
        return false;
      }
      await sleep(50);
    }
  }

  private async deliverOne(round: number, d: Delivery): Promise<void> {
    if (await this.post(d)) return;
    if (d.attempts >= this.opts.maxAttempts) {
      this.stats.deadLettered.push(d);
      return;
    }
    const backoff = Math.min(2 ** (d.attempts - 1), this.opts.maxBackoffRounds);
    this.retries.push({ ...d, due: round + backoff });
  }

  private async post(d: Delivery): Promise<boolean> {
    d.attempts += 1;
    this.stats.posted += 1;
    const { projectId } = this.opts;
    let status = 'error';
    try {
      const res = d.http
        ? await fetch(`${d.endpoint}${d.http.path}`, {
            method: 'POST',
            headers: d.http.headers,
            body: new Uint8Array(d.data),
            signal: AbortSignal.timeout(this.opts.timeoutMs),
          })
        : await fetch(`${d.endpoint}/projects/${projectId}/topics/${d.topic}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              message: {
                data: d.data.toString('base64'),
                messageId: d.messageId,
                publishTime: d.publishTime,
                ...(d.attributes ? { attributes: d.attributes } : {}),
              },
              subscription: `projects/${projectId}/subscriptions/${d.topic}-push`,
              deliveryAttempt: d.attempts,
            }),
            signal: AbortSignal.timeout(this.opts.timeoutMs),
          });
      await res.arrayBuffer();
      status = `${Math.floor(res.status / 100)}xx`;
    } catch {
      // no answer within the deadline, or the connection failed: Pub/Sub redelivers
    }
    this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1;
    const topic = this.stats.byTopic[d.topic] ?? {};
    topic[status] = (topic[status] ?? 0) + 1;
    this.stats.byTopic[d.topic] = topic;
    if (status === '2xx') {
      this.stats.acknowledged += 1;
      this.acknowledgedIds.add(d.messageId);
      return true;
    }
    this.stats.failed += 1;
    return false;
  }
}

/** A pull subscription on the Pub/Sub emulator, read through its REST API (the functions' effect topics). */
export async function pullMessages(
  pubsubHost: string,
  projectId: string,
  subscription: string,
): Promise<
  { messageId: string; publishTime: string; data: Buffer; attributes: Record<string, string> }[]
> {
  const base = `http://${pubsubHost}/v1/projects/${projectId}/subscriptions/${subscription}`;
  const res = await fetch(`${base}:pull`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ maxMessages: 1000, returnImmediately: true }),
  });
  if (!res.ok) throw new Error(`pull ${subscription}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as {
    receivedMessages?: {
      ackId: string;
      message: {
        data?: string;
        attributes?: Record<string, string>;
        messageId: string;
        publishTime: string;
      };
    }[];
  };
  const got = body.receivedMessages ?? [];
  if (got.length === 0) return [];
  // Acknowledged at once: from here the broker owns the delivery, as a push subscription would.
  const ack = await fetch(`${base}:acknowledge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ackIds: got.map((m) => m.ackId) }),
  });
  await ack.arrayBuffer();
  return got.map((m) => ({
    messageId: m.message.messageId,
    publishTime: m.message.publishTime,
    data: Buffer.from(m.message.data ?? '', 'base64'),
    attributes: m.message.attributes ?? {},
  }));
}
