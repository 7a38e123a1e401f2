// Records the AMI fixtures in lab/recordings/<scenario>.ami from a real Asterisk 22.
//
//   node --import @tapjs/typescript/import lab/record-ami.ts [scenario...]
//
// (Node 20 cannot strip types itself; tap's TypeScript loader is already installed. Needs root
// for chroot; builds the Asterisk rootfs on first use.) Without arguments it records every
// scenario: those of lab/scenarios.ts one after the other on one Asterisk, then those of
// lab/pbx-scenarios.ts on the SIP lab (a PBX and a phones-and-PSTN instance; only the
// PBX is recorded). Each fixture is the exact byte stream a bridge logged in as `bridge` received
// while the scenario ran: greeting, login response, events, and a final
// `UserEvent: RecordingEnd` that marks the stream as complete.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmiDriver } from './ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, BRIDGE_AMI_USER, startAsterisk, startSipLab } from './asterisk.js';
import { type Lab, type LabScenarioName, labScenarioNames, labScenarios } from './pbx-scenarios.js';
import { recordAmi } from './recorder.js';
import { type ScenarioName, scenarioNames, scenarios } from './scenarios.js';

const FIXTURES = process.env.FIXTURES_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'recordings');

const isLocal = (name: string): name is ScenarioName => (scenarioNames as string[]).includes(name);
const isLab = (name: string): name is LabScenarioName => (labScenarioNames as string[]).includes(name);

function selected(args: string[]): { local: ScenarioName[]; lab: LabScenarioName[] } {
  if (args.length === 0) return { local: scenarioNames, lab: labScenarioNames };
  const unknown = args.filter((a) => !isLocal(a) && !isLab(a));
  if (unknown.length > 0) {
    const known = [...scenarioNames, ...labScenarioNames];
    throw new Error(`unknown scenario(s): ${unknown.join(', ')}; known: ${known.join(', ')}`);
  }
  return { local: args.filter(isLocal), lab: args.filter(isLab) };
}

/**
 * Records what the bridge's session on `amiPort` receives while `play` runs. `play` gets a fresh
 * driver on that port (its event history and channel tracking start empty).
 */
async function record(amiPort: number, play: (driver: AmiDriver) => Promise<void>): Promise<Buffer> {
  const driver = await AmiDriver.connect(amiPort, AMI_USER, AMI_SECRET);
  try {
    const recorder = await recordAmi(amiPort, BRIDGE_AMI_USER, BRIDGE_AMI_SECRET);
    try {
      await play(driver);
      return await recorder.stopAfterUserEvent((fields) => driver.action({ Action: 'UserEvent', ...fields }));
    } finally {
      recorder.stop();
    }
  } finally {
    await driver.close();
  }
}

function save(name: string, started: number, bytes: Buffer): void {
  const file = path.join(FIXTURES, `${name}.ami`);
  fs.writeFileSync(file, bytes);
  console.log(`${name}: ${bytes.length} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s -> ${file}`);
}

async function main(): Promise<void> {
  const names = selected(process.argv.slice(2));
  fs.mkdirSync(FIXTURES, { recursive: true });
  if (names.local.length > 0) {
    const asterisk = await startAsterisk({ name: 'fixtures' });
    try {
      for (const name of names.local) {
        const started = Date.now();
        save(name, started, await record(asterisk.amiPort, (driver) => scenarios[name](driver)));
      }
    } finally {
      await asterisk.stop();
    }
  }
  if (names.lab.length > 0) {
    const lab = await startSipLab({ name: 'fixtures' });
    try {
      for (const name of names.lab) {
        const started = Date.now();
        const phones = await AmiDriver.connect(lab.phones.amiPort, AMI_USER, AMI_SECRET);
        try {
          const play = (pbx: AmiDriver): Promise<void> => labScenarios[name]({ pbx, phones } satisfies Lab);
          save(name, started, await record(lab.pbx.amiPort, play));
        } finally {
          await phones.close();
        }
      }
    } finally {
      await lab.stop();
    }
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
