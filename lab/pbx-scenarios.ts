// The SIP lab's call scenarios: a PBX (lab/pbx) with PJSIP phones 201-203 and a trunk,
// and a second Asterisk (lab/phones) playing those phones and the PSTN (see
// startSipLab in ./asterisk.ts). The bridge watches the PBX only; these scenarios drive both.
//
// What the people do (ring, answer, refuse, talk) is dialplan on the phones instance, set per
// scenario through the PHONE_<ext>_* and PSTN_* globals; every scenario sets all of them, so none
// depends on what ran before it. A scenario acts mid-call only after the AMI event that makes the
// action meaningful (the phone rings, the agent is bridged, the call is parked), and resolves
// once every channel it caused, on both instances, has hung up.
import type { AmiDriver, AmiFrame } from './ami-driver.js';

export interface Lab {
  /** Logged in to the PBX (the instance the bridge watches). */
  readonly pbx: AmiDriver;
  /** Logged in to the phones-and-PSTN instance. */
  readonly phones: AmiDriver;
}

export type LabScenario = (lab: Lab) => Promise<void>;

const PHONES = ['201', '202', '203'] as const;
type Phone = (typeof PHONES)[number];

/** `decline`: rings `delay` s, then refuses (603). `busy`: refuses at once (486, DND). */
type PhoneMode = 'answer' | 'noanswer' | 'busy' | 'decline';
interface PhoneBehaviour {
  mode: PhoneMode;
  /** Seconds of ringing before answering or declining. */
  delay?: number;
  /** Seconds of talk before the phone hangs up. */
  talk?: number;
  /** Digits the user presses right after answering (a call-confirmation prompt). */
  dtmf?: string;
}
/** The remote party of the PBX's outbound calls. */
interface PstnBehaviour {
  mode: 'answer' | 'noanswer' | 'busy';
  delay?: number;
  talk?: number;
}
interface Setup {
  phones?: Partial<Record<Phone, PhoneBehaviour>>;
  pstn?: PstnBehaviour;
  /** Unconditional call forwarding of an extension to an external number, on the PBX. */
  forward?: Partial<Record<Phone, string>>;
}

async function setup(lab: Lab, s: Setup): Promise<void> {
  for (const phone of PHONES) {
    const b = s.phones?.[phone] ?? { mode: 'noanswer' };
    await lab.phones.setGlobals({
      [`PHONE_${phone}_MODE`]: b.mode,
      [`PHONE_${phone}_DELAY`]: b.delay ?? 1,
      [`PHONE_${phone}_TALK`]: b.talk ?? 30,
      [`PHONE_${phone}_DTMF`]: b.dtmf ?? '',
    });
    await lab.pbx.setGlobals({ [`CF_${phone}`]: s.forward?.[phone] ?? '' });
  }
  const pstn = s.pstn ?? { mode: 'answer' };
  await lab.phones.setGlobals({ PSTN_MODE: pstn.mode, PSTN_DELAY: pstn.delay ?? 1, PSTN_TALK: pstn.talk ?? 3 });
}

const SCENARIO_TIMEOUT_MS = 60_000;
const CALLER = '"Acme & Sons" <+4915112345678>';
/** DIDs of lab/pbx/extensions_sip_lab.conf [from-trunk]. */
const DID = {
  ext201: '41005201',
  ringGroup: '41005600',
  confirm201: '41005701',
  conference: '41005800',
  voicemail201: '41005901',
} as const;

/**
 * A customer calls a DID through the PBX's trunk: `Local/<did>@dial-from-pstn` on the phones
 * instance, whose `;1` side is the customer. Once the PBX answers, the customer stays on the line
 * `wait` seconds and hangs up (unless the other side hangs up first).
 */
function callIn(lab: Lab, did: string, wait: number, callerId = CALLER) {
  return lab.phones.originate({
    channel: `Local/${did}@dial-from-pstn`,
    context: 'person',
    exten: 'talk',
    callerId,
    variables: { WAIT: String(wait) },
  });
}

/** An agent dials `number` on its desk phone and, once answered, stays `wait` seconds. */
function dialFrom(lab: Lab, phone: Phone, number: string, wait: number) {
  return lab.phones.originate({
    channel: `Local/${number}@dial-from-${phone}`,
    context: 'person',
    exten: 'talk',
    variables: { WAIT: String(wait) },
  });
}

const channelMatches =
  (pattern: RegExp, header = 'Channel') =>
  (f: AmiFrame): boolean =>
    pattern.test(f.get(header) ?? '');

/** `PJSIP/201-0000000a` on the PBX. */
const pbxPhoneChannel = (phone: Phone): RegExp => new RegExp(`^PJSIP/${phone}-[0-9a-f]+$`);

/** Resolves when the PBX's leg to `phone` rings (the phone sent 180 Ringing). */
function phoneRings(lab: Lab, phone: Phone, since: number): Promise<AmiFrame> {
  return lab.pbx.waitFor(
    (f) => f.event === 'DialState' && f.get('DialStatus') === 'RINGING' && channelMatches(pbxPhoneChannel(phone), 'DestChannel')(f),
    SCENARIO_TIMEOUT_MS,
    `phone ${phone} to ring`,
    since,
  );
}

