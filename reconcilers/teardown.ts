import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AbraError, type Abra } from '../controller/abra.js';
import type { Config } from '../controller/config.js';
import { describeLeftovers, leftoverCount, type Docker, type StackLeftovers } from '../controller/docker.js';
import type { EventKind } from '../state/types.js';
import { CallKilledError, CallTimeoutError, type RunContext } from './context.js';

/**
 * The teardown reconciler. Desired: nothing of the run left on the swarm or on disk. Observed
 * through docker (services, containers, volumes, secrets, configs, networks of each app's stack,
 * by label and by name prefix), the apps' .env files and the run's ABRA_DIR. Acts with
 * `abra app undeploy` and `abra app rm`; only what abra could not remove is swept with docker.
 * Every pass is idempotent, so a restart in the middle simply looks again.
 */

export interface TeardownOutcome {
  done: boolean;
  /** What could not be removed, when not done. */
  remaining: string | null;
}

const CONTAINER_WAIT_MS = 60_000;

/** What tearing one app down needs: a run's context has it, and so does the janitor. */
export interface TeardownTools {
  abra: Abra;
  docker: Docker;
  config: Config;
  log(kind: EventKind, text: string): void;
  step<T>(name: string, fn: () => Promise<T>, detail?: string): Promise<T>;
  sleep(ms: number): Promise<void>;
}

/** An app as teardown knows it: enough to find its stack and its .env. */
export interface AppRef {
  domain: string;
  stack: string;
  server: string;
}

export async function reconcileTeardown(ctx: RunContext): Promise<TeardownOutcome> {
  const remaining: string[] = [];
  for (const app of ctx.store.appsOfRun(ctx.name)) {
    if (app.state === 'released') continue;
    ctx.store.setAppState(app.domain, 'tearing-down');
    const left = await teardownApp(ctx, app);
    if (left === null) {
      ctx.store.setAppState(app.domain, 'released');
      ctx.log('info', `${app.domain}: nothing left (services, containers, volumes, secrets, configs, networks: 0; .env gone)`);
    } else {
      remaining.push(`${app.domain}: ${left}`);
    }
  }
  if (remaining.length > 0) return { done: false, remaining: remaining.join('; ') };

  if (existsSync(ctx.abraDir)) {
    await ctx.step('remove ABRA_DIR', async () => rmSync(ctx.abraDir, { recursive: true, force: true }), ctx.abraDir);
  }
  if (existsSync(ctx.abraDir)) return { done: false, remaining: `${ctx.abraDir} could not be removed` };
  return { done: true, remaining: null };
}

/** What of the run is still there, without touching anything: for the reason of a teardown
 *  that ran out of time. Never throws; what it cannot look at it says so. */
export async function describeRemaining(ctx: RunContext): Promise<string> {
  const parts: string[] = [];
  for (const app of ctx.store.appsOfRun(ctx.name)) {
    if (app.state === 'released') continue;
    const env = envPath(ctx, app);
    try {
      const left = await ctx.docker.stackLeftovers(app.stack);
      const what = [leftoverCount(left) > 0 ? describeLeftovers(left) : '', existsSync(env) ? `.env ${env}` : ''].filter(Boolean);
      parts.push(`${app.domain}: ${what.length ? what.join('; ') : 'nothing left, not yet marked released'}`);
    } catch (e) {
      parts.push(`${app.domain}: could not look (${e instanceof Error ? e.message : String(e)})${existsSync(env) ? `; .env ${env}` : ''}`);
    }
  }
  if (existsSync(ctx.abraDir)) parts.push(ctx.abraDir);
  return parts.length ? parts.join('; ') : 'nothing (the pass failed before it could verify)';
}

/** Tears down one app of the run before the run ends (the upgrade tier frees the install app
 *  first: one app at a time is enough for the ladder and halves what the swarm carries). */
export async function releaseApp(ctx: RunContext, domain: string): Promise<void> {
  const app = ctx.store.getApp(domain);
  if (!app || app.state === 'released') return;
  ctx.store.setAppState(domain, 'tearing-down');
  const left = await teardownApp(ctx, app);
  if (left !== null) throw new Error(`could not tear down ${domain}: ${left}`);
  ctx.store.setAppState(domain, 'released');
  ctx.log('info', `${domain}: torn down (nothing left)`);
}

