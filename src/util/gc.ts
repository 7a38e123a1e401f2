// A full garbage collection on demand, for the one moment the daemon knows is right for it: after
// the start-up warm-up, before the source connects (src/warm-up.ts). Node offers gc() only with
// --expose-gc on its command line; the flag can be set at run time, after which a new context
// sees gc(). If that ever stops working, nothing happens (V8 collects when it decides to).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

/** Runs a full, blocking GC of this thread's heap; returns whether it could. */
export function collectGarbage(): boolean {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const found: unknown = runInNewContext('typeof gc === "function" ? gc : null');
      gc = typeof found === 'function' ? (found as () => void) : null;
    } catch {
      gc = null;
    }
  }
  if (!gc) return false;
  gc();
  return true;
}
