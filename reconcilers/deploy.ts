import { mkdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AbraError } from '../controller/clients/abra.js';
import type { EndedTask, ServiceState } from '../controller/clients/docker.js';
import { EnvFile } from '../controller/model/envfile.js';
import { checkout, headCommit } from '../controller/clients/git.js';
import { probe, type ProbeResult } from '../controller/clients/http-probe.js';
import { MAX_SECRET_NAME, newAppDomain, stackName } from '../controller/model/naming.js';
import { pickFreePort } from '../controller/clients/ports.js';
import type { RecipeFacts, WebFacts } from '../controller/clients/recipe-facts.js';
import { runHook } from './hooks.js';
import type { AppRecord } from '../state/types.js';
import { applyRunEnv, copyRecipeOverlay, factsUnder, INGRESS_OVERLAY, RUN_MARKER, runEnvOf } from './app-env.js';
import { converged, deployedState, serviceConverged } from './app-state.js';
import { type RunContext, type SubjectApp } from './context.js';
import { InputError, PolicyRefusal, SwarmFaultError, TestFailure } from './errors.js';
import { describeItem, judge, refusalMessage } from '../controller/model/compose-policy.js';
import { diagnose } from './diagnostics.js';
import { appEnvPath } from '../controller/model/paths.js';

export { INGRESS_OVERLAY } from './app-env.js';
export { deployedState, sameCommit, serviceConverged } from './app-state.js';
export { diagnose, diagnosticsFile } from './diagnostics.js';

/**
 * The deploy reconciler: desired, the run's app for one purpose deployed at one commit,
 * converged (every service N/N, updates settled) and answering HTTP. Observed through the app's
 * `.env`, the recipe checkout and docker (services and their labels). Each pass looks at what is
 * there and names the one step missing — `abra app new`, configuring the env, checking the
 * commit out, reading its compose files, `abra app secret generate`, the install-steps hook,
 * `abra app deploy`, the HTTP probe — which the app controller (apps.ts) runs as an operation;
 * "not converged yet" is a look again in a second. Deadlines are observations: the time since
 * the deploy, compared with the settings.
 */

export interface DesiredApp {
  /** What the app is for within the run, e.g. `install` or `upgrade`; one app per purpose. */
  purpose: string;
  /** The recipe commit to deploy. */
  commit: string;
  /** For the log: `head 1a2b3c4d`, `release 1.0.0+1.36`. */
  describe: string;
  /**
   * A release tag: deploy it the way an operator does (`abra app deploy <domain> <version>`, not
   * chaos), so abra's own release checks — an unannotated tag, say — apply. Unset: the commit,
   * as a chaos deploy of the checkout (a pull request's head is no release).
   */
  release?: string;
  /**
   * Deploy again even when the stack already shows the commit (`abra app deploy --force`): a
   * warm app being repaired or returned to canonical, whose services may be missing or changed
   * behind cc-ci's back.
   */
  redeploy?: boolean;
}

export interface ReadyApp extends SubjectApp {
  services: ServiceState[];
}

/** What the deploy reconciler remembers of one app between its passes; lost with the process,
 *  as the attempt it serves is (a restart tears the attempt down and starts again). */
export interface DeployMemo {
  /** The last look at the app; cleared after every step, so each decision rests on a fresh one. */
  seen: AppObservation | null;
  checkedOut: string | null;
  /** The facts of the commit being deployed, read once the checkout is at it. */
  facts: RecipeFacts | null;
  secretsChecked: boolean;
  installStepsRan: boolean;
  /** The commit abra last reported deploying, and when: a stack that does not show it a little later was not moved. */
  deployIssuedFor: string | null;
  /** When the last deploy call started: tasks created since are this deploy's. */
  deployStartedAt: number | null;
  deployedAt: number | null;
  /** When the ended tasks were last counted, and a service whose tasks ended too often since the deploy. */
  failuresLookedAt: number | null;
  crashLoop: { service: string; failures: number; error: string } | null;
  /** The most failed tasks of one service counted since the deploy, for the log once it converges. */
  failuresSeen: number;
  convergedAt: number | null;
  probed: ProbeResult | null;
  lastProbeProblem: string | null;
}

