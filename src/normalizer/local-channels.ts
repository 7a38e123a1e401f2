// Local channels (Local/201@agents-0000000b;1 and ;2): the PBX's own plumbing between parties.
// Their two halves are one path, so every rule that follows a dial through the PBX follows the
// partner too; the ARI translation (src/sources/ari/translate.ts) pairs them the same way.
import type { Agent } from '../events/types.js';

export function isLocal(channel: string): boolean {
  return /^Local\//i.test(channel);
}

/** The `;1`/`;2` partner of a Local channel name, or null for other technologies. */
export function localPartner(channel: string): string | null {
  if (!isLocal(channel)) return null;
  if (channel.endsWith(';1')) return channel.slice(0, -1) + '2';
  if (channel.endsWith(';2')) return channel.slice(0, -1) + '1';
  return null;
}

/**
 * A party is a device (any channel but a Local one) or a Local channel that is an agent's
 * device (Local/201@agents); other Local channels are the PBX's plumbing between parties.
 */
export function isPartyChannel(name: string, agent: Agent | null): boolean {
  return !isLocal(name) || agent !== null;
}
