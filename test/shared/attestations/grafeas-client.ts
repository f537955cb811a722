// Options that point Google's ContainerAnalysisClient at a local REST server with a fixed bearer token.
import type { ContainerAnalysisClient } from '@google-cloud/containeranalysis';

type Options = NonNullable<ConstructorParameters<typeof ContainerAnalysisClient>[0]>;

/**
 * @google-cloud/containeranalysis 5 runs on google-gax 4, whose REST fallback spreads the result of
 * `auth.getRequestHeaders()` into a plain headers object. google-auth-library 10's OAuth2Client
 * returns a `Headers` instance there, which spreads to nothing (the request then goes out with no
 * Authorization at all), so the Grafeas client gets a minimal auth object returning a plain record.
 * The cast is that minimal object standing in for GoogleAuth.
 */
export function localGrafeasOptions(port: number, token: string): Options {
  const auth = { getRequestHeaders: async () => ({ Authorization: `Bearer ${token}` }) };
  return {
    fallback: true,
    apiEndpoint: '127.0.0.1',
    port,
    protocol: 'http',
    auth: auth as unknown as Options['auth'],
  };
}
