// The durable outbox (SQLite, WAL) and the per-sink dispatcher that delivers from it.
export { INVALID_SINK, Outbox, OutboxVersionError, type DeadLetter, type DeadReason, type EnqueueEntry, type ListOptions, type OutboxItem, type OutboxOptions, type Selection } from './outbox.js';
export {
  Dispatcher,
  MAX_ERROR_LENGTH,
  truncate,
  type Clock,
  type Deliver,
  type DeliveryOutcome,
  type DeliveryResult,
  type DispatcherOptions,
  type RetryPolicy,
  type StopOptions,
} from './dispatcher.js';
export { DeliveryPace, PopActivity, POPPING_WINDOW_MS } from './pace.js';
