// Who is an agent, and which one. The evidence, strongest first (README "How agents are
// recognised"):
//   1. the `agents` config: a device listed in an agent's `interfaces` is that agent's;
//   2. queue members: a device the PBX has as a queue member (QueueStatus at login, and the
//      queue events since: AgentCalled, QueueMember*) is an agent's;
//   3. the PBX's device list: a PJSIP endpoint / SIP or IAX2 peer it calls a phone is an agent's,
//      one it calls a trunk is never an agent's (src/sources/ami/inventory.ts has the rule);
//   4. the patterns, for devices the PBX does not list: Local/201@<agentContexts>, and a device
//      whose name matches `extensionPattern` (PJSIP/201-00000012 -> 201).
// An agent's id is its configured id, else its extension (the device name when it matches
// extensionPattern), else the device's interface (PJSIP/alice).
//
// Levels 2 and 3 are learnt from the PBX (setInventory, observeMember): pure data in, no I/O, so
// replay and tests feed them like the live AMI source does.
import type { Agent } from '../events/types.js';

export interface AgentConfig {
  id: string;
  name?: string;
  extension?: string;
  interfaces?: string[];
}

export interface AgentDirectoryOptions {
  agents: readonly AgentConfig[];
  /** Contexts whose Local channels are agents' devices (Local/201@agents). */
  agentContexts: readonly string[];
  /** A device endpoint matching this is an agent extension (PJSIP/201). */
  extensionPattern: string;
  /** Use what the PBX says (queue members, phones and trunks): levels 2 and 3. Default true. */
  fromPbx?: boolean;
  /** At most this many queue members (and their names) learnt from AMI; the least recently seen goes first. */
  maxLearnt?: number;
  /** Told when maxLearnt is reached and a member was forgotten (for a log line and a metric). */
  onCap?: (forgotten: string) => void;
}

/** Queue members learnt from AMI and not seen for this long are forgotten at the periodic reconciliation. */
export const FORGET_MEMBERS_AFTER_SECONDS = 24 * 3600;

export type DeviceKind = 'phone' | 'trunk';

/** What the PBX lists: its devices with their kind, and its queue members. */
export interface DeviceInventory {
  /** Devices the PBX classified, by interface (PJSIP/201, SIP/301, IAX2/branch). */
  devices: ReadonlyArray<{ interface: string; kind: DeviceKind }>;
  /** Queue members (interface, state interface, member name); null when the PBX could not say. */
  members: ReadonlyArray<QueueMemberRef> | null;
  /**
   * Every queue membership with its pause state (QueueStatus), for reconciling who is logged in
   * where; null or absent when the PBX could not say.
   */
  memberships?: ReadonlyArray<QueueMembership> | null;
}

/** One member of one queue, as QueueStatus lists it. */
export interface QueueMembership extends QueueMemberRef {
  queue: string;
  paused: boolean;
  reason: string | null;
}

export interface QueueMemberRef {
  interface: string;
  stateInterface?: string | null;
  name?: string | null;
}

/** Which evidence decided about a device (see the header). */
export type AgentEvidence = 'config' | 'queue-member' | 'pbx-phone' | 'pbx-trunk' | 'pattern' | 'none';

/** `PJSIP/201-0000000a` -> `PJSIP/201`; `Local/201@agents-0000000b;1` -> `Local/201@agents`. */
export function interfaceOf(channel: string): string {
  const slash = channel.indexOf('/');
  if (slash < 0) return channel;
  const tech = channel.slice(0, slash);
  let rest = channel.slice(slash + 1);
  if (tech.toLowerCase() === 'local') {
    rest = rest.replace(/;[12]$/, '').replace(/-[0-9a-f]{8}$/i, '');
  } else {
    const dash = rest.lastIndexOf('-');
    if (dash > 0 && /^[0-9a-f]+$/i.test(rest.slice(dash + 1))) rest = rest.slice(0, dash);
  }
  return `${tech}/${rest}`;
}

/** Also exported here, where callers (test/units.test.ts) have always found it. */
export { localPartner } from './local-channels.js';

export class AgentDirectory {
  private byInterface = new Map<string, AgentConfig>();
  private byExtension = new Map<string, AgentConfig>();
  private byAgentId = new Map<string, AgentConfig>();
  private agentContexts = new Set<string>();
  private extensionRe = /$^/;
  /** Names learnt from queue members (MemberName), by interface; bounded by the member count. */
  private readonly learntNames = new Map<string, string>();
  private fromPbx = true;
  /** What the PBX called each device (lower-case interface). Replaced by every inventory. */
  private deviceKinds = new Map<string, DeviceKind>();
  /**
   * Queue member interfaces (lower case, Local's /n dropped) -> when last seen (epoch seconds):
   * replaced by an inventory that lists members, added to by queue events. Kept in the order
   * they were last seen (the first is the stalest), bounded by maxLearnt, and members not seen
   * for FORGET_MEMBERS_AFTER_SECONDS are forgotten (forgetUnseen): a PBX's queue events could
   * otherwise name any number of interfaces.
   */
  private members = new Map<string, number>();
  private maxLearnt = 10_000;
  private onCap: (forgotten: string) => void = () => undefined;
  /** The latest time given to observeMember / setInventory (epoch seconds). */
  private now = 0;

