// The measuring end of a benchmark in a process of its own, so that what it does is not charged
// to (or delayed by) the AMI load generator. Started by receiver.ts and sse.ts; not run by hand.
//   --role receiver   the CRM: receiver.ts's HTTP server
//   --role counter    the CRM that only counts: counting-receiver.ts (the screen-pop backlog)
//   --role sse        the agents' browsers: sse.ts's SSE streams
import type net from 'node:net';
import { parseArgs } from 'node:util';
import { listenCountingReceiver } from './counting-receiver.js';
import { Collector, listenReceiver } from './receiver.js';
import { serveParent } from './run.js';
import { sseClients } from './sse.js';

const { values } = parseArgs({ options: { role: { type: 'string' } }, strict: true });
if (values.role === 'receiver') {
  const c = new Collector();
  const server = await listenReceiver(c);
  serveParent({ port: (server.address() as net.AddressInfo).port }, { count: () => ({ unique: c.d.at.length, requests: c.d.requests }), dump: () => ({ dump: c.d }) });
} else if (values.role === 'counter') {
  const { server, counts } = await listenCountingReceiver();
  serveParent({ port: (server.address() as net.AddressInfo).port }, { count: () => ({ ...counts() }) });
} else if (values.role === 'sse') sseClients();
else throw new Error(`bench/harness/measure-child.ts: --role receiver|counter|sse (is '${String(values.role)}')`);
