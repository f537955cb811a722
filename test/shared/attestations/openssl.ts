// Runs the openssl command line on temp files, the way anyone verifying our signatures by hand would.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runOpenssl(args: string[], cwd: string): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `openssl dgst -sha256 -verify pub.pem -signature sig.der payload.json` on freshly written files. */
export async function opensslVerify(
  publicKeyPem: string,
  signature: Buffer,
  payload: Buffer,
): Promise<OpensslResult> {
  const dir = await mkdtemp(join(tmpdir(), 'clearance-openssl-'));
  try {
    await writeFile(join(dir, 'pub.pem'), publicKeyPem);
    await writeFile(join(dir, 'sig.der'), signature);
    await writeFile(join(dir, 'payload.json'), payload);
    return await runOpenssl(
      ['dgst', '-sha256', '-verify', 'pub.pem', '-signature', 'sig.der', 'payload.json'],
      dir,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * ECDSA-signs a SHA-256 digest as given, without hashing it again, the way Cloud KMS signs the
 * digest it receives (`openssl pkeyutl -sign` on an EC key signs its input as the digest).
 * node:crypto has no pre-hashed ECDSA, hence openssl.
 */
export async function signDigest(privateKeyPem: string, digest: Buffer): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'clearance-kms-'));
  try {
    await writeFile(join(dir, 'key.pem'), privateKeyPem, { mode: 0o600 });
    await writeFile(join(dir, 'digest.bin'), digest);
    const out = await runOpenssl(
      ['pkeyutl', '-sign', '-inkey', 'key.pem', '-in', 'digest.bin', '-out', 'sig.der'],
      dir,
    );
    if (out.code !== 0) throw new Error(`openssl pkeyutl failed: ${out.stderr}`);
    return await readFile(join(dir, 'sig.der'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
