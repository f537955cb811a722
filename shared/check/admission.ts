// Kubernetes AdmissionReview (v1 and v1beta1) and Gatekeeper external-data formats: parse requests, collect images, build responses.
import { z } from 'zod';
import { parseInput } from '../parse-input.js';
import type { CheckAnswer } from './decide.js';

export const BREAKGLASS_ANNOTATION = 'alpha.image-policy.k8s.io/break-glass';
/** Optional free text kept with the break-glass record and alert. */
export const BREAKGLASS_REASON_ANNOTATION = 'clearance.dev/break-glass-reason';

const Container = z
  .object({ name: z.string().optional(), image: z.string().optional() })
  .passthrough();
const PodSpec = z
  .object({
    containers: z.array(Container).optional(),
    initContainers: z.array(Container).optional(),
    ephemeralContainers: z.array(Container).optional(),
  })
  .passthrough();
const Meta = z
  .object({
    name: z.string().optional(),
    generateName: z.string().optional(),
    namespace: z.string().optional(),
    annotations: z.record(z.string(), z.string()).nullish(),
  })
  .passthrough();
const Template = z.object({ metadata: Meta.optional(), spec: PodSpec.optional() }).passthrough();

/**
 * The versions read. v1beta1 is still sent by API servers when a webhook lists it first in
 * admissionReviewVersions; its request and response have the same fields as v1.
 */
export const ADMISSION_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;
export type AdmissionVersion = (typeof ADMISSION_VERSIONS)[number];

export const AdmissionReview = z.object({
  apiVersion: z.enum(ADMISSION_VERSIONS, {
    message: `must be ${ADMISSION_VERSIONS.join(' or ')}`,
  }),
  kind: z.literal('AdmissionReview'),
  request: z
    .object({
      uid: z.string().min(1),
      kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
      namespace: z.string().optional(),
      name: z.string().optional(),
      operation: z.string(),
      userInfo: z.object({ username: z.string().optional() }).passthrough().optional(),
      object: z
        .object({
          kind: z.string().optional(),
          metadata: Meta.optional(),
          spec: z
            .object({
              template: Template.optional(),
              jobTemplate: z
                .object({
                  spec: z.object({ template: Template.optional() }).passthrough().optional(),
                })
                .passthrough()
                .optional(),
            })
            .passthrough()
            .optional(),
        })
        .passthrough()
        .nullish(),
      dryRun: z.boolean().optional(),
    })
    .passthrough(),
});
export type AdmissionReview = z.infer<typeof AdmissionReview>;

export const WORKLOAD_KINDS = [
  'Pod',
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'CronJob',
  'ReplicationController',
] as const;

export interface Workload {
  /** The AdmissionReview version asked in, answered in the same; absent means v1. */
  apiVersion?: AdmissionVersion;
  uid: string;
  kind: string;
  namespace: string | null;
  name: string | null;
  user: string | null;
  images: {
    container: string;
    image: string;
    role: 'container' | 'initContainer' | 'ephemeralContainer';
  }[];
  breakglass: boolean;
  breakglassReason: string | null;
  /** The API server's dry run: the webhook must have no side effects (sideEffects: NoneOnDryRun). */
  dryRun: boolean;
}

export function parseAdmissionReview(body: unknown): Workload {
  const review = parseInput(AdmissionReview, body, 'AdmissionReview');
  const req = review.request;
  const obj = req.object ?? {};
  const kind = req.kind.kind;
  let spec: z.infer<typeof PodSpec> | undefined;
  let templateMeta: z.infer<typeof Meta> | undefined;
  switch (kind) {
    case 'Pod':
      spec = PodSpec.safeParse((obj as { spec?: unknown }).spec).data;
      break;
    case 'CronJob':
      spec = obj.spec?.jobTemplate?.spec?.template?.spec;
      templateMeta = obj.spec?.jobTemplate?.spec?.template?.metadata;
      break;
    default:
      spec = obj.spec?.template?.spec;
      templateMeta = obj.spec?.template?.metadata;
  }
  const images: Workload['images'] = [];
  const add = (
    list: z.infer<typeof Container>[] | undefined,
    role: Workload['images'][number]['role'],
  ) => {
    for (const c of list ?? [])
      if (c.image) images.push({ container: c.name ?? '?', image: c.image, role });
  };
  add(spec?.initContainers, 'initContainer');
  add(spec?.containers, 'container');
  add(spec?.ephemeralContainers, 'ephemeralContainer');
  const annotations = {
    ...(templateMeta?.annotations ?? {}),
    ...(obj.metadata?.annotations ?? {}),
  };
  return {
    apiVersion: review.apiVersion,
    uid: req.uid,
    kind,
    namespace: req.namespace ?? obj.metadata?.namespace ?? null,
    name: req.name ?? obj.metadata?.name ?? obj.metadata?.generateName ?? null,
    user: req.userInfo?.username ?? null,
    images,
    breakglass: annotations[BREAKGLASS_ANNOTATION] === 'true',
    breakglassReason: annotations[BREAKGLASS_REASON_ANNOTATION] ?? null,
    dryRun: req.dryRun === true,
  };
}

