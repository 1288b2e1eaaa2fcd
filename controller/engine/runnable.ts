import type { Logger } from '../model/log.js';

/**
 * Everything that runs for as long as the controller does — the spec watcher, each controller's
 * work queue, the janitor, the forge's poller and reporter, the HTTP server — is a Runnable
 * (controller-runtime's `manager.Runnable`): `start` runs it until `signal` aborts, then it stops
 * what it does and resolves. It calls `ready` once it is serving, so the next one starts only
 * then. The manager owns them all and stops them in the reverse of their declared order.
 */
export interface Runnable {
  readonly name: string;
  start(signal: AbortSignal, ready: () => void): Promise<void>;
}

interface Running {
  runnable: Runnable;
  abort: AbortController;
  done: Promise<void>;
}

/** Runnables started in order and stopped in reverse. */
export class RunGroup {
  private readonly running: Running[] = [];

  constructor(private readonly logger: Logger) {}

  /** Starts `r` and waits until it is ready; a runnable that fails before that fails the start. */
  async start(r: Runnable): Promise<void> {
    const abort = new AbortController();
    let markReady!: () => void;
    const isReady = new Promise<void>((resolve) => (markReady = resolve));
    const done = r.start(abort.signal, markReady);
    this.running.push({
      runnable: r,
      abort,
      done: done.catch((e: unknown) => this.logger.error({ runnable: r.name, error: (e as Error).message }, 'runnable failed')),
    });
    await Promise.race([
      isReady,
      done.then(() => {
        throw new Error(`${r.name} stopped before it was ready`);
      }),
    ]);
  }

  /** Stops every runnable, the last started first, each given `reason`. */
  async stop(reason: Error): Promise<void> {
    for (const r of [...this.running].reverse()) {
      r.abort.abort(reason);
      await r.done;
    }
    this.running.length = 0;
  }
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** A periodic nudge (a resync, a heartbeat): a runnable like the rest, stopped with them. */
export function every(name: string, ms: number, tick: () => void): Runnable {
  return {
    name,
    start: async (signal, ready) => {
      const timer = setInterval(tick, ms);
      timer.unref();
      ready();
      await aborted(signal);
      clearInterval(timer);
    },
  };
}
