// A small inline SVG of verdicts per day (stacked bars): presentation attributes only, so a strict CSP allows it.
import { html, type SafeHtml } from './html.js';

export interface DayBar {
  day: string;
  allow: number;
  deny: number;
  pending: number;
}

export const CHART_COLOURS = { allow: '#2e7d32', deny: '#c62828', pending: '#9e9e9e' } as const;

export function verdictChart(days: readonly DayBar[], width = 560, height = 140): SafeHtml {
  const pad = 22;
  const max = Math.max(1, ...days.map((d) => d.allow + d.deny + d.pending));
  const slot = (width - pad) / Math.max(1, days.length);
  const bar = Math.max(2, slot * 0.7);
  const scale = (height - pad - 8) / max;
  const bars = days.map((d, i) => {
    const x = pad + i * slot + (slot - bar) / 2;
    let y = height - pad;
    const parts = (['allow', 'deny', 'pending'] as const).map((k) => {
      const h = d[k] * scale;
      y -= h;
      return h > 0
        ? html`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bar.toFixed(1)}" height="${h.toFixed(1)}" fill="${CHART_COLOURS[k]}"><title>${d.day}: ${d[k]} ${k}</title></rect>`
        : '';
    });
    const label =
      i % Math.ceil(days.length / 7) === 0
        ? html`<text x="${(x + bar / 2).toFixed(1)}" y="${height - 6}" font-size="10" text-anchor="middle" fill="#555">${d.day.slice(5)}</text>`
        : '';
    return html`<g data-day="${d.day}" data-allow="${d.allow}" data-deny="${d.deny}" data-pending="${d.pending}">${parts}${label}</g>`;
  });
  return html`<svg class="chart" role="img" aria-label="verdicts per day" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">
<text x="2" y="12" font-size="10" fill="#555">${max}</text>
<line x1="${pad}" y1="${height - pad}" x2="${width}" y2="${height - pad}" stroke="#bbb"/>
${bars}</svg>`;
}
