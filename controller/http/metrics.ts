import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ForgeCounters } from '../forge/service.js';
import type { Store } from '../../state/store.js';

/**
 * Prometheus metrics at GET /metrics, on a registry of our own (not prom-client's global one, so
 * tests can build several servers in one process). Runs by phase and result are read from the
 * store at scrape time; deliveries, intake decisions and forge reports are counted as they happen.
 */
export class Metrics implements ForgeCounters {
  private readonly own = new Registry();
  /** What GET /metrics serves: ours, merged with the controller's (reconcile durations). */
  readonly registry: Registry;
  private readonly deliveries: Counter<'outcome'>;
  private readonly decisions: Counter<'outcome'>;
  private readonly reports: Counter<'outcome'>;

  constructor(store: Store, others: Registry[] = []) {
    const registers = [this.own];
    // The event-loop delay monitor samples every 10 ms by default: most of an idle server's CPU. A
    // coarser one still sees a blocked loop (a late sample), at a fraction of the cost.
    collectDefaultMetrics({ register: this.own, prefix: 'ccci_', eventLoopMonitoringPrecision: 500 });
    new Gauge({
      name: 'ccci_runs',
      help: 'Runs in the state store, by phase and result',
      labelNames: ['phase', 'result'] as const,
      registers,
      collect() {
        this.reset();
        const rows = store.db.prepare('SELECT phase, result, COUNT(*) AS n FROM runs GROUP BY phase, result').all() as {
          phase: string;
          result: string | null;
          n: number;
        }[];
        for (const r of rows) this.set({ phase: r.phase, result: r.result ?? 'none' }, Number(r.n));
      },
    });
    new Gauge({
      name: 'ccci_teardown_failures',
      help: 'Runs on record whose teardown failed after their verdict (apps or volumes may be left on the swarm for the janitor)',
      registers,
      collect() {
        this.set(Number((store.db.prepare('SELECT COUNT(*) AS n FROM runs WHERE teardown_problem IS NOT NULL').get() as { n: number }).n));
      },
    });
    this.deliveries = new Counter({
      name: 'ccci_webhook_deliveries_total',
      help: 'Forge webhook deliveries, by outcome (accepted, duplicate, bad-signature, ignored-<reason>, disabled)',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.decisions = new Counter({
      name: 'ccci_forge_comments_total',
      help: 'Forge comments decided by the intake, by outcome (run, replied, ignored, deferred)',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.reports = new Counter({
      name: 'ccci_forge_reports_total',
      help: 'Forge report passes that posted a final state (ok) or failed (error)',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.registry = others.length ? Registry.merge([this.own, ...others]) : this.own;
  }

  delivery(outcome: string): void {
    this.deliveries.inc({ outcome });
  }

  intake(outcome: string): void {
    this.decisions.inc({ outcome });
  }

  report(outcome: 'ok' | 'error'): void {
    this.reports.inc({ outcome });
  }
}
