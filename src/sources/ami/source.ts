// Why this file is long: one connection's life (login, reconnect, resync snapshots, inventory
// reads, actions) shares the current manager, its generation and its timers; split up, each part
// would reach into the others' private state. The reader is apart (parser.ts), as is the socket
// (connection.ts) and the inventory's parsing (inventory.ts).
//
// The AMI source: one connection to Asterisk's manager interface through `asterisk-manager`,
// turned into the normalizer's input stream.
//
// What we add on top of the package (see ../shared/ASTERISK.md for why):
// - our own reader (src/sources/ami/parser.ts) in place of the package's, with limits on frame size,
//   header count and line length: the package's reader can be frozen by one hostile frame. The
//   package keeps the connection, the login and the actions (src/sources/ami/connection.ts hands it our
//   socket, plain TCP or TLS); we hand it the responses by ActionID as its own reader did;
// - a fresh manager object and parser per connection attempt, so a frame cut by a disconnect can
//   never be glued to the first frame of the next connection;
// - reconnect with capped exponential backoff and jitter, in milliseconds we choose (the
//   package's keepConnected waits 10 s, 20 s ... 60 s and logs with console.log);
// - our own ActionIDs and a timeout on every action (the package waits forever);
// - an error listener, so connection errors are logged instead of swallowed;
// - resync after every login: CoreShowChannels, so calls that ended while we were away still
//   end, and calls that began while we were away are picked up; and the same query every
//   `reconcileIntervalMs` while connected, so a call whose Hangup never reached us still ends;
// - the PBX's device inventory (phones, trunks, queue members; src/sources/ami/inventory.ts) at every
//   login and after every PBX reload, for the AgentDirectory.
import type { Socket } from 'node:net';
import AsteriskManager from 'asterisk-manager';
import type { Logger } from 'pino';
import { Subject } from 'rxjs';
import type { NormalizerInput, SnapshotTrigger } from '../../normalizer/index.js';
import type { SnapshotChannel } from '../../normalizer/tracker.js';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import type { PbxSource, SourceDefinition, SourceStatus } from '../source.js';
import { ConnectedSource } from '../status.js';
import { amiTlsOptions } from './connection.js';
import { readMissedVars } from '../../normalizer/missed-vars.js';
import { HEADERS_READ } from '../../normalizer/ami-events.js';
import { attachSocket, openSocket, readyEvent, type AmiTlsOptions, type SocketTarget } from './connection.js';
import { type AmiEvent, eventName, type ManagerFrame } from '../../normalizer/ami-event.js';
import { AmiParser, type AmiDrop, type AmiDropReason, type AmiParserLimits } from './parser.js';
import { readInventory, type ListAnswer } from './inventory.js';

export type ReconnectPolicy = BackoffPolicy;

export interface AmiSourceOptions {
  host: string;
  port: number;
  username: string;
  secret: string;
  reconnect: ReconnectPolicy | false;
  actionTimeoutMs: number;
  resync: boolean;
  /**
   * With resync: also take the CoreShowChannels snapshot this often while connected (ms; 0 or
   * absent: only after a login). Calls whose channels are all gone end with hangupBy "system".
   */
  reconcileIntervalMs?: number;
  /** AMI over TLS (manager.conf `tlsenable`); false or absent: plain TCP. */
  tls?: AmiTlsOptions | false;
  /** Limits on what one frame may be; a frame over one is dropped and reported (defaults: parser.ts). */
  limits?: Partial<AmiParserLimits>;
  /** Read the PBX's device inventory at login (FullyBooted) and after every Reload. Default false. */
  inventory?: boolean;
  log: Logger;
  /** Injected for tests: the delay before attempt n (1-based). */
  random?: () => number;
  /**
   * Reads a channel variable on demand through another way in (ARI when configured, see
   * src/bridge.ts); `undefined` means "not available now: use AMI Getvar". Used after a resync
   * for the CRM variables whose VarSet went by while disconnected.
   */
  readVar?: (channel: SnapshotChannel, name: string) => Promise<string | null | undefined>;
}