function envPath(ctx: TeardownTools, app: AppRef): string {
  return join(ctx.config.abra.dir, 'servers', app.server, `${app.domain}.env`);
}

/** Tears one app down. Returns null when nothing is left, else a description of what is. */
export async function teardownApp(ctx: TeardownTools, app: AppRef): Promise<string | null> {
  const env = envPath(ctx, app);
  let left = await ctx.docker.stackLeftovers(app.stack);
  if (leftoverCount(left) === 0 && !existsSync(env)) return null;

  if (left.services.length > 0) {
    const undeployed = existsSync(env) && (await tryAbra(ctx, 'abra app undeploy', app.domain, () => ctx.abra.appUndeploy(app.domain)));
    // Only a successful undeploy is worth waiting for; otherwise remove what is there now.
    if (undeployed) left = await waitForStackStop(ctx, app.stack);
    if (left.services.length > 0) {
      ctx.log('warn', `abra left ${left.services.length} service(s) of ${app.stack}; removing them with docker`);
      await ctx.step('docker service rm (leftovers)', () => ctx.docker.removeServices(left.services));
      left = await waitForStackStop(ctx, app.stack);
    }
  }

  if (existsSync(env)) {
    const removed = await tryAbra(ctx, 'abra app rm', app.domain, () => ctx.abra.appRemove(app.domain));
    if (!removed) {
      // reference §11 step 2: the fallback when `app rm` fails.
      await tryAbra(ctx, 'abra app volume rm', app.domain, () => ctx.abra.volumeRemoveAll(app.domain));
      await tryAbra(ctx, 'abra app secret rm', app.domain, () => ctx.abra.secretRemoveAll(app.domain));
      if (existsSync(env)) {
        await ctx.step('remove app .env', async () => rmSync(env, { force: true }), env);
      }
    }
  }

  left = await ctx.docker.stackLeftovers(app.stack);
  if (leftoverCount(left) > 0) {
    ctx.log('warn', `abra left ${describeLeftovers(left)} of ${app.stack}; removing them with docker`);
    await ctx.step('sweep leftovers with docker', () => sweep(ctx.docker, left), describeLeftovers(left));
    left = await ctx.docker.stackLeftovers(app.stack);
  }
  const problems: string[] = [];
  if (leftoverCount(left) > 0) problems.push(describeLeftovers(left));
  if (existsSync(env)) problems.push(`.env ${env} still exists`);
  return problems.length ? problems.join('; ') : null;
}

/** A failing abra call during teardown is logged and teardown goes on: it must finish, or say
 *  exactly what it could not remove. */
async function tryAbra(ctx: TeardownTools, name: string, domain: string, fn: () => Promise<void>): Promise<boolean> {
  try {
    await ctx.step(name, fn, domain);
    return true;
  } catch (e) {
    // abra refusing, hanging past its call timeout or dying: the fallbacks below still run.
    if (!(e instanceof AbraError || e instanceof CallTimeoutError || e instanceof CallKilledError)) throw e;
    ctx.log('warn', `${name} failed: ${e instanceof AbraError ? (e.fatal ?? e.message) : e.message}; continuing teardown`);
    return false;
  }
}

/** After a stack is removed its containers linger a while; volumes cannot go until they do. */
async function waitForStackStop(ctx: TeardownTools, stack: string): Promise<StackLeftovers> {
  const until = Date.now() + CONTAINER_WAIT_MS;
  for (;;) {
    const left = await ctx.docker.stackLeftovers(stack);
    if ((left.services.length === 0 && left.containers.length === 0) || Date.now() > until) return left;
    await ctx.sleep(1000);
  }
}

async function sweep(docker: Docker, left: StackLeftovers): Promise<void> {
  if (left.services.length) await docker.removeServices(left.services);
  if (left.containers.length) await docker.removeContainers(left.containers);
  if (left.volumes.length) await docker.removeVolumes(left.volumes);
  if (left.secrets.length) await docker.removeSecrets(left.secrets);
  if (left.configs.length) await docker.removeConfigs(left.configs);
  if (left.networks.length) await docker.removeNetworks(left.networks);
}
