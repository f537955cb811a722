// HTML building and page rendering: every value from outside is escaped, whatever it contains.
import { describe, expect, it } from 'vitest';
import { escapeHtml, href, html } from '../../../shared/dashboard/html.js';
import { imagePage, imagesPage, overviewPage } from '../../../shared/dashboard/pages.js';
import { ImagesFilter } from '../../../shared/dashboard/queries.js';
import { imageText } from '../../../shared/dashboard/text.js';
import { ImageRecord } from '../../../shared/image-record.js';
import { fleetRow } from '../../../shared/ledger/fleet-index.js';

const EVIL = `<script>alert(1)</script>"'\`&`;
const NOW = new Date('2026-11-30T12:00:00Z');

const record = ImageRecord.parse({
  id: 'r.io~a~b@sha256:aa',
  registry: 'r.io',
  repository: `a/${EVIL}`,
  digest: `sha256:${'a'.repeat(64)}`,
  tags: [EVIL],
  labels: { team: EVIL, [EVIL]: EVIL },
  state: 'denied',
  verdicts: {
    prod: {
      environment: 'prod',
      decision: 'deny',
      mode: 'enforce',
      reasons: [{ ruleId: 'image.non-root', level: 'deny', message: EVIL, remediation: EVIL }],
      policyHash: 'h',
      evaluatedAt: NOW.toISOString(),
    },
  },
  updatedAt: NOW.toISOString(),
});

function assertNoRawMarkup(out: string): void {
  expect(out).not.toContain('<script>');
  expect(out).not.toContain(`"'`);
  expect(out).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&#96;&amp;');
}

describe('escaping', () => {
  it('escapes the five HTML metacharacters and the backtick', () => {
    expect(escapeHtml(EVIL)).toBe('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&#96;&amp;');
    expect(html`<td>${EVIL}</td>`.value).toBe(`<td>${escapeHtml(EVIL)}</td>`);
    expect(html`<p>${html`<b>${EVIL}</b>`}${[EVIL, null, false]}</p>`.value).toBe(
      `<p><b>${escapeHtml(EVIL)}</b>${escapeHtml(EVIL)}</p>`,
    );
    expect(href('image', { id: `a&b=<c>` })).toBe('image?id=a%26b%3D%3Cc%3E');
  });

  it('renders hostile records, reasons and labels as text on every page', () => {
    const row = fleetRow(record, {});
    assertNoRawMarkup(
      imagesPage(ImagesFilter.parse({ team: EVIL.slice(0, 20) }), {
        images: [row],
        plan: { field: 'facets', token: `team:${EVIL}`, since: null, index: 'x', exact: true },
        reads: 1,
        truncated: false,
      }).value,
    );
    assertNoRawMarkup(
      imagePage({ image: record, team: EVIL, findings: [], audit: [], reads: 1 }).value,
    );
    assertNoRawMarkup(
      overviewPage(
        {
          generatedAt: NOW.toISOString(),
          total: 1,
          states: { denied: 1 },
          kinds: { denied: 1, attested: 0, pending: 0, stale: 1 },
          environments: [{ env: 'prod', allow: 0, deny: 1, pending: 0 }],
          teams: [
            {
              team: EVIL,
              images: 1,
              denied: 1,
              stale: 0,
              topReasons: [{ ruleId: EVIL, images: 1, remediation: EVIL }],
            },
          ],
          stale: [{ ...row, staleSince: NOW.toISOString(), baseName: EVIL }],
          staleTotal: 1,
          exceptions: [
            { id: EVIL, owner: EVIL, reason: EVIL, expires: '2026-12-10', daysLeft: 10, images: 1 },
          ],
          policyHash: EVIL,
          cves: [{ id: EVIL, images: 1, fixable: 0, severity: 'HIGH' }],
          days: [{ day: '2026-11-30', allow: 0, deny: 1, pending: 0 }],
          reads: 3,
        },
        NOW,
      ).value,
    );
  });

  it('keeps terminal control sequences out of the CLI report', () => {
    const out = imageText({
      image: { ...record, labels: {}, repository: 'a/\u001b[31mred\u0007' },
      team: 't',
      findings: [],
      audit: [],
      reads: 1,
    });
    expect(out.includes('\u001b') || out.includes('\u0007')).toBe(false);
    expect(out).toContain('a/?[31mred?');
  });
});
