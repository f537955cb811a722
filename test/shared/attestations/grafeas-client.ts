// Options that point Google's ContainerAnalysisClient at a local REST server with a fixed bearer token.
import type { ContainerAnalysisClient } from '@google-cloud/containeranalysis';
import { localClientOptions } from '../../../shared/findings/store/occurrences.js';

type Options = NonNullable<ConstructorParameters<typeof ContainerAnalysisClient>[0]>;

export function localGrafeasOptions(port: number, token: string): Options {
  return localClientOptions(`http://127.0.0.1:${port}`, token) as Options;
}
