// Mints Google-style RS256 ID tokens with a local key and serves its certificate like Google's certs endpoint.
import { createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface IdTokenIssuer {
  certsUrl: string;
  /** Mints a token; `over` replaces claims (e.g. aud, email, exp). */
  mint(claims: { aud: string; email: string } & Record<string, unknown>): string;
  /** A token signed by a key the certs endpoint does not publish. */
  mintWithForeignKey(claims: { aud: string; email: string }): string;
  fetches(): number;
  close(): Promise<void>;
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function sign(key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  // The issued-at is real time: google-auth-library checks expiry against the system clock.
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64url({ alg: 'RS256', kid, typ: 'JWT' })}.${b64url({
    iss: 'https://accounts.google.com',
    iat: now,
    exp: now + 3600,
    email_verified: true,
    sub: '1234567890',
    ...claims,
  })}`;
  const sig = createSign('RSA-SHA256').update(body).sign(key).toString('base64url');
  return `${body}.${sig}`;
}

export async function startIdTokenIssuer(): Promise<IdTokenIssuer> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const foreign = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const kid = 'local-test-key-1';
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  let fetches = 0;
  const server: Server = createServer((_req, res) => {
    fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' });
    res.end(JSON.stringify({ [kid]: pem }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    certsUrl: `http://127.0.0.1:${port}/oauth2/v1/certs`,
    mint: (claims) => sign(privateKey, kid, claims),
    mintWithForeignKey: (claims) => sign(foreign, kid, claims),
    fetches: () => fetches,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