  constructor(opts: AgentDirectoryOptions) {
    this.reload(opts);
  }

  /** Replaces who is an agent (SIGHUP reload); everyone sharing this directory sees the new one. */
  reload(opts: AgentDirectoryOptions): void {
    const byAgentId = new Map<string, AgentConfig>();
    const byInterface = new Map<string, AgentConfig>();
    const byExtension = new Map<string, AgentConfig>();
    for (const a of opts.agents) {
      byAgentId.set(a.id, a);
      for (const i of a.interfaces ?? []) byInterface.set(i.toLowerCase(), a);
      if (a.extension) byExtension.set(a.extension, a);
    }
    this.extensionRe = new RegExp(opts.extensionPattern);
    this.fromPbx = opts.fromPbx ?? true;
    this.agentContexts = new Set(opts.agentContexts.map((c) => c.toLowerCase()));
    this.byAgentId = byAgentId;
    this.byInterface = byInterface;
    this.byExtension = byExtension;
    this.maxLearnt = Math.max(1, opts.maxLearnt ?? this.maxLearnt);
    if (opts.onCap) this.onCap = opts.onCap;
  }

  learnName(iface: string, name: string | undefined): void {
    if (!name || name === iface) return;
    const key = iface.toLowerCase();
    // Re-inserted, as members are: the first name is the one learnt or confirmed least recently.
    this.learntNames.delete(key);
    this.learntNames.set(key, name);
    // Names outlive members only up to the same bound (they are forgotten with their member).
    if (this.learntNames.size > this.maxLearnt) this.learntNames.delete(this.learntNames.keys().next().value ?? '');
  }

  /**
   * Replaces what was learnt of the PBX's devices (levels 2 and 3): read at every AMI login and
   * after every PBX reload. `members: null` keeps the queue members known so far.
   */
  setInventory(inventory: DeviceInventory, now = this.now): void {
    const kinds = new Map<string, DeviceKind>();
    for (const d of inventory.devices) kinds.set(d.interface.toLowerCase(), d.kind);
    this.deviceKinds = kinds;
    if (inventory.members !== null) {
      this.members = new Map();
      for (const m of inventory.members) this.observeMember(m.interface, m.stateInterface ?? undefined, m.name ?? undefined, now);
    }
  }

  /** A queue member seen in a queue event (AgentCalled, QueueMember*): level-2 evidence. */
  observeMember(iface: string, stateInterface: string | undefined, name: string | undefined, now = this.now): void {
    this.now = Math.max(this.now, now);
    for (const i of [iface, stateInterface]) {
      if (!i || !i.includes('/')) continue;
      const key = memberKey(i);
      // Re-inserted: the map stays in the order members were last seen.
      this.members.delete(key);
      this.members.set(key, this.now);
      if (this.members.size > this.maxLearnt) this.forget(this.members.keys().next().value ?? key, true);
      this.learnName(withoutLocalN(i), name);
    }
  }

  /**
   * Forgets the queue members learnt from AMI that were last seen before `before` (epoch
   * seconds), with their names; returns how many. Called at the periodic reconciliation.
   */
  forgetUnseen(before: number): number {
    let n = 0;
    for (const [key, seen] of this.members) {
      if (seen >= before) break;
      this.forget(key, false);
      n++;
    }
    return n;
  }

  private forget(key: string, cap: boolean): void {
    this.members.delete(key);
    this.learntNames.delete(key);
    if (cap) this.onCap(key);
  }

  /** How many devices the PBX classified, and how many queue members are known (for logs). */
  get learnt(): { phones: number; trunks: number; members: number } {
    let phones = 0;
    for (const k of this.deviceKinds.values()) if (k === 'phone') phones++;
    return { phones, trunks: this.deviceKinds.size - phones, members: this.members.size };
  }

  /** The agent behind a channel name or interface, or null if it is not an agent's device. */
  fromChannel(channelOrInterface: string, memberName?: string): Agent | null {
    return this.describe(channelOrInterface, memberName).agent;
  }

  /** The agent behind a device (or null), and which evidence decided it. */
  describe(channelOrInterface: string, memberName?: string): { agent: Agent | null; by: AgentEvidence } {
    const iface = interfaceOf(channelOrInterface);
    // An empty Interface header names no device (and would make an agent with an empty id).
    if (iface === '') return { agent: null, by: 'none' };
    const key = iface.toLowerCase();
    const cfg = this.byInterface.get(key);
    if (cfg) return { agent: this.build(cfg, iface, memberName), by: 'config' };
    const found = this.evidenceOf(iface, memberName !== undefined);
    if (found.extension === undefined) return { agent: null, by: found.by };
    const ext = found.extension;
    const byExt = ext ? this.byExtension.get(ext) : undefined;
    if (byExt) return { agent: this.build(byExt, iface, memberName), by: 'config' };
    return {
      agent: {
        id: ext ?? iface,
        extension: ext,
        name: memberName && memberName !== iface ? memberName : this.learntNames.get(key) ?? null,
        interface: iface,
      },
      by: found.by,
    };
  }

