import PQueue from 'p-queue';

/**
 * A keyed work queue with the semantics of client-go's workqueue, which controller-runtime
 * builds on:
 *  - a key is never reconciled twice at once (a key added while it is being processed is
 *    remembered and processed once more afterwards);
 *  - a key added many times before it is processed is processed once;
 *  - a reconcile that throws is retried with per-key exponential backoff;
 *  - a reconcile may ask to be looked at again after a delay.
 * Concurrency across keys is bounded by a p-queue.
 */

export interface ReconcileResult {
  /** Look again after this long. Omit when nothing more is expected without an event. */
  requeueAfterMs?: number;
}

export type ReconcileFn = (key: string) => Promise<ReconcileResult | void>;

export interface WorkQueueOptions {
  concurrency: number;
  reconcile: ReconcileFn;
  onError?: (key: string, error: unknown, retryInMs: number) => void;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

export class WorkQueue {
  private readonly pq: PQueue;
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private stopping = false;

  constructor(private readonly options: WorkQueueOptions) {
    this.pq = new PQueue({ concurrency: options.concurrency });
  }

  add(key: string): void {
    if (this.stopping || this.dirty.has(key)) return;
    this.dirty.add(key);
    const t = this.timers.get(key);
    if (t) {
      clearTimeout(t.timer);
      this.timers.delete(key);
    }
    if (!this.processing.has(key)) void this.pq.add(() => this.process(key));
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopping) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  get pending(): number {
    return this.dirty.size;
  }

  /** Resolves when nothing is queued or running (delayed keys do not count). */
  async idle(): Promise<void> {
    await this.pq.onIdle();
  }

  /** Takes no new work; waits for the reconciles in flight. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.pq.clear();
    this.dirty.clear();
    await this.pq.onIdle();
  }

  private async process(key: string): Promise<void> {
    if (!this.dirty.has(key) || this.processing.has(key)) return;
    this.dirty.delete(key);
    this.processing.add(key);
    try {
      const r = await this.options.reconcile(key);
      this.failures.delete(key);
      if (r && r.requeueAfterMs !== undefined) this.addAfter(key, r.requeueAfterMs);
    } catch (e) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const base = this.options.baseBackoffMs ?? 500;
      const delay = Math.min(base * 2 ** (n - 1), this.options.maxBackoffMs ?? 60_000);
      this.options.onError?.(key, e, delay);
      this.addAfter(key, delay);
    } finally {
      this.processing.delete(key);
      if (this.dirty.has(key) && !this.stopping) void this.pq.add(() => this.process(key));
    }
  }
}
