import { describe, expect, it } from 'vitest';
import {
  findingsFromVulnerabilityOccurrence,
  formatGrafeasVersion,
  notificationKind,
  parseDiscoveryOccurrence,
  timestampToIso,
} from '../../../shared/findings/container-analysis.js';
import type { Finding } from '../../../shared/findings/finding.js';
import { thrown } from '../../support/invalid-input.js';
import { fixture } from '../real-world-fixtures.js';

type Json = Record<string, unknown>;
const REAL_DIGEST = 'sha256:d2eecb48a0d1c6be1ec96d2d0a52c3b95936c4cdde2208299c04d6106b769658';

interface DescribeOutput {
  discovery_summary: { discovery: Json[] };
  package_vulnerability_summary: { vulnerabilities: Record<string, Json[]> };
}

function allFindings(file: string): Finding[] {
  const d = fixture<DescribeOutput>(file);
  return Object.values(d.package_vulnerability_summary.vulnerabilities)
    .flat()
    .flatMap((o) => findingsFromVulnerabilityOccurrence(o));
}

describe('VULNERABILITY occurrences', () => {
  it('ca-occurrence-vulnerability-ubuntu.json: MAXIMUM fixed version = no fix; issue severity wins', () => {
    expect(
      findingsFromVulnerabilityOccurrence(
        fixture('containeranalysis/ca-occurrence-vulnerability-ubuntu.json'),
      ),
    ).toEqual([
      {
        id: 'CVE-2019-7577',
        aliases: [],
        package: 'libsdl2',
        packageType: 'OS',
        installedVersion: '2.0.8+dfsg1-1ubuntu1.18.04.5~18.04.1',
        fixedVersion: null,
        fixState: 'not-fixed',
        // occurrence severity MEDIUM, effectiveSeverity LOW, packageIssue.effectiveSeverity LOW
        severity: 'LOW',
        // cvssv3.baseScore (8.8) is preferred over cvssScore (6.8, the NIST v2 score)
        cvss: 8.8,
        source: 'container-analysis',
        description: 'NIST vectors: AV:N/AC:M/Au:N/C:P/I:P/A:P',
        url: 'http://people.ubuntu.com/~ubuntu-security/cve/CVE-2019-7577',
      },
    ]);
  });

  it('gcloud-describe-vulns-discovery-debian12.json: every occurrence yields a fixable GO_STDLIB finding', () => {
    const findings = allFindings('containeranalysis/gcloud-describe-vulns-discovery-debian12.json');
    expect(findings.length).toBeGreaterThan(5);
    const first = findings.find((f) => f.id === 'CVE-2023-29405');
    expect(first).toMatchObject({
      package: 'go',
      packageType: 'GO_STDLIB',
      installedVersion: '1.17.6',
      fixedVersion: '1.19.10',
      fixState: 'fixed',
      severity: 'CRITICAL',
      cvss: 9.8,
      url: 'https://security-tracker.debian.org/tracker/CVE-2023-29405',
    });
    expect(findings.every((f) => f.fixState === 'fixed' && f.fixedVersion !== null)).toBe(true);
  });

  it('gcloud-describe-vulns-discovery-anonymized.json: epochs, no-fix, and missing severities', () => {
    const findings = allFindings(
      'containeranalysis/gcloud-describe-vulns-discovery-anonymized.json',
    );
    const byId = (id: string) => findings.filter((f) => f.id === id);
    // fullName carries the epoch: Debian's epoch:name-revision
    expect(byId('CVE-2023-45853')[0]).toMatchObject({
      installedVersion: '1:1.2.13.dfsg-1',
      fixState: 'not-fixed',
      fixedVersion: null,
    });
    // Two occurrences of one CVE, one per installed version.
    expect(byId('CVE-2025-64756').map((f) => [f.installedVersion, f.fixedVersion])).toEqual([
      ['10.4.5', '10.5.0'],
      ['11.0.3', '11.1.0'],
    ]);
    // severity MEDIUM but effectiveSeverity LOW (distro rating) → LOW
    expect(byId('CVE-2016-2781')[0]?.severity).toBe('LOW');
    expect(byId('CVE-2018-6829')[0]?.severity).toBe('MINIMAL');
    // no severity, no CVSS at all
    expect(byId('CVE-2025-6020')[0]).toMatchObject({ severity: 'UNSPECIFIED', cvss: null });
    // only effectiveSeverity on the issue, no occurrence-level one
    expect(byId('CVE-2025-9820')[0]).toMatchObject({ severity: 'LOW', cvss: null });
  });

  it('grafeas-docs-occurrence-vulnerability.json: rejected, it is the retired v1beta1 shape', () => {
    const err = thrown(() =>
      findingsFromVulnerabilityOccurrence(
        fixture('containeranalysis/grafeas-docs-occurrence-vulnerability.json'),
      ),
    );
    // The v1beta1 hint comes first: its note "exampleVulnerabilityNote" has no id either, but
    // "no vulnerability id" would send the user looking in the wrong place.
    expect(err.message).toMatch(/retired Grafeas v1beta1 form/);
    expect(err.message).not.toMatch(/no vulnerability id/);
    const withId = fixture<Json>('containeranalysis/grafeas-docs-occurrence-vulnerability.json');
    (withId.vulnerability as Json).shortDescription = 'CVE-2020-0001';
    expect(thrown(() => findingsFromVulnerabilityOccurrence(withId)).message).toMatch(
      /retired Grafeas v1beta1 form/,
    );
  });

  it('reads ids from shortDescription and aliases from related URLs', () => {
    const occ = {
      kind: 'VULNERABILITY',
      noteName: 'projects/goog-vulnz/notes/some-internal-note',
      vulnerability: {
        shortDescription: 'GHSA-abcd-2345-wxyz',
        relatedUrls: [{ url: 'https://nvd.nist.gov/vuln/detail/cve-2024-1234' }],
        packageIssue: [
          {
            affectedPackage: 'lib',
            affectedVersion: { name: '2.0', revision: '3', epoch: 1, kind: 'NORMAL' },
            fixedVersion: { name: '2.1', kind: 'NORMAL' },
          },
        ],
        fixAvailable: true,
      },
    };
    expect(findingsFromVulnerabilityOccurrence(occ)[0]).toMatchObject({
      id: 'GHSA-abcd-2345-wxyz',
      aliases: ['CVE-2024-1234'],
      installedVersion: '1:2.0-3',
      fixedVersion: '2.1',
      fixState: 'fixed',
      severity: 'UNSPECIFIED',
    });
  });

  it('uses the occurrence fixAvailable when the issue says nothing', () => {
    const base = {
      noteName: 'projects/goog-vulnz/notes/CVE-2024-1',
      vulnerability: { packageIssue: [{ affectedPackage: 'x', affectedVersion: { name: '1' } }] },
    };
    expect(findingsFromVulnerabilityOccurrence(base)[0]?.fixState).toBe('unknown');
    const withFix = { ...base, vulnerability: { ...base.vulnerability, fixAvailable: true } };
    expect(findingsFromVulnerabilityOccurrence(withFix)[0]?.fixState).toBe('fixed');
  });

  it('rejects other kinds and occurrences without package issues', () => {
    expect(
      thrown(() => findingsFromVulnerabilityOccurrence({ kind: 'DISCOVERY', vulnerability: {} }))
        .message,
    ).toMatch(/kind is DISCOVERY/);
    expect(
      thrown(() =>
        findingsFromVulnerabilityOccurrence({
          noteName: 'projects/goog-vulnz/notes/CVE-2024-1',
          vulnerability: { packageIssue: [] },
        }),
      ).message,
    ).toMatch(/no packageIssue/);
    expect(thrown(() => findingsFromVulnerabilityOccurrence({})).message).toMatch(
      /^invalid VULNERABILITY occurrence: vulnerability: /,
    );
  });
});

