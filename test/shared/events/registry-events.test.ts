import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../shared/errors.js';
import {
  normaliseDistribution,
  normaliseGithubPackage,
  normaliseHarbor,
  parseGcrEvent,
  parseGcrEventData,
  type RegistryEvent,
} from '../../../shared/events/registry-events.js';
import { fixture } from '../real-world-fixtures.js';

const ABCDE = `sha256:${'abcde'.repeat(12)}abcd`;

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return err as Error;
  }
  throw new Error('expected an InvalidInputError');
}

describe('gcr topic messages (fixtures)', () => {
  // The 'abcde…' digest is a placeholder its authors typed, but it is a syntactically valid sha256
  // (64 lower-case hex): nothing at parse time can tell it from a real one, so the event is accepted
  // and a later manifest lookup will find nothing. Only an invalid digest is rejected here.
  it('gcr-insert-digest-tag.json: accepted as a push with digest and tag', () => {
    expect(parseGcrEvent(fixture('gcr/gcr-insert-digest-tag.json'))).toEqual({
      action: 'push',
      registry: 'gcr.io',
      repository: 'sakajunquality-public/test',
      digest: ABCDE,
      tag: 'xxxx',
      source: 'gcr',
    } satisfies RegistryEvent);
  });

  it('gcr-delete-digest.json: accepted as a digest-only delete', () => {
    expect(parseGcrEvent(fixture('gcr/gcr-delete-digest.json'))).toEqual({
      action: 'delete',
      registry: 'gcr.io',
      repository: 'sakajunquality-public/test',
      digest: ABCDE,
      tag: null,
      source: 'gcr',
    });
  });

  it('gcr-delete-tag.json: accepted as a tag-only delete (no digest)', () => {
    expect(parseGcrEvent(fixture('gcr/gcr-delete-tag.json'))).toEqual({
      action: 'delete',
      registry: 'gcr.io',
      repository: 'sakajunquality-public/test',
      digest: null,
      tag: 'xxxxx',
      source: 'gcr',
    });
  });

  it('gcr-pull-insert-digest-tag.decoded.json: rejected, $PROJECT stands where the project belongs', () => {
    const msg = fixture<{ message: { data: unknown; messageId: string; publishTime: string } }>(
      'gcr/gcr-pull-insert-digest-tag.decoded.json',
    );
    const err = thrown(() =>
      parseGcrEvent(msg.message.data, {
        eventId: msg.message.messageId,
        occurredAt: msg.message.publishTime,
      }),
    );
    expect(err.message).toMatch(/^invalid gcr message: digest: .*unexpanded placeholder/);
    const issues = (err as InvalidInputError).details?.issues as Array<{ path: string }>;
    expect(issues.map((i) => i.path)).toEqual(['digest', 'tag']);
  });

  it('the same message with a real project is accepted, with the Pub/Sub id and time', () => {
    const msg = fixture<{
      message: { data: Record<string, string>; messageId: string; publishTime: string };
    }>('gcr/gcr-pull-insert-digest-tag.decoded.json');
    const data = Object.fromEntries(
      Object.entries(msg.message.data).map(([k, v]) => [k, v.replace('$PROJECT', 'my-proj')]),
    );
    const base64 = Buffer.from(JSON.stringify(data)).toString('base64');
    expect(
      parseGcrEventData(base64, {
        eventId: msg.message.messageId,
        occurredAt: msg.message.publishTime,
      }),
    ).toEqual({
      action: 'push',
      registry: 'us-west1-docker.pkg.dev',
      repository: 'my-proj/repo/image',
      digest: 'sha256:54bc0fead59f304f1727280c3b520aeea7b9e6fd405b7a6ee1dddc8d78044516',
      tag: 'latest',
      source: 'gcr',
      eventId: '7309198396944430',
      occurredAt: '2023-03-30T21:56:52.254Z',
    });
  });
});

