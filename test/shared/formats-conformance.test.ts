// Conformance of every reader with files written by the tools themselves (issue 14: one block per point; sources in test/fixtures/real-world/SOURCES.md).
import { describe, expect, it } from 'vitest';
import { admissionResponse, parseAdmissionReview } from '../../shared/check/admission.js';
import { decide } from '../../shared/check/decide.js';
import { InvalidInputError } from '../../shared/errors.js';
import { normaliseDistribution, normaliseHarbor } from '../../shared/events/registry-events.js';
import { findingsFromVulnerabilityOccurrence } from '../../shared/findings/container-analysis.js';
import type { VexStatement } from '../../shared/findings/finding.js';
import { parseGrype } from '../../shared/findings/grype.js';
import { parseOpenVex } from '../../shared/findings/openvex.js';
import { parseReport } from '../../shared/findings/reports.js';
import {
  canonicalImageName,
  parseImageRef,
  referenceFromPurl,
} from '../../shared/image-ref/image-ref.js';
import { evaluate } from '../../shared/policy/evaluate.js';
import { parsePolicy, policyHash } from '../../shared/policy/policy.js';
import { productKeys } from '../../shared/policy/store/vex-store.js';
import { matchProduct, packageNames, VexIndex } from '../../shared/policy/vex.js';
import {
  provenanceFromBuildOccurrence,
  provenanceFromStatement,
  readProvenance,
} from '../../shared/provenance/provenance.js';
import { record, settings } from './check/records.js';
import { image, NOW } from './policy/helpers.js';

/** VEX counts only when signed (docs/trust.md): these format tests sign as one trusted signer. */
const SIGNED = new Map([['conformance', 0]]);

import { fixture } from './real-world-fixtures.js';

type Json = Record<string, unknown>;

function thrown(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return err as InvalidInputError;
  }
  throw new Error('expected an InvalidInputError');
}

const UNTAGGED_DIGEST = 'sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4';

describe('1. Harbor push or delete of an untagged artifact (digest in resources[].tag)', () => {
  it('harbor-push-artifact-untagged.json (Harbor docs): one push by digest, no tag', () => {
    expect(normaliseHarbor(fixture('registry/harbor-push-artifact-untagged.json'))).toEqual({
      kind: 'registry-events',
      events: [
        {
          action: 'push',
          registry: 'localhost',
          repository: 'harbor/alpine',
          digest: UNTAGGED_DIGEST,
          tag: null,
          source: 'harbor',
          occurredAt: '2023-04-03T06:04:53.000Z',
        },
      ],
    });
  });

  it('the same untagged artifact deleted (DELETE_ARTIFACT carries the same resource shape): a delete by digest', () => {
    const del = { ...fixture<Json>('registry/harbor-push-artifact-untagged.json') };
    del.type = 'DELETE_ARTIFACT';
    const out = normaliseHarbor(del);
    expect(out).toMatchObject({
      kind: 'registry-events',
      events: [{ action: 'delete', digest: UNTAGGED_DIGEST, tag: null }],
    });
  });

  it('harbor-delete-artifact.json (Harbor docs): a tagged delete keeps its tag', () => {
    expect(normaliseHarbor(fixture('registry/harbor-delete-artifact.json'))).toMatchObject({
      kind: 'registry-events',
      events: [{ action: 'delete', tag: '3.8', repository: 'harbor/alpine' }],
    });
  });

  it('a digest in tag that is not the resource digest is refused, not read as a tag', () => {
    const bad = fixture<{ event_data: { resources: Json[] } }>(
      'registry/harbor-push-artifact-untagged.json',
    );
    (bad.event_data.resources[0] as Json).tag = `sha256:${'0'.repeat(64)}`;
    expect(thrown(() => normaliseHarbor(bad)).message).toMatch(/is a digest other than/);
  });
});

