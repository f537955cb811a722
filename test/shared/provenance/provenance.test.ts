import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ContainerAnalysisClient } from '@google-cloud/containeranalysis';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  normaliseSourceRepository,
  plainJson,
  provenanceFromBuildOccurrence,
  provenanceFromDsse,
  provenanceFromStatement,
  readProvenance,
} from '../../../shared/provenance/provenance.js';
import { thrown } from '../../support/invalid-input.js';
import { fixture } from '../real-world-fixtures.js';

type Json = Record<string, unknown>;

const GHA_BUILDER =
  'https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.10.0';
const GHA_RESULT = {
  provenance: {
    builderId: GHA_BUILDER,
    // git+https://github.com/slsa-framework/example-package@refs/tags/v14 without git+ and the ref
    sourceRepository: 'https://github.com/slsa-framework/example-package',
    buildType: 'https://github.com/slsa-framework/slsa-github-generator/generic@v1',
    source: 'slsa',
    signer: null,
  },
  subjects: [
    {
      name: 'gha_generic-binary-linux-amd64-v14',
      digest: 'sha256:2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd',
    },
  ],
  predicateType: 'https://slsa.dev/provenance/v0.2',
  resource: null,
};

function buildOccurrence(file: string): Json {
  return fixture<{ provenance_summary: { provenance: Json[] } }>(file).provenance_summary
    .provenance[0] as Json;
}

describe('in-toto statements and DSSE envelopes', () => {
  it('intoto-statement-v0.1-slsa-v0.2-github-actions.decoded.json: builder and source repository', () => {
    expect(
      provenanceFromStatement(
        fixture('slsa/intoto-statement-v0.1-slsa-v0.2-github-actions.decoded.json'),
      ),
    ).toEqual({ ...GHA_RESULT, container: 'statement', signatureVerified: false });
  });

  it('dsse-envelope-slsa-v0.2-github-actions.json: the envelope reads as the statement it carries', () => {
    const asDsse = { ...GHA_RESULT, container: 'dsse', signatureVerified: false };
    expect(provenanceFromDsse(fixture('slsa/dsse-envelope-slsa-v0.2-github-actions.json'))).toEqual(
      asDsse,
    );
    expect(readProvenance(fixture('slsa/dsse-envelope-slsa-v0.2-github-actions.json'))).toEqual(
      asDsse,
    );
  });

  it('intoto-statement-v0.1-slsa-v0.2-tekton-chains.json: builder id, no source (configSource is empty)', () => {
    expect(
      provenanceFromStatement(fixture('slsa/intoto-statement-v0.1-slsa-v0.2-tekton-chains.json')),
    ).toEqual({
      provenance: {
        builderId: 'https://tekton.dev/chains/v2',
        sourceRepository: null,
        buildType: 'https://tekton.dev/attestations/chains@v2',
        source: 'slsa',
        signer: null,
      },
      subjects: [
        {
          name: 'us-central1-docker.pkg.dev/test/kaniko-example/kaniko-chains',
          digest: 'sha256:a2e500bebfe16cf12fc56316ba72c645e1d29054541dc1ab6c286197434170a9',
        },
      ],
      predicateType: 'https://slsa.dev/provenance/v0.2',
      resource: null,
      container: 'statement',
      signatureVerified: false,
    });
  });

  it('reads an in-toto Statement v1 with SLSA v1 from the GitHub generator', () => {
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'ghcr.io/o/app', digest: { sha256: 'b'.repeat(64) } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: {
        buildDefinition: {
          buildType: 'https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1',
          externalParameters: {
            workflow: {
              ref: 'refs/heads/main',
              repository: 'https://github.com/o/app',
              path: '.github/workflows/release.yml',
            },
          },
          resolvedDependencies: [
            {
              uri: 'git+https://github.com/o/app@refs/heads/main',
              digest: { gitCommit: 'c'.repeat(40) },
            },
          ],
        },
        runDetails: {
          builder: {
            id: 'https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0',
          },
        },
      },
    };
    const r = provenanceFromStatement(statement);
    expect(r.provenance).toEqual({
      builderId:
        'https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0',
      sourceRepository: 'https://github.com/o/app',
      buildType: 'https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1',
      source: 'slsa',
      signer: null,
    });
    expect(r.subjects).toEqual([{ name: 'ghcr.io/o/app', digest: `sha256:${'b'.repeat(64)}` }]);
  });

  it('rejects statements that are not SLSA provenance or are malformed', () => {
    const base = fixture<Json>('slsa/intoto-statement-v0.1-slsa-v0.2-tekton-chains.json');
    expect(
      thrown(() =>
        provenanceFromStatement({
          ...base,
          predicateType: 'https://cosign.sigstore.dev/attestation/vuln/v1',
        }),
      ).message,
    ).toMatch(/is not SLSA provenance/);
    expect(thrown(() => provenanceFromStatement({ ...base, _type: 'x' })).message).toMatch(
      /_type: /,
    );
    expect(thrown(() => provenanceFromStatement({ ...base, subject: [] })).message).toMatch(
      /subject: a statement names at least one subject/,
    );
    expect(
      thrown(() =>
        provenanceFromStatement({ ...base, subject: [{ name: 'x', digest: { sha256: 'abc' } }] }),
      ).message,
    ).toMatch(/subject\.0\.digest\.sha256 is not 64 lower-case hex/);
  });

  it('rejects envelopes of another payload type or with a payload that is not base64 UTF-8 JSON', () => {
    const env = fixture<Json>('slsa/dsse-envelope-slsa-v0.2-github-actions.json');
    expect(thrown(() => provenanceFromDsse({ ...env, payloadType: 'text/plain' })).message).toMatch(
      /payloadType: must be application\/vnd\.in-toto\+json/,
    );
    expect(
      thrown(() =>
        provenanceFromDsse({ ...env, payload: Buffer.from('not json').toString('base64') }),
      ).message,
    ).toMatch(/payload is not JSON/);
    const notUtf8 = Buffer.from('{"_type":"https://in-toto.io/Statement/v1","x":"\xff"}', 'latin1');
    expect(
      thrown(() => provenanceFromDsse({ ...env, payload: notUtf8.toString('base64') })).message,
    ).toMatch(/payload is not valid UTF-8/);
    expect(thrown(() => provenanceFromDsse({ ...env, payload: 'a b' })).message).toMatch(
      /payload: must be base64/,
    );
  });
});