interface Manager {
  on(event: string, fn: (...args: any[]) => void): void;
  emit(event: string, ...args: unknown[]): boolean;
  listeners(event: string): unknown[];
  removeAllListeners(event?: string): void;
  connect(port: number, host: string, cb: (err?: unknown) => void): void;
  login(cb: (err?: ManagerFrame) => void): void;
  action(fields: Record<string, string>, cb: (err: ManagerFrame | undefined, res: ManagerFrame) => void): string;
  disconnect(): void;
  isConnected(): boolean;
}

/** The package's own events: an ActionID with one of these names is not answered through it. */
const MANAGER_EVENTS = new Set(['error', 'close', 'end', 'connect', 'managerevent', 'asterisk', 'response', 'rawevent', 'newListener', 'removeListener']);
/** At most one warning per this many ms about dropped frames; the others are counted in it. */
const DROP_LOG_INTERVAL_MS = 10_000;

type ManagerCtor = new (port?: number, host?: string, username?: string, password?: string, events?: boolean) => Manager;

export class AmiSource extends ConnectedSource implements PbxSource {
  readonly kind = 'ami';
  readonly stage = 'pbx';
  /** AMI events, resync markers and snapshots, in the order Asterisk sent them. */
  readonly input$ = new Subject<NormalizerInput>();
  /** Frames dropped for breaking a limit (crm_bridge_ami_frames_dropped_total). */
  readonly dropped$ = new Subject<AmiDrop>();
  private manager: Manager | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private actionSeq = 0;
  private attempt = 0;
  private readonly log: Logger;
  /** The manager a CoreShowChannels snapshot is being taken on: never two at once (one resync mark). */
  private resyncing: Manager | null = null;
  private reconcileTimer: NodeJS.Timeout | null = null;
  /** Inventory reads: the manager one runs on, whether another was asked for meanwhile, the fallback timer. */
  private inventoryRun: { m: Manager; again: boolean } | null = null;
  private inventoryFallback: NodeJS.Timeout | null = null;
  private inventoryAsked: Manager | null = null;
  /** The last ActionID sent: a `Response: Follows` without one answers it (as in the package). */
  private lastActionId: string | null = null;
  private lastDropLog = 0;
  /** The current manager's socket (ours: src/sources/ami/connection.ts). */
  private socket: Socket | null = null;
  private dropsNotLogged = 0;

  constructor(private readonly opts: AmiSourceOptions) {
    super();
    this.log = opts.log;
  }


  describe(): string {
    return `AMI at ${this.opts.host}:${this.opts.port}`;
  }

  async start(): Promise<void> {
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dropManager();
    this.connection.enter('stopped');
    this.input$.complete();
    this.status$.complete();
    this.dropped$.complete();
  }

  /** Sends an action; rejects on an error response, a timeout, or when not connected. */
  action(fields: Record<string, string>, timeoutMs = this.opts.actionTimeoutMs): Promise<ManagerFrame> {
    const m = this.manager;
    if (!m || this.status.state !== 'connected') return Promise.reject(new Error('AMI is not connected'));
    return this.send(m, fields, timeoutMs);
  }