/**
 * Resolves with the PBX's channel of `phone` once it is bridged with someone: the phone answered
 * and the call is connected (a transfer asked for earlier is refused: nobody to transfer).
 */
async function phoneConnected(lab: Lab, phone: Phone, since: number): Promise<string> {
  const entered = await lab.pbx.waitFor(
    (f) => f.event === 'BridgeEnter' && channelMatches(pbxPhoneChannel(phone))(f),
    SCENARIO_TIMEOUT_MS,
    `phone ${phone} to enter a bridge`,
    since,
  );
  const bridge = entered.get('BridgeUniqueid');
  await lab.pbx.waitFor(
    (f) => f.event === 'BridgeEnter' && f.get('BridgeUniqueid') === bridge && Number(f.get('BridgeNumChannels')) >= 2,
    SCENARIO_TIMEOUT_MS,
    `phone ${phone}'s bridge ${bridge} to have two channels`,
    since,
  );
  return entered.get('Channel')!;
}

/**
 * The phone itself hangs up (BYE from the phone, as when the agent puts the handset down): its
 * side of the PBX's call to it, on the phones instance, is `PJSIP/pbx-…` in `from-pbx` at
 * extension `phone`, and still up.
 */
async function hangUpPhone(lab: Lab, phone: Phone): Promise<void> {
  const up = new Set(lab.phones.liveChannels().map((c) => c.uniqueid));
  const answering = lab.phones.events.filter(
    (f) =>
      f.event === 'Newchannel' &&
      /^PJSIP\/pbx-/.test(f.get('Channel') ?? '') &&
      f.get('Exten') === phone &&
      up.has(f.get('Uniqueid') ?? ''),
  );
  if (answering.length !== 1) {
    throw new Error(`expected one live call to phone ${phone} on the phones instance, found ${answering.length}`);
  }
  await lab.phones.action({ Action: 'Hangup', Channel: answering[0]!.get('Channel')! });
}

/** Every channel of both instances hung up: the phones side first (it holds the originates). */
async function callsOver(lab: Lab, timeoutMs = SCENARIO_TIMEOUT_MS): Promise<void> {
  await lab.phones.waitForAllCallsOver(timeoutMs);
  await lab.pbx.waitForAllCallsOver(timeoutMs);
}

