// Why this file is long: as for the AMI source, one connection's life (API load, websocket,
// reconnect, resync, requests) shares the current client and its generation; the translation to
// AMI-shaped records is apart (translate.ts), and what we patch in ari-client is listed below.
//
// The ARI source: Asterisk's REST interface and its events websocket, through `ari-client`,
// turned into the same normalizer input stream as the AMI source (src/sources/ami/source.ts) — for a
// deployment where AMI is not allowed.
//
// ---- Operator configuration (Asterisk 22; verified by test/e2e/ari.test.ts) ----------------
//
//   /etc/asterisk/http.conf          /etc/asterisk/ari.conf
//   [general]                        [general]
//   enabled = yes                    enabled = yes
//   bindaddr = 127.0.0.1             channelvars = CHANNEL(linkedid)
//   bindport = 8088
//                                    [crm-bridge]          ; the bridge's user
//                                    type = user
//                                    read_only = yes       ; it only reads (verified)
//                                    password = change-me
//
// - `channelvars = CHANNEL(linkedid)` is required: ARI's Channel model has no Linkedid, the key
//   the bridge groups channels into calls by. With it, Asterisk adds the current Linkedid to every
//   channel in every event. (Without it the bridge warns and asks Asterisk for each new channel's
//   Linkedid, one HTTP request per channel, holding later events back meanwhile; a channel gone
//   before the answer gets its Local partner's Linkedid or its own id, i.e. may become a call of
//   its own.) Keep any `channelvars` you already have: list them comma-separated.
// - Modules: res_ari, res_ari_* (channels, bridges, events, applications, device_states),
//   res_stasis, res_stasis_device_state, res_http_websocket (and in 22.x res_websocket_client,
//   without which res_ari does not load).
// - The bridge registers the Stasis application `app` (default `crm-bridge`) with
//   subscribeAll, so it sees every channel, bridge and device state without any dialplan change.
//   The name must be unique: a second client registering it takes the events away from the first
//   (logged as "ARI application taken over").
// - What ARI cannot tell (there are no app_queue events in ARI): no call.queued, `queue` is null,
//   no agent.login / logout / paused / unpaused, and agent names are not learnt from queue member
//   names (configure `agents` to name them). Calls, rings, answers, transfers, missed calls with
//   their reasons (QUEUESTATUS / DIALSTATUS arrive as channel variables) and agent.status work as
//   with AMI.
//
// ---- What we add on top of ari-client 2.2.0 (read from its source) ---------------------------
// - a fresh client per connection attempt, and our own capped backoff: the library's own
//   reconnect (100 ms doubling to 10 s, 10 tries, then it gives up silently) is neutralised by
//   marking its websocket as closed on purpose before its handlers run;
// - swagger-client 2.0.26, which ari-client loads the API with, rethrows every load failure
//   (401, 404, a reset) from inside an HTTP callback — an uncaught exception that would end the
//   daemon. Its `fail` is patched to report without throwing; its global `log` (console.log of a
//   deprecation notice on every connect, onto stdout, where a log sink writes events) is routed
//   to our debug log;
// - an authenticated GET of the API description before each load, so a refused, reset or
//   rejected (401) connection fails at once with a clear reason;
// - an exception in the library's websocket message handler (invalid JSON) is caught and logged;
// - timeouts on the API load, the websocket open and every request; a websocket ping, so a dead
//   peer is noticed;
// - resync after every (re)connect, as the AMI source does: channels.list (+ bridges.list for
//   who is bridged), so calls that ended while we were away still end and calls that began are
//   picked up;
// - the password never reaches a log line: ari-client puts it in the websocket URL, so every
//   error text is scrubbed of it.
import { createRequire } from 'node:module';
import ari, { type AriClient } from 'ari-client';
import type { Logger } from 'pino';
import { Subject } from 'rxjs';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import type { PbxSource, SourceDefinition, SourceStatus } from '../source.js';
import { ConnectedSource } from '../status.js';
import type { NormalizerInput } from '../../normalizer/index.js';
import {
  type AriBridge,
  type AriChannel,
  type AriMessage,
  createTranslateState,
  LINKEDID_VAR,
  linkedidVar,
  needsLinkedidLookup,
  pruneTranslateState,
  snapshotChannel,
  translate,
} from './translate.js';
import { readMissedVars } from '../../normalizer/missed-vars.js';
import { redactUrl } from '../../util/redact.js';
import type { AriConfig } from './config.js';


