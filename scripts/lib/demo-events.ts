// What the demo builds and the events it generates for it: a distroless-like base, apps on it, and the Artifact Analysis occurrences of their scans.

/** A dpkg status.d entry, as distroless images list their packages (one file per package). */
function dpkgStatus(pkg: string, version: string, description: string): string {
  return [
    `Package: ${pkg}`,
    'Status: install ok installed',
    'Priority: required',
    'Architecture: amd64',
    `Version: ${version}`,
    `Description: ${description}`,
    '',
  ].join('\n');
}

export const TAR_VERSION = '1.34+dfsg-1.2+deb12u1';

/**
 * A distroless-like base: no shell, no package manager, a non-root user (65532, as distroless'
 * `:nonroot`), and a handful of Debian 12 packages listed the way distroless lists them.
 * `patch` bumps the packages a point release would (base-files, tzdata): a new digest, same tag.
 */
export function baseImageFiles(patch: number): Record<string, string> {
  return {
    'etc/os-release': [
      'PRETTY_NAME="Distroless"',
      'NAME="Debian GNU/Linux"',
      'ID="debian"',
      'VERSION_ID="12"',
      'VERSION="Debian GNU/Linux 12 (bookworm)"',
      'HOME_URL="https://github.com/GoogleContainerTools/distroless"',
      '',
    ].join('\n'),
    'etc/passwd': [
      'root:x:0:0:root:/root:/sbin/nologin',
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin',
      'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin',
      '',
    ].join('\n'),
    'etc/group': ['root:x:0:', 'nobody:x:65534:', 'nonroot:x:65532:', ''].join('\n'),
    'home/nonroot/.keep': '',
    'var/lib/dpkg/status.d/base-files': dpkgStatus(
      'base-files',
      `12.4+deb12u${10 + patch}`,
      'Debian base system miscellaneous files',
    ),
    'var/lib/dpkg/status.d/netbase': dpkgStatus('netbase', '6.4', 'Basic TCP/IP networking system'),
    'var/lib/dpkg/status.d/tzdata': dpkgStatus(
      'tzdata',
      patch === 0 ? '2024a-0+deb12u1' : `2025b-0+deb12u${patch}`,
      'time zone and daylight-saving time data',
    ),
    'var/lib/dpkg/status.d/tar': dpkgStatus(
      'tar',
      TAR_VERSION,
      'GNU version of the tar archiving utility',
    ),
  };
}

const DEBIAN_12 = 'cpe:/o:debian:debian_linux:12';

/**
 * CVE-2005-2541 in Debian's tar as Artifact Analysis reports it: CVSS 10 (severity CRITICAL), but
 * Debian's own rating as effective severity (LOW), and no fix (`fixedVersion.kind: MAXIMUM`) — the
 * shape of `gcloud artifacts docker images scan` output for Debian images.
 */
export function tarOccurrence(resourceUri: string, now: string): Record<string, unknown> {
  return {
    kind: 'VULNERABILITY',
    noteName: 'projects/goog-vulnz/notes/CVE-2005-2541',
    resourceUri,
    createTime: now,
    updateTime: now,
    vulnerability: {
      cvssScore: 10,
      severity: 'CRITICAL',
      effectiveSeverity: 'LOW',
      fixAvailable: false,
      shortDescription: 'CVE-2005-2541',
      longDescription:
        'Tar 1.15.1 does not properly warn the user when extracting setuid or setgid files, which may allow local users or remote attackers to gain privileges.',
      packageIssue: [
        {
          affectedCpeUri: DEBIAN_12,
          affectedPackage: 'tar',
          affectedVersion: {
            name: '1.34+dfsg',
            revision: '1.2+deb12u1',
            kind: 'NORMAL',
            fullName: TAR_VERSION,
          },
          fixedCpeUri: DEBIAN_12,
          fixedPackage: 'tar',
          fixedVersion: { kind: 'MAXIMUM' },
          effectiveSeverity: 'LOW',
          packageType: 'OS',
        },
      ],
      relatedUrls: [
        { label: 'More Info', url: 'https://security-tracker.debian.org/tracker/CVE-2005-2541' },
        { label: 'More Info', url: 'https://nvd.nist.gov/vuln/detail/CVE-2005-2541' },
      ],
    },
  };
}

/** CVE-2023-45288 (HTTP/2 CONTINUATION flood) in the Go standard library an app binary was built with: HIGH, fixed in 1.22.2. */
export function goStdlibOccurrence(resourceUri: string, now: string): Record<string, unknown> {
  return {
    kind: 'VULNERABILITY',
    noteName: 'projects/goog-vulnz/notes/CVE-2023-45288',
    resourceUri,
    createTime: now,
    updateTime: now,
    vulnerability: {
      cvssScore: 7.5,
      cvssVersion: 'CVSS_VERSION_3',
      cvssv3: {
        baseScore: 7.5,
        attackVector: 'ATTACK_VECTOR_NETWORK',
        attackComplexity: 'ATTACK_COMPLEXITY_LOW',
        privilegesRequired: 'PRIVILEGES_REQUIRED_NONE',
        userInteraction: 'USER_INTERACTION_NONE',
        scope: 'SCOPE_UNCHANGED',
        confidentialityImpact: 'IMPACT_NONE',
        integrityImpact: 'IMPACT_NONE',
        availabilityImpact: 'IMPACT_HIGH',
      },
      severity: 'HIGH',
      effectiveSeverity: 'HIGH',
      fixAvailable: true,
      shortDescription: 'CVE-2023-45288',
      longDescription:
        'An attacker may cause an HTTP/2 endpoint to read arbitrary amounts of header data by sending an excessive number of CONTINUATION frames.',
      packageIssue: [
        {
          affectedCpeUri: DEBIAN_12,
          affectedPackage: 'go',
          affectedVersion: { name: '1.22.1', kind: 'NORMAL', fullName: '1.22.1' },
          fixedCpeUri: DEBIAN_12,
          fixedPackage: 'go',
          fixedVersion: { name: '1.22.2', kind: 'NORMAL', fullName: '1.22.2' },
          fixAvailable: true,
          effectiveSeverity: 'HIGH',
          packageType: 'GO_STDLIB',
          fileLocation: [{ filePath: 'app/server' }],
        },
      ],
      relatedUrls: [{ label: 'More Info', url: 'https://nvd.nist.gov/vuln/detail/CVE-2023-45288' }],
    },
  };
}

/** The DISCOVERY occurrence Artifact Analysis updates when a scan finishes. */
export function discoveryOccurrence(resourceUri: string, now: string): Record<string, unknown> {
  return {
    kind: 'DISCOVERY',
    noteName: 'projects/goog-analysis/notes/PACKAGE_VULNERABILITY',
    resourceUri,
    createTime: now,
    updateTime: now,
    discovery: {
      analysisStatus: 'FINISHED_SUCCESS',
      analysisCompleted: { analysisType: ['OS', 'GO'] },
      continuousAnalysis: 'ACTIVE',
      lastScanTime: now,
    },
  };
}

/** The container-analysis-occurrences-v1 message for an occurrence. */
export function occurrenceNotification(name: string, kind: string, now: string) {
  return { name, kind, notificationTime: now };
}