describe('1 (distribution). The same untagged push and delete from docker-registry 2.8, captured here', () => {
  const digest = 'sha256:936724b2c18ad72c98fb6597fdc56775900f428cd0bfef9071690dfbdada579c';

  it('distribution-2.8-untagged-push.captured.json: a push by digest, no tag', () => {
    expect(
      normaliseDistribution(fixture('registry/distribution-2.8-untagged-push.captured.json')),
    ).toEqual([
      {
        action: 'push',
        registry: '127.0.0.1:45731',
        repository: 'team/app',
        digest,
        tag: null,
        source: 'distribution',
        eventId: '71e647cf-b4ef-444f-b892-6dc6ccb43d8c',
        occurredAt: '2026-12-01T01:31:27.550Z',
      },
    ]);
  });

  it('distribution-2.8-delete-by-digest.captured.json: a delete by digest', () => {
    expect(
      normaliseDistribution(fixture('registry/distribution-2.8-delete-by-digest.captured.json')),
    ).toMatchObject([{ action: 'delete', repository: 'team/app', digest, tag: null }]);
  });
});

describe('2. Harbor REPLICATION, TAG_RETENTION and Harbor 1.x pushImage', () => {
  it('harbor-replication.json and harbor-tag-retention.json (Harbor docs): ignored, not refused', () => {
    expect(normaliseHarbor(fixture('registry/harbor-replication.json'))).toEqual({
      kind: 'ignored',
      type: 'REPLICATION',
    });
    expect(normaliseHarbor(fixture('registry/harbor-tag-retention.json'))).toEqual({
      kind: 'ignored',
      type: 'TAG_RETENTION',
    });
  });

  it('harbor-1x-push-image.json (Harbor 1.x format): recorded as a push', () => {
    expect(normaliseHarbor(fixture('registry/harbor-1x-push-image.json'))).toEqual({
      kind: 'registry-events',
      events: [
        {
          action: 'push',
          registry: 'harbor.example.com',
          repository: 'library/app',
          digest: 'sha256:b4758aaed11c155a476b9857e1178f157759c99cb04c907a04993f5481eff848',
          tag: '2.1.6',
          source: 'harbor',
          occurredAt: '2020-02-25T14:24:48.000Z',
        },
      ],
    });
  });

  it('a push without a repository is still refused with the reason', () => {
    const p = fixture<{ event_data: Json }>('registry/harbor-push-artifact-untagged.json');
    delete p.event_data.repository;
    expect(thrown(() => normaliseHarbor(p)).message).toMatch(/needs event_data.repository/);
  });
});

