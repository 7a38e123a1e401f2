// Why this file is long: the floor is one state machine (calls, queues, agents and today's
// counters change together on one event); split, its handlers would pass that state around.
//
// The contact-centre floor as the wallboard shows it, computed from normalized events only (so
// it is the same behind AMI, ARI or a NATS delivery node): queues with their waiting callers and
// today's counters, agents with their state, the calls in progress, today's chart and missed
// calls. Pure: no I/O, no clock of its own (every instant is an event's `time`, or the `now` a
// caller passes). What changed since the last look is kept as dirty keys (takePatch), and what
// today's counters became as writes for the store (takeWrites).
//
// Definitions (README "Supervisor wallboard"):
// - a queue call is *answered* when its first call.answered comes while it is (or was) queued;
//   *missed* when call.missed comes, by reason (abandoned = the caller hung up);
// - wait = the answered event's queue.waitSeconds, else the time since call.queued;
// - service level = answered within N s / (answered + missed); abandon rate = abandoned / (answered + missed);
// - average wait is over answered calls (ASA), average talk over answered calls that ended;
// - a call that came in (not outbound) counts in the 15-minute slot of its outcome (answer or
//   miss), in supervisor.timeZone; missed calls to call back are those with a caller number.
import type { Agent, AgentStatus, BridgeEvent, CallEvent, MissedReason, Party } from '../events/types.js';
import { DayClock, SLOTS_PER_DAY } from './clock.js';
import {
  MISSED_REASONS,
  type AgentFigures,
  type ChartSlot,
  type FloorAgentState,
  type FloorPatch,
  type FloorSnapshot,
  type LiveCall,
  type LiveCallState,
  type MissedCall,
  type QueueFigures,
} from './types.js';

export interface FloorOptions {
  timeZone: string;
  /** N of the service level, per queue; `default` for the others. */
  serviceLevelSeconds: { default: number; queues: Record<string, number> };
  /** Agents known before any event (the config's agents): shown logged out until they log in. */
  agents?: ReadonlyArray<{ id: string; name?: string | null; extension?: string | null }>;
  /** At most this many missed calls kept for today (oldest dropped first). */
  maxMissed?: number;
  /** When the floor began to be watched: the time in state of agents known before any event. */
  startedAt?: number;
}

/** One counter of today, as the store keeps it: a JSON array key and its value. */
export type CounterKey = string;

interface QueueCounters {
  answered: number;
  within: number;
  missed: Record<MissedReason, number>;
  waitSum: number;
  waitCount: number;
  talkSum: number;
  talkCount: number;
}

interface Membership {
  paused: boolean;
  reason: string | null;
}

interface AgentState {
  id: string;
  name: string | null;
  extension: string | null;
  memberships: Map<string, Membership>;
  status: AgentStatus | null;
  /** Calls ringing this agent now. */
  ringing: Set<string>;
  call: { callId: string; direction: CallState['direction']; caller: Party; called: Party; queue: string | null; since: number } | null;
  state: FloorAgentState;
  since: number;
  calls: number;
  talk: number;
}

interface CallState {
  callId: string;
  direction: LiveCall['direction'];
  caller: Party;
  called: Party;
  queue: string | null;
  queuedAt: number | null;
  agent: { id: string; name: string | null } | null;
  state: LiveCallState;
  started: number;
  stateSince: number;
  answered: boolean;
  /** The agent who placed it (an agent's outbound or internal call), from call.started. */
  owner: Agent | null;
  /** Whether its answer or miss was counted already (a transfer's second answer is not). */
  counted: boolean;
  /** The agents it rang or reached: the only ones its hang-up can concern (not every agent). */
  agents: Set<string>;
}

const zeroMissed = (): Record<MissedReason, number> => ({ abandoned: 0, no_answer: 0, busy: 0, unavailable: 0, timeout: 0 });
const zeroQueue = (): QueueCounters => ({ answered: 0, within: 0, missed: zeroMissed(), waitSum: 0, waitCount: 0, talkSum: 0, talkCount: 0 });
const iso = (ms: number) => new Date(ms).toISOString();
const ratio = (n: number, d: number) => (d > 0 ? n / d : null);
const round1 = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);
/** Digits only, without the leading zeros of a trunk or international prefix ("+49 30 1234", "0049301234", "0301234"). */
const digits = (n: string | null | undefined) => (n ?? '').replace(/\D/g, '').replace(/^0+/, '');

