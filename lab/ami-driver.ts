// A small raw-socket AMI client that DRIVES Asterisk in the lab: it sends actions and watches
// events so a scenario can act at the right moment and know when its calls are over.
//
// It is deliberately independent of the product's AMI client (src/sources/ami): a test that drove
// Asterisk through the code under test could not tell a bug in that code from a bug in Asterisk.
import net from 'node:net';

export type Header = readonly [name: string, value: string];

/** One AMI frame: its headers in the order Asterisk sent them (names may repeat). */
export class AmiFrame {
  constructor(readonly headers: readonly Header[]) {}

  /** The first value of a header; names compare case-insensitively, as Asterisk does. */
  get(name: string): string | undefined {
    const wanted = name.toLowerCase();
    return this.headers.find(([n]) => n.toLowerCase() === wanted)?.[1];
  }

  get event(): string | undefined {
    return this.get('Event');
  }

  toString(): string {
    return this.headers.map(([n, v]) => `${n}: ${v}`).join('\n');
  }
}

const GREETING_PREFIX = 'Asterisk Call Manager/';
const FRAME_END = Buffer.from('\r\n\r\n');

/**
 * Splits the AMI byte stream into frames. The greeting is one line with no blank line after it;
 * every other frame is `Name: value` lines ended by an empty line. Frames are cut on bytes
 * before decoding so a UTF-8 character split across TCP chunks survives.
 */
export class AmiFrameParser {
  greeting: string | null = null;
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): AmiFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.greeting === null) {
      const eol = this.pending.indexOf('\r\n');
      if (eol < 0) return [];
      this.greeting = this.pending.subarray(0, eol).toString('utf8');
      this.pending = this.pending.subarray(eol + 2);
    }
    const frames: AmiFrame[] = [];
    for (let end = this.pending.indexOf(FRAME_END); end >= 0; end = this.pending.indexOf(FRAME_END)) {
      const text = this.pending.subarray(0, end).toString('utf8');
      this.pending = this.pending.subarray(end + FRAME_END.length);
      frames.push(parseFrame(text));
    }
    return frames;
  }
}

function parseFrame(text: string): AmiFrame {
  const headers: Header[] = [];
  for (const line of text.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    // Asterisk writes "Name: value"; a line without a colon (old "Response: Follows" output)
    // is kept whole as a name with an empty value rather than dropped.
    if (colon < 0) headers.push([line, '']);
    else headers.push([line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')]);
  }
  return new AmiFrame(headers);
}

/** Action headers; an array value repeats the header (e.g. several `Variable:` lines). */
export type ActionFields = Record<string, string | readonly string[]>;

export function encodeAction(fields: ActionFields): string {
  let out = '';
  for (const [name, value] of Object.entries(fields)) {
    for (const v of typeof value === 'string' ? [value] : value) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(v)) {
        throw new Error(`AMI header ${name} must not contain a line break: ${JSON.stringify(v)}`);
      }
      out += `${name}: ${v}\r\n`;
    }
  }
  return `${out}\r\n`;
}

/** Waits for `what` at most `ms`; the error names what never happened. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** What the driver knows about one channel, from its Newchannel and Hangup events. */
/** Resolves when `socket` has connected; rejects on its error or after `timeoutMs`. */
export function connected(socket: net.Socket, timeoutMs: number, what: string): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    timeoutMs,
    what,
  );
}

export interface ChannelInfo {
  readonly uniqueid: string;
  readonly channel: string;
  /** The Linkedid at Newchannel: the call the channel was born into. */
  readonly linkedid: string;
  hungUp: boolean;
}

export interface OriginateOptions {
  /** The channel to call first, e.g. `Local/41004100@from-pstn`. */
  channel: string;
  /** Where that channel goes once answered. */
  context: string;
  exten: string;
  priority?: string;
  /** `"Name" <number>` */
  callerId?: string;
  /** Channel variables for the originated channel. */
  variables?: Record<string, string>;
  /** How long Asterisk lets the first channel ring before giving up (ms, Asterisk's default 30000). */
  ringTimeoutMs?: number;
}

export interface Originated {
  readonly actionId: string;
  /**
   * Settles with the `OriginateResponse` event once Asterisk knows the outcome: `Response:
   * Success` when the first channel answered, `Failure` (with `Uniqueid: <unknown>`) otherwise.
   */
  readonly outcome: Promise<AmiFrame>;
}

interface Waiter {
  predicate: (frame: AmiFrame) => boolean;
  resolve: (frame: AmiFrame) => void;
  reject: (err: Error) => void;
  what: string;
}

interface PendingAction {
  resolve: (frame: AmiFrame) => void;
  reject: (err: Error) => void;
}

