// The normalizer stage: (input$, ctx) => event$. A failing input is reported to ctx.onError
// and the stream goes on.
import { Observable, type OperatorFunction } from 'rxjs';
import crypto from 'node:crypto';
import { parse as uuidParse, v5 as uuidv5, v7 as uuidv7 } from 'uuid';
import { type AmiEvent, eventName } from './ami-event.js';
import type { BridgeEvent } from '../events/types.js';
import { AgentDirectory, type AgentConfig, type DeviceInventory, FORGET_MEMBERS_AFTER_SECONDS } from './agents.js';
import type { Cap } from './state.js';
import { CallTracker, type IdSource, type SnapshotChannel } from './tracker.js';

export type NormalizerInput =
  | { kind: 'event'; event: AmiEvent; receivedAt: number }
  /** Sent when a resync query goes out; channels first seen after it are not judged by its answer. */
  | { kind: 'resync-begin'; receivedAt: number }
  /**
   * The live channels (CoreShowChannels): calls whose channels are all gone end here, with
   * hangupBy "system". `trigger` says why it was taken: after a (re)connect, or the periodic
   * reconciliation (pbx.ami.reconcileIntervalSeconds).
   */
  | { kind: 'snapshot'; channels: SnapshotChannel[]; receivedAt: number; trigger?: SnapshotTrigger }
  /** What the PBX lists: phones, trunks, queue members (src/sources/ami/inventory.ts). */
  | { kind: 'inventory'; inventory: DeviceInventory; receivedAt: number };

export type SnapshotTrigger = 'reconnect' | 'periodic';

export interface NormalizerOptions {
  server: string;
  inboundContexts: readonly string[];
  agentContexts: readonly string[];
  extensionPattern: string;
  agents: readonly AgentConfig[];
  /** Recognise agents from what the PBX lists (calls.agentsFromPbx). Default true. */
  agentsFromPbx?: boolean;
  ids?: IdSource;
  /** See TrackerOptions.onDroppedVariable. */
  onDroppedVariable?: (name: string, last: boolean) => void;
  /** Bounds: calls in progress (calls.maxInProgress) and agents learnt from AMI (calls.maxAgents). */
  maxCalls?: number;
  maxAgents?: number;
  /** Told when a bound is reached and something was evicted to make room. */
  onCap?: (cap: Cap, evicted: string) => void;
}

/** Namespace of the name-based event ids (UUIDv5): fixed forever, so HA peers agree. */
export const EVENT_ID_NAMESPACE = '6f1d7a52-3c0e-4b8e-9a51-2d9b1c4e7f30';

/** Same AMI event -> same id (UUIDv5) when it has a Timestamp; otherwise a UUIDv7. */
export const defaultIds: IdSource = (seed) => (seed === null ? uuidv7() : nameBasedId(seed));

// UUIDv5 (RFC 9562: SHA-1 of namespace bytes + UTF-8 name) with one crypto.hash call on a reused
// buffer: ~5× cheaper than uuid's v5, which parses the namespace and encodes the name in JS on
// every call, and one id is made for every normalized event. The uuid package stays the
// reference (test/event-ids.test.ts compares the two) and the fallback for names possibly longer
// than the buffer.
const NAMESPACE_BYTES = Buffer.from(uuidParse(EVENT_ID_NAMESPACE));
const nameBuffer = Buffer.alloc(4096);
NAMESPACE_BYTES.copy(nameBuffer);
// crypto.hash exists from Node 20.12; String.prototype.isWellFormed and toWellFormed (ES2024) in
// every Node 20.
const oneShotHash = typeof crypto.hash === 'function' ? crypto.hash : null;
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
const toWellFormed = (s: string): string => (s as unknown as { toWellFormed(): string }).toWellFormed();

