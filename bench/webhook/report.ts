// bench/webhook.ts's Markdown report.
import { machineLine } from '../harness/report.js';
import { latencyStats, round } from '../harness/stats.js';
import type { Calibration, FeedResult } from './traffic.js';

// ------------------------------------------------------------------------------------------------
// Report

export function markdown(results: Array<Record<string, unknown>>, head: Record<string, unknown>): string {
  type L = ReturnType<typeof latencyStats>;
  const cal = head.calibration as Calibration;
  const rows: string[] = [machineLine(head)];
  rows.push(`Trace: ${cal.framesPerRep} AMI frames and ${cal.eventsPerRep} normalized events per repetition (10 calls): ${round(cal.eventsPerFrame, 4)} events per frame, so 1,000 events/s = ${round(1000 / cal.eventsPerFrame, 0)} AMI frames/s.`);
  rows.push('');
  rows.push('| run | receiver | offered ev/s (achieved) | sent s | events | delivered | lost | dup | delivered ev/s | p50 ms | p95 ms | p99 ms | max ms | p50 / p99 2nd half of sending | daemon CPU s | daemon CPU % of a core | daemon peak RSS MB |');
  rows.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const l = r.latencyMs as L;
    const s2 = r.latencyMsSecondHalfOfSending as L;
    const off = r.offered as { eventsPerSec: number | string; achievedEventsPerSec: number | null };
    const dmn = r.daemon as { cpuSeconds: number; cpuPctOfOneCoreOverRun: number | null; peakRssMB: number | null };
    const feed = r.feed as FeedResult | null;
    rows.push(
      `| ${String(r.run)} | ${r.receiver === 'separate process' ? 'child process' : 'in bench process'} | ${off.eventsPerSec === 'unpaced' ? `unpaced (${String(off.achievedEventsPerSec)})` : `${off.eventsPerSec} (${String(off.achievedEventsPerSec)})`} | ${String(feed?.seconds ?? '-')} | ${String(r.expectedEvents)} | ${String(r.deliveredUnique)} | ${String(r.lost)} | ${String(r.duplicates)} | ${String(r.deliveredPerSec)} | ${l.p50} | ${l.p95} | ${l.p99} | ${l.max} | ${s2.p50} / ${s2.p99} | ${dmn.cpuSeconds} | ${String(dmn.cpuPctOfOneCoreOverRun)} | ${String(dmn.peakRssMB)} |`,
    );
  }
  rows.push('');
  rows.push('| run | delivered ev/s while sending | after sending (drain) | enqueued ev/s while sending | outbox rows: peak (at s) | at end of sending | last delivery s after sending | p50 / p99 call events | p50 / p99 agent events (partitions) | CPU % while sending: daemon / receiver / bench / other work / whole machine (of 200) |');
  rows.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    const b = r.latencyMsByPartition as { callEvents: L; agentEvents: L };
    const c = r.cpuPctDuringFeed as Record<string, { mean: number } | null>;
    const bl = r.backlog as { peakRows: number | null; peakAtS: number | null; rowsAtFeedEnd: number | null; enqueuedPerSecDuringFeed: number | null; lastDeliveryAfterFeedEndS: number | null };
    const q = b.agentEvents;
    rows.push(
      `| ${String(r.run)} | ${String(r.deliveredPerSecDuringFeed)} | ${String(r.deliveredPerSecAfterFeed ?? '-')} | ${String(bl.enqueuedPerSecDuringFeed)} | ${String(bl.peakRows)} (${String(bl.peakAtS)}) | ${String(bl.rowsAtFeedEnd)} | ${String(bl.lastDeliveryAfterFeedEndS)} | ${b.callEvents.p50} / ${b.callEvents.p99} | ${q.p50} / ${q.p99} (${String(r.agentPartitions)}) | ${['daemon', 'receiver', 'bench', 'other', 'machine'].map((k) => String(c[k]?.mean ?? '-')).join(' / ')} |`,
    );
  }
  for (const r of results) {
    const p = r.problems as string[];
    if (p.length) rows.push('', `**${String(r.run)}: ${p.join('; ')}**`);
    const w = r.warnings as string[];
    if (w.length) rows.push('', `${String(r.run)}: ${w.join('; ')}`);
  }
  return rows.join('\n');
}

