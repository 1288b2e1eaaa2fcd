import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Store } from '../../state/store.js';
import type { RunEvent, RunRecord } from '../../state/types.js';

/**
 * Tails a run's log from the store: replays from a sequence number, then follows new events
 * until the run is Done. Works across processes (the store is the channel), so `cc-ci logs -f`
 * follows a run that `cc-ci serve` is executing. A caller that writes to a slow reader awaits in
 * `onEvent` (the next line is read only then); replay yields to the event loop between batches;
 * `wait` replaces the poll between looks (the server wakes on the store's change events).
 */
export async function followRun(
  store: Store,
  name: string,
  onEvent: (e: RunEvent) => void | Promise<void>,
  opts: { fromSeq?: number; follow: boolean; pollMs?: number; signal?: AbortSignal; batch?: number; wait?: () => Promise<void> },
): Promise<RunRecord | undefined> {
  const batchSize = opts.batch ?? 500;
  let seq = opts.fromSeq ?? 0;
  for (;;) {
    if (opts.signal?.aborted) return store.getRun(name);
    const batch = store.eventsSince(name, seq, batchSize);
    for (const e of batch) {
      await onEvent(e);
      seq = e.seq;
    }
    if (batch.length === batchSize) {
      await yieldToLoop();
      continue;
    }
    const run = store.getRun(name);
    if (!run) return undefined;
    if (!opts.follow || opts.signal?.aborted) return run;
    if (run.phase === 'Done') {
      // Events written in the same instant as the final phase change are read once more.
      const rest = store.eventsSince(name, seq, 10_000);
      for (const e of rest) await onEvent(e);
      return run;
    }
    await (opts.wait ? opts.wait() : new Promise((r) => setTimeout(r, opts.pollMs ?? 200)));
  }
}

/** One human line per event: elapsed time, then the text; tier and phase lines stand out. A kind
 *  this version does not know (an event from a newer server, `cc-ci logs --server`) is plain text. */
export function formatEvent(e: Pick<RunEvent, 'ts' | 'text'> & { kind: string }, t0: number): string {
  const t = `[${((e.ts - t0) / 1000).toFixed(1).padStart(6)}s]`;
  switch (e.kind) {
    case 'phase':
      return `${t} ==> ${e.text}`;
    case 'tier':
      return `${t} --> ${e.text}`;
    case 'result':
      return `${t} *** ${e.text}`;
    case 'warn':
      return `${t} WARN ${e.text}`;
    case 'error':
      return `${t} ERROR ${e.text}`;
    case 'out':
    case 'err':
      return `${t}   | ${e.text.trimStart()}`;
    default:
      return `${t} ${e.text}`;
  }
}