export function nameBasedId(seed: string): string {
  // A lone surrogate (ARI's JSON can carry one in a channel id) would make uuid throw and the
  // event be lost: it is named as UTF-8 writes it, U+FFFD.
  const name = isWellFormed(seed) ? seed : toWellFormed(seed);
  // At most 3 UTF-8 bytes per UTF-16 unit: such a name always fits.
  if (!oneShotHash || name.length * 3 > nameBuffer.length - NAMESPACE_BYTES.length) return uuidv5(name, EVENT_ID_NAMESPACE);
  const n = nameBuffer.write(name, NAMESPACE_BYTES.length, 'utf8');
  const h = oneShotHash('sha1', nameBuffer.subarray(0, NAMESPACE_BYTES.length + n), 'hex');
  // Version 5 in the 13th hex digit; variant 10xx in the 17th.
  const variant = ((parseInt(h.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function createTracker(opts: NormalizerOptions): CallTracker {
  return new CallTracker({
    server: opts.server,
    inboundContexts: opts.inboundContexts,
    agents: new AgentDirectory({
      agents: opts.agents,
      agentContexts: opts.agentContexts,
      extensionPattern: opts.extensionPattern,
      fromPbx: opts.agentsFromPbx ?? true,
      ...(opts.maxAgents !== undefined ? { maxLearnt: opts.maxAgents } : {}),
      ...(opts.onCap ? { onCap: (key: string) => opts.onCap?.('agents', key) } : {}),
    }),
    ids: opts.ids ?? defaultIds,
    onDroppedVariable: opts.onDroppedVariable,
    ...(opts.maxCalls !== undefined ? { maxCalls: opts.maxCalls } : {}),
    ...(opts.maxAgents !== undefined ? { maxAgents: opts.maxAgents } : {}),
    ...(opts.onCap ? { onCap: opts.onCap } : {}),
  });
}

export interface NormalizeContext {
  tracker: CallTracker;
  onError: (err: unknown, input: NormalizerInput) => void;
}

export function normalize(ctx: NormalizeContext): OperatorFunction<NormalizerInput, BridgeEvent> {
  return (input$) =>
    new Observable<BridgeEvent>((subscriber) =>
      input$.subscribe({
        next: (input) => {
          let out: BridgeEvent[];
          try {
            out = step(ctx.tracker, input);
          } catch (err) {
            ctx.onError(err, input);
            return;
          }
          for (const e of out) subscriber.next(e);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      }),
    );
}

/**
 * Queue events that name a member: each is evidence that the device is an agent's (level 2 in
 * src/normalizer/agents.ts), the only such evidence a replayed trace has. Recorded before the
 * tracker handles the event, so the event itself is judged with it.
 */
const MEMBER_EVENTS = new Set(['agentcalled', 'queuemember', 'queuememberadded', 'queuememberstatus', 'queuememberpause', 'queuememberpenalty', 'queuememberringinuse']);

function observeQueueMember(agents: AgentDirectory, ev: AmiEvent, receivedAt: number): void {
  if (!MEMBER_EVENTS.has(eventName(ev))) return;
  const iface = ev.interface ?? ev.location;
  if (iface) agents.observeMember(iface, ev.stateinterface, ev.membername ?? ev.name, receivedAt / 1000);
}

export function step(tracker: CallTracker, input: NormalizerInput): BridgeEvent[] {
  switch (input.kind) {
    case 'event':
      observeQueueMember(tracker.agents, input.event, input.receivedAt);
      return tracker.handle(input.event, input.receivedAt);
    case 'resync-begin':
      tracker.markResync();
      return [];
    case 'snapshot':
      // The periodic reconciliation also forgets queue members not seen for a long time.
      if (input.trigger === 'periodic') tracker.agents.forgetUnseen(input.receivedAt / 1000 - FORGET_MEMBERS_AFTER_SECONDS);
      return tracker.resync(input.channels, input.receivedAt);
    case 'inventory':
      tracker.agents.setInventory(input.inventory, input.receivedAt / 1000);
      return input.inventory.memberships ? tracker.memberships(input.inventory.memberships, input.receivedAt) : [];
    default: {
      const never: never = input;
      throw new Error(`unknown normalizer input ${JSON.stringify(never)}`);
    }
  }
}