describe('3. Sigstore bundles v0.1–v0.3 are a provenance format (read, never verified here)', () => {
  it('bundle-v0.1-slsa-v0.2-npm.sigstore.json (sigstore-go): the SLSA v0.2 statement in the DSSE envelope', () => {
    const r = readProvenance(fixture('sigstore/bundle-v0.1-slsa-v0.2-npm.sigstore.json'));
    expect(r).toMatchObject({
      container: 'sigstore-bundle',
      bundleMediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
      signatureVerified: false,
      predicateType: 'https://slsa.dev/provenance/v0.2',
      provenance: {
        builderId: 'https://github.com/actions/runner',
        sourceRepository: 'https://github.com/sigstore/sigstore-js',
        source: 'slsa',
      },
    });
    // An npm package, named by a purl with a sha512 digest: nothing an image ledger can place.
    expect(r.subjects).toEqual([
      { name: 'pkg:npm/sigstore@1.3.0', digest: expect.stringMatching(/^sha512:/) },
    ]);
  });

  it('bundle-v0.1-slsa-v1-npm.sigstore.json (sigstore-go): SLSA v1 in a bundle', () => {
    const r = readProvenance(fixture('sigstore/bundle-v0.1-slsa-v1-npm.sigstore.json'));
    expect(r.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(r.provenance.sourceRepository).toBe('https://github.com/sigstore/sigstore-js');
    expect(r.signatureVerified).toBe(false);
  });

  it.each([
    ['sigstore/bundle-v0.2-dsse-npm-publish.sigstore.json', 'version=0.2'],
    ['sigstore/bundle-v0.3-dsse-npm-publish.sigstore.json', 'version=0.3'],
  ])(
    '%s (sigstore-js): the bundle is read; its npm publish predicate is refused as not SLSA',
    (file, version) => {
      const bundle = fixture<Json>(file);
      expect(bundle.mediaType).toContain(version);
      expect(thrown(() => readProvenance(bundle)).message).toMatch(
        /^invalid Sigstore bundle dsseEnvelope: invalid in-toto statement: predicateType "https:\/\/github.com\/npm\/attestation\/tree\/main\/specs\/publish\/v0.1" is not SLSA provenance/,
      );
    },
  );

  it('bundle-v0.3-message-signature.sigstore.json (sigstore-go, bundle.v0.3+json): a blob signature carries no provenance', () => {
    expect(
      thrown(() => readProvenance(fixture('sigstore/bundle-v0.3-message-signature.sigstore.json')))
        .message,
    ).toMatch(/messageSignature\), not an in-toto statement/);
  });

  it('a bundle of an unknown version or without verification material is refused by the schema', () => {
    const b = fixture<Json>('sigstore/bundle-v0.1-slsa-v0.2-npm.sigstore.json');
    expect(
      thrown(() =>
        readProvenance({ ...b, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=9' }),
      ).message,
    ).toMatch(/invalid Sigstore bundle: mediaType/);
    const { verificationMaterial: _v, ...noMaterial } = b;
    expect(thrown(() => readProvenance(noMaterial)).message).toMatch(/verificationMaterial/);
  });

  it('parseReport does not claim a bundle: its error names provenance among the formats', () => {
    expect(
      thrown(() => parseReport(fixture('sigstore/bundle-v0.1-slsa-v0.2-npm.sigstore.json')))
        .message,
    ).toMatch(/Sigstore bundle/);
  });
});

describe('4. OpenVEX components given only by identifiers', () => {
  it('openvex-identifiers-only.json (OpenVEX spec form): products and subcomponents read from identifiers', () => {
    const { vex } = parseOpenVex(fixture('vex/openvex-identifiers-only.json'));
    expect(vex).toHaveLength(1);
    expect(vex[0]?.products).toEqual([
      'pkg:oci/app@sha256%3A1111111111111111111111111111111111111111111111111111111111111111?repository_url=registry.example.com%2Fteam%2Fapp',
    ]);
    expect(vex[0]?.subcomponents).toEqual([
      'pkg:apk/alpine/busybox@1.36.1-r5',
      'cpe:2.3:a:busybox:busybox:1.36.1:*:*:*:*:*:*:*',
    ]);
    const index = new VexIndex(
      vex.map((v) => ({ ...v, signer: 'conformance' })),
      image({
        registry: 'registry.example.com',
        repository: 'team/app',
        digest: `sha256:${'1'.repeat(64)}`,
      }),
      { apply: true, matchRepository: false },
      SIGNED,
    );
    expect(index.clears({ id: 'CVE-2023-42363', aliases: [], package: 'busybox' })).toBe(true);
    expect(index.clears({ id: 'CVE-2023-42363', aliases: [], package: 'ssl_client' })).toBe(false);
  });

  it('a component with neither @id nor identifiers is still refused', () => {
    const doc = fixture<{ statements: { products: Json[] }[] }>(
      'vex/openvex-identifiers-only.json',
    );
    doc.statements[0]?.products.push({ hashes: {} });
    expect(thrown(() => parseOpenVex(doc)).message).toMatch(/an @id or identifiers/);
  });
});

describe('5. Docker Hub names (index.docker.io, registry-1.docker.io, library/) compared as one', () => {
  const trivyImage = image({ registry: 'docker.io', repository: 'aquasec/trivy' });

  it('trivy-oci.openvex.json (Trivy published VEX): index.docker.io products match docker.io images and are keyed where lookups read', () => {
    const { vex } = parseOpenVex(fixture('vex/trivy-oci.openvex.json'));
    const hub = vex[0]?.products.find((p) => p.includes('index.docker.io')) as string;
    expect(hub).toBe('pkg:oci/trivy?repository_url=index.docker.io%2Faquasec%2Ftrivy');
    expect(matchProduct(hub, trivyImage, true)).toBe(true);
    // The store key is the name the image lookup asks for (firestoreVexStore.forImage).
    expect(productKeys(hub)).toContain('docker.io/aquasec/trivy');
    const index = new VexIndex(
      vex.map((v) => ({ ...v, signer: 'conformance' })),
      trivyImage,
      { apply: true, matchRepository: true },
      SIGNED,
    );
    expect(index.clears({ id: 'CVE-2023-42363', aliases: [], package: 'busybox' })).toBe(true);
  });

  it('one rule for every spelling', () => {
    for (const name of [
      'nginx',
      'docker.io/nginx',
      'index.docker.io/library/nginx',
      'registry-1.docker.io/nginx',
      'Docker.IO/library/nginx',
    ]) {
      expect(canonicalImageName(name)).toBe('docker.io/library/nginx');
    }
    expect(canonicalImageName('index.docker.io/aquasec/*')).toBe('docker.io/aquasec/*');
    expect(canonicalImageName('gcr.io/p/app')).toBe('gcr.io/p/app');
    expect(canonicalImageName('**')).toBe('**');
    expect(parseImageRef('index.docker.io/nginx:1').name).toBe('docker.io/library/nginx');
  });

  it('policy repository globs written with a Docker Hub alias match the image', () => {
    const rules = { trustedRepositories: ['index.docker.io/aquasec/trivy'] };
    const p = parsePolicy(
      JSON.stringify({ apiVersion: 'clearance/v1', environments: { prod: {} }, rules }),
      'json',
    );
    expect(p.rules.trustedRepositories).toEqual(['docker.io/aquasec/trivy']);
    const v = evaluate({
      image: trivyImage,
      findings: [],
      vex: [],
      policy: p,
      policyHash: policyHash(p),
      now: NOW,
    }).prod;
    expect(v?.reasons.map((r) => r.ruleId)).not.toContain('trusted-repository');
  });
});

describe('6. VEX subcomponents of language packages compared by package identity', () => {
  const { vex } = parseOpenVex(fixture('vex/trivy-golang.openvex.json'));

  it('trivy-golang.openvex.json (Trivy published VEX): Go subcomponents keep their module path', () => {
    const netStatement = vex.find((s) => s.vulnerability === 'GO-2023-2102') as VexStatement;
    expect(netStatement.subcomponents).toEqual(['pkg:golang/golang.org/x/net']);
    expect(packageNames('pkg:golang/golang.org/x/net')).toEqual(['golang.org/x/net']);
    expect(packageNames('pkg:golang/helm.sh/helm/v3')).toEqual(['helm.sh/helm/v3']);
    // The statement names the trivy binary; re-targeted here at an image digest so VexIndex applies it.
    const digest = `sha256:${'d'.repeat(64)}`;
    const index = new VexIndex(
      [
        {
          ...netStatement,
          products: [`docker.io/aquasec/trivy@${digest}`],
          signer: 'conformance',
        },
      ],
      image({ registry: 'docker.io', repository: 'aquasec/trivy', digest }),
      { apply: true, matchRepository: false },
      SIGNED,
    );
    // Trivy and Grype name Go findings by module path.
    expect(index.clears({ id: 'CVE-2023-39325', aliases: [], package: 'golang.org/x/net' })).toBe(
      true,
    );
    // Another module whose last segment is also "net" is a different package.
    expect(index.clears({ id: 'CVE-2023-39325', aliases: [], package: 'net' })).toBe(false);
    expect(
      index.clears({ id: 'CVE-2023-39325', aliases: [], package: 'github.com/acme/net' }),
    ).toBe(false);
  });

  it('npm scopes and Maven coordinates as Trivy and Grype write them', () => {
    expect(packageNames('pkg:npm/%40angular/core@16.0.0')).toEqual(['@angular/core']);
    expect(packageNames('pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1')).toEqual([
      'org.apache.logging.log4j:log4j-core',
      'log4j-core',
    ]);
    expect(packageNames('pkg:deb/debian/tar@1.34')).toEqual(['tar']);
  });
});

describe('7. BuildKit provenance (docker buildx --provenance)', () => {
  it('buildkit-slsa-v0.2-git-context.json (BuildKit documented form): the #commit fragment is not part of the repository', () => {
    const r = provenanceFromStatement(fixture('slsa/buildkit-slsa-v0.2-git-context.json'));
    expect(r.provenance.sourceRepository).toBe('https://github.com/moby/buildkit');
    expect(r.provenance.builderId).toBe('https://github.com/docker/buildx/actions/runs/3709599520');
    // Subjects named by pkg:docker purls become image references.
    const subject = r.subjects[0];
    expect(subject?.name).toBe(
      'pkg:docker/registry.example.com/team/app@v1.2.0?platform=linux%2Famd64',
    );
    expect(referenceFromPurl(subject?.name ?? '')).toBe('registry.example.com/team/app:v1.2.0');
    expect(parseImageRef(referenceFromPurl(subject?.name ?? '') ?? '').name).toBe(
      'registry.example.com/team/app',
    );
  });

  it('buildkit-slsa-v0.2-mode-min-docs.json (BuildKit docs): the placeholder subject names no image', () => {
    const r = provenanceFromStatement(fixture('slsa/buildkit-slsa-v0.2-mode-min-docs.json'));
    expect(r.provenance.buildType).toBe('https://mobyproject.org/buildkit@v1');
    expect(r.provenance.sourceRepository).toBeNull();
    const ref = referenceFromPurl(r.subjects[0]?.name ?? '') ?? '';
    expect(() => parseImageRef(ref)).toThrow(InvalidInputError);
  });

  it('pkg:oci purls and digest versions', () => {
    expect(referenceFromPurl('pkg:docker/alpine@3.17?platform=linux%2Famd64')).toBe('alpine:3.17');
    expect(referenceFromPurl(`pkg:docker/acme/app@sha256%3A${'a'.repeat(64)}`)).toBe(
      `acme/app@sha256:${'a'.repeat(64)}`,
    );
    expect(
      referenceFromPurl(
        `pkg:oci/app@sha256%3A${'a'.repeat(64)}?repository_url=ghcr.io%2Facme%2Fapp`,
      ),
    ).toBe(`ghcr.io/acme/app@sha256:${'a'.repeat(64)}`);
    expect(referenceFromPurl('pkg:npm/sigstore@1.3.0')).toBeNull();
  });
});

describe('8. Cloud Build SLSA provenance with materials[0].uri …/commit/<sha>', () => {
  it('gcloud-container-github-commit-url-material.json (slsa-verifier testdata): the repository comes from the commit URL', () => {
    const occ = fixture<{ provenance_summary: { provenance: Json[] } }>(
      'containeranalysis/gcloud-container-github-commit-url-material.json',
    ).provenance_summary.provenance[0];
    const r = provenanceFromBuildOccurrence(occ);
    expect(r.provenance).toEqual({
      builderId: 'https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.2',
      sourceRepository: 'https://github.com/laurentsimon/gcb-tests',
      buildType: 'https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.2',
      source: 'cloud-build',
      signer: null,
    });
  });
});

describe('9. The cosign vulnerability spec example ({"predicate": …}, no predicateType)', () => {
  it('cosign-vuln-spec-example-no-predicatetype.json (cosign spec): read as a cosign vuln report around Trivy JSON', () => {
    const r = parseReport(fixture('scanners/cosign-vuln-spec-example-no-predicatetype.json'));
    expect(r.format).toBe('cosign-vuln');
    expect(r.createdAt).toBe('2021-08-06T17:50:50.52Z');
    expect(r.findings.map((f) => f.id)).toContain('CVE-2021-28831');
    expect(r.subjects).toContain(
      'alpine@sha256:d9459083f962de6bd980ae6a05be2a4cf670df6a1d898157bceb420342bec280',
    );
  });

  it('a bare predicate with an empty result is still refused (no scan happened)', () => {
    const doc = fixture<{ predicate: { scanner: Json } }>(
      'scanners/cosign-vuln-spec-example-no-predicatetype.json',
    );
    doc.predicate.scanner.result = {};
    expect(thrown(() => parseReport(doc)).message).toMatch(/neither Trivy nor Grype/);
  });
});

describe('11. Unknown severity with a fix available', () => {
  const findings = parseGrype(
    fixture('scanners/grype-debian-image-many-vulns-incl-CVE-2005-2541.json'),
  ).findings;

  function verdict(vulnerabilities: Json) {
    const p = parsePolicy(
      JSON.stringify({
        apiVersion: 'clearance/v1',
        environments: { prod: {} },
        rules: { vulnerabilities },
      }),
      'json',
    );
    return evaluate({
      image: image(),
      findings,
      vex: [],
      policy: p,
      policyHash: policyHash(p),
      now: NOW,
    }).prod;
  }

  it('grype-debian-image-many-vulns (Grype): libzstd1 has fixable findings of Unknown severity', () => {
    const unknown = findings.filter((f) => f.severity === 'UNSPECIFIED' && f.fixState === 'fixed');
    expect(unknown.map((f) => `${f.id} ${f.package}`)).toEqual(
      expect.arrayContaining(['CVE-2021-24031 libzstd1', 'CVE-2021-24032 libzstd1']),
    );
  });

  it('by default they count as HIGH and fail a MEDIUM threshold, saying so', () => {
    const v = verdict({ maximumFixableSeverity: 'HIGH' });
    expect(v?.reasons.some((r) => r.message.startsWith('libzstd1 '))).toBe(false);
    const strict = verdict({ maximumFixableSeverity: 'MEDIUM' });
    const zstd = strict?.reasons.find((r) => r.message.startsWith('libzstd1 '));
    expect(zstd?.ruleId).toBe('vulnerabilities.fixable-severity');
    expect(zstd?.message).toMatch(/CVE-2021-24031 \(severity unknown, counted as HIGH\)/);
  });

  it('unknownFixableSeverity sets what they count as', () => {
    const critical = verdict({
      maximumFixableSeverity: 'HIGH',
      unknownFixableSeverity: 'CRITICAL',
    });
    expect(critical?.reasons.find((r) => r.message.startsWith('libzstd1 '))?.message).toMatch(
      /counted as CRITICAL/,
    );
    const old = verdict({
      maximumFixableSeverity: 'MEDIUM',
      unknownFixableSeverity: 'UNSPECIFIED',
    });
    expect(old?.reasons.some((r) => r.message.startsWith('libzstd1 '))).toBe(false);
  });
});

describe('12. AdmissionReview admission.k8s.io/v1beta1', () => {
  const allow = decide({
    image: 'img',
    digest: record().digest,
    environment: 'prod',
    record: record(),
    settings: settings(),
  });

  it('admissionreview-v1beta1-pod-create.derived.json: read, and answered in v1beta1', () => {
    const w = parseAdmissionReview(fixture('k8s/admissionreview-v1beta1-pod-create.derived.json'));
    expect(w.apiVersion).toBe('admission.k8s.io/v1beta1');
    expect(w.images).toHaveLength(1);
    const out = admissionResponse(
      w,
      w.images.map((i) => ({ image: i.image, answer: allow })),
      'none',
      'prod',
    );
    expect(out.response).toMatchObject({
      apiVersion: 'admission.k8s.io/v1beta1',
      kind: 'AdmissionReview',
      response: { uid: w.uid, allowed: true },
    });
  });

  it('admissionreview-v1-pod-create.json: still answered in v1', () => {
    const w = parseAdmissionReview(fixture('k8s/admissionreview-v1-pod-create.json'));
    expect(admissionResponse(w, [], 'none', 'prod').response.apiVersion).toBe(
      'admission.k8s.io/v1',
    );
  });
});

describe('13. Grafeas v1beta1 occurrences', () => {
  it('grafeas-docs-occurrence-vulnerability.json (Grafeas docs): the v1beta1 hint, not "no vulnerability id"', () => {
    const err = thrown(() =>
      findingsFromVulnerabilityOccurrence(
        fixture('containeranalysis/grafeas-docs-occurrence-vulnerability.json'),
      ),
    );
    expect(err.message).toMatch(/retired Grafeas v1beta1 form/);
    expect(err.message).toMatch(/Container Analysis v1 API/);
  });
});