describe('DISCOVERY occurrences', () => {
  it('ca-occurrence-discovery.derived.json: rejected, its digest is a 42-hex-digit stand-in', () => {
    const err = thrown(() =>
      parseDiscoveryOccurrence(fixture('containeranalysis/ca-occurrence-discovery.derived.json')),
    );
    expect(err.message).toMatch(/sha256 digest must have 64 hex characters, got 42/);
  });

  it('the same occurrence with the image digest from its image_summary is a finished scan', () => {
    const d = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    d.resourceUri = `https://northamerica-northeast1-docker.pkg.dev/testing/test-docker/test-image@${REAL_DIGEST}`;
    expect(parseDiscoveryOccurrence(d)).toEqual({
      resourceUri: `https://northamerica-northeast1-docker.pkg.dev/testing/test-docker/test-image@${REAL_DIGEST}`,
      image: {
        registry: 'northamerica-northeast1-docker.pkg.dev',
        repository: 'testing/test-docker/test-image',
        tag: null,
        digest: REAL_DIGEST,
        name: 'northamerica-northeast1-docker.pkg.dev/testing/test-docker/test-image',
      },
      status: 'success',
      analysisStatus: 'FINISHED_SUCCESS',
      completedAt: '2023-08-23T16:57:34.358Z',
      isVulnerabilityScan: true,
    });
  });

  it('the anonymised gcloud output is rejected: its digest is "33cee…tolstoy", not hex', () => {
    const d = fixture<DescribeOutput>(
      'containeranalysis/gcloud-describe-vulns-discovery-anonymized.json',
    );
    expect(
      thrown(() => parseDiscoveryOccurrence(d.discovery_summary.discovery[0])).message,
    ).toMatch(/lower-case hex/);
  });

  it('the debian12 gcloud output is rejected too: its digest was cut to "deadbeef" + 34 zeros', () => {
    const d = fixture<DescribeOutput>(
      'containeranalysis/gcloud-describe-vulns-discovery-debian12.json',
    );
    expect(
      thrown(() => parseDiscoveryOccurrence(d.discovery_summary.discovery[0])).message,
    ).toMatch(/got 42/);
  });

  const withStatus = (status: string, extra: Json = {}) => {
    const d = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    d.resourceUri = `https://us-docker.pkg.dev/p/r/i@${REAL_DIGEST}`;
    d.discovery = { analysisStatus: status, ...extra };
    return d;
  };
  it.each([
    ['FINISHED_SUCCESS', 'success'],
    ['COMPLETE', 'success'],
    ['FINISHED_FAILED', 'failed'],
    ['FINISHED_UNSUPPORTED', 'unsupported'],
    ['PENDING', 'pending'],
    ['SCANNING', 'pending'],
    ['ANALYSIS_STATUS_UNSPECIFIED', 'pending'],
    ['', 'pending'],
  ])('analysisStatus %s → %s', (status, want) => {
    const parsed = parseDiscoveryOccurrence(withStatus(status));
    expect(parsed.status).toBe(want);
    // Only a final status carries a completion time (here the occurrence's updateTime).
    expect(parsed.completedAt).toBe(want === 'pending' ? undefined : '2023-08-23T16:57:34.487Z');
  });

  it('reports the analysis error of a failed scan', () => {
    const parsed = parseDiscoveryOccurrence(
      withStatus('FINISHED_FAILED', {
        analysisStatusError: { code: 13, message: 'failed to extract layer' },
        analysisError: [{ code: 13, message: 'failed to extract layer' }, { message: 'timeout' }],
      }),
    );
    expect(parsed.analysisError).toBe('failed to extract layer; timeout');
  });

  it('rejects occurrences of another kind', () => {
    const d = withStatus('FINISHED_SUCCESS');
    d.kind = 'VULNERABILITY';
    expect(thrown(() => parseDiscoveryOccurrence(d)).message).toMatch(/kind is VULNERABILITY/);
  });
});