describe('Cloud Build BUILD occurrences', () => {
  it('ca-build-occurrence-slsa-v0.1-cloudbuild.json: SLSA v0.1 (slsaProvenance) with a git material', () => {
    expect(
      provenanceFromBuildOccurrence(
        buildOccurrence('containeranalysis/ca-build-occurrence-slsa-v0.1-cloudbuild.json'),
      ),
    ).toEqual({
      provenance: {
        builderId: 'https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3',
        sourceRepository: 'https://github.com/laurentsimon/gcb-tests',
        buildType: 'https://cloudbuild.googleapis.com/CloudBuildYaml@v0.1',
        source: 'cloud-build',
        signer: null,
      },
      subjects: [
        {
          name: 'https://us-west2-docker.pkg.dev/gosst-scare-sandbox/quickstart-docker-repo/quickstart-image:v39',
          digest: 'sha256:f472ca4b68898c951ac3b476cba919d0d56fca4ced631fabcead51e4b2b690e7',
        },
      ],
      predicateType: 'https://slsa.dev/provenance/v0.1',
      container: 'build-occurrence',
      signatureVerified: false,
      resource: {
        registry: 'us-west2-docker.pkg.dev',
        repository: 'gosst-scare-sandbox/quickstart-docker-repo/quickstart-image',
        tag: null,
        digest: 'sha256:f472ca4b68898c951ac3b476cba919d0d56fca4ced631fabcead51e4b2b690e7',
        name: 'us-west2-docker.pkg.dev/gosst-scare-sandbox/quickstart-docker-repo/quickstart-image',
      },
    });
  });

  it('ca-build-occurrence-slsa-v1-cloudbuild.json: SLSA v1, source from buildConfigSource', () => {
    const r = provenanceFromBuildOccurrence(
      buildOccurrence('containeranalysis/ca-build-occurrence-slsa-v1-cloudbuild.json'),
    );
    expect(r.provenance).toEqual({
      builderId: 'https://cloudbuild.googleapis.com/GoogleHostedWorker',
      sourceRepository: 'https://github.com/khalkie/gcb-prod-prov',
      buildType: 'https://cloud.google.com/build/gcb-buildtypes/google-worker/v1',
      source: 'cloud-build',
      signer: null,
    });
    const digest = 'sha256:7e9b6e7ba2842c91cf49f3e214d04a7a496f8214356f41d81a6e6dcad11f11e3';
    expect(r.subjects.map((s) => s.digest)).toEqual([digest, digest]);
    expect(r.resource?.digest).toBe(digest);
    expect(r.predicateType).toBe('https://slsa.dev/provenance/v1');
  });

  it('ca-list-occurrences-build-tekton-chains.json: accepted, but with no builder id (builder is {})', () => {
    const occ = fixture<{ occurrences: Json[] }>(
      'containeranalysis/ca-list-occurrences-build-tekton-chains.json',
    ).occurrences[0];
    const r = provenanceFromBuildOccurrence(occ);
    // A trusted-builder rule will find nothing to trust here: that is the policy's call, not the parser's.
    expect(r.provenance).toEqual({
      builderId: null,
      sourceRepository: null,
      buildType: 'https://tekton.dev/attestations/chains@v2',
      source: 'cloud-build',
      signer: null,
    });
    // resourceUri uses the older form without https://
    expect(r.resource?.name).toBe('us-docker.pkg.dev/bendory-20221007-a/my-repo/true');
    expect(r.subjects).toEqual([
      {
        name: 'us-docker.pkg.dev/bendory-20221007-a/my-repo/true',
        digest: 'sha256:739fd4cae3d43c4c3c33ada74f1199ed33e194979d194f34d4443ee222a08f50',
      },
    ]);
  });

  it('falls back to the DSSE envelope when the occurrence has no statement', () => {
    const occ = buildOccurrence('containeranalysis/ca-build-occurrence-slsa-v0.1-cloudbuild.json');
    const r = provenanceFromBuildOccurrence({ ...occ, build: {} });
    // The envelope's statement carries both `predicate` and `slsaProvenance`; predicateType v0.1.
    expect(r.provenance).toEqual({
      builderId: 'https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3',
      sourceRepository: 'https://github.com/laurentsimon/gcb-tests',
      buildType: 'https://cloudbuild.googleapis.com/CloudBuildYaml@v0.1',
      source: 'cloud-build',
      signer: null,
    });
  });

  it('grafeas-docs-occurrence-build.json: rejected, a v1beta1 documentation example without resourceUri', () => {
    const err = thrown(() =>
      provenanceFromBuildOccurrence(
        fixture('containeranalysis/grafeas-docs-occurrence-build.json'),
      ),
    );
    expect(err.message).toMatch(/resourceUri: a BUILD occurrence needs a resourceUri/);
  });

  it('ca-list-occurrences-attestation.json: rejected, an ATTESTATION occurrence is not build provenance', () => {
    const occ = fixture<{ occurrences: Json[] }>(
      'containeranalysis/ca-list-occurrences-attestation.json',
    ).occurrences[0];
    expect(thrown(() => provenanceFromBuildOccurrence(occ)).message).toMatch(
      /^invalid BUILD occurrence: build: /,
    );
    expect(thrown(() => provenanceFromBuildOccurrence({ ...occ, build: {} })).message).toMatch(
      /kind is ATTESTATION/,
    );
  });

  it('rejects an occurrence whose resource URI is not an image digest, or with no provenance', () => {
    const occ = buildOccurrence('containeranalysis/ca-build-occurrence-slsa-v0.1-cloudbuild.json');
    expect(
      thrown(() =>
        provenanceFromBuildOccurrence({
          ...occ,
          resourceUri: 'https://gcr.io/project/image@sha256:foo',
        }),
      ).message,
    ).toMatch(/lower-case hex/);
    expect(
      thrown(() => provenanceFromBuildOccurrence({ ...occ, build: {}, envelope: null })).message,
    ).toMatch(/carries no provenance/);
  });
});

