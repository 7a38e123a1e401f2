// Presence sync: an agent's queue availability on the PBX and the agent's presence in the CRM,
// kept in step (the CRM Connector "Omnichannel" feature, seeds/crm-connector-omnichannel.txt).
//
// The PBX side of an agent is the set of its queue memberships, each paused or not; the agent
// is `ready` on the PBX when at least one membership is unpaused, `not_ready` when all are
// paused, `logged_out` without memberships. The CRM side is whatever the CRM says through
// PUT /api/v1/agents/{id}/presence, and whatever the bridge tells the CRM in the `crmPresence`
// field of agent events.
//
// Two modes:
// - synchronized: the same state on both sides. CRM ready -> the agent's memberships unpause;
//   CRM not_ready -> they pause. PBX becomes ready/not_ready -> crmPresence ready/not_ready.
// - complementary: never ready on both sides (both may be not ready). CRM ready -> the
//   memberships pause; CRM not_ready -> nothing changes on the PBX. PBX becomes ready ->
//   crmPresence not_ready; PBX becomes not_ready -> nothing for the CRM.
//
// No echo loops: a pause change the bridge itself made on the CRM's request is marked
// `origin: 'api'` and carries no crmPresence, so it is never bounced back to the CRM; and a
// request that asks for the state the PBX is already in changes nothing.
//
// Wiring (src/bridge.ts): observe() sees each AMI input just before the normalizer, annotate()
// each event the normalizer made of it; seedFrom() takes a QueueStatus answer after every login.
import type { Logger } from 'pino';
import type { AmiEvent } from '../normalizer/ami-event.js';
import { type Agent, type BridgeEvent, isCallEvent } from '../events/types.js';
import type { AgentDirectory } from '../normalizer/agents.js';
import type { NormalizerInput } from '../normalizer/index.js';

export type PresenceMode = 'synchronized' | 'complementary';
export type PresenceState = 'ready' | 'not_ready';
export type PbxPresence = PresenceState | 'logged_out';

export interface PresenceConfig {
  mode: PresenceMode;
  /** Pause reason when the CRM's request gives none. */
  defaultReason: string;
  /** Complementary mode: pause reason while the agent works in the CRM. */
  crmReadyReason: string;
}

export interface Membership {
  queue: string;
  /** The member's interface, as QueuePause wants it (Local/201@agents, PJSIP/201). */
  interface: string;
  paused: boolean;
  reason: string | null;
}

/** What presence needs of the AMI source (AmiSource has it). */
export interface PresenceAmi {
  readonly status: { state: string };
  action(fields: Record<string, string>): Promise<unknown>;
}

export interface PresenceAnnotation {
  origin?: 'api';
  crmPresence?: PresenceState;
}

export interface SetResult {
  agent: string;
  mode: PresenceMode;
  /** The state the CRM asked for. */
  state: PresenceState;
  /** The PBX state this request leads to. */
  pbx: PbxPresence;
  /** Queues whose pause state this request changed (empty: the PBX was already there). */
  changed: string[];
  queues: Membership[];
}

export class PresenceError extends Error {
  constructor(
    readonly kind: 'not_member' | 'unavailable' | 'failed',
    message: string,
  ) {
    super(message);
    this.name = 'PresenceError';
  }
}

const truthy = (v: string | undefined): boolean => v === '1' || v?.toLowerCase() === 'true';
const textOrNull = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);

export interface PresenceSyncOptions {
  config: PresenceConfig;
  agents: AgentDirectory;
  ami: PresenceAmi;
  log: Logger;
  now?: () => number;
  /** How long a change the bridge asked for is expected to come back as an AMI event. */
  echoWindowMs?: number;
}

export class PresenceSync {
  /** agent id -> queue -> membership */
  private readonly members = new Map<string, Map<string, Membership>>();
  /** `agent|queue` -> the pause state the bridge asked for, until when */
  private readonly expected = new Map<string, { paused: boolean; until: number }>();
  /** Annotations for the events of the AMI input being normalized right now, by `type|agent|queue`. */
  private current = new Map<string, PresenceAnnotation>();
  private readonly now: () => number;
  private readonly echoWindowMs: number;

  constructor(private opts: PresenceSyncOptions) {
    this.now = opts.now ?? Date.now;
    this.echoWindowMs = opts.echoWindowMs ?? 10_000;
  }

  get mode(): PresenceMode {
    return this.opts.config.mode;
  }

  /** New settings (SIGHUP reload); memberships and pending expectations stay. */
  configure(config: PresenceConfig): void {
    this.opts = { ...this.opts, config };
  }

  /** The agent's state on the PBX, and its memberships. */
  pbxState(agentId: string): { state: PbxPresence; queues: Membership[] } {
    const queues = [...(this.members.get(agentId)?.values() ?? [])].map((m) => ({ ...m }));
    return { state: aggregate(queues), queues };
  }

  /** Replaces what is known with a QueueStatus answer (QueueMember rows). */
  seedFrom(rows: readonly AmiEvent[]): void {
    this.members.clear();
    for (const ev of rows) {
      if (ev.event?.toLowerCase() !== 'queuemember') continue;
      const found = this.member(ev, ev.name);
      if (!found) continue;
      this.table(found.agent.id).set(found.membership.queue, found.membership);
    }
    this.opts.log.debug({ agents: this.members.size }, 'presence: queue memberships loaded from QueueStatus');
  }

