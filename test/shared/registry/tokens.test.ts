// WWW-Authenticate parsing and the Google-host test that guards where access tokens may go.
import { describe, expect, it } from 'vitest';
import { isGoogleRegistryHost, parseChallenge } from '../../../shared/registry/tokens.js';

describe('parseChallenge', () => {
  it('reads Docker Hub style bearer challenges, commas inside quotes included', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:samalba/my-app:pull,push',
      },
    });
  });

  it('reads Basic challenges, unquoted values and escaped quotes', () => {
    expect(parseChallenge('Basic realm="Artifact Registry"')).toEqual({
      scheme: 'basic',
      params: { realm: 'Artifact Registry' },
    });
    expect(parseChallenge('bearer Realm=https://gcr.io/v2/token, service=gcr.io')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://gcr.io/v2/token', service: 'gcr.io' },
    });
    expect(parseChallenge('Bearer realm="a\\"b"')?.params.realm).toBe('a"b');
  });

  it('gives null for a missing header', () => {
    expect(parseChallenge(null)).toBeNull();
    expect(parseChallenge('')).toBeNull();
  });
});

describe('isGoogleRegistryHost', () => {
  it('accepts gcr.io, its regional hosts and Artifact Registry', () => {
    for (const h of [
      'gcr.io',
      'eu.gcr.io',
      'us-docker.pkg.dev',
      'europe-west1-docker.pkg.dev',
      'gcr.io:443',
    ]) {
      expect(isGoogleRegistryHost(h)).toBe(true);
    }
  });

  it('refuses look-alikes and everything else', () => {
    for (const h of [
      'evilgcr.io',
      'gcr.io.evil.com',
      'pkg.dev.evil.com',
      'docker.io',
      '127.0.0.1:5000',
      'xpkg.dev',
    ]) {
      expect(isGoogleRegistryHost(h)).toBe(false);
    }
  });
});
