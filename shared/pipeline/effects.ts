// Side effects of a ledger change: messages to the verdicts, alerts and re-evaluation topics.
import type { PubSub } from '@google-cloud/pubsub';
import { type Alert, publishAlert } from '../alerts/alert.js';
import { type Finding, severityRank } from '../findings/finding.js';
import type { ImageRecord } from '../image-record.js';
import { imageDocId } from '../image-ref/image-ref.js';
import type { ReevaluateMessage, VerdictMessage } from '../messages.js';
import { expiryInstant, type Policy } from '../policy/policy.js';
import type { Reason } from '../verdict.js';

export type { VerdictMessage } from '../messages.js';

export type Effect =
  | { kind: 'verdict'; message: VerdictMessage }
  | { kind: 'alert'; alert: Alert }
  | { kind: 'reevaluate'; imageId: string };

export interface EffectPublisher {
  publish(effects: readonly Effect[]): Promise<void>;
}

export const TOP_FINDINGS = 10;

function alertImage(rec: ImageRecord) {
  return {
    registry: rec.registry,
    repository: rec.repository,
    digest: rec.digest,
    tags: rec.tags.slice(0, 100),
  };
}

/** Findings worst first, fixable before unfixable, then by id: what an owner should fix first. */
export function topFindings(findings: readonly Finding[], limit = TOP_FINDINGS): Finding[] {
  return [...findings]
    .sort(
      (a, b) =>
        severityRank(b.severity) - severityRank(a.severity) ||
        Number(b.fixState === 'fixed') - Number(a.fixState === 'fixed') ||
        a.id.localeCompare(b.id) ||
        a.package.localeCompare(b.package),
    )
    .slice(0, limit);
}

/**
 * Effects of moving from `previous` to `next`: attestImage hears of every decision change and of
 * deletion; owners hear of a new enforced denial and of a failed scan.
 */
export function computeEffects(
  previous: ImageRecord | null,
  next: ImageRecord,
  findings: readonly Finding[] | null,
  now: Date,
  policy?: Policy,
): Effect[] {
  const effects: Effect[] = [];
  const policyHash = Object.values(next.verdicts)[0]?.policyHash ?? null;
  const wasDeleted = previous?.state === 'deleted';
  if (next.state === 'deleted') {
    if (!wasDeleted && next.attestations.some((a) => !a.revokedAt)) {
      effects.push({
        kind: 'verdict',
        message: { imageId: next.id, cause: 'deleted', policyHash },
      });
    }
    return effects;
  }
  let changed = false;
  // One event, one alert: a scan that just failed is told once, naming where it now denies.
  const scanFailed = next.scan.status === 'failed' && previous?.scan.status !== 'failed';
  const deniedIn: string[] = [];
  for (const [env, v] of Object.entries(next.verdicts).sort(([a], [b]) => a.localeCompare(b))) {
    const before = previous?.verdicts[env];
    if (before?.decision === v.decision) continue;
    if (v.decision !== 'pending' || before) changed = true;
    if (v.decision === 'deny' && v.mode === 'enforce' && scanFailed) {
      deniedIn.push(env);
      continue;
    }
    if (v.decision === 'deny' && v.mode === 'enforce') {
      const denyReasons = v.reasons.filter((r) => r.level === 'deny');
      const top = findings
        ? topFindings(
            findings.filter((f) => f.fixState === 'fixed' || severityRank(f.severity) >= 4),
          )
        : [];
      effects.push({
        kind: 'alert',
        alert: {
          type: 'image-denied',
          image: alertImage(next),
          labels: next.labels,
          detectedAt: now.toISOString(),
          links: {},
          environment: env,
          ruleIds: [...new Set(denyReasons.map((r) => r.ruleId))].slice(0, 50),
          reasons: denyReasons
            .map((r) => (r.remediation ? `${r.message} — ${r.remediation}` : r.message))
            .slice(0, 20),
          findings: top.map((f) => ({
            id: f.id,
            package: f.package,
            installedVersion: f.installedVersion,
            fixedVersion: f.fixedVersion,
            severity: f.severity,
            fixState: f.fixState,
          })),
          totalFindings: findings?.length,
        } as Alert,
      });
    }
  }
  if (policy) effects.push(...expiringAlerts(previous, next, policy, now));
  effects.push(...graceEndingAlerts(previous, next, now));
  // A platform image's verdict feeds its indexes' verdicts.
  if (changed) {
    for (const parent of next.parents) {
      effects.push({
        kind: 'reevaluate',
        imageId: imageDocId(next.registry, next.repository, parent),
      });
    }
  }
  if (changed)
    effects.unshift({
      kind: 'verdict',
      message: { imageId: next.id, cause: 'verdict-changed', policyHash },
    });
  if (scanFailed) {
    effects.push({
      kind: 'alert',
      alert: {
        type: 'scan-failed',
        image: alertImage(next),
        labels: next.labels,
        detectedAt: now.toISOString(),
        links: {},
        scanner: next.scan.scanner ?? 'unknown',
        reason: next.scan.failureReason ?? 'scan failed',
        ...(deniedIn.length > 0 ? { deniedIn } : {}),
      } as Alert,
    });
  }
  return effects;
}