export const labScenarios = {
  /** A customer calls 201, whose phone rings; the customer hangs up before anyone answers. */
  'caller-cancels-ringing': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'noanswer' } } });
    const since = lab.pbx.mark();
    const phonesSince = lab.phones.mark();
    await callIn(lab, DID.ext201, 30);
    await phoneRings(lab, '201', since);
    const customer = await lab.phones.waitFor(
      (f) => f.event === 'Newchannel' && /^Local\/41005201@dial-from-pstn-[0-9a-f]+;1$/.test(f.get('Channel') ?? ''),
      SCENARIO_TIMEOUT_MS,
      "the customer's channel",
      phonesSince,
    );
    await lab.phones.action({ Action: 'Hangup', Channel: customer.get('Channel')! });
    await callsOver(lab);
  },

  /** 201 is on DND: its phone answers the INVITE with 486 Busy Here at once. */
  'callee-busy-486': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'busy' } } });
    await callIn(lab, DID.ext201, 30);
    await callsOver(lab);
  },

  /** 201's phone rings 1 s, then the agent presses Decline: 603 Decline. */
  'callee-declines-603': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'decline', delay: 1 } } });
    await callIn(lab, DID.ext201, 30);
    await callsOver(lab);
  },

  /**
   * Ring group 600 rings 201, 202 and 203 through chains of Local channels
   * (Local/20X@from-internal-rg -> Local/20X@followme/n -> PJSIP/20X); 202 answers after 1 s and
   * hangs up after 3 s of talk.
   */
  'ringgroup-answered': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'noanswer' }, '202': { mode: 'answer', delay: 1, talk: 3 }, '203': { mode: 'noanswer' } } });
    await callIn(lab, DID.ringGroup, 30);
    await callsOver(lab);
  },

  /** Ring group 600: 201 and 203 are on DND (486), 202 rings 1 s and declines (603). */
  'ringgroup-all-busy': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'busy' }, '202': { mode: 'decline', delay: 1 }, '203': { mode: 'busy' } } });
    await callIn(lab, DID.ringGroup, 30);
    await callsOver(lab);
  },

  /**
   * Call confirmation (Dial U()): 201 answers after 1 s, hears the prompt, presses 1, and is
   * connected; the customer hangs up after 3 s of talk.
   */
  'confirm-accepted': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'answer', delay: 1, dtmf: '1', talk: 30 } } });
    await callIn(lab, DID.confirm201, 3);
    await callsOver(lab);
  },

  /**
   * Call confirmation: 201 answers after 1 s and presses 2; the routine sets GOSUB_RESULT=ABORT,
   * the PBX hangs up 201 and the customer is never connected.
   */
  'confirm-refused': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'answer', delay: 1, dtmf: '2', talk: 30 } } });
    await callIn(lab, DID.confirm201, 30);
    await callsOver(lab);
  },

  /**
   * 201 forwards all calls to 5551234: the PBX dials it through a Local channel into the outbound
   * routes and out of the trunk; the remote party rings 1 s, answers, and hangs up after 3 s.
   */
  'forward-to-trunk': async (lab) => {
    await setup(lab, { forward: { '201': '5551234' }, pstn: { mode: 'answer', delay: 1, talk: 3 } });
    await callIn(lab, DID.ext201, 30);
    await callsOver(lab);
  },

  /**
   * A customer calls 201, whose phone rings; 202 dials *8 (group pickup, done by chan_pjsip) and
   * takes the call, talks 3 s and hangs up.
   */
  'group-pickup': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'noanswer' } } });
    const since = lab.pbx.mark();
    await callIn(lab, DID.ext201, 30);
    await phoneRings(lab, '201', since);
    await dialFrom(lab, '202', '*8', 3);
    await callsOver(lab);
  },

  /** As group-pickup, but 203 dials **201 (directed pickup: PickupChan(PJSIP/201)). */
  'directed-pickup': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'noanswer' } } });
    const since = lab.pbx.mark();
    await callIn(lab, DID.ext201, 30);
    await phoneRings(lab, '201', since);
    await dialFrom(lab, '203', '**201', 3);
    await callsOver(lab);
  },

  /**
   * Blonde transfer: 201 answers, starts an attended transfer to 202 (AMI Atxfer, the *2
   * feature), and hangs up its phone while 202 still rings; 202 answers 2 s after it began to
   * ring, talks 3 s and hangs up.
   */
  'blonde-transfer': async (lab) => {
    await setup(lab, {
      phones: { '201': { mode: 'answer', delay: 1, talk: 60 }, '202': { mode: 'answer', delay: 2, talk: 3 } },
    });
    const since = lab.pbx.mark();
    await callIn(lab, DID.ext201, 60);
    const agentLeg = await phoneConnected(lab, '201', since);
    const beforeTransfer = lab.pbx.mark();
    await lab.pbx.action({ Action: 'Atxfer', Channel: agentLeg, Context: 'sip-phones', Exten: '202' });
    await phoneRings(lab, '202', beforeTransfer);
    await hangUpPhone(lab, '201');
    await callsOver(lab);
  },

  /**
   * Click-to-call: the PBX rings 201's phone first (AMI Originate of PJSIP/201), which answers
   * after 1 s; then it dials 5551234 through the trunk, and the remote party is busy (486).
   */
  'click-to-call-busy': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'answer', delay: 1, talk: 30 } }, pstn: { mode: 'busy' } });
    await lab.pbx.originate({
      channel: 'PJSIP/201',
      context: 'sip-phones',
      exten: '5551234',
      callerId: '"Agent 201" <201>',
    });
    await callsOver(lab);
  },

  /**
   * Parking: 201 answers, parks the customer (blind transfer to 700, the FreePBX way); 202
   * dials the parking space, talks 3 s and hangs up.
   */
  'park-retrieve': async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'answer', delay: 1, talk: 60 } } });
    const since = lab.pbx.mark();
    await callIn(lab, DID.ext201, 60);
    const agentLeg = await phoneConnected(lab, '201', since);
    const beforePark = lab.pbx.mark();
    await lab.pbx.action({ Action: 'BlindTransfer', Channel: agentLeg, Context: 'sip-phones', Exten: '700' });
    const parked = await lab.pbx.waitFor((f) => f.event === 'ParkedCall', SCENARIO_TIMEOUT_MS, 'the customer to be parked', beforePark);
    await dialFrom(lab, '202', parked.get('ParkingSpace')!, 3);
    await callsOver(lab);
  },

  /**
   * Conference room 800: a customer calls in (the PBX answers into ConfBridge) and stays 5 s;
   * once the customer is in, 201 dials 800, stays 2 s and leaves.
   */
  conference: async (lab) => {
    await setup(lab, {});
    const since = lab.pbx.mark();
    await callIn(lab, DID.conference, 5);
    await lab.pbx.waitFor((f) => f.event === 'ConfbridgeJoin', SCENARIO_TIMEOUT_MS, 'the customer to join the conference', since);
    await dialFrom(lab, '201', '800', 2);
    await callsOver(lab);
  },

  /** 201 does not answer within 4 s; the call goes to 201's voicemail; the customer hangs up after 3 s. */
  voicemail: async (lab) => {
    await setup(lab, { phones: { '201': { mode: 'noanswer' } } });
    await callIn(lab, DID.voicemail201, 3);
    await callsOver(lab);
  },
} satisfies Record<string, LabScenario>;

export type LabScenarioName = keyof typeof labScenarios;
export const labScenarioNames = Object.keys(labScenarios) as LabScenarioName[];
