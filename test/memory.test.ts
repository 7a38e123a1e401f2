// Events kept for a long time (the screen-pop replay buffers) must not hold on to the AMI socket
// reads their values were cut from: asterisk-manager's values are V8 slices of whole 64 KB reads.
import { spawnSync } from 'node:child_process';
import t from 'tap';

t.test('given events kept after a replay, then each holds well under 2 KB of heap (not the AMI reads it came from)', async (t) => {
  const child = new URL('./helpers/retained-memory-child.ts', import.meta.url).pathname;
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', '@tapjs/typescript/import', child], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
  t.equal(r.status, 0, r.stderr);
  const { events, bytesPerEvent } = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { events: number; bytesPerEvent: number };
  t.equal(events, 740, 'ten replays of the ten-call trace');
  // Measured: ~590 bytes per event; ~7,500 when values still referenced the socket reads.
  t.ok(bytesPerEvent < 2000, `then an event holds ${Math.round(bytesPerEvent)} bytes`);
});
