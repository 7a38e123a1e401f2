// Records the AMI fixtures in test/fixtures/<scenario>.ami from a real Asterisk 22.
//
//   node --import @tapjs/typescript/import scripts/record-fixtures.ts [scenario...]
//
// (Node 20 cannot strip types itself; tap's TypeScript loader is already installed. Needs root
// for chroot; builds the Asterisk rootfs on first use.) Without arguments it records every
// scenario of test/helpers/scenarios.ts, one after the other on one Asterisk. Each fixture is the
// exact byte stream a bridge logged in as `bridge` received while the scenario ran: greeting,
// login response, events, and a final `UserEvent: RecordingEnd` that marks the stream as complete.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmiDriver } from '../test/helpers/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, BRIDGE_AMI_USER, startAsterisk } from '../test/helpers/asterisk.js';
import { recordAmi } from '../test/helpers/recorder.js';
import { type ScenarioName, scenarioNames, scenarios } from '../test/helpers/scenarios.js';

const FIXTURES = process.env.FIXTURES_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fixtures');

function selected(args: string[]): ScenarioName[] {
  if (args.length === 0) return scenarioNames;
  const unknown = args.filter((a) => !(scenarioNames as string[]).includes(a));
  if (unknown.length > 0) {
    throw new Error(`unknown scenario(s): ${unknown.join(', ')}; known: ${scenarioNames.join(', ')}`);
  }
  return args as ScenarioName[];
}

async function record(amiPort: number, name: ScenarioName): Promise<Buffer> {
  // A fresh driver per scenario: its event history and channel tracking start empty.
  const driver = await AmiDriver.connect(amiPort, AMI_USER, AMI_SECRET);
  try {
    const recorder = await recordAmi(amiPort, BRIDGE_AMI_USER, BRIDGE_AMI_SECRET);
    try {
      await scenarios[name](driver);
      return await recorder.stopAfterUserEvent((fields) => driver.action({ Action: 'UserEvent', ...fields }));
    } finally {
      recorder.stop();
    }
  } finally {
    await driver.close();
  }
}

async function main(): Promise<void> {
  const names = selected(process.argv.slice(2));
  fs.mkdirSync(FIXTURES, { recursive: true });
  const asterisk = await startAsterisk({ name: 'fixtures' });
  try {
    for (const name of names) {
      const started = Date.now();
      const bytes = await record(asterisk.amiPort, name);
      const file = path.join(FIXTURES, `${name}.ami`);
      fs.writeFileSync(file, bytes);
      console.log(`${name}: ${bytes.length} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s -> ${file}`);
    }
  } finally {
    await asterisk.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
