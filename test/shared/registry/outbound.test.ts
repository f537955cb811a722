// The outbound rule for token realms and redirects: https to public addresses unless the host is insecure-listed.
import { describe, expect, it } from 'vitest';
import { ClearanceError } from '../../../shared/errors.js';
import { createOutboundGuard, isPublicAddress } from '../../../shared/registry/outbound.js';

async function refusal(p: Promise<unknown>): Promise<ClearanceError<string>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ClearanceError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1',
    '127.8.9.1',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:169.254.169.254',
    '[::1]',
    'not-an-address',
  ])('%s is not public', (a) => {
    expect(isPublicAddress(a)).toBe(false);
  });
  it.each(['8.8.8.8', '142.250.1.1', '172.32.0.1', '2607:f8b0:4004:800::200e', '::ffff:8.8.8.8'])(
    '%s is public',
    (a) => {
      expect(isPublicAddress(a)).toBe(true);
    },
  );
});

describe('createOutboundGuard', () => {
  const dns: Record<string, string[]> = {
    'auth.example.com': ['34.1.2.3'],
    'metadata.example.com': ['169.254.169.254'],
    'mixed.example.com': ['34.1.2.3', '10.0.0.7'],
  };
  const lookups: string[] = [];
  const guard = createOutboundGuard({
    insecureHosts: ['registry.local:5000'],
    lookup: async (h) => {
      lookups.push(h);
      const a = dns[h];
      if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${h}`), { code: 'ENOTFOUND' });
      return a;
    },
  });

  it('allows https to a name that resolves only to public addresses', async () => {
    await expect(
      guard.check(new URL('https://auth.example.com/token'), 'realm'),
    ).resolves.toBeUndefined();
  });

  it('refuses plain http, loopback, private and link-local targets', async () => {
    for (const url of [
      'http://auth.example.com/token',
      'https://127.0.0.1/token',
      'https://[::1]:8443/token',
      'https://10.0.0.1/token',
      'https://metadata.example.com/computeMetadata/v1/',
      'https://mixed.example.com/token',
      'https://user:pw@auth.example.com/token',
      'file:///etc/passwd',
    ]) {
      const err = await refusal(guard.check(new URL(url), 'realm'));
      expect(err.code, url).toBe('forbidden');
    }
  });

  it('exempts insecure-listed hosts, over http too, without resolving them', async () => {
    lookups.length = 0;
    await expect(
      guard.check(new URL('http://registry.local:5000/token'), 'realm'),
    ).resolves.toBeUndefined();
    expect(lookups).toEqual([]);
    expect(guard.isInsecure('registry.local:5000')).toBe(true);
    expect(guard.isInsecure('registry.local:5001')).toBe(false);
  });

  it('treats a failed resolution as transient', async () => {
    const err = await refusal(guard.check(new URL('https://nowhere.example.com/'), 'realm'));
    expect(err.retryable).toBe(true);
  });
});
