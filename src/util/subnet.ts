// An address or subnet as written in the config (`127.0.0.1`, `10.0.0.0/8`, `::1`): read once,
// the same way for checking the config and for building the list the HTTP server matches against.
import { isIP } from 'node:net';

export type Subnet = { address: string; family: 'ipv4' | 'ipv6'; prefix: number | null };

/** The subnet `entry` names, or why it names none. */
export function parseSubnet(entry: string): Subnet | { problem: string } {
  const [address = '', bits, extra] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return { problem: 'must be an IP address or a subnet (10.0.0.0/8)' };
  const max = version === 4 ? 32 : 128;
  if (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max)) return { problem: `the prefix length must be 0-${max}` };
  return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix: bits === undefined ? null : Number(bits) };
}