export interface AriSourceOptions {
  /** Asterisk's HTTP server, e.g. `http://127.0.0.1:8088`. */
  url: string;
  username: string;
  password: string;
  /** Stasis application name; unique per bridge. */
  app?: string;
  reconnect: BackoffPolicy | false;
  /** Timeout of the API load, the websocket open, and every request. */
  actionTimeoutMs: number;
  resync: boolean;
  log: Logger;
  /** Websocket ping interval; a missing pong after one more interval drops the connection. */
  pingIntervalMs?: number;
  /** Injected for tests: jitter source for the backoff. */
  random?: () => number;
}

export const DEFAULT_ARI_APP = 'crm-bridge';
const DEFAULT_PING_MS = 15_000;

/** The parts of ws@6's WebSocket that ari-client leaves on `client._ws`. */
interface LibSocket {
  readonly readyState: number;
  on(event: string, fn: (...args: any[]) => void): unknown; // any: ws's listener signatures differ per event
  prependListener(event: string, fn: (...args: any[]) => void): unknown;
  listeners(event: string): Array<(...args: unknown[]) => void>;
  removeAllListeners(event?: string): unknown;
  ping(): void;
  terminate(): void;
}

/** ari-client's Client with the private fields this file manages (lib/client.js). */
interface LibClient extends AriClient {
  _ws?: LibSocket;
  /** Set when the socket was closed on purpose: the library then does not reconnect. */
  _wsClosed?: boolean;
  bridges: { list(): PromiseLike<AriBridge[]> };
}

// ---- swagger-client guards (see the header) ---------------------------------------------------

let swaggerLog: Logger | null = null;
{
  const requireFromAri = createRequire(createRequire(import.meta.url).resolve('ari-client'));
  const swagger = requireFromAri('swagger-client') as { SwaggerApi?: { prototype: { fail?: unknown; failure?: unknown } } };
  const proto = swagger.SwaggerApi?.prototype;
  if (proto && typeof proto.fail === 'function') {
    proto.fail = function fail(this: { failure?: (m: unknown) => void }, message: unknown): void {
      this.failure?.(message);
    };
  }
  const g = globalThis as { log?: unknown };
  if (typeof g.log === 'function') {
    g.log = (...args: unknown[]) => swaggerLog?.debug({ swagger: args.map(String).join(' ').slice(0, 300) }, 'swagger-client message');
  }
}

export class AriSource extends ConnectedSource implements PbxSource {
  readonly kind = 'ari';
  readonly stage = 'pbx';
  /** ARI events as AMI-shaped events, resync markers and snapshots, in the order Asterisk sent them. */
  readonly input$ = new Subject<NormalizerInput>();
  private readonly log: Logger;
  private readonly app: string;
  private readonly translation = createTranslateState();
  private client: LibClient | null = null;
  /** Bumped per connection attempt; callbacks of an older one are ignored. */
  private generation = 0;
  private timer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Inputs are emitted through this chain, so a Linkedid lookup never reorders them. */
  private chain: Promise<void> = Promise.resolve();
  private warnedNoLinkedidVar = false;

  constructor(private readonly opts: AriSourceOptions) {
    super();
    this.log = opts.log;
    this.app = opts.app ?? DEFAULT_ARI_APP;
  }


  describe(): string {
    return `ARI at ${redactUrl(this.opts.url)}`;
  }

  async start(): Promise<void> {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dropClient();
    this.connection.enter('stopped');
    await this.chain;
    this.input$.complete();
    this.status$.complete();
  }

  /**
   * A channel variable (or function, e.g. `CHANNEL(linkedid)`) read now; null when it is not set.
   * Rejects when the channel does not exist, on a timeout, or when not connected.
   */
  async getVar(channelId: string, name: string): Promise<string | null> {
    const client = this.client;
    if (!client || this.status.state !== 'connected') throw new Error('ARI is not connected');
    return this.readVar(client, channelId, name);
  }

