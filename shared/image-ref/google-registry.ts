// Which registry hosts are Google's: their events come only from the gcr topic, and they get Google credentials.

/** gcr.io, *.gcr.io and Artifact Registry hosts (*.pkg.dev, e.g. us-docker.pkg.dev), with or without a port. */
export function isGoogleRegistryHost(host: string): boolean {
  const h = host.toLowerCase().replace(/:(\d+|\*)$/, '');
  return h === 'gcr.io' || h.endsWith('.gcr.io') || h === 'pkg.dev' || h.endsWith('.pkg.dev');
}
