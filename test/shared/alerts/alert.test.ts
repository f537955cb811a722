import { describe, expect, it } from 'vitest';
import {
  type AlertPublisher,
  alertContentHash,
  decodeAlertMessage,
  parseAlert,
  publishAlert,
} from '../../../shared/alerts/alert.js';
import { InvalidInputError } from '../../../shared/errors.js';
import { allAlerts, deniedAlert } from './samples.js';

describe('Alert schema', () => {
  it('accepts one alert of every type', () => {
    const types = allAlerts().map((a) => parseAlert(a).type);
    expect(types).toEqual([
      'image-denied',
      'rebuild-needed',
      'attestation-revoked',
      'breakglass-used',
      'exception-expiring',
      'scan-failed',
      'fix-grace-ending',
    ]);
  });

  it('rejects an unknown type with the path of the problem', () => {
    const err = (() => {
      try {
        parseAlert({ ...deniedAlert(), type: 'image-exploded' });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).details?.issues).toEqual([expect.stringMatching(/^type: /)]);
  });

  it('rejects a denied alert without rule ids, and a bad digest, naming both fields', () => {
    try {
      parseAlert({
        ...deniedAlert(),
        ruleIds: [],
        image: { ...deniedAlert().image, digest: 'abc' },
      });
      expect.unreachable();
    } catch (e) {
      const issues = (e as InvalidInputError).details?.issues as string[];
      expect(issues.some((i) => i.startsWith('ruleIds:'))).toBe(true);
      expect(issues.some((i) => i.startsWith('image.digest:'))).toBe(true);
    }
  });

  it('rejects a placeholder where the repository name belongs instead of guessing it', () => {
    // The same shape as the gcr fixture copied from a README: "$PROJECT" was never filled in.
    const alert = deniedAlert({
      image: {
        registry: 'gcr.io',
        repository: '$PROJECT/hello',
        digest: deniedAlert().image?.digest ?? '',
        tags: [],
      },
    } as never);
    expect(() => parseAlert(alert)).toThrow(/image\.repository: expected an OCI repository name/);
  });

  it('hashes facts only: a later detection of the same facts hashes the same, a new finding does not', () => {
    const a = parseAlert(deniedAlert());
    const later = parseAlert(
      deniedAlert({ detectedAt: '2026-11-30T10:00:00Z', links: {}, labels: { owner: 'x' } }),
    );
    expect(alertContentHash(later)).toBe(alertContentHash(a));
    const a2 = parseAlert(deniedAlert());
    if (a2.type !== 'image-denied') throw new Error('type');
    a2.findings = [...a2.findings, { ...a2.findings[0], id: 'CVE-2024-0001' }];
    expect(alertContentHash(a2)).not.toBe(alertContentHash(a));
  });

  it('decodes a Pub/Sub body given as bytes or as base64 text, and refuses non-JSON', () => {
    const json = JSON.stringify(deniedAlert());
    expect(decodeAlertMessage(Buffer.from(json)).type).toBe('image-denied');
    expect(decodeAlertMessage(Buffer.from(json).toString('base64')).type).toBe('image-denied');
    expect(() => decodeAlertMessage(Buffer.from('{nope'))).toThrow(InvalidInputError);
  });
});

describe('publishAlert', () => {
  it('publishes the validated alert as JSON bytes with routing attributes', async () => {
    const sent: Parameters<AlertPublisher['publishMessage']>[0][] = [];
    const publisher = {
      publishMessage: async (m) => {
        sent.push(m);
        return 'msg-1';
      },
    } satisfies AlertPublisher;
    await expect(publishAlert(publisher, deniedAlert())).resolves.toBe('msg-1');
    expect(sent).toHaveLength(1);
    expect(sent[0].attributes).toEqual({
      type: 'image-denied',
      registry: 'us-docker.pkg.dev',
      repository: 'acme-prod/payments/api',
      digest: deniedAlert().image?.digest,
    });
    expect(decodeAlertMessage(sent[0].data as Buffer)).toEqual(parseAlert(deniedAlert()));
  });

  it('refuses to publish an invalid alert', async () => {
    const publisher = {
      publishMessage: async () => {
        throw new Error('must not be called');
      },
    } satisfies AlertPublisher;
    await expect(publishAlert(publisher, { type: 'scan-failed' } as never)).rejects.toThrow(
      InvalidInputError,
    );
  });
});