/** One alert per exception that newly shows as expiring soon on this image (the daily run finds them). */
function expiringAlerts(
  previous: ImageRecord | null,
  next: ImageRecord,
  policy: Policy,
  now: Date,
): Effect[] {
  const seen = new Set(
    Object.values(previous?.verdicts ?? {}).flatMap((v) =>
      v.reasons
        .filter((r) => r.ruleId === 'vulnerabilities.exception-expiring')
        .map((r) => r.message),
    ),
  );
  const out: Effect[] = [];
  const sent = new Set<string>();
  for (const [env, v] of Object.entries(next.verdicts)) {
    for (const r of v.reasons) {
      if (r.ruleId !== 'vulnerabilities.exception-expiring' || seen.has(r.message)) continue;
      const id = r.exception;
      const exception = [
        ...(policy.rules.vulnerabilities?.allowedCves ?? []),
        ...Object.values(policy.environments).flatMap(
          (e) => e.rules?.vulnerabilities?.allowedCves ?? [],
        ),
      ].find((x) => x.id === id);
      if (!id || !exception || sent.has(id)) continue;
      sent.add(id);
      out.push({
        kind: 'alert',
        alert: {
          type: 'exception-expiring',
          image: alertImage(next),
          labels: next.labels,
          detectedAt: now.toISOString(),
          links: {},
          environment: env,
          exception: {
            vulnerability: id,
            reason: exception.reason,
            owner: exception.owner,
            expiresAt: new Date(expiryInstant(exception.expires) - 1).toISOString(),
            ...(exception.scope?.repositories
              ? { scope: exception.scope.repositories.join(', ') }
              : {}),
          },
        } as Alert,
      });
    }
  }
  return out;
}

/** One alert per package whose fix grace newly shows as ending (the daily re-evaluation finds them 2 days ahead). */
function graceEndingAlerts(previous: ImageRecord | null, next: ImageRecord, now: Date): Effect[] {
  const key = (g: NonNullable<Reason['grace']>) =>
    `${g.package}\u0000${g.installedVersion}\u0000${g.endsOn}`;
  const seen = new Set<string>();
  for (const v of Object.values(previous?.verdicts ?? {})) {
    for (const r of v.reasons) {
      if (r.ruleId === 'vulnerabilities.fix-grace-ending' && r.grace) seen.add(key(r.grace));
    }
  }
  const out: Effect[] = [];
  for (const [env, v] of Object.entries(next.verdicts).sort(([a], [b]) => a.localeCompare(b))) {
    for (const r of v.reasons) {
      if (r.ruleId !== 'vulnerabilities.fix-grace-ending' || !r.grace || seen.has(key(r.grace)))
        continue;
      seen.add(key(r.grace));
      out.push({
        kind: 'alert',
        alert: {
          type: 'fix-grace-ending',
          image: alertImage(next),
          labels: next.labels,
          detectedAt: now.toISOString(),
          links: {},
          environment: env,
          grace: r.grace,
        } as Alert,
      });
    }
  }
  return out;
}

/** Where an owner can look at the image: the Cloud console for Google registries, and the deploy check's answer. */
export function alertLinks(
  image: { registry: string; repository: string; digest: string },
  checkUrl?: string,
): { console?: string; check?: string } {
  const links: { console?: string; check?: string } = {};
  const ar = /^([a-z0-9-]+)-docker\.pkg\.dev$/.exec(image.registry);
  const parts = image.repository.split('/');
  if (ar && parts.length >= 3) {
    const [project, repo, ...rest] = parts;
    links.console = `https://console.cloud.google.com/artifacts/docker/${project}/${ar[1]}/${repo}/${rest.map(encodeURIComponent).join('%2F')}/${image.digest}`;
  } else if (/^([a-z]+\.)?gcr\.io$/.test(image.registry) && parts.length >= 2) {
    const [project, ...rest] = parts;
    links.console = `https://console.cloud.google.com/gcr/images/${project}/global/${rest.join('/')}@${image.digest}`;
  }
  if (checkUrl) {
    links.check = `${checkUrl.replace(/\/$/, '')}/v1/check?image=${encodeURIComponent(`${image.registry}/${image.repository}@${image.digest}`)}`;
  }
  return links;
}

/** Publishes effects to their topics; throws on failure so the event is redelivered. Alerts get their links here. */
export function pubsubEffectPublisher(
  pubsub: () => Promise<PubSub>,
  topics: { alerts: string; verdicts: string; reevaluate: string },
  checkUrl?: string,
): EffectPublisher {
  return {
    async publish(effects) {
      if (effects.length === 0) return;
      const ps = await pubsub();
      await Promise.all(
        effects.map((e) => {
          switch (e.kind) {
            case 'verdict':
              return ps.topic(topics.verdicts).publishMessage({
                json: e.message satisfies VerdictMessage,
                attributes: { cause: e.message.cause },
              });
            case 'alert':
              // One wire format for every publisher of alerts: validated, with routing attributes.
              return publishAlert(ps.topic(topics.alerts), {
                ...e.alert,
                links: {
                  ...(e.alert.image ? alertLinks(e.alert.image, checkUrl) : {}),
                  ...e.alert.links,
                },
              });
            case 'reevaluate':
              return ps.topic(topics.reevaluate).publishMessage({
                json: { kind: 'image', imageId: e.imageId } satisfies ReevaluateMessage,
              });
            default: {
              const never: never = e;
              throw new Error(`unknown effect ${JSON.stringify(never)}`);
            }
          }
        }),
      );
    },
  };
}
