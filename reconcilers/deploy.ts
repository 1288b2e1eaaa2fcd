import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbraError } from '../controller/abra.js';
import { updateSettled, type ServiceState } from '../controller/docker.js';
import { EnvFile } from '../controller/envfile.js';
import { checkout, headCommit } from '../controller/git.js';
import { probe } from '../controller/http-probe.js';
import { MAX_SECRET_NAME, newAppDomain, stackName } from '../controller/naming.js';
import { pickFreePort } from '../controller/ports.js';
import type { RecipeFacts, WebFacts } from '../controller/recipe-facts.js';
import { runHook } from '../recipes/hooks.js';
import type { AppRecord } from '../state/types.js';
import { applyRunEnv, appEnvPath, copyRecipeOverlay, factsUnder, INGRESS_OVERLAY, RUN_MARKER, runEnvOf } from './app-env.js';
import { InputError, SwarmFaultError, TestFailure, type RunContext, type SubjectApp } from './context.js';

export { INGRESS_OVERLAY } from './app-env.js';

/**
 * The deploy reconciler. Desired: the run's app for one purpose deployed at one commit,
 * converged (every service N/N, updates settled) and answering HTTP. Observed through the
 * store (the lease), the app's .env, the recipe checkout, and docker (services, labels,
 * secrets). Acts with `abra app new`, `abra app secret generate` and `abra app deploy` — one
 * step per pass, each recorded before it is taken.
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
}

export interface ReadyApp extends SubjectApp {
  services: ServiceState[];
}

type Pass = { done: true; app: ReadyApp } | { done: false; requeueAfterMs: number };

interface AppObservation {
  lease: AppRecord | undefined;
  envPath: string | null;
  env: EnvFile | null;
  services: ServiceState[];
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

/** Drives one app to ready: observe, compare, act, look again — until ready or a deadline. */
export async function ensureApp(ctx: RunContext, want: DesiredApp): Promise<ReadyApp> {
  const clock = new DeployClock();
  for (;;) {
    const pass = await reconcileApp(ctx, want, clock);
    if (pass.done) return pass.app;
    await ctx.sleep(pass.requeueAfterMs);
  }
}

const DID_NOT_MOVE_GRACE_MS = 10_000;

/** Deadlines start when the deploy is issued, not when the run started. */
class DeployClock {
  deployedAt: number | null = null;
  /** The commit abra last reported deploying: if the stack does not show it, abra did not move it. */
  deployIssuedFor: string | null = null;
  convergedAt: number | null = null;
  lastProbeProblem: string | null = null;
  checkedOut: string | null = null;
  /** The facts of the commit being deployed, read once the checkout is at it. */
  facts: RecipeFacts | null = null;
  secretsChecked = false;
  installStepsRan = false;
}

