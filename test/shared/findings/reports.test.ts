import { describe, expect, it } from 'vitest';
import { countFindings, type Finding, findingKey } from '../../../shared/findings/finding.js';
import { COSIGN_VULN_PREDICATE_TYPE, parseReport } from '../../../shared/findings/reports.js';
import { trivyFixState } from '../../../shared/findings/trivy.js';
import { thrown } from '../../support/invalid-input.js';
import { fixture } from '../real-world-fixtures.js';

type Json = Record<string, unknown>;

const byId = (findings: Finding[], id: string) => findings.filter((f) => f.id === id);

describe('Trivy', () => {
  it('trivy-debian-buster.json: accepted; affected = not-fixed, fixed carries its version', () => {
    const r = parseReport(fixture('scanners/trivy-debian-buster.json'));
    expect(r.format).toBe('trivy');
    expect(r.vex).toEqual([]);
    expect(r.scanner).toBe('trivy dev');
    expect(r.subjects).toEqual([
      'ghcr.io/aquasecurity/trivy-test-images:debian-buster',
      'testdata/fixtures/images/debian-buster.tar.gz',
    ]);
    expect(r.findings).toEqual([
      {
        id: 'CVE-2019-18276',
        aliases: [],
        package: 'bash',
        packageType: 'debian',
        installedVersion: '5.0-4',
        fixedVersion: null,
        fixState: 'not-fixed',
        severity: 'LOW',
        // SeveritySource is debian, which has no CVSS entry: NVD's v3 score is used.
        cvss: 7.8,
        source: 'trivy',
        description:
          'bash: when effective UID is not equal to its real UID the saved UID is not dropped',
        url: 'https://avd.aquasec.com/nvd/cve-2019-18276',
      },
      {
        id: 'CVE-2019-18224',
        aliases: [],
        package: 'libidn2-0',
        packageType: 'debian',
        installedVersion: '2.0.5-1',
        fixedVersion: '2.0.5-1+deb10u1',
        fixState: 'fixed',
        severity: 'CRITICAL',
        cvss: 9.8,
        source: 'trivy',
        description: 'libidn2: heap-based buffer overflow in idn2_to_ascii_4i in lib/lookup.c',
        url: 'https://avd.aquasec.com/nvd/cve-2019-18224',
      },
    ]);
  });

  it('trivy-debian-10-node-image-all-statuses.json: every Status maps, not_affected is left out', () => {
    const r = parseReport(fixture('scanners/trivy-debian-10-node-image-all-statuses.json'));
    // RepoTags/RepoDigests are [""] and ArtifactName is "": the report names no image.
    expect(r.subjects).toEqual([]);
    expect(r.notAffected).toBe(1);
    expect(r.findings.map((f) => [f.id, f.package, f.fixState])).toEqual([
      ['CVE-2011-3374', 'apt', 'unknown'], // unknown
      ['TEMP-0841856-B18BAF', 'bash', 'not-fixed'], // affected
      ['CVE-2018-1000876', 'binutils', 'fixed'], // fixed (no FixedVersion given)
      ['CVE-2018-12697', 'binutils', 'unknown'], // under_investigation
      ['CVE-2018-12698', 'binutils', 'wont-fix'], // will_not_fix
      ['CVE-2018-12699', 'binutils', 'not-fixed'], // fix_deferred
      ['CVE-2018-12934', 'binutils', 'wont-fix'], // end_of_life
    ]);
    expect(byId(r.findings, 'CVE-2018-1000876')[0]?.fixedVersion).toBeNull();
    expect(byId(r.findings, 'TEMP-0841856-B18BAF')[0]?.cvss).toBeNull();
    expect(byId(r.findings, 'CVE-2019-18276')).toEqual([]);
  });

  it.each([
    ['fixed', null, 'fixed'],
    ['affected', '1.2', 'not-fixed'],
    ['will_not_fix', null, 'wont-fix'],
    ['fix_deferred', null, 'not-fixed'],
    ['end_of_life', null, 'wont-fix'],
    ['under_investigation', null, 'unknown'],
    ['unknown', null, 'unknown'],
    ['not_affected', null, null],
    [undefined, '1.2', 'fixed'],
    [undefined, null, 'not-fixed'],
    ['some_new_status', null, 'unknown'],
  ] as const)('Status %s with FixedVersion %s → %s', (status, fixed, want) => {
    expect(trivyFixState(status, fixed)).toBe(want);
  });

  it('rejects other schema versions and malformed vulnerabilities with paths', () => {
    expect(thrown(() => parseReport({ SchemaVersion: 1, Results: [] })).message).toMatch(
      /SchemaVersion: only Trivy JSON SchemaVersion 2/,
    );
    const bad = {
      SchemaVersion: 2,
      Results: [{ Target: 't', Vulnerabilities: [{ VulnerabilityID: 'CVE-1', Severity: 'LOW' }] }],
    };
    const err = thrown(() => parseReport(bad));
    expect(err.message).toMatch(/^invalid Trivy report: Results\.0\.Vulnerabilities\.0\.PkgName: /);
    expect(err.details?.issues).toEqual([
      { path: 'Results.0.Vulnerabilities.0.PkgName', message: expect.any(String) },
    ]);
  });
});

