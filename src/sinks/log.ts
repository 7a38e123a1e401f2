import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { type BridgeEvent, type EventType, eventJson } from '../events/types.js';
import type { Sink, SinkContext, SinkDefinition } from './sink.js';

export interface LogSinkConfig {
  type: 'log';
  name?: string;
  /** NDJSON file to append to; absent = stdout. */
  path?: string;
  /** Only these event types; absent = all. */
  events?: EventType[];
}

/** Writes each event as one JSON line (NDJSON) to a file or stdout. */
class LogSink implements Sink {
  readonly name: string;
  private out: WriteStream | NodeJS.WriteStream | null = null;
  private readonly types: Set<string> | null;

  constructor(private readonly config: LogSinkConfig, private readonly ctx: SinkContext) {
    this.name = config.name ?? `log:${config.path ?? 'stdout'}`;
    this.types = config.events ? new Set(config.events) : null;
  }

  async start(): Promise<void> {
    if (!this.config.path) {
      const out = process.stdout;
      // A closed pipe (`crm-bridge replay x | head`) must not crash the daemon: say so once and
      // stop writing to it.
      out.on('error', (err: NodeJS.ErrnoException) => {
        if (this.out === out) this.ctx.log.error({ code: err.code }, 'standard output closed; events are no longer written there');
        this.out = null;
      });
      this.out = out;
      return;
    }
    mkdirSync(dirname(this.config.path), { recursive: true });
    // Events carry callers' numbers and names: the file is the bridge's user's alone (an existing
    // file keeps its mode; the operator chose it).
    const stream = createWriteStream(this.config.path, { flags: 'a', mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    stream.on('error', (err) => this.ctx.log.error({ err, path: this.config.path }, 'event log write failed'));
    this.out = stream;
  }

  deliver(event: BridgeEvent): void {
    if (this.types && !this.types.has(event.type)) return;
    this.out?.write(eventJson(event) + '\n');
  }

  async stop(): Promise<void> {
    const out = this.out;
    this.out = null;
    if (!out) return;
    if (out === process.stdout) {
      // stdout may be a pipe: wait until what was written has been handed to the OS.
      if (out.writableNeedDrain) await new Promise<void>((resolve) => out.once('drain', resolve));
      return;
    }
    await new Promise<void>((resolve) => (out as WriteStream).end(resolve));
  }
}

export const logSink: SinkDefinition<LogSinkConfig> = {
  type: 'log',
  schema: {
    type: 'object',
    description: 'Writes every event as one JSON line (NDJSON).',
    required: ['type'],
    additionalProperties: false,
    properties: {
      type: { const: 'log' },
      name: { type: 'string', description: 'Name used in logs and metrics. Default: log:<path>.' },
      path: {
        type: 'string',
        minLength: 1,
        description: 'File to append events to, one JSON object per line. Default: standard output.',
      },
      events: {
        type: 'array',
        description: 'Only write these event types. Default: all.',
        items: { type: 'string' },
        uniqueItems: true,
      },
    },
  },
  create: (config, ctx) => new LogSink(config, ctx),
};