describe('helpers', () => {
  it.each([
    ['git+https://github.com/o/r@refs/tags/v1', 'https://github.com/o/r'],
    ['git+https://github.com/o/r.git', 'https://github.com/o/r'],
    ['https://github.com/o/r', 'https://github.com/o/r'],
    ['git+ssh://git@github.com/o/r.git@main', 'ssh://git@github.com/o/r'],
    ['', null],
  ])('normaliseSourceRepository(%s) = %s', (input, want) => {
    expect(normaliseSourceRepository(input)).toBe(want);
  });

  it('turns protobuf Structs into JSON', () => {
    expect(
      plainJson({
        fields: {
          a: { stringValue: 'x', kind: 'stringValue' },
          b: {
            listValue: { values: [{ numberValue: 1, kind: 'numberValue' }] },
            kind: 'listValue',
          },
          c: { structValue: { fields: { d: { boolValue: true } } }, kind: 'structValue' },
          e: { nullValue: 'NULL_VALUE', kind: 'nullValue' },
        },
      }),
    ).toEqual({ a: 'x', b: [1], c: { d: true }, e: null });
  });

  it('readProvenance refuses what it cannot recognise', () => {
    expect(thrown(() => readProvenance({ hello: 1 })).message).toMatch(
      /not a Sigstore bundle, a DSSE envelope/,
    );
  });
});

