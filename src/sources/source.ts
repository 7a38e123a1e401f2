// What every event source is: where the bridge's input comes from. A PBX source (AMI, ARI)
// hands raw input to the normalizer; a bus source (NATS, on a delivery node) hands events that a
// PBX-side bridge already normalized. The bridge holds exactly one, picked from the table in
// ./registry.ts, and derives its readiness, status metrics and start-up wording from it.
import type { Logger } from 'pino';
import type { BehaviorSubject, Observable } from 'rxjs';
import type { BridgeEvent } from '../events/types.js';
import type { NormalizerInput } from '../normalizer/index.js';
import type { AmiConfig } from './ami/config.js';
import type { AriConfig } from './ari/config.js';
import type { NatsSourceConfig } from './nats.js';

export type SourceState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'stopped';

export interface SourceStatus {
  state: SourceState;
  /** Successful logins (connections) so far: the first and every reconnect. */
  logins: number;
  /** Failed attempts since the last success. */
  failures: number;
  lastError: string | null;
  /** When `state` was entered (ISO 8601). */
  since: string;
}

export type SourceKind = 'ami' | 'ari' | 'nats';

interface SourceBase {
  readonly kind: SourceKind;
  /** The current state and every change (metrics, /readyz, systemd status). */
  readonly status$: BehaviorSubject<SourceStatus>;
  readonly status: SourceStatus;
  /** Resolves at the first successful login (systemd READY waits for it). */
  readonly loggedIn: Promise<void>;
  /** Where it reads from, for people: `AMI at 10.0.0.5:5038` (credentials redacted). */
  describe(): string;
  /** Connects (and keeps reconnecting, if configured); resolves once the first attempt is under way. */
  start(): Promise<void>;
  /** Disconnects and completes its streams; nothing is emitted after it resolves. */
  stop(): Promise<void>;
  /**
   * Back-pressure from the delivery thread (src/sinks/delivery-thread.ts): stop reading input
   * until resume(). The AMI source stops reading its socket (Asterisk buffers meanwhile); a
   * source without these reads on (ARI: its messages are few and small).
   */
  pause?(): void;
  resume?(): void;
}

/** A PBX source: AMI-shaped input that the normalizer turns into contract events. */
export interface PbxSource extends SourceBase {
  readonly stage: 'pbx';
  readonly input$: Observable<NormalizerInput>;
}

/**
 * A bus source: contract events another bridge normalized. Each event is handed on synchronously,
 * so when `next` returns the sinks have accepted it (the source then acknowledges it).
 */
export interface BusSource extends SourceBase {
  readonly stage: 'bus';
  readonly events$: Observable<BridgeEvent>;
}

export type Source = PbxSource | BusSource;

/** The parts of the config the sources read (the loader's BridgeConfig has this shape). */
export interface SourcesConfig {
  pbx: { name: string; ami?: AmiConfig; ari?: AriConfig };
  /** A delivery node's bus (config `source:`), instead of a PBX. */
  source?: NatsSourceConfig;
}

/** Replay and tests: a loopback AMI server playing a trace instead of the configured PBX. */
export interface ReplayTarget {
  host: string;
  port: number;
  /** Query live channels after login (default false: a replay server answers few actions). */
  resync?: boolean;
  /** Read the PBX's phones and trunks after login (default false). */
  inventory?: boolean;
  /** Periodic reconciliation, in ms (default 0: off). */
  reconcileIntervalMs?: number;
}

export interface SourceContext {
  /** Child logger bound to the source's module. */
  log: Logger;
  /** Set for replay and tests (AMI only). */
  replay?: ReplayTarget;
  /**
   * Reads a channel variable through another connection to the same PBX (ARI beside AMI), or
   * undefined when none is up; the source then reads it itself.
   */
  readVarAside?: (uniqueid: string, name: string) => Promise<string | null | undefined>;
}

export interface SourceDefinition {
  readonly kind: SourceKind;
  /** Whether the config asks for this source (the first row that does is the event source). */
  configured(config: SourcesConfig, replay: boolean): boolean;
  create(config: SourcesConfig, ctx: SourceContext): Source;
}

/** The status every source starts in. */
export function idleStatus(): SourceStatus {
  return { state: 'idle', logins: 0, failures: 0, lastError: null, since: new Date().toISOString() };
}
