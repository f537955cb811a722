// The admission and break-glass state machine: check every image of a workload, record a permitted break-glass, answer the AdmissionReview.
import { errorMessage, InvalidInputError } from '../errors.js';
import type { Caller } from '../http/auth.js';
import type { HttpContext, HttpRequestLike, HttpResult } from '../http/http-function.js';
import { imageDocId, parseImageRef } from '../image-ref/image-ref.js';
import { admissionResponse, type BreakglassState, parseAdmissionReview } from './admission.js';
import type { BreakglassEvent } from './breakglass.js';
import type { CheckDeps } from './check-deps.js';
import { CHECK_RULES, type CheckAnswer } from './decide.js';

function refParts(answer: CheckAnswer): BreakglassEvent['denied'][number]['ref'] {
  if (!answer.digest) return null;
  try {
    const ref = parseImageRef(answer.image);
    return { registry: ref.registry, repository: ref.repository, digest: answer.digest };
  } catch {
    return null;
  }
}

function inLedger(answer: CheckAnswer): boolean {
  return (
    answer.digest !== null &&
    !answer.reasons.some(
      (r) =>
        r.ruleId === CHECK_RULES.unknownImage ||
        r.ruleId === CHECK_RULES.unavailable ||
        r.ruleId === CHECK_RULES.invalidReference,
    )
  );
}

function safeImageId(answer: CheckAnswer): string | null {
  try {
    const ref = parseImageRef(answer.image);
    return answer.digest ? imageDocId(ref.registry, ref.repository, answer.digest) : null;
  } catch {
    return null;
  }
}

/** POST /admission: a denied workload is admitted only by a permitted, durably recorded break-glass. */
export async function admission(
  req: HttpRequestLike,
  d: CheckDeps,
  env: string,
  caller: Caller,
  ctx: HttpContext,
): Promise<HttpResult> {
  if (req.method !== 'POST') throw new InvalidInputError('use POST');
  const workload = parseAdmissionReview(req.body);
  const images = workload.images.map((i) => i.image);
  const answers = await d.service.checkAll(images, env);
  const judged = images.map((image, i) => ({ image, answer: answers[i] as CheckAnswer }));
  const denied = judged.filter((j) => j.answer.decision === 'deny');
  let state: BreakglassState = 'none';
  if (denied.length > 0 && workload.breakglass) {
    const settings = await d.service.admissionSettings().catch(() => null);
    if (!settings?.environments[env]?.breakglass) state = 'not-permitted';
    else if (workload.dryRun) state = 'dry-run';
    else {
      try {
        await d.breakglass.record({
          uid: workload.uid,
          environment: env,
          actor: workload.user ?? caller.id,
          caller: caller.id,
          workload: { kind: workload.kind, namespace: workload.namespace, name: workload.name },
          denied: denied.map((j) => ({
            image: j.image,
            answer: j.answer,
            ref: refParts(j.answer),
            imageId: inLedger(j.answer) ? safeImageId(j.answer) : null,
          })),
          justification: workload.breakglassReason,
          at: ctx.now,
        });
        state = 'used';
        ctx.logger.warn('break-glass used', {
          uid: workload.uid,
          environment: env,
          namespace: workload.namespace,
          name: workload.name,
          images: denied.map((j) => j.image),
        });
      } catch (err) {
        state = 'failed';
        ctx.logger.error('break-glass could not be recorded; denying', {
          err,
          reason: errorMessage(err),
        });
      }
    }
  }
  const outcome = admissionResponse(workload, judged, state, env);
  ctx.logger.info('admission', {
    uid: workload.uid,
    kind: workload.kind,
    namespace: workload.namespace,
    allowed: outcome.allowed,
    breakglass: state,
    images: images.length,
  });
  return { status: 200, body: outcome.response };
}
