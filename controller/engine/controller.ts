import type { Logger } from '../model/log.js';
import { WorkQueue, type ReconcileResult } from './workqueue.js';
import type { RuntimeMetrics } from './metrics.js';
import { aborted, type Runnable } from './runnable.js';

/**
 * A controller (controller-runtime's `Controller`): a keyed work queue and one reconcile
 * function. The reconcile observes, compares, acts — starting long work as an operation rather
 * than waiting for it — and returns when to look again; only the controller decides requeues and
 * backoff: `requeueAfterMs` is "look again then", a thrown error is retried with the queue's
 * backoff, a TerminalError is logged and not retried.
 */

export type { ReconcileResult } from './workqueue.js';

/** A failure that trying again cannot fix (controller-runtime's TerminalError). */
export class TerminalError extends Error {}

export interface ControllerOptions {
  name: string;
  reconcile(key: string): Promise<ReconcileResult | void>;
  concurrency: number;
  logger: Logger;
  metrics: RuntimeMetrics;
  backoff?: { baseMs: number; maxMs: number };
}

/** A reconcile that takes longer than this is logged: it waited on something it should have started. */
const SLOW_MS = 250;

export class Controller implements Runnable {
  readonly name: string;
  private readonly queue: WorkQueue;

  constructor(o: ControllerOptions) {
    this.name = o.name;
    this.queue = new WorkQueue({
      concurrency: o.concurrency,
      ...(o.backoff ? { baseBackoffMs: o.backoff.baseMs, maxBackoffMs: o.backoff.maxMs } : {}),
      reconcile: async (key) => {
        const t0 = performance.now();
        try {
          return await o.reconcile(key);
        } catch (e) {
          if (e instanceof TerminalError) {
            o.logger.error({ controller: o.name, key, error: e.message }, 'reconcile failed for good; not retried');
            return {};
          }
          throw e;
        } finally {
          const ms = performance.now() - t0;
          o.metrics.observe(o.name, key, ms);
          if (ms > SLOW_MS) o.logger.warn({ controller: o.name, key, ms: Math.round(ms) }, 'slow reconcile');
        }
      },
      onError: (key, err, retryInMs) => o.logger.error({ controller: o.name, key, error: (err as Error).message, retryInMs }, 'reconcile failed; will retry'),
    });
  }

  /** Look at `key` now (a hint that something changed; reconciling twice is harmless). */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms);
  }

  async start(signal: AbortSignal, ready: () => void): Promise<void> {
    ready();
    await aborted(signal);
    await this.queue.shutdown();
  }
}