export function newDeployMemo(): DeployMemo {
  return {
    seen: null,
    checkedOut: null,
    facts: null,
    secretsChecked: false,
    installStepsRan: false,
    deployIssuedFor: null,
    deployStartedAt: null,
    deployedAt: null,
    failuresLookedAt: null,
    crashLoop: null,
    failuresSeen: 0,
    convergedAt: null,
    probed: null,
    lastProbeProblem: null,
  };
}

export interface AppObservation {
  envPath: string;
  env: EnvFile | null;
  services: ServiceState[];
}

/** One step of a pass: an operation to start, a look again later, the app ready, or failed. */
export type AppStep =
  /** `observes`: the step leaves what the last look saw as it was (it only looks, or touches only
   *  what a look does not cover: the checkout, the env file in hand, secrets), so the next pass
   *  decides on that look instead of a new one (each costs docker calls). */
  | { kind: 'op'; label: string; observes?: boolean; run(ctx: RunContext): Promise<void> }
  | { kind: 'wait'; ms: number }
  | { kind: 'ready'; app: ReadyApp }
  | { kind: 'fail'; error: Error };

const DID_NOT_MOVE_GRACE_MS = 10_000;
/** How often an unconverged app's ended tasks are counted (two docker calls for all its services):
 *  as often as it is looked at, so a crash loop is red within a second of its last failure. */
const FAILURE_LOOK_MS = 1_000;
/** Docker's clock and ours are read a moment apart: tasks this much older than the deploy count too. */
const CLOCK_SLACK_MS = 2_000;

const op = (label: string, run: (ctx: RunContext) => Promise<void>, observes = false): AppStep => ({ kind: 'op', label, run, observes });