const WARNING_MAX = 120;
const short = (s: string) => (s.length > WARNING_MAX ? `${s.slice(0, WARNING_MAX - 1)}…` : s);

/** `charlie-image@sha256:91ac9b26df58` for a long reference: warnings must stay short and still say which image. */
export function shortImage(image: string): string {
  const name = image.slice(
    image.lastIndexOf('/', image.indexOf('@') >= 0 ? image.indexOf('@') : undefined) + 1,
  );
  return name.replace(/@sha256:([0-9a-f]{12})[0-9a-f]+$/, '@sha256:$1');
}

/**
 * What a break-glass annotation did: none (absent or nothing denied), used (recorded, allows),
 * not-permitted (the environment forbids it), dry-run (the API server's dry run: allows, not
 * recorded), failed (could not be recorded: denies, since an unaudited break-glass is not allowed).
 */
export const BREAKGLASS_STATES = ['none', 'used', 'not-permitted', 'dry-run', 'failed'] as const;
export type BreakglassState = (typeof BREAKGLASS_STATES)[number];

export interface AdmissionOutcome {
  allowed: boolean;
  response: Record<string, unknown>;
}

function breakglassNote(
  state: BreakglassState,
  environment: string,
  denied: number,
): string | null {
  switch (state) {
    case 'none':
      return null;
    case 'used':
      return `break-glass used: ${denied} image(s) would be denied; this is audited and alerted`;
    case 'dry-run':
      return `break-glass would admit ${denied} denied image(s) (dry run: not recorded)`;
    case 'not-permitted':
      return `break-glass is not permitted in environment ${environment}`;
    case 'failed':
      return 'break-glass could not be recorded, so it was not applied';
    default: {
      const never: never = state;
      throw new Error(`unknown break-glass state ${String(never)}`);
    }
  }
}

/** Builds the AdmissionReview response: deny names each failing image and rule; dry-run and breakglass allow with warnings. */
export function admissionResponse(
  workload: Workload,
  answers: { image: string; answer: CheckAnswer }[],
  breakglass: BreakglassState,
  environment: string,
): AdmissionOutcome {
  const denied = answers.filter((a) => a.answer.decision === 'deny');
  const warnings: string[] = [];
  for (const a of answers) {
    for (const r of a.answer.reasons)
      if (r.level === 'warn' || a.answer.decision === 'deny')
        warnings.push(short(`${r.ruleId}: ${shortImage(a.image)}: ${r.message}`));
  }
  const allowed = denied.length === 0 || breakglass === 'used' || breakglass === 'dry-run';
  const note = denied.length > 0 ? breakglassNote(breakglass, environment, denied.length) : null;
  const response: Record<string, unknown> = { uid: workload.uid, allowed };
  if (!allowed) {
    const lines = denied.map(
      (d) =>
        `${d.image}: ${
          d.answer.reasons
            .filter((r) => r.level === 'deny')
            .map((r) => `${r.ruleId} (${r.message})`)
            .join('; ') || 'denied'
        }`,
    );
    response.status = {
      code: 403,
      reason: 'Forbidden',
      message: `Clearance denied ${denied.length} image(s) in ${environment}: ${lines.join(' | ')}${
        note ? ` | ${note}` : ''
      }`,
    };
  }
  const warn = note && allowed ? [short(note), ...warnings] : warnings;
  if (allowed && warn.length > 0) response.warnings = warn.slice(0, 10);
  return {
    allowed,
    response: {
      apiVersion: workload.apiVersion ?? 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response,
    },
  };
}

export const GatekeeperRequest = z.object({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  request: z.object({ keys: z.array(z.string().max(1024)).max(1000) }),
});

/** Gatekeeper external data provider answer: one item per key, the decision as its value. */
export function gatekeeperResponse(
  items: { key: string; answer: CheckAnswer | null; error?: string }[],
): Record<string, unknown> {
  return {
    apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
    kind: 'ProviderResponse',
    response: {
      idempotent: true,
      items: items.map(({ key, answer, error }) => ({
        key,
        value: answer
          ? {
              decision: answer.decision,
              digest: answer.digest,
              mode: answer.mode,
              reasons: answer.reasons.map((r) => `${r.ruleId}: ${r.message}`),
            }
          : null,
        // Errors are for keys that could not be judged; a denial is a value, which the constraint's Rego checks.
        error: error ?? '',
      })),
    },
  };
}
