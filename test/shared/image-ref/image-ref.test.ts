import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../shared/errors.js';
import {
  formatImageRef,
  imageDocId,
  isDigest,
  MAX_REFERENCE_LENGTH,
  parseImageDocId,
  parseImageRef,
  parseResourceUri,
  resourceUri,
} from '../../../shared/image-ref/image-ref.js';
import { fixture } from '../real-world-fixtures.js';

const D = `sha256:${'a1'.repeat(32)}`;
const D512 = `sha512:${'0f'.repeat(64)}`;

function rejects(input: string, reason: RegExp): void {
  let caught: unknown;
  try {
    parseImageRef(input);
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${JSON.stringify(input.slice(0, 60))} to be rejected`).toBeInstanceOf(
    InvalidInputError,
  );
  expect((caught as Error).message).toMatch(reason);
}

describe('parseImageRef accepts and normalises', () => {
  const cases: Array<[string, string, string, string | null, string | null]> = [
    ['nginx', 'docker.io', 'library/nginx', null, null],
    ['nginx:1.25', 'docker.io', 'library/nginx', '1.25', null],
    ['library/nginx', 'docker.io', 'library/nginx', null, null],
    ['bitnami/redis:7.2', 'docker.io', 'bitnami/redis', '7.2', null],
    ['docker.io/nginx', 'docker.io', 'library/nginx', null, null],
    ['index.docker.io/nginx', 'docker.io', 'library/nginx', null, null],
    ['registry-1.docker.io/bitnami/redis', 'docker.io', 'bitnami/redis', null, null],
    ['INDEX.Docker.IO/library/nginx', 'docker.io', 'library/nginx', null, null],
    [`nginx@${D}`, 'docker.io', 'library/nginx', null, D],
    [`nginx:latest@${D}`, 'docker.io', 'library/nginx', 'latest', D],
    ['localhost/app', 'localhost', 'app', null, null],
    ['localhost:5000/team/app:dev', 'localhost:5000', 'team/app', 'dev', null],
    ['127.0.0.1:5000/x', '127.0.0.1:5000', 'x', null, null],
    ['[::1]:5000/x:1', '[::1]:5000', 'x', '1', null],
    [`us-docker.pkg.dev/p/r/img@${D}`, 'us-docker.pkg.dev', 'p/r/img', null, D],
    [
      'europe-west1-docker.pkg.dev/my-proj/repo/sub/img:v1.2.3',
      'europe-west1-docker.pkg.dev',
      'my-proj/repo/sub/img',
      'v1.2.3',
      null,
    ],
    ['gcr.io/distroless/static:nonroot', 'gcr.io', 'distroless/static', 'nonroot', null],
    ['My.Registry.Example:443/a__b/c-d/e.f', 'my.registry.example:443', 'a__b/c-d/e.f', null, null],
    ['ghcr.io/o/a---b:Tag_With.Dots-1', 'ghcr.io', 'o/a---b', 'Tag_With.Dots-1', null],
    [`quay.io/x/y@${D512}`, 'quay.io', 'x/y', null, D512],
    [`gcr.io/x:${'t'.repeat(128)}`, 'gcr.io', 'x', 't'.repeat(128), null],
  ];
  it.each(cases)('%s', (input, registry, repository, tag, digest) => {
    const ref = parseImageRef(input);
    expect(ref).toEqual({ registry, repository, tag, digest, name: `${registry}/${repository}` });
    // The canonical text form parses back to the same reference.
    expect(parseImageRef(formatImageRef(ref))).toEqual(ref);
  });
});

describe('parseImageRef rejects with a reason', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /is empty/],
    ['too long', `gcr.io/${'a'.repeat(MAX_REFERENCE_LENGTH)}`, /characters long, the limit is 520/],
    ['name too long', `gcr.io/${'a/'.repeat(124)}abc`, /name is 258 characters long/],
    ['space', 'gcr.io/a b', /whitespace.*index 8/],
    ['newline', 'gcr.io/a\n', /whitespace, a control/],
    ['NUL', 'gcr.io/a\u0000b', /control/],
    ['non-ASCII', 'gcr.io/ｎginx', /non-ASCII/],
    ['scheme', 'https://gcr.io/a/b', /URL with a scheme/],
    ['docker scheme', 'docker://nginx', /URL with a scheme/],
    ['query', 'gcr.io/a/b?x=1', /query string/],
    ['fragment', 'gcr.io/a/b#frag', /query string or fragment/],
    ['$PROJECT placeholder', 'us-west1-docker.pkg.dev/$PROJECT/repo/image:latest', /placeholder/],
    ['brace placeholder', '\u0024{ZONE}-docker.pkg.dev/p/r/i', /placeholder/],
    ['upper-case path', 'gcr.io/Project/img', /must be lower case: "Project"/],
    ['upper-case bare name', 'Nginx', /must be lower case/],
    [
      'upper-case first component is a host that reads back as Docker Hub',
      'Foo/bar',
      /needs a '\.'/,
    ],
    ['double slash', 'gcr.io//a', /empty path component/],
    ['leading slash', '/a/b', /empty path component/],
    ['trailing slash', 'gcr.io/a/', /empty path component/],
    ['dot-dot', 'gcr.io/a/../b', /"\.\." is not allowed/],
    ['dot-dot at end', 'gcr.io/..', /"\.\." is not allowed/],
    ['double dot inside a component', 'gcr.io/a..b', /invalid repository path component/],
    ['leading separator', 'gcr.io/-a', /invalid repository path component/],
    ['tilde', 'gcr.io/a~b', /invalid repository path component/],
    ['empty tag', 'gcr.io/a:', /empty tag/],
    ['bad tag start', 'gcr.io/a:.x', /invalid tag/],
    ['tag too long', `gcr.io/a:${'t'.repeat(129)}`, /invalid tag/],
    ['two @', `gcr.io/a@${D}@${D}`, /more than one '@'/],
    ['empty digest', 'gcr.io/a@', /empty digest/],
    ['short sha256', 'gcr.io/a@sha256:abc', /64 hex characters, got 3/],
    ['42-hex dummy digest', `gcr.io/a@sha256:deadbeef${'0'.repeat(34)}`, /got 42/],
    ['upper-case hex', `gcr.io/a@sha256:${'A'.repeat(64)}`, /lower-case hex/],
    ['non-hex dummy', `gcr.io/a@sha256:33cee${'x'.repeat(52)}tolstoy`, /lower-case hex/],
    ['short sha512', `gcr.io/a@sha512:${'a'.repeat(64)}`, /128 hex characters, got 64/],
    ['unknown algorithm', `gcr.io/a@md5:${'a'.repeat(32)}`, /unsupported digest algorithm "md5"/],
    ['no algorithm', `gcr.io/a@${'a'.repeat(64)}`, /sha256:<64 hex>/],
    ['bad port', 'gcr.io:99999/a', /invalid registry port "99999"/],
    ['port letters', 'gcr.io:abc/a', /invalid registry port/],
    ['bad host label', 'gcr-.io/a', /invalid registry host/],
    ['empty host label', 'gcr..io/a', /invalid registry host/],
    ['only a tag', ':latest', /no repository name/],
  ];
  it.each(cases)('%s', (_label, input, reason) => rejects(input, reason));

  it('fails fast on a megabyte of input', () => {
    rejects('a'.repeat(1_000_000), /1000000 characters long/);
  });

  it('rejects non-strings', () => {
    expect(() => parseImageRef(42 as unknown as string)).toThrow(/not a string/);
  });

  it('never throws anything but InvalidInputError, and what it accepts round-trips', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        try {
          const ref = parseImageRef(s);
          expect(parseImageRef(formatImageRef(ref))).toEqual(ref);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidInputError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isDigest', () => {
  it.each([
    [D, true],
    [D512, true],
    [`sha256:${'a'.repeat(63)}`, false],
    [`sha256:${'A'.repeat(64)}`, false],
    [`sha384:${'a'.repeat(96)}`, false],
    ['latest', false],
    [42, false],
  ])('%s → %s', (s, want) => {
    expect(isDigest(s)).toBe(want);
  });
});

describe('imageDocId', () => {
  it('replaces / by ~ and parses back', () => {
    const id = imageDocId('us-docker.pkg.dev', 'p/r/img', D);
    expect(id).toBe(`us-docker.pkg.dev~p~r~img@${D}`);
    expect(id).not.toContain('/');
    expect(parseImageDocId(id)).toEqual({
      registry: 'us-docker.pkg.dev',
      repository: 'p/r/img',
      digest: D,
    });
  });

  it('is the same for every spelling of one image', () => {
    expect(imageDocId('INDEX.docker.io', 'nginx', D)).toBe(
      imageDocId('docker.io', 'library/nginx', D),
    );
    expect(imageDocId('docker.io', 'library/nginx', D)).toBe(`docker.io~library~nginx@${D}`);
  });

  it('refuses parts that are not valid or not a host', () => {
    expect(() => imageDocId('myregistry', 'a', D)).toThrow(/is not a host/);
    expect(() => imageDocId('gcr.io', 'a/../b', D)).toThrow(InvalidInputError);
    expect(() => imageDocId('gcr.io', 'a', 'sha256:abc')).toThrow(/64 hex/);
    expect(() => imageDocId('gcr.io', 'A', D)).toThrow(/lower case/);
  });

  it('rejects ids that are not canonical', () => {
    expect(() => parseImageDocId(`gcr.io/a@${D}`)).toThrow(/must not contain '\/'/);
    expect(() => parseImageDocId('gcr.io~a:latest')).toThrow(/names a digest and no tag/);
    expect(() => parseImageDocId(`index.docker.io~library~nginx@${D}`)).toThrow(/canonical/);
  });

  it('round-trips for generated images', () => {
    const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8})?$/);
    fc.assert(
      fc.property(
        fc.constantFrom(
          'gcr.io',
          'us-docker.pkg.dev',
          'localhost:5000',
          '127.0.0.1:5000',
          'docker.io',
        ),
        fc.array(component, { minLength: 1, maxLength: 4 }),
        fc.stringMatching(/^[a-f0-9]{64}$/),
        (registry, parts, hex) => {
          const digest = `sha256:${hex}`;
          const id = imageDocId(registry, parts.join('/'), digest);
          const back = parseImageDocId(id);
          expect(imageDocId(back.registry, back.repository, back.digest)).toBe(id);
          expect(back.digest).toBe(digest);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('resource URIs', () => {
  it('formats https://REGISTRY/REPO@digest', () => {
    expect(resourceUri(parseImageRef(`us-docker.pkg.dev/p/r/img:1@${D}`))).toBe(
      `https://us-docker.pkg.dev/p/r/img@${D}`,
    );
    expect(() => resourceUri(parseImageRef('gcr.io/p/img:1'))).toThrow(/no digest/);
  });

  it('parses the current and the older (no https://) form', () => {
    const current = parseResourceUri(
      'https://us-west1-docker.pkg.dev/cloudy-demos/test/image@sha256:5ffd30269c7bde2e29453bb9b8d3618814b7034e37aef299e3c071acbb565911',
    );
    expect(current.registry).toBe('us-west1-docker.pkg.dev');
    expect(current.repository).toBe('cloudy-demos/test/image');
    const older = parseResourceUri(
      'us-docker.pkg.dev/bendory-20221007-a/my-repo/true@sha256:739fd4cae3d43c4c3c33ada74f1199ed33e194979d194f34d4443ee222a08f50',
    );
    expect(older.name).toBe('us-docker.pkg.dev/bendory-20221007-a/my-repo/true');
    expect(older.digest).toBe(
      'sha256:739fd4cae3d43c4c3c33ada74f1199ed33e194979d194f34d4443ee222a08f50',
    );
  });

  it('rejects URIs without a digest, with a tag, or with another scheme', () => {
    expect(() => parseResourceUri('https://gcr.io/p/img')).toThrow(/must name a digest/);
    expect(() => parseResourceUri(`https://gcr.io/p/img:1@${D}`)).toThrow(/must not carry a tag/);
    expect(() => parseResourceUri(`http://gcr.io/p/img@${D}`)).toThrow(/URL with a scheme/);
    // The Grafeas documentation example's digest is the word "foo".
    expect(() => parseResourceUri('https://gcr.io/project/image@sha256:foo')).toThrow(
      /lower-case hex/,
    );
  });
});

