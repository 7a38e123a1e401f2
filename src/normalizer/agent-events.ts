// AMI handlers for agents rather than calls: queue members logging in and out
// (QueueMemberAdded/Removed), pausing (QueueMemberPause), their status (QueueMemberStatus) and
// their devices' state (DeviceStateChange). Who is an agent is src/normalizer/agents.ts's to say.
import type { AmiEvent } from './ami-event.js';
import type { Agent, AgentStatus } from '../events/types.js';
import { type AmiEventWith, cidOrNull } from './ami-fields.js';
import type { QueueMembership } from './agents.js';
import type { TrackerState } from './state.js';
import { deviceStatus, memberStatus } from './statuses.js';

/** The agent a queue member event names (learning its MemberName on the way), or null. */
function memberAgent(s: TrackerState, ev: AmiEvent): Agent | null {
  const iface = ev.interface ?? ev.location ?? '';
  if (!iface) return null;
  s.agents.learnName(iface, ev.membername);
  return s.agents.fromMember(iface, ev.stateinterface, ev.membername);
}

const queueRef = (name: string) => ({ name, position: null, waitSeconds: null });

/** Remembers (or forgets) an announced membership, so a reconnect announces only what changed. */
function remember(s: TrackerState, agentId: string, queue: string, state: { paused: boolean; reason: string | null } | null): void {
  let table = s.memberships.get(agentId);
  if (state === null) {
    table?.delete(queue);
    if (table?.size === 0) s.memberships.delete(agentId);
    return;
  }
  if (!table) s.memberships.set(agentId, (table = new Map()));
  table.set(queue, state);
}

export function onMemberLogin(s: TrackerState, ev: AmiEvent, type: 'agent.login' | 'agent.logout'): void {
  const agent = memberAgent(s, ev);
  if (!agent || !ev.queue) return;
  const paused = ev.paused === '1' || ev.paused?.toLowerCase() === 'true';
  remember(s, agent.id, ev.queue, type === 'agent.login' ? { paused, reason: paused ? cidOrNull(ev.pausedreason) : null } : null);
  s.emitAgent(agent, type, { queue: queueRef(ev.queue) });
}

export function onMemberPause(s: TrackerState, ev: AmiEvent): void {
  const agent = memberAgent(s, ev);
  if (!agent) return;
  const paused = ev.paused === '1' || ev.paused?.toLowerCase() === 'true';
  const reason = cidOrNull(ev.pausedreason) ?? cidOrNull(ev.reason);
  if (ev.queue) remember(s, agent.id, ev.queue, { paused, reason: paused ? reason : null });
  s.emitAgent(agent, paused ? 'agent.paused' : 'agent.unpaused', {
    queue: ev.queue ? queueRef(ev.queue) : null,
    reason: paused ? reason : null,
  });
}

/**
 * The PBX's queue memberships now (QueueStatus, at every AMI login and PBX reload) against what
 * was announced: a membership not announced yet gets agent.login (and agent.paused when it is
 * paused), a changed pause state its agent.paused / agent.unpaused, and an announced membership
 * the PBX no longer lists agent.logout. So every consumer (the wallboard, a CRM's presence) knows
 * the static members of queues.conf and the members that came or went while the bridge was away.
 */
export function reconcileMemberships(s: TrackerState, list: readonly QueueMembership[]): void {
  const seen = new Map<string, Set<string>>();
  for (const m of list) {
    const agent = s.agents.fromMember(m.interface, m.stateInterface ?? undefined, m.name ?? undefined);
    if (!agent) continue;
    let queues = seen.get(agent.id);
    if (!queues) seen.set(agent.id, (queues = new Set()));
    if (queues.has(m.queue)) continue;
    queues.add(m.queue);
    const known = s.memberships.get(agent.id)?.get(m.queue);
    remember(s, agent.id, m.queue, { paused: m.paused, reason: m.reason });
    if (!known) s.emitAgent(agent, 'agent.login', { queue: queueRef(m.queue) });
    if ((!known && m.paused) || (known && (known.paused !== m.paused || (m.paused && known.reason !== m.reason)))) {
      s.emitAgent(agent, m.paused ? 'agent.paused' : 'agent.unpaused', { queue: queueRef(m.queue), reason: m.paused ? m.reason : null });
    }
  }
  for (const [agentId, table] of [...s.memberships]) {
    for (const queue of [...table.keys()]) {
      if (seen.get(agentId)?.has(queue)) continue;
      remember(s, agentId, queue, null);
      const agent = s.agents.byId(agentId) ?? { id: agentId, extension: null, name: null, interface: null };
      s.emitAgent(agent, 'agent.logout', { queue: queueRef(queue) });
    }
  }
}

export function onMemberStatus(s: TrackerState, ev: AmiEvent): void {
  const agent = memberAgent(s, ev);
  const status = ev.status !== undefined ? memberStatus(ev.status) : undefined;
  if (agent && status) agentStatusChange(s, agent, status);
}

export function onDeviceState(s: TrackerState, ev: AmiEventWith<'device'>): void {
  const status = ev.state !== undefined ? deviceStatus(ev.state) : undefined;
  const agent = s.agents.fromChannel(ev.device);
  if (agent && status) agentStatusChange(s, agent, status);
}

/** agent.status on a change only: a device and its queue memberships report the same state. */
function agentStatusChange(s: TrackerState, agent: Agent, status: AgentStatus): void {
  if (s.agentStatus.get(agent.id) === status) return;
  s.agentStatus.set(agent.id, status);
  s.emitAgent(agent, 'agent.status', { status });
}
