// Records the ARI fixtures in lab/recordings/ari/<scenario>.jsonl from a real Asterisk 22.
//
//   node --import @tapjs/typescript/import lab/record-ari.ts [scenario...]
//
// The ARI counterpart of lab/record-ami.ts: the same scenarios (lab/scenarios.ts, driven
// over AMI by the lab's driver), but what is recorded is every message the
// ARI events websocket delivered to a Stasis application subscribed to everything
// (`subscribeAll=true`), one JSON object per line, exactly as Asterisk sent it. A scenario's
// recording ends once every channel it saw created was destroyed, followed by a
// `ChannelUserevent` named RecordingEnd that the recorder raised itself (so the file shows it is
// complete). Needs root (chroot) and lab/pbx/ari.conf's `channelvars`.
/// <reference path="../src/sources/ari/ari-client.d.ts" />
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ari, { type AriClient, type AriEventMessage } from 'ari-client';
import { AmiDriver, withTimeout } from './ami-driver.js';
import { AMI_SECRET, AMI_USER, startAsterisk } from './asterisk.js';
import { type ScenarioName, scenarioNames, scenarios } from './scenarios.js';

const FIXTURES = process.env.FIXTURES_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'recordings/ari');
const APP = 'crm-bridge-recorder';
const ARI_USER = 'bridge';
const ARI_PASSWORD = 'bridge-secret';

function selected(args: string[]): ScenarioName[] {
  if (args.length === 0) return scenarioNames;
  const unknown = args.filter((a) => !(scenarioNames as string[]).includes(a));
  if (unknown.length > 0) {
    throw new Error(`unknown scenario(s): ${unknown.join(', ')}; known: ${scenarioNames.join(', ')}`);
  }
  return args as ScenarioName[];
}

/** The ARI event stream of one application, kept in arrival order, with waiting on conditions. */
class AriTap {
  readonly messages: AriEventMessage[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(readonly client: AriClient) {
    client.on('*', (event: AriEventMessage) => {
      this.messages.push(event);
      for (const w of [...this.waiters]) w();
    });
  }

  /** Resolves once `check(messages from index since)` holds; re-checked on every message. */
  until(check: (msgs: AriEventMessage[]) => boolean, since: number, ms: number, what: string): Promise<void> {
    let waiter: (() => void) | undefined;
    const done = new Promise<void>((resolve) => {
      waiter = () => {
        if (check(this.messages.slice(since))) resolve();
      };
      this.waiters.add(waiter);
      waiter();
    });
    return withTimeout(done, ms, what).finally(() => {
      if (waiter) this.waiters.delete(waiter);
    });
  }
}

const channelId = (m: AriEventMessage): string | undefined => (m.channel as { id?: string } | undefined)?.id;

/** Every channel created since the mark has been destroyed. */
function allChannelsGone(msgs: AriEventMessage[]): boolean {
  const live = new Set<string>();
  for (const m of msgs) {
    const id = channelId(m);
    if (!id) continue;
    if (m.type === 'ChannelCreated') live.add(id);
    else if (m.type === 'ChannelDestroyed') live.delete(id);
  }
  return live.size === 0;
}

async function record(tap: AriTap, amiPort: number, name: ScenarioName, n: number): Promise<AriEventMessage[]> {
  const driver = await AmiDriver.connect(amiPort, AMI_USER, AMI_SECRET);
  try {
    const since = tap.messages.length;
    await scenarios[name](driver);
    await tap.until(allChannelsGone, since, 30_000, `every channel of ${name} to be destroyed on ARI`);
    const marker = `${process.pid}-${n}`;
    await tap.client.events.userEvent({ eventName: 'RecordingEnd', application: APP, variables: { marker } });
    await tap.until(
      (msgs) => msgs.some((m) => m.type === 'ChannelUserevent' && m.eventname === 'RecordingEnd' && (m.userevent as { marker?: string } | undefined)?.marker === marker),
      since,
      10_000,
      `the RecordingEnd user event (marker ${marker})`,
    );
    return tap.messages.slice(since);
  } finally {
    await driver.close();
  }
}

async function main(): Promise<void> {
  const names = selected(process.argv.slice(2));
  fs.mkdirSync(FIXTURES, { recursive: true });
  const asterisk = await startAsterisk({ name: 'ari-fixtures' });
  let client: AriClient | null = null;
  try {
    client = await ari.connect(`http://127.0.0.1:${asterisk.httpPort}`, ARI_USER, ARI_PASSWORD);
    const tap = new AriTap(client);
    await client.start(APP, true);
    let n = 0;
    for (const name of names) {
      const started = Date.now();
      const messages = await record(tap, asterisk.amiPort, name, ++n);
      const file = path.join(FIXTURES, `${name}.jsonl`);
      fs.writeFileSync(file, messages.map((m) => JSON.stringify(m)).join('\n') + '\n');
      console.log(`${name}: ${messages.length} ARI events in ${((Date.now() - started) / 1000).toFixed(1)} s -> ${file}`);
    }
  } finally {
    client?.stop();
    await asterisk.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
