// Screen pops first: while agents' screens are being popped, the durable sinks' deliveries (all
// of them together) are held to `outbox.deliveriesPerSecondWhilePopping`; the rest waits in the
// outbox, in order, and goes at full speed once no pop has gone out for POPPING_WINDOW_MS.
//
// Why: a backlog (a CRM back after an outage) drains as fast as the machine allows, and on a
// small one that is the same CPU the pops need. Measured on the 2-core benchmark VM with the
// daemon on one core (BENCHMARKS.md, issue 18, sixth pass): pops p99 6–7 ms while a backlog
// drained at ~5,000 events/s, 4–6 ms at 1,000/s (3 ms with no backlog). Live traffic is far
// below the cap — 1,000 events/s is some 160 calls a second for one webhook — so in practice the
// cap only slows a catch-up, and only while agents are taking calls; a CRM just back from an
// outage is spared a flood while its own agents use it. Nothing is dropped or reordered: rows
// wait their turn in the outbox as they do behind a slow receiver.
//
// Two halves: PopActivity on the main thread (the screen-pop sink tells it of each pop) says when
// popping starts and stops; DeliveryPace, where the dispatchers run (the delivery thread, or the
// main thread without one), is the token bucket they draw from.

/** No pop for this long: popping has stopped and deliveries go at full speed. */
export const POPPING_WINDOW_MS = 2000;
/** How much of a second's allowance may go at once (a turn's deliveries), as a fraction of it. */
const BURST_FRACTION = 1 / 20;

/** A token bucket the dispatchers share, in force only while `popping`. */
export class DeliveryPace {
  private popping = false;
  private tokens: number;
  private at: number;

  /** `perSecond` 0: no limit. */
  constructor(private readonly perSecond: number, now = Date.now()) {
    this.tokens = this.burst;
    this.at = now;
  }

  /** The most that may start at once. */
  private get burst(): number {
    return Math.max(1, Math.floor(this.perSecond * BURST_FRACTION));
  }

  get limited(): boolean {
    return this.popping && this.perSecond > 0;
  }

  /** Pops are going out (true) or have stopped (false). */
  setPopping(on: boolean, now = Date.now()): void {
    if (on && !this.popping) {
      // A fresh allowance: what accrued before popping started does not count.
      this.tokens = this.burst;
      this.at = now;
    }
    this.popping = on;
  }

  /** How many of `wanted` deliveries may start now (all of them unless limited). */
  allowance(wanted: number, now = Date.now()): number {
    if (!this.limited) return wanted;
    this.refill(now);
    return Math.min(wanted, Math.floor(this.tokens));
  }

  /** `n` deliveries started. */
  spend(n: number): void {
    if (this.limited) this.tokens -= n;
  }

  /**
   * When `wanted` deliveries (or a burst, if fewer) may start: the time to wait for them. A
   * dispatcher held back by the pace looks again then, not at every token.
   */
  readyAt(wanted: number, now = Date.now()): number {
    if (!this.limited) return now;
    this.refill(now);
    const need = Math.min(Math.max(1, wanted), this.burst) - this.tokens;
    return need <= 0 ? now : now + Math.ceil((need * 1000) / this.perSecond);
  }

  private refill(now: number): void {
    if (now > this.at) this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perSecond) / 1000);
    this.at = now;
  }
}

/**
 * Popping, as the main thread sees it: `popped()` at every event written to an agent's or a
 * supervisor's stream; `onChange(true)` at the first, `onChange(false)` once none has come for
 * POPPING_WINDOW_MS (one unref'd timer, checked every half window).
 */
export class PopActivity {
  private last = -Infinity;
  private on = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly onChange: (popping: boolean) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get popping(): boolean {
    return this.on;
  }

  popped(): void {
    this.last = this.now();
    if (this.on) return;
    this.on = true;
    this.onChange(true);
    this.timer ??= setInterval(this.check, POPPING_WINDOW_MS / 2).unref();
  }

  /** Popping stopped if no pop came for a window (the timer calls it; tests call it with their clock). */
  readonly check = (): void => {
    if (!this.on || this.now() - this.last < POPPING_WINDOW_MS) return;
    this.on = false;
    this.stopTimer();
    this.onChange(false);
  };

  stop(): void {
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
