/**
 * Where a webhook may send (SSRF guard): public addresses, plus what WEBHOOK_ALLOWED_HOSTS allows.
 * Loopback, private, link-local (cloud metadata), CGNAT, multicast and reserved ranges are refused.
 * The host name is resolved when a webhook is saved AND at every send, through the socket's own
 * lookup, so the address checked is the address connected to (no DNS rebinding in between).
 */
import { type LookupAddress, lookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { invalid } from '../platform/errors.ts';

const DENIED = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  DENIED.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  DENIED.addSubnet(net, bits, 'ipv6');
}

/** The parsed WEBHOOK_ALLOWED_HOSTS. */
export interface AddressPolicy {
  hosts: string[];
  nets: BlockList;
}

/** Builds the policy from WEBHOOK_ALLOWED_HOSTS entries (names, `*.suffix`, addresses, CIDR ranges). */
export function addressPolicy(entries: readonly string[]): AddressPolicy {
  const nets = new BlockList();
  const hosts: string[] = [];
  for (const e of entries) {
    const [addr = '', bits] = e.split('/');
    const family = isIP(addr);
    if (family === 0) hosts.push(e.toLowerCase());
    else if (bits === undefined) nets.addAddress(addr, family === 4 ? 'ipv4' : 'ipv6');
    else nets.addSubnet(addr, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
  }
  return { hosts, nets };
}

function hostAllowed(policy: AddressPolicy, host: string): boolean {
  const h = host.toLowerCase();
  return policy.hosts.some((p) => (p.startsWith('*.') ? h.endsWith(p.slice(1)) : h === p));
}

/** Whether `address` may be connected to: allowed explicitly, or public. */
export function addressAllowed(policy: AddressPolicy, address: string): boolean {
  let a = address;
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it is.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1]!;
  const type = isIP(a) === 6 ? 'ipv6' : 'ipv4';
  if (policy.nets.check(a, type)) return true;
  return !DENIED.check(a, type);
}

const refused = (host: string, address: string) =>
  new Error(`webhook URL host ${host} resolves to ${address}, which is not allowed (WEBHOOK_ALLOWED_HOSTS)`);

/**
 * A `lookup` for node:http that resolves and refuses disallowed addresses; the socket connects only
 * to an address that passed.
 */
export function guardedLookup(policy: AddressPolicy) {
  return (
    hostname: string,
    options: { all?: boolean; family?: number | string },
    callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    lookup(hostname, { all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      if (!hostAllowed(policy, hostname)) {
        const bad = addresses.find((a) => !addressAllowed(policy, a.address));
        if (bad) return callback(refused(hostname, bad.address), '', 0);
      }
      if (addresses.length === 0) return callback(new Error(`${hostname} has no address`), '', 0);
      if (options.all) return callback(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/** Checks a webhook URL (syntax, scheme, every address its host resolves to); 400 naming why. */
export async function checkUrl(policy: AddressPolicy, raw: string): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('url must be an absolute http:// or https:// URL', 'url');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid('url must be an http:// or https:// URL', 'url');
  }
  if (url.username || url.password) throw invalid('url must not contain credentials', 'url');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (hostAllowed(policy, host)) return url;
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await new Promise<string[]>((resolve, reject) =>
        lookup(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list.map((a) => a.address)))),
      );
    } catch {
      throw invalid(`url host ${host} does not resolve`, 'url');
    }
  }
  const bad = addresses.find((a) => !addressAllowed(policy, a));
  if (bad) {
    throw invalid(
      `url host ${host} resolves to ${bad}, a loopback, private, link-local or reserved address; ` +
        'an administrator may allow it with WEBHOOK_ALLOWED_HOSTS',
      'url',
    );
  }
  return url;
}
