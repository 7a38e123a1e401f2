// AMI handlers for agents rather than calls: queue members logging in and out
// (QueueMemberAdded/Removed), pausing (QueueMemberPause), their status (QueueMemberStatus) and
// their devices' state (DeviceStateChange). Who is an agent is src/normalizer/agents.ts's to say.
import type { AmiEvent } from './ami-event.js';
import type { Agent, AgentStatus } from '../events/types.js';
import { type AmiEventWith, cidOrNull } from './ami-fields.js';
import type { TrackerState } from './state.js';
import { deviceStatus, memberStatus } from './statuses.js';

/** The agent a queue member event names (learning its MemberName on the way), or null. */
function memberAgent(s: TrackerState, ev: AmiEvent): Agent | null {
  const iface = ev.interface ?? ev.location ?? '';
  if (!iface) return null;
  s.agents.learnName(iface, ev.membername);
  return s.agents.fromMember(iface, ev.stateinterface, ev.membername);
}

export function onMemberLogin(s: TrackerState, ev: AmiEvent, type: 'agent.login' | 'agent.logout'): void {
  const agent = memberAgent(s, ev);
  if (!agent || !ev.queue) return;
  s.emitAgent(agent, type, { queue: { name: ev.queue, position: null, waitSeconds: null } });
}

export function onMemberPause(s: TrackerState, ev: AmiEvent): void {
  const agent = memberAgent(s, ev);
  if (!agent) return;
  const paused = ev.paused === '1' || ev.paused?.toLowerCase() === 'true';
  const reason = cidOrNull(ev.pausedreason) ?? cidOrNull(ev.reason);
  s.emitAgent(agent, paused ? 'agent.paused' : 'agent.unpaused', {
    queue: ev.queue ? { name: ev.queue, position: null, waitSeconds: null } : null,
    reason: paused ? reason : null,
  });
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
