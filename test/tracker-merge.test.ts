// An attended transfer that joins two calls that began separately (two Linkedids), as SIP
// phones do with REFER/Replaces. The test Asterisk cannot produce this with Local channels
// (Atxfer keeps one Linkedid), so the frames are hand-built, with the field names of the real
// AttendedTransfer event recorded in lab/recordings/attended-transfer.ami.
import t from 'tap';
import type { BridgeEvent } from '../dist/events/types.js';
import { validateEvent } from '../dist/events/validator.js';
import { createTracker } from '../dist/normalizer/index.js';
import { byCall, contractViolations, summarize } from './helpers/contract.js';
import { TEST_NORMALIZER } from './helpers/replay.js';

type Frame = Record<string, string>;
const ts = (s: number) => (1795400000 + s).toFixed(6);
const chan = (event: string, s: number, channel: string, uniqueid: string, linkedid: string, extra: Frame = {}): Frame => ({
  event, timestamp: ts(s), channel, uniqueid, linkedid, ...extra,
});

const frames: Frame[] = [
  // Call A: a PSTN caller reaches agent 201.
  chan('Newchannel', 1, 'PJSIP/trunk-00000001', 'A.1', 'A.1', { context: 'from-pstn', exten: '41004100', calleridnum: '+4915112345678', calleridname: 'Acme & Sons' }),
  chan('Newchannel', 1.1, 'PJSIP/201-00000002', 'A.2', 'A.1', { context: 'from-internal', exten: '' }),
  chan('DialBegin', 1.1, 'PJSIP/trunk-00000001', 'A.1', 'A.1', { destchannel: 'PJSIP/201-00000002', destuniqueid: 'A.2' }),
  chan('DialEnd', 2, 'PJSIP/trunk-00000001', 'A.1', 'A.1', { destchannel: 'PJSIP/201-00000002', destuniqueid: 'A.2', dialstatus: 'ANSWER' }),
  // Call B: 201 holds the caller and calls 202 from a second line.
  chan('Newchannel', 3, 'PJSIP/201-00000003', 'B.1', 'B.1', { context: 'from-internal', exten: '202', calleridnum: '201', calleridname: 'Agent 201' }),
  chan('Newchannel', 3.1, 'PJSIP/202-00000004', 'B.2', 'B.1', { context: 'from-internal', exten: '' }),
  chan('DialBegin', 3.1, 'PJSIP/201-00000003', 'B.1', 'B.1', { destchannel: 'PJSIP/202-00000004', destuniqueid: 'B.2', exten: '202' }),
  chan('DialEnd', 4, 'PJSIP/201-00000003', 'B.1', 'B.1', { destchannel: 'PJSIP/202-00000004', destuniqueid: 'B.2', dialstatus: 'ANSWER' }),
  // 201 completes the transfer: the caller and 202 are joined.
  {
    event: 'AttendedTransfer', timestamp: ts(5), result: 'Success',
    origtransfererchannel: 'PJSIP/201-00000002', origtransfereruniqueid: 'A.2', origtransfererlinkedid: 'A.1',
    secondtransfererchannel: 'PJSIP/201-00000003', secondtransfereruniqueid: 'B.1', secondtransfererlinkedid: 'B.1',
    transfereechannel: 'PJSIP/trunk-00000001', transfereeuniqueid: 'A.1', transfereelinkedid: 'A.1',
    transfertargetchannel: 'PJSIP/202-00000004', transfertargetuniqueid: 'B.2', transfertargetlinkedid: 'B.1',
    desttype: 'Bridge',
  },
  chan('Hangup', 5.1, 'PJSIP/201-00000002', 'A.2', 'A.1', { cause: '16', 'cause-txt': 'Normal Clearing' }),
  chan('Hangup', 5.2, 'PJSIP/201-00000003', 'B.1', 'B.1', { cause: '16', 'cause-txt': 'Normal Clearing' }),
  // Later events of the target's channel still carry the consult call's Linkedid.
  chan('HangupRequest', 9, 'PJSIP/trunk-00000001', 'A.1', 'A.1', { cause: '16' }),
  chan('Hangup', 9, 'PJSIP/trunk-00000001', 'A.1', 'A.1', { cause: '16', 'cause-txt': 'Normal Clearing' }),
  chan('Hangup', 9.1, 'PJSIP/202-00000004', 'B.2', 'B.1', { cause: '16', 'cause-txt': 'Normal Clearing' }),
];

t.test('given an attended transfer joining two calls with different Linkedids', async (t) => {
  const tracker = createTracker(TEST_NORMALIZER);
  const events: BridgeEvent[] = frames.flatMap((f) => tracker.handle(f, 0));
  for (const e of events) t.same(validateEvent(e), [], `${e.type} is schema-valid`);
  t.same(contractViolations(events), [], 'then both calls keep every contract guarantee');
  const calls = byCall(events);
  t.same(calls.get('A.1')?.map(summarize), [
    'call.started', 'call.ringing 201', 'call.answered 201', 'call.transferred attended 201>202', 'call.hangup answered by:caller',
  ], "then the caller's call keeps its callId and is transferred to 202");
  t.equal(calls.get('A.1')?.at(-1)?.agent?.id, '202', "then the target's leg belongs to the caller's call: its last agent is 202");
  t.same(calls.get('B.1')?.map(summarize), [
    'call.started', 'call.ringing 202', 'call.answered 202', 'call.hangup answered by:agent',
  ], 'then the consult call ends with its own hang-up, answered, by the agent');
  t.equal(calls.get('B.1')?.[0]?.direction, 'internal', 'then the consult call is internal');
  t.equal(tracker.activeCalls, 0);
  t.equal(tracker.trackedChannels, 0);
});
