// Waiting for a condition that a test cannot be told about directly (a server let go of a stream,
// a sink finished a retry): checked again after the event loop has had a turn, until a deadline.

/** Resolves once `cond()` holds, or rejects naming `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