async function observeApp(ctx: RunContext, lease: AppRecord): Promise<AppObservation> {
  const envPath = appEnvPath(ctx.config, lease.server, lease.domain);
  let env: EnvFile | null = null;
  try {
    env = new EnvFile(envPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return { envPath, env, services: await ctx.docker.stackServices(lease.stack) };
}

/** The step the app needs next. Quick: it reads the memo and decides; every call is an operation. */
export function nextDeployStep(ctx: RunContext, want: DesiredApp, lease: AppRecord, m: DeployMemo): AppStep {
  const ws = ctx.workspace!;
  const settings = ws.settings;
  const { domain, stack } = lease;
  if (!m.seen) {
    return op(
      'observe',
      async (c) => {
        m.seen = await observeApp(c, lease);
      },
      true,
    );
  }
  const o = m.seen;

  if (!o.env) {
    if (m.checkedOut !== want.commit) return op('check out', (c) => checkoutCommit(c, m, want.commit), true);
    return op('abra app new', async (c) => {
      c.setPhase('Deploying', `${want.purpose}: ${want.describe} as ${domain}`);
      await abraStep(c, 'abra app new', () => c.abra.appNew(c.spec.spec.recipe, domain, { chaos: true, offline: true }), domain);
      c.store.setAppState(domain, 'created');
    });
  }

  const env = o.env;
  if (env.get(RUN_MARKER) !== ctx.name) {
    return op(
      'configure app env',
      (c) =>
        c.step(
          'configure app env',
          async () => {
            applyRunEnv(env, runEnvOf(c, domain));
            env.save();
            // Overlays must exist before any abra call reads COMPOSE_FILE (they all load the compose files).
            await writeOverlays(c, m, env, lease);
            c.log(
              'info',
              `app env: LETS_ENCRYPT_ENV= TIMEOUT=${Math.round(settings.deployTimeoutSeconds)}${
                Object.keys(settings.extraEnv).length ? ` extra: ${Object.keys(settings.extraEnv).join(', ')}` : ''
              } DOMAIN=${domain} COMPOSE_FILE=${env.resolved('COMPOSE_FILE') ?? ''}`,
            );
          },
          o.envPath,
        ),
      // The look's env is the file in hand, changed and saved in place.
      true,
    );
  }

  const state = deployedState(o.services, stack, want);
  if (!state.at || (want.redeploy === true && m.deployIssuedFor !== want.commit)) {
    // What is deployed next is the checkout: first put it at the commit, then read what it says.
    if (m.checkedOut !== want.commit) return op('check out', (c) => checkoutCommit(c, m, want.commit), true);
    if (!m.facts) return op('read compose', (c) => c.step('read compose', () => writeOverlays(c, m, env, lease), want.describe), true);
    if (!m.secretsChecked) {
      return op(
        'secrets',
        async (c) => {
          await ensureSecrets(c, domain, m.facts!, want);
          m.secretsChecked = true;
        },
        true,
      );
    }
    const installSteps = ws.customization.hooks['install-steps'];
    if (o.services.length === 0 && installSteps && !m.installStepsRan) {
      // After app new, env and secrets, before the first deploy (e.g. inserting generate=false secrets).
      return op('install-steps', async (c) => {
        const r = await runHook(c, 'install-steps', readyApp(c, lease, [], want), [], { CCCI_OP: want.purpose });
        if (!r.ok) throw new TestFailure(`the install-steps hook failed: ${r.output.split('\n').slice(-3).join(' | ')}`);
        m.installStepsRan = true;
      });
    }
    if (m.deployIssuedFor === want.commit) {
      // `docker stack deploy` relabels the services before abra returns, so a stack that still
      // shows another commit a little later was not moved, whatever abra said.
      if (Date.now() - (m.deployedAt ?? 0) > DID_NOT_MOVE_GRACE_MS) {
        return {
          kind: 'fail',
          error: new TestFailure(`abra app deploy of ${want.describe} reported success, but the stack did not move: it shows ${state.shows}`),
        };
      }
      return { kind: 'wait', ms: 1000 };
    }
    return op('abra app deploy', (c) => deploy(c, m, want, lease, o.services.length > 0));
  }
  m.deployedAt ??= Date.now();

  if (!converged(o.services)) {
    m.convergedAt = null;
    const threshold = settings.taskFailuresToFail;
    if (m.crashLoop) {
      const loop = m.crashLoop;
      return op('diagnose', async (c) => {
        const diag = await diagnose(c, stack, o.services);
        const fault = diag.swarmFault;
        if (fault) throw new SwarmFaultError(`the swarm could not start ${fault.service} (${fault.error}); a Docker fault, not the recipe's`);
        throw new TestFailure(
          `${want.describe}: ${loop.service} failed ${loop.failures} times since the deploy (last task error: ${loop.error}; ` +
            `taskFailuresToFail is ${threshold}), so cc-ci stopped waiting for convergence: ${diag.summary}`,
        );
      });
    }
    if (threshold > 0 && Date.now() - (m.failuresLookedAt ?? 0) >= FAILURE_LOOK_MS) {
      const since = (m.deployStartedAt ?? m.deployedAt) - CLOCK_SLACK_MS;
      return op(
        'count failed tasks',
        async (c) => {
          m.failuresLookedAt = Date.now();
          const byService = await c.docker.endedTasksSince(
            o.services.filter((x) => !serviceConverged(x)),
            since,
          );
          for (const [service, ended] of byService) {
            m.failuresSeen = Math.max(m.failuresSeen, ended.length);
            if (ended.length >= threshold) {
              const why = await howTaskEnded(c, ended[0]!);
              m.crashLoop = { service, failures: ended.length, error: why };
              c.log('warn', `${service}: ${ended.length} tasks ended since the deploy (last: ${why}); failing fast`);
              return;
            }
          }
        },
        true,
      );
    }
    if (Date.now() - m.deployedAt > settings.deployTimeoutSeconds * 1000) {
      return op('diagnose', async (c) => {
        const diag = await diagnose(c, stack, o.services);
        const fault = diag.swarmFault;
        if (fault) throw new SwarmFaultError(`the swarm could not start ${fault.service} (${fault.error}); a Docker fault, not the recipe's`);
        throw new TestFailure(`${want.describe} did not converge within ${settings.deployTimeoutSeconds}s: ${diag.summary}`);
      });
    }
    return { kind: 'wait', ms: 1000 };
  }
  if (m.convergedAt === null) {
    m.convergedAt = Date.now();
    const tolerated = m.failuresSeen
      ? ` (after ${m.failuresSeen} failed task(s) of one service, fewer than taskFailuresToFail ${settings.taskFailuresToFail})`
      : '';
    ctx.log('info', `converged at ${state.shows}: ${o.services.map((s) => `${s.name} ${s.running}/${s.desired}`).join(', ')}${tolerated}`);
    ctx.setPhase('Testing', `${want.purpose}: probing ${domain}`);
  }

  const app = readyApp(ctx, lease, o.services, want);
  if (!m.probed) {
    return op(
      'probe',
      async () => {
        m.probed = await probe({ url: `${app.baseUrl}${settings.healthPath}`, host: app.host, accept: settings.healthStatuses, timeoutMs: 5000 });
      },
      true,
    );
  }
  const r = m.probed;
  m.probed = null;
  if (r.ok) {
    ctx.log('info', `serving: GET ${settings.healthPath} → ${r.status}`);
    return { kind: 'ready', app };
  }
  if (r.problem !== m.lastProbeProblem) {
    ctx.log('info', `not serving yet: GET ${settings.healthPath} → ${r.problem}`);
    m.lastProbeProblem = r.problem;
  }
  if (Date.now() - m.convergedAt > settings.httpTimeoutSeconds * 1000) {
    return {
      kind: 'fail',
      error: new TestFailure(
        `converged but not serving: GET ${settings.healthPath} → ${r.problem} for ${settings.httpTimeoutSeconds}s (accepted: ${settings.healthStatuses.join(', ')})`,
      ),
    };
  }
  return { kind: 'wait', ms: 1000 };
}

/** What ended a task, in a maintainer's words: swarm's error, or the exit, and a failed healthcheck's last output. */
async function howTaskEnded(ctx: RunContext, t: EndedTask): Promise<string> {
  const exit = t.error || (t.state === 'complete' ? `exited ${t.exitCode ?? 0} while it should have kept running` : t.state);
  const unhealthy = t.containerId ? await ctx.docker.unhealthyBecause(t.containerId) : null;
  return unhealthy ? `${exit}: killed as unhealthy, ${unhealthy}` : exit;
}

async function checkoutCommit(ctx: RunContext, m: DeployMemo, commit: string): Promise<void> {
  await ctx.step('check out', () => checkout(ctx.workspace!.recipeDir, commit, ctx.gitOptions), commit.slice(0, 12));
  m.checkedOut = commit;
  m.facts = null;
  m.secretsChecked = false;
}

/** The deploy itself: the checkout checked first (abra may have moved it), then abra. */
async function deploy(ctx: RunContext, m: DeployMemo, want: DesiredApp, lease: AppRecord, redeploy: boolean): Promise<void> {
  const { domain, stack } = lease;
  // abra may check a version out in place (a recipe-touching call without --chaos does):
  // whatever it left, the deploy must take the commit under test.
  const head = await ctx.step('check the checkout', () => headCommit(ctx.workspace!.recipeDir, ctx.gitOptions), want.commit.slice(0, 12));
  if (head !== want.commit) {
    ctx.log('warn', `the recipe checkout is at ${head.slice(0, 12)}, not ${want.commit.slice(0, 12)} (abra moved it): checking out again`);
    m.checkedOut = null;
    return;
  }
  copyRecipeOverlay(ctx);
  ctx.setPhase('Deploying', `${want.purpose}: ${want.describe}`);
  m.deployStartedAt = Date.now();
  m.crashLoop = null;
  m.failuresLookedAt = null;
  m.failuresSeen = 0;
  try {
    await abraStep(
      ctx,
      'abra app deploy',
      () =>
        ctx.abra.appDeploy(domain, {
          ...(want.release ? { version: want.release } : { chaos: true }),
          force: redeploy,
          // cc-ci waits itself (strict convergence), with its own deadline and diagnostics.
          noConvergeChecks: true,
          noDomainChecks: true,
          offline: true,
        }),
      `${domain} at ${want.describe}${want.release ? ' (as an operator deploys a release)' : ''}${redeploy ? ' (in place)' : ''}`,
    );
  } catch (e) {
    if (e instanceof TestFailure) {
      const services = await ctx.docker.stackServices(stack).catch(() => []);
      const diag = services.length ? (await diagnose(ctx, stack, services)).summary : '';
      throw new TestFailure(`${e.message}${diag ? `; ${diag}` : ''}`);
    }
    throw e;
  }
  ctx.store.setAppState(domain, 'deployed');
  m.deployedAt = Date.now();
  m.deployIssuedFor = want.commit;
  m.convergedAt = null;
}

/**
 * Generates the secrets the commit about to be deployed declares and the swarm does not have,
 * compared one by one (a head that adds a secret gets it beside the ones its base made): all
 * at once for a new app, one by one for the ones missing beside existing ones. Secrets marked
 * `generate=false` are the install-steps hook's to insert.
 */
async function ensureSecrets(ctx: RunContext, domain: string, facts: RecipeFacts, want: DesiredApp): Promise<void> {
  const long = facts.secrets.find((s) => s.name.length > MAX_SECRET_NAME);
  if (long) throw new InputError(`secret name ${long.name} would be ${long.name.length} characters; Docker allows ${MAX_SECRET_NAME}`);
  const wanted = facts.secrets.filter((s) => s.generate);
  if (wanted.length === 0) return;
  const existing = new Set(await ctx.docker.secretNames());
  const missing = wanted.filter((s) => !existing.has(s.name));
  if (missing.length === 0) return;
  const record = (generated: { names: string[]; values: string[] }) => {
    for (const v of generated.values) ctx.redactor.add(v);
    return generated.names;
  };
  if (missing.length === wanted.length && facts.secrets.every((s) => !existing.has(s.name))) {
    await abraStep(
      ctx,
      'abra app secret generate',
      async () => {
        const names = record(await ctx.abra.secretGenerateAll(domain));
        ctx.log('info', `generated ${names.length} secret(s): ${names.join(', ')} (values withheld)`);
      },
      `${domain} --all`,
    );
    return;
  }
  for (const s of missing) {
    await abraStep(
      ctx,
      'abra app secret generate',
      async () => {
        record(await ctx.abra.secretGenerate(domain, s.key, s.version ?? 'v1'));
        ctx.log('info', `generated secret ${s.key} ${s.version ?? 'v1'}, which ${want.describe} adds beside the app's other secrets (value withheld)`);
      },
      `${domain} ${s.key} ${s.version ?? 'v1'}`,
    );
  }
}

/**
 * Reads the facts of the checkout under the app's env and writes cc-ci's overlays for them:
 * the customisation's compose overlay, and in the local ingress mode the one that publishes the
 * web port on the host. Both are spelled in the recipe's own compose `version:` (docker's loader
 * refuses to merge files of different versions), or with none when the recipe has none.
 */
async function writeOverlays(ctx: RunContext, m: DeployMemo, env: EnvFile, app: AppRecord): Promise<void> {
  copyRecipeOverlay(ctx);
  const facts = await factsUnder(ctx, env, app.stack);
  enforceComposePolicy(ctx, facts);
  m.facts = facts;
  if (ctx.config.ingress.mode === 'traefik') return;
  if (!app.port) throw new Error('local ingress mode but the app has no host port leased');
  if (facts.web.service === null) throw new TestFailure(facts.web.problem);
  writeIngressOverlay(ctx, facts, facts.web, app.port);
}

/** Refuses, before anything of this commit deploys, what would hand the host to the stack;
 *  says what the operator allowed and by whom. */
function enforceComposePolicy(ctx: RunContext, facts: RecipeFacts): void {
  const verdict = judge(facts.hostAccess, ctx.config.composePolicy.allow[ctx.spec.spec.recipe] ?? []);
  for (const a of verdict.allowed) {
    ctx.log('info', `compose policy: ${describeItem(a.item)} allowed by ${a.by} in cc-ci's config${a.reason ? ` (${a.reason})` : ''}`);
  }
  if (!verdict.refused.length) return;
  const message = refusalMessage(verdict.refused);
  ctx.log('error', message);
  throw new PolicyRefusal(message);
}

function writeIngressOverlay(ctx: RunContext, facts: RecipeFacts, web: WebFacts, port: number): void {
  const startFirst = web.updateOrder === 'start-first' || web.rollbackOrder === 'start-first';
  const lines = [
    '# Written by cc-ci for a local swarm without Traefik: publish the web port on the host.',
    ...(facts.version !== null ? [`version: ${JSON.stringify(facts.version)}`] : []),
    'services:',
    `  ${JSON.stringify(web.service)}:`,
    '    ports:',
    `      - target: ${web.port}`,
    `        published: ${port}`,
    '        protocol: tcp',
    '        mode: host',
  ];
  if (startFirst) {
    // A host-mode port is held by one task: a new task started before the old one stops can
    // never get it, and the update waits forever. Stop first, only for this service, only here.
    lines.push('    deploy:', '      update_config:', '        order: stop-first', '      rollback_config:', '        order: stop-first');
  }
  mkdirSync(ctx.workspace!.recipeDir, { recursive: true });
  writeFileSync(join(ctx.workspace!.recipeDir, INGRESS_OVERLAY), `${lines.join('\n')}\n`);
  ctx.log(
    'info',
    `local ingress: ${web.service}:${web.port} (${web.why}) published on host port ${port}` +
      (startFirst ? `; ${web.service}'s update/rollback order start-first changed to stop-first (a host-mode port cannot be held by two tasks at once)` : ''),
  );
}

/**
 * An abra step of the deploy. abra failing on a recipe (a FATA about its compose, its secrets,
 * a deploy that docker refuses) is the recipe's verdict; abra failing because docker is gone is
 * an infrastructure fault, told apart by asking docker.
 */
async function abraStep(ctx: RunContext, name: string, fn: () => Promise<void>, detail?: string): Promise<void> {
  try {
    await ctx.step(name, fn, detail);
  } catch (e) {
    if (!(e instanceof AbraError)) throw e;
    // abra that cannot even start is the server's fault, never the recipe's.
    if (e.result.spawnError) throw new Error(`abra cannot be started (${e.result.spawnError}); see cc-ci doctor`, { cause: e });
    await ctx.docker.info(); // throws DockerError when the daemon is unreachable
    throw new TestFailure(`${name} failed: ${e.fatal ?? e.message}`);
  }
}

/**
 * Where an app of the run keeps its recipe checkout: install's is the run's own ABRA_DIR; every
 * other purpose gets an ABRA_DIR of its own beside it (`abra-<purpose>`), so the upgrade's base
 * release can deploy while install's head does — abra deploys whatever the checkout holds.
 */
function appAbraDir(ctx: RunContext, purpose: string): string {
  return purpose === 'install' ? ctx.abraDir : `${ctx.abraDir}-${purpose}`;
}

/**
 * An app's own ABRA_DIR: servers/ and catalogue/ linked like the run's, and a copy of the run's
 * recipe clone (its tags, its excludes, its remote), made afresh for a new lease.
 */
async function makeAppAbraDir(ctx: RunContext, abraDir: string): Promise<void> {
  await ctx.step(
    'make app ABRA_DIR',
    async () => {
      // Asynchronous: a recipe's clone is hundreds of files, and a synchronous copy would stall
      // every other reconcile for its duration.
      await rm(abraDir, { recursive: true, force: true });
      mkdirSync(join(abraDir, 'recipes'), { recursive: true });
      for (const link of ['servers', 'catalogue']) symlinkSync(readlinkSync(join(ctx.abraDir, link)), join(abraDir, link));
      const recipe = ctx.spec.spec.recipe;
      await cp(join(ctx.abraDir, 'recipes', recipe), join(abraDir, 'recipes', recipe), { recursive: true, verbatimSymlinks: true });
    },
    abraDir,
  );
}

/** The run's app for a purpose in this attempt, leased now if it has none: the domain → run
 *  lease (and the host port) is recorded before anything is created for it. */
export async function leaseFor(ctx: RunContext, purpose: string): Promise<AppRecord> {
  const held = ctx.store.appsOfRun(ctx.name).find((a) => a.purpose === purpose && a.attempt === ctx.attempt && a.state !== 'released');
  if (held) return held;
  const abraDir = appAbraDir(ctx, purpose);
  const lease = await ctx.step('lease app domain', async () => {
    for (let i = 0; i < 20; i++) {
      const domain = newAppDomain(ctx.spec.spec.recipe, ctx.config.domain.base);
      const port = ctx.config.ingress.mode !== 'traefik' ? await pickFreePort(ctx.config.ingress.portRange, ctx.store.livePorts()) : null;
      const leased = ctx.store.leaseApp({
        domain,
        run: ctx.name,
        attempt: ctx.attempt,
        purpose,
        stack: stackName(domain),
        server: ctx.config.abra.server,
        abraDir,
        port,
      });
      if (leased) {
        ctx.log('info', `leased ${domain}${port ? ` (host port ${port})` : ''} for ${purpose}`);
        return ctx.store.getApp(domain)!;
      }
    }
    throw new Error('could not lease a free app domain and port after 20 tries');
  });
  // Recorded with the lease first: a crash in between leaves a lease teardown knows of.
  if (abraDir !== ctx.abraDir) await makeAppAbraDir(ctx, abraDir);
  return lease;
}

export function readyApp(ctx: RunContext, lease: AppRecord, services: ServiceState[], want: DesiredApp): ReadyApp {
  const local = ctx.config.ingress.mode !== 'traefik';
  return {
    purpose: lease.purpose,
    commit: want.commit,
    describe: want.describe,
    domain: lease.domain,
    stack: lease.stack,
    port: lease.port,
    baseUrl: local ? `http://127.0.0.1:${lease.port}` : `https://${lease.domain}`,
    host: lease.domain,
    services,
  };
}

/** The warm app's purpose: a quick run deploys on it, in place (reconcilers/warm-app.ts). */
export const WARM_PURPOSE = 'warm';

/** The app for `want`, deployed, converged and serving (the app controller makes it so). A
 *  quick run's apps are its warm app. */
export async function ensureApp(ctx: RunContext, want: DesiredApp): Promise<ReadyApp> {
  if (ctx.warmApp) return ctx.apps.ensure(ctx, { ...want, purpose: WARM_PURPOSE }, ctx.warmApp);
  return ctx.apps.ensure(ctx, want);
}

/**
 * The app later tiers test: the one install (or upgrade) left serving, or — when the run asked
 * only for later tiers — a fresh install of the ref under test.
 */
export async function subjectApp(ctx: RunContext): Promise<SubjectApp> {
  if (ctx.subject.current) return ctx.subject.current;
  const ws = ctx.workspace!;
  const app = await ensureApp(ctx, { purpose: 'install', commit: ws.commit, describe: `head ${ws.commit.slice(0, 8)}` });
  ctx.subject.current = app;
  return app;
}
