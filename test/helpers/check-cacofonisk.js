#!/usr/bin/env node
// Foreign oracle: judges what `crm-bridge replay` printed for one converted cacofonisk fixture
// against what cacofonisk's own engine reports for that fixture (test/fixtures/foreign/cacofonisk/reference/*.json).
//   node test/helpers/check-cacofonisk.js NAME OUTPUT.ndjson      NAME = trace file name, e.g. simple__ab_dnd.ami
// Prints one line per failed expectation ("  NAME: ...") and exits 0 only if all hold.
// The rules (a)-(g) and every deviation from them are explained in test/fixtures/foreign/README.md
// and test/fixtures/foreign/cacofonisk/exceptions.json.
// Copied from the shared foreign corpus (shared/foreign/check-cacofonisk.js); changed only to be an
// ES module (the package is "type": "module") and to read the fixtures from test/fixtures/foreign.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('../fixtures/foreign/cacofonisk/', import.meta.url));
const TYPES = new Set(['call.started', 'call.queued', 'call.ringing', 'call.answered', 'call.ring_stopped',
  'call.transferred', 'call.missed', 'call.hangup', 'agent.login', 'agent.logout', 'agent.paused',
  'agent.unpaused', 'agent.status']);
// cacofonisk's hangup reason -> the contract's call.missed reasons accepted for it (rule d)
const MISSED_REASONS = {
  busy: ['busy'],
  cancelled: ['abandoned'],
  'no-answer': ['no_answer', 'timeout', 'abandoned'],
  rejected: ['busy', 'no_answer', 'unavailable'],
  failed: ['unavailable', 'no_answer', 'busy'],
  completed: ['abandoned', 'no_answer', 'timeout'], // completed without on_up: the PBX itself answered the caller
};
const TRANSFER_KINDS = { on_attended_transfer: ['attended'], on_blind_transfer: ['blind'], on_blonde_transfer: ['attended', 'blind'] };
const ISO_MS_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const [, , name, outFile] = process.argv;
if (!name || !outFile) {
  console.error('usage: node check-cacofonisk.js NAME OUTPUT.ndjson');
  process.exit(2);
}
const base = path.basename(name).replace(/\.ami$/, '');
const ref = JSON.parse(fs.readFileSync(path.join(DIR, 'reference', `${base}.json`), 'utf8'));
const exception = JSON.parse(fs.readFileSync(path.join(DIR, 'exceptions.json'), 'utf8')).fixtures[`${base}.ami`] || {};
const fails = [];
const fail = (msg) => fails.push(msg);

// ---- (a) every line is a JSON event with the envelope of the contract
const events = [];
let text = '';
try { text = fs.readFileSync(outFile, 'utf8'); } catch (err) { fail(`cannot read the output: ${err.message}`); }
text.split('\n').forEach((line, i) => {
  if (!line.trim()) return;
  let e;
  try { e = JSON.parse(line); } catch { fail(`line ${i + 1} is not JSON: ${line.slice(0, 80)}`); return; }
  if (!e || typeof e !== 'object' || Array.isArray(e)) { fail(`line ${i + 1} is not a JSON object`); return; }
  events.push(e);
});
if (!events.length) fail('no events at all');
const ids = new Set();
for (const e of events) {
  const what = `${e.type}${e.callId ? ` of ${e.callId}` : ''}`;
  for (const k of ['specVersion', 'id', 'type', 'time', 'server']) if (e[k] == null || e[k] === '') fail(`${what}: no ${k}`);
  if (e.specVersion != null && e.specVersion !== '1') fail(`${what}: specVersion ${JSON.stringify(e.specVersion)}, want "1"`);
  if (e.type != null && !TYPES.has(e.type)) fail(`unknown event type ${JSON.stringify(e.type)}`);
  if (e.time != null && !(typeof e.time === 'string' && ISO_MS_UTC.test(e.time))) fail(`${what}: time ${JSON.stringify(e.time)} is not ISO 8601 UTC with milliseconds`);
  if (e.id != null) { if (ids.has(e.id)) fail(`duplicate event id ${e.id}`); ids.add(e.id); }
  if (String(e.type).startsWith('call.')) {
    if (!e.callId) fail(`${e.type} without callId`);
    if (!Number.isInteger(e.seq)) fail(`${what}: seq ${JSON.stringify(e.seq)} is not an integer`);
  }
}

