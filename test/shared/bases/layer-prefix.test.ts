import { describe, expect, it } from 'vitest';
import {
  compareLayerPrefix,
  describeDifference,
  inferBase,
  type LayerStack,
  matchPlatform,
} from '../../../shared/bases/layer-prefix.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
// Distinct, readable digests: manifest layers a,b,c…; diff_ids 1,2,3… (the same position in each).
function image(layers: string[], diffIds: string[]): LayerStack {
  return { layers: layers.map(d), diffIds: diffIds.map(d) };
}
const base = image(['a', 'b'], ['1', '2']);

describe('compareLayerPrefix', () => {
  it('matches an image that starts with every base layer and diff_id, in order', () => {
    expect(compareLayerPrefix(image(['a', 'b', 'c'], ['1', '2', '3']), base)).toEqual({
      match: true,
      baseLayers: 2,
    });
    // The base itself (re-tagged) is built on itself.
    expect(compareLayerPrefix(base, base).match).toBe(true);
  });

  it('names the first differing manifest layer', () => {
    const r = compareLayerPrefix(image(['a', 'x', 'c'], ['1', '2', '3']), base);
    expect(r).toEqual({
      match: false,
      baseLayers: 2,
      difference: { index: 1, field: 'layers', image: d('x'), base: d('b') },
    });
  });

  it('catches copied manifest digests whose config tells another story (diff_ids)', () => {
    const r = compareLayerPrefix(image(['a', 'b', 'c'], ['1', '9', '3']), base);
    expect(r.match).toBe(false);
    expect(r.match === false && r.difference).toEqual({
      index: 1,
      field: 'diff_ids',
      image: d('9'),
      base: d('2'),
    });
  });

  it('proves with the manifest layer digests alone when the base config was not read (a new base digest at push)', () => {
    const manifestOnly: LayerStack = { layers: base.layers, diffIds: null };
    expect(compareLayerPrefix(image(['a', 'b', 'c'], ['1', '2', '3']), manifestOnly)).toEqual({
      match: true,
      baseLayers: 2,
    });
    // A forged claim is still caught: other bytes are other digests.
    const forged = compareLayerPrefix(image(['x', 'y', 'c'], ['1', '2', '3']), manifestOnly);
    expect(forged.match === false && forged.difference).toEqual({
      index: 0,
      field: 'layers',
      image: d('x'),
      base: d('a'),
    });
    expect(compareLayerPrefix(base, { layers: [], diffIds: null })).toEqual({
      match: false,
      difference: null,
      baseLayers: 0,
    });
  });

  it('reports the earliest position, the manifest first on a tie', () => {
    const tie = compareLayerPrefix(image(['x', 'b'], ['9', '2']), base);
    expect(tie.match === false && tie.difference?.field).toBe('layers');
    const diffFirst = compareLayerPrefix(image(['a', 'x'], ['9', '2']), base);
    expect(diffFirst.match === false && diffFirst.difference).toMatchObject({
      index: 0,
      field: 'diff_ids',
    });
  });

  it('rejects layers in another order, and an image shorter than its base', () => {
    expect(compareLayerPrefix(image(['b', 'a', 'c'], ['2', '1', '3']), base).match).toBe(false);
    const short = compareLayerPrefix(image(['a'], ['1']), base);
    expect(short.match === false && short.difference).toEqual({
      index: 1,
      field: 'layers',
      image: null,
      base: d('b'),
    });
  });

  it('cannot prove anything with a base without layers or with a config that disagrees in length', () => {
    expect(compareLayerPrefix(base, image([], []))).toEqual({
      match: false,
      difference: null,
      baseLayers: 0,
    });
    expect(compareLayerPrefix(base, image(['a', 'b'], ['1']))).toMatchObject({
      match: false,
      difference: null,
    });
  });

  it('describes the difference for people: 1-based position, both digests shortened', () => {
    const r = compareLayerPrefix(image(['a', 'x'], ['1', '2']), base);
    if (r.match || !r.difference) throw new Error('expected a difference');
    expect(describeDifference(r.difference, r.baseLayers)).toBe(
      `layer 2 of the base's 2 differs: the image has sha256:xxxxxxxxxxxx…, the base sha256:bbbbbbbbbbbb…`,
    );
    const missing = compareLayerPrefix(image(['a'], ['1']), base);
    if (missing.match || !missing.difference) throw new Error('expected a difference');
    expect(describeDifference(missing.difference, 2)).toMatch(
      /^layer 2 of the base's 2 is missing: the image has only 1 layers/,
    );
  });
});

describe('matchPlatform', () => {
  const platforms = [
    { os: 'linux', architecture: 'amd64', variant: null, id: 1 },
    { os: 'linux', architecture: 'arm64', variant: 'v8', id: 2 },
    { os: 'linux', architecture: 'arm', variant: 'v7', id: 3 },
    { os: 'linux', architecture: 'arm', variant: 'v6', id: 4 },
  ];
  it('picks the same os, architecture and variant (arm64 is v8 when unstated)', () => {
    expect(
      matchPlatform(platforms, { os: 'linux', architecture: 'amd64', variant: null })?.id,
    ).toBe(1);
    expect(
      matchPlatform(platforms, { os: 'linux', architecture: 'arm64', variant: null })?.id,
    ).toBe(2);
    expect(matchPlatform(platforms, { os: 'linux', architecture: 'arm', variant: 'v6' })?.id).toBe(
      4,
    );
  });
  it('finds nothing for a platform the base does not have, or an ambiguous variant', () => {
    expect(
      matchPlatform(platforms, { os: 'linux', architecture: 's390x', variant: null }),
    ).toBeNull();
    expect(
      matchPlatform(platforms, { os: 'linux', architecture: 'arm', variant: null }),
    ).toBeNull();
    expect(
      matchPlatform(platforms, { os: 'windows', architecture: 'amd64', variant: null }),
    ).toBeNull();
  });
});

describe('inferBase', () => {
  const debian = { name: 'docker.io/library/debian:12', digest: d('d'), stack: base };
  const debianOld = {
    name: 'docker.io/library/debian:12',
    digest: d('e'),
    stack: image(['o'], ['0']),
  };
  const runtime = {
    name: 'registry.example/base/runtime:1',
    digest: d('f'),
    stack: image(['a', 'b', 'c'], ['1', '2', '3']),
  };
  it('finds the base whose layers the image starts with, the closest ancestor first', () => {
    const app = image(['a', 'b', 'c', 'z'], ['1', '2', '3', '9']);
    expect(inferBase(app, [debian, debianOld, runtime])?.name).toBe(runtime.name);
    expect(inferBase(app, [runtime, debianOld, debian])?.name).toBe(runtime.name);
    expect(inferBase(image(['a', 'b', 'z'], ['1', '2', '9']), [runtime, debian])?.digest).toBe(
      debian.digest,
    );
    expect(inferBase(image(['o', 'z'], ['0', '9']), [debian, debianOld])?.digest).toBe(
      debianOld.digest,
    );
  });
  it('finds nothing when no candidate is a prefix', () => {
    expect(inferBase(image(['q'], ['9']), [debian, runtime])).toBeNull();
  });
  it('breaks ties by name then digest, whatever the order', () => {
    const twin = { ...debian, name: 'a.example/debian:12' };
    expect(inferBase(base, [debian, twin])?.name).toBe(twin.name);
    expect(inferBase(base, [twin, debian])?.name).toBe(twin.name);
  });
});
