// Reference scanning of hcl2json values, plus the HashiCorp parse/format wrappers the infra check relies on.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are HCL, where ${...} is interpolation.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  findTraversals,
  formatHcl,
  parseHcl,
  wholeExpression,
} from '../../scripts/lib/infra-hcl.js';

// The HCL tools are Go compiled to WASM: the first call instantiates them, which is slow on a busy machine.
const SLOW = { timeout: 60_000 };
beforeAll(async () => {
  await parseHcl('warm-up.tf', '');
  await formatHcl('');
}, 120_000);

const refs = (s: string): string[] => findTraversals(s).map((t) => t.join('.'));

describe('findTraversals', SLOW, () => {
  it('finds variables, locals, resources, data sources and modules in an expression', () => {
    expect(
      refs(
        '${merge(local.a, { x = var.b }, google_x.y[each.key].id, data.google_project.p.number, module.m.out)}',
      ),
    ).toEqual([
      'local.a',
      'var.b',
      'google_x.y',
      'each.key',
      'data.google_project.p.number',
      'module.m.out',
    ]);
  });

  it('reads interpolations inside templates and ignores the literal text around them', () => {
    expect(refs('clr-${lower(var.name)}-and.not.this')).toEqual(['var.name']);
    expect(refs('plain.text with dots')).toEqual([]);
  });

  it('leaves out names bound by for expressions, but not what they iterate over', () => {
    expect(
      refs('${{ for k, v in local.fns : k => v.topic if v.enabled && var.on }}').sort(),
    ).toEqual(['local.fns', 'var.on']);
    expect(refs('${[for f in google_x.y : f.url]}')).toEqual(['google_x.y']);
  });

  it('handles nested strings with their own interpolations', () => {
    expect(refs('${var.a == "x-${local.b}" ? "y" : google_z.w.id}')).toEqual([
      'var.a',
      'local.b',
      'google_z.w.id',
    ]);
  });

  it('treats $${ as a literal and reads %{ } directives', () => {
    expect(refs('$${var.not_a_ref} %{ if var.flag }on%{ endif }')).toEqual(['var.flag']);
    expect(refs('%{ for s in var.list }${s}%{ endfor }')).toEqual(['var.list']);
  });

  it('skips function names, attributes after an index and bare object keys', () => {
    expect(refs('${jsonencode({ topic = google_t.a[0].name, n = length(var.l) })}')).toEqual([
      'google_t.a',
      'var.l',
    ]);
  });

  it('follows splats and numeric attributes', () => {
    expect(refs('${google_t.a[*].id}')).toEqual(['google_t.a']);
    expect(refs('${google_t.a.0.id}')).toEqual(['google_t.a.0.id']);
  });
});

describe('wholeExpression', SLOW, () => {
  it('unwraps a single interpolation and rejects templates', () => {
    expect(wholeExpression('${each.value.entry_point}')).toBe('each.value.entry_point');
    expect(wholeExpression('${a}-${b}')).toBeUndefined();
    expect(wholeExpression('literal')).toBeUndefined();
    expect(wholeExpression(42)).toBeUndefined();
  });
});

describe('HashiCorp HCL wrappers', SLOW, () => {
  it('parses HCL into hcl2json objects', async () => {
    const json = await parseHcl('a.tf', 'variable "x" {\n  default = 1\n}\n');
    expect(json).toEqual({ variable: { x: [{ default: 1 }] } });
  });

  it('rejects a syntax error with the file and position', async () => {
    await expect(parseHcl('bad.tf', 'resource "a" "b" {\n')).rejects.toThrow(/bad\.tf:1/);
  });

  it('formats like terraform fmt', async () => {
    expect(await formatHcl('a   =  1\nbb = 2\n')).toBe('a  = 1\nbb = 2\n');
  });
});
