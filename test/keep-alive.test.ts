// Keep-alive comments on the SSE streams (src/sinks/sse.ts, KeepAlive): every stream gets one per
// interval, and the writes are spread over the interval's ticks instead of all in one turn.
import t from 'tap';
import { KeepAlive } from '../dist/sinks/sse.js';

t.test('given 1,000 streams and a 15 s interval, when one interval of ticks passes, then each stream got exactly one keep-alive, at most 17 per tick', async (t) => {
  const got = new Map<number, number>();
  const perTick: number[] = [];
  let thisTick = 0;
  const k = new KeepAlive<number>(15_000, (s) => {
    got.set(s, (got.get(s) ?? 0) + 1);
    thisTick++;
  });
  for (let i = 0; i < 1000; i++) k.add(i);
  for (let tick = 0; tick < 60; tick++) {
    thisTick = 0;
    k.tick();
    perTick.push(thisTick);
  }
  t.equal(got.size, 1000, 'every stream got one');
  t.ok([...got.values()].every((n) => n === 1), 'and only one');
  t.equal(Math.max(...perTick), 17, 'no tick wrote to more than ceil(1000 / 60) streams');
  t.equal(Math.min(...perTick), 16, 'and none to fewer than floor(1000 / 60)');
  for (let tick = 0; tick < 60; tick++) k.tick();
  t.ok([...got.values()].every((n) => n === 2), 'the next interval: one more each');
});

t.test('given a stream that closed, when its turn comes, then it gets none', async (t) => {
  const got: string[] = [];
  const k = new KeepAlive<string>(1000, (s) => got.push(s));
  k.add('a');
  k.add('b');
  k.add('c');
  k.delete('b');
  for (let tick = 0; tick < 4; tick++) k.tick();
  t.same(got.sort(), ['a', 'c']);
});

t.test('given an interval shorter than a tick, then every tick writes to every stream', async (t) => {
  const got: string[] = [];
  const k = new KeepAlive<string>(100, (s) => got.push(s));
  k.add('a');
  k.add('b');
  k.tick();
  t.same(got, ['a', 'b']);
});

t.test('given a send that closes its stream (too far behind), then the tick goes on to the others', async (t) => {
  const got: string[] = [];
  const k = new KeepAlive<string>(250, (s) => {
    got.push(s);
    if (s === 'a') k.delete('a');
  });
  for (const s of ['a', 'b', 'c']) k.add(s);
  k.tick();
  k.tick();
  t.same(got, ['a', 'b', 'c', 'b', 'c']);
});
