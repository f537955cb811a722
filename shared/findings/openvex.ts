// Reads OpenVEX v0.2.0 documents into VexStatements the policy applies to findings.
import { z } from 'zod';
import { parseInput } from '../parse-input.js';
import { type VexStatement, VexStatus } from './finding.js';

const text = (max: number) => z.string().max(max);
/**
 * A product or subcomponent: `@id` and/or `identifiers` (purl, cpe22, cpe23). The spec makes `@id`
 * optional, so a component may be named by identifiers alone; one of them must be given.
 */
const Component = z
  .object({
    '@id': text(2000).min(1).nullish(),
    identifiers: z
      .object({
        purl: text(2000).min(1).nullish(),
        cpe22: text(2000).min(1).nullish(),
        cpe23: text(2000).min(1).nullish(),
      })
      .nullish(),
  })
  .refine(
    (c) => !!(c['@id'] || c.identifiers?.purl || c.identifiers?.cpe23 || c.identifiers?.cpe22),
    'a component needs an @id or identifiers (purl, cpe23 or cpe22)',
  );
type Component = z.infer<typeof Component>;

/** Every name a component is given: its @id and its identifiers, in that order, without repeats. */
function componentIds(c: Component): string[] {
  const ids = [c['@id'], c.identifiers?.purl, c.identifiers?.cpe23, c.identifiers?.cpe22];
  return [...new Set(ids.filter((i): i is string => !!i))];
}

export const OpenVexStatement = z
  .object({
    vulnerability: z.object({
      name: text(200).min(1),
      '@id': text(2000).nullish(),
      aliases: z.array(text(200)).max(100).nullish(),
    }),
    products: z
      .array(
        z.intersection(
          Component,
          z.object({ subcomponents: z.array(Component).max(10_000).nullish() }),
        ),
      )
      .min(1, 'a statement must name at least one product')
      .max(10_000),
    status: VexStatus,
    justification: text(200).nullish(),
    impact_statement: text(10_000).nullish(),
    timestamp: text(100).nullish(),
  })
  .superRefine((s, ctx) => {
    // OpenVEX requires it, and a bare not_affected would silently suppress a finding.
    if (s.status === 'not_affected' && !s.justification && !s.impact_statement) {
      ctx.addIssue({
        code: 'custom',
        message: 'not_affected needs a justification or an impact_statement',
        path: ['justification'],
      });
    }
  });

export const OpenVexDocument = z.object({
  '@context': text(200).refine(
    (c) => c.startsWith('https://openvex.dev/ns/v0.2') || c === 'https://openvex.dev/ns',
    'must be https://openvex.dev/ns/v0.2.0',
  ),
  '@id': text(2000).min(1),
  author: text(1000).nullish(),
  timestamp: text(100).nullish(),
  version: z.number().nullish(),
  statements: z.array(OpenVexStatement).max(100_000),
});
export type OpenVexDocument = z.infer<typeof OpenVexDocument>;

/**
 * One VexStatement per OpenVEX statement. Subcomponents of all its products are merged into one
 * list: our model limits a statement to subcomponents, not to subcomponents per product.
 */
export function vexFromOpenVex(doc: OpenVexDocument): VexStatement[] {
  return doc.statements.map((s) => ({
    vulnerability: s.vulnerability.name,
    aliases: s.vulnerability.aliases ?? [],
    products: [...new Set(s.products.flatMap(componentIds))],
    subcomponents: [
      ...new Set(s.products.flatMap((p) => (p.subcomponents ?? []).flatMap(componentIds))),
    ],
    status: s.status,
    justification: s.justification ?? null,
    impactStatement: s.impact_statement ?? null,
    timestamp: s.timestamp ?? doc.timestamp ?? null,
    documentId: doc['@id'],
    author: doc.author ?? null,
    // Set by the upload path once the document's signature is verified.
    signer: null,
    source: null,
  }));
}

export function parseOpenVex(json: unknown): { vex: VexStatement[]; subjects: string[] } {
  const doc = parseInput(OpenVexDocument, json, 'OpenVEX document');
  const vex = vexFromOpenVex(doc);
  return { vex, subjects: [...new Set(vex.flatMap((s) => s.products))] };
}
