// What the PBX says its devices are — phones (an agent's) or trunks (never an agent's) — and who
// its queue members are, read over AMI. The AMI source reads it at every login (on the
// FullyBooted event Asterisk sends then) and after every Reload event, and hands it to the
// normalizer (`{ kind: 'inventory' }`), which gives it to the AgentDirectory.
//
// The phone/trunk rule, per technology (README "How agents are recognised"):
//
// PJSIP endpoint, first matching line wins:
//   1. an outbound registration names it (its `endpoint`, or the registration has its name) -> trunk
//   2. a contact is registered to one of its AORs now                                       -> phone
//   3. one of its AORs has a static contact (`contact =`)                                   -> trunk
//   4. one of its AORs accepts registrations (`max_contacts` > 0)                           -> phone
//   5. otherwise (no AOR, or AORs that take no registration and have no contact)            -> no verdict
// "No verdict" leaves the device to the patterns (calls.extensionPattern). identify sections are
// not read: AMI lists them only endpoint by endpoint (PJSIPShowEndpoint), one request each, and
// an identified endpoint nearly always has a static contact (3) or no AOR at all (5) anyway.
//
// chan_sip peer (SIPpeers): `Dynamic: yes` (host=dynamic, it registers) -> phone; a static host -> trunk.
// IAX2 peer (IAXpeers): `Trunk: yes` or a static host -> trunk; `Dynamic: yes` -> phone.
//
// A module that is not loaded answers its action with an error ("Invalid/unknown command"): that
// technology simply has no devices. Asterisk also answers an empty list with an error ("No
// Contacts found"), so an error response is never a failure; a timeout or a lost connection is,
// and keeps the previous inventory.
import type { DeviceInventory, DeviceKind, QueueMemberRef, QueueMembership } from '../../normalizer/agents.js';
import type { AmiEvent } from '../../normalizer/ami-event.js';

export interface InventoryDevice {
  interface: string;
  kind: DeviceKind;
  /** Which line of the rule decided (for the debug log). */
  why: string;
}

/** An inventory with, per source, what was read (for the log). */
export interface ReadInventory extends DeviceInventory {
  devices: InventoryDevice[];
  /** e.g. { PJSIP: '3 endpoints', SIP: 'not available (Invalid/unknown command: SIPpeers…)' } */
  sources: Record<string, string>;
}

/** The answer to one list action: its events, or Asterisk's error message. */
export type ListAnswer = { ok: true; rows: AmiEvent[] } | { ok: false; message: string };

/** Sends a list action; resolves with its events or error response, rejects on timeout or disconnect. */
export type ListAction = (fields: Record<string, string>, completeEvent: string) => Promise<ListAnswer>;

const rowsOf = (answer: ListAnswer, event: string): AmiEvent[] => (answer.ok ? answer.rows.filter((r) => r.event?.toLowerCase() === event) : []);

const splitList = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

const flag = (v: string | undefined): boolean => /^(yes|true|1|on)$/i.test((v ?? '').trim());

export interface PjsipRows {
  endpoints: readonly AmiEvent[];
  aors: readonly AmiEvent[];
  /** Registered contacts (PJSIPShowContacts lists only those; static ones are in AorList). */
  contacts: readonly AmiEvent[];
  registrations: readonly AmiEvent[];
}

/** The PJSIP rule (see the header). Endpoints without a verdict are left out. */
export function classifyPjsip(rows: PjsipRows): InventoryDevice[] {
  const registered = new Set<string>();
  const aorsWithRegistered = new Set<string>();
  const registeredUris = new Set<string>();
  for (const c of rows.contacts) {
    if (c.endpoint) registered.add(c.endpoint);
    // ObjectName of a registered contact is `<aor>;@<hash>`.
    const aor = (c.objectname ?? '').split(';@')[0];
    if (aor) aorsWithRegistered.add(aor);
    if (c.uri) registeredUris.add(c.uri);
  }
  const aors = new Map<string, { maxContacts: number; staticContacts: number }>();
  for (const a of rows.aors) {
    if (!a.objectname) continue;
    // AorList's Contacts lists every contact as `<aor>/<uri>`; the registered ones are not static.
    const statics = splitList(a.contacts).filter((c) => !registeredUris.has(c.slice(c.indexOf('/') + 1)));
    aors.set(a.objectname, { maxContacts: Number(a.maxcontacts ?? 0) || 0, staticContacts: statics.length });
  }
  const registering = new Map<string, string>();
  for (const r of rows.registrations) {
    const name = r.objectname ?? '';
    for (const target of [r.endpoint, name]) if (target) registering.set(target, name);
  }
  const out: InventoryDevice[] = [];
  for (const e of rows.endpoints) {
    const name = e.objectname;
    if (!name) continue;
    const its = splitList(e.aor);
    const verdict = ((): Omit<InventoryDevice, 'interface'> | null => {
      const reg = registering.get(name);
      if (reg !== undefined) return { kind: 'trunk', why: `outbound registration ${reg}` };
      if (registered.has(name) || its.some((a) => aorsWithRegistered.has(a))) return { kind: 'phone', why: 'registered contact' };
      if (its.some((a) => (aors.get(a)?.staticContacts ?? 0) > 0)) return { kind: 'trunk', why: 'static contact' };
      if (its.some((a) => (aors.get(a)?.maxContacts ?? 0) > 0)) return { kind: 'phone', why: 'AOR accepts registrations' };
      return null;
    })();
    if (verdict) out.push({ interface: `PJSIP/${name}`, ...verdict });
  }
  return out;
}

