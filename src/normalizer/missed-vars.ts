// After a (re)connect, the CRM variables of channels that were already up: their VarSet events
// went by while the bridge was away. Each channel is asked (AMI Getvar or ARI getChannelVar) for
// OMLCUSTOMDIALPLANVARS, the Omlcrm… variables it lists and CRMBRIDGE_ORIGIN; what is set goes
// into the snapshot (`vars`), which the normalizer applies before it announces a call it picks up.
import { EXPORT_LIST, exportedNames, ORIGIN_VARIABLE } from '../events/crm-vars.js';
import type { SnapshotChannel } from './tracker.js';

const READS_AT_ONCE = 4;

/** Reads one variable of one channel: its value, or null when unset (or the channel is gone). */
export type VarReader = (channel: SnapshotChannel, name: string) => Promise<string | null>;

/**
 * Returns the channels with `vars` filled in (same order), and how many values were found.
 * `alive()` false stops early (the connection the snapshot came from is gone).
 */
export async function readMissedVars(channels: readonly SnapshotChannel[], read: VarReader, alive: () => boolean = () => true): Promise<{ channels: SnapshotChannel[]; found: number }> {
  const safe = (ch: SnapshotChannel, name: string) => read(ch, name).catch(() => null);
  let found = 0;
  const one = async (ch: SnapshotChannel): Promise<SnapshotChannel> => {
    const vars: Array<[string, string]> = [];
    const [list, origin] = await Promise.all([safe(ch, EXPORT_LIST), safe(ch, ORIGIN_VARIABLE)]);
    if (origin) vars.push([ORIGIN_VARIABLE, origin]);
    if (list) {
      vars.push([EXPORT_LIST, list]);
      const names = exportedNames(list);
      const values = await Promise.all(names.map((n) => safe(ch, n)));
      names.forEach((n, i) => {
        const v = values[i];
        if (v !== null && v !== undefined) vars.push([n, v]);
      });
    }
    found += vars.length;
    return vars.length ? { ...ch, vars } : ch;
  };
  const out = [...channels];
  for (let i = 0; i < out.length && alive(); i += READS_AT_ONCE) {
    const done = await Promise.all(out.slice(i, i + READS_AT_ONCE).map(one));
    done.forEach((ch, j) => (out[i + j] = ch));
  }
  return { channels: out, found };
}
