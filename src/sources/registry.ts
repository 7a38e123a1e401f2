// The one table of event sources: adding a source is adding a folder or file and a row here.
// Order is precedence: the first row the config asks for is the bridge's event source (a
// delivery node's `source:`, else AMI, else ARI alone).
import { amiSource } from './ami/source.js';
import { ariSource } from './ari/source.js';
import { natsSource } from './nats.js';
import type { SourceDefinition, SourcesConfig } from './source.js';

export const SOURCES: readonly SourceDefinition[] = [natsSource, amiSource, ariSource];

/** The definition of the event source `config` asks for; replay is always AMI. */
export function pickSource(config: SourcesConfig, replay = false): SourceDefinition {
  const def = SOURCES.find((d) => d.configured(config, replay));
  if (!def) throw new Error('no event source: the config has neither pbx.ami, pbx.ari nor source');
  return def;
}