/** chan_sip and IAX2 peers (PeerEntry events of SIPpeers / IAXpeers). */
export function classifyPeers(tech: 'SIP' | 'IAX2', peers: readonly AmiEvent[]): InventoryDevice[] {
  const out: InventoryDevice[] = [];
  for (const p of peers) {
    const name = p.objectname;
    if (!name) continue;
    const iface = `${tech}/${name}`;
    if (tech === 'IAX2' && flag(p.trunk)) out.push({ interface: iface, kind: 'trunk', why: 'IAX2 trunk' });
    else if (flag(p.dynamic)) out.push({ interface: iface, kind: 'phone', why: 'dynamic host (registers)' });
    else out.push({ interface: iface, kind: 'trunk', why: 'static host' });
  }
  return out;
}

/** Queue members of a QueueStatus answer, one per interface. */
export function queueMembers(rows: readonly AmiEvent[]): QueueMemberRef[] {
  const seen = new Map<string, QueueMemberRef>();
  for (const r of rows) {
    if (r.event?.toLowerCase() !== 'queuemember') continue;
    const iface = r.location ?? r.interface;
    if (!iface || seen.has(iface.toLowerCase())) continue;
    seen.set(iface.toLowerCase(), { interface: iface, stateInterface: r.stateinterface ?? null, name: r.name ?? r.membername ?? null });
  }
  return [...seen.values()];
}

/** Every (queue, member) row of a QueueStatus answer, with its pause state and reason. */
export function queueMemberships(rows: readonly AmiEvent[]): QueueMembership[] {
  const out: QueueMembership[] = [];
  for (const r of rows) {
    if (r.event?.toLowerCase() !== 'queuemember') continue;
    const iface = r.location ?? r.interface;
    if (!iface || !r.queue) continue;
    const paused = r.paused === '1' || r.paused?.toLowerCase() === 'true';
    out.push({ interface: iface, stateInterface: r.stateinterface ?? null, name: r.name ?? r.membername ?? null, queue: r.queue, paused, reason: paused ? r.pausedreason || null : null });
  }
  return out;
}

const describe = (answer: ListAnswer, count: number, what: string): string =>
  answer.ok ? `${count} ${what}` : `not available (${answer.message.slice(0, 80)})`;

/**
 * Reads the whole inventory with `list`. Rejects (keep the previous inventory) when a query
 * times out or the connection goes; an error response only empties its own source.
 */
export async function readInventory(list: ListAction): Promise<ReadInventory> {
  const [endpoints, sip, iax, queues] = await Promise.all([
    list({ action: 'PJSIPShowEndpoints' }, 'EndpointListComplete'),
    list({ action: 'SIPpeers' }, 'PeerlistComplete'),
    list({ action: 'IAXpeers' }, 'PeerlistComplete'),
    list({ action: 'QueueStatus' }, 'QueueStatusComplete'),
  ]);
  const empty: ListAnswer = { ok: false, message: 'PJSIP endpoints not available' };
  // Asterisk answers one session's actions in the order sent: AORs before contacts, so a phone
  // that registers between the two is seen registered, not as an AOR with a static contact.
  const [aors, contacts, registrations] = endpoints.ok
    ? await Promise.all([
        list({ action: 'PJSIPShowAors' }, 'AorListComplete'),
        list({ action: 'PJSIPShowContacts' }, 'ContactListComplete'),
        list({ action: 'PJSIPShowRegistrationsOutbound' }, 'OutboundRegistrationDetailComplete'),
      ])
    : [empty, empty, empty];
  const pjsipRows = rowsOf(endpoints, 'endpointlist');
  const sipRows = rowsOf(sip, 'peerentry');
  const iaxRows = rowsOf(iax, 'peerentry');
  const devices = [
    ...classifyPjsip({
      endpoints: pjsipRows,
      aors: rowsOf(aors, 'aorlist'),
      contacts: rowsOf(contacts, 'contactlist'),
      registrations: rowsOf(registrations, 'outboundregistrationdetail'),
    }),
    ...classifyPeers('SIP', sipRows),
    ...classifyPeers('IAX2', iaxRows),
  ];
  // Without app_queue (an error answer) nothing is known of members: keep what events taught.
  const members = queues.ok ? queueMembers(queues.rows) : null;
  return {
    devices,
    members,
    memberships: queues.ok ? queueMemberships(queues.rows) : null,
    sources: {
      PJSIP: describe(endpoints, pjsipRows.length, 'endpoints'),
      SIP: describe(sip, sipRows.length, 'peers'),
      IAX2: describe(iax, iaxRows.length, 'peers'),
      queues: describe(queues, members?.length ?? 0, 'members'),
    },
  };
}
