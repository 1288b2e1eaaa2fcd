import { existsSync, rmSync } from 'node:fs';
import { AbraError, type Abra } from '../controller/clients/abra.js';
import type { Config } from '../controller/model/config.js';
import { describeLeftovers, leftoverCount, type Docker, type StackLeftovers } from '../controller/clients/docker.js';
import type { EventKind } from '../state/types.js';
import { type RunContext } from './context.js';
import { CallKilledError, CallTimeoutError } from './errors.js';
import { appEnvPath } from '../controller/model/paths.js';

/**
 * The teardown reconciler: desired, nothing of one app left on the swarm or on disk. Observed
 * through docker (services, containers, volumes, secrets, configs, networks of the app's stack,
 * by label and by name prefix) and the app's `.env`. Each pass names the one step missing —
 * `abra app undeploy`, waiting for its containers to go, `abra app rm` (and its fallbacks), a
 * sweep with docker of what abra left — which the app controller (apps.ts) runs as an
 * operation. Every step is idempotent, so a restart in the middle simply looks again.
 */

/** What tearing an app down needs: a run's context has it, and so has the janitor's. */
export interface TeardownTools {
  abra: Abra;
  docker: Docker;
  config: Config;
  log(kind: EventKind, text: string): void;
  step<T>(name: string, fn: () => Promise<T>, detail?: string): Promise<T>;
  /** The same tools, with their calls stopped by `signal`. */
  withSignal(signal: AbortSignal): TeardownTools;
}

/** An app as teardown knows it: enough to find its stack and its .env. */
export interface AppRef {
  domain: string;
  stack: string;
  server: string;
}

export interface TeardownMemo {
  seen: { left: StackLeftovers; envExists: boolean } | null;
  /** The last look, kept while a step runs: what to name when teardown runs out of time. */
  lastSeen: { left: StackLeftovers; envExists: boolean } | null;
  undeploy: 'todo' | 'done' | 'failed';
  /** When the stack's services were last asked to go: its containers linger a while, and volumes cannot go until they do. */
  stopAskedAt: number | null;
  serviceRm: boolean;
  rm: 'todo' | 'done' | 'failed';
  fallback: boolean;
  swept: boolean;
  /** What a whole pass could not remove; the next pass starts over. */
  remaining: string | null;
}

export function newTeardownMemo(): TeardownMemo {
  return { seen: null, lastSeen: null, undeploy: 'todo', stopAskedAt: null, serviceRm: false, rm: 'todo', fallback: false, swept: false, remaining: null };
}

const CONTAINER_WAIT_MS = 60_000;
const PASS_AGAIN_MS = 5_000;

export type TeardownStep =
  { kind: 'op'; label: string; observes?: boolean; run(t: TeardownTools): Promise<void> } | { kind: 'wait'; ms: number } | { kind: 'gone' };

