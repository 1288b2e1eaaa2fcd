import type { Registry } from 'prom-client';
import type { ForgeSecrets } from '../clients/forge/secrets.js';
import { aborted, type Runnable } from '../engine/runnable.js';
import { ForgeService } from '../forge/service.js';
import { Metrics } from '../http/metrics.js';
import { HttpServer } from '../http/server.js';
import { ForgeClient } from '../clients/forge/client.js';
import type { Config } from '../model/config.js';
import type { Logger } from '../model/log.js';
import type { StatePaths } from '../model/paths.js';
import type { Store } from '../../state/store.js';

/**
 * What `cc-ci serve` runs beside the manager's own runnables, in start order: when a forge is
 * configured its intake, reporter and poller (controller/forge/service.ts), then the HTTP server.
 * The token and secret come in already read (readForgeSecrets); nothing listens or polls until
 * the manager starts them.
 */
export function serveRunnables(o: {
  config: Config;
  paths: StatePaths;
  logger: Logger;
  store: Store;
  secrets: ForgeSecrets | null;
  registries?: Registry[];
  /** The controller's cancel, for the cancel action of the pages and the API. */
  cancel?: (name: string, reason: string) => void;
}): Runnable[] {
  const log = o.logger.child({ component: 'http' });
  const metrics = new Metrics(o.store, o.registries ?? []);
  // Run links on pull requests name the server's address, known once it listens (read lazily).
  const forge = ForgeService.fromConfig({ ...o, runUrl: (name) => `${http.baseUrl}/runs/${encodeURIComponent(name)}`, counters: metrics });
  // Asking who may act, for people logged in through the forge: one attempt, so a slow forge
  // gives a refusal that says so rather than a wait (controller/http/forge-login.ts).
  const permissions =
    o.config.login && o.config.forge && o.secrets
      ? new ForgeClient({ baseUrl: o.config.forge.url, token: o.secrets.token, timeoutMs: o.config.forge.timeoutSeconds * 1000, retry: { attempts: 1 } })
      : null;
  const http = new HttpServer({ ...o, metrics, webhook: forge?.webhook ?? null, ...(permissions ? { permissions } : {}) });
  const server: Runnable = {
    name: 'http server',
    start: async (signal, ready) => {
      try {
        const address = await http.listen();
        log.info({ address, publicUrl: o.config.http.publicUrl ?? null }, 'HTTP server listening');
      } catch (e) {
        // Without a webhook to receive the controller is still useful (specs, CLI, poll mode), so a
        // busy port is loud but not fatal; with one it would silently drop every delivery.
        if (forge?.webhook) throw e;
        log.error({ error: e instanceof Error ? e.message : String(e) }, 'HTTP server could not listen; serving without web pages');
      }
      if (forge && !o.config.http.publicUrl) log.warn('http.publicUrl is not set: links on pull requests point at the address cc-ci listens on');
      ready();
      await aborted(signal);
      await http.close();
    },
  };
  return [...(forge?.runnables() ?? []), server];
}
