// The fault suite's workload (deletes, webhooks) and the dump's handling of deleted images' attestation history.
import { describe, expect, it } from 'vitest';
import { diffDumps, forgetDeletedHistory } from '../../bench/lib/faults/ledger-dump.js';
import {
  deletesDigest,
  deletesTag,
  seededRandom,
  uploadsReport,
  type WorkloadImage,
  workloadEvents,
} from '../../bench/lib/faults/scenario.js';
import { damage } from '../../bench/lib/faults/zod-arbitrary.js';

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;
const images: WorkloadImage[] = Array.from({ length: 20 }, (_, i) => ({
  index: i,
  repository: `faults/app-${i % 7}`,
  digest: digest(i),
  denied: i % 3 === 0,
}));
const hooks: WorkloadImage[] = [0, 1].map((i) => ({
  index: i,
  repository: `hook/app-${i}`,
  digest: digest(1000 + i),
  denied: false,
}));

describe('workloadEvents with deletes and webhooks', () => {
  const events = workloadEvents('127.0.0.1:5000', images, 200, seededRandom(7), {
    host: '127.0.0.1:6000',
    images: hooks,
  });

  it('deletes every chosen image once, after its push and scan, and gives a digest-deleted image no later event', () => {
    expect(events).toHaveLength(200);
    for (const image of images.filter((im) => deletesDigest(im) || deletesTag(im))) {
      const kind = deletesDigest(image) ? 'delete' : 'tag-delete';
      const mine = events.filter((e) => e.image === image.index && e.topic !== 'webhook');
      const deletes = mine.filter((e) => e.kind === kind);
      expect(deletes, `image ${image.index}`).toHaveLength(1);
      const at = (deletes[0] as (typeof events)[number]).n;
      expect(mine.some((e) => e.kind === 'push' && e.n < at)).toBe(true);
      expect(mine.some((e) => e.kind === 'scan' && e.n < at)).toBe(true);
      if (kind === 'delete') expect(mine.filter((e) => e.n > at)).toEqual([]);
    }
    const digestDelete = events.find((e) => e.kind === 'delete');
    expect(digestDelete?.data).toEqual({
      action: 'DELETE',
      digest: `127.0.0.1:5000/${images[digestDelete?.image ?? 0]?.repository}@${digest(digestDelete?.image ?? 0)}`,
    });
    const tagDelete = events.find((e) => e.kind === 'tag-delete');
    expect(tagDelete?.data).toEqual({
      action: 'DELETE',
      tag: `127.0.0.1:5000/${images[tagDelete?.image ?? 0]?.repository}:v${tagDelete?.image}`,
    });
  });

  it('sends webhook pushes as distribution notifications for the second host, the event id the message id', () => {
    const webhooks = events.filter((e) => e.kind === 'webhook');
    expect(webhooks.length).toBeGreaterThan(hooks.length);
    for (const w of webhooks) {
      const [event] = (w.data as { events: Record<string, unknown>[] }).events;
      expect(event).toMatchObject({
        id: w.messageId,
        action: 'push',
        request: { host: '127.0.0.1:6000' },
        target: { digest: hooks[w.image]?.digest, repository: hooks[w.image]?.repository },
      });
    }
    // Each webhook image is pushed first under its own tag, then only under new ones (no tag moves).
    const tags = webhooks.map(
      (w) => (w.data as { events: { target: { tag: string } }[] }).events[0]?.target.tag,
    );
    expect(new Set(tags).size).toBe(tags.length);
  });

  it('is reproducible from its seed', () => {
    const again = workloadEvents('127.0.0.1:5000', images, 200, seededRandom(7), {
      host: '127.0.0.1:6000',
      images: hooks,
    });
    expect(again).toEqual(events);
  });
});

describe('forgetDeletedHistory', () => {
  const revoked = { format: 'dsse', revokedAt: '<time>', revokedReason: 'image deleted' };
  const dump = (attestations: unknown[], audit: string[], state = 'deleted') =>
    new Map<string, string>([
      ['images/r~a@sha256:1', JSON.stringify({ state, attestations })],
      ...audit.map((k): [string, string] => [`images/r~a@sha256:1/audit/${k}`, '{}']),
      ['images/r~a@sha256:1/audit/registry-delete:m1', '{}'],
    ]);

  it('makes a deleted image attested then revoked equal to one never attested', () => {
    const clean = dump(
      [revoked],
      ['attested:x:dsse-1:<time>', 'attestations-revoked:x:revoke:<time>'],
    );
    const faulty = dump([], []);
    expect(diffDumps(clean, faulty).equal).toBe(false);
    expect(forgetDeletedHistory(clean)).toEqual(['r~a@sha256:1']);
    forgetDeletedHistory(faulty);
    expect(diffDumps(clean, faulty)).toMatchObject({ equal: true });
    // The delete's own audit entry stays compared.
    expect(clean.has('images/r~a@sha256:1/audit/registry-delete:m1')).toBe(true);
  });

  it('still tells an attestation left active on a deleted image', () => {
    const clean = dump([revoked], []);
    const faulty = dump([{ ...revoked, revokedAt: null, revokedReason: null }], []);
    forgetDeletedHistory(clean);
    forgetDeletedHistory(faulty);
    expect(diffDumps(clean, faulty).changed).toEqual(['images/r~a@sha256:1']);
  });

  it('leaves images that are not deleted alone', () => {
    const clean = dump([revoked], ['attested:x:dsse-1:<time>'], 'revoked');
    const faulty = dump([], [], 'revoked');
    expect(forgetDeletedHistory(clean)).toEqual([]);
    forgetDeletedHistory(faulty);
    expect(diffDumps(clean, faulty).equal).toBe(false);
  });
});

describe('workloadEvents with report uploads', () => {
  it('uploads a Trivy report for each chosen image after its push and scan, naming the push it waits for', () => {
    const events = workloadEvents('127.0.0.1:5000', images, 60, seededRandom(3));
    const reports = events.filter((e) => e.kind === 'report');
    expect(reports.map((r) => r.image)).toEqual(images.filter(uploadsReport).map((im) => im.index));
    for (const r of reports) {
      const push = events.find((e) => e.kind === 'push' && e.image === r.image);
      const scan = events.find((e) => e.kind === 'scan' && e.image === r.image);
      const ref = `127.0.0.1:5000/${images[r.image]?.repository}@${digest(r.image)}`;
      expect(r.report).toEqual({ image: ref, after: push?.messageId });
      expect(r.n).toBeGreaterThan(scan?.n ?? Number.POSITIVE_INFINITY);
      expect(r.data).toMatchObject({ SchemaVersion: 2, ArtifactName: ref });
    }
  });
});

describe('damage: not UTF-8 inside a string', () => {
  it('puts 0xff just after the opening quote of a string value, so only a strict decoder notices', () => {
    const json = Buffer.from('{"a": 1, "b": "xy", "c":"z"}');
    const out = damage(json, { kind: 'not-utf8-in-string', at: 1 });
    expect(out.indexOf(0xff)).toBe(json.indexOf('"z"') + 1);
    expect(out.length).toBe(json.length + 1);
    expect(JSON.parse(out.toString('utf8'))).toEqual({ a: 1, b: 'xy', c: '\uFFFDz' });
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(out)).toThrow();
  });
});