describe('Grype', () => {
  it('grype-debian-image.json: accepted; severities, fix states, aliases and the duplicate match', () => {
    const r = parseReport(fixture('scanners/grype-debian-image.json'));
    // Which database produced it is kept, findings or not.
    expect(r.database).toBe('2021-12-24T08:14:02Z');
    expect(parseReport(fixture('scanners/trivy-debian-buster.json')).database).toBeNull();
    expect(r.format).toBe('grype');
    expect(r.scanner).toBe('grype 0.28.0');
    expect(r.subjects).toEqual([
      'vulnerable-image:latest',
      'sha256:9d8825ab20ac86b40eb71495bece1608a302fb180384740697a28c2b0a5a0fc6',
    ]);
    // Six matches, the last two identical (GHSA-v6rh-hp5x-86rv in Django 3.2.9): five findings.
    expect(r.findings).toHaveLength(5);
    expect(byId(r.findings, 'CVE-2004-0971')[0]).toMatchObject({
      severity: 'MINIMAL', // Negligible
      fixState: 'not-fixed',
      fixedVersion: null,
      cvss: 2.1, // only the related NVD record has a score
      package: 'libgssapi-krb5-2',
      installedVersion: '1.17-3+deb10u3',
      packageType: 'deb',
      aliases: [], // the related record is the same id
    });
    expect(byId(r.findings, 'CVE-2021-32626')[0]).toMatchObject({
      severity: 'HIGH',
      fixState: 'wont-fix',
      fixedVersion: 'fix_1, fix_2',
      cvss: 8.8, // v3.1 preferred over v2.0 (6.5)
    });
    expect(byId(r.findings, 'CVE-2021-33574').map((f) => f.package)).toEqual(['libc-bin', 'libc6']);
    expect(byId(r.findings, 'GHSA-v6rh-hp5x-86rv')[0]).toMatchObject({
      aliases: ['CVE-2021-44420'],
      fixState: 'fixed',
      fixedVersion: '3.2.10',
      cvss: 7.3,
      package: 'Django',
      url: 'https://github.com/advisories/GHSA-v6rh-hp5x-86rv',
    });
  });

  it('grype-debian-image-many-vulns-incl-CVE-2005-2541.json: the older schema (fixedInVersion, cvssV2/V3)', () => {
    const r = parseReport(
      fixture('scanners/grype-debian-image-many-vulns-incl-CVE-2005-2541.json'),
    );
    expect(r.scanner).toBe('grype 0.7.0');
    expect(r.subjects).toEqual([
      'defectdojo/defectdojo-django:1.13.1',
      'sha256:91bc0f1478c6d26e04da5c2a59ac20262ec2661942418e2a3e7c77245d872658',
    ]);
    const keys = new Set(r.findings.map(findingKey));
    expect(keys.size).toBe(r.findings.length);
    const tar = byId(r.findings, 'CVE-2005-2541');
    expect(tar).toHaveLength(1);
    expect(tar[0]).toMatchObject({ package: 'tar', source: 'grype' });
    const counts = countFindings(r.findings);
    // 327 distinct matches; 28 carry fixedInVersion (fixed), the rest none (not-fixed).
    expect(counts.total).toBe(327);
    expect(counts.byFixState).toEqual({ fixed: 28, 'not-fixed': 299, 'wont-fix': 0, unknown: 0 });
    expect(counts.bySeverity).toEqual({
      UNSPECIFIED: 10, // Unknown
      MINIMAL: 106, // Negligible
      LOW: 27,
      MEDIUM: 155,
      HIGH: 24,
      CRITICAL: 5,
    });
    expect(byId(r.findings, 'CVE-2019-18276')[0]).toMatchObject({
      severity: 'MINIMAL',
      cvss: 7.2, // only cvssV2
      fixState: 'not-fixed',
    });
  });

  it('rejects a match without an artifact name', () => {
    const err = thrown(() =>
      parseReport({ matches: [{ vulnerability: { id: 'CVE-1' }, artifact: { version: '1' } }] }),
    );
    expect(err.message).toMatch(/^invalid Grype report: matches\.0\.artifact\.name: /);
  });
});

