// Every parser at a trust boundary either returns or throws InvalidInputError: never a TypeError a handler would retry forever.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../shared/errors.js';
import {
  normaliseDistribution,
  normaliseGithubPackage,
  normaliseHarbor,
  parseGcrEvent,
  parseGcrEventData,
} from '../../../shared/events/registry-events.js';
import {
  findingsFromVulnerabilityOccurrence,
  notificationKind,
  parseDiscoveryOccurrence,
} from '../../../shared/findings/container-analysis.js';
import { parseReport } from '../../../shared/findings/reports.js';
import { readProvenance } from '../../../shared/provenance/provenance.js';
import { fixture } from '../real-world-fixtures.js';

const PARSERS: Array<[string, (x: unknown) => unknown]> = [
  ['parseReport', parseReport],
  ['parseGcrEvent', parseGcrEvent],
  [
    'parseGcrEventData',
    (x) => parseGcrEventData(typeof x === 'string' ? x : (JSON.stringify(x) ?? '')),
  ],
  ['normaliseDistribution', (x) => normaliseDistribution(x, { registry: 'localhost:5000' })],
  ['normaliseHarbor', normaliseHarbor],
  ['normaliseGithubPackage', normaliseGithubPackage],
  ['notificationKind', notificationKind],
  ['parseDiscoveryOccurrence', parseDiscoveryOccurrence],
  ['findingsFromVulnerabilityOccurrence', findingsFromVulnerabilityOccurrence],
  ['readProvenance', readProvenance],
];

/** Runs the parser; true when it accepted, false when it rejected with InvalidInputError. */
function onlyInvalidInput(fn: (x: unknown) => unknown, input: unknown): boolean {
  try {
    fn(input);
    return true;
  } catch (err) {
    if (!(err instanceof InvalidInputError)) {
      throw new Error(`threw ${String(err)} for ${JSON.stringify(input)?.slice(0, 300)}`);
    }
    return false;
  }
}

/** Replaces one value somewhere in a fixture by an arbitrary one. */
function mutate(value: unknown, path: number[], replacement: unknown): unknown {
  if (path.length === 0 || typeof value !== 'object' || value === null) return replacement;
  const entries = Object.entries(value);
  if (entries.length === 0) return replacement;
  const [head = 0, ...rest] = path;
  const index = head % entries.length;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value)
    ? [...value]
    : { ...value };
  const [key, child] = entries[index] as [string, unknown];
  (copy as Record<string, unknown>)[key] = mutate(child, rest, replacement);
  return copy;
}

const SEEDS: Array<[string, string]> = [
  ['parseReport', 'scanners/trivy-debian-buster.json'],
  ['parseReport', 'scanners/grype-debian-image.json'],
  ['parseReport', 'vex/openvex-v0.2.0-alpine-openssl.json'],
  ['parseGcrEvent', 'gcr/gcr-insert-digest-tag.json'],
  ['normaliseDistribution', 'registry/distribution-notification-push-envelope.json'],
  ['normaliseHarbor', 'registry/harbor-scanning-completed.json'],
  [
    'findingsFromVulnerabilityOccurrence',
    'containeranalysis/ca-occurrence-vulnerability-ubuntu.json',
  ],
  ['readProvenance', 'slsa/intoto-statement-v0.1-slsa-v0.2-tekton-chains.json'],
  ['readProvenance', 'slsa/dsse-envelope-slsa-v0.2-github-actions.json'],
];

describe('hostile input', () => {
  it.each(PARSERS)('%s: arbitrary JSON values only ever raise InvalidInputError', (_name, fn) => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything()), (input) => {
        onlyInvalidInput(fn, input);
      }),
      { numRuns: 300 },
    );
  });

  it.each(SEEDS)('%s on a mutated %s only ever raises InvalidInputError', (name, file) => {
    const fn = PARSERS.find(([n]) => n === name)?.[1] as (x: unknown) => unknown;
    const seed = fixture(file);
    fn(seed); // the fixture itself is accepted
    const outcomes = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
        fc.oneof(
          fc.jsonValue(),
          fc.constantFrom(null, '', '$PROJECT', 'A'.repeat(3000), -1, 1e308, [], {}),
        ),
        (path, replacement) => {
          outcomes[
            onlyInvalidInput(fn, mutate(seed, path, replacement)) ? 'accepted' : 'rejected'
          ] += 1;
        },
      ),
      { numRuns: 300 },
    );
    // The mutations do reach fields the parser checks.
    expect(outcomes.rejected).toBeGreaterThan(0);
    expect(outcomes.accepted + outcomes.rejected).toBe(300);
  });

  it('a property named __proto__ is data, not a prototype', () => {
    const body = JSON.parse('{"__proto__": {"polluted": true}, "SchemaVersion": 2, "Results": []}');
    expect(parseReport(body).findings).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
