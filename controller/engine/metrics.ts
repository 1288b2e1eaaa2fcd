import { Histogram, Registry } from 'prom-client';

/**
 * The controller's own metrics, on a registry of its own (the HTTP server's /metrics merges it
 * with its own; tests may build several controllers in one process).
 */
export class RuntimeMetrics {
  readonly registry = new Registry();
  /** How long each reconcile call took. A reconcile observes, compares and acts, and returns:
   *  long work runs as an operation it starts and looks at later, so this stays in milliseconds. */
  readonly reconcileSeconds: Histogram<'controller'>;
  /** The longest reconcile call per controller since the start, for the log and the tests. */
  readonly longest = new Map<string, { ms: number; key: string }>();

  constructor() {
    this.reconcileSeconds = new Histogram({
      name: 'ccci_reconcile_duration_seconds',
      help: 'Duration of one reconcile call, by controller',
      labelNames: ['controller'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
  }

  observe(controller: string, key: string, ms: number): void {
    this.reconcileSeconds.observe({ controller }, ms / 1000);
    const prev = this.longest.get(controller);
    if (!prev || ms > prev.ms) this.longest.set(controller, { ms, key });
  }
}