export class AmiDriver {
  /** Every event received on this connection, in order (responses are not events). */
  readonly events: AmiFrame[] = [];
  /** Channels by Uniqueid, from Newchannel/Hangup. */
  readonly channels = new Map<string, ChannelInfo>();

  private readonly parser = new AmiFrameParser();
  private readonly pendingActions = new Map<string, PendingAction>();
  private readonly waiters = new Set<Waiter>();
  private readonly originates = new Map<string, Promise<AmiFrame>>();
  private nextActionId = 1;
  private closedError: Error | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly label: string,
  ) {}

  /** Connects to 127.0.0.1:`port` and logs in with events on. */
  static async connect(port: number, user: string, secret: string, timeoutMs = 10_000): Promise<AmiDriver> {
    const socket = net.connect({ host: '127.0.0.1', port });
    const driver = new AmiDriver(socket, `AMI ${user}@127.0.0.1:${port}`);
    socket.on('data', (chunk) => driver.onData(chunk));
    socket.on('error', (err) => driver.onClose(err));
    socket.on('close', () => driver.onClose(new Error('connection closed')));
    try {
      await connected(socket, timeoutMs, `a TCP connection to ${driver.label}`);
      await driver.action({ Action: 'Login', Username: user, Secret: secret, Events: 'on' }, timeoutMs);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return driver;
  }

  /** Index of the next event: pass it as `since` to wait only for events after this point. */
  mark(): number {
    return this.events.length;
  }

  /**
   * Sends an action with its own ActionID and resolves with its response. A `Response: Error`
   * rejects with Asterisk's message, so a scenario whose step was refused fails right there.
   */
  async action(fields: ActionFields, timeoutMs = 10_000): Promise<AmiFrame> {
    const frame = await this.send(fields, `driver-${this.nextActionId++}`, timeoutMs);
    if (frame.get('Response') === 'Error') {
      throw new Error(`${String(fields.Action)} refused by Asterisk: ${frame.get('Message') ?? frame.toString()}`);
    }
    return frame;
  }

  /**
   * Resolves with the first event, at index `since` or later, that matches; events already
   * received count, so take `since = mark()` BEFORE the action that causes the event.
   */
  waitFor(
    predicate: (frame: AmiFrame) => boolean,
    timeoutMs: number,
    what: string,
    since = 0,
  ): Promise<AmiFrame> {
    const seen = this.events.slice(since).find(predicate);
    if (seen) return Promise.resolve(seen);
    if (this.closedError) return Promise.reject(new Error(`${this.label} closed while waiting for ${what}`));
    let waiter: Waiter | undefined;
    const found = new Promise<AmiFrame>((resolve, reject) => {
      waiter = { predicate, resolve, reject, what };
      this.waiters.add(waiter);
    });
    return withTimeout(found, timeoutMs, `${what} on ${this.label}`).finally(() => {
      if (waiter) this.waiters.delete(waiter);
    });
  }

  /** Sets global dialplan variables (Setvar without a channel), e.g. `{ AGENT_201_MODE: 'answer' }`. */
  async setGlobals(vars: Record<string, string | number>): Promise<void> {
    for (const [name, value] of Object.entries(vars)) {
      await this.action({ Action: 'Setvar', Variable: name, Value: String(value) });
    }
  }

  /**
   * Queues an asynchronous Originate. Resolves once Asterisk accepted it; the call's outcome
   * comes later in `outcome`. Until then `waitForAllCallsOver()` counts it as pending.
   */
  async originate(opts: OriginateOptions): Promise<Originated> {
    const actionId = `driver-${this.nextActionId++}`;
    const outcome = this.waitFor(
      (f) => f.event === 'OriginateResponse' && f.get('ActionID') === actionId,
      // Asterisk answers or gives up within the ring timeout; the margin covers a busy PBX.
      (opts.ringTimeoutMs ?? 30_000) + 15_000,
      `the OriginateResponse of ${opts.channel} (${actionId})`,
      this.mark(),
    );
    // A missing OriginateResponse is reported by waitForAllCallsOver() or whoever awaits
    // `outcome`, never as an unhandled rejection.
    outcome.catch(() => undefined);
    this.originates.set(actionId, outcome);
    const fields: ActionFields = {
      Action: 'Originate',
      Channel: opts.channel,
      Context: opts.context,
      Exten: opts.exten,
      Priority: opts.priority ?? '1',
      Async: 'true',
      ...(opts.callerId ? { CallerID: opts.callerId } : {}),
      ...(opts.ringTimeoutMs ? { Timeout: String(opts.ringTimeoutMs) } : {}),
      ...(opts.variables
        ? { Variable: Object.entries(opts.variables).map(([k, v]) => `${k}=${v}`) }
        : {}),
    };
    const frame = await this.send(fields, actionId, 10_000);
    if (frame.get('Response') !== 'Success') {
      this.originates.delete(actionId);
      throw new Error(`Originate ${opts.channel} refused: ${frame.get('Message') ?? frame.toString()}`);
    }
    return { actionId, outcome };
  }

  /** Channels of one call (by the Linkedid they were born with). */
  channelsOf(linkedid: string): ChannelInfo[] {
    return [...this.channels.values()].filter((c) => c.linkedid === linkedid);
  }

  liveChannels(): ChannelInfo[] {
    return [...this.channels.values()].filter((c) => !c.hungUp);
  }

  /** Resolves when every channel of the call with this Linkedid has hung up. */
  waitForCallOver(linkedid: string, timeoutMs: number): Promise<void> {
    return this.waitUntil(
      () => {
        const chans = this.channelsOf(linkedid);
        return chans.length > 0 && chans.every((c) => c.hungUp);
      },
      timeoutMs,
      () => `the last channel of call ${linkedid} to hang up (still up: ${this.describe(this.channelsOf(linkedid))})`,
    );
  }

  /**
   * Resolves when every Originate has its outcome and every channel this connection has seen
   * has hung up: the end of a scenario. Channels created by transfers count too, because they
   * are tracked by Newchannel, whatever their Linkedid.
   */
  async waitForAllCallsOver(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Every Newchannel of an originated call precedes its OriginateResponse, so once all
    // outcomes are in, "no live channel" cannot be a gap before the first channel appears.
    const outcomes = await withTimeout(
      Promise.allSettled([...this.originates.values()]),
      timeoutMs,
      `the OriginateResponse of ${this.originates.size} originated call(s)`,
    );
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') throw outcome.reason;
    }
    await this.waitUntil(
      () => this.liveChannels().length === 0,
      Math.max(deadline - Date.now(), 1),
      () => `every channel to hang up (still up: ${this.describe(this.liveChannels())})`,
    );
  }

  async close(): Promise<void> {
    if (this.closedError) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end();
    await withTimeout(closed, 5_000, `${this.label} to close`).catch(() => this.socket.destroy());
  }

  /** Writes one action and resolves with the response carrying `actionId`. */
  private async send(fields: ActionFields, actionId: string, timeoutMs: number): Promise<AmiFrame> {
    if (this.closedError) throw new Error(`${this.label}: ${this.closedError.message}`);
    const response = new Promise<AmiFrame>((resolve, reject) => {
      this.pendingActions.set(actionId, { resolve, reject });
    });
    this.socket.write(encodeAction({ ...fields, ActionID: actionId }));
    return withTimeout(
      response,
      timeoutMs,
      `the response to ${String(fields.Action)} (${actionId}) from ${this.label}`,
    ).finally(() => this.pendingActions.delete(actionId));
  }

  /** Re-evaluates `condition` after each event; resolves as soon as it holds. */
  private async waitUntil(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    if (condition()) return;
    try {
      await this.waitFor(() => condition(), timeoutMs, 'it', this.mark());
    } catch (err) {
      if (condition()) return;
      throw new Error(`gave up waiting for ${what()}: ${(err as Error).message}`);
    }
  }

  private describe(chans: ChannelInfo[]): string {
    const up = chans.filter((c) => !c.hungUp).map((c) => `${c.channel} (${c.uniqueid})`);
    return up.length > 0 ? up.join(', ') : 'none';
  }

  private onData(chunk: Buffer): void {
    for (const frame of this.parser.push(chunk)) {
      if (frame.event === undefined) {
        // A response. (Some events, e.g. OriginateResponse, carry ActionID and Response too.)
        const actionId = frame.get('ActionID');
        if (actionId !== undefined) this.pendingActions.get(actionId)?.resolve(frame);
        continue;
      }
      this.track(frame);
      this.events.push(frame);
      for (const waiter of [...this.waiters]) {
        if (waiter.predicate(frame)) {
          this.waiters.delete(waiter);
          waiter.resolve(frame);
        }
      }
    }
  }

  private track(frame: AmiFrame): void {
    const uniqueid = frame.get('Uniqueid');
    if (uniqueid === undefined) return;
    if (frame.event === 'Newchannel') {
      this.channels.set(uniqueid, {
        uniqueid,
        channel: frame.get('Channel') ?? '?',
        linkedid: frame.get('Linkedid') ?? uniqueid,
        hungUp: false,
      });
    } else if (frame.event === 'Hangup') {
      const info = this.channels.get(uniqueid);
      if (info) info.hungUp = true;
    }
  }

  private onClose(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const pending of this.pendingActions.values()) {
      pending.reject(new Error(`${this.label}: ${err.message} before the action was answered`));
    }
    this.pendingActions.clear();
    for (const waiter of this.waiters) {
      waiter.reject(new Error(`${this.label}: ${err.message} while waiting for ${waiter.what}`));
    }
    this.waiters.clear();
  }
}
