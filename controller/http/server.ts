import { existsSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Store } from '../../state/store.js';
import type { Config } from '../model/config.js';
import type { WebhookIntake } from '../forge/service.js';
import type { Logger } from '../model/log.js';
import type { StatePaths } from '../model/paths.js';
import { runDetail, runList } from '../views/run-view.js';
import { parseRunQuery } from '../views/run-query.js';
import { registerApi } from './api.js';
import { registerActions } from './actions.js';
import { apiTokenSource } from './api-tokens.js';
import { Auth } from './auth.js';
import { forgeLoginOptions, loginHref, registerForgeLogin, registerReadLogin, type ForgeLoginOptions } from './forge-login.js';
import type { ForgeClient } from '../clients/forge/client.js';
import { registerOpenApi } from './openapi.js';
import { registerTraceViewer } from './trace-viewer.js';
import { registerArtifacts } from './artifacts.js';
import { registerForgeHook } from './webhook-route.js';
import type { Metrics } from './metrics.js';
import { pendingRunPage, runPage } from './pages.js';
import { runsPage } from './runs-page.js';
import { registerRecipes } from './recipes.js';
import { registerRunsStream } from './runs-stream.js';
import { registerEvents, StreamSlots } from './sse.js';
import { isName } from '../model/spec.js';
import { specFilePath } from '../model/spec-files.js';
import { registerSecurityHeaders } from './security-headers.js';

/**
 * The HTTP server of `cc-ci serve` (design §8): the forge webhook, the runs list and run pages
 * with a live log, the recipe overview and badges, artifacts, JSON, health and metrics. It reads the controller's own store (the
 * same process), so it shows exactly what the controller knows. Nothing here ever holds the forge
 * token; the webhook secret is only used to check signatures.
 */

export interface HttpServerOptions {
  store: Store;
  paths: StatePaths;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  webhook: WebhookIntake | null;
  /** Defaults: HTTP_TIMEOUTS (tests shorten them). */
  timeouts?: Partial<HttpTimeouts>;
  /** The serving controller's cancel: records it and stops the run's step at once (actions.ts). */
  cancel?: (name: string, reason: string) => void;
  /** The bot's view of who may write where, for people who log in through the forge (forge-login.ts). */
  permissions?: Pick<ForgeClient, 'getCollaboratorPermission'>;
  /** The forge login's options in full, instead of from config and `permissions` (tests: a clock, the double). */
  loginOptions?: ForgeLoginOptions;
}

/**
 * A client that sends slowly or goes quiet must not hold a socket forever. Node's timeouts are per
 * socket and per request *upload*: none of them cuts a response that is being streamed, and the
 * live log's SSE sockets opt out of the idle timeout (sse.ts), so a quiet run keeps its stream.
 */
export interface HttpTimeouts {
  /** The request line and headers must have arrived within this (node's headersTimeout). */
  headersMs: number;
  /** The whole request, body included, must have arrived within this (408 otherwise). */
  requestMs: number;
  /** A socket with no traffic either way for this long is closed (fastify connectionTimeout). */
  idleMs: number;
  /** How often node looks for requests past headersMs/requestMs. */
  checkEveryMs: number;
  /** The webhook route answers within this, under the forge's 5 s delivery timeout (503 past it). */
  hookMs: number;
}

export const HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 30_000, idleMs: 60_000, checkEveryMs: 1_000, hookMs: 4_000 };