/** The key missed calls are indexed by: the last 6 digits (the whole, when shorter), which two numbers that are the same party share. */
const numberKey = (n: string | null | undefined) => digits(n).slice(-6);

/** Two numbers are the same party when one's digits end with the other's (at least 6 of them). */
export function sameNumber(a: string | null | undefined, b: string | null | undefined): boolean {
  const x = digits(a);
  const y = digits(b);
  if (!x || !y) return false;
  if (x === y) return true;
  const [short, long] = x.length <= y.length ? [x, y] : [y, x];
  return short.length >= 6 && long.endsWith(short);
}

export class Floor {
  private readonly clock: DayClock;
  private day = '';
  private readonly queues = new Map<string, QueueCounters>();
  /** queue -> members' agent ids (logged in) */
  private readonly members = new Map<string, Set<string>>();
  /** queue -> callId -> when it joined */
  private readonly waiting = new Map<string, Map<string, number>>();
  private readonly agents = new Map<string, AgentState>();
  private readonly calls = new Map<string, CallState>();
  private slots: ChartSlot[] = [];
  /** Today's missed calls by callId, in the order missed. */
  private readonly missed = new Map<string, MissedCall>();
  /** Those not called back yet, by numberKey: an answered call looks at its own key only. */
  private readonly open = new Map<string, Set<MissedCall>>();
  private readonly maxMissed: number;

  // What changed since takePatch / takeWrites.
  private readonly dirtyQueues = new Set<string>();
  private readonly dirtyAgents = new Set<string>();
  private readonly dirtyCalls = new Set<string>();
  private readonly endedCalls = new Set<string>();
  private readonly dirtySlots = new Set<number>();
  private readonly dirtyMissed = new Set<string>();
  /** Counters to store: `day\nkey` -> [day, key, value]; kept across midnight until taken. */
  private readonly writes = new Map<string, [string, CounterKey, number]>();
  /** Missed calls to store: `day\nid` -> [day, the call]. */
  private readonly missedWrites = new Map<string, [string, MissedCall]>();
  /** A new day began: the next patch is a whole snapshot. */
  private rolled = false;
  /** The event being applied is of a day already over: it counts nowhere. */
  private stale = false;

  constructor(private opts: FloorOptions) {
    this.clock = new DayClock(opts.timeZone);
    this.maxMissed = opts.maxMissed ?? 5000;
    for (const a of opts.agents ?? []) this.agent({ id: a.id, name: a.name ?? null, extension: a.extension ?? null, interface: null }, opts.startedAt ?? 0);
  }

  get timeZone(): string {
    return this.opts.timeZone;
  }

  get today(): string {
    return this.day;
  }

  /** New settings (reload): service levels and known agents; counters stay. */
  configure(opts: FloorOptions): void {
    this.opts = { ...opts, timeZone: this.opts.timeZone };
    for (const a of opts.agents ?? []) if (!this.agents.has(a.id)) this.agent({ id: a.id, name: a.name ?? null, extension: a.extension ?? null, interface: null }, opts.startedAt ?? 0);
    for (const q of this.queueNames()) this.dirtyQueues.add(q);
  }

  /** Starts the day `day` with counters the store kept (a restart), or from zero. */
  restore(day: string, counters: ReadonlyArray<[CounterKey, number]>, missed: readonly MissedCall[]): void {
    this.resetDay(day);
    for (const [key, value] of counters) {
      let path: unknown;
      try {
        path = JSON.parse(key);
      } catch {
        continue; // a row this version cannot read is skipped, not fatal
      }
      if (Array.isArray(path)) this.setCounter(path, value, false);
    }
    for (const m of missed) {
      this.missed.set(m.id, m);
      this.openMissed(m);
    }
    this.writes.clear();
    this.missedWrites.clear();
  }

  /** Moves to the day of `nowMs` if it is a later one (midnight passed with no event). */
  tick(nowMs: number): boolean {
    const { day } = this.clock.at(nowMs);
    if (day > this.day) {
      this.resetDay(day);
      return true;
    }
    return false;
  }

