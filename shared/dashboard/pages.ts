// Server-rendered pages of the dashboard: overview, image list, one image with its timeline, sign-in and errors.
import { SEVERITIES } from '../findings/finding.js';
import type { FleetRow } from '../ledger/fleet-index.js';
import { verdictChart } from './chart.js';
import { href, html, SafeHtml } from './html.js';
import type { AuditRow, ImageDetail, ImagesAnswer, ImagesFilter, Overview } from './queries.js';

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}
header{background:#1f2a44;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:baseline}
header a{color:#fff;text-decoration:none}header strong{font-size:18px}
main{padding:16px 24px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 16px;margin:0 0 16px}
h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;color:#555}td.num,th.num{text-align:right}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:26px}.card a{text-decoration:none;color:inherit}
.deny,.denied,.revoked{color:#c62828}.allow,.attested{color:#2e7d32}.pending,.scanning,.pushed,.evaluated{color:#8a6d00}
.muted{color:#666}.nowrap{white-space:nowrap}.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}.grid section{margin:0}
ol.timeline{list-style:none;padding:0;margin:0}ol.timeline li{border-left:3px solid #1f2a44;padding:2px 0 8px 12px;margin-left:6px}
form.filters{display:flex;gap:8px;flex-wrap:wrap;align-items:end}form.filters label{display:flex;flex-direction:column;font-size:12px}
.legend span{margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
.l-allow{background:#2e7d32}.l-deny{background:#c62828}.l-pending{background:#9e9e9e}
`;

export function layout(title: string, nonce: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Clearance</title><style nonce="${nonce}">${new SafeHtml(STYLE)}</style></head>
<body><header><strong>Clearance</strong><a href="${href('overview')}">Overview</a><a href="${href('images')}">Images</a></header>
<main>${body}</main></body></html>`.value;
}

const day = (iso: string | null) => (iso ? iso.slice(0, 10) : '—');
const when = (iso: string | null) => (iso ? iso.replace('T', ' ').slice(0, 19) : '—');
const imageLink = (id: string, label: string) =>
  html`<a href="${href('image', { id })}">${label}</a>`;
const rowName = (r: Pick<FleetRow, 'name' | 'tags' | 'digest'>) =>
  `${r.name}${r.tags[0] ? `:${r.tags[0]}` : `@${r.digest.slice(0, 19)}`}`;

function daysSince(iso: string | null, now: Date): number | null {
  if (!iso) return null;
  return Math.max(0, Math.floor((now.getTime() - Date.parse(iso)) / 86_400_000));
}

export function overviewPage(o: Overview, now: Date): SafeHtml {
  const cards = (['denied', 'attested', 'pending', 'stale'] as const).map(
    (k) =>
      html`<div class="card"><a href="${href('images', { state: k })}"><span class="${k}">${k}</span><b data-count="${k}">${o.kinds[k]}</b></a></div>`,
  );
  return html`<h1>Fleet overview</h1>
<div class="cards"><div class="card"><span>images</span><b data-count="total">${o.total}</b></div>${cards}</div>
<div class="grid">
<section id="environments"><h2>Verdicts by environment</h2><table><thead><tr><th>environment</th><th class="num">allow</th><th class="num">deny</th><th class="num">pending</th></tr></thead><tbody>
${o.environments.map(
  (e) =>
    html`<tr data-env="${e.env}"><td>${e.env}</td><td class="num allow">${e.allow}</td><td class="num deny"><a href="${href('images', { env: e.env, state: 'denied' })}">${e.deny}</a></td><td class="num pending">${e.pending}</td></tr>`,
)}</tbody></table>
<p class="muted">By state: ${Object.entries(o.states)
    .sort()
    .map(([s, v]) => html`<span class="${s}">${s} ${v}</span> · `)}</p></section>
<section id="chart"><h2>Verdict changes per day</h2>${verdictChart(o.days)}
<div class="legend"><span><i class="l-allow"></i>allow</span><span><i class="l-deny"></i>deny</span><span><i class="l-pending"></i>pending</span></div></section>
</div>
<section id="teams"><h2>Denied images by team</h2>${
    o.teams.some((t) => t.denied > 0)
      ? html`<table><thead><tr><th>team</th><th class="num">denied</th><th class="num">images</th><th>top reasons and remediation</th></tr></thead><tbody>
${o.teams
  .filter((t) => t.denied > 0)
  .map(
    (t) =>
      html`<tr data-team="${t.team}"><td class="nowrap">${t.team}</td><td class="num deny"><a data-denied href="${href('images', { team: t.team, state: 'denied' })}">${t.denied}</a></td><td class="num">${t.images}</td><td>${t.topReasons.map(
        (r) =>
          html`<div><span class="mono">${r.ruleId}</span> × ${r.images}${r.remediation ? html` — <span class="muted">e.g. ${r.remediation}</span>` : ''}</div>`,
      )}</td></tr>`,
  )}</tbody></table>`
      : html`<p class="muted">No denied images.</p>`
  }</section>
<section id="stale"><h2>Stale bases: rebuild needed</h2>${
    o.stale.length > 0
      ? html`<table><thead><tr><th>image</th><th>team</th><th>base</th><th>rebuild needed since</th></tr></thead><tbody>
${o.stale.map(
  (r) =>
    html`<tr><td>${imageLink(r.id, rowName(r))}</td><td>${r.team}</td><td class="mono">${r.baseName ?? '—'}</td><td>${day(r.staleSince)} <span class="muted">(${daysSince(r.staleSince, now) ?? '?'} days)</span></td></tr>`,
)}</tbody></table>${o.staleTotal > o.stale.length ? html`<p><a href="${href('images', { state: 'stale' })}">all ${o.staleTotal} stale images</a></p>` : ''}`
      : html`<p class="muted">No image is built on a superseded base.</p>`
  }</section>
<div class="grid">
<section id="exceptions"><h2>Exceptions expiring within 30 days</h2>${
    o.exceptions.length > 0
      ? html`<table><thead><tr><th>vulnerability</th><th>owner</th><th>expires</th><th class="num">images</th></tr></thead><tbody>
${o.exceptions.map(
  (x) =>
    html`<tr data-exception="${x.id}"><td><a href="${href('images', { cve: x.id })}">${x.id}</a><div class="muted">${x.reason}</div></td><td>${x.owner}</td><td>${x.expires} <span class="muted">(${x.daysLeft} days)</span></td><td class="num">${x.images}</td></tr>`,
)}</tbody></table>`
      : html`<p class="muted">No exception in the current policy expires in the next 30 days.</p>`
  }</section>
<section id="cves"><h2>Vulnerabilities across the fleet</h2><table><thead><tr><th>vulnerability</th><th>severity</th><th class="num">images</th><th class="num">fixable</th><th class="num">no fix</th></tr></thead><tbody>
${o.cves.map(
  (c) =>
    html`<tr data-cve="${c.id}"><td><a href="${href('images', { cve: c.id })}">${c.id}</a></td><td>${c.severity}</td><td class="num" data-images>${c.images}</td><td class="num">${c.fixable}</td><td class="num">${c.images - c.fixable}</td></tr>`,
)}</tbody></table></section>
</div>
<p class="muted">Policy ${o.policyHash ?? '(none applied)'} · generated ${when(o.generatedAt)} UTC · ${o.reads} documents read</p>`;
}

export function imagesPage(f: ImagesFilter, a: ImagesAnswer): SafeHtml {
  const input = (name: keyof ImagesFilter, label: string, placeholder: string) =>
    html`<label>${label}<input name="${name}" value="${f[name] ?? ''}" placeholder="${placeholder}"></label>`;
  return html`<h1>Images</h1>
<section><form class="filters" method="get" action="images">
<label>state<select name="state"><option value="">any</option>${(['denied', 'attested', 'pending', 'stale'] as const).map((s) => html`<option${f.state === s ? html` selected` : ''}>${s}</option>`)}</select></label>
${input('team', 'team', 'payments')}${input('repo', 'repository glob', 'us-docker.pkg.dev/acme/**')}${input('cve', 'vulnerability', 'CVE-2005-2541')}${input('env', 'environment', 'prod')}${input('since', 'pushed since', '7d')}
<button type="submit">Filter</button></form></section>
<section><table id="images"><thead><tr><th>image</th><th>team</th><th>state</th><th>verdicts</th><th>top reason</th><th>pushed</th></tr></thead><tbody>
${a.images.map(
  (r) =>
    html`<tr data-id="${r.id}"><td>${imageLink(r.id, rowName(r))}</td><td>${r.team}</td><td class="${r.state}">${r.state}${r.kinds.includes('stale') ? html` <span class="muted">stale</span>` : ''}</td><td>${Object.entries(
      r.decisions,
    )
      .sort()
      .map(
        ([env, d]) => html`<span class="${d}">${env}:${d}</span> `,
      )}</td><td class="muted">${r.topReason?.message ?? ''}</td><td>${day(r.pushedAt)}</td></tr>`,
)}</tbody></table>
<p class="muted" data-shown="${a.images.length}">${a.images.length} image${a.images.length === 1 ? '' : 's'}${a.truncated ? ' (more: narrow the filter or raise limit)' : ''} · index ${a.plan.index}${a.plan.token ? ` on ${a.plan.token}` : ''} · ${a.reads} documents read</p></section>`;
}

/** One line per audit entry: what happened, in words, from the fields each kind carries. */
export function describeAudit(e: AuditRow): string {
  const d = e.detail;
  const s = (k: string) =>
    typeof d[k] === 'string' || typeof d[k] === 'number' ? String(d[k]) : null;
  const changes = Array.isArray(d.verdictChanges ?? d.changes)
    ? ((d.verdictChanges ?? d.changes) as { environment?: string; from?: string; to?: string }[])
        .map((c) => `${c.environment}: ${c.from ?? 'none'} → ${c.to}`)
        .join(', ')
    : null;
  const parts = [
    s('tag') ? `tag ${s('tag')}` : null,
    s('scanner') ? `scanner ${s('scanner')}` : null,
    s('total') !== null && e.kind.startsWith('scan') ? `${s('total')} findings` : null,
    s('from') && s('to') ? `${s('base') ?? 'base'} ${s('from')} → ${s('to')}` : null,
    s('cause') ? `cause ${s('cause')}` : null,
    s('reason') ? `${s('reason')}` : null,
    changes ? `verdict ${changes}` : null,
  ].filter(Boolean);
  return parts.join(' · ');
}

export function imagePage(d: ImageDetail): SafeHtml {
  const r = d.image;
  const counts = r.scan.counts;
  const fixable = d.findings.filter((f) => f.fixState === 'fixed').length;
  return html`<h1 class="mono">${r.registry}/${r.repository}@${r.digest}</h1>
<div class="grid"><section id="record"><h2>Record</h2><table>
<tr><th>state</th><td class="${r.state}" data-state>${r.state}</td></tr>
<tr><th>team</th><td>${d.team}</td></tr>
<tr><th>tags</th><td>${r.tags.join(', ') || '—'}</td></tr>
<tr><th>pushed</th><td>${when(r.pushedAt)}</td></tr>
<tr><th>base</th><td class="mono">${r.base ? `${r.base.name ?? '?'} (${r.base.status}${r.base.supersededAt ? `, superseded ${day(r.base.supersededAt)}` : ''})` : '—'}</td></tr>
<tr><th>provenance</th><td class="mono">${r.provenance ? `${r.provenance.builderId ?? '?'} ← ${r.provenance.sourceRepository ?? '?'}` : '—'}</td></tr>
<tr><th>labels</th><td class="mono">${Object.entries(r.labels).map(([k, v]) => html`<div>${k}=${v}</div>`)}</td></tr>
</table></section>
<section id="findings"><h2>Findings</h2><p>${r.scan.status}${r.scan.scanner ? ` by ${r.scan.scanner}` : ''}${r.scan.completedAt ? `, ${when(r.scan.completedAt)}` : ''}${r.scan.failureReason ? ` — ${r.scan.failureReason}` : ''}</p>
${counts ? html`<p>${[...SEVERITIES].reverse().map((s) => (counts.bySeverity[s] ? html`<span>${s} ${counts.bySeverity[s]}</span> · ` : ''))} total ${counts.total} · ${fixable} fixable</p>` : ''}
<table><tbody>${d.findings
    .slice(0, 25)
    .map(
      (f) =>
        html`<tr><td><a href="${href('images', { cve: f.id })}">${f.id}</a></td><td>${f.severity}</td><td class="mono">${f.package} ${f.installedVersion}</td><td>${f.fixedVersion ? `fix ${f.fixedVersion}` : f.fixState}</td></tr>`,
    )}</tbody></table>${d.findings.length > 25 ? html`<p class="muted">${d.findings.length - 25} more</p>` : ''}</section></div>
<section id="verdicts"><h2>Verdict per environment</h2><table><thead><tr><th>environment</th><th>decision</th><th>reasons</th></tr></thead><tbody>
${Object.entries(r.verdicts)
  .sort()
  .map(
    ([env, v]) =>
      html`<tr data-env="${env}"><td>${env} <span class="muted">(${v.mode})</span></td><td class="${v.decision}">${v.decision}</td><td>${v.reasons.map(
        (x) =>
          html`<div><span class="${x.level === 'deny' ? 'deny' : 'pending'}">${x.level}</span> <span class="mono">${x.ruleId}</span>: ${x.message}${x.remediation ? html`<div class="muted">→ ${x.remediation}</div>` : ''}</div>`,
      )}</td></tr>`,
  )}</tbody></table></section>
<section id="attestations"><h2>Attestations</h2>${
    r.attestations.length > 0
      ? html`<table><tbody>${r.attestations.map(
          (a) =>
            html`<tr><td>${a.format}</td><td class="mono">${a.keyId}</td><td>${when(a.createdAt)}</td><td class="${a.revokedAt ? 'revoked' : 'attested'}">${a.revokedAt ? `revoked ${when(a.revokedAt)}: ${a.revokedReason ?? ''}` : 'active'}</td></tr>`,
        )}</tbody></table>`
      : html`<p class="muted">None.</p>`
  }</section>
<section id="timeline"><h2>Timeline</h2><ol class="timeline">${d.audit.map(
    (e) =>
      html`<li data-kind="${e.kind}"><b>${e.kind}</b> <span class="muted">${when(e.at ?? e.recordedAt)}${e.source ? ` · ${e.source}` : ''}</span><div>${describeAudit(e)}</div></li>`,
  )}</ol></section>`;
}

export function loginPage(message: string | null): SafeHtml {
  return html`<h1>Sign in</h1><section>
${message ? html`<p class="deny">${message}</p>` : ''}
<p>Send a Google ID token (<span class="mono">Authorization: Bearer …</span>, e.g. through <span class="mono">gcloud run services proxy</span>), or paste the dashboard token (locally: <span class="mono">.clearance/dev-token</span>).</p>
<form method="post" action="login"><label>token <input type="password" name="token" autocomplete="off" required></label> <button type="submit">Sign in</button></form></section>`;
}

export function errorPage(status: number, message: string): SafeHtml {
  return html`<h1>${status}</h1><section><p>${message}</p><p><a href="${href('overview')}">Back to the overview</a></p></section>`;
}
