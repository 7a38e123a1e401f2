// The normalizer stage: (input$, ctx) => event$. A failing input is reported to ctx.onError
// and the stream goes on.
import { Observable, type OperatorFunction } from 'rxjs';
import { v5 as uuidv5, v7 as uuidv7 } from 'uuid';
import type { AmiEvent } from '../ami/frame.js';
import type { BridgeEvent } from '../events/types.js';
import { AgentDirectory, type AgentConfig } from './agents.js';
import { CallTracker, type IdSource, type SnapshotChannel } from './tracker.js';

export type NormalizerInput =
  | { kind: 'event'; event: AmiEvent; receivedAt: number }
  /** Sent when a resync query goes out; channels first seen after it are not judged by its answer. */
  | { kind: 'resync-begin'; receivedAt: number }
  | { kind: 'snapshot'; channels: SnapshotChannel[]; receivedAt: number };

export interface NormalizerOptions {
  server: string;
  inboundContexts: readonly string[];
  agentContexts: readonly string[];
  extensionPattern: string;
  agents: readonly AgentConfig[];
  ids?: IdSource;
}

/** Namespace of the name-based event ids (UUIDv5): fixed forever, so HA peers agree. */
export const EVENT_ID_NAMESPACE = '6f1d7a52-3c0e-4b8e-9a51-2d9b1c4e7f30';

/** Same AMI event -> same id (UUIDv5) when it has a Timestamp; otherwise a UUIDv7. */
export const defaultIds: IdSource = (seed) => (seed === null ? uuidv7() : uuidv5(seed, EVENT_ID_NAMESPACE));

export function createTracker(opts: NormalizerOptions): CallTracker {
  return new CallTracker({
    server: opts.server,
    inboundContexts: opts.inboundContexts,
    agents: new AgentDirectory({ agents: opts.agents, agentContexts: opts.agentContexts, extensionPattern: opts.extensionPattern }),
    ids: opts.ids ?? defaultIds,
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

export function step(tracker: CallTracker, input: NormalizerInput): BridgeEvent[] {
  switch (input.kind) {
    case 'event':
      return tracker.handle(input.event, input.receivedAt);
    case 'resync-begin':
      tracker.markResync();
      return [];
    case 'snapshot':
      return tracker.resync(input.channels, input.receivedAt);
    default: {
      const never: never = input;
      throw new Error(`unknown normalizer input ${JSON.stringify(never)}`);
    }
  }
}
