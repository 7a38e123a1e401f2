// The real-Asterisk harness itself: if these fail, every end-to-end test and every fixture
// recording is suspect. Needs root (chroot) and the Asterisk rootfs (built on first use).
import fs from 'node:fs';
import t from 'tap';
import { AmiDriver } from '../../lab/ami-driver.js';
import { AMI_SECRET, AMI_USER, BRIDGE_AMI_SECRET, BRIDGE_AMI_USER, startAsterisk } from '../../lab/asterisk.js';
import { recordAmi } from '../../lab/recorder.js';
import { scenarios } from '../../lab/scenarios.js';

/** Pids of processes whose command line mentions `needle` (e.g. an instance's config dir). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

const asterisk = await startAsterisk({ name: 'harness' });
t.teardown(() => asterisk.stop());

t.test('given a started Asterisk, when the driver logs in, then it sees its own instance', async (t) => {
  const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
  t.teardown(() => driver.close());
  const owner = await driver.action({ Action: 'Getvar', Variable: 'HARNESS_ETC' });
  t.equal(owner.get('Value'), asterisk.etcDir, 'the AMI port belongs to this instance');
  t.match(await asterisk.cli('core show version'), /^Asterisk 22\./, 'the CLI answers');
});

t.test(
  'given a recorder attached, when queue-answered runs, then the call completes and the raw stream is captured',
  async (t) => {
    const driver = await AmiDriver.connect(asterisk.amiPort, AMI_USER, AMI_SECRET);
    t.teardown(() => driver.close());
    const recorder = await recordAmi(asterisk.amiPort, BRIDGE_AMI_USER, BRIDGE_AMI_SECRET);
    t.teardown(() => void recorder.stop());

    await scenarios['queue-answered'](driver);

    t.ok(driver.channels.size > 0, 'the scenario created channels');
    t.same(driver.liveChannels(), [], 'every channel it created has hung up');
    t.match(await asterisk.cli('core show channels count'), /\b0 active channels\b/, 'Asterisk agrees');

    const stream = (await recorder.stopAfterUserEvent((f) => driver.action({ Action: 'UserEvent', ...f }))).toString(
      'utf8',
    );
    t.ok(stream.startsWith('Asterisk Call Manager/'), 'the recording starts with the AMI greeting');
    t.match(stream, /\r\nEvent: AgentConnect\r\n/, 'the recording holds the queue answer');
    t.match(stream, /\r\nEvent: Hangup\r\n/, 'and the hang-ups');
  },
);

t.test('given a started Asterisk, when it is stopped, then no Asterisk process of it is left', async (t) => {
  t.same(processesMentioning(asterisk.etcDir), [asterisk.pid], 'before stop: exactly our Asterisk runs');
  await asterisk.stop();
  t.notOk(fs.existsSync(`/proc/${asterisk.pid}`), 'its process is gone');
  t.same(processesMentioning(asterisk.etcDir), [], 'no process mentions its config dir');
  await asterisk.stop();
  t.pass('stop() is idempotent');
});
