// Query planning: every plan is served by an index declared in firestore.indexes.json, and filters are validated and capped.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  globHead,
  ImagesFilter,
  type ImagesFilterInput,
  planImagesQuery,
  sinceInstant,
} from '../../../shared/dashboard/queries.js';
import { STATUS_KINDS } from '../../../shared/ledger/fleet-index.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const indexes = JSON.parse(readFileSync('firestore.indexes.json', 'utf8')) as {
  indexes: {
    collectionGroup: string;
    fields: { fieldPath: string; order?: string; arrayConfig?: string }[];
  }[];
};
const declared = new Set(
  indexes.indexes.map(
    (i) =>
      `${i.collectionGroup}(${i.fields.map((f) => `${f.fieldPath} ${f.arrayConfig ?? f.order}`).join(', ')})`,
  ),
);

/** Every combination of filters a user can give. */
function* combinations(): Generator<ImagesFilterInput> {
  for (const state of [undefined, ...STATUS_KINDS])
    for (const team of [undefined, 'payments'])
      for (const repo of [undefined, 'us-docker.pkg.dev/acme/**', '**/nginx', 'gcr.io'])
        for (const cve of [undefined, 'CVE-2005-2541'])
          for (const env of [undefined, 'prod'])
            for (const since of [undefined, '7d']) yield { state, team, repo, cve, env, since };
}

describe('planImagesQuery', () => {
  it('uses a declared composite index (or the single-field pushedAt index) for every combination', () => {
    let n = 0;
    for (const input of combinations()) {
      const plan = planImagesQuery(ImagesFilter.parse(input), NOW);
      if (plan.field === null) {
        expect(plan.index).toContain('single-field');
        // Only filters the index cannot narrow leave the plan unfiltered: a bounded, newest-first page.
        expect(input.state ?? input.team ?? input.cve ?? input.env).toBeUndefined();
      } else {
        expect(declared, JSON.stringify(input)).toContain(
          `fleet(${plan.field} CONTAINS, pushedAt DESCENDING)`,
        );
      }
      n++;
    }
    expect(n).toBe(5 * 2 * 4 * 2 * 2 * 2);
  });

  it('prefers the most selective token', () => {
    const plan = (i: ImagesFilterInput) => planImagesQuery(ImagesFilter.parse(i), NOW);
    expect(plan({ cve: 'CVE-1-2', team: 't' })).toMatchObject({ field: 'cves', token: 'CVE-1-2' });
    expect(plan({ team: 't', state: 'denied' }).token).toBe('team:t|kind:denied');
    expect(plan({ env: 'prod', state: 'denied' }).token).toBe('env:prod:deny');
    expect(plan({ repo: 'r.io/a/b/*', state: 'stale' }).token).toBe('path:r.io/a/b');
    expect(plan({ state: 'pending' }).token).toBe('kind:pending');
    expect(plan({ since: '2026-11-01' }).since).toBe('2026-11-01T00:00:00.000Z');
  });
});

describe('filters', () => {
  it('refuses unknown states, hostile or oversized values and unknown keys', () => {
    for (const bad of [
      { state: 'evil' },
      { cve: '<script>' },
      { env: 'Prod!' },
      { team: 'x'.repeat(101) },
      { repo: 'x'.repeat(301) },
      { since: 'last tuesday' },
      { limit: '0' },
      { limit: '1001' },
      { other: 'x' },
    ]) {
      expect(ImagesFilter.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(ImagesFilter.parse({ limit: '20' }).limit).toBe(20);
  });

  it('takes the literal head of a glob by whole segments', () => {
    expect(globHead('us-docker.pkg.dev/acme/apps/**')).toBe('us-docker.pkg.dev/acme/apps');
    expect(globHead('us-docker.pkg.dev/acme/svc-*')).toBe('us-docker.pkg.dev/acme');
    expect(globHead('**/nginx')).toBeNull();
    expect(globHead('docker.io/library/nginx')).toBe('docker.io/library/nginx');
  });

  it('reads --since as a date or a duration back from now', () => {
    expect(sinceInstant('7d', NOW)).toBe('2026-11-23T12:00:00.000Z');
    expect(sinceInstant('90m', NOW)).toBe('2026-11-30T10:30:00.000Z');
    expect(sinceInstant('2026-11-29T08:00:00Z', NOW)).toBe('2026-11-29T08:00:00.000Z');
  });
});
