// The local-exec script that dead-letters Eventarc subscriptions, run by bash against a stand-in gcloud that records its calls.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const script = fileURLToPath(
  new URL('../../infra/modules/clearance/scripts/attach-dead-letter.sh', import.meta.url),
);
const scratch = mkdtempSync(join(tmpdir(), 'clearance-dead-letter-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SUBSCRIPTION =
  'projects/p/subscriptions/eventarc-us-central1-clearance-reevaluate-123-sub-456';

/** A gcloud that appends each call to calls.log; `describe` prints the subscription after `emptyDescribes` empty answers. */
function fakeGcloud(dir: string, emptyDescribes: number): void {
  writeFileSync(
    join(dir, 'gcloud'),
    `#!/usr/bin/env bash
echo "$*" >> "${dir}/calls.log"
if [ "$1 $2 $3" = "eventarc triggers describe" ]; then
  n=$(grep -c "eventarc triggers describe" "${dir}/calls.log")
  if [ "$n" -gt ${emptyDescribes} ]; then echo "${SUBSCRIPTION}"; fi
fi
`,
  );
  chmodSync(join(dir, 'gcloud'), 0o755);
}

function run(dir: string, tries: number): ReturnType<typeof spawnSync> {
  return spawnSync('bash', ['-c', readFileSync(script, 'utf8')], {
    encoding: 'utf8',
    env: {
      PATH: `${dir}:${process.env.PATH ?? ''}`,
      HOME: process.env.HOME ?? scratch,
      PROJECT: 'p',
      TRIGGER: 'projects/p/locations/us-central1/triggers/clearance-reevaluate-123',
      DEAD_LETTER_TOPIC: 'projects/p/topics/clearance-reevaluate-dead-letter',
      MAX_ATTEMPTS: '10',
      PUBSUB_AGENT: 'service-42@gcp-sa-pubsub.iam.gserviceaccount.com',
      DESCRIBE_TRIES: String(tries),
      DESCRIBE_WAIT: '0',
    },
  });
}

describe('attach-dead-letter.sh', () => {
  it('finds the trigger subscription, sets its dead-letter policy and lets the Pub/Sub agent subscribe', () => {
    const dir = mkdtempSync(join(scratch, 'ok-'));
    fakeGcloud(dir, 1);
    const result = run(dir, 3);
    expect(result.stderr).not.toContain('no Pub/Sub subscription');
    expect(result.status).toBe(0);
    const calls = readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n');
    expect(calls).toEqual([
      'eventarc triggers describe projects/p/locations/us-central1/triggers/clearance-reevaluate-123 --project=p --format=value(transport.pubsub.subscription)',
      'eventarc triggers describe projects/p/locations/us-central1/triggers/clearance-reevaluate-123 --project=p --format=value(transport.pubsub.subscription)',
      `pubsub subscriptions update ${SUBSCRIPTION} --project=p --dead-letter-topic=projects/p/topics/clearance-reevaluate-dead-letter --max-delivery-attempts=10 --min-retry-delay=10s --max-retry-delay=600s`,
      `pubsub subscriptions add-iam-policy-binding ${SUBSCRIPTION} --project=p --member=serviceAccount:service-42@gcp-sa-pubsub.iam.gserviceaccount.com --role=roles/pubsub.subscriber`,
    ]);
    expect(result.stdout).toContain(`attached to ${SUBSCRIPTION} (max 10 deliveries)`);
  });

  it('fails, changing nothing, when the trigger never gets a subscription', () => {
    const dir = mkdtempSync(join(scratch, 'missing-'));
    fakeGcloud(dir, 99);
    const result = run(dir, 2);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      'no Pub/Sub subscription found for Eventarc trigger projects/p/locations/us-central1/triggers/clearance-reevaluate-123',
    );
    const calls = readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n');
    expect(calls).toHaveLength(2);
    expect(calls.every((c) => c.startsWith('eventarc triggers describe'))).toBe(true);
  });
});
