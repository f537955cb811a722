// fast-check arbitraries from zod 4 schemas (the shapes Clearance's message schemas use), and mutations that push a valid value just outside them.
import fc from 'fast-check';
import type { z } from 'zod';

interface Def {
  type: string;
  [k: string]: unknown;
}
const defOf = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;

function stringArbitrary(def: Def): fc.Arbitrary<string> {
  switch (def.format) {
    case 'datetime':
      return fc
        .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
        .map((d) => d.toISOString());
    case 'url':
      return fc.webUrl();
    case 'email':
      return fc.emailAddress();
    case 'uuid':
      return fc.uuid();
    default:
      break;
  }
  const checks = (def.checks as { _zod: { def: Record<string, unknown> } }[] | undefined) ?? [];
  const regex = checks
    .map((c) => c._zod.def)
    .find((c) => c.format === 'regex' && c.pattern instanceof RegExp)?.pattern as
    | RegExp
    | undefined;
  // Near-valid strings (matching the schema's pattern) and arbitrary ones, including odd unicode.
  return regex
    ? fc.oneof({ weight: 3, arbitrary: fc.stringMatching(regex) }, fc.string({ unit: 'grapheme' }))
    : fc.oneof(
        fc.string(),
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.constantFrom(
          '',
          `sha256:${'a'.repeat(64)}`,
          `us-docker.pkg.dev/p/r/app@sha256:${'b'.repeat(64)}`,
          'gcr.io/p/app:latest',
          '__x__',
          'a/b',
          '../../etc/passwd',
          '\u0000',
        ),
      );
}

/** An arbitrary producing values shaped by `schema` (mostly accepted by it; strings may stray). */
export function arbitraryOf(schema: z.ZodType, depth = 0): fc.Arbitrary<unknown> {
  const def = defOf(schema);
  const next = (s: unknown) => arbitraryOf(s as z.ZodType, depth + 1);
  if (depth > 8) return fc.constant(null);
  switch (def.type) {
    case 'string':
      return stringArbitrary(def);
    case 'number':
      return fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
    case 'int':
    case 'bigint':
      return fc.integer();
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'undefined':
    case 'void':
      return fc.constant(undefined);
    case 'literal':
      return fc.constantFrom(...(def.values as unknown[]));
    case 'enum':
      return fc.constantFrom(...Object.values(def.entries as Record<string, unknown>));
    case 'optional':
      return fc.option(next(def.innerType), { nil: undefined });
    case 'nullable':
      return fc.option(next(def.innerType), { nil: null });
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return next(def.innerType);
    case 'pipe':
      return next(def.in);
    case 'lazy':
      return next((def.getter as () => unknown)());
    case 'array':
      return fc.array(next(def.element), { maxLength: depth > 2 ? 2 : 4 });
    case 'tuple':
      return fc.tuple(...(def.items as unknown[]).map(next));
    case 'record':
      return fc.dictionary(
        fc.string({ maxLength: 12 }),
        next(def.valueType) as fc.Arbitrary<unknown>,
        { maxKeys: 3 },
      );
    case 'object': {
      const shape = def.shape as Record<string, unknown>;
      const required: string[] = [];
      const arbs: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, v] of Object.entries(shape)) {
        arbs[k] = next(v);
        if (defOf(v).type !== 'optional') required.push(k);
      }
      return fc.record(arbs, { requiredKeys: required });
    }
    case 'union':
      return fc.oneof(...(def.options as unknown[]).map(next));
    case 'intersection':
      return next(def.left);
    default:
      return fc.jsonValue();
  }
}

type Mutation = 'drop-key' | 'replace' | 'wrong-type' | 'wrap-array' | 'deep-nest' | 'huge-string';

/** A copy of `value` with one node changed: a key dropped, a value replaced or retyped, and so on. */
export function mutate(value: unknown, pick: number, how: Mutation, filler: unknown): unknown {
  const copy = structuredClone(value) as unknown;
  const nodes: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v))
      for (const [i, c] of v.entries()) {
        nodes.push({ parent: v, key: i });
        walk(c);
      }
    else if (v && typeof v === 'object')
      for (const [k, c] of Object.entries(v)) {
        nodes.push({ parent: v as Record<string, unknown>, key: k });
        walk(c);
      }
  };
  walk(copy);
  if (nodes.length === 0) return how === 'wrap-array' ? [copy] : filler;
  const { parent, key } = nodes[pick % nodes.length] as (typeof nodes)[number];
  const set = (v: unknown) => {
    (parent as Record<string | number, unknown>)[key] = v;
  };
  const current = (parent as Record<string | number, unknown>)[key];
  switch (how) {
    case 'drop-key':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
      break;
    case 'replace':
      set(filler);
      break;
    case 'wrong-type':
      set(typeof current === 'string' ? 12345 : typeof current === 'number' ? '12345' : 'x');
      break;
    case 'wrap-array':
      set([current]);
      break;
    case 'deep-nest':
      set(JSON.parse(`${'['.repeat(200)}1${']'.repeat(200)}`));
      break;
    case 'huge-string':
      set('A'.repeat(300_000));
      break;
    default: {
      const never: never = how;
      throw new Error(`unknown mutation ${String(never)}`);
    }
  }
  return copy;
}

/**
 * Byte-level damage: truncation, a flipped byte, bytes that are not UTF-8 (anywhere, or inside a
 * string value, where the JSON stays well-formed and only a strict decoder notices), or garbage.
 */
export const byteMutations = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({ kind: fc.constant('not-utf8' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('not-utf8-in-string' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
);

export function damage(bytes: Buffer, m: DamageOp): Buffer {
  switch (m.kind) {
    case 'truncate':
      return bytes.subarray(0, bytes.length === 0 ? 0 : m.at % bytes.length);
    case 'flip': {
      const out = Buffer.from(bytes);
      if (out.length > 0)
        out[m.at % out.length] = (out[m.at % out.length] as number) ^ (1 << m.bit);
      return out;
    }
    case 'not-utf8': {
      const at = bytes.length === 0 ? 0 : m.at % bytes.length;
      return Buffer.concat([
        bytes.subarray(0, at),
        Buffer.from([0xc3, 0x28, 0xff]),
        bytes.subarray(at),
      ]);
    }
    case 'not-utf8-in-string': {
      // Just after the opening quote of a string value (`:"` or `: "`).
      const starts: number[] = [];
      for (let i = 1; i < bytes.length; i++) {
        if (bytes[i] !== 0x22) continue;
        const prev = bytes[i - 1] === 0x20 ? bytes[i - 2] : bytes[i - 1];
        if (prev === 0x3a) starts.push(i + 1);
      }
      if (starts.length === 0) return damage(bytes, { kind: 'not-utf8', at: m.at });
      const at = starts[m.at % starts.length] as number;
      return Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at)]);
    }
    case 'garbage':
      return Buffer.from(m.bytes);
    default: {
      const never: never = m;
      throw new Error(`unknown damage ${JSON.stringify(never)}`);
    }
  }
}

export type DamageOp =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'not-utf8'; at: number }
  | { kind: 'not-utf8-in-string'; at: number }
  | { kind: 'garbage'; bytes: Uint8Array };

export const mutations = fc.record({
  pick: fc.nat(),
  how: fc.constantFrom<Mutation>(
    'drop-key',
    'replace',
    'wrong-type',
    'wrap-array',
    'deep-nest',
    'huge-string',
  ),
  filler: fc.jsonValue({ maxDepth: 2 }),
});