// ---- the daemon's calls, keyed by callId (= Asterisk Linkedid)
const calls = new Map();
for (const e of events) {
  if (!String(e.type).startsWith('call.') || !e.callId) continue;
  if (!calls.has(e.callId)) calls.set(e.callId, []);
  calls.get(e.callId).push(e);
}
const ofType = (lid, type) => (calls.get(lid) || []).filter((e) => e.type === type);
const device = (ch) => ch.name.slice(0, ch.name.lastIndexOf('-')); // SIP/150010002-00000005 -> SIP/150010002
const names = (e, ch) => { const s = JSON.stringify(e); return s.includes(device(ch)) || s.includes(ch.uniqueid); };

// ---- (b) per call: seq 1,2,3..; call.started first; exactly one call.hangup, last; call.missed at most
// once, just before call.hangup, and present exactly when the disposition is `missed`
for (const [cid, evs] of calls) {
  if (!ref.trace.linkedids.includes(cid)) fail(`callId ${cid} is not a Linkedid of the trace`);
  const bad = evs.findIndex((e, i) => e.seq !== i + 1);
  if (bad >= 0) fail(`call ${cid}: event ${bad + 1} (${evs[bad].type}) has seq ${evs[bad].seq}, want ${bad + 1}`);
  if (evs[0].type !== 'call.started') fail(`call ${cid}: first event is ${evs[0].type}, want call.started`);
  const started = evs.filter((e) => e.type === 'call.started').length;
  if (started !== 1) fail(`call ${cid}: ${started} call.started, want 1`);
  const hangups = evs.filter((e) => e.type === 'call.hangup');
  if (hangups.length !== 1) fail(`call ${cid}: ${hangups.length} call.hangup, want exactly 1 (every channel of the trace hangs up)`);
  else if (evs[evs.length - 1] !== hangups[0]) fail(`call ${cid}: ${evs[evs.length - 1].type} after call.hangup`);
  const missed = evs.filter((e) => e.type === 'call.missed');
  if (missed.length > 1) fail(`call ${cid}: ${missed.length} call.missed, want at most 1`);
  if (hangups.length === 1) {
    const h = hangups[0];
    if (!['answered', 'missed'].includes(h.disposition)) fail(`call ${cid}: call.hangup disposition ${JSON.stringify(h.disposition)}`);
    if ((h.disposition === 'missed') !== (missed.length > 0)) fail(`call ${cid}: disposition ${h.disposition} with ${missed.length} call.missed`);
    if (missed.length === 1 && evs[evs.indexOf(h) - 1] !== missed[0]) fail(`call ${cid}: call.missed is not just before call.hangup`);
  }
  for (const e of evs.filter((x) => x.type === 'call.transferred')) {
    if (!['blind', 'attended'].includes(e.transfer?.kind)) fail(`call ${cid}: call.transferred with transfer.kind ${JSON.stringify(e.transfer?.kind)}`);
  }
}

// ---- (c) every call the trace starts, and every call cacofonisk hangs up, is there (with (b): one call.hangup)
for (const lid of ref.trace.calls) if (!calls.has(lid)) fail(`no events for call ${lid}, which the trace starts`);
const R = ref.events;
for (const h of R.filter((e) => e.event === 'on_hangup')) {
  if (ofType(h.caller.linkedid, 'call.hangup').length !== 1) fail(`call ${h.caller.linkedid}: cacofonisk reports its hangup (${h.reason}), want exactly one call.hangup`);
}

