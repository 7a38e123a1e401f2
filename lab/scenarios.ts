// The call scenarios played against a real Asterisk, for recording, for end-to-end tests
// and for the demo. Each one sets the agents' behaviour (globals read by [agents] in
// lab/pbx/extensions.conf), places its calls, acts mid-call where a person would,
// and resolves once every channel it caused has hung up.
//
// Timing comes from the dialplan (Wait() is how the simulated people behave); the scenarios
// themselves only ever wait for AMI events.
import type { AmiDriver, AmiFrame } from './ami-driver.js';

export type Scenario = (driver: AmiDriver) => Promise<void>;

type AgentMode = 'answer' | 'noanswer' | 'busy';
interface AgentBehaviour {
  mode: AgentMode;
  /** Seconds the phone rings before answering. */
  delay?: number;
  /** Seconds the agent talks before hanging up. */
  talk?: number;
}

const AGENTS = ['201', '202', '203'] as const;
type Agent = (typeof AGENTS)[number];

/** Every scenario sets all agents, so none depends on what ran before it. */
async function agents(driver: AmiDriver, behaviour: Partial<Record<Agent, AgentBehaviour>>): Promise<void> {
  for (const agent of AGENTS) {
    const b = behaviour[agent] ?? { mode: 'noanswer' };
    await driver.setGlobals({
      [`AGENT_${agent}_MODE`]: b.mode,
      [`AGENT_${agent}_DELAY`]: b.delay ?? 1,
      [`AGENT_${agent}_TALK`]: b.talk ?? 30,
    });
  }
}

/** How long a scenario may take: its dialplan timings plus a generous margin. */
const SCENARIO_TIMEOUT_MS = 60_000;

const CALLER = '"Acme & Sons" <+4915112345678>';
const SALES_DID = '41004100';
/** Same IVR, but the caller waits at most 4 s in the queue. */
const SALES_SHORT_WAIT_DID = '41004109';
/** Rings agent 201 directly for 6 s. */
const AGENT_201_DID = '41004201';

/**
 * A call from the PSTN: the `;1` side of `Local/<did>@from-pstn` is the caller, who runs
 * `[caller]` (`ivr`: types 12345 then 7; `wait`: stays silent) for `callerWait` seconds once the
 * PBX answers. `callerWait` is how long the caller stays on the line after that, unless the PBX
 * hangs up first.
 */
function callFromPstn(
  driver: AmiDriver,
  did: string,
  behaviour: 'ivr' | 'wait',
  callerWait: number,
  callerId = CALLER,
) {
  return driver.originate({
    channel: `Local/${did}@from-pstn`,
    context: 'caller',
    exten: behaviour,
    callerId,
    variables: { CALLER_WAIT: String(callerWait) },
  });
}

const channelIs =
  (pattern: RegExp) =>
  (f: AmiFrame): boolean =>
    pattern.test(f.get('Channel') ?? '');

/**
 * The agent's leg as it sits in the bridge with the caller: `Local/201@agents-XXXXXXXX;1`.
 * Resolves once the caller is in that bridge too: the agent's leg enters first, and a transfer
 * asked for before the caller joins is refused ("Transfer invalid": nobody to transfer).
 */
async function agentInBridge(driver: AmiDriver, agent: Agent, since: number): Promise<string> {
  const entered = await driver.waitFor(
    (f) => f.event === 'BridgeEnter' && channelIs(new RegExp(`^Local/${agent}@agents-[0-9a-f]+;1$`))(f),
    SCENARIO_TIMEOUT_MS,
    `agent ${agent}'s leg to enter a bridge`,
    since,
  );
  const bridge = entered.get('BridgeUniqueid');
  await driver.waitFor(
    (f) => f.event === 'BridgeEnter' && f.get('BridgeUniqueid') === bridge && Number(f.get('BridgeNumChannels')) >= 2,
    SCENARIO_TIMEOUT_MS,
    `the caller to join agent ${agent} in bridge ${bridge}`,
    since,
  );
  return entered.get('Channel')!;
}

