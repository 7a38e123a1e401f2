// The ordering key of an event in durable sinks: deliveries of one partition happen one at a time,
// in order (the outbox's head-of-partition rule). A call's events share its callId; an agent's
// events (agent.*, no callId) share `agent:<id>`.
import { type BridgeEvent, isCallEvent } from '../events/types.js';

export function partitionOf(e: BridgeEvent): string {
  return isCallEvent(e) ? e.callId : `agent:${e.agent.id}`;
}
