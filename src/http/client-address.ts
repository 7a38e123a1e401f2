// Who the client is, when a reverse proxy stands between it and the bridge. Behind nginx every
// request comes from the proxy's address, so the per-address defences (the wrong-token throttle,
// the streams per address) would count the whole floor as one client. With `http.trustedProxies`,
// a request from one of those addresses is counted under the address the proxy says it forwarded:
// the right-most entry of X-Forwarded-For that is not itself a trusted proxy (the left part of the
// header is whatever the client sent, so it is never believed). From any other peer the header is
// ignored: a client cannot choose its own address by sending it.
import { BlockList, isIP } from 'node:net';
import { parseSubnet } from '../util/subnet.js';

/** `http.trustedProxies` entries: an address (`127.0.0.1`, `::1`) or a subnet (`10.0.0.0/8`). */
export function trustedProxies(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const subnet = parseSubnet(entry);
    // The config loader refuses such entries first (config/validate.ts).
    if ('problem' in subnet) throw new Error(`http.trustedProxies: ${subnet.problem} (is '${entry}')`);
    if (subnet.prefix === null) list.addAddress(subnet.address, subnet.family);
    else list.addSubnet(subnet.address, subnet.prefix, subnet.family);
  }
  return list;
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`, how a dual-stack socket reports IPv4) as IPv4. */
export function plain(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

function trusted(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client's address: the socket's peer, or, when the peer is a trusted proxy, the right-most
 * X-Forwarded-For address that is not a trusted proxy (the peer itself when there is none).
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, proxies: BlockList | null): string | undefined {
  if (!peer || !proxies || forwardedFor === undefined || !trusted(proxies, plain(peer))) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map((h) => plain(h.trim()));
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) return peer; // a hop we cannot read: nothing to its left can be believed
    if (!trusted(proxies, hop)) return hop;
  }
  return peer;
}