describe('OpenVEX', () => {
  it('openvex-v0.2.0-alpine-openssl.json: statements with product and subcomponents kept', () => {
    const r = parseReport(fixture('vex/openvex-v0.2.0-alpine-openssl.json'));
    expect(r.format).toBe('openvex');
    expect(r.findings).toEqual([]);
    const product =
      'pkg:oci/alpine@sha256%3A124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126';
    expect(r.subjects).toEqual([product]);
    expect(r.vex.map((s) => [s.vulnerability, s.status])).toEqual([
      ['CVE-2023-1255', 'fixed'],
      ['CVE-2023-2650', 'fixed'],
      ['CVE-2023-2975', 'fixed'],
      ['CVE-2023-3446', 'not_affected'],
      ['CVE-2023-3817', 'not_affected'],
    ]);
    expect(r.vex[3]).toEqual({
      vulnerability: 'CVE-2023-3446',
      aliases: [],
      products: [product],
      subcomponents: ['pkg:apk/alpine/libssl3@3.0.8-r3', 'pkg:apk/alpine/libcrypto3@3.0.8-r3'],
      status: 'not_affected',
      justification: 'vulnerable_code_not_present',
      impactStatement: 'affected functions were removed before packaging',
      // the statement has none: the document's timestamp applies
      timestamp: '2023-07-17T18:28:47.696004345-06:00',
      documentId:
        'https://openvex.dev/docs/public/vex-d4e9020b6d0d26f131d535e055902dd6ccf3e2088bce3079a8cd3588a4b14c78',
      // The document's author is kept as a claim; the signer is set only by a verified upload.
      author: 'The OpenVEX Project <openvex@openssf.org>',
      signer: null,
      source: null,
    });
  });

  it('openvex-v0.2.0-under-investigation.json: the statement keeps its own timestamp', () => {
    const r = parseReport(fixture('vex/openvex-v0.2.0-under-investigation.json'));
    expect(r.vex).toEqual([
      {
        vulnerability: 'CVE-9876-54321',
        aliases: [],
        products: ['pkg:apk/wolfi/bash@1.0.0'],
        subcomponents: [],
        status: 'under_investigation',
        justification: null,
        impactStatement: null,
        timestamp: '2022-12-22T16:36:43-05:00',
        documentId:
          'https://openvex.dev/docs/public/vex-3f59b4dffdeae0183e5e6a9d7a2461fdf86a03c079f4129050bb462eca366beb',
        author: 'John Doe',
        signer: null,
        source: null,
      },
    ]);
  });

  it('rejects not_affected without a justification, unknown statuses, and product-less statements', () => {
    const doc = fixture<{ statements: Json[] }>('vex/openvex-v0.2.0-alpine-openssl.json');
    const statement = doc.statements[3] as Json;
    delete statement.justification;
    delete statement.impact_statement;
    expect(thrown(() => parseReport(doc)).message).toMatch(
      /statements\.3\.justification: not_affected needs a justification or an impact_statement/,
    );
    const other = fixture<{ statements: Json[] }>('vex/openvex-v0.2.0-under-investigation.json');
    (other.statements[0] as Json).status = 'maybe';
    expect(thrown(() => parseReport(other)).message).toMatch(/statements\.0\.status: /);
    (other.statements[0] as Json).status = 'affected';
    (other.statements[0] as Json).products = [];
    expect(thrown(() => parseReport(other)).message).toMatch(
      /statements\.0\.products: a statement must name at least one product/,
    );
  });
});