describe('references found in the real-world fixtures', () => {
  type Pod = {
    request: {
      object: {
        spec: { containers: Array<{ image: string }>; initContainers?: Array<{ image: string }> };
      };
    };
  };

  it('AdmissionReview pods: a digest-pinned Docker Hub image and a bare "nginx"', () => {
    const pod = fixture<Pod>('k8s/admissionreview-v1-pod-create-initcontainer.json');
    const spec = pod.request.object.spec;
    const images = [...spec.containers, ...(spec.initContainers ?? [])].map((c) =>
      parseImageRef(c.image),
    );
    expect(images).toEqual([
      {
        registry: 'docker.io',
        repository: 'securesystemsengineering/charlie-image',
        tag: null,
        digest: 'sha256:91ac9b26df583762234c1cdb2fc930364754ccc59bc752a2bfe298d2ea68f9ff',
        name: 'docker.io/securesystemsengineering/charlie-image',
      },
      {
        registry: 'docker.io',
        repository: 'library/nginx',
        tag: null,
        digest: null,
        name: 'docker.io/library/nginx',
      },
    ]);
    const single = fixture<Pod>('k8s/admissionreview-v1-pod-create.json');
    expect(parseImageRef(single.request.object.spec.containers[0]?.image ?? '').digest).toBe(
      'sha256:91ac9b26df583762234c1cdb2fc930364754ccc59bc752a2bfe298d2ea68f9ff',
    );
  });

  it.each([
    'binauthz/binauthz-simple-signing-payload-hello-app.json',
    'binauthz/binauthz-simple-signing-payload.json',
  ])('%s: docker-reference + docker-manifest-digest make a resource URI', (file) => {
    type Payload = {
      critical: {
        identity: { 'docker-reference': string };
        image: { 'docker-manifest-digest': string };
      };
    };
    const p = fixture<Payload>(file).critical;
    const ref = parseImageRef(
      `${p.identity['docker-reference']}@${p.image['docker-manifest-digest']}`,
    );
    expect(ref.registry).toBe('gcr.io');
    expect(ref.name).toBe(p.identity['docker-reference']);
    expect(parseResourceUri(resourceUri(ref))).toEqual(ref);
  });

  it('ca-list-occurrences-attestation.json: its resourceUri is the older form without https://', () => {
    type List = { occurrences: Array<{ resourceUri: string }> };
    const uri =
      fixture<List>('containeranalysis/ca-list-occurrences-attestation.json').occurrences[0]
        ?.resourceUri ?? '';
    const ref = parseResourceUri(uri);
    expect(ref.name).toBe('us-docker.pkg.dev/bendory-20221007-a/my-repo/true');
    expect(resourceUri(ref)).toBe(`https://${uri}`);
  });
});
