import { describe, expect, it } from 'vitest';
import { VexStatement } from '../../../shared/findings/finding.js';
import { matchProduct, parsePurl, VexIndex } from '../../../shared/policy/vex.js';
import { image, openVexStatements, VEX_SIGNER } from './helpers.js';

const ALPINE = 'sha256:124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126';
const IMG = image({ registry: 'us-docker.pkg.dev', repository: 'acme/apps/web', digest: ALPINE });
const OTHER = `sha256:${'9'.repeat(64)}`;

describe('parsePurl', () => {
  it('reads type, name, decoded version and qualifiers', () => {
    expect(
      parsePurl('pkg:oci/web@sha256%3A00ff?repository_url=us-docker.pkg.dev/acme/apps/web&tag=v1'),
    ).toEqual({
      type: 'oci',
      namespace: null,
      name: 'web',
      version: 'sha256:00ff',
      qualifiers: { repository_url: 'us-docker.pkg.dev/acme/apps/web', tag: 'v1' },
    });
    expect(parsePurl('pkg:apk/alpine/libssl3@3.0.8-r3')).toMatchObject({
      name: 'libssl3',
      version: '3.0.8-r3',
    });
    expect(parsePurl('not-a-purl')).toBeNull();
    expect(parsePurl('pkg:oci')).toBeNull();
  });
});

describe('matchProduct', () => {
  it.each([
    // by digest (default): any name, any repository_url
    [`pkg:oci/alpine@${ALPINE.replace(':', '%3A')}`, false, true],
    [
      `pkg:oci/alpine@${ALPINE.replace(':', '%3A')}?repository_url=docker.io/library/alpine`,
      false,
      true,
    ],
    [`pkg:oci/alpine@${OTHER.replace(':', '%3A')}`, false, false],
    [`us-docker.pkg.dev/acme/apps/web@${ALPINE}`, false, true],
    [`us-docker.pkg.dev/acme/apps/web@${OTHER}`, false, false],
    // repository products only with matchRepository
    ['pkg:oci/web?repository_url=us-docker.pkg.dev/acme/apps/web', false, false],
    ['pkg:oci/web?repository_url=us-docker.pkg.dev/acme/apps/web', true, true],
    ['pkg:oci/web?repository_url=us-docker.pkg.dev/acme/apps/api', true, false],
    ['pkg:oci/web', true, false],
    ['us-docker.pkg.dev/acme/**', false, false],
    ['us-docker.pkg.dev/acme/**', true, true],
    ['us-docker.pkg.dev/acme/apps/web:v1', true, true],
    // other package types never designate an image
    [`pkg:deb/debian/web@${ALPINE}`, true, false],
  ])('%s (matchRepository %s) → %s', (product, matchRepository, expected) => {
    expect(matchProduct(product, IMG, matchRepository)).toBe(expected);
  });
});

const RANKS = new Map([[VEX_SIGNER, 0]]);

describe('VexIndex', () => {
  const statements = openVexStatements('openvex-v0.2.0-alpine-openssl.json');
  const on = { apply: true, matchRepository: false };

  it('reads the real OpenVEX document', () => {
    expect(statements.map((s) => [s.vulnerability, s.status])).toEqual([
      ['CVE-2023-1255', 'fixed'],
      ['CVE-2023-2650', 'fixed'],
      ['CVE-2023-2975', 'fixed'],
      ['CVE-2023-3446', 'not_affected'],
      ['CVE-2023-3817', 'not_affected'],
    ]);
  });

  it('clears findings in the listed subcomponents only', () => {
    const index = new VexIndex(statements, IMG, on, RANKS);
    expect(index.clears({ id: 'CVE-2023-3817', aliases: [], package: 'libcrypto3' })).toBe(true);
    expect(index.clears({ id: 'CVE-2023-3817', aliases: [], package: 'musl' })).toBe(false);
    expect(index.clears({ id: 'CVE-2099-0001', aliases: [], package: 'libssl3' })).toBe(false);
    // Through an alias of the finding, case-insensitively.
    expect(index.clears({ id: 'GHSA-x', aliases: ['cve-2023-3446'], package: 'libssl3' })).toBe(
      true,
    );
  });

  it('ignores statements for other images and when VEX is off', () => {
    const other = image({ digest: OTHER });
    expect(new VexIndex(statements, other, on, RANKS).size).toBe(0);
    expect(
      new VexIndex(statements, IMG, { apply: false, matchRepository: false }, RANKS).size,
    ).toBe(0);
  });

  const stmt = (status: VexStatement['status'], timestamp: string | null) =>
    VexStatement.parse({
      vulnerability: 'CVE-2024-7',
      products: [`pkg:oci/web@${ALPINE.replace(':', '%3A')}`],
      status,
      timestamp,
      documentId: `doc-${status}-${timestamp}`,
      signer: VEX_SIGNER,
    });
  const f = { id: 'CVE-2024-7', aliases: [], package: 'openssl' };

  it.each([
    [
      'the latest statement decides: affected after not_affected',
      [stmt('not_affected', '2026-01-01T00:00:00Z'), stmt('affected', '2026-02-01T00:00:00Z')],
      false,
    ],
    [
      'the latest statement decides: not_affected after under_investigation',
      [
        stmt('under_investigation', '2026-01-01T00:00:00Z'),
        stmt('not_affected', '2026-02-01T00:00:00Z'),
      ],
      true,
    ],
    [
      'a tie goes to the cautious status',
      [stmt('not_affected', '2026-01-01T00:00:00Z'), stmt('affected', '2026-01-01T00:00:00Z')],
      false,
    ],
    [
      'an undated statement is the oldest',
      [stmt('affected', null), stmt('not_affected', '2026-01-01T00:00:00Z')],
      true,
    ],
    ['whole-product statement without subcomponents', [stmt('not_affected', null)], true],
  ])('%s', (_name, list, expected) => {
    expect(new VexIndex(list, IMG, on, RANKS).clears(f)).toBe(expected);
    expect(new VexIndex([...list].reverse(), IMG, on, RANKS).clears(f)).toBe(expected);
  });

  it('applies only statements a trusted signer signed', () => {
    const unsigned = { ...stmt('not_affected', '2026-01-01T00:00:00Z'), signer: null };
    const stranger = { ...stmt('not_affected', '2026-01-01T00:00:00Z'), signer: 'vendor' };
    expect(new VexIndex([unsigned, stranger], IMG, on, RANKS).size).toBe(0);
    expect(new VexIndex([unsigned, stranger], IMG, on, RANKS).clears(f)).toBe(false);
  });

  it('never lets a less trusted signer override a more trusted one, however recent', () => {
    const ranks = new Map([
      ['security', 0],
      ['vendor', 1],
    ]);
    const affected = { ...stmt('affected', '2026-01-01T00:00:00Z'), signer: 'security' };
    const laterVendor = { ...stmt('not_affected', '2026-06-01T00:00:00Z'), signer: 'vendor' };
    expect(new VexIndex([affected, laterVendor], IMG, on, ranks).clears(f)).toBe(false);
    expect(new VexIndex([laterVendor, affected], IMG, on, ranks).clears(f)).toBe(false);
    // The vendor's statement counts where the security team said nothing.
    expect(new VexIndex([laterVendor], IMG, on, ranks).clears(f)).toBe(true);
    // And the more trusted signer's own later statement still decides.
    const cleared = { ...stmt('not_affected', '2026-02-01T00:00:00Z'), signer: 'security' };
    expect(new VexIndex([affected, cleared, laterVendor], IMG, on, ranks).clears(f)).toBe(true);
  });
});
