// Screen-pop benchmark: latency from the AMI ring frame written to the SSE message parsed on the
// ringing agent's stream, with --agents streams attached; daemon memory per connected agent.
//   npm run bench:screenpop [-- options]     method and options: BENCHMARKS.md#method-screen-pop
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Stamper, startAmiServer } from './harness/ami.js';
import { waitUntil } from './harness/feed.js';
import { perAgentKB, memReadings, takeHeapSnapshot, type HeapSummary, type MemReading } from './harness/daemon-memory.js';
import { mintToken } from './harness/dist.js';
import { requireBuild, ROOT } from './harness/env.js';
import { endHead, readOptions, resultsHead, writeResults } from './harness/report.js';
import { canPin, daemonLogin, pbxYaml, popYaml, freePort, pinSelf, removeDir, runBench, sleep, startDaemon, tempDir, type Exit } from './harness/run.js';
import { everySecond, meanMax, NPROC, procSample, waitForQuiet, type ProcSample } from './harness/sample.js';
import { startCountingReceiver } from './harness/counting-receiver.js';
import { mergeDumps, startClients, type Clients, type ClientsDump, type Counts } from './harness/sse.js';
import { latencyStats, round, type Stats } from './harness/stats.js';
import { analyzeRings, markdown, OPTIONS, type Options, type RingResult } from './screenpop/report.js';
import { BUFFER_PER_AGENT, calibrate, feedPaced, feedUnpaced, loadTrace, TRACE_PATH, type FeedResult } from './screenpop/traffic.js';

const SINGLE_THREADED_GC = '--single-threaded-gc';

// ------------------------------------------------------------------------------------------------
// The daemon

function daemonConfig(amiPort: number, httpPort: number, dir: string, secret: string, webhookPort: number | null, pace: number): string {
  return `# written by bench/screenpop.ts
${pbxYaml(amiPort)}calls:
  inboundContexts: [from-pstn]
  agentContexts: [agents]
  extensionPattern: '^[0-9]{2,6}$'
${popYaml(httpPort, secret, webhookPort === null ? undefined : `sinks:\n  - { type: webhook, name: backlog, url: 'http://127.0.0.1:${webhookPort}/backlog', concurrency: 8 }\n`)}outbox:
  path: ${path.join(dir, 'outbox.db')}
${pace >= 0 ? `  deliveriesPerSecondWhilePopping: ${pace}\n` : ''}log:
  level: warn
`;
}

/**
 * --webhook-backlog: `rows` events waiting in the webhook sink's outbox before the daemon starts
 * (1,000 partitions, ~700-byte call events), written with the daemon's own Outbox class.
 */
async function seedBacklog(dir: string, rows: number): Promise<void> {
  const { Outbox } = (await import(path.join(ROOT, 'dist/outbox/index.js'))) as typeof import('../dist/outbox/index.js');
  const outbox = Outbox.open(path.join(dir, 'outbox.db'));
  const payload = (i: number) =>
    JSON.stringify({ specVersion: '1', id: `backlog-${i}`, type: 'call.ringing', time: new Date().toISOString(), server: 'pbx1', callId: `backlog.${i % 1000}`, seq: i, direction: 'inbound', caller: { number: '+4915112345678', name: 'Acme & Sons' }, called: { number: '41004100' }, queue: null, agent: { id: '201', extension: '201', name: 'Zoë Łukasik', interface: 'PJSIP/201' }, channel: { uniqueid: '1795369726.41', name: 'PJSIP/201-00000012' }, vars: { Omlcrmcustomerid: '12345' } });
  for (let i = 0; i < rows; i += 10_000) {
    outbox.enqueueMany(Array.from({ length: Math.min(10_000, rows - i) }, (_, j) => ({ sink: 'backlog', partition: `backlog.${(i + j) % 1000}`, eventId: `backlog-${i + j}`, payload: payload(i + j) })));
  }
  outbox.close();
}