  /**
   * Calls `endpoint` and, once it answers, runs the dialplan at `context,extension,1` (ARI
   * POST /channels): click-to-call when the bridge has no AMI. `channelId` becomes the first
   * channel's Uniqueid, hence the call's Linkedid.
   */
  async originate(o: { endpoint: string; context: string; extension: string; callerId: string; timeoutSeconds: number; channelId: string; variables: Record<string, string> }): Promise<void> {
    const client = this.client;
    if (!client || this.status.state !== 'connected') throw new Error('ARI is not connected');
    await this.request(
      client.channels.originate({ endpoint: o.endpoint, context: o.context, extension: o.extension, priority: 1, callerId: o.callerId, timeout: o.timeoutSeconds, channelId: o.channelId, variables: o.variables }),
      `originating a call to ${o.endpoint}`,
    );
  }

  private async readVar(client: LibClient, channelId: string, name: string): Promise<string | null> {
    try {
      const res = await this.request(client.channels.getChannelVar({ channelId, variable: name }), `reading ${name} of channel ${channelId}`);
      return typeof res?.value === 'string' ? res.value : null;
    } catch (err) {
      // Asterisk answers 404 for both; only the message tells an unset variable from a gone channel.
      if (/variable was not found/i.test(errorText(err))) return null;
      throw new Error(this.scrub(`ARI could not read ${name} of channel ${channelId}: ${errorText(err)}`));
    }
  }

