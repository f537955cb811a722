// The examples the local stack loads work on whatever port the local registry has.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAlert } from '../../shared/alerts/alert.js';
import { parseRoutingDocument, routeAlert } from '../../shared/alerts/routing.js';
import { compileGlob } from '../../shared/policy/glob.js';
import { parsePolicy } from '../../shared/policy/policy.js';
import { deniedAlert } from '../shared/alerts/samples.js';

const read = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../examples/${name}`, import.meta.url)), 'utf8');

describe('examples/', () => {
  for (const port of [5055, 6123, 49152]) {
    const registry = `127.0.0.1:${port}`;
    it(`trusts and routes the local registry on port ${port}`, () => {
      const policy = parsePolicy(read('policy.yaml'));
      const trusted = policy.rules.trustedRepositories ?? [];
      expect(trusted.some((g) => compileGlob(g).test(`${registry}/apps/web`))).toBe(true);
      const bases = policy.rules.baseImage?.allowed ?? [];
      expect(bases.some((g) => compileGlob(g).test(`${registry}/base/debian12`))).toBe(true);

      const routing = parseRoutingDocument(read('routing.yaml'));
      const alert = deniedAlert();
      const route = routeAlert(
        routing,
        parseAlert({
          ...alert,
          labels: {},
          image: { ...alert.image, registry, repository: 'apps/web' },
        } as never),
      );
      expect(route).toMatchObject({ via: 'rule', team: 'demo-team' });
    });
  }
});