describe('gcr topic messages (invalid)', () => {
  const d = `us-docker.pkg.dev/p/r/img@sha256:${'1'.repeat(64)}`;
  const cases: Array<[string, unknown, RegExp]> = [
    ['unknown action', { action: 'UPDATE', digest: d }, /action: Invalid option/],
    ['neither digest nor tag', { action: 'INSERT' }, /digest: needs a digest or a tag/],
    [
      'digest field holding a tag',
      { action: 'INSERT', digest: 'gcr.io/a:1' },
      /digest: must be REGISTRY\/REPO@sha256/,
    ],
    ['tag field holding a digest', { action: 'INSERT', tag: d }, /tag: must be REGISTRY\/REPO:TAG/],
    [
      'digest and tag of different images',
      { action: 'INSERT', digest: d, tag: 'gcr.io/other:1' },
      /digest names us-docker.pkg.dev\/p\/r\/img but tag names gcr.io\/other/,
    ],
    ['not an object', 'INSERT', /expected object/],
    ['bad digest', { action: 'DELETE', digest: 'gcr.io/a@sha256:123' }, /64 hex characters, got 3/],
  ];
  it.each(cases)('%s', (_label, body, reason) => {
    expect(thrown(() => parseGcrEvent(body)).message).toMatch(reason);
  });

  it('rejects data that is not JSON or is too large', () => {
    expect(thrown(() => parseGcrEventData(Buffer.from('test message 3'))).message).toMatch(
      /not JSON/,
    );
    expect(thrown(() => parseGcrEventData('')).message).toMatch(/empty data/);
    expect(thrown(() => parseGcrEventData(new Uint8Array(9000))).message).toMatch(/limit is 8192/);
  });

  it("rejects the data of Google's own Pub/Sub test envelopes (not gcr payloads)", () => {
    const text = fixture<{ message: { data: string } }>(
      'pubsub/pubsub-push-envelope-attributes.json',
    );
    expect(thrown(() => parseGcrEventData(text.message.data)).message).toMatch(/not JSON/);
    const bytes = fixture<{ message: { data: string } }>(
      'pubsub/pubsub-push-envelope-duplicated-fields.json',
    );
    expect(thrown(() => parseGcrEventData(bytes.message.data)).message).toMatch(/not JSON/);
  });
});

describe('CNCF distribution notifications', () => {
  it('distribution-notification-push-envelope.json: the manifest push is kept, the two blob pushes ignored', () => {
    const events = normaliseDistribution(
      fixture('registry/distribution-notification-push-envelope.json'),
    );
    expect(events).toEqual([
      {
        action: 'push',
        registry: 'registrycluster.local',
        repository: 'library/test',
        digest: 'sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf',
        tag: null,
        source: 'distribution',
        eventId: 'asdf-asdf-asdf-asdf-0',
        occurredAt: '2006-01-02T15:04:05.000Z',
      },
    ]);
  });

  it('uses the configured registry host over the request Host header', () => {
    const [event] = normaliseDistribution(
      fixture('registry/distribution-notification-push-envelope.json'),
      { registry: 'Registry.Example.com:5000' },
    );
    expect(event?.registry).toBe('registry.example.com:5000');
  });

  it('distribution-notification-pull.json: a pull is ignored (no events)', () => {
    expect(normaliseDistribution(fixture('registry/distribution-notification-pull.json'))).toEqual(
      [],
    );
  });

  it('turns a pull into nothing but a push of the same target into an event with its tag', () => {
    const body = fixture<{ events: Array<Record<string, unknown>> }>(
      'registry/distribution-notification-pull.json',
    );
    const push = { ...body.events[0], action: 'push' };
    const [event] = normaliseDistribution({ events: [push] });
    expect(event).toMatchObject({
      registry: '192.168.100.227:5000',
      repository: 'hello-world',
      tag: 'latest',
      occurredAt: '2016-03-09T22:44:26.402Z',
    });
  });

  it('keeps deletes (which carry no media type)', () => {
    const events = normaliseDistribution(
      {
        events: [
          {
            id: 'e1',
            action: 'delete',
            target: { digest: `sha256:${'2'.repeat(64)}`, repository: 'team/app' },
          },
        ],
      },
      { registry: 'localhost:5000' },
    );
    expect(events).toEqual([
      {
        action: 'delete',
        registry: 'localhost:5000',
        repository: 'team/app',
        digest: `sha256:${'2'.repeat(64)}`,
        tag: null,
        source: 'distribution',
        eventId: 'e1',
      },
    ]);
  });

  const manifestPush = (repository: string, digest = `sha256:${'3'.repeat(64)}`) => ({
    events: [
      {
        action: 'push',
        target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, repository },
      },
    ],
  });
  it.each([
    ['upper-case repository', manifestPush('Team/App'), /must be lower case/],
    ['placeholder repository', manifestPush('$PROJECT/app'), /unexpanded placeholder/],
    ['path trick', manifestPush('a/../b'), /"\.\." is not allowed/],
    ['bad digest', manifestPush('a', 'sha256:xyz'), /events\.0\.target\.digest/],
    ['no events array', { events: 'x' }, /events: /],
  ])('rejects %s', (_label, body, reason) => {
    expect(
      thrown(() => normaliseDistribution(body, { registry: 'localhost:5000' })).message,
    ).toMatch(reason);
  });

  it('rejects a manifest push when no registry host is known', () => {
    expect(thrown(() => normaliseDistribution(manifestPush('a'))).message).toMatch(
      /no registry host/,
    );
  });
});

