// Where the registry client may send a request it did not choose itself (a token realm, a redirect): https to public addresses, or a host the operator listed as insecure.
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { ClearanceError, TransientError } from '../errors.js';

/** Hosts reached over http:// and exempt from the public-address rule; loopback by default (local stacks and tests). */
export const DEFAULT_INSECURE_HOSTS = [
  '127.0.0.1:*',
  'localhost:*',
  '[::1]:*',
  '127.0.0.1',
  'localhost',
];

/** Addresses a registry has no business sending credentials or clients to (RFC 6890 special-purpose ranges). */
const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b:1::', 48],
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

/** True when the address is routable on the public internet (IPv4-mapped IPv6 judged as its IPv4). */
export function isPublicAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return isPublicAddress(mapped[1] as string);
  const family = isIP(a);
  if (family === 4) return !NON_PUBLIC.check(a, 'ipv4');
  if (family === 6) return !NON_PUBLIC.check(a, 'ipv6');
  return false;
}

export type Lookup = (hostname: string) => Promise<string[]>;

const systemLookup: Lookup = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

function globToRegExp(glob: string): RegExp {
  const escaped = glob.toLowerCase().replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped.replace(/\*/g, '[^/]*')}$`);
}

export interface OutboundGuard {
  /** Whether `host` (host[:port]) is on the insecure list: reached over http, exempt from the address rule. */
  isInsecure(host: string): boolean;
  /** Refuses (forbidden) a URL that is not https to a public address, unless its host is insecure-listed. */
  check(url: URL, what: string): Promise<void>;
}

export function createOutboundGuard(
  opts: { insecureHosts?: readonly string[]; lookup?: Lookup } = {},
): OutboundGuard {
  const insecure = (opts.insecureHosts ?? DEFAULT_INSECURE_HOSTS).map(globToRegExp);
  const lookup = opts.lookup ?? systemLookup;
  const isInsecure = (host: string) => insecure.some((re) => re.test(host.toLowerCase()));
  return {
    isInsecure,
    async check(url, what) {
      const host = url.host.toLowerCase();
      if (isInsecure(host) && (url.protocol === 'http:' || url.protocol === 'https:')) return;
      const refuse = (why: string) =>
        new ClearanceError('forbidden', `refusing ${what} to ${host || url.protocol}: ${why}`, {
          details: { host, protocol: url.protocol, what },
        });
      if (url.protocol !== 'https:') throw refuse('only https is allowed');
      if (url.username || url.password) throw refuse('credentials in the URL');
      const hostname = url.hostname.replace(/^\[|\]$/g, '');
      let addresses: string[];
      if (isIP(hostname)) addresses = [hostname];
      else {
        try {
          addresses = await lookup(hostname);
        } catch (err) {
          throw new TransientError(`cannot resolve ${hostname} for ${what}`, {
            cause: err,
            code: 'unavailable',
            details: { host },
          });
        }
      }
      if (addresses.length === 0) throw refuse('the name resolves to no address');
      const inner = addresses.find((a) => !isPublicAddress(a));
      if (inner !== undefined) throw refuse(`${inner} is not a public address`);
    },
  };
}
