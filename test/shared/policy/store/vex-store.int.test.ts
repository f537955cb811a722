import { Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import type { VexStatement } from '../../../../shared/findings/finding.js';
import { firestoreVexStore } from '../../../../shared/policy/store/vex-store.js';
import { describeWithEmulators, emulators } from '../../../support/integration.js';

describeWithEmulators('VEX store', () => {
  const db = new Firestore({ projectId: emulators?.projectId });
  afterAll(() => db.terminate());
  const d = (c: string) => `sha256:${c.repeat(64)}`;
  const statement = (vulnerability: string, products: string[]): VexStatement => ({
    vulnerability,
    aliases: [],
    products,
    subcomponents: [],
    status: 'not_affected',
    justification: 'vulnerable_code_not_in_execute_path',
    impactStatement: null,
    timestamp: null,
    documentId: 'doc-1',
    author: null,
    signer: 'security',
    source: null,
  });

  it('finds statements by digest, by parent index, by repository and by repository glob, and no others', async () => {
    const vex = firestoreVexStore(db);
    await vex.save([
      statement('CVE-1', [
        `pkg:oci/api@${encodeURIComponent(d('a'))}?repository_url=us-docker.pkg.dev/acme/api`,
      ]),
      statement('CVE-2', [`us-docker.pkg.dev/acme/api@${d('b')}`]),
      statement('CVE-3', ['pkg:oci/api?repository_url=us-docker.pkg.dev/acme/api']),
      statement('CVE-4', ['us-docker.pkg.dev/acme/**']),
      statement('CVE-5', [`ghcr.io/other/tool@${d('c')}`]),
    ]);
    const found = await vex.forImage({
      registry: 'us-docker.pkg.dev',
      repository: 'acme/api',
      digest: d('a'),
      parents: [d('b')],
    });
    expect(found.map((s) => s.vulnerability).sort()).toEqual(['CVE-1', 'CVE-2', 'CVE-3', 'CVE-4']);
  });
});