// BUILD occurrences as the Node client returns them: Structs as {fields}, bytes as Buffers, defaults filled in.
describe('BUILD occurrences through the Node client', () => {
  let server: Server;
  let client: ContainerAnalysisClient;
  const served = new Map<string, Json>([
    ['v1', buildOccurrence('containeranalysis/ca-build-occurrence-slsa-v1-cloudbuild.json')],
    [
      'tekton',
      fixture<{ occurrences: Json[] }>(
        'containeranalysis/ca-list-occurrences-build-tekton-chains.json',
      ).occurrences[0] as Json,
    ],
  ]);
  type ClientOptions = NonNullable<ConstructorParameters<typeof ContainerAnalysisClient>[0]>;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const id = (req.url ?? '').split('?')[0]?.split('/').pop() ?? '';
      res.setHeader('content-type', 'application/json');
      const body = served.get(id);
      res.statusCode = body ? 200 : 404;
      res.end(JSON.stringify(body ?? { error: { code: 404, message: 'no', status: 'NOT_FOUND' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new ContainerAnalysisClient({
      fallback: true,
      apiEndpoint: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      protocol: 'http',
      authClient: new PassThroughClient() as unknown as ClientOptions['authClient'],
    });
  });
  afterAll(async () => {
    await client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  // (The v0.1 occurrence is left out: its recipe.arguments is an Any of a Cloud Build type the
  // client's REST transport cannot decode, so getOccurrence itself fails on it.)
  it.each(['v1', 'tekton'])('%s reads the same as its REST JSON', async (id) => {
    const [occ] = await client
      .getGrafeasClient()
      .getOccurrence({ name: `projects/p/occurrences/${id}` });
    expect(provenanceFromBuildOccurrence(occ)).toEqual(
      provenanceFromBuildOccurrence(served.get(id)),
    );
  });

  it('the client really returns Structs and Buffers (what plainJson is for)', async () => {
    const [occ] = await client
      .getGrafeasClient()
      .getOccurrence({ name: 'projects/p/occurrences/v1' });
    const params =
      occ.build?.inTotoSlsaProvenanceV1?.predicate?.buildDefinition?.externalParameters;
    expect(params).toHaveProperty('fields');
    expect(occ.envelope?.payload).toBeInstanceOf(Uint8Array);
    // With the statement removed, the envelope's Buffer payload is decoded instead.
    const envelopeOnly = { ...occ, build: { ...occ.build, inTotoSlsaProvenanceV1: null } };
    expect(provenanceFromBuildOccurrence(envelopeOnly).provenance.builderId).toBe(
      'https://cloudbuild.googleapis.com/GoogleHostedWorker',
    );
  });
});
