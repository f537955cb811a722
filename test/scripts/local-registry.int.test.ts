// The local docker-registry: started from its own config, it takes skopeo pushes and notifies the webhook of manifest pushes only.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type LocalRegistry, startLocalRegistry } from '../../scripts/lib/local-registry.js';
import { skopeoCopy, writeOciImage, writeOciIndex } from '../../scripts/lib/oci-image.js';
import { freePort, sleep } from '../../scripts/lib/process.js';
import { createRegistryClient } from '../../shared/registry/client.js';
import { startNotificationSink } from '../shared/registry/http-servers.js';

// Named like the emulators' group so a crashed run's registry is reaped by the next run's setup.
async function waitForLog(file: string, pattern: RegExp, attempts = 300): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (existsSync(file) && pattern.test(readFileSync(file, 'utf8'))) return;
    await sleep(100);
  }
  throw new Error(`${file} never matched ${pattern}`);
}

const group = `test-${process.pid}`;

describe('local registry with notifications', () => {
  let sink: Awaited<ReturnType<typeof startNotificationSink>>;
  let registry: LocalRegistry;
  let layout: string;

  beforeAll(async () => {
    sink = await startNotificationSink();
    registry = await startLocalRegistry({
      port: 'free',
      group,
      ephemeral: true,
      notifyUrl: `${sink.url}/webhook`,
      notifyHeaders: { Authorization: 'Bearer test-ingest-token' },
    });
    layout = mkdtempSync(join(tmpdir(), 'clearance-oci-'));
  });

  afterAll(async () => {
    await registry?.stop();
    await sink?.close();
    if (layout) rmSync(layout, { recursive: true, force: true });
  });

  it('writes its own distribution config: loopback address, deletes, filtered notifications', () => {
    const config = parse(readFileSync(registry.configFile, 'utf8'));
    expect(config.http.addr).toBe(registry.host);
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(config.storage.filesystem.rootdirectory).toBe(registry.storageDir);
    expect(config.storage.delete.enabled).toBe(true);
    const [endpoint] = config.notifications.endpoints;
    expect(endpoint.url).toBe(`${sink.url}/webhook`);
    expect(endpoint.headers).toEqual({ Authorization: ['Bearer test-ingest-token'] });
    expect(endpoint.ignore).toEqual({
      mediatypes: ['application/octet-stream'],
      actions: ['pull'],
    });
    expect(endpoint).toMatchObject({
      timeout: expect.any(String),
      threshold: expect.any(Number),
      backoff: expect.any(String),
    });
  });

  it('notifies the push of an image pushed with skopeo, with the configured header', async () => {
    const image = writeOciImage(layout, { ref: 'app', files: { 'app.txt': 'notify me\n' } });
    const pushed = await skopeoCopy(layout, `${registry.host}/team/app:v1`, { ref: 'app' });
    expect(pushed).toBe(image.manifestDigest);

    const event = await sink.waitFor(
      (e) => e.target.repository === 'team/app' && e.target.tag === 'v1',
    );
    expect(event.action).toBe('push');
    expect(event.target.digest).toBe(image.manifestDigest);
    expect(event.target.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const envelope = sink.envelopes.find((e) => e.events.includes(event));
    expect(envelope?.headers.authorization).toBe('Bearer test-ingest-token');
    expect(envelope?.headers['content-type']).toMatch(
      /^application\/vnd\.docker\.distribution\.events\.v\d\+json/,
    );
  });

  it('sends no pull events and no blob (octet-stream) events', async () => {
    const client = createRegistryClient();
    // Pull the manifest and blobs of the image pushed above.
    const m = await client.getManifest(registry.host, 'team/app', 'v1');
    expect(m.kind).toBe('manifest');
    if (m.kind === 'manifest') {
      await client.getConfig(registry.host, 'team/app', m.manifest.config.digest);
      await client.getBlob(registry.host, 'team/app', m.manifest.layers[0].digest);
    }
    // distribution delivers one endpoint's events in order: once a later push arrives, any
    // pull event queued before it would have arrived too.
    const marker = writeOciImage(layout, { ref: 'marker', files: { 'marker.txt': 'barrier\n' } });
    await skopeoCopy(layout, `${registry.host}/team/marker:done`, { ref: 'marker' });
    await sink.waitFor((e) => e.target.digest === marker.manifestDigest);

    expect(sink.events.filter((e) => e.action === 'pull')).toEqual([]);
    expect(sink.events.filter((e) => e.target.mediaType === 'application/octet-stream')).toEqual(
      [],
    );
    // Blob pushes happened (skopeo uploaded layers and configs) but only manifests were notified.
    expect(new Set(sink.events.map((e) => e.target.mediaType))).toEqual(
      new Set(['application/vnd.oci.image.manifest.v1+json']),
    );
  });

  it('notifies a two-platform index push: both children, then the tagged index', async () => {
    const index = writeOciIndex(
      layout,
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      { ref: 'multi' },
    );
    const pushed = await skopeoCopy(layout, `${registry.host}/team/multi:1.0`, { ref: 'multi' });
    expect(pushed).toBe(index.indexDigest);
    const event = await sink.waitFor((e) => e.target.digest === index.indexDigest);
    expect(event).toMatchObject({
      action: 'push',
      target: {
        repository: 'team/multi',
        tag: '1.0',
        mediaType: 'application/vnd.oci.image.index.v1+json',
      },
    });
    const children = sink.events.filter(
      (e) =>
        e.target.repository === 'team/multi' && e.target.mediaType.endsWith('manifest.v1+json'),
    );
    expect(children.map((e) => e.target.digest).sort()).toEqual(
      index.children.map((c) => c.manifestDigest).sort(),
    );
  });
});

describe('local registry whose webhook is down', () => {
  it('keeps the push and delivers the notification once the webhook comes up', async () => {
    const port = await freePort();
    const registry = await startLocalRegistry({
      port: 'free',
      group,
      ephemeral: true,
      notifyUrl: `http://127.0.0.1:${port}/webhook`,
    });
    const layout = mkdtempSync(join(tmpdir(), 'clearance-oci-'));
    let sink: Awaited<ReturnType<typeof startNotificationSink>> | undefined;
    try {
      const image = writeOciImage(layout, { files: { 'late.txt': 'late delivery\n' } });
      const pushed = await skopeoCopy(layout, `${registry.host}/team/late:v1`);
      expect(pushed).toBe(image.manifestDigest);
      // The push itself succeeded while nobody listened.
      const client = createRegistryClient();
      expect((await client.resolveTag(registry.host, 'team/late', 'v1')).digest).toBe(
        image.manifestDigest,
      );

      // Wait until distribution has tried and failed to deliver, so the webhook really was down.
      await waitForLog(registry.service.logFile, /connection refused/);
      sink = await startNotificationSink(port);
      const event = await sink.waitFor((e) => e.target.digest === image.manifestDigest, 45_000);
      expect(event).toMatchObject({
        action: 'push',
        target: { repository: 'team/late', tag: 'v1' },
      });
    } finally {
      await sink?.close();
      await registry.stop();
      rmSync(layout, { recursive: true, force: true });
    }
  });
});
