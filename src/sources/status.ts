// A source's connection status, kept the same way by every source: the state and its counters,
// as a stream (metrics, /readyz, systemd) and as a promise of the first login (systemd READY).
import { BehaviorSubject } from 'rxjs';
import { idleStatus, type SourceState, type SourceStatus } from './source.js';

export class ConnectionStatus {
  readonly status$ = new BehaviorSubject<SourceStatus>(idleStatus());
  private resolveFirst!: () => void;
  /** Resolves at the first successful login (connection). */
  readonly loggedIn = new Promise<void>((r) => (this.resolveFirst = r));

  get current(): SourceStatus {
    return this.status$.value;
  }

  /** Connecting or stopped: counters unchanged; entering the current state again is no change. */
  enter(state: Exclude<SourceState, 'connected' | 'disconnected'>): void {
    const s = this.current;
    if (s.state === state || this.status$.closed) return;
    this.status$.next({ ...s, state, since: new Date().toISOString() });
  }

  /** Logged in: one more login, no failure since. Returns the number of logins so far. */
  connected(): number {
    const logins = this.current.logins + 1;
    if (!this.status$.closed) this.status$.next({ state: 'connected', logins, failures: 0, lastError: null, since: new Date().toISOString() });
    this.resolveFirst();
    return logins;
  }

  /** The connection failed or dropped: one more failure in a row. Returns how many. */
  disconnected(why: string): number {
    const s = this.current;
    const failures = s.failures + 1;
    if (!this.status$.closed) this.status$.next({ ...s, state: 'disconnected', failures, lastError: why, since: new Date().toISOString() });
    return failures;
  }
}

/** What every source keeps alike: its connection status, as a stream, a value and a first login. */
export abstract class ConnectedSource {
  protected readonly connection = new ConnectionStatus();
  readonly status$ = this.connection.status$;
  /** Resolves at the first successful login (systemd READY waits for it). */
  readonly loggedIn = this.connection.loggedIn;

  get status(): SourceStatus {
    return this.connection.current;
  }
}
