// Test builders for the policy tests: images, findings, and small adapters for the real scanner/VEX fixtures.
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { Finding, type Severity, VexStatement } from '../../../shared/findings/finding.js';
import { ImageRecord } from '../../../shared/image-record.js';
import { type Policy, parsePolicy, policyHash } from '../../../shared/policy/policy.js';

export { FIXTURES } from '../real-world-fixtures.js';

import { FIXTURES } from '../real-world-fixtures.js';
export const NOW = new Date('2026-11-29T10:00:00Z');

/** The signer the test VEX statements carry, and the policy `trust` section that trusts it for VEX. */
export const VEX_SIGNER = 'security';
export const TRUST_VEX_SIGNER = {
  signers: [
    {
      name: VEX_SIGNER,
      keyless: {
        issuer: 'https://token.actions.githubusercontent.com',
        subject: 'https://github.com/acme/**',
      },
      evidence: ['vex'],
    },
  ],
};

export const DIGEST = `sha256:${'a'.repeat(64)}`;

/** Overrides in the ledger's input shape: defaulted fields may be left out. */
export type ImageOverrides = Partial<z.input<typeof ImageRecord>>;

export function image(overrides: ImageOverrides = {}): ImageRecord {
  return ImageRecord.parse({
    id: 'us-docker.pkg.dev%2Facme%2Fapps%2Fweb@sha256',
    registry: 'us-docker.pkg.dev',
    repository: 'acme/apps/web',
    digest: DIGEST,
    state: 'scanning',
    updatedAt: NOW.toISOString(),
    pushedAt: '2026-11-28T09:00:00Z',
    created: '2026-11-28T08:55:00Z',
    user: '65532',
    scan: { status: 'finished', scanner: 'artifact-analysis', completedAt: '2026-11-28T09:05:00Z' },
    ...overrides,
  });
}

export function finding(
  overrides: Partial<Finding> & Pick<Finding, 'id'> & { severity: Severity },
): Finding {
  return Finding.parse({
    package: 'openssl',
    installedVersion: '3.0.11-1',
    fixedVersion: null,
    fixState: 'not-fixed',
    cvss: null,
    source: 'grype',
    ...overrides,
  });
}

export function policy(yaml: string): { policy: Policy; hash: string } {
  const p = parsePolicy(yaml);
  return { policy: p, hash: policyHash(p) };
}

const GRYPE_SEVERITY: Record<string, Severity> = {
  Negligible: 'MINIMAL',
  Low: 'LOW',
  Medium: 'MEDIUM',
  High: 'HIGH',
  Critical: 'CRITICAL',
  Unknown: 'UNSPECIFIED',
};

interface GrypeMatch {
  vulnerability: {
    id: string;
    severity: string;
    fixedInVersion?: string;
    fix?: { versions: string[]; state: string };
  };
  relatedVulnerabilities?: { id: string }[];
  artifact: { name: string; version: string; type?: string };
}

/**
 * A deliberately tiny Grype → Finding adapter for these tests only (the real normaliser is another
 * module). Handles both the old schema (`fixedInVersion`) and the current one (`fix`).
 */
export function grypeFindings(file: string): Finding[] {
  const doc = JSON.parse(readFileSync(`${FIXTURES}/scanners/${file}`, 'utf8')) as {
    matches: GrypeMatch[];
  };
  return doc.matches.map((m) => {
    const v = m.vulnerability;
    const fixedVersion =
      v.fixedInVersion ?? (v.fix?.versions.length ? v.fix.versions.join(', ') : null);
    const fixState = fixedVersion
      ? 'fixed'
      : v.fix?.state === 'wont-fix'
        ? 'wont-fix'
        : v.fix?.state === 'unknown'
          ? 'unknown'
          : 'not-fixed';
    return Finding.parse({
      id: v.id,
      aliases: (m.relatedVulnerabilities ?? []).map((r) => r.id).filter((id) => id !== v.id),
      package: m.artifact.name,
      packageType: m.artifact.type ?? null,
      installedVersion: m.artifact.version,
      fixedVersion,
      fixState,
      severity: GRYPE_SEVERITY[v.severity] ?? 'UNSPECIFIED',
      cvss: null,
      source: 'grype',
    });
  });
}

interface OpenVexDoc {
  '@id': string;
  timestamp?: string;
  author?: string;
  statements: {
    vulnerability: { name: string; aliases?: string[] };
    products: { '@id': string; subcomponents?: { '@id': string }[] }[];
    status: string;
    justification?: string;
    impact_statement?: string;
    timestamp?: string;
  }[];
}

/** Tiny OpenVEX → VexStatement adapter (one statement per product, subcomponents kept). */
export function openVexStatements(file: string): VexStatement[] {
  const doc = JSON.parse(readFileSync(`${FIXTURES}/vex/${file}`, 'utf8')) as OpenVexDoc;
  return doc.statements.flatMap((s) =>
    s.products.map((p) =>
      VexStatement.parse({
        vulnerability: s.vulnerability.name,
        aliases: s.vulnerability.aliases ?? [],
        products: [p['@id']],
        subcomponents: (p.subcomponents ?? []).map((c) => c['@id']),
        status: s.status,
        justification: s.justification ?? null,
        impactStatement: s.impact_statement ?? null,
        timestamp: s.timestamp ?? doc.timestamp ?? null,
        documentId: doc['@id'],
        author: doc.author ?? null,
        signer: VEX_SIGNER,
      }),
    ),
  );
}