async function observe(ctx: RunContext, want: DesiredApp): Promise<AppObservation> {
  const lease = ctx.store.appsOfRun(ctx.name).find((a) => a.purpose === want.purpose && a.attempt === ctx.attempt && a.state !== 'released');
  const o: AppObservation = { lease, envPath: null, env: null, services: [] };
  if (!lease) return o;
  o.envPath = appEnvPath(ctx, lease.server, lease.domain);
  try {
    o.env = new EnvFile(o.envPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  o.services = await ctx.docker.stackServices(lease.stack);
  return o;
}

/** Strict convergence: every service at its desired count with its update settled. A service a
 *  recipe scales to 0 on purpose is at its count; the stack must still run something. */
export function serviceConverged(s: ServiceState): boolean {
  return s.running === s.desired && updateSettled(s.updateState);
}

function converged(services: ServiceState[]): boolean {
  return services.some((s) => s.desired > 0) && services.every(serviceConverged);
}

/** abra's short commit (8 characters, reference §7.4 [R]) — or another length — names the same
 *  commit when one is a prefix of the other; a `+U` (unstaged changes) suffix is not the commit. */
export function sameCommit(label: string, commit: string): boolean {
  const l = label.trim().toLowerCase().replace(/\+u$/, '');
  const c = commit.toLowerCase();
  return /^[0-9a-f]{7,64}$/.test(l) && (c.startsWith(l) || l.startsWith(c));
}

/**
 * Whether the stack runs what is wanted, read from the labels abra puts on the app service
 * (reference §7.4): the chaos-version of a chaos deploy, the version of a release deploy.
 * `shows` says what the stack shows instead, in words.
 */
export function deployedState(services: ServiceState[], stack: string, want: Pick<DesiredApp, 'commit' | 'release'>): { at: boolean; shows: string } {
  const app = services.find((s) => s.name === `${stack}_app`);
  if (!app) return { at: false, shows: services.length ? 'no app service' : 'nothing deployed' };
  const chaos = app.labels[`coop-cloud.${stack}.chaos`];
  const chaosVersion = app.labels[`coop-cloud.${stack}.chaos-version`];
  const version = app.labels[`coop-cloud.${stack}.version`];
  if (want.release) {
    const at = version === want.release && chaos !== 'true';
    return { at, shows: chaos === 'true' ? `a chaos deploy (chaos-version ${chaosVersion ?? 'none'})` : version ? `version ${version}` : 'no version label' };
  }
  if (chaosVersion === undefined) return { at: false, shows: `no chaos-version label on ${app.name}${version ? ` (version ${version})` : ''}` };
  return { at: sameCommit(chaosVersion, want.commit), shows: `chaos-version ${chaosVersion}` };
}

async function reconcileApp(ctx: RunContext, want: DesiredApp, clock: DeployClock): Promise<Pass> {
  const ws = ctx.workspace!;
  const settings = ws.settings;
  const o = await observe(ctx, want);

  if (!o.lease) {
    await lease(ctx, want);
    return { done: false, requeueAfterMs: 0 };
  }
  const { domain, stack } = o.lease;

  if (!o.env) {
    await ensureCheckout(ctx, clock, want.commit);
    ctx.setPhase('Deploying', `${want.purpose}: ${want.describe} as ${domain}`);
    await abraStep(ctx, 'abra app new', () => ctx.abra.appNew(ctx.spec.spec.recipe, domain, { chaos: true, offline: true }), domain);
    ctx.store.setAppState(domain, 'created');
    return { done: false, requeueAfterMs: 0 };
  }

  if (o.env.get(RUN_MARKER) !== ctx.name) {
    await ctx.step(
      'configure app env',
      async () => {
        applyRunEnv(o.env!, runEnvOf(ctx, domain));
        o.env!.save();
        // Overlays must exist before any abra call reads COMPOSE_FILE (they all load the compose files).
        await writeOverlays(ctx, clock, o.env!, o.lease!);
        ctx.log('info', `app env: LETS_ENCRYPT_ENV= TIMEOUT=${Math.round(settings.deployTimeoutSeconds)}${
          Object.keys(settings.extraEnv).length ? ` extra: ${Object.keys(settings.extraEnv).join(', ')}` : ''
        } DOMAIN=${domain} COMPOSE_FILE=${o.env!.resolved('COMPOSE_FILE') ?? ''}`);
      },
      o.envPath ?? undefined,
    );
    return { done: false, requeueAfterMs: 0 };
  }

  const state = deployedState(o.services, stack, want);
  if (!state.at) {
    // What is deployed next is the checkout: first put it at the commit, then read what it says.
    if (clock.checkedOut !== want.commit) {
      await ensureCheckout(ctx, clock, want.commit);
      clock.facts = null;
      clock.secretsChecked = false;
      return { done: false, requeueAfterMs: 0 };
    }
    if (!clock.facts) {
      await ctx.step('read compose', () => writeOverlays(ctx, clock, o.env!, o.lease!), want.describe);
      return { done: false, requeueAfterMs: 0 };
    }
    if (!clock.secretsChecked) {
      await ensureSecrets(ctx, domain, clock.facts, want);
      clock.secretsChecked = true;
      return { done: false, requeueAfterMs: 0 };
    }
  }

  const installSteps = ctx.workspace!.customization.hooks['install-steps'];
  if (!state.at && o.services.length === 0 && installSteps && !clock.installStepsRan) {
    // After app new, env and secrets, before the first deploy (e.g. inserting generate=false secrets).
    const r = await runHook(ctx, 'install-steps', readyApp(ctx, o.lease, [], want), [], { CCCI_OP: want.purpose });
    if (!r.ok) throw new TestFailure(`the install-steps hook failed: ${r.output.split('\n').slice(-3).join(' | ')}`);
    clock.installStepsRan = true;
    return { done: false, requeueAfterMs: 0 };
  }
  if (!state.at && clock.deployIssuedFor === want.commit) {
    // `docker stack deploy` relabels the services before abra returns, so a stack that still
    // shows another commit a little later was not moved, whatever abra said.
    if (Date.now() - (clock.deployedAt ?? 0) > DID_NOT_MOVE_GRACE_MS) {
      throw new TestFailure(`abra app deploy of ${want.describe} reported success, but the stack did not move: it shows ${state.shows}`);
    }
    return { done: false, requeueAfterMs: 1000 };
  }
  if (!state.at) {
    // abra may check a version out in place (a recipe-touching call without --chaos does):
    // whatever it left, the deploy must take the commit under test.
    const head = await ctx.step('check the checkout', () => headCommit(ws.recipeDir, ctx.gitOptions), want.commit.slice(0, 12));
    if (head !== want.commit) {
      ctx.log('warn', `the recipe checkout is at ${head.slice(0, 12)}, not ${want.commit.slice(0, 12)} (abra moved it): checking out again`);
      clock.checkedOut = null;
      return { done: false, requeueAfterMs: 0 };
    }
    copyRecipeOverlay(ctx);
    ctx.setPhase('Deploying', `${want.purpose}: ${want.describe}`);
    const redeploy = o.services.length > 0;
    try {
      await abraStep(
        ctx,
        'abra app deploy',
        () =>
          ctx.abra.appDeploy(domain, {
            ...(want.release ? { version: want.release } : { chaos: true }),
            force: redeploy,
            // cc-ci waits itself (strict convergence below), with its own deadline and diagnostics.
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
    clock.deployedAt = Date.now();
    clock.deployIssuedFor = want.commit;
    clock.convergedAt = null;
    return { done: false, requeueAfterMs: 1000 };
  }
  clock.deployedAt ??= Date.now();

  if (!converged(o.services)) {
    clock.convergedAt = null;
    if (Date.now() - clock.deployedAt > settings.deployTimeoutSeconds * 1000) {
      const diag = await diagnose(ctx, stack, o.services);
      const fault = diag.swarmFault;
      if (fault) throw new SwarmFaultError(`the swarm could not start ${fault.service} (${fault.error}); a Docker fault, not the recipe's`);
      throw new TestFailure(`${want.describe} did not converge within ${settings.deployTimeoutSeconds}s: ${diag.summary}`);
    }
    return { done: false, requeueAfterMs: 1000 };
  }
  if (clock.convergedAt === null) {
    clock.convergedAt = Date.now();
    ctx.log('info', `converged at ${state.shows}: ${o.services.map((s) => `${s.name} ${s.running}/${s.desired}`).join(', ')}`);
    ctx.setPhase('Testing', `${want.purpose}: probing ${domain}`);
  }

  const app = readyApp(ctx, o.lease, o.services, want);
  const r = await probe({
    url: `${app.baseUrl}${settings.healthPath}`,
    host: app.host,
    accept: settings.healthStatuses,
    timeoutMs: 5000,
  });
  if (r.ok) {
    ctx.log('info', `serving: GET ${settings.healthPath} → ${r.status}`);
    return { done: true, app };
  }
  if (r.problem !== clock.lastProbeProblem) {
    ctx.log('info', `not serving yet: GET ${settings.healthPath} → ${r.problem}`);
    clock.lastProbeProblem = r.problem;
  }
  if (Date.now() - clock.convergedAt > settings.httpTimeoutSeconds * 1000) {
    throw new TestFailure(
      `converged but not serving: GET ${settings.healthPath} → ${r.problem} for ${settings.httpTimeoutSeconds}s ` +
        `(accepted: ${settings.healthStatuses.join(', ')})`,
    );
  }
  return { done: false, requeueAfterMs: 1000 };
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
    await abraStep(ctx, 'abra app secret generate', async () => {
      const names = record(await ctx.abra.secretGenerateAll(domain));
      ctx.log('info', `generated ${names.length} secret(s): ${names.join(', ')} (values withheld)`);
    }, `${domain} --all`);
    return;
  }
  for (const s of missing) {
    await abraStep(ctx, 'abra app secret generate', async () => {
      record(await ctx.abra.secretGenerate(domain, s.key, s.version ?? 'v1'));
      ctx.log('info', `generated secret ${s.key} ${s.version ?? 'v1'}, which ${want.describe} adds beside the app's other secrets (value withheld)`);
    }, `${domain} ${s.key} ${s.version ?? 'v1'}`);
  }
}

/**
 * Reads the facts of the checkout under the app's env and writes cc-ci's overlays for them:
 * the customisation's compose overlay, and in the local ingress mode the one that publishes the
 * web port on the host. Both are spelled in the recipe's own compose `version:` (docker's loader
 * refuses to merge files of different versions), or with none when the recipe has none.
 */
async function writeOverlays(ctx: RunContext, clock: DeployClock, env: EnvFile, app: AppRecord): Promise<void> {
  copyRecipeOverlay(ctx);
  const facts = await factsUnder(ctx, env, app.stack);
  clock.facts = facts;
  if (ctx.config.ingress.mode === 'traefik') return;
  if (!app.port) throw new Error('local ingress mode but the app has no host port leased');
  if (facts.web.service === null) throw new TestFailure(facts.web.problem);
  writeIngressOverlay(ctx, facts, facts.web, app.port);
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

/** Records the domain → run lease (and the host port) before anything is created for it. */
async function lease(ctx: RunContext, want: DesiredApp): Promise<void> {
  await ctx.step('lease app domain', async () => {
    for (let i = 0; i < 20; i++) {
      const domain = newAppDomain(ctx.spec.spec.recipe, ctx.config.domain.base);
      const port = ctx.config.ingress.mode !== 'traefik' ? await pickFreePort(ctx.config.ingress.portRange, ctx.store.livePorts()) : null;
      const leased = ctx.store.leaseApp({
        domain,
        run: ctx.name,
        attempt: ctx.attempt,
        purpose: want.purpose,
        stack: stackName(domain),
        server: ctx.config.abra.server,
        abraDir: ctx.abraDir,
        port,
      });
      if (leased) {
        ctx.log('info', `leased ${domain}${port ? ` (host port ${port})` : ''} for ${want.purpose}`);
        return;
      }
    }
    throw new Error('could not lease a free app domain and port after 20 tries');
  });
}

async function ensureCheckout(ctx: RunContext, clock: DeployClock, commit: string): Promise<void> {
  if (clock.checkedOut === commit) return;
  const ws = ctx.workspace!;
  await ctx.step('check out', () => checkout(ws.recipeDir, commit, ctx.gitOptions), commit.slice(0, 12));
  clock.checkedOut = commit;
}

function readyApp(ctx: RunContext, lease: AppRecord, services: ServiceState[], want: DesiredApp): ReadyApp {
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

/** Where the diagnostics of a stack go in the run's evidence. */
export function diagnosticsFile(ctx: RunContext, stack: string): string {
  return join(ctx.dir, 'evidence', `diagnostics-${stack}.txt`);
}

/**
 * Task errors that come from Docker's own networking, whatever the recipe says: overlay
 * networks created and removed in quick succession can leave a stale vxlan interface behind,
 * and the tasks of the next stack given that subnet are rejected (moby/libnetwork#1765).
 */
const SWARM_FAULTS = /network sandbox join failed|error creating vxlan interface|subnet sandbox join failed/;

export interface Diagnosis {
  /** For the tier's reason: each unconverged service, its task state, last error and log tail. */
  summary: string;
  /** The first unconverged service whose tasks were rejected for a Docker fault, if any. */
  swarmFault: { service: string; error: string } | null;
}

/** Which services did not converge, their last task errors and the tail of their logs. The
 *  full text — every service of the stack, the unconverged first — goes to the run's evidence
 *  (and, unless quiet, to its log); the summary goes into the tier's reason. */
export async function diagnose(ctx: RunContext, stack: string, services: ServiceState[], o: { quiet?: boolean } = {}): Promise<Diagnosis> {
  const isBad = (s: ServiceState) => !serviceConverged(s);
  const bad = services.filter(isBad);
  const summaries: string[] = [];
  let swarmFault: Diagnosis['swarmFault'] = null;
  const full: string[] = [`# ${stack} at ${new Date().toISOString()}: ${services.length} service(s), ${bad.length} not converged`];
  if (services.length === 0) full.push('no service of the stack exists');
  for (const s of [...bad, ...services.filter((x) => !isBad(x))]) {
    const tasks = await ctx.docker.serviceTasks(s.name).catch(() => []);
    const lastError = tasks.find((t) => t.error)?.error ?? '';
    const state = tasks[0]?.currentState ?? 'no task';
    const logs = await ctx.docker.serviceLogsTail(s.name, 20).catch(() => '');
    if (isBad(s)) {
      const rejected = tasks.find((t) => SWARM_FAULTS.test(t.error));
      if (rejected) swarmFault ??= { service: s.name, error: rejected.error };
      const logTail = logs.split('\n').filter(Boolean).slice(-3).join(' | ');
      summaries.push(
        `${s.name} ${s.running}/${s.desired}${s.updateState ? ` (update ${s.updateState})` : ''}, task ${state}` +
          `${lastError ? `, last task error: ${lastError}` : ''}${logTail ? `, log tail: ${logTail}` : ''}`,
      );
    }
    full.push(`== ${s.name} ${s.running}/${s.desired} update=${s.updateState || 'none'}${isBad(s) ? ' NOT CONVERGED' : ''}`);
    full.push(`last task error: ${lastError || 'none'}`);
    for (const t of tasks.slice(0, 10)) full.push(`task ${t.name} desired=${t.desiredState} current=${t.currentState} error=${t.error}`);
    full.push('-- log tail (last 20 lines)', logs || '(no output)');
  }
  mkdirSync(join(ctx.dir, 'evidence'), { recursive: true });
  writeFileSync(diagnosticsFile(ctx, stack), ctx.redactor.apply(full.join('\n')) + '\n');
  if (!o.quiet) for (const line of full) ctx.log('err', ctx.redactor.apply(line).slice(0, 2000));
  const summary = services.length === 0 ? 'no service of the stack exists' : summaries.length ? summaries.join('; ') : 'every service converged';
  return { summary, swarmFault };
}
