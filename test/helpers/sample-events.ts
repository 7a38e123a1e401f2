// Realistic sample contract events, shared by the schema and template tests.
//
// One inbound queue call on pbx1 (Linkedid 1795369723.40): the caller "Acme & Sons" dials the
// DID 41004100, the dialplan exports two CRM variables, queue "sales" rings 201 and 202, 201
// answers and transfers to 203; an abandoned call from a withheld number; one agent's session.
import type {
  Agent,
  AgentLogin,
  AgentLogout,
  AgentPaused,
  AgentStatusEvent,
  AgentUnpaused,
  CallAnswered,
  CallHangup,
  CallMissed,
  CallQueued,
  CallRinging,
  CallRingStopped,
  CallStarted,
  CallTransferred,
} from '../../src/events/types.js';

export const agent201: Agent = { id: '201', extension: '201', name: 'Zoë Łukasik', interface: 'PJSIP/201' };
export const agent202: Agent = { id: '202', extension: '202', name: 'José Núñez', interface: 'PJSIP/202' };
export const agent203: Agent = { id: 'u-17', extension: '203', name: 'Ana Pérez', interface: 'PJSIP/203' };

export const call = {
  specVersion: '1',
  server: 'pbx1',
  callId: '1795369723.40',
  direction: 'inbound',
  caller: { number: '+4915112345678', name: 'Acme & Sons' },
  called: { number: '41004100' },
  vars: { Omlcrmcustomerid: '12345', Omlcrmcustomerplan: 'gold & silver #2 = Müller' },
} as const;

export const callerChannel = { uniqueid: '1795369723.40', name: 'PJSIP/trunk-0000002a' };
export const agentChannel = { uniqueid: '1795369726.41', name: 'PJSIP/201-00000012' };
export const sales = { name: 'sales', position: 1, waitSeconds: 3.2 };

export const started = {
  ...call,
  vars: {},
  id: '0b4e5f8c-6a3d-5e1b-9c7a-2f1d3e4b5a60',
  type: 'call.started',
  time: '2026-11-22T17:48:43.118Z',
  seq: 1,
  agent: null,
  queue: null,
  channel: callerChannel,
} satisfies CallStarted;

export const queued = {
  ...call,
  id: '1c5f6a9d-7b4e-5f2c-8d8b-3a2e4f5c6b71',
  type: 'call.queued',
  time: '2026-11-22T17:48:46.702Z',
  seq: 2,
  agent: null,
  queue: { name: 'sales', position: 1, waitSeconds: 0 },
  channel: callerChannel,
} satisfies CallQueued;

export const ringing = {
  ...call,
  id: '2d6a7b0e-8c5f-5a3d-9e9c-4b3f5a6d7c82',
  type: 'call.ringing',
  time: '2026-11-22T17:48:46.705Z',
  seq: 3,
  agent: agent201,
  queue: { name: 'sales', position: 1, waitSeconds: 0.003 },
  channel: agentChannel,
} satisfies CallRinging;

export const answered = {
  ...call,
  id: '3e7b8c1f-9d6a-5b4e-8f0d-5c4a6b7e8d93',
  type: 'call.answered',
  time: '2026-11-22T17:48:49.905Z',
  seq: 5,
  agent: agent201,
  queue: sales,
  channel: agentChannel,
  ringSeconds: 3.2,
} satisfies CallAnswered;

export const ringStopped = {
  ...call,
  id: '4f8c9d2a-0e7b-5c5f-9a1e-6d5b7c8f9ea4',
  type: 'call.ring_stopped',
  time: '2026-11-22T17:48:49.906Z',
  seq: 6,
  agent: agent202,
  queue: sales,
  channel: { uniqueid: '1795369726.42', name: 'PJSIP/202-00000013' },
  reason: 'answered_elsewhere',
} satisfies CallRingStopped;

export const transferred = {
  ...call,
  // A ULID: the id of a bridge that runs alone.
  id: '01JD7Q0W8N4V6S1T3K9YB2M5XR',
  type: 'call.transferred',
  time: '2026-11-22T17:50:12.034Z',
  seq: 7,
  agent: agent201,
  queue: sales,
  channel: null,
  transfer: { kind: 'attended', from: agent201, to: { number: '203', agent: agent203 } },
} satisfies CallTransferred;