/** The agent's phone: the far (`;2`) end of the agent's Local channel. */
const phoneOf = (agentLeg: string): string => agentLeg.replace(/;1$/, ';2');

/**
 * The start of both transfer scenarios: a direct call that 201 answers after 1 s and keeps
 * (60 s), with 202 set to answer after 1 s and talk 3 s. Returns 201's leg in the bridge.
 */
async function answeredBy201ThenTo202(driver: AmiDriver): Promise<string> {
  await agents(driver, {
    '201': { mode: 'answer', delay: 1, talk: 60 },
    '202': { mode: 'answer', delay: 1, talk: 3 },
  });
  const since = driver.mark();
  await callFromPstn(driver, AGENT_201_DID, 'wait', 60);
  return agentInBridge(driver, '201', since);
}

async function callsOver(driver: AmiDriver, timeoutMs = SCENARIO_TIMEOUT_MS): Promise<void> {
  await driver.waitForAllCallsOver(timeoutMs);
}

export const scenarios = {
  /** Ring-all queue: 201 answers after 1 s, 202 never does; 201 hangs up after 3 s of talk. */
  'queue-answered': async (driver) => {
    await agents(driver, { '201': { mode: 'answer', delay: 1, talk: 3 }, '202': { mode: 'noanswer' } });
    await callFromPstn(driver, SALES_DID, 'ivr', 30);
    await callsOver(driver);
  },

  /** Nobody answers; the caller hangs up after about 4 s in the queue. */
  'queue-abandoned': async (driver) => {
    await agents(driver, { '201': { mode: 'noanswer' }, '202': { mode: 'noanswer' } });
    // The IVR takes about 3 s (digits), so the caller's 4 s of waiting are spent in the queue.
    await callFromPstn(driver, SALES_DID, 'ivr', 4);
    await callsOver(driver);
  },

  /** Nobody answers; the queue gives up after its 4 s maximum and the dialplan hangs up. */
  'queue-timeout': async (driver) => {
    await agents(driver, { '201': { mode: 'noanswer' }, '202': { mode: 'noanswer' } });
    await callFromPstn(driver, SALES_SHORT_WAIT_DID, 'ivr', 30);
    await callsOver(driver);
  },

  /** Direct call: 201 answers after 1 s; the caller hangs up after 3 s of talk. */
  'direct-answered': async (driver) => {
    await agents(driver, { '201': { mode: 'answer', delay: 1, talk: 30 } });
    // The caller's wait starts when the call is answered: it is the talk time.
    await callFromPstn(driver, AGENT_201_DID, 'wait', 3);
    await callsOver(driver);
  },

  /** Direct call: 201 never answers; Dial gives up after 6 s. */
  'direct-noanswer': async (driver) => {
    await agents(driver, { '201': { mode: 'noanswer' } });
    await callFromPstn(driver, AGENT_201_DID, 'wait', 30);
    await callsOver(driver);
  },

  /** Direct call: 201 is busy. */
  'direct-busy': async (driver) => {
    await agents(driver, { '201': { mode: 'busy' } });
    await callFromPstn(driver, AGENT_201_DID, 'wait', 30);
    await callsOver(driver);
  },

  /**
   * 201 answers, then blind-transfers the caller (AMI BlindTransfer of 201's leg in the bridge)
   * to 202@internal; 202 answers after 1 s and hangs up after 3 s of talk.
   */
  'blind-transfer': async (driver) => {
    const agentLeg = await answeredBy201ThenTo202(driver);
    await driver.action({ Action: 'BlindTransfer', Channel: agentLeg, Context: 'internal', Exten: '202' });
    await callsOver(driver);
  },

  /**
   * 201 answers, starts an attended transfer to 202@internal (AMI Atxfer on 201's leg in the
   * bridge, i.e. the *2 feature), 202 answers, 201 hangs up to complete the transfer; the
   * caller and 202 talk until 202 hangs up after 3 s.
   *
   * Needs, in the test config: `t` on the direct Dial (the callee may transfer; without it the
   * queued *2 is plain DTMF to the caller) and an empty `transferannouncesound` (the default
   * prompt file is missing from the rootfs, which aborts the transfer).
   */
  'attended-transfer': async (driver) => {
    const agentLeg = await answeredBy201ThenTo202(driver);
    const beforeTransfer = driver.mark();
    await driver.action({ Action: 'Atxfer', Channel: agentLeg, Context: 'internal', Exten: '202' });
    // The transfer dials Local/202@internal; its ;1 joins 201 in a consultation bridge at once,
    // still ringing. Hanging up then would be a "blonde" transfer: wait for the answer.
    await driver.waitFor(
      (f) =>
        f.event === 'DialEnd' &&
        /^Local\/202@internal-[0-9a-f]+;1$/.test(f.get('DestChannel') ?? '') &&
        f.get('DialStatus') === 'ANSWER',
      SCENARIO_TIMEOUT_MS,
      'the transfer target 202@internal to answer',
      beforeTransfer,
    );
    await driver.action({ Action: 'Hangup', Channel: phoneOf(agentLeg) });
    await callsOver(driver);
  },

  /** Agent 201's phone calls 5551234; the remote party answers after 1 s, hangs up after 3 s. */
  outbound: async (driver) => {
    await agents(driver, {});
    await driver.originate({
      channel: 'Local/201@phones',
      context: 'from-internal',
      exten: '5551234',
      callerId: '"Agent 201" <201>',
      // The agent outlasts the remote party, who hangs up first.
      variables: { TALK: '30' },
    });
    await callsOver(driver);
  },

  /** Agent 203 logs in to `support`, pauses for lunch, unpauses, logs out. No calls. */
  'agent-session': async (driver) => {
    const queue = 'support';
    const iface = 'Local/203@agents';
    const step = async (fields: Record<string, string>, event: string, check: (f: AmiFrame) => boolean) => {
      const since = driver.mark();
      await driver.action(fields);
      await driver.waitFor(
        (f) => f.event === event && f.get('Queue') === queue && f.get('Interface') === iface && check(f),
        10_000,
        `${event} for ${iface} in ${queue}`,
        since,
      );
    };
    await step(
      { Action: 'QueueAdd', Queue: queue, Interface: iface, MemberName: 'Agent 203', Paused: 'false' },
      'QueueMemberAdded',
      () => true,
    );
    await step(
      { Action: 'QueuePause', Queue: queue, Interface: iface, Paused: 'true', Reason: 'lunch' },
      'QueueMemberPause',
      (f) => f.get('Paused') === '1',
    );
    await step(
      { Action: 'QueuePause', Queue: queue, Interface: iface, Paused: 'false' },
      'QueueMemberPause',
      (f) => f.get('Paused') === '0',
    );
    await step({ Action: 'QueueRemove', Queue: queue, Interface: iface }, 'QueueMemberRemoved', () => true);
  },

  /**
   * Ten callers at once into `sales`; both agents answer (1 s ring, 1 s talk). With
   * ringinuse=no the calls wait and are served in turn.
   */
  'ten-calls': async (driver) => {
    await agents(driver, {
      '201': { mode: 'answer', delay: 1, talk: 1 },
      '202': { mode: 'answer', delay: 1, talk: 1 },
    });
    for (let i = 1; i <= 10; i++) {
      const n = String(i).padStart(2, '0');
      await callFromPstn(driver, SALES_DID, 'ivr', 120, `"Caller ${n}" <+49301234500${n}>`);
    }
    await callsOver(driver, 120_000);
  },
} satisfies Record<string, Scenario>;

export type ScenarioName = keyof typeof scenarios;
export const scenarioNames = Object.keys(scenarios) as ScenarioName[];
