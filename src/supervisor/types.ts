// What the supervisor's wallboard shows, as the server sends it: the page (web/supervisor/), the
// JSON API (/api/v1/supervisor/…) and the SSE stream (/supervisor/events) all carry these shapes.
// Times are ISO 8601 UTC; durations that keep growing (time in state, longest wait, a call's
// duration) are sent as the instant they started, so a page counts them itself without a push a
// second.
import type { MissedReason, Party } from '../events/types.js';

/** An agent's state on the wallboard, one at a time, most telling first. */
export type FloorAgentState = 'on_call' | 'on_hold' | 'ringing' | 'paused' | 'available' | 'unavailable' | 'logged_out';

export const MISSED_REASONS: readonly MissedReason[] = ['abandoned', 'no_answer', 'busy', 'unavailable', 'timeout'];

export interface QueueFigures {
  name: string;
  /** Callers waiting in the queue now. */
  waiting: number;
  /** When the caller waiting longest joined the queue (null: nobody waits). */
  longestWaitSince: string | null;
  agents: { loggedIn: number; available: number; onCall: number; paused: number };
  /** Today (since midnight in supervisor.timeZone). */
  answered: number;
  /** Calls that left the queue unanswered today, by reason (abandoned: the caller hung up). */
  missed: Record<MissedReason, number>;
  abandoned: number;
  /** abandoned / (answered + missed), null before the first call. */
  abandonRate: number | null;
  serviceLevel: {
    /** N: answered within N seconds of joining the queue (supervisor.queues.<name>.serviceLevelSeconds). */
    seconds: number;
    answeredWithin: number;
    /** answeredWithin / (answered + missed): the usual "calls offered" definition (README). */
    ratio: number | null;
  };
  averageWaitSeconds: number | null;
  averageTalkSeconds: number | null;
}

export interface FloorCallRef {
  callId: string;
  direction: 'inbound' | 'outbound' | 'internal';
  caller: Party;
  /** Whom the call is to (on an agent's own outbound call: the number the agent dialled). */
  called: Party;
  queue: string | null;
  /** When this agent was connected to the call. */
  since: string;
}

export interface AgentFigures {
  id: string;
  name: string | null;
  extension: string | null;
  state: FloorAgentState;
  /** When the agent entered `state`. */
  since: string;
  /** The pause reason, when paused. */
  pausedReason: string | null;
  /** Queues the agent is logged in to. */
  queues: string[];
  /** The call the agent is on, or null. */
  call: FloorCallRef | null;
  /** Today: calls answered, and their talk time. */
  callsToday: number;
  talkSecondsToday: number;
}

export type LiveCallState = 'ringing' | 'queued' | 'talking';

export interface LiveCall {
  callId: string;
  direction: 'inbound' | 'outbound' | 'internal';
  caller: Party;
  called: Party;
  queue: string | null;
  agent: { id: string; name: string | null } | null;
  state: LiveCallState;
  /** When the call began, and when it entered `state`. */
  started: string;
  stateSince: string;
}

export interface ChartSlot {
  /** The slot's start, local time of supervisor.timeZone: "08:15". */
  label: string;
  answered: number;
  missed: Record<MissedReason, number>;
}

export interface MissedCall {
  /** The missed call's callId. */
  id: string;
  time: string;
  caller: Party;
  queue: string | null;
  reason: MissedReason;
  waitSeconds: number | null;
  /** Set once a call to (or from) this number is answered after the miss. */
  calledBack: { time: string; callId: string; agent: string | null; how: 'called_back' | 'called_again' } | null;
}

export interface FloorSnapshot {
  /** The day the counters are for, YYYY-MM-DD in `timeZone`. */
  day: string;
  timeZone: string;
  /** The server's clock when this was made (the page corrects its own by it). */
  now: string;
  queues: QueueFigures[];
  agents: AgentFigures[];
  calls: LiveCall[];
  /** 96 slots of 15 minutes, midnight to midnight. */
  chart: ChartSlot[];
  /** Today's missed calls, newest first (called back ones too, marked). */
  missed: MissedCall[];
}

/** What changed since the last push: whole objects, replaced by key. */
export interface FloorPatch {
  now: string;
  queues?: QueueFigures[];
  agents?: AgentFigures[];
  calls?: LiveCall[];
  /** callIds of calls that ended. */
  callsEnded?: string[];
  /** Changed chart slots, by index 0–95. */
  chart?: Array<{ index: number } & ChartSlot>;
  missed?: MissedCall[];
}
