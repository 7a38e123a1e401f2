// What the ARI source gives for each real-Asterisk scenario, stated as its differences from the
// AMI path (test/helpers/expected.ts). ARI has no app_queue events (QueueCallerJoin, AgentCalled,
// QueueMember*), so:
//
// | scenario                                         | differences from AMI                                  |
// |--------------------------------------------------|-------------------------------------------------------|
// | queue-answered, queue-abandoned, queue-timeout   | no `call.queued sales`; `queue` null on every event;  |
// |                                                  | vars checked from the first call.ringing on           |
// | ten-calls                                        | the same, for each of the ten calls                   |
// | agent-session                                    | nothing: no agent.login / paused / unpaused / logout  |
// | direct-*, blind-transfer, attended-transfer,     | none                                                  |
// | outbound                                         |                                                       |
//
// In every scenario: agent.name is null unless `agents` configures it. AMI learns names from queue
// members (MemberName "Agent 201") and keeps them for later calls too, even direct ones.
//
// Everything else is the same: which calls, callIds (Linkedids), every other event in the same
// order, agents, channels, reasons, hangupBy, causes, and times (both come from Asterisk's clock).
// The missed reason of queue-timeout is still `timeout`: QUEUESTATUS arrives as ChannelVarset.
import { CRM_VARS, EXPECTED, type Expectation } from './expected.js';

export interface AriDifference {
  /** Lines of the AMI sequence (summarize()) that ARI cannot produce. */
  droppedLines: string[];
  /** Agent events (other than agent.status) ARI cannot produce. */
  droppedAgentEvents: boolean;
  /** `queue` is null on the ARI side where AMI names the queue. */
  queueUnknown: boolean;
}

const NONE: AriDifference = { droppedLines: [], droppedAgentEvents: false, queueUnknown: false };
const QUEUE: AriDifference = { droppedLines: ['call.queued sales'], droppedAgentEvents: false, queueUnknown: true };

export const ARI_DIFFERENCES: Record<string, AriDifference> = {
  'queue-answered': QUEUE,
  'queue-abandoned': QUEUE,
  'queue-timeout': QUEUE,
  'ten-calls': QUEUE,
  'agent-session': { ...NONE, droppedAgentEvents: true },
  'direct-answered': NONE,
  'direct-noanswer': NONE,
  'direct-busy': NONE,
  'blind-transfer': NONE,
  'attended-transfer': NONE,
  outbound: NONE,
};

export interface AriExpectation extends Expectation {
  /** The CRM vars every call event from the first call.ringing on must carry. */
  varsFromRinging?: Record<string, string>;
}

/** EXPECTED[name] with ARI's documented differences applied. */
export function ariExpectation(name: string): AriExpectation {
  const base = EXPECTED[name];
  const diff = ARI_DIFFERENCES[name];
  if (!diff) throw new Error(`no ARI difference stated for scenario ${name}`);
  if (!base) return {};
  const drop = (lines: string[]) => lines.filter((l) => !diff.droppedLines.includes(l));
  return {
    ...(base.calls ? { calls: base.calls.map(drop) } : {}),
    ...(base.agents ? { agents: diff.droppedAgentEvents ? [] : base.agents } : {}),
    ...(base.unordered ? { unordered: base.unordered.map(drop).filter((g) => g.length > 1) } : {}),
    ...(base.varsFromQueued ? { varsFromRinging: CRM_VARS } : {}),
  };
}