  // ---- connection --------------------------------------------------------------------------

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const gen = ++this.generation;
    this.connection.enter('connecting');
    swaggerLog = this.log;
    let client: LibClient;
    try {
      await this.preflight();
      if (gen !== this.generation) return;
      client = (await this.request(ari.connect(this.opts.url, this.opts.username, this.opts.password), 'loading the ARI API description')) as LibClient;
    } catch (err) {
      if (gen !== this.generation) return;
      this.connectionFailed(gen, err);
      return;
    }
    if (gen !== this.generation) return;
    this.client = client;
    client.on('*', (msg: AriMessage) => {
      if (gen !== this.generation) return;
      try {
        this.onMessage(gen, msg);
      } catch (err) {
        this.log.error({ err, type: msg?.type }, 'ARI event could not be handled; skipped it');
      }
    });
    client.on('pong', () => (this.awaitingPong = false));
    const opened = client.start(this.app, true);
    const ws = client._ws;
    if (ws) this.guardSocket(gen, client, ws);
    try {
      await this.request(opened, 'the ARI events websocket to open');
    } catch (err) {
      if (gen !== this.generation) return;
      this.connectionFailed(gen, err);
      return;
    }
    if (gen !== this.generation) return;
    this.onConnected(gen);
  }

  /**
   * One authenticated GET of the API description before ari-client's own load: a refused, reset
   * or rejected connection fails here at once and with a clear reason, where swagger-client can
   * hang on a reset until our timeout.
   */
  private async preflight(): Promise<void> {
    const base = new URL(this.opts.url);
    const auth = Buffer.from(`${this.opts.username}:${this.opts.password}`).toString('base64');
    let res: Response;
    try {
      res = await fetch(`${base.protocol}//${base.host}/ari/api-docs/resources.json`, {
        headers: { authorization: `Basic ${auth}` },
        signal: AbortSignal.timeout(this.opts.actionTimeoutMs),
      });
    } catch (err) {
      throw new Error(this.scrub(errorText(err)));
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status === 401) throw new LoginRejected();
    if (!res.ok) throw new Error(`HTTP ${res.status} for the ARI API description (is http.conf enabled and res_ari loaded?)`);
  }

  /** Takes the websocket's fate out of the library's hands (see the header). */
  private guardSocket(gen: number, client: LibClient, ws: LibSocket): void {
    const onDown = (why: string) => {
      // Before the library's own handlers run: "closed on purpose", so it does not reconnect.
      client._wsClosed = true;
      if (gen !== this.generation) return;
      this.lost(gen, why);
    };
    ws.prependListener('error', (err: unknown) => onDown(errorText(err)));
    ws.prependListener('close', (code: unknown) => onDown(`websocket closed${typeof code === 'number' ? ` (code ${code})` : ''}`));
    const handlers = ws.listeners('message');
    ws.removeAllListeners('message');
    ws.on('message', (...args: unknown[]) => {
      for (const h of handlers) {
        try {
          h.apply(ws, args);
        } catch (err) {
          this.log.warn({ err: this.scrub(errorText(err)) }, 'ARI sent a message ari-client could not parse; ignored it');
        }
      }
    });
  }

  private awaitingPong = false;

  private onConnected(gen: number): void {
    const logins = this.connection.connected();
    this.log.info({ url: redactUrl(this.opts.url), app: this.app, logins }, 'ARI connected');
    const every = this.opts.pingIntervalMs ?? DEFAULT_PING_MS;
    this.awaitingPong = false;
    this.pingTimer = setInterval(() => {
      const ws = this.client?._ws;
      if (gen !== this.generation || !ws) return;
      if (this.awaitingPong) {
        this.lost(gen, `no answer to a websocket ping within ${every} ms`);
        return;
      }
      this.awaitingPong = true;
      try {
        ws.ping();
      } catch (err) {
        this.lost(gen, errorText(err));
      }
    }, every);
    this.pingTimer.unref();
    if (this.opts.resync) void this.resync(gen);
  }

  private connectionFailed(gen: number, err: unknown): void {
    const text = this.scrub(errorText(err));
    if (err instanceof LoginRejected || /^401 :|Unexpected server response: 401/.test(text)) {
      this.log.error({ url: redactUrl(this.opts.url), username: this.opts.username }, 'ARI login rejected (check the ARI username and password, and ari.conf)');
      this.lost(gen, 'login rejected (401)');
    } else {
      this.lost(gen, text);
    }
  }

  /** The connection of generation `gen` is gone: drop it and schedule the next attempt. */
  private lost(gen: number, why: string): void {
    if (gen !== this.generation || this.stopped) return;
    this.generation++;
    this.dropClient();
    const reason = this.scrub(why);
    const failures = this.connection.disconnected(reason);
    if (!this.opts.reconnect) {
      this.log.info({ reason }, 'ARI connection ended');
      void this.chain.then(() => this.input$.complete());
      return;
    }
    // The n-th failure in a row waits the policy's n-th delay: initial, ×factor, ... up to the cap.
    const delay = backoffDelay(this.opts.reconnect, failures, this.opts.random);
    const level = failures === 1 || failures % 10 === 0 ? 'warn' : 'debug';
    this.log[level]({ url: this.opts.url, reason, retryInMs: delay, failures }, 'ARI disconnected; reconnecting');
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }

  private dropClient(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    const client = this.client;
    this.client = null;
    if (!client) return;
    client.removeAllListeners();
    client._wsClosed = true;
    const ws = client._ws;
    if (ws) {
      // The library's own listeners stay (they return early now); one more keeps a late
      // 'error' from being thrown by the emitter.
      ws.on('error', () => undefined);
      try {
        ws.terminate();
      } catch {
        // already closed
      }
    }
  }

  // ---- events ------------------------------------------------------------------------------

  private onMessage(gen: number, msg: AriMessage): void {
    if (msg.type === 'ApplicationReplaced') {
      this.log.error({ app: this.app }, `ARI application taken over: another client registered '${this.app}' (give each bridge its own app name)`);
      this.lost(gen, 'application taken over by another client');
      return;
    }
    const receivedAt = Date.now();
    const lookup = needsLinkedidLookup(msg, this.translation);
    this.enqueue(async () => {
      if (lookup !== null) await this.lookUpLinkedid(lookup);
      for (const event of translate(msg, this.translation)) this.input$.next({ kind: 'event', event, receivedAt });
    });
  }

  /** Fallback for an ari.conf without `channelvars = CHANNEL(linkedid)` (see the header). */
  private async lookUpLinkedid(channelId: string): Promise<void> {
    if (!this.warnedNoLinkedidVar) {
      this.warnedNoLinkedidVar = true;
      this.log.warn(`ARI channels carry no Linkedid: add "channelvars = ${LINKEDID_VAR}" to ari.conf [general]; until then each new channel's Linkedid is requested separately`);
    }
    const client = this.client;
    if (!client) return;
    try {
      const linkedid = await this.readVar(client, channelId, LINKEDID_VAR);
      if (linkedid) this.translation.linkedids.set(channelId, linkedid);
    } catch (err) {
      this.log.debug({ channelId, err: errorText(err) }, 'ARI Linkedid lookup failed; the channel keeps its own id');
    }
  }

  private enqueue(task: () => void | Promise<void>): void {
    this.chain = this.chain.then(task).catch((err: unknown) => {
      this.log.error({ err }, 'ARI input could not be handled; skipped it');
    });
  }

  private async resync(gen: number): Promise<void> {
    const client = this.client;
    if (!client) return;
    let knownBefore: Set<string> = new Set();
    this.enqueue(() => {
      knownBefore = new Set(this.translation.linkedids.keys());
      this.input$.next({ kind: 'resync-begin', receivedAt: Date.now() });
    });
    try {
      const [channels, bridges] = await Promise.all([
        this.request(client.channels.list(), 'the ARI channel list'),
        this.request(client.bridges.list(), 'the ARI bridge list'),
      ]);
      if (gen !== this.generation) return;
      const bridgeOf = new Map<string, string>();
      for (const b of bridges) for (const id of b.channels ?? []) bridgeOf.set(id, b.id);
      const chans = channels as unknown as AriChannel[];
      this.enqueue(async () => {
        for (const ch of chans) {
          if (linkedidVar(ch) === null && !this.translation.linkedids.has(ch.id)) await this.lookUpLinkedid(ch.id);
        }
        if (gen !== this.generation) return;
        const live = new Set(chans.map((c) => c.id));
        pruneTranslateState(this.translation, live, knownBefore);
        const listed = chans.map((c) => snapshotChannel(c, bridgeOf.get(c.id), this.translation));
        // The CRM variables whose ChannelVarset went by while we were away (src/normalizer/missed-vars.ts).
        const { channels: snapshot, found } = await readMissedVars(listed, (ch, name) => this.getVar(ch.uniqueid, name), () => this.generation === gen);
        this.input$.next({ kind: 'snapshot', channels: snapshot, receivedAt: Date.now() });
        this.log.info({ channels: snapshot.length, variablesRead: found }, 'ARI state resynchronized');
      });
    } catch (err) {
      if (gen !== this.generation) return;
      this.log.warn({ err: this.scrub(errorText(err)) }, 'ARI resync failed; calls that ended while disconnected end when their channels are next seen');
    }
  }

  // ---- helpers -----------------------------------------------------------------------------

  /** Awaits a library promise with our timeout; its rejection text is scrubbed of the password. */
  private request<T>(p: PromiseLike<T>, what: string): Promise<T> {
    const ms = this.opts.actionTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      Promise.resolve(p).then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(new Error(this.scrub(errorText(err))));
        },
      );
    });
  }

  private scrub(text: string): string {
    const pw = this.opts.password;
    if (!pw) return text;
    let out = text;
    for (const form of new Set([pw, encodeURIComponent(pw)])) out = out.split(form).join('[redacted]');
    return out;
  }

}

