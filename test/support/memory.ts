import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// A collection on demand, to tell what a load left held from what V8 had not collected yet.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes the process holds after a full collection: heap, external and array buffers. */
export function heldBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}