// ---- (d) answered calls name who answered; unanswered calls without transfer are missed for the right reason
const transfers = R.filter((e) => TRANSFER_KINDS[e.event]);
const lidsOf = (x) => [...new Set([x.caller, x.transferer, x.target, ...(x.targets || [])].filter(Boolean).map((c) => c.linkedid))];
const inTransfer = new Set(transfers.flatMap(lidsOf));
const ups = R.filter((e) => e.event === 'on_up');
const answeredLids = new Set(ups.map((e) => e.caller.linkedid));
for (const u of ups) {
  const lid = u.caller.linkedid;
  if (!ofType(lid, 'call.answered').some((e) => names(e, u.target))) fail(`call ${lid}: no call.answered naming ${device(u.target)} (cacofonisk: on_up ${u.caller.name} -> ${u.target.name})`);
}
for (const lid of answeredLids) {
  const h = ofType(lid, 'call.hangup')[0];
  if (h && h.disposition !== 'answered') fail(`call ${lid}: disposition ${h.disposition}, want answered (cacofonisk reports on_up)`);
}
for (const h of R.filter((e) => e.event === 'on_hangup')) {
  const lid = h.caller.linkedid;
  if (answeredLids.has(lid) || inTransfer.has(lid) || !calls.has(lid)) continue;
  const accepted = exception.missedReasons || MISSED_REASONS[h.reason];
  if (!accepted) { fail(`call ${lid}: no rule for cacofonisk hangup reason ${h.reason}`); continue; }
  const hang = ofType(lid, 'call.hangup')[0];
  if (hang && hang.disposition !== 'missed') fail(`call ${lid}: disposition ${hang.disposition}, want missed (cacofonisk: no on_up, hangup ${h.reason})`);
  const missed = ofType(lid, 'call.missed');
  if (!missed.length) fail(`call ${lid}: no call.missed (cacofonisk: no on_up, hangup ${h.reason})`);
  else if (!accepted.includes(missed[0].reason)) fail(`call ${lid}: call.missed reason ${JSON.stringify(missed[0].reason)}, want one of ${accepted.join('|')} (cacofonisk: ${h.reason})`);
  if (ofType(lid, 'call.answered').length) fail(`call ${lid}: call.answered in a call nobody answered (cacofonisk: no on_up, hangup ${h.reason})`);
}

// ---- (e) every device cacofonisk saw ringing for a call rings in that call (targets reported already Up never rang)
const rung = new Map(); // linkedid -> Map(uniqueid -> channel)
for (const e of R.filter((x) => x.event === 'on_b_dial' || x.event === 'on_blind_transfer')) {
  for (const t of e.targets) {
    if (e.event === 'on_b_dial' && t.state === 6) continue;
    if (!rung.has(e.caller.linkedid)) rung.set(e.caller.linkedid, new Map());
    rung.get(e.caller.linkedid).set(t.uniqueid, t);
  }
}
for (const [lid, targets] of rung) {
  const ringing = ofType(lid, 'call.ringing');
  if (ringing.length < targets.size) fail(`call ${lid}: ${ringing.length} call.ringing, want at least ${targets.size} (${[...targets.values()].map((t) => t.name).join(', ')})`);
  for (const t of targets.values()) if (!ringing.some((e) => names(e, t))) fail(`call ${lid}: no call.ringing naming ${device(t)} (${t.name})`);
}

// ---- (f) transfers: a call.transferred of the right kind on one of the calls involved
for (const x of transfers) {
  const lids = lidsOf(x);
  const kinds = TRANSFER_KINDS[x.event];
  if (!lids.some((lid) => ofType(lid, 'call.transferred').some((e) => kinds.includes(e.transfer?.kind)))) {
    fail(`no call.transferred of kind ${kinds.join('|')} on ${lids.join(' or ')} (cacofonisk: ${x.event} of ${x.caller.name} by ${x.transferer.name})`);
  }
}

// ---- (g) a caller who left the queue: call.missed with reason abandoned
for (const q of R.filter((e) => e.event === 'on_queue_caller_abandon')) {
  if (!ofType(q.caller.linkedid, 'call.missed').some((e) => e.reason === 'abandoned')) fail(`call ${q.caller.linkedid}: no call.missed with reason abandoned (cacofonisk: on_queue_caller_abandon)`);
}

const uniq = [...new Set(fails)];
for (const f of uniq.slice(0, 12)) console.log(`  ${base}.ami: ${f}`);
if (uniq.length > 12) console.log(`  ${base}.ami: ... and ${uniq.length - 12} more`);
process.exit(uniq.length ? 1 : 0);
