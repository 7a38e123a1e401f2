// Pops: asks the bridge which pops an event makes (GET pops/<event id>), claims each so that it pops
// once, hands it to its target's module, and closes it when the call moves on (closeOn).

import { popBackground } from './background.js';
import { RING_STOP_TEXT } from './calls.js';
import { popClipboard } from './clipboard.js';
import { markCallEnded, popEmbedded, removeTab } from './embedded.js';
import { popHash } from './hash.js';
import { flash } from './header.js';
import { api } from './http.js';
import { addLog, setLog } from './pop-log.js';
import { popWindow, removeBlocked } from './popups.js';
import { agentKey, agentLabel, callKey, closeSeen, partyOf, pending, session } from './session.js';
import { claimPop, markClosed } from './storage.js';
import { isStr, safeUrl, sleep } from './util.js';

/** Events about one agent's leg: a close only applies to the pop of that same agent. */
const AGENT_SPECIFIC = new Set(['call.ringing', 'call.answered', 'call.ring_stopped']);
const TARGETS = new Set(['new-tab', 'named-tab', 'embedded', 'hash', 'background', 'clipboard']);

function ruleById(id) {
  return session.rules.find((r) => r.id === id) ?? { id, events: [], target: null, name: null, closeOn: ['call.ring_stopped'] };
}

function closeApplies(closeType, closeAgentId, closeSeq, ctx) {
  if (!ctx.rule.closeOn.includes(closeType)) return false;
  if (typeof closeSeq === 'number' && typeof ctx.seq === 'number' && closeSeq <= ctx.seq) return false;
  // ring_stopped / answered / ringing concern one agent's leg: they close only that agent's pop.
  if (AGENT_SPECIFIC.has(closeType) && closeAgentId && ctx.agentId && closeAgentId !== ctx.agentId) return false;
  return true;
}

export function rememberClose(ev) {
  if (!session.rules.some((r) => r.closeOn.includes(ev.type))) return;
  const key = callKey(ev);
  const list = closeSeen.get(key) ?? [];
  list.push({ type: ev.type, agentId: ev.agent?.id ?? null, seq: ev.seq });
  closeSeen.delete(key);
  closeSeen.set(key, list.slice(-20));
  while (closeSeen.size > 200) closeSeen.delete(closeSeen.keys().next().value);
}

export async function popFor(ev) {
  const gen = session.gen;
  let pops = null;
  for (let attempt = 0; attempt < 2 && pops === null; attempt++) {
    try {
      pops = await api(`pops/${encodeURIComponent(ev.id)}`);
    } catch (err) {
      if (gen !== session.gen) return;
      if (err.status || attempt === 1) {
        const who = partyOf(ev)?.number;
        flash(`Could not get the screen pop${who ? ` for ${who}` : ''}: ${err.message}`);
        return;
      }
      await sleep(1000);
    }
  }
  if (gen !== session.gen || !Array.isArray(pops)) return;
  for (const pop of pops) {
    try {
      await doPop(pop, ev);
    } catch (err) {
      console.error('crm-bridge: pop failed', err);
    }
  }
}

async function doPop(pop, ev) {
  if (!pop || typeof pop !== 'object' || !TARGETS.has(pop.target) || !isStr(pop.ruleId)) return;
  const rule = ruleById(pop.ruleId);
  const callId = isStr(pop.callId) ? pop.callId : isStr(ev.callId) ? ev.callId : null;
  // new-tab / named-tab / embedded / clipboard: once per (call, rule). hash / background are a
  // feed (ringing, answered, hangup…): once per (event, rule).
  const perEvent = pop.target === 'hash' || pop.target === 'background' || !callId;
  const key = perEvent ? `${agentKey()}|e|${pop.eventId || ev.id}|${pop.ruleId}` : `${agentKey()}|c|${ev.server}|${callId}|${pop.ruleId}`;
  const party = partyOf(ev);
  const ctx = {
    key,
    pop,
    rule,
    server: ev.server,
    callId,
    agentId: ev.agent?.id ?? null,
    seq: ev.seq,
    time: ev.time,
    number: party?.number ?? null,
    name: party?.name ?? null,
  };
  if (!claimPop(key, ev)) return; // popped already: by this tab before a reconnect, or by another tab
  if (!perEvent) {
    const closed = (closeSeen.get(`${ev.server}|${callId}`) ?? []).find((c) => closeApplies(c.type, c.agentId, c.seq, ctx));
    if (closed) {
      markClosed(key, closed.seq); // the call moved on before the pop came back: nothing to show
      return;
    }
  }
  ctx.log = addLog(ctx);
  const url = safeUrl(pop.url);
  if (pop.target !== 'clipboard' && !url) {
    setLog(ctx, 'failed', pop.url ? 'Refused: not an http(s) address' : 'The rule has no URL');
    return;
  }
  switch (pop.target) {
    case 'new-tab':
    case 'named-tab':
      popWindow(ctx, url);
      break;
    case 'embedded':
      popEmbedded(ctx, url);
      break;
    case 'hash':
      popHash(ctx, url);
      return;
    case 'background':
      popBackground(ctx, url);
      return;
    case 'clipboard':
      await popClipboard(ctx);
      break;
    default:
      return;
  }
  pending.set(key, ctx);
}

function closeText(ev) {
  if (ev.type === 'call.ring_stopped') return RING_STOP_TEXT[ev.reason] ?? 'Stopped ringing';
  if (ev.type === 'call.answered') return `Answered by ${agentLabel(ev.agent)}`;
  if (ev.type === 'call.missed') return 'Missed';
  if (ev.type === 'call.hangup') return 'Call ended';
  if (ev.type === 'call.transferred') return 'Transferred';
  return ev.type;
}

export function closePendingFor(ev) {
  for (const ctx of [...pending.values()]) {
    if (ctx.server !== ev.server || ctx.callId !== ev.callId) continue;
    if (closeApplies(ev.type, ev.agent?.id ?? null, ev.seq, ctx)) closePending(ctx, ev);
  }
  if (ev.type === 'call.hangup') {
    // The call is over: nothing of it can be closed any more. What is on screen stays (wrap-up).
    for (const ctx of [...pending.values()]) if (ctx.server === ev.server && ctx.callId === ev.callId) pending.delete(ctx.key);
    markCallEnded(ev.server, ev.callId);
  }
}

function closePending(ctx, ev) {
  pending.delete(ctx.key);
  markClosed(ctx.key, ev.seq);
  if (ctx.win) {
    try {
      if (!ctx.win.closed) ctx.win.close();
    } catch {
      /* ignore */
    }
    ctx.win = null;
  }
  if (ctx.tab) {
    removeTab(ctx.tab);
    ctx.tab = null;
  }
  removeBlocked(ctx);
  ctx.clip?.remove();
  ctx.clip = null;
  setLog(ctx, 'closed', `${closeText(ev)} — not for you`);
}