describe('cosign vulnerability attestations', () => {
  it('cosign-vuln-predicate.json: rejected, scanner.result is null (no findings to ingest)', () => {
    // Accepting it would record a clean scan: 0 findings that no scanner produced.
    const err = thrown(() => parseReport(fixture('scanners/cosign-vuln-predicate.json')));
    expect(err.message).toMatch(/scanner\.result is empty/);
  });

  it('the same predicate embedding Trivy output, in an in-toto Statement, is accepted', () => {
    const predicate = fixture<{ scanner: Json }>('scanners/cosign-vuln-predicate.json');
    predicate.scanner.result = fixture('scanners/trivy-debian-buster.json');
    const digest = 'a'.repeat(64);
    const r = parseReport({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: COSIGN_VULN_PREDICATE_TYPE,
      subject: [{ name: 'ghcr.io/aquasecurity/trivy-test-images', digest: { sha256: digest } }],
      predicate,
    });
    expect(r.format).toBe('cosign-vuln');
    expect(r.findings.map((f) => f.id)).toEqual(['CVE-2019-18276', 'CVE-2019-18224']);
    expect(r.subjects[0]).toBe(`ghcr.io/aquasecurity/trivy-test-images@sha256:${digest}`);
    expect(r.createdAt).toBe('2022-04-12T00:10:00Z');
  });

  it('embeds Grype output as well, and refuses anything else', () => {
    const predicate = fixture<{ scanner: Json }>('scanners/cosign-vuln-predicate.json');
    predicate.scanner.result = fixture('scanners/grype-debian-image.json');
    expect(parseReport(predicate).findings).toHaveLength(5);
    predicate.scanner.result = { hello: 'world' };
    expect(thrown(() => parseReport(predicate)).message).toMatch(/neither Trivy nor Grype/);
  });
});

describe('parseReport', () => {
  it('accepts JSON text and rejects what it cannot recognise', () => {
    expect(parseReport(JSON.stringify(fixture('scanners/grype-debian-image.json'))).format).toBe(
      'grype',
    );
    expect(thrown(() => parseReport('{')).message).toMatch(/not JSON/);
    expect(thrown(() => parseReport([])).message).toMatch(/expected a JSON object/);
    expect(thrown(() => parseReport({ bomFormat: 'CycloneDX' })).message).toMatch(
      /not Trivy JSON.*Grype.*OpenVEX.*cosign/,
    );
  });

  it('parses and de-duplicates a 5,000-finding Trivy report', () => {
    const vulns = Array.from({ length: 5000 }, (_, i) => ({
      VulnerabilityID: `CVE-2024-${10000 + (i % 2500)}`,
      PkgName: `pkg-${i % 2500}`,
      InstalledVersion: '1.0',
      FixedVersion: i % 3 === 0 ? '1.1' : undefined,
      Status: i % 3 === 0 ? 'fixed' : 'affected',
      Severity: ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL', 'UNKNOWN'][i % 5],
    }));
    // Two results list the same 2,500 package/vulnerability pairs (e.g. a layer scanned twice).
    const r = parseReport({
      SchemaVersion: 2,
      Results: [
        { Target: 'a', Type: 'debian', Vulnerabilities: vulns.slice(0, 2500) },
        { Target: 'b', Type: 'debian', Vulnerabilities: vulns.slice(2500) },
      ],
    });
    expect(r.findings).toHaveLength(2500);
    expect(countFindings(r.findings).total).toBe(2500);
  });
});
