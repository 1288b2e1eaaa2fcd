import type { Store } from '../../state/store.js';
import type { Config } from '../config.js';
import type { ForgeSecrets } from '../forge/secrets.js';
import { ForgeService } from '../forge/service.js';
import type { Logger } from '../log.js';
import type { StatePaths } from '../paths.js';
import { Metrics } from './metrics.js';
import { HttpServer } from './server.js';
import { aborted, type Runnable } from '../runtime/runnable.js';
import type { Registry } from 'prom-client';

/**
 * What `cc-ci serve` runs beside the Manager: the HTTP server and, when a forge is configured,
 * the forge intake, poller and reporter. The token and secret come in already read
 * (readForgeSecrets); nothing listens or polls until start().
 */
export class Frontends {
  readonly forge: ForgeService | null;
  private readonly http: HttpServer;
  private readonly log: Logger;

  constructor(private readonly o: { config: Config; paths: StatePaths; logger: Logger; store: Store; secrets: ForgeSecrets | null; registries?: Registry[] }) {
    this.log = o.logger.child({ component: 'http' });
    const metrics = new Metrics(o.store, o.registries ?? []);
    this.forge = ForgeService.fromConfig({
      ...o,
      runUrl: (name) => `${this.http.baseUrl}/runs/${encodeURIComponent(name)}`,
      counters: metrics,
    });
    this.http = new HttpServer({ ...o, metrics, webhook: this.forge?.webhook ?? null });
  }

  /** What `cc-ci serve` adds to the manager's runnables: the forge's, then the HTTP server. */
  runnables(): Runnable[] {
    const http: Runnable = {
      name: 'http server',
      start: async (signal, ready) => {
        try {
          const address = await this.http.listen();
          this.log.info({ address, publicUrl: this.o.config.http.publicUrl ?? null }, 'HTTP server listening');
        } catch (e) {
          // Without a webhook to receive the controller is still useful (specs, CLI, poll mode), so a
          // busy port is loud but not fatal; with one it would silently drop every delivery.
          if (this.forge?.webhook) throw e;
          this.log.error({ error: e instanceof Error ? e.message : String(e) }, 'HTTP server could not listen; serving without web pages');
        }
        if (this.forge && !this.o.config.http.publicUrl) {
          this.log.warn('http.publicUrl is not set: links on pull requests point at the address cc-ci listens on');
        }
        ready();
        await aborted(signal);
        await this.http.close();
      },
    };
    return [...(this.forge?.runnables() ?? []), http];
  }
}