describe('Harbor webhooks', () => {
  it('harbor-push-artifact.json: accepted as a push on the host from resource_url', () => {
    expect(normaliseHarbor(fixture('registry/harbor-push-artifact.json'))).toEqual({
      kind: 'registry-events',
      events: [
        {
          action: 'push',
          registry: 'harbor.example.com',
          repository: 'example/test',
          digest: 'sha256:d72f37f783ed6a8d58ac70b4db052707d1ec9d4ea010ef5ccd84652faf9ed844',
          tag: 'latest',
          source: 'harbor',
          occurredAt: '2019-10-17T17:50:32.000Z',
        },
      ],
    });
  });

  it('harbor-scanning-completed.json: a separate scan-completed result, not a push', () => {
    expect(normaliseHarbor(fixture('registry/harbor-scanning-completed.json'))).toEqual({
      kind: 'scan-completed',
      scans: [
        {
          registry: 'harbor.xxx.xxxx.com',
          repository: 'test/alpine/helm',
          digest: 'sha256:b50334049354ed01330403212605dce2f4676a4e787ed113506861d9cf3c5424',
          tag: '3.8.1',
          status: 'Success',
          severity: 'High',
          total: 5,
          fixable: 5,
          bySeverity: { High: 4, Unknown: 1 },
          scanner: 'Trivy v0.20.1',
          completedAt: '2022-03-31T08:32:56.000Z',
        },
      ],
    });
  });

  it('ignores other event types and rejects bad repositories', () => {
    const push = fixture<Record<string, unknown>>('registry/harbor-push-artifact.json');
    expect(normaliseHarbor({ ...push, type: 'PULL_ARTIFACT' })).toEqual({
      kind: 'ignored',
      type: 'PULL_ARTIFACT',
    });
    const upper = fixture<{ event_data: { repository: { repo_full_name: string } } }>(
      'registry/harbor-push-artifact.json',
    );
    upper.event_data.repository.repo_full_name = 'Example/Test';
    expect(thrown(() => normaliseHarbor(upper)).message).toMatch(/must be lower case/);
  });
});

describe('GitHub package events', () => {
  // Shape of GitHub's documented `package` webhook (no real-world fixture exists for it).
  const digest = `sha256:${'4'.repeat(64)}`;
  const published = (over: Record<string, unknown> = {}) => ({
    action: 'published',
    package: {
      id: 1,
      name: 'hello-world',
      namespace: 'Octo-Org',
      package_type: 'CONTAINER',
      package_version: {
        id: 2,
        version: digest,
        updated_at: '2024-05-01T10:00:00Z',
        container_metadata: { tag: { name: 'v1.0.0', digest } },
      },
      registry: { url: 'https://ghcr.io', type: 'docker' },
      ...over,
    },
  });

  it('a published container version becomes a push on ghcr.io with the namespace lower-cased', () => {
    expect(normaliseGithubPackage(published(), { deliveryId: 'gh-1' })).toEqual([
      {
        action: 'push',
        registry: 'ghcr.io',
        repository: 'octo-org/hello-world',
        digest,
        tag: 'v1.0.0',
        source: 'github',
        eventId: 'gh-1',
        occurredAt: '2024-05-01T10:00:00.000Z',
      },
    ]);
  });

  it('an untagged version takes its digest from the version', () => {
    const body = published({
      package_version: { version: digest, container_metadata: { tag: { name: '', digest: '' } } },
    });
    expect(normaliseGithubPackage(body)[0]).toMatchObject({ tag: null, digest });
  });

  it('ignores non-container packages and other actions', () => {
    expect(normaliseGithubPackage(published({ package_type: 'npm' }))).toEqual([]);
    expect(normaliseGithubPackage({ ...published(), action: 'deleted' })).toEqual([]);
  });

  it('rejects a version without a digest', () => {
    const body = published({ package_version: { version: '1.0.0' } });
    expect(thrown(() => normaliseGithubPackage(body)).message).toMatch(/no image digest/);
  });
});

describe('registry hosts and tags in webhooks', () => {
  const push = (tag?: string) => ({
    events: [
      {
        action: 'push',
        target: {
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          digest: `sha256:${'5'.repeat(64)}`,
          repository: 'team/app',
          ...(tag === undefined ? {} : { tag }),
        },
        request: { host: 'registry' },
      },
    ],
  });

  it('refuses a bare host name that would read as a Docker Hub namespace', () => {
    expect(thrown(() => normaliseDistribution(push())).message).toMatch(
      /registry host "registry" needs a '\.' or ':'/,
    );
    expect(normaliseDistribution(push(), { registry: 'registry:5000' })[0]?.registry).toBe(
      'registry:5000',
    );
  });

  it('refuses a tag outside the tag grammar', () => {
    expect(
      thrown(() => normaliseDistribution(push('-bad'), { registry: 'localhost:5000' })).message,
    ).toMatch(/invalid tag "-bad"/);
    expect(normaliseDistribution(push('v1.2_rc-3'), { registry: 'localhost:5000' })[0]?.tag).toBe(
      'v1.2_rc-3',
    );
  });
});