describe('notifications', () => {
  it('ca-notification-occurrence.json: a VULNERABILITY notification, ignorable without I/O', () => {
    expect(notificationKind(fixture('containeranalysis/ca-notification-occurrence.json'))).toEqual({
      name: 'projects/cloudy-demos/occurrences/356d0419-453e-41e0-a652-c30a8fda45c4',
      kind: 'VULNERABILITY',
      project: 'cloudy-demos',
      location: null,
      occurrenceId: '356d0419-453e-41e0-a652-c30a8fda45c4',
      notificationTime: '2023-04-11T03:21:10.010Z',
      isDiscovery: false,
    });
  });

  it('ca-notification-occurrence-pull-decoded.json: rejected, the project is "$PROJECT"', () => {
    const msg = fixture<{ message: { data: unknown } }>(
      'containeranalysis/ca-notification-occurrence-pull-decoded.json',
    );
    expect(thrown(() => notificationKind(msg.message.data)).message).toMatch(
      /name: contains an unexpanded placeholder/,
    );
  });

  it('reads DISCOVERY notifications from JSON text and bytes, regional names included', () => {
    const text = JSON.stringify({
      name: 'projects/p-1/locations/us-east1/occurrences/abc',
      kind: 'DISCOVERY',
      notificationTime: '2020-11-06T15:03:50.531082Z',
    });
    const fromText = notificationKind(text);
    expect(fromText).toMatchObject({
      isDiscovery: true,
      location: 'us-east1',
      occurrenceId: 'abc',
    });
    expect(notificationKind(Buffer.from(text))).toEqual(fromText);
  });

  it.each([
    ['not JSON', 'test message 3', /not JSON/],
    [
      'wrong name',
      { name: 'projects/p/notes/n', kind: 'DISCOVERY' },
      /must be projects\/P\/occurrences\/ID/,
    ],
    [
      'lower-case kind',
      { name: 'projects/p/occurrences/o', kind: 'discovery' },
      /kind: must be a Grafeas note kind/,
    ],
    ['no kind', { name: 'projects/p/occurrences/o' }, /kind: /],
    ['huge', 'x'.repeat(5000), /larger than 4096/],
  ])('rejects %s', (_label, msg, reason) => {
    expect(thrown(() => notificationKind(msg)).message).toMatch(reason);
  });
});

describe('helpers', () => {
  it('formats Grafeas versions Debian-style', () => {
    expect(formatGrafeasVersion({ name: '1.2', revision: '3', epoch: 2 })).toBe('2:1.2-3');
    expect(formatGrafeasVersion({ name: '1.2', revision: '', epoch: 0 })).toBe('1.2');
    expect(formatGrafeasVersion({ name: '', kind: 'MAXIMUM' })).toBeNull();
    expect(formatGrafeasVersion({ fullName: '1:9.1-1', name: '9.1' })).toBe('1:9.1-1');
  });

  it('reads both timestamp forms', () => {
    expect(timestampToIso('2023-03-30T23:09:28.443028Z')).toBe('2023-03-30T23:09:28.443Z');
    expect(timestampToIso({ seconds: '1680217768', nanos: 443028000 })).toBe(
      '2023-03-30T23:09:28.443Z',
    );
    expect(timestampToIso({ seconds: 0, nanos: 0 })).toBeNull();
    expect(timestampToIso('')).toBeNull();
  });
});
