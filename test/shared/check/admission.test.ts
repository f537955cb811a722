import { describe, expect, it } from 'vitest';
import {
  admissionResponse,
  BREAKGLASS_ANNOTATION,
  gatekeeperResponse,
  parseAdmissionReview,
  shortImage,
} from '../../../shared/check/admission.js';
import { type CheckAnswer, decide } from '../../../shared/check/decide.js';
import { InvalidInputError } from '../../../shared/errors.js';
import { denyReason, record, settings, verdict } from './records.js';
import {
  asCronJob,
  asDeployment,
  CHARLIE,
  podReview,
  podWithInitReview,
  withAnnotations,
} from './workloads.js';

const allowAnswer = (image: string): CheckAnswer =>
  decide({
    image,
    digest: record().digest,
    environment: 'prod',
    record: record(),
    settings: settings(),
  });
const denyAnswer = (image: string): CheckAnswer =>
  decide({
    image,
    digest: record().digest,
    environment: 'prod',
    record: record({ verdicts: { prod: verdict({ decision: 'deny', reasons: [denyReason] }) } }),
    settings: settings(),
  });

describe('parseAdmissionReview', () => {
  it('reads the real Pod CREATE request (connaisseur fixture)', () => {
    const w = parseAdmissionReview(podReview());
    expect(w).toMatchObject({
      uid: '0c3331b6-1812-11ea-b3fc-02897404852e',
      kind: 'Pod',
      namespace: 'test-connaisseur',
      name: 'charlie-deployment-76fbf58b7d-',
      user: 'system:serviceaccount:kube-system:replicaset-controller',
      breakglass: false,
      dryRun: false,
    });
    expect(w.images).toEqual([
      { container: 'test-connaisseur', image: CHARLIE, role: 'container' },
    ]);
  });

  it('collects init containers from the real request with an init container', () => {
    const w = parseAdmissionReview(podWithInitReview());
    expect(w.images.map((i) => [i.role, i.image])).toEqual([
      ['initContainer', 'nginx'],
      ['container', CHARLIE],
    ]);
  });

  it('collects ephemeral containers (fixture Pod with a debug container added in memory)', () => {
    const review = podReview();
    review.request.object.spec.ephemeralContainers = [{ name: 'debugger', image: 'busybox:1.36' }];
    expect(parseAdmissionReview(review).images.map((i) => i.role)).toEqual([
      'container',
      'ephemeralContainer',
    ]);
  });

  it('reads a Deployment pod template (fixture Pod with init container wrapped in memory)', () => {
    const w = parseAdmissionReview(asDeployment(podWithInitReview()));
    expect(w.kind).toBe('Deployment');
    expect(w.name).toBe('charlie-deployment');
    expect(w.images.map((i) => i.image)).toEqual(['nginx', CHARLIE]);
  });

  it('reads a CronJob job template (fixture Pod wrapped in memory)', () => {
    const w = parseAdmissionReview(asCronJob(podWithInitReview()));
    expect(w.kind).toBe('CronJob');
    expect(w.images.map((i) => i.image)).toEqual(['nginx', CHARLIE]);
  });

  it('reads the breakglass annotation on the object or its pod template', () => {
    const pod = withAnnotations(podReview(), { [BREAKGLASS_ANNOTATION]: 'true' });
    expect(parseAdmissionReview(pod).breakglass).toBe(true);
    expect(parseAdmissionReview(asDeployment(pod)).breakglass).toBe(true);
    const off = withAnnotations(podReview(), { [BREAKGLASS_ANNOTATION]: 'yes' });
    expect(parseAdmissionReview(off).breakglass).toBe(false);
  });

  it('refuses a body that is not an AdmissionReview v1 or v1beta1, naming the field', () => {
    const bad = podReview();
    bad.apiVersion = 'admission.k8s.io/v2';
    expect(() => parseAdmissionReview(bad)).toThrow(InvalidInputError);
    expect(() => parseAdmissionReview(bad)).toThrow(/apiVersion/);
  });
});

describe('admissionResponse', () => {
  const workload = parseAdmissionReview(podWithInitReview());

  it('allows when every image is allowed and echoes the uid', () => {
    const out = admissionResponse(
      workload,
      workload.images.map((i) => ({ image: i.image, answer: allowAnswer(i.image) })),
      'none',
      'prod',
    );
    expect(out.allowed).toBe(true);
    expect(out.response).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: '0c3331b6-1812-11ea-b3fc-02897404852e', allowed: true },
    });
  });

  it('denies with 403 and a message naming each failing image and rule', () => {
    const out = admissionResponse(
      workload,
      [
        { image: 'nginx', answer: denyAnswer('nginx') },
        { image: CHARLIE, answer: allowAnswer(CHARLIE) },
      ],
      'none',
      'prod',
    );
    const response = (out.response as { response: Record<string, unknown> }).response;
    expect(response.allowed).toBe(false);
    expect(response.status).toMatchObject({ code: 403 });
    const message = (response.status as { message: string }).message;
    expect(message).toContain('nginx: vulnerabilities.fixable');
    expect(message).not.toContain(CHARLIE);
  });

  it('allows a used break-glass with short warnings, and denies a failed or forbidden one', () => {
    const answers = [{ image: 'nginx', answer: denyAnswer('nginx') }];
    const used = admissionResponse(workload, answers, 'used', 'prod');
    const r = (used.response as { response: { allowed: boolean; warnings: string[] } }).response;
    expect(r.allowed).toBe(true);
    expect(r.warnings[0]).toContain('break-glass used');
    expect(r.warnings.every((w) => w.length <= 120)).toBe(true);
    for (const state of ['failed', 'not-permitted'] as const) {
      const out = admissionResponse(workload, answers, state, 'prod');
      expect(out.allowed).toBe(false);
      expect(JSON.stringify(out.response)).toContain('break-glass');
    }
  });
});

describe('gatekeeperResponse', () => {
  it('answers one item per key with the decision as value and empty error', () => {
    const out = gatekeeperResponse([
      { key: CHARLIE, answer: allowAnswer(CHARLIE) },
      { key: 'bad ref', answer: null, error: 'invalid reference' },
    ]);
    expect(out).toMatchObject({
      response: {
        idempotent: true,
        items: [
          { key: CHARLIE, value: { decision: 'allow' }, error: '' },
          { key: 'bad ref', value: null, error: 'invalid reference' },
        ],
      },
    });
  });
});

describe('shortImage', () => {
  it('keeps the last path component and 12 digest digits', () => {
    expect(shortImage(CHARLIE)).toBe('charlie-image@sha256:91ac9b26df58');
    expect(shortImage('us-docker.pkg.dev/p/r/app:1.2')).toBe('app:1.2');
    expect(shortImage('nginx')).toBe('nginx');
  });
});