interface Sample {
  /** Seconds since the daemon started. */
  t: number;
  phase: string;
  daemonCpuPct: number | null;
  daemonRssMB: number | null;
  clientsCpuPct: number | null;
  benchCpuPct: number | null;
  machineBusyPct: number;
  /** Machine busy minus daemon, clients and bench: everything else on the machine. */
  otherPct: number;
}

async function main(): Promise<number> {
  const { opts: o, out, note } = readOptions('screenpop', OPTIONS);
  if (o.timing !== 'recorded' && o.timing !== 'back-to-back') throw new Error('--timing must be recorded or back-to-back');
  if (o.pin !== 'auto' && o.pin !== 'none') throw new Error('--pin must be auto or none');
  if (o.harnessGc !== 'single-threaded' && o.harnessGc !== 'default') throw new Error('--harness-gc must be single-threaded or default');
  // This process feeds AMI from the clients' CPU: its GC must be single-threaded too (npm run bench:screenpop gives the flag).
  if (o.harnessGc === 'single-threaded' && !process.execArgv.includes(SINGLE_THREADED_GC)) throw new Error(`--harness-gc single-threaded: run this with node ${SINGLE_THREADED_GC} (npm run bench:screenpop does), or give --harness-gc default`);
  const opts: Options = { ...o, timing: o.timing, pin: o.pin, harnessGc: o.harnessGc };
  if (!/^[0-9]{2,6}$/.test(String(opts.agentBase)) || !/^[0-9]{2,6}$/.test(String(opts.agentBase + opts.agents - 1))) throw new Error('agent extensions must be 2 to 6 digits (calls.extensionPattern)');
  requireBuild('screenpop');

  // CPU placement: daemon on CPU 0; the clients and this process (AMI feeder, sampler) on CPU 1.
  const pin = opts.pin === 'auto' && canPin(NPROC);
  const daemonCpu = pin ? '0' : null;
  const sideCpu = pin ? String(NPROC - 1) : null;
  if (sideCpu) pinSelf(sideCpu);
  const meta = resultsHead("screen pop: AMI ring frame written -> SSE message parsed on the ringing agent's stream; daemon memory per connected agent", note, NPROC);
  const trace = loadTrace(opts.agentBase, opts.agents);
  process.stderr.write(`trace: ${path.relative(ROOT, TRACE_PATH)}: ${trace.frames.length} frames per call (${trace.bytesPerCall} bytes); rewriting ${trace.rewritten.headers.join(', ')}, channel sequence numbers, BridgeUniqueid; agent ${trace.rewritten.agents}\n`);
  const cal = calibrate(trace);
  process.stderr.write(`calibration (crm-bridge replay of 3 calls): ${cal.eventsPerCall} events per call (${Object.entries(cal.eventTypesPerCall).map(([k, v]) => `${k} ${v}`).join(', ')}), ${cal.messagesPerCallToAgent} of them to the agent's stream; rings ${cal.ringAgents.join(', ')}\n`);
  const calls = Math.round(opts.rate * opts.duration);
  const fillCalls = opts.fillCallsPerAgent * opts.agents;
  meta.parameters = {
    trace: path.relative(ROOT, TRACE_PATH),
    agents: opts.agents,
    agentExtensions: `${opts.agentBase}…${opts.agentBase + opts.agents - 1}`,
    routing: 'each call rings one agent (a direct call); call n rings agent base + (n mod agents), so the agents take turns',
    callsPerSec: opts.rate,
    durationS: opts.duration,
    calls,
    timing:
      opts.timing === 'recorded'
        ? `call n starts at n/rate s; its frames keep their recorded gaps (answer +${String(cal.recordedGapsMs.answer)} ms, hangup +${String(cal.recordedGapsMs.hangup)} ms), so ~${round(opts.rate * (cal.recordedGapsMs.last / 1000), 0)} calls are in progress at once`
        : 'back-to-back: each call\'s frames one after the other, at the same frame rate',
    amiFramesPerSec: round(opts.rate * trace.frames.length, 0),
    clientProcesses: opts.clientProcs,
    harnessGc: opts.harnessGc === 'single-threaded' ? `${SINGLE_THREADED_GC} in this process, the SSE clients and the webhook receiver: no GC helper threads competing with the clients for their CPU` : "V8's default (GC helper threads)",
    cpuPlacement: pin ? `taskset: daemon on CPU ${String(daemonCpu)}; SSE clients and this process (AMI feeder, sampler) on CPU ${String(sideCpu)}; other processes on the machine not controlled` : 'not pinned (the scheduler places everything)',
    tokens: 'signed: http.tokenSecret set, one mintToken(secret, agent, 6 h) per agent, sent as ?token=',
    daemonConfig: `http on 127.0.0.1, tokenSecret, 1 screen-pop rule (call.ringing new-tab), ${opts.webhookBacklog > 0 ? `sinks: one webhook (json, concurrency 8) to a local receiver in a child process that only counts them, with ${opts.webhookBacklog} events waiting in its outbox at start; outbox.deliveriesPerSecondWhilePopping ${opts.deliveriesPerSecondWhilePopping < 0 ? 'not set (the daemon\'s default)' : String(opts.deliveriesPerSecondWhilePopping)}` : 'sinks: [] (the screen-pop channel only)'}, bufferPerAgent 200 and keepAliveSeconds 15 (defaults), log warn to a file`,
    fill: opts.fillCallsPerAgent > 0 ? { callsPerAgent: opts.fillCallsPerAgent, calls: fillCalls, maxSeconds: opts.fillMaxSeconds, how: 'unpaced, back-to-back, as fast as the daemon reads AMI' } : null,
    memory: { settleS: opts.settle, readings: opts.readings, what: 'VmRSS and RssAnon from /proc/<daemon>/status; after settleS, read once a second until the last `readings` are within 1 MB (V8 idle GCs done) or 120 s; those last readings reported; no --expose-gc' },
    amiTimestamp: 'wall-clock ms at write time; µs digits = a per-ms counter (keeps event ids unique)',
    latency: 'Date.now() in the client process when the chunk holding the message is read − Date.parse(event.time); event.time is the ms at which the ring frame was written; ms resolution, ±1 ms',
  };
  meta.calibration = cal;
  meta.traceRewriting = trace.rewritten;

  const quiet = opts.quietWait > 0 ? await waitForQuiet(25, opts.quietWait, NPROC) : null;
  if (quiet) process.stderr.write(`machine ${quiet.busyPctAtStart}% busy (of one core) before the run, after waiting ${quiet.waitedS} s\n`);
  meta.machineBeforeRun = quiet;

  const problems: string[] = [];
  const warnings: string[] = [];
  const dir = tempDir('crm-bridge-bench-sp-');
  const secret = randomBytes(32).toString('hex');
  const stamper = new Stamper();
  const ami = await startAmiServer(trace, stamper);
  const httpPort = await freePort();
  const clientsList: Clients[] = [];
  // The harness's own processes (SSE clients, webhook receiver) run with the GC this one has.
  const harnessNodeArgs = opts.harnessGc === 'single-threaded' ? [SINGLE_THREADED_GC] : [];
  for (let i = 0; i < opts.clientProcs; i++) clientsList.push(await startClients(sideCpu, harnessNodeArgs));
  const webhook = opts.webhookBacklog > 0 ? await startCountingReceiver(harnessNodeArgs) : null;
  if (webhook) {
    process.stderr.write(`webhook backlog: ${opts.webhookBacklog} events in the outbox of a webhook sink to a local receiver (pid ${webhook.pid})\n`);
    await seedBacklog(dir, opts.webhookBacklog);
  }
  const daemonStartedAt = Date.now();
  const daemon = startDaemon(dir, 'daemon', daemonConfig(ami.port, httpPort, dir, secret, webhook?.port ?? null, opts.deliveriesPerSecondWhilePopping), { cpu: daemonCpu, nodeArgs: opts.heapSnapshot ? ['--heapsnapshot-signal=SIGUSR2'] : [] });
  let monitor: ReturnType<typeof everySecond<Sample>> | null = null;
  let phaseName = 'start';
  const cpuOf = (phase: string) => {
    const during = (s: Sample) => s.phase === phase;
    const xs = monitor?.samples ?? [];
    return { daemon: meanMax(xs, 'daemonCpuPct', during), clients: meanMax(xs, 'clientsCpuPct', during), bench: meanMax(xs, 'benchCpuPct', during), other: meanMax(xs, 'otherPct', during), machine: meanMax(xs, 'machineBusyPct', during) };
  };
  const memory: MemReading[] = [];
  // A webhook backlog being drained churns the heap: the readings would wait for a stability
  // that cannot come, and the backlog would be gone before the paced run. With one, each
  // reading is taken as it is (and the memory figures of such a run are not the memory results).
  const memWaitS = opts.webhookBacklog > 0 ? 0 : 120;
  const readMemory = async (state: string, streamCount: number, bufferedPerAgent: number): Promise<void> => {
    memory.push(await memReadings(daemon.pid, state, streamCount, bufferedPerAgent, opts.settle, opts.readings, 1024, memWaitS));
  };
  const streams = Array.from({ length: opts.agents }, (_, i) => {
    const agent = String(opts.agentBase + i);
    return { agent, token: mintToken(secret, { kind: 'agent', agentId: agent }, 6 * 3600) };
  });
  const connects: Array<{ streams: number; ok: number; failed: number; ms: number }> = [];
  type Msgs = { expected: number | null; received: number; callExpected: number; callReceived: number };
  let paced: { feed: FeedResult; rings: RingResult; messages: Msgs; latencyByTypeMs: Record<string, Stats>; waitedS: number; cpu: ReturnType<typeof cpuOf> } | null = null;
  let fill: { feed: FeedResult; rings: RingResult; messages: Msgs; waitedS: number; cpu: ReturnType<typeof cpuOf>; bufferedPerAgent: number; processed: { seconds: number; callsPerSec: number; framesPerSec: number } } | null = null;
  let backlog: { seeded: number; deliveredBeforePaced: number; deliveredDuringPaced: number; deliveredPerSecDuringPaced: number; lastedThroughPaced: boolean } | null = null;
  let dump: ClientsDump | null = null;
  let heap: HeapSummary | null = null;
  let exit: Exit | null = null;
  let daemonEnd: ProcSample | null = null;
  const countAll = async () => {
    const cs = await Promise.all(clientsList.map((c) => c.count()));
    return cs.reduce<Counts>(
      (a, c) => ({ rings: a.rings + c.rings, messages: a.messages + c.messages, messagesThisPhase: a.messagesThisPhase + c.messagesThisPhase, callMessagesThisPhase: a.callMessagesThisPhase + c.callMessagesThisPhase, open: a.open + c.open, cut: a.cut + c.cut }),
      { rings: 0, messages: 0, messagesThisPhase: 0, callMessagesThisPhase: 0, open: 0, cut: 0 },
    );
  };
  const setPhase = async (p: number, name: string) => {
    phaseName = name;
    await Promise.all(clientsList.map((c) => c.phase(p)));
  };
  /**
   * Waits until the clients got `calls` call.* messages (and `all` messages, if given) in this
   * phase; 30 s without progress or `capS` overall: gives up.
   */
  const waitMessages = async (calls: number, all: number | null, capS: number): Promise<{ received: number; callReceived: number; waitedS: number }> => {
    const start = Date.now();
    const done = (c: Counts) => (c.callMessagesThisPhase >= calls && (all === null || c.messagesThisPhase >= all)) || daemon.died() !== null;
    await waitUntil(countAll, done, { capMs: capS * 1000, everyMs: 100, stallMs: 30_000, progress: (c) => c.messagesThisPhase });
    await sleep(500); // strays and duplicates
    const c = await countAll();
    return { received: c.messagesThisPhase, callReceived: c.callMessagesThisPhase, waitedS: round((Date.now() - start) / 1000, 1) };
  };
  const connectShare = async (from: number, to: number) => {
    // Stream i goes to process i mod procs.
    const res = await Promise.all(clientsList.map((c, p) => c.connect(httpPort, streams.slice(from, to).filter((_, i) => (from + i) % clientsList.length === p))));
    const r = res.reduce((a, x) => ({ ok: a.ok + x.ok, failed: a.failed + x.failed, ms: Math.max(a.ms, x.ms) }), { ok: 0, failed: 0, ms: 0 });
    connects.push({ streams: to, ...r });
    process.stderr.write(`   streams ${from}…${to - 1}: ${r.ok} attached, ${r.failed} failed, in ${r.ms} ms\n`);
    if (r.failed) problems.push(`${r.failed} of ${to - from} streams could not attach`);
  };
  try {
    const socket = await daemonLogin(daemon, ami.loggedIn);
    // The HTTP server starts before the AMI source: it is listening now.
    monitor = everySecond<Sample>(
      () => ({ daemon: [daemon.pid], clients: clientsList.map((c) => c.pid) }),
      (cpu) => {
        const d = procSample(daemon.pid);
        return { t: round((Date.now() - daemonStartedAt) / 1000, 1), phase: phaseName, daemonCpuPct: cpu.daemon ?? null, daemonRssMB: d ? round(d.rssKB / 1024) : null, clientsCpuPct: cpu.clients ?? null, benchCpuPct: cpu.bench ?? null, machineBusyPct: cpu.machine, otherPct: cpu.other };
      },
    );
    process.stderr.write('\n== memory: 0 streams\n');
    phaseName = 'idle, 0 streams';
    await readMemory('0 streams (AMI logged in, no call yet)', 0, 0);
    const half = Math.floor(opts.agents / 2);
    process.stderr.write(`\n== memory: connecting ${opts.agents} streams in two halves\n`);
    if (half > 0) {
      phaseName = `idle, ${half} streams`;
      await connectShare(0, half);
      await readMemory(`${half} idle streams`, half, 0);
    }
    phaseName = `idle, ${opts.agents} streams`;
    await connectShare(half, opts.agents);
    await readMemory(`${opts.agents} idle streams`, opts.agents, 0);
    const gone = daemon.died();
    if (gone) throw new Error(gone);

    // ---- the paced run
    process.stderr.write(`\n== paced: ${calls} calls at ${opts.rate} calls/s (${opts.timing} timing), ${trace.frames.length} frames each\n`);
    await setPhase(1, 'paced');
    const deliveredBefore = webhook ? await webhook.unique() : 0;
    const feed = await feedPaced(socket, trace, stamper, 0, calls, opts.rate, opts.timing, Date.now() + (opts.duration * 3 + 120) * 1000);
    process.stderr.write(`   sent ${feed.calls} calls (${feed.frames} frames) in ${feed.seconds} s (${feed.framesPerSecAchieved} frames/s; write lateness p99 ${feed.lateMs?.p99} ms, max ${feed.lateMs?.max} ms)\n`);
    // agent.status busy/idle come once per call only when an agent's calls never overlap (the
    // agents take turns: one call each per agents/rate s; a call lasts the recording's length).
    const overlap = opts.timing === 'recorded' && opts.agents / opts.rate <= cal.recordedGapsMs.last / 1000 + 0.5;
    const expectedCallPaced = calls * cal.callMessagesPerCallToAgent;
    const expectedPaced = calls * cal.messagesPerCallToAgent;
    const w = await waitMessages(expectedCallPaced, overlap ? null : expectedPaced, 120);
    if (webhook) {
      const deliveredAfter = await webhook.unique();
      backlog = { seeded: opts.webhookBacklog, deliveredBeforePaced: deliveredBefore, deliveredDuringPaced: deliveredAfter - deliveredBefore, deliveredPerSecDuringPaced: round((deliveredAfter - deliveredBefore) / feed.seconds, 0), lastedThroughPaced: deliveredAfter < opts.webhookBacklog };
      process.stderr.write(`   webhook: ${backlog.deliveredDuringPaced} events delivered during the paced run (${backlog.deliveredPerSecDuringPaced}/s), ${deliveredBefore} before it; backlog ${backlog.lastedThroughPaced ? 'still there at its end' : 'GONE before its end'}\n`);
      if (!backlog.lastedThroughPaced) problems.push(`the webhook backlog (${opts.webhookBacklog}) was delivered before the paced run ended: raise --webhook-backlog`);
    }
    phaseName = 'after paced';
    const cpuPaced = cpuOf('paced');
    const mid = mergeDumps(await Promise.all(clientsList.map((c) => c.dump())));
    const rings = analyzeRings(trace, mid, 1, 0, calls, feed.startedAt);
    const byType: Record<string, Stats> = {};
    for (const [k, v] of Object.entries(mid.latency)) if (k.startsWith('1|')) byType[k.slice(2)] = latencyStats(v);
    paced = { feed, rings, messages: { expected: overlap ? null : expectedPaced, received: w.received, callExpected: expectedCallPaced, callReceived: w.callReceived }, latencyByTypeMs: byType, waitedS: w.waitedS, cpu: cpuPaced };
    process.stderr.write(`   rings ${rings.ringsReceived}/${rings.ringsExpected} (lost ${rings.lost}, dup ${rings.duplicates}, wrong agent ${rings.wrongAgent}); latency p50 ${rings.latencyMs.p50} p95 ${rings.latencyMs.p95} p99 ${rings.latencyMs.p99} max ${rings.latencyMs.max} ms; messages ${w.received}/${overlap ? '(agents\' calls overlap: agent.status not counted)' : expectedPaced}, call.* ${w.callReceived}/${expectedCallPaced}\n`);
    if (rings.lost) problems.push(`paced: ${rings.lost} of ${calls} rings never reached their agent (e.g. ${rings.lostCalls.slice(0, 5).join(', ')})`);
    if (rings.duplicates) problems.push(`paced: ${rings.duplicates} rings arrived twice`);
    if (rings.wrongAgent) problems.push(`paced: ${rings.wrongAgent} rings reached another agent's stream`);
    if (rings.unexpected) problems.push(`paced: ${rings.unexpected} rings of calls that were not sent`);
    if (w.callReceived !== expectedCallPaced) problems.push(`paced: ${w.callReceived} call.* messages on the agents' streams, expected ${expectedCallPaced} (${cal.callMessagesPerCallToAgent} per call)`);
    if (!overlap && w.received !== expectedPaced) problems.push(`paced: ${w.received} messages on the agents' streams, expected ${expectedPaced} (${cal.messagesPerCallToAgent} per call)`);
    const pacedPerAgent = (await countAll()).messages / opts.agents;
    await readMemory(`${opts.agents} streams after the paced run`, opts.agents, round(Math.min(BUFFER_PER_AGENT, pacedPerAgent), 1));
    const gone2 = daemon.died();
    if (gone2) throw new Error(gone2);

    // ---- the fill phase: every agent's buffer full
    if (fillCalls > 0) {
      process.stderr.write(`\n== fill: ${fillCalls} calls back-to-back, unpaced (≤ ${opts.fillMaxSeconds} s), so every agent is rung ${opts.fillCallsPerAgent} more times\n`);
      await setPhase(2, 'fill');
      let lastReport = Date.now();
      const ff = await feedUnpaced(socket, trace, stamper, calls, fillCalls, opts.fillMaxSeconds, Date.now() + (opts.fillMaxSeconds * 2 + 120) * 1000, (n) => {
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          process.stderr.write(`   … ${n} calls\n`);
        }
      });
      process.stderr.write(`   sent ${ff.calls} calls (${ff.frames} frames) in ${ff.seconds} s: ${ff.framesPerSecAchieved} frames/s, ${ff.callsPerSecAchieved} calls/s\n`);
      if (ff.calls < fillCalls) warnings.push(`fill: only ${ff.calls} of ${fillCalls} calls within --fill-max-seconds ${opts.fillMaxSeconds}: buffers not full`);
      const expectedFill = ff.calls * cal.messagesPerCallToAgent;
      const expectedCallFill = ff.calls * cal.callMessagesPerCallToAgent;
      const wf = await waitMessages(expectedCallFill, expectedFill, 300);
      phaseName = 'after fill';
      const cpuFill = cpuOf('fill');
      const fd = mergeDumps(await Promise.all(clientsList.map((c) => c.dump())));
      const fr = analyzeRings(trace, fd, 2, calls, ff.calls, ff.startedAt);
      const buffered = Math.min(BUFFER_PER_AGENT, (await countAll()).messages / opts.agents);
      const processedS = Number.isFinite(fr.lastArrivalAt) ? (fr.lastArrivalAt - ff.startedAt) / 1000 : Number.NaN;
      fill = {
        feed: ff,
        rings: fr,
        messages: { expected: expectedFill, received: wf.received, callExpected: expectedCallFill, callReceived: wf.callReceived },
        waitedS: wf.waitedS,
        cpu: cpuFill,
        bufferedPerAgent: round(buffered, 1),
        processed: { seconds: round(processedS, 2), callsPerSec: round(ff.calls / processedS, 0), framesPerSec: round(ff.frames / processedS, 0) },
      };
      process.stderr.write(`   rings ${fr.ringsReceived}/${fr.ringsExpected} (lost ${fr.lost}, dup ${fr.duplicates}, wrong agent ${fr.wrongAgent}); latency (unpaced, not the figure asked for) p50 ${fr.latencyMs.p50} p99 ${fr.latencyMs.p99} ms; messages ${wf.received}/${expectedFill}\n`);
      if (fr.lost) problems.push(`fill: ${fr.lost} of ${ff.calls} rings never reached their agent`);
      if (fr.duplicates) problems.push(`fill: ${fr.duplicates} rings arrived twice`);
      if (fr.wrongAgent) problems.push(`fill: ${fr.wrongAgent} rings reached another agent's stream`);
      if (wf.received !== expectedFill) problems.push(`fill: ${wf.received} messages on the agents' streams, expected ${expectedFill}`);
      process.stderr.write(`   the daemon took ${fill.processed.seconds} s from the first frame to the last ring's arrival: ${fill.processed.callsPerSec} calls/s, ${fill.processed.framesPerSec} AMI frames/s\n`);
      await readMemory(`${opts.agents} streams, buffers full (fill)`, opts.agents, round(buffered, 1));
    }
    const c = await countAll();
    if (c.open !== opts.agents) problems.push(`${c.open} of ${opts.agents} streams open at the end`);
    if (opts.heapSnapshot) {
      process.stderr.write('\n== heap snapshot of the daemon (SIGUSR2; a full GC, then the live heap written to its temp dir)\n');
      phaseName = 'heap snapshot';
      try {
        heap = await takeHeapSnapshot(daemon.pid, dir);
        process.stderr.write(`   live heap ${heap.liveMB} MB in ${heap.nodes} objects; sliced strings: ${heap.slicedStrings.count} (${heap.slicedStrings.selfMB} MB) keeping ${heap.slicedStrings.parents} parent strings of ${heap.slicedStrings.parentsMB} MB alive (median parent ${heap.slicedStrings.parentMedianKB} KB); held by properties ${heap.slicedStrings.heldBy.slice(0, 8).map((h) => `${h.name} ${h.count}`).join(', ')}\n`);
      } catch (err) {
        warnings.push(`heap snapshot: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    problems.push((err as Error).message);
  } finally {
    await monitor?.stop();
    daemonEnd = procSample(daemon.pid);
    try {
      await Promise.all(clientsList.map((c) => c.closing()));
      dump = mergeDumps(await Promise.all(clientsList.map((c) => c.dump())));
    } catch (err) {
      problems.push(`clients: ${(err as Error).message}`);
    }
    exit = await daemon.stop(problems);
    for (const c of clientsList) await c.close();
    await ami.close();
    await webhook?.close();
  }
  const died = daemon.died();
  if (died) problems.push(died);
  if (exit && (exit.code !== 0 || exit.signal)) problems.push(`daemon exit after SIGTERM: code ${exit.code}, signal ${exit.signal}`);
  if (ami.logins !== 1) problems.push(`the daemon logged in to AMI ${ami.logins} times (reconnected)`);
  if (dump) {
    if (dump.cut.length) problems.push(`${dump.cut.length} streams were cut by the daemon (first: agent ${dump.cut[0]?.agent} in phase ${dump.cut[0]?.phase})`);
    if (dump.refused.length) problems.push(`${dump.refused.length} streams refused (first: ${JSON.stringify(dump.refused[0])})`);
    if (dump.foreign) problems.push(`${dump.foreign} messages naming another agent reached an agent's stream`);
    if (dump.badMessages) problems.push(`${dump.badMessages} unparseable SSE messages`);
    if (dump.idMismatch) problems.push(`${dump.idMismatch} messages whose SSE id is not the event id`);
  }
  const logLines = daemon.logLines();
  removeDir(dir);
  endHead(meta);
  for (const m of memory) if (!m.stable) warnings.push(`memory '${m.state}': the readings did not settle within 1 MB`);
  const other = paced?.cpu.other;
  if (other && (other.mean > 15 || other.max > 50)) warnings.push(`other processes used ${other.mean}% of a core on average during the paced run (up to ${other.max}% in one second): figures disturbed`);

  const byState = (s: string) => memory.find((m) => m.state.startsWith(s));
  const m0 = memory[0];
  const mHalf = memory.find((m) => m.state.endsWith('idle streams') && m.streams < opts.agents);
  const mAll = byState(`${opts.agents} idle streams`);
  const mRun = byState(`${opts.agents} streams after the paced run`);
  const mFill = byState(`${opts.agents} streams, buffers full`);
  const perAgent = {
    idleStreams: m0 && mAll ? perAgentKB(m0, mAll, opts.agents) : null,
    idleStreamsMarginalSecondHalf: mHalf && mAll ? perAgentKB(mHalf, mAll, opts.agents - mHalf.streams) : null,
    afterPacedRun: m0 && mRun ? perAgentKB(m0, mRun, opts.agents) : null,
    buffersFull: m0 && mFill ? perAgentKB(m0, mFill, opts.agents) : null,
    buffersFullMinusIdleStreams: mAll && mFill ? perAgentKB(mAll, mFill, opts.agents) : null,
  };
  const results = {
    daemonStartedAt,
    connects,
    memory,
    perAgentKB: perAgent,
    paced,
    webhookBacklog: backlog,
    fill,
    heapSnapshot: heap,
    keepAliveComments: dump?.comments ?? null,
    isolation: dump ? { foreignMessages: dump.foreign, idMismatch: dump.idMismatch, badMessages: dump.badMessages } : null,
    streamsCut: dump?.cut.slice(0, 20) ?? null,
    daemon: { exit, peakRssMB: daemonEnd ? round(daemonEnd.hwmKB / 1024) : null, cpuSeconds: daemonEnd ? round(daemonEnd.cpuSec, 2) : null, logLines: logLines.length, firstLogLines: logLines.slice(0, 5) },
    samples: monitor?.samples ?? [],
    problems,
    warnings,
    ok: problems.length === 0,
  };
  const table = markdown(meta, results as unknown as Record<string, unknown>, opts, cal);
  writeResults(out, table, { ...meta, results, markdown: table });
  return problems.length === 0 ? 0 : 1;
}

// ------------------------------------------------------------------------------------------------

await runBench('screenpop.ts', main);