  /** Called with every normalizer input just before the normalizer sees it. */
  observe(input: NormalizerInput): void {
    if (this.current.size) this.current = new Map();
    if (input.kind !== 'event') return;
    const ev = input.event;
    const name = ev.event?.toLowerCase();
    if (name !== 'queuememberadded' && name !== 'queuememberremoved' && name !== 'queuememberpause') return;
    const found = this.member(ev, ev.membername);
    if (!found) return;
    const { agent, membership } = found;
    const table = this.table(agent.id);
    const before = aggregate([...table.values()]);
    let type: BridgeEvent['type'];
    if (name === 'queuememberremoved') {
      table.delete(membership.queue);
      type = 'agent.logout';
    } else {
      table.set(membership.queue, membership);
      type = name === 'queuememberadded' ? 'agent.login' : membership.paused ? 'agent.paused' : 'agent.unpaused';
    }
    if (table.size === 0) this.members.delete(agent.id);
    const after = aggregate([...table.values()]);
    const key = `${agent.id}|${membership.queue}`;
    const wanted = this.expected.get(key);
    const note: PresenceAnnotation = {};
    if (name === 'queuememberpause' && wanted && wanted.until >= this.now() && wanted.paused === membership.paused) {
      this.expected.delete(key);
      note.origin = 'api';
    } else if ((before === 'ready') !== (after === 'ready')) {
      const tell = this.crmPresenceFor(after);
      if (tell) note.crmPresence = tell;
    }
    if (note.origin || note.crmPresence) this.current.set(`${type}|${agent.id}|${membership.queue}`, note);
  }

  /** Adds origin / crmPresence to the agent event the normalizer made of the observed input. */
  annotate(event: BridgeEvent): BridgeEvent {
    if (!this.current.size || isCallEvent(event) || !('queue' in event) || !event.queue) return event;
    const note = this.current.get(`${event.type}|${event.agent.id}|${event.queue.name}`);
    return note ? { ...event, ...note } : event;
  }

  /** What the CRM should now be told, given the PBX's new state (null: nothing). */
  private crmPresenceFor(pbx: PbxPresence): PresenceState | null {
    if (this.mode === 'synchronized') return pbx === 'ready' ? 'ready' : 'not_ready';
    return pbx === 'ready' ? 'not_ready' : null;
  }

  /** The CRM says the agent is `state`: pause or unpause the agent's memberships to match the mode. */
  async set(agent: Agent, state: PresenceState, reason: string | null): Promise<SetResult> {
    const table = this.members.get(agent.id);
    if (!table || table.size === 0) {
      throw new PresenceError('not_member', `agent '${agent.id}' is not a member of any queue, so there is no queue availability to set`);
    }
    if (this.opts.ami.status.state !== 'connected') throw new PresenceError('unavailable', `the PBX is not reachable right now (AMI ${this.opts.ami.status.state}); try again`);
    // null: leave the PBX as it is (complementary mode, CRM not ready).
    let pause: boolean | null;
    let why: string | null = null;
    if (this.mode === 'synchronized') {
      pause = state === 'not_ready';
      why = pause ? reason ?? this.opts.config.defaultReason : null;
    } else {
      pause = state === 'ready' ? true : null;
      why = pause ? reason ?? this.opts.config.crmReadyReason : null;
    }
    const changed: string[] = [];
    if (pause !== null) {
      for (const m of table.values()) {
        if (m.paused === pause && (!pause || m.reason === why)) continue;
        const key = `${agent.id}|${m.queue}`;
        this.expected.set(key, { paused: pause, until: this.now() + this.echoWindowMs });
        try {
          await this.opts.ami.action({
            action: 'QueuePause',
            queue: m.queue,
            interface: m.interface,
            paused: pause ? 'true' : 'false',
            ...(why ? { reason: why } : {}),
          });
        } catch (err) {
          this.expected.delete(key);
          const message = err instanceof Error ? err.message : String(err);
          throw new PresenceError(/not connected/i.test(message) ? 'unavailable' : 'failed', `QueuePause of ${m.interface} in queue '${m.queue}' failed: ${message}${changed.length ? ` (already changed: ${changed.join(', ')})` : ''}`);
        }
        changed.push(m.queue);
      }
    }
    this.prune();
    const queues = [...table.values()].map((m) => (pause === null ? { ...m } : { ...m, paused: pause, reason: pause ? why : null }));
    this.opts.log.info({ agent: agent.id, crm: state, mode: this.mode, changed }, changed.length ? 'presence: queues changed to follow the CRM' : 'presence: the PBX already matches the CRM');
    return { agent: agent.id, mode: this.mode, state, pbx: aggregate(queues), changed, queues };
  }

  private prune(): void {
    const now = this.now();
    for (const [k, v] of this.expected) if (v.until < now) this.expected.delete(k);
  }

  private table(agentId: string): Map<string, Membership> {
    let t = this.members.get(agentId);
    if (!t) this.members.set(agentId, (t = new Map()));
    return t;
  }

  private member(ev: AmiEvent, memberName: string | undefined): { agent: Agent; membership: Membership } | null {
    const iface = ev.interface ?? ev.location;
    if (!iface || !ev.queue) return null;
    const agent = this.opts.agents.fromMember(iface, ev.stateinterface, memberName);
    if (!agent) return null;
    const paused = truthy(ev.paused);
    return { agent, membership: { queue: ev.queue, interface: iface, paused, reason: paused ? textOrNull(ev.pausedreason) : null } };
  }
}

export function aggregate(queues: readonly Membership[]): PbxPresence {
  if (queues.length === 0) return 'logged_out';
  return queues.some((m) => !m.paused) ? 'ready' : 'not_ready';
}
