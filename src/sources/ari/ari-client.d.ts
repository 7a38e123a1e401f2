// ari-client 2.2.0 ships no types. This declares the surface src/sources/ari/source.ts and the ARI
// fixture recorder use, read from node_modules/ari-client/lib/client.js: operations are
// generated from Asterisk's own swagger description, so each takes one options object and
// returns a (Bluebird) promise.
declare module 'ari-client' {
  import type { EventEmitter } from 'node:events';

  /** A raw ARI websocket event: the JSON Asterisk sent, unchanged. */
  export interface AriEventMessage {
    type: string;
    timestamp?: string;
    application?: string;
    asterisk_id?: string;
    [key: string]: unknown;
  }

  export interface AriClient extends EventEmitter {
    channels: {
      list(): PromiseLike<Array<Record<string, unknown>>>;
      getChannelVar(opts: { channelId: string; variable: string }): PromiseLike<{ value: string }>;
      originate(opts: {
        endpoint: string;
        context?: string;
        extension?: string;
        priority?: number;
        callerId?: string;
        timeout?: number;
        channelId?: string;
        variables?: Record<string, string>;
      }): PromiseLike<unknown>;
    };
    events: {
      userEvent(opts: { eventName: string; application: string; source?: string; variables?: Record<string, unknown> }): PromiseLike<unknown>;
    };
    applications: {
      list(): PromiseLike<Array<Record<string, unknown>>>;
    };
    /** Opens the events websocket; resolves on its first open (never on a library reconnect). */
    start(apps: string | string[], subscribeAll?: boolean): PromiseLike<void>;
    /** Closes the websocket on purpose (the library then does not reconnect). */
    stop(): void;
  }

  export function connect(url: string, user: string, pass: string): PromiseLike<AriClient>;
  const ari: { connect: typeof connect };
  export default ari;
}
