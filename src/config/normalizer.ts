// What the normalizer is told from a config: the bridge's tracker and the warm-up's scratch one
// (src/warm-up.ts) are made from the same settings.
import type { NormalizerOptions } from '../normalizer/index.js';
import type { BridgeConfig } from './schema.js';

export function normalizerOptions(config: BridgeConfig): Omit<NormalizerOptions, 'ids' | 'onDroppedVariable' | 'onCap'> {
  return {
    server: config.pbx.name,
    inboundContexts: config.calls.inboundContexts,
    agentContexts: config.calls.agentContexts,
    extensionPattern: config.calls.extensionPattern,
    agentsFromPbx: config.calls.agentsFromPbx,
    agents: config.agents,
    maxCalls: config.calls.maxInProgress,
    maxAgents: config.calls.maxAgents,
  };
}