export function nextTeardownStep(config: Config, app: AppRef, m: TeardownMemo): TeardownStep {
  const env = appEnvPath(config, app.server, app.domain);
  if (!m.seen) {
    return {
      kind: 'op',
      label: 'observe leftovers',
      observes: true,
      run: async (t) => {
        m.seen = { left: await t.docker.stackLeftovers(app.stack), envExists: existsSync(env) };
        m.lastSeen = m.seen;
      },
    };
  }
  const { left, envExists } = m.seen;
  if (leftoverCount(left) === 0 && !envExists) return { kind: 'gone' };

  const stopping = m.stopAskedAt !== null && Date.now() - m.stopAskedAt < CONTAINER_WAIT_MS;
  if (left.services.length > 0 || (stopping && left.containers.length > 0)) {
    if (m.undeploy === 'todo' && envExists) {
      return {
        kind: 'op',
        label: 'abra app undeploy',
        run: async (t) => {
          const ok = await withContainersHurried(t, app.stack, () => tryAbra(t, 'abra app undeploy', app.domain, () => t.abra.appUndeploy(app.domain)));
          m.undeploy = ok ? 'done' : 'failed';
          // Only a successful undeploy is worth waiting for; otherwise remove what is there now.
          if (ok) m.stopAskedAt = Date.now();
        },
      };
    }
    if (stopping) return { kind: 'wait', ms: 1000 };
    if (left.services.length > 0 && !m.serviceRm) {
      return {
        kind: 'op',
        label: 'docker service rm (leftovers)',
        run: async (t) => {
          t.log('warn', `abra left ${left.services.length} service(s) of ${app.stack}; removing them with docker`);
          await t.step('docker service rm (leftovers)', () => t.docker.removeServices(left.services));
          m.serviceRm = true;
          m.stopAskedAt = Date.now();
        },
      };
    }
  }

  if (envExists && m.rm === 'todo') {
    return {
      kind: 'op',
      label: 'abra app rm',
      run: async (t) => {
        m.rm = (await tryAbra(t, 'abra app rm', app.domain, () => t.abra.appRemove(app.domain))) ? 'done' : 'failed';
      },
    };
  }
  if (envExists && m.rm === 'failed' && !m.fallback) {
    // The fallback when `app rm` fails: volumes and secrets one by one, then the .env.
    return {
      kind: 'op',
      label: 'remove volumes, secrets and .env',
      run: async (t) => {
        await tryAbra(t, 'abra app volume rm', app.domain, () => t.abra.volumeRemoveAll(app.domain));
        await tryAbra(t, 'abra app secret rm', app.domain, () => t.abra.secretRemoveAll(app.domain));
        if (existsSync(env)) await t.step('remove app .env', async () => rmSync(env, { force: true }), env);
        m.fallback = true;
      },
    };
  }
  if (leftoverCount(left) > 0 && !m.swept) {
    return {
      kind: 'op',
      label: 'sweep leftovers with docker',
      run: async (t) => {
        t.log('warn', `abra left ${describeLeftovers(left)} of ${app.stack}; removing them with docker`);
        await t.step('sweep leftovers with docker', () => sweep(t.docker, left), describeLeftovers(left));
        m.swept = true;
      },
    };
  }
  // Everything was tried and something is still there: say what, and start over in a while.
  const problems: string[] = [];
  if (leftoverCount(left) > 0) problems.push(describeLeftovers(left));
  if (envExists) problems.push(`.env ${env} still exists`);
  Object.assign(m, newTeardownMemo(), { remaining: problems.join('; '), lastSeen: m.seen });
  return { kind: 'wait', ms: PASS_AGAIN_MS };
}

const HURRY_POLL_MS = 300;

/**
 * Runs `undeploy` while removing, with `docker rm --force`, each container its stack's removed
 * services leave behind. Docker stops such a container only after a fixed pause for the swarm's
 * gossip to converge, and detaches it from its overlay networks slowly: about 6 s per app here
 * against 0.6 s forced (docs/testing.md, "Against a hand-written abra script"). Nothing is lost: teardown
 * deletes the app's volumes next, so there is no data for a graceful stop to keep safe. (The
 * warm app, whose volumes are kept, is never undeployed this way.) Whether abra's undeploy
 * waits for the containers or not, they are gone sooner either way.
 */
async function withContainersHurried<T>(t: TeardownTools, stack: string, undeploy: () => Promise<T>): Promise<T> {
  let done = false;
  const hurry = (async () => {
    const removed = new Set<string>();
    while (!done) {
      await new Promise((r) => setTimeout(r, HURRY_POLL_MS));
      if (done) break;
      try {
        const left = (await t.docker.orphanedStackContainers(stack)).filter((c) => !removed.has(c));
        if (left.length === 0) continue;
        left.forEach((c) => removed.add(c));
        t.log('info', `removing ${left.length} container(s) of ${stack} at once: their services are gone and their data is deleted next`);
        await t.docker.removeContainers(left);
      } catch {
        // Only a shortcut: abra's undeploy and the next observation still see to every container.
      }
    }
  })();
  try {
    return await undeploy();
  } finally {
    done = true;
    await hurry;
  }
}

/** A failing abra call during teardown is logged and teardown goes on: it must finish, or say
 *  exactly what it could not remove. */
async function tryAbra(t: TeardownTools, name: string, domain: string, fn: () => Promise<void>): Promise<boolean> {
  try {
    await t.step(name, fn, domain);
    return true;
  } catch (e) {
    // abra refusing, hanging past its call timeout or dying: the fallbacks still run.
    if (!(e instanceof AbraError || e instanceof CallTimeoutError || e instanceof CallKilledError)) throw e;
    t.log('warn', `${name} failed: ${e instanceof AbraError ? (e.fatal ?? e.message) : e.message}; continuing teardown`);
    return false;
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

/** Tears down one app of the run before the run ends (the upgrade tier frees the install app
 *  once it has done its job). Recorded (`tearing-down`) before the promise is returned; the run's
 *  own teardown waits for whatever is still going. */
export async function releaseApp(ctx: RunContext, domain: string): Promise<void> {
  const app = ctx.store.getApp(domain);
  if (!app || app.state === 'released') return;
  await ctx.apps.release(ctx, { domain: app.domain, stack: app.stack, server: app.server, run: ctx.name });
}
