// Plain-text renderings of the ledger queries for the CLI: aligned tables for people, stripped of control characters.
import type { FleetRow } from '../ledger/fleet-index.js';
import { describeAudit } from './pages.js';
import type { ImageDetail } from './queries.js';

/** Values come from registries and labels: no escape sequences reach the terminal. */
export function clean(s: unknown): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return String(s ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

export function table(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows].map((r) => r.map(clean));
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return `${all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

export function imagesTable(rows: readonly FleetRow[]): string {
  return table(
    ['IMAGE', 'TEAM', 'STATE', 'VERDICTS', 'PUSHED', 'TOP REASON'],
    rows.map((r) => [
      `${r.name}${r.tags[0] ? `:${r.tags[0]}` : ''}@${r.digest.slice(7, 19)}`,
      r.team,
      `${r.state}${r.kinds.includes('stale') ? ' (stale)' : ''}`,
      Object.entries(r.decisions)
        .sort()
        .map(([e, d]) => `${e}:${d}`)
        .join(' '),
      (r.pushedAt ?? '').slice(0, 10),
      r.topReason?.ruleId ?? '',
    ]),
  );
}

export function imageText(d: ImageDetail): string {
  const r = d.image;
  const lines = [
    `${r.registry}/${r.repository}@${r.digest}`,
    `  state:       ${r.state}`,
    `  team:        ${d.team}`,
    `  tags:        ${r.tags.join(', ') || '-'}`,
    `  pushed:      ${r.pushedAt ?? '-'}`,
    `  base:        ${r.base ? `${r.base.name ?? '?'} (${r.base.status}${r.base.supersededAt ? `, rebuild needed since ${r.base.supersededAt}` : ''})` : '-'}`,
    `  provenance:  ${r.provenance ? `${r.provenance.builderId ?? '?'} from ${r.provenance.sourceRepository ?? '?'}` : '-'}`,
    '',
    `findings: scan ${r.scan.status}${r.scan.scanner ? ` by ${r.scan.scanner}` : ''}${r.scan.completedAt ? ` at ${r.scan.completedAt}` : ''}`,
  ];
  if (r.scan.counts) {
    const c = r.scan.counts;
    lines.push(
      `  ${c.total} total: ${Object.entries(c.bySeverity)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ')}; ${c.byFixState.fixed ?? 0} fixable`,
    );
  }
  for (const f of d.findings
    .filter((x) => x.severity === 'CRITICAL' || x.severity === 'HIGH')
    .slice(0, 10)) {
    lines.push(
      `  ${f.severity.padEnd(8)} ${f.id} ${f.package} ${f.installedVersion}${f.fixedVersion ? ` (fix ${f.fixedVersion})` : ''}`,
    );
  }
  lines.push('', 'verdicts:');
  for (const [env, v] of Object.entries(r.verdicts).sort()) {
    lines.push(`  ${env} (${v.mode}): ${v.decision.toUpperCase()}  evaluated ${v.evaluatedAt}`);
    for (const x of v.reasons) {
      lines.push(`    ${x.level} ${x.ruleId}: ${x.message}`);
      if (x.remediation) lines.push(`      fix: ${x.remediation}`);
    }
  }
  if (Object.keys(r.verdicts).length === 0) lines.push('  (none yet)');
  lines.push('', 'attestations:');
  for (const a of r.attestations) {
    lines.push(
      `  ${a.format} ${a.keyId} ${a.createdAt}${a.revokedAt ? ` REVOKED ${a.revokedAt}: ${a.revokedReason ?? ''}` : ''}`,
    );
  }
  if (r.attestations.length === 0) lines.push('  (none)');
  lines.push('', 'timeline:');
  for (const e of d.audit) {
    const desc = describeAudit(e);
    lines.push(`  ${(e.at ?? e.recordedAt ?? '').padEnd(24)} ${e.kind}${desc ? `  ${desc}` : ''}`);
  }
  return `${lines.map(clean).join('\n')}\n`;
}