  apply(event: BridgeEvent): void {
    const t = Date.parse(event.time);
    const at = this.clock.at(t);
    if (at.day > this.day) this.resetDay(at.day);
    // An event of a day already over (a delivery node catching up on a backlog) moves the live
    // state but counts nowhere: yesterday's figures are closed, and they are not today's.
    this.stale = at.day < this.day;
    const slot = at.index;
    switch (event.type) {
      case 'call.started':
        this.call(event, t);
        break;
      case 'call.queued': {
        const c = this.call(event, t);
        const joined = t - (event.queue.waitSeconds ?? 0) * 1000;
        if (c.queue && c.queue !== event.queue.name) this.leaveQueue(c);
        c.queue = event.queue.name;
        c.queuedAt = joined;
        this.waitingIn(event.queue.name).set(c.callId, joined);
        this.setCallState(c, 'queued', t);
        this.dirtyQueues.add(event.queue.name);
        break;
      }
      case 'call.ringing': {
        const c = this.call(event, t);
        if (!c.answered && c.state !== 'queued') this.setCallState(c, 'ringing', t);
        if (event.agent) {
          const a = this.agent(event.agent, t);
          a.ringing.add(c.callId);
          c.agents.add(a.id);
          this.refreshAgent(a, t);
        }
        break;
      }
      case 'call.ring_stopped': {
        if (event.agent) {
          const a = this.agent(event.agent, t);
          a.ringing.delete(event.callId);
          this.refreshAgent(a, t);
        }
        break;
      }
      case 'call.answered':
        this.answered(event, t, slot);
        break;
      case 'call.transferred': {
        const from = event.transfer.from;
        if (from) {
          const a = this.agents.get(from.id);
          if (a?.call?.callId === event.callId) {
            a.call = null;
            this.refreshAgent(a, t);
          }
        }
        break;
      }
      case 'call.missed':
        this.missedCall(event, t, slot);
        break;
      case 'call.hangup':
        this.hangup(event, t);
        break;
      case 'agent.login':
      case 'agent.logout': {
        const a = this.agent(event.agent, t);
        const q = event.queue.name;
        if (event.type === 'agent.login') {
          if (!a.memberships.has(q)) a.memberships.set(q, { paused: false, reason: null });
          this.membersOf(q).add(a.id);
        } else {
          a.memberships.delete(q);
          this.members.get(q)?.delete(a.id);
        }
        this.dirtyQueues.add(q);
        this.refreshAgent(a, t);
        break;
      }
      case 'agent.paused':
      case 'agent.unpaused': {
        const a = this.agent(event.agent, t);
        const paused = event.type === 'agent.paused';
        const apply = (q: string) => {
          a.memberships.set(q, { paused, reason: paused ? event.reason : null });
          this.membersOf(q).add(a.id);
          this.dirtyQueues.add(q);
        };
        // A pause names its queue; without one (a pause of every queue) it applies to all.
        if (event.queue) apply(event.queue.name);
        else for (const q of a.memberships.keys()) apply(q);
        this.refreshAgent(a, t);
        break;
      }
      case 'agent.status': {
        const a = this.agent(event.agent, t);
        a.status = event.status;
        this.refreshAgent(a, t);
        break;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Calls

  private call(event: CallEvent, t: number): CallState {
    let c = this.calls.get(event.callId);
    if (!c) {
      c = {
        callId: event.callId,
        direction: event.direction,
        caller: event.caller,
        called: event.called,
        queue: null,
        queuedAt: null,
        agent: event.type === 'call.started' && event.agent ? { id: event.agent.id, name: event.agent.name } : null,
        state: 'ringing',
        started: t,
        stateSince: t,
        answered: false,
        owner: event.type === 'call.started' ? event.agent : null,
        counted: false,
        agents: new Set(),
      };
      this.calls.set(c.callId, c);
    } else {
      // The caller's name or the dialled number can arrive later (CallerID updates).
      c.caller = event.caller;
      c.called = event.called;
    }
    this.dirtyCalls.add(c.callId);
    return c;
  }

  private setCallState(c: CallState, state: LiveCallState, t: number): void {
    if (c.state !== state) {
      c.state = state;
      c.stateSince = t;
    }
    this.dirtyCalls.add(c.callId);
  }

  private leaveQueue(c: CallState): void {
    if (!c.queue) return;
    const w = this.waiting.get(c.queue);
    if (w?.delete(c.callId)) this.dirtyQueues.add(c.queue);
  }

  private answered(event: Extract<CallEvent, { type: 'call.answered' }>, t: number, slot: number): void {
    const c = this.call(event, t);
    const queue = event.queue?.name ?? c.queue;
    if (queue && !c.queue) c.queue = queue;
    this.leaveQueue(c);
    if (!c.counted) {
      c.counted = true;
      if (queue) {
        const wait = event.queue?.waitSeconds ?? (c.queuedAt !== null ? Math.max(0, (t - c.queuedAt) / 1000) : null);
        this.bump(['q', queue, 'answered'], 1);
        if (wait !== null) {
          this.bump(['q', queue, 'waitSum'], wait);
          this.bump(['q', queue, 'waitCount'], 1);
          if (wait <= this.serviceLevelOf(queue)) this.bump(['q', queue, 'within'], 1);
        }
        this.dirtyQueues.add(queue);
      }
      // The chart is of calls that came in (inbound and internal): an agent's own calls out are not.
      if (c.direction !== 'outbound') this.bump(['s', slot, 'answered'], 1);
      this.resolveMissed(c, event, t);
    }
    c.answered = true;
    this.setCallState(c, 'talking', t);
    // Outbound, the remote party answers (agent null): the call is its caller's, the agent's.
    const who = event.agent ?? (c.direction === 'outbound' ? c.owner : null);
    if (who) {
      const a = this.agent(who, t);
      // Another agent had it (a transfer): that agent is off this call now.
      if (c.agent && c.agent.id !== a.id) {
        const before = this.agents.get(c.agent.id);
        if (before?.call?.callId === c.callId) {
          before.call = null;
          this.refreshAgent(before, t);
        }
      }
      c.agent = { id: a.id, name: a.name };
      c.agents.add(a.id);
      a.ringing.delete(c.callId);
      a.call = { callId: c.callId, direction: c.direction, caller: c.caller, called: c.called, queue: c.queue, since: t };
      this.bump(['a', a.id, 'calls'], 1);
      this.refreshAgent(a, t);
    }
  }

  /** A missed call to or from this number is done: called back (outbound) or called again (inbound). */
  private resolveMissed(c: CallState, event: CallEvent, t: number): void {
    if (this.open.size === 0) return;
    const number = c.direction === 'inbound' ? c.caller.number : c.called.number;
    if (!number) return;
    const candidates = this.open.get(numberKey(number));
    if (!candidates) return;
    for (const m of [...candidates]) {
      if (m.id === c.callId || !sameNumber(m.caller.number, number)) continue;
      this.closeMissed(m);
      m.calledBack = { time: iso(t), callId: c.callId, agent: event.agent?.id ?? c.owner?.id ?? null, how: c.direction === 'inbound' ? 'called_again' : 'called_back' };
      this.dirtyMissed.add(m.id);
      this.missedWrites.set(`${this.day}\n${m.id}`, [this.day, m]);
    }
  }

  private missedCall(event: Extract<CallEvent, { type: 'call.missed' }>, t: number, slot: number): void {
    const c = this.call(event, t);
    const queue = event.queue?.name ?? c.queue;
    this.leaveQueue(c);
    if (c.counted) return;
    c.counted = true;
    if (queue) {
      this.bump(['q', queue, 'missed', event.reason], 1);
      this.dirtyQueues.add(queue);
    }
    // Outbound calls nobody answered are the agent's: neither on the chart nor a caller to call back.
    if (event.direction === 'outbound') return;
    this.bump(['s', slot, 'missed', event.reason], 1);
    if (!event.caller.number || this.stale) return;
    const m: MissedCall = { id: c.callId, time: iso(t), caller: event.caller, queue, reason: event.reason, waitSeconds: event.waitSeconds, calledBack: null };
    this.missed.set(m.id, m);
    this.openMissed(m);
    this.dirtyMissed.add(m.id);
    this.missedWrites.set(`${this.day}\n${m.id}`, [this.day, m]);
    if (this.missed.size > this.maxMissed) {
      const oldest = this.missed.values().next().value as MissedCall;
      this.missed.delete(oldest.id);
      this.closeMissed(oldest);
    }
  }

  private openMissed(m: MissedCall): void {
    if (m.calledBack) return;
    const key = numberKey(m.caller.number);
    let set = this.open.get(key);
    if (!set) this.open.set(key, (set = new Set()));
    set.add(m);
  }

  private closeMissed(m: MissedCall): void {
    const key = numberKey(m.caller.number);
    const set = this.open.get(key);
    if (!set?.delete(m)) return;
    if (set.size === 0) this.open.delete(key);
  }

  private hangup(event: Extract<CallEvent, { type: 'call.hangup' }>, t: number): void {
    const c = this.calls.get(event.callId);
    const queue = event.queue?.name ?? c?.queue ?? null;
    const talk = event.durations.talkSeconds;
    if (event.disposition === 'answered' && talk !== null) {
      if (queue) {
        this.bump(['q', queue, 'talkSum'], talk);
        this.bump(['q', queue, 'talkCount'], 1);
        this.dirtyQueues.add(queue);
      }
      const last = event.agent?.id ?? c?.agent?.id;
      if (last) {
        this.bump(['a', last, 'talk'], talk);
        const a = this.agents.get(last);
        if (a) this.dirtyAgents.add(a.id);
      }
    }
    if (c) this.leaveQueue(c);
    this.calls.delete(event.callId);
    this.dirtyCalls.delete(event.callId);
    this.endedCalls.add(event.callId);
    // Only the agents this call rang or reached can hold it (a ring or the call itself); looking
    // at every agent made each hang-up cost as much as the floor is large.
    for (const id of c?.agents ?? []) {
      const a = this.agents.get(id);
      if (!a) continue;
      let changed = a.ringing.delete(event.callId);
      if (a.call?.callId === event.callId) {
        a.call = null;
        changed = true;
      }
      if (changed) this.refreshAgent(a, t);
    }
  }

  private waitingIn(queue: string): Map<string, number> {
    let w = this.waiting.get(queue);
    if (!w) this.waiting.set(queue, (w = new Map()));
    return w;
  }

  private serviceLevelOf(queue: string): number {
    return this.opts.serviceLevelSeconds.queues[queue] ?? this.opts.serviceLevelSeconds.default;
  }

  // ---------------------------------------------------------------------------------------------
  // Agents

  private agent(agent: Agent, t: number): AgentState {
    let a = this.agents.get(agent.id);
    if (!a) {
      a = { id: agent.id, name: agent.name, extension: agent.extension, memberships: new Map(), status: null, ringing: new Set(), call: null, state: 'logged_out', since: t, calls: 0, talk: 0 };
      this.agents.set(a.id, a);
      this.dirtyAgents.add(a.id);
    } else if ((agent.name && agent.name !== a.name) || (agent.extension && agent.extension !== a.extension)) {
      a.name = agent.name ?? a.name;
      a.extension = agent.extension ?? a.extension;
      this.dirtyAgents.add(a.id);
    }
    return a;
  }

  private membersOf(queue: string): Set<string> {
    let m = this.members.get(queue);
    if (!m) this.members.set(queue, (m = new Set()));
    return m;
  }

  private stateOf(a: AgentState): FloorAgentState {
    if (a.call) return a.status === 'on_hold' ? 'on_hold' : 'on_call';
    // A ringing queue member's device often reports busy (a Local channel is in use while it
    // rings): the ring is what the supervisor wants to see.
    if (a.ringing.size > 0 || a.status === 'ringing') return 'ringing';
    if (a.status === 'on_hold') return 'on_hold';
    if (a.status === 'busy') return 'on_call';
    if (a.memberships.size === 0) return 'logged_out';
    let paused = true;
    for (const m of a.memberships.values()) if (!m.paused) paused = false;
    if (paused) return 'paused';
    if (a.status === 'unavailable') return 'unavailable';
    return 'available';
  }

  private refreshAgent(a: AgentState, t: number): void {
    const state = this.stateOf(a);
    if (state !== a.state) {
      a.state = state;
      a.since = t;
    }
    this.dirtyAgents.add(a.id);
    for (const q of a.memberships.keys()) this.dirtyQueues.add(q);
  }

  // ---------------------------------------------------------------------------------------------
  // Counters

  private resetDay(day: string): void {
    if (this.day) this.rolled = true;
    this.day = day;
    this.queues.clear();
    for (const a of this.agents.values()) {
      a.calls = 0;
      a.talk = 0;
    }
    this.slots = Array.from({ length: SLOTS_PER_DAY }, (_, i) => ({ label: DayClock.label(i), answered: 0, missed: zeroMissed() }));
    this.missed.clear();
    this.open.clear();
  }

  private bump(path: Array<string | number>, by: number): void {
    if (this.stale) return;
    this.setCounter(path, this.counter(path) + by, true);
  }

  private counter(path: Array<string | number>): number {
    const [kind, name, field, reason] = path as [string, string | number, string, MissedReason | undefined];
    if (kind === 'q') {
      const q = this.queues.get(String(name));
      if (!q) return 0;
      return field === 'missed' ? q.missed[reason!] : (q[field as Exclude<keyof QueueCounters, 'missed'>] as number);
    }
    if (kind === 'a') {
      const a = this.agents.get(String(name));
      return a ? (field === 'calls' ? a.calls : a.talk) : 0;
    }
    const s = this.slots[Number(name)];
    return s ? (field === 'answered' ? s.answered : s.missed[reason!]) : 0;
  }

  /**
   * Sets one counter by its path (`['q', 'sales', 'answered']`; the store keeps it as JSON);
   * `record`: also remember it for the store. A path this version does not know is ignored.
   */
  private setCounter(path: readonly unknown[], value: number, record: boolean): void {
    const [kind, name, field, reason] = path as [string, string | number, string, string | undefined];
    const isReason = (r: unknown): r is MissedReason => MISSED_REASONS.includes(r as MissedReason);
    if (kind === 'q' && typeof name === 'string') {
      let q = this.queues.get(name);
      if (!q) this.queues.set(name, (q = zeroQueue()));
      if (field === 'missed') {
        if (!isReason(reason)) return;
        q.missed[reason] = value;
      } else if (field in q && field !== 'missed') q[field as Exclude<keyof QueueCounters, 'missed'>] = value;
      else return;
      this.dirtyQueues.add(name);
    } else if (kind === 'a' && typeof name === 'string') {
      const a = this.agent({ id: name, name: null, extension: null, interface: null }, 0);
      if (field === 'calls') a.calls = value;
      else if (field === 'talk') a.talk = value;
      else return;
      this.dirtyAgents.add(a.id);
    } else if (kind === 's' && typeof name === 'number' && this.slots[name]) {
      const s = this.slots[name]!;
      if (field === 'answered') s.answered = value;
      else if (field === 'missed' && isReason(reason)) s.missed[reason] = value;
      else return;
      this.dirtySlots.add(name);
    } else return;
    if (!record) return;
    const key = JSON.stringify(path);
    this.writes.set(`${this.day}\n${key}`, [this.day, key, value]);
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  private queueNames(): Set<string> {
    return new Set([...this.queues.keys(), ...this.members.keys(), ...this.waiting.keys()]);
  }

  queueFigures(name: string): QueueFigures {
    const c = this.queues.get(name) ?? zeroQueue();
    const w = this.waiting.get(name);
    let longest: number | null = null;
    for (const at of w?.values() ?? []) if (longest === null || at < longest) longest = at;
    const agents = { loggedIn: 0, available: 0, onCall: 0, paused: 0 };
    for (const id of this.members.get(name) ?? []) {
      const a = this.agents.get(id);
      const m = a?.memberships.get(name);
      if (!a || !m) continue;
      agents.loggedIn++;
      if (m.paused) agents.paused++;
      else if (a.state === 'on_call' || a.state === 'on_hold') agents.onCall++;
      else if (a.state === 'available') agents.available++;
    }
    const missed = MISSED_REASONS.reduce((n, r) => n + c.missed[r], 0);
    const offered = c.answered + missed;
    const sl = this.serviceLevelOf(name);
    return {
      name,
      waiting: w?.size ?? 0,
      longestWaitSince: longest === null ? null : iso(longest),
      agents,
      answered: c.answered,
      missed: { ...c.missed },
      abandoned: c.missed.abandoned,
      abandonRate: ratio(c.missed.abandoned, offered),
      serviceLevel: { seconds: sl, answeredWithin: c.within, ratio: ratio(c.within, offered) },
      averageWaitSeconds: round1(ratio(c.waitSum, c.waitCount)),
      averageTalkSeconds: round1(ratio(c.talkSum, c.talkCount)),
    };
  }

  private agentFigures(a: AgentState): AgentFigures {
    let pausedReason: string | null = null;
    if (a.state === 'paused') for (const m of a.memberships.values()) if (m.paused && m.reason) pausedReason = m.reason;
    return {
      id: a.id,
      name: a.name,
      extension: a.extension,
      state: a.state,
      since: iso(a.since),
      pausedReason,
      queues: [...a.memberships.keys()].sort(),
      call: a.call ? { callId: a.call.callId, direction: a.call.direction, caller: a.call.caller, called: a.call.called, queue: a.call.queue, since: iso(a.call.since) } : null,
      callsToday: a.calls,
      talkSecondsToday: Math.round(a.talk),
    };
  }

  private liveCall(c: CallState): LiveCall {
    return { callId: c.callId, direction: c.direction, caller: c.caller, called: c.called, queue: c.queue, agent: c.agent, state: c.state, started: iso(c.started), stateSince: iso(c.stateSince) };
  }

  snapshot(nowMs: number): FloorSnapshot {
    return {
      day: this.day,
      timeZone: this.opts.timeZone,
      now: iso(nowMs),
      queues: [...this.queueNames()].sort().map((q) => this.queueFigures(q)),
      agents: [...this.agents.values()].sort((x, y) => x.id.localeCompare(y.id)).map((a) => this.agentFigures(a)),
      calls: [...this.calls.values()].map((c) => this.liveCall(c)),
      chart: this.slots.map((s) => ({ label: s.label, answered: s.answered, missed: { ...s.missed } })),
      missed: [...this.missed.values()].reverse().map((m) => ({ ...m })),
    };
  }

  /** Whether something changed since the last takePatch. */
  get dirty(): boolean {
    return this.rolled || this.dirtyQueues.size + this.dirtyAgents.size + this.dirtyCalls.size + this.endedCalls.size + this.dirtySlots.size + this.dirtyMissed.size > 0;
  }

  /** What changed since the last call, or 'snapshot' when a new day began (send a whole one). */
  takePatch(nowMs: number): FloorPatch | 'snapshot' | null {
    const rolled = this.rolled;
    const dirty = this.dirty;
    this.rolled = false;
    const patch: FloorPatch = { now: iso(nowMs) };
    if (!rolled && dirty) {
      if (this.dirtyQueues.size) patch.queues = [...this.dirtyQueues].map((q) => this.queueFigures(q));
      if (this.dirtyAgents.size) patch.agents = [...this.dirtyAgents].flatMap((id) => (this.agents.has(id) ? [this.agentFigures(this.agents.get(id)!)] : []));
      if (this.dirtyCalls.size) patch.calls = [...this.dirtyCalls].flatMap((id) => (this.calls.has(id) ? [this.liveCall(this.calls.get(id)!)] : []));
      if (this.endedCalls.size) patch.callsEnded = [...this.endedCalls];
      if (this.dirtySlots.size) patch.chart = [...this.dirtySlots].map((i) => ({ index: i, ...this.slots[i]!, missed: { ...this.slots[i]!.missed } }));
      if (this.dirtyMissed.size) patch.missed = [...this.dirtyMissed].flatMap((id) => (this.missed.has(id) ? [{ ...this.missed.get(id)! }] : []));
    }
    this.dirtyQueues.clear();
    this.dirtyAgents.clear();
    this.dirtyCalls.clear();
    this.endedCalls.clear();
    this.dirtySlots.clear();
    this.dirtyMissed.clear();
    if (rolled) return 'snapshot';
    return dirty ? patch : null;
  }

  /** Today's counters and missed calls that changed since the last call, for the store. */
  takeWrites(): { counters: Array<[string, CounterKey, number]>; missed: Array<[string, MissedCall]> } | null {
    if (this.writes.size === 0 && this.missedWrites.size === 0) return null;
    const out = {
      counters: [...this.writes.values()],
      missed: [...this.missedWrites.values()].map(([day, m]): [string, MissedCall] => [day, { ...m }]),
    };
    this.writes.clear();
    this.missedWrites.clear();
    return out;
  }

  /** Queue figures of every queue, for the metrics and the API. */
  allQueues(): QueueFigures[] {
    return [...this.queueNames()].sort().map((q) => this.queueFigures(q));
  }
}
