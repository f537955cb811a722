// The messages between functions refuse image ids that are not image document ids: such an id is a Firestore path, and reading it failed as a server error redelivered forever.
import { describe, expect, it } from 'vitest';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { ReevaluateMessage, VerdictMessage } from '../../shared/messages.js';

const DIGEST = `sha256:${'b'.repeat(64)}`;
const ID = imageDocId('us-docker.pkg.dev', 'p/r/app', DIGEST);

describe('image ids in messages', () => {
  it('accepts a canonical image document id', () => {
    expect(
      VerdictMessage.safeParse({ imageId: ID, cause: 'verdict-changed', policyHash: null }).success,
    ).toBe(true);
    expect(ReevaluateMessage.safeParse({ kind: 'image', imageId: ID }).success).toBe(true);
  });

  it.each([
    ['a slash (a Firestore path)', `us-docker.pkg.dev/p/r/app@${DIGEST}`],
    ['no digest', 'a~b'],
    ['a reserved id', '__x__'],
    ['a short digest', 'us-docker.pkg.dev~p~r~app@sha256:bbbb'],
    ['a non-canonical form', `US-DOCKER.PKG.DEV~p~r~app@${DIGEST}`],
  ])('refuses %s', (_, imageId) => {
    expect(
      VerdictMessage.safeParse({ imageId, cause: 'verdict-changed', policyHash: null }).success,
    ).toBe(false);
    expect(ReevaluateMessage.safeParse({ kind: 'image', imageId }).success).toBe(false);
  });
});
