// Who is an agent, and which one: from the `agents` config first, else from the channel or
// queue-member interface (PJSIP/201-00000012 -> 201, Local/201@agents-0000;1 -> 201).
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
}

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

/** The `;1`/`;2` partner of a Local channel name, or null for other technologies. */
export function localPartner(channel: string): string | null {
  if (!/^Local\//i.test(channel)) return null;
  if (channel.endsWith(';1')) return channel.slice(0, -1) + '2';
  if (channel.endsWith(';2')) return channel.slice(0, -1) + '1';
  return null;
}

export class AgentDirectory {
  private byInterface = new Map<string, AgentConfig>();
  private byExtension = new Map<string, AgentConfig>();
  private byAgentId = new Map<string, AgentConfig>();
  private agentContexts = new Set<string>();
  private extensionRe = /$^/;
  /** Names learnt from queue members (MemberName), by interface; bounded by the member count. */
  private readonly learntNames = new Map<string, string>();

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
    this.agentContexts = new Set(opts.agentContexts.map((c) => c.toLowerCase()));
    this.byAgentId = byAgentId;
    this.byInterface = byInterface;
    this.byExtension = byExtension;
  }

  learnName(iface: string, name: string | undefined): void {
    if (name && name !== iface) this.learntNames.set(iface.toLowerCase(), name);
  }

  /** The agent behind a channel name or interface, or null if it is not an agent's device. */
  fromChannel(channelOrInterface: string, memberName?: string): Agent | null {
    const iface = interfaceOf(channelOrInterface);
    const key = iface.toLowerCase();
    const cfg = this.byInterface.get(key);
    const ext = this.extensionOf(iface);
    const byExt = cfg ?? (ext ? this.byExtension.get(ext) : undefined);
    if (byExt) return this.build(byExt, iface, memberName);
    if (ext === null && memberName === undefined) return null;
    const id = ext ?? iface;
    return {
      id,
      extension: ext,
      name: memberName && memberName !== iface ? memberName : this.learntNames.get(key) ?? null,
      interface: iface,
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

  /** Extension of an agent device interface, or null when the interface is not an agent's. */
  private extensionOf(iface: string): string | null {
    const slash = iface.indexOf('/');
    if (slash < 0) return null;
    const tech = iface.slice(0, slash).toLowerCase();
    const rest = iface.slice(slash + 1);
    if (tech === 'local') {
      const at = rest.indexOf('@');
      if (at < 0) return null;
      const ctx = rest.slice(at + 1).replace(/\/n$/, '').toLowerCase();
      return this.agentContexts.has(ctx) ? rest.slice(0, at) : null;
    }
    return this.extensionRe.test(rest) ? rest : null;
  }
}
