// collectGarbage (src/util/gc.ts): a full GC on demand without --expose-gc on the command line,
// on the main thread and in a worker thread.
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { collectGarbage } from '../dist/util/gc.js';

t.test('given a heap holding garbage, when collectGarbage runs, then it says it ran and the garbage is gone', async (t) => {
  t.notOk('gc' in globalThis, 'this process has no gc() of its own');
  let garbage: unknown[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
  const ref = new WeakRef(garbage);
  garbage = null;
  // A WeakRef's target lives until the end of the current job at least.
  await new Promise((r) => setImmediate(r));
  t.equal(collectGarbage(), true);
  t.equal(ref.deref(), undefined, 'the dropped array was collected');
  t.equal(garbage, null);
});

t.test('given a worker thread, when it calls collectGarbage, then it runs there too', async (t) => {
  const url = new URL('../dist/util/gc.js', import.meta.url).href;
  const worker = new Worker(`import(${JSON.stringify(url)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.collectGarbage()))`, { eval: true });
  const answer = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  t.equal(answer, true);
});