class LoginRejected extends Error {
  constructor() {
    super('login rejected (401)');
  }
}

/** The text of whatever the library rejected with: an Error (with fetch's cause), a string, or swagger's objects. */
function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
    const detail = cause ? String(cause.code ?? cause.message ?? '') : '';
    const text = err.message || err.name;
    return detail && !text.includes(detail) ? `${text}: ${detail}` : text;
  }
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

/** ARI from the config; `aside`: next to AMI, only a way to read variables (no resync of its own). */
export function createAriSource(ari: AriConfig, log: Logger, aside = false): AriSource {
  return new AriSource({
    url: ari.url,
    username: ari.username,
    password: ari.password,
    app: ari.app,
    reconnect: ari.reconnect,
    actionTimeoutMs: ari.actionTimeoutMs,
    resync: aside ? false : ari.resync,
    log,
  });
}

/**
 * The `pbx.ari` row of the source table: the event source when ARI is configured without AMI.
 * Next to AMI it is not the event source (its events would duplicate AMI's): the bridge opens it
 * aside, to read channel variables (createAriSource(…, aside)).
 */
export const ariSource: SourceDefinition = {
  kind: 'ari',
  configured: (config, replay) => !replay && config.pbx.ari !== undefined,
  create: (config, { log }) => createAriSource(config.pbx.ari!, log),
};
