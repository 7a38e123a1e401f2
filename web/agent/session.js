// Session state: who is logged in, the open stream, and what this page knows of the calls and pops.
// Everything here is dropped at logout.

import { BoundedSet } from './util.js';

const PROCESSED_MAX = 2000;

export const session = {
  /** Bumped at every login/logout: async work of an older session drops its result. */
  gen: 0,
  token: null,
  me: null,
  rules: [],
  es: null,
  everLive: false,
  liveSince: null,
  lastMessageAt: null,
  lastEventId: null,
  retries: 0,
  retryTimer: null,
  /** Set once the server is seen sending keep-alives as named events (EventSource hides comments). */
  namedKeepAlive: false,
  /** The bridge's own connection to its event source (PBX or bus), from the stream's `status` events; null until told. */
  pbx: null,
  /** When the bridge was last seen losing it (shown as "since"). */
  pbxDownSince: null,
};

/** callKey -> call shown in the call card. */
export const calls = new Map();
/** Event ids already handled by this page (re-deliveries change nothing). */
export const processed = new BoundedSet(PROCESSED_MAX);
/** Pops that a closeOn event may still take down: popKey -> ctx. */
export const pending = new Map();
/** callKey -> closeOn-type events seen, so a pop whose call already moved on never opens. */
export const closeSeen = new Map();
/** ruleId -> the always-open hash frame of that rule. */
export const hashFrames = new Map();

export const callKey = (ev) => `${ev.server}|${ev.callId}`;
export const myAgentId = () => session.me?.agent?.id ?? null;
/** Whose pops a tab opens: one popping tab per agent, and per supervisor, in a browser. */
export const agentKey = () => (myAgentId() ? `a:${myAgentId()}` : `s:${session.me?.supervisorName ?? ''}`);
/** Supervisors (no agent) see everything as theirs. */
export const isMine = (agent) => myAgentId() === null || agent?.id === myAgentId();
export const agentLabel = (a) => (a ? a.name || (a.extension ? `ext. ${a.extension}` : a.id) : 'someone');
export const partyOf = (ev) => (ev.direction === 'outbound' ? ev.called : ev.caller) || null;