  private send(m: Manager, fields: Record<string, string>, timeoutMs: number): Promise<ManagerFrame> {
    const actionid = `crm-bridge-${process.pid}-${++this.actionSeq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        m.removeAllListeners(actionid);
        reject(new Error(`AMI action ${fields.action ?? '?'} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.lastActionId = actionid;
      m.action({ ...fields, actionid }, (err, res) => {
        clearTimeout(timer);
        if (err) reject(new Error(`AMI action ${fields.action ?? '?'} failed: ${String(err.message ?? err.response ?? 'error')}`));
        else resolve(res);
      });
    });
  }

  private connect(): void {
    if (this.stopped) return;
    this.attempt++;
    this.connection.enter('connecting');
    const Ctor = AsteriskManager as unknown as ManagerCtor;
    // No port: the constructor must not connect on its own; we drive connect and login.
    const m = new Ctor(undefined, this.opts.host, this.opts.username, this.opts.secret, true);
    this.manager = m;
    let settled = false;
    const fail = (why: string) => {
      if (settled || this.manager !== m) return;
      settled = true;
      this.dropManager();
      this.onDisconnected(why);
    };
    m.on('error', (err: NodeJS.ErrnoException) => fail(err?.code ? `${err.code} ${err.message}` : String(err?.message ?? err)));
    m.on('close', () => fail('connection closed by peer'));
    const target: SocketTarget = { host: this.opts.host, port: this.opts.port, tls: this.opts.tls ?? false };
    // Of the busiest events, only what the normalizer reads is decoded (HEADERS_READ).
    const parser = new AmiParser(this.opts.limits, HEADERS_READ);
    let socket: Socket;
    try {
      socket = openSocket(target);
      this.socket = socket;
      attachSocket(m, socket, target, (chunk) => this.onData(m, parser, chunk));
      if (this.paused) socket.pause();
    } catch (err) {
      // A CA file that cannot be read, say: a failed attempt like any other, retried.
      queueMicrotask(() => fail(`cannot connect: ${(err as Error).message}`));
      return;
    }
    socket.once(readyEvent(target), () => {
      if (this.manager !== m) return;
      m.login((err) => {
        if (this.manager !== m) return;
        if (err) {
          const message = typeof err.message === 'string' ? err.message : 'login rejected';
          this.log.error({ username: this.opts.username, host: this.opts.host, port: this.opts.port }, `AMI login rejected: ${message} (check pbx.ami.username and secret, and manager.conf)`);
          fail(`login rejected: ${message}`);
          return;
        }
        this.onLoggedIn(m);
      });
    });
  }

  private onLoggedIn(m: Manager): void {
    this.attempt = 0;
    const logins = this.connection.connected();
    this.log.info({ host: this.opts.host, port: this.opts.port, logins }, 'AMI connected and logged in');
    if (this.opts.resync) void this.resync(m, 'reconnect');
    if (this.opts.inventory) {
      // Asterisk sends FullyBooted right after a login once it has booted (at the end of the boot
      // otherwise), which is when the inventory is complete; a user without `read = system`
      // never gets it, so read anyway after a while.
      this.inventoryAsked = null;
      this.inventoryFallback = setTimeout(() => {
        this.inventoryFallback = null;
        if (this.manager !== m || this.inventoryAsked === m) return;
        this.log.debug('no FullyBooted event after login (is `read = system` missing?); reading the device inventory anyway');
        this.askInventory(m);
      }, this.opts.actionTimeoutMs);
      this.inventoryFallback.unref();
    }
  }

  /** Schedules the next periodic snapshot, if any is configured. */
  private scheduleReconcile(m: Manager): void {
    const every = this.opts.reconcileIntervalMs ?? 0;
    if (!this.opts.resync || every <= 0 || this.stopped || this.manager !== m) return;
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = null;
      if (this.manager !== m) return;
      // The login's resync (or a slow previous one) still runs: try again after the interval.
      if (this.resyncing === m) this.scheduleReconcile(m);
      else void this.resync(m, 'periodic');
    }, every);
    this.reconcileTimer.unref();
  }

  private async resync(m: Manager, trigger: SnapshotTrigger): Promise<void> {
    this.resyncing = m;
    try {
      await this.takeSnapshot(m, trigger);
    } finally {
      if (this.resyncing === m) this.resyncing = null;
      this.scheduleReconcile(m);
    }
  }

  private async takeSnapshot(m: Manager, trigger: SnapshotTrigger): Promise<void> {
    this.input$.next({ kind: 'resync-begin', receivedAt: Date.now() });
    try {
      const rows = await this.listOn(m, { action: 'CoreShowChannels' }, 'CoreShowChannelsComplete');
      if (this.manager !== m) return;
      const channels: SnapshotChannel[] = rows
        .filter((event) => event.event === 'CoreShowChannel')
        .map((event) => ({
          channel: event.channel ?? '',
          uniqueid: event.uniqueid ?? '',
          linkedid: event.linkedid ?? '',
          context: event.context,
          exten: event.exten ?? event.extension,
          calleridnum: event.calleridnum,
          calleridname: event.calleridname,
          channelstatedesc: event.channelstatedesc,
          bridgeid: event.bridgeid,
        }));
      // The CRM variables whose VarSet went by while we were away (src/normalizer/missed-vars.ts).
      const getvar = async (ch: SnapshotChannel, name: string): Promise<string | null> => {
        const viaOther = this.opts.readVar ? await this.opts.readVar(ch, name) : undefined;
        if (viaOther !== undefined) return viaOther;
        const res = await this.send(m, { action: 'Getvar', channel: ch.channel, variable: name }, this.opts.actionTimeoutMs);
        return typeof res.value === 'string' && res.value !== '' ? res.value : null;
      };
      if (trigger === 'periodic') {
        // Only the calls the bridge lost track of need it; not worth two Getvars per live channel
        // every interval (a call picked up here lacks the CRM variables set before).
        this.input$.next({ kind: 'snapshot', channels, receivedAt: Date.now(), trigger });
        this.log.debug({ channels: channels.length }, 'AMI periodic reconciliation: live channels compared');
        return;
      }
      const withVars = await readMissedVars(channels, getvar, () => this.manager === m);
      if (this.manager !== m) return;
      this.input$.next({ kind: 'snapshot', channels: withVars.channels, receivedAt: Date.now(), trigger });
      this.log.info({ channels: channels.length, variablesRead: withVars.found }, 'AMI state resynchronized');
    } catch (err) {
      if (this.manager !== m) return;
      if (trigger === 'periodic') this.log.warn({ err }, 'AMI periodic reconciliation failed; trying again at the next interval');
      else this.log.warn({ err }, 'AMI resync failed; calls that ended while disconnected end when their channels are next seen');
    }
  }

  /** Asks for an inventory read on `m`; one that runs already is followed by one more. */
  private askInventory(m: Manager): void {
    this.inventoryAsked = m;
    if (this.inventoryRun?.m === m) {
      this.inventoryRun.again = true;
      return;
    }
    const run = { m, again: false };
    this.inventoryRun = run;
    void (async () => {
      do {
        run.again = false;
        await this.readInventoryOn(m);
      } while (run.again && this.manager === m);
      if (this.inventoryRun === run) this.inventoryRun = null;
    })();
  }

  private async readInventoryOn(m: Manager): Promise<void> {
    const list = (fields: Record<string, string>, complete: string): Promise<ListAnswer> =>
      this.listOn(m, fields, complete).then(
        (rows): ListAnswer => ({ ok: true, rows }),
        (err: unknown) => {
          if (err instanceof AmiErrorResponse) return { ok: false, message: err.response };
          throw err;
        },
      );
    try {
      const inventory = await readInventory(list);
      if (this.manager !== m) return;
      this.input$.next({ kind: 'inventory', inventory, receivedAt: Date.now() });
      const phones = inventory.devices.filter((d) => d.kind === 'phone');
      const trunks = inventory.devices.filter((d) => d.kind === 'trunk');
      this.log.info({ phones: phones.length, trunks: trunks.length, queueMembers: inventory.members?.length ?? null, sources: inventory.sources }, 'PBX device inventory read');
      // Names for whoever wonders why a device is (not) an agent; bounded so a big PBX stays readable.
      const names = (ds: typeof phones) => ds.slice(0, 200).map((d) => `${d.interface} (${d.why})`);
      this.log.debug({ phones: names(phones), trunks: names(trunks), members: inventory.members?.slice(0, 200).map((x) => x.interface) ?? null }, 'PBX device inventory');
    } catch (err) {
      if (this.manager !== m) return;
      this.log.warn({ err }, 'reading the PBX device inventory failed; agents are recognised by what was learnt before and by the patterns');
    }
  }

  /**
   * Sends a list action (CoreShowChannels, QueueStatus, …) and resolves with the events that
   * answer it, up to and including `completeEvent`. Those events carry the action's ActionID
   * and are not passed on to input$: they describe state, they are not news.
   */
  list(fields: Record<string, string>, completeEvent: string, timeoutMs = this.opts.actionTimeoutMs): Promise<AmiEvent[]> {
    const m = this.manager;
    if (!m || this.status.state !== 'connected') return Promise.reject(new Error('AMI is not connected'));
    return this.listOn(m, fields, completeEvent, timeoutMs);
  }

  private listOn(m: Manager, fields: Record<string, string>, completeEvent: string, timeoutMs = this.opts.actionTimeoutMs): Promise<AmiEvent[]> {
    const actionid = `crm-bridge-${process.pid}-${++this.actionSeq}`;
    const name = fields.action ?? '?';
    const rows: AmiEvent[] = [];
    const complete = completeEvent.toLowerCase();
    return new Promise<AmiEvent[]>((resolve, reject) => {
      let answered = false;
      let finished = false;
      const end = (err: Error | null) => {
        clearTimeout(timer);
        this.collectors.delete(actionid);
        if (err) reject(err);
        else resolve(rows);
      };
      const timer = setTimeout(() => {
        m.removeAllListeners(actionid);
        end(new Error(`AMI action ${name} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.collectors.set(actionid, {
        push: (event) => {
          rows.push(event);
          if (event.event?.toLowerCase() === complete) {
            finished = true;
            if (answered) end(null);
          }
        },
        fail: (why) => end(new Error(`AMI action ${name} abandoned: ${why}`)),
      });
      this.lastActionId = actionid;
      m.action({ ...fields, actionid }, (err) => {
        if (err) {
          end(new AmiErrorResponse(name, String(err.message ?? 'error')));
          return;
        }
        answered = true;
        if (finished) end(null);
      });
    });
  }

  /** Collectors of list actions in flight, by ActionID. */
  private readonly collectors = new Map<string, { push: (event: AmiEvent) => void; fail: (why: string) => void }>();

  /** Paused by back-pressure (pause()): a new connection starts paused too. */
  private paused = false;

  pause(): void {
    this.paused = true;
    this.socket?.pause();
  }

  resume(): void {
    this.paused = false;
    this.socket?.resume();
  }

  /** One read from the socket: its frames, in order, to the package's action callbacks and to us. */
  private onData(m: Manager, parser: AmiParser, chunk: Buffer): void {
    if (this.manager !== m) return;
    for (const item of parser.feed(chunk)) {
      // A frame can end the connection (a rejected login): the rest of this read is not ours.
      if (this.manager !== m) return;
      if (item.kind === 'dropped') this.onDropped(item);
      else this.dispatch(m, item.event, item.repeated);
    }
  }

  /** What the package's reader did with a frame (ManagerEvent in its lib/ami.js), synchronously. */
  private dispatch(m: Manager, event: AmiEvent, repeated: string[] | null): void {
    const response = event.response;
    if (response) {
      const follows = response.toLowerCase() === 'follows';
      const id = event.actionid ?? (follows ? this.lastActionId : undefined);
      // Only an action waiting for its answer gets one: an ActionID named `error` or `close`
      // must not reach the package's own events.
      if (id && !MANAGER_EVENTS.has(id) && m.listeners(id).length > 0) m.emit(id, response.toLowerCase() === 'error' ? event : undefined, event);
    }
    if (event.event) this.onFrame(m, event, repeated);
    else if (response === undefined) {
      // Neither Event nor Response: garbage, or a protocol we do not speak.
      this.log.warn({ frame: JSON.stringify(event).slice(0, 200) }, 'AMI sent a frame that is neither an event nor a response; ignored it');
    }
  }

  private onDropped(drop: AmiDrop): void {
    this.dropped$.next(drop);
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_INTERVAL_MS) {
      this.dropsNotLogged++;
      return;
    }
    const alsoDropped = this.dropsNotLogged;
    this.lastDropLog = now;
    this.dropsNotLogged = 0;
    this.log.warn(
      { reason: drop.reason, limit: drop.limit, frame: drop.first, ...(alsoDropped > 0 ? { alsoDroppedSinceLastWarning: alsoDropped } : {}) },
      `AMI frame dropped: ${DROP_WHY[drop.reason](drop.limit)}${drop.follows ? ' (a Response: Follows without its --END COMMAND--; what came after its first blank line was read as frames)' : ''}; the frames after it are read as usual`,
    );
  }

  private onFrame(m: Manager, event: AmiEvent, repeated: string[] | null): void {
    const collector = event.actionid !== undefined ? this.collectors.get(event.actionid) : undefined;
    if (collector) {
      collector.push(event);
      return;
    }
    const name = eventName(event);
    if (this.opts.inventory && (name === 'fullybooted' || name === 'reload')) this.askInventory(m);
    if (repeated) {
      // Some events repeat headers by design (TestEvent's State); a repeated Event header means
      // two frames were glued together, which is worth a warning.
      const glued = repeated.includes('event');
      this.log[glued ? 'warn' : 'debug'](
        { event: event.event, repeated },
        glued ? 'AMI frame has two Event headers (a truncated frame glued to the next?); handled as the first event' : 'AMI frame repeats headers; using the first value of each',
      );
    }
    this.input$.next({ kind: 'event', event, receivedAt: Date.now() });
  }

  private onDisconnected(why: string): void {
    if (this.stopped) return;
    const failures = this.connection.disconnected(why);
    if (!this.opts.reconnect) {
      this.log.info({ reason: why }, 'AMI connection ended');
      this.input$.complete();
      return;
    }
    const delay = backoffDelay(this.opts.reconnect, this.attempt, this.opts.random);
    const level = failures === 1 || failures % 10 === 0 ? 'warn' : 'debug';
    this.log[level]({ host: this.opts.host, port: this.opts.port, reason: why, retryInMs: delay, failures }, 'AMI disconnected; reconnecting');
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  private clearConnectionTimers(): void {
    for (const t of [this.reconcileTimer, this.inventoryFallback]) if (t) clearTimeout(t);
    this.reconcileTimer = null;
    this.inventoryFallback = null;
  }

  private dropManager(): void {
    const m = this.manager;
    this.manager = null;
    this.clearConnectionTimers();
    // List actions of this connection will never complete: end them now, not at their timeout.
    for (const c of [...this.collectors.values()]) c.fail('connection lost');
    if (!m) return;
    m.removeAllListeners();
    // The package listens to its own 'error'; keep one so a late socket error is not thrown.
    m.on('error', () => undefined);
    try {
      m.disconnect();
    } catch {
      // already closed
    }
    // The package ends only an open socket: one still connecting (or in its TLS handshake)
    // would otherwise connect later and stay, unread.
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState !== 'open') socket.destroy();
  }

}

/** The warning's words for each limit (the config key names the setting to change). */
const DROP_WHY: Record<AmiDropReason, (limit: number) => string> = {
  line_too_long: (n) => `a line longer than ${n} bytes (pbx.ami.maxLineBytes)`,
  too_many_headers: (n) => `more than ${n} headers (pbx.ami.maxHeaders)`,
  frame_too_large: (n) => `larger than ${n} bytes (pbx.ami.maxFrameBytes)`,
};

/** Asterisk answered an action with `Response: Error` (unknown action, module not loaded, empty list…). */
export class AmiErrorResponse extends Error {
  constructor(
    readonly action: string,
    readonly response: string,
  ) {
    super(`AMI action ${action} failed: ${response}`);
  }
}

/**
 * The `pbx.ami` row of the source table: the event source whenever AMI is configured (and for
 * replay, which plays a recording over a loopback AMI server).
 */
export const amiSource: SourceDefinition = {
  kind: 'ami',
  configured: (config, replay) => replay || config.pbx.ami !== undefined,
  create(config, { log, replay, readVarAside }) {
    const ami = config.pbx.ami;
    return new AmiSource({
      host: replay?.host ?? ami?.host ?? '127.0.0.1',
      port: replay?.port ?? ami?.port ?? 5038,
      tls: replay ? false : amiTlsOptions(ami?.tls),
      limits: ami ? { maxFrameBytes: ami.maxFrameBytes, maxHeaders: ami.maxHeaders, maxLineBytes: ami.maxLineBytes } : undefined,
      username: ami?.username ?? '',
      secret: ami?.secret ?? '',
      reconnect: replay ? false : (ami?.reconnect ?? false),
      actionTimeoutMs: ami?.actionTimeoutMs ?? 10_000,
      resync: replay ? (replay.resync ?? false) : (ami?.resync ?? true),
      reconcileIntervalMs: replay ? (replay.reconcileIntervalMs ?? 0) : (ami?.reconcileIntervalSeconds ?? 60) * 1000,
      // Read even with calls.agentsFromPbx off, so a reload can turn it on; a replay server
      // answers no action during playback: no inventory there unless asked for.
      inventory: replay ? (replay.inventory ?? false) : true,
      log,
      ...(readVarAside ? { readVar: (ch: SnapshotChannel, name: string) => readVarAside(ch.uniqueid, name) } : {}),
    });
  },
};