export function buildApp(o: HttpServerOptions, closing: AbortSignal): FastifyInstance {
  const t = { ...HTTP_TIMEOUTS, ...o.timeouts };
  // forceCloseConnections: a stop must not wait for live-log streams or keep-alive sockets.
  const app = Fastify({
    logger: false,
    forceCloseConnections: true,
    requestTimeout: t.requestMs,
    connectionTimeout: t.idleMs,
    // Below the idle timeout, so an idle keep-alive socket is closed politely first.
    keepAliveTimeout: Math.min(5_000, t.idleMs),
    http: { headersTimeout: t.headersMs, requestTimeout: t.requestMs, connectionsCheckingInterval: t.checkEveryMs },
  });
  // Past the cap node closes a new connection at once: paused live-log readers and slow clients
  // cannot take every socket the process has.
  app.server.maxConnections = o.config.http.maxConnections;
  registerSecurityHeaders(app);
  const forgeUrl = o.config.forge?.url ?? null;
  // People log in through the forge when the operator configured it (and the bot can be asked
  // who may write where); scripts and the CLI send an API token either way.
  const login = o.loginOptions ?? (o.permissions ? forgeLoginOptions(o.config, { permissions: o.permissions, logger: o.logger }) : null);
  const forgeLogin = login ? registerForgeLogin(app, login) : null;
  const auth = new Auth([apiTokenSource(o.store), ...(forgeLogin ? [forgeLogin] : [])]);
  registerReadLogin(app, auth, { requireLogin: o.config.http.requireLogin, loginPath: forgeLogin ? '/login' : null });

  app.get('/', async (_request, reply) => reply.redirect('/runs'));
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/metrics', async (_request, reply) => reply.header('content-type', o.metrics.registry.contentType).send(await o.metrics.registry.metrics()));

  app.get('/runs', async (request, reply) => {
    const q = parseRunQuery(request.query);
    if (!q.ok) return reply.code(400).type('text/plain; charset=utf-8').send(`bad query: ${q.error}\n`);
    return reply.type('text/html; charset=utf-8').send(runsPage(runList(o.store, q.query), q.query));
  });
  app.get<{ Params: { name: string }; Querystring: { all?: string } }>('/runs/:name', async (request, reply) => {
    const { name } = request.params;
    const d = isName(name) ? runDetail(o.store, o.paths, name) : undefined;
    if (!d) {
      // A spec just written (a rerun from this page, cc-ci run) that the controller has not taken
      // in yet: say so and look again in a second, rather than a 404 the person must reload past.
      if (isName(name) && existsSync(specFilePath(o.paths, name))) {
        return reply.type('text/html; charset=utf-8').header('refresh', '1').send(pendingRunPage(name));
      }
      return reply.code(404).type('text/plain; charset=utf-8').send(`no run named ${name}\n`);
    }
    const who = await auth.actorOf(request);
    const actions = {
      formToken: auth.formToken(request),
      loginUrl: forgeLogin && !who ? loginHref(request.url) : null,
      login: who?.actor.login ?? null,
    };
    return reply.type('text/html; charset=utf-8').send(runPage(d, forgeUrl, Date.now(), request.query.all === '1', actions));
  });
  // The live log and the live runs list count against the same caps.
  const slots = new StreamSlots({ total: o.config.http.maxStreams, perClient: o.config.http.maxStreamsPerClient });
  registerEvents(app, { store: o.store, paths: o.paths, closing, slots });
  registerRunsStream(app, { store: o.store, closing, slots });
  registerRecipes(app, {
    store: o.store,
    paths: o.paths,
    domainBase: o.config.domain.base,
    baseUrl: () => o.config.http.publicUrl?.replace(/\/+$/, '') ?? null,
  });
  registerArtifacts(app, { paths: o.paths });
  registerTraceViewer(app);
  registerApi(app, { store: o.store, paths: o.paths });
  registerOpenApi(app);
  registerActions(app, { store: o.store, paths: o.paths, auth, ...(o.cancel ? { cancel: o.cancel } : {}) });
  registerForgeHook(app, { webhook: o.webhook, logger: o.logger, metrics: o.metrics, answerWithinMs: t.hookMs });
  return app;
}

export class HttpServer {
  private readonly closing = new AbortController();
  private readonly app: FastifyInstance;
  private address: string | null = null;

  constructor(private readonly options: HttpServerOptions) {
    this.app = buildApp(options, this.closing.signal);
  }

  async listen(): Promise<string> {
    const { port, host } = this.options.config.http;
    await this.app.listen({ port, host });
    const a = this.app.server.address();
    const actual = typeof a === 'object' && a !== null ? a.port : port;
    this.address = `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
    return this.address;
  }

  /** Where people and the forge reach this server: http.publicUrl, else the address it listens on. */
  get baseUrl(): string {
    const { publicUrl, host, port } = this.options.config.http;
    return (publicUrl ?? this.address ?? `http://${host}:${port}`).replace(/\/+$/, '');
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.app.close();
  }
}
