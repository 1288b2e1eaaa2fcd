/**
 * Operations: the long work a reconcile starts instead of waiting for — an abra call, a look at
 * the swarm, a run's attempt — each tracked under the key of the object it belongs to, like
 * the pod Prow's plank starts for a job and observes on its next pass. A reconcile starts one
 * (`start`), returns, and is called again when it has finished (`onDone`); it then takes the
 * result (`take`) and decides the next step. One operation per key at a time: what a key is
 * doing is never in doubt. The operation runs under its own signal, aborted by `abort`
 * (cancel, a deadline observed by the reconcile, shutdown).
 */

export type OpOutcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface Op {
  label: string;
  abort: AbortController;
  startedAt: number;
  done: Promise<void>;
  outcome: OpOutcome<unknown> | null;
}

export class Operations {
  private readonly ops = new Map<string, Op>();

  /** `onDone(key)` is told when an operation of `key` has finished (its controller enqueues the key). */
  constructor(private readonly onDone: (key: string) => void) {}

  /** Starts `fn` as the operation of `key`. A key has one operation at a time. */
  start<T>(key: string, label: string, fn: (signal: AbortSignal) => Promise<T>, parent?: AbortSignal): void {
    const current = this.ops.get(key);
    if (current && current.outcome === null) throw new Error(`${key} is already running ${current.label}; cannot start ${label}`);
    const abort = new AbortController();
    const onParentAbort = () => abort.abort(parent?.reason);
    if (parent) {
      if (parent.aborted) abort.abort(parent.reason);
      else parent.addEventListener('abort', onParentAbort, { once: true });
    }
    const op: Op = { label, abort, startedAt: Date.now(), outcome: null, done: Promise.resolve() };
    this.ops.set(key, op);
    op.done = (async () => {
      try {
        // Begun after the reconcile that starts it has returned: whatever an operation does before
        // its first wait (reading files, spawning a process) is the operation's time, not the
        // reconcile's, which must return quickly (docs/architecture.md).
        await new Promise((resolve) => setImmediate(resolve));
        op.outcome = { ok: true, value: await fn(abort.signal) };
      } catch (error) {
        op.outcome = { ok: false, error };
      }
      // The parent (the controller's shutdown signal) outlives its operations: let go of each.
      parent?.removeEventListener('abort', onParentAbort);
      this.onDone(key);
    })();
  }

  /** The operation of `key` that is still running, if any. */
  running(key: string): { label: string; startedAt: number } | null {
    const op = this.ops.get(key);
    return op && op.outcome === null ? { label: op.label, startedAt: op.startedAt } : null;
  }

  /** The outcome of `key`'s finished operation, once: taking it clears it. */
  take<T>(key: string): (OpOutcome<T> & { label: string }) | null {
    const op = this.ops.get(key);
    if (!op || op.outcome === null) return null;
    this.ops.delete(key);
    return { ...(op.outcome as OpOutcome<T>), label: op.label };
  }

  /** Stops `key`'s running operation with `reason` (it finishes, failing with it). */
  abort(key: string, reason: Error): boolean {
    const op = this.ops.get(key);
    if (!op || op.outcome !== null) return false;
    op.abort.abort(reason);
    return true;
  }

  /** Stops every running operation and waits for them all to finish. */
  async stopAll(reason: Error): Promise<void> {
    const running = [...this.ops.values()].filter((o) => o.outcome === null);
    for (const op of running) op.abort.abort(reason);
    await Promise.all(running.map((o) => o.done));
  }
}