  /** The agent behind a queue member: its state interface (the phone) first, then its interface. */
  fromMember(iface: string, stateInterface: string | undefined, memberName: string | undefined): Agent | null {
    const viaState = stateInterface && stateInterface !== iface ? this.fromChannel(stateInterface, memberName) : null;
    return viaState ?? this.fromChannel(iface, memberName);
  }

  /** The agent reached by dialling an extension (transfer targets), or null. */
  fromExtension(ext: string): Agent | null {
    const cfg = this.byExtension.get(ext);
    if (cfg) return this.build(cfg, cfg.interfaces?.[0] ?? null, undefined);
    // With the PBX's phone list at hand, an extension is an agent's only if a phone answers to
    // it: a parking lot (700), a conference room or a ring group matches the pattern too.
    if (this.fromPbx && this.learnt.phones > 0) {
      const suffix = `/${ext.toLowerCase()}`;
      for (const [iface, kind] of this.deviceKinds) {
        if (kind === 'phone' && iface.endsWith(suffix)) return { id: ext, extension: ext, name: this.learntNames.get(iface) ?? null, interface: null };
      }
      return null;
    }
    if (!this.extensionRe.test(ext)) return null;
    return { id: ext, extension: ext, name: null, interface: null };
  }

  /** A configured agent by id, or null. */
  byId(id: string): Agent | null {
    const cfg = this.byAgentId.get(id);
    return cfg ? this.build(cfg, cfg.interfaces?.[0] ?? null, undefined) : null;
  }

  isAgentExtension(ext: string): boolean {
    return this.byExtension.has(ext) || this.extensionRe.test(ext);
  }

  private build(cfg: AgentConfig, iface: string | null, memberName: string | undefined): Agent {
    return {
      id: cfg.id,
      extension: cfg.extension ?? null,
      name: cfg.name ?? memberName ?? (iface ? this.learntNames.get(iface.toLowerCase()) : undefined) ?? null,
      interface: iface ?? cfg.interfaces?.[0] ?? null,
    };
  }

  /**
   * Levels 2 to 4 for a device no agent lists in `interfaces`: `extension` is undefined when the
   * device is not an agent's, else the agent's extension (null when its name is not one).
   */
  private evidenceOf(iface: string, inQueueEvent: boolean): { by: AgentEvidence; extension?: string | null } {
    const byPattern = this.patternExtension(iface);
    const key = iface.toLowerCase();
    if (inQueueEvent || (this.fromPbx && this.members.has(memberKey(iface)))) {
      return { by: 'queue-member', extension: byPattern ?? (this.fromPbx ? this.looseExtension(iface) : null) };
    }
    const kind = this.fromPbx ? this.deviceKinds.get(key) : undefined;
    if (kind === 'trunk') return { by: 'pbx-trunk' };
    if (kind === 'phone') return { by: 'pbx-phone', extension: byPattern };
    return byPattern !== null ? { by: 'pattern', extension: byPattern } : { by: 'none' };
  }

  /** Level 4: the extension of a device by agentContexts / extensionPattern, or null. */
  private patternExtension(iface: string): string | null {
    const slash = iface.indexOf('/');
    if (slash < 0) return null;
    const tech = iface.slice(0, slash).toLowerCase();
    const rest = iface.slice(slash + 1);
    if (tech === 'local') {
      const at = rest.indexOf('@');
      if (at < 0) return null;
      const ctx = rest.slice(at + 1).replace(/\/n$/, '').toLowerCase();
      // `Local/@agents` names no extension: an empty one would be an agent with an empty id.
      return at > 0 && this.agentContexts.has(ctx) ? rest.slice(0, at) : null;
    }
    return rest !== '' && this.extensionRe.test(rest) ? rest : null;
  }

  /** A queue member's extension whatever its Local context: Local/201@custom -> 201. */
  private looseExtension(iface: string): string | null {
    const slash = iface.indexOf('/');
    if (slash < 0) return null;
    const rest = iface.slice(slash + 1);
    const name = iface.slice(0, slash).toLowerCase() === 'local' ? rest.slice(0, Math.max(0, rest.indexOf('@'))) : rest;
    return name !== '' && this.extensionRe.test(name) ? name : null;
  }
}

/** The key of a queue member interface: lower case, without Local's /n (Local/201@agents/n). */
function memberKey(iface: string): string {
  return withoutLocalN(iface).toLowerCase();
}

function withoutLocalN(iface: string): string {
  return /^local\//i.test(iface) ? iface.replace(/\/n$/i, '') : iface;
}