// A blind transfer to an agent whose number the PBX did not report: transferTo falls back to the extension.
export const blindToAgent = {
  ...transferred,
  id: '01JD7Q0W8N4V6S1T3K9YB2M5XS',
  seq: 8,
  transfer: { kind: 'blind', from: agent201, to: { number: null, agent: agent203 } },
} satisfies CallTransferred;

export const hangup = {
  ...call,
  id: '5a9d0e3b-1f8c-5d6a-8b2f-7e6c8d9a0fb5',
  type: 'call.hangup',
  time: '2026-11-22T17:53:05.377Z',
  seq: 9,
  agent: agent203,
  queue: sales,
  channel: callerChannel,
  disposition: 'answered',
  hangupBy: 'caller',
  cause: { code: 16, text: 'Normal Clearing' },
  durations: { ringSeconds: 3.2, talkSeconds: 255.472, totalSeconds: 262.259 },
} satisfies CallHangup;

// An abandoned queue call from a withheld number: missed, then its hang-up.
export const missedCall = {
  specVersion: '1',
  server: 'pbx1',
  callId: '1795369911.57',
  direction: 'inbound',
  caller: { number: null, name: null },
  called: { number: '41004100' },
  agent: null,
  queue: { name: 'sales', position: 2, waitSeconds: 41.87 },
  vars: {},
  channel: null,
} as const;

export const missed = {
  ...missedCall,
  // A UUIDv7: also the id of a bridge that runs alone.
  id: '019a4c3e-7f21-7b3c-9d4e-5f6a7b8c9d0e',
  type: 'call.missed',
  time: '2026-11-22T17:52:33.009Z',
  seq: 4,
  reason: 'abandoned',
  waitSeconds: 41.87,
} satisfies CallMissed;

export const missedHangup = {
  ...missedCall,
  id: '019a4c3e-7f21-7b3c-9d4e-5f6a7b8c9d0f',
  type: 'call.hangup',
  time: '2026-11-22T17:52:33.010Z',
  seq: 5,
  channel: { uniqueid: '1795369911.57', name: 'PJSIP/trunk-00000031' },
  disposition: 'missed',
  hangupBy: 'caller',
  cause: { code: null, text: null },
  durations: { ringSeconds: 41.2, talkSeconds: 0, totalSeconds: 47.5 },
} satisfies CallHangup;

export const agentEnvelope = { specVersion: '1', server: 'pbx1', agent: agent202 } as const;
export const support = { name: 'support', position: null, waitSeconds: null };

export const login = {
  ...agentEnvelope,
  id: '6b0e1f4c-2a9d-5e7b-9c3a-8f7d9e0b1ac6',
  type: 'agent.login',
  time: '2026-11-22T08:00:03.250Z',
  seq: 1,
  queue: support,
} satisfies AgentLogin;

export const paused = {
  ...agentEnvelope,
  id: '7c1f2a5d-3b0e-5f8c-8d4b-9a8e0f1c2bd7',
  type: 'agent.paused',
  time: '2026-11-22T12:30:00.004Z',
  seq: 2,
  queue: support,
  reason: 'Mittagspause',
} satisfies AgentPaused;

export const unpaused = {
  ...agentEnvelope,
  id: '8d2a3b6e-4c1f-5a9d-9e5c-0b9f1a2d3ce8',
  type: 'agent.unpaused',
  time: '2026-11-22T13:00:00.120Z',
  seq: 3,
  queue: null,
  reason: null,
} satisfies AgentUnpaused;

export const status = {
  ...agentEnvelope,
  id: '9e3b4c7f-5d2a-5b0e-8f6d-1c0a2b3e4df9',
  type: 'agent.status',
  time: '2026-11-22T17:48:46.706Z',
  seq: 4,
  status: 'ringing',
} satisfies AgentStatusEvent;

export const logout = {
  ...agentEnvelope,
  id: 'af4c5d8a-6e3b-5c1f-9a7e-2d1b3c4f5e0a',
  type: 'agent.logout',
  time: '2026-11-22T18:00:59.999Z',
  seq: 5,
  queue: support,
} satisfies AgentLogout;
