import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbraError } from '../controller/abra.js';
import { updateSettled, type ServiceState } from '../controller/docker.js';
import { EnvFile } from '../controller/envfile.js';
import { checkout } from '../controller/git.js';
import { probe } from '../controller/http-probe.js';
import { newAppDomain, secretNameProblem, stackName } from '../controller/naming.js';
import { pickFreePort } from '../controller/ports.js';
import { readComposeFacts, splitComposeFile, type ComposeFacts } from '../controller/recipe-compose.js';
import { OVERLAY_FILE } from '../recipes/customization.js';
import { runHook } from '../recipes/hooks.js';
import type { AppRecord } from '../state/types.js';
import { InputError, SwarmFaultError, TestFailure, type RunContext, type SubjectApp } from './context.js';

/**
 * The deploy reconciler. Desired: the run's app for one purpose deployed at one commit,
 * converged (every service N/N, updates settled) and answering HTTP. Observed through the
 * store (the lease), the app's .env, and docker (services, labels, secrets). Acts with
 * `abra app new`, `abra app secret generate` and `abra app deploy` — one step per pass,
 * each recorded before it is taken.
 */

export interface DesiredApp {
  /** What the app is for within the run, e.g. `install` or `upgrade`; one app per purpose. */
  purpose: string;
  /** The recipe commit to deploy. */
  commit: string;
  /** For the log: `head 1a2b3c4d`, `release 1.0.0+1.36`. */
  describe: string;
}

export interface ReadyApp extends SubjectApp {
  services: ServiceState[];
}

/** The overlay cc-ci adds in the local ingress mode (no Traefik): the app port, host-published. */
export const INGRESS_OVERLAY = 'compose.ccci-ingress.yml';
/** Marks an .env as configured by cc-ci for a run; also tells the janitor whose app it is. */
const RUN_MARKER = 'CCCI_RUN';

type Pass = { done: true; app: ReadyApp } | { done: false; requeueAfterMs: number };

interface AppObservation {
  lease: AppRecord | undefined;
  envPath: string | null;
  env: EnvFile | null;
  facts: ComposeFacts | null;
  services: ServiceState[];
  deployedCommit: string | null;
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
  secretsExist = false;
  installStepsRan = false;
}

async function observe(ctx: RunContext, want: DesiredApp): Promise<AppObservation> {
  const lease = ctx.store.appsOfRun(ctx.name).find((a) => a.purpose === want.purpose && a.attempt === ctx.attempt && a.state !== 'released');
  const o: AppObservation = { lease, envPath: null, env: null, facts: null, services: [], deployedCommit: null };
  if (!lease) return o;
  o.envPath = join(ctx.config.abra.dir, 'servers', lease.server, `${lease.domain}.env`);
  if (existsSync(o.envPath)) {
    o.env = new EnvFile(o.envPath);
    try {
      // cc-ci's own overlay is written just before each deploy; the recipe's files are the facts.
      const files = splitComposeFile(o.env.resolved('COMPOSE_FILE')).filter((f) => f !== INGRESS_OVERLAY);
      o.facts = readComposeFacts(ctx.workspace!.recipeDir, files);
    } catch (e) {
      throw new TestFailure(`the recipe's compose files cannot be read: ${(e as Error).message}`);
    }
  }
  o.services = await ctx.docker.stackServices(lease.stack);
  const app = o.services.find((s) => s.name === `${lease.stack}_app`);
  o.deployedCommit = app?.labels[`coop-cloud.${lease.stack}.chaos-version`] ?? null;
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
        // Overlays must exist before COMPOSE_FILE names them: abra reads every listed file.
        if (ctx.config.ingress.mode !== 'traefik') writeIngressOverlay(ctx, o);
        copyRecipeOverlay(ctx);
        configureEnv(ctx, o.env!, o.lease!);
      },
      o.envPath ?? undefined,
    );
    return { done: false, requeueAfterMs: 0 };
  }

  // Once the stack's secrets exist the answer cannot change within the run: stop asking docker.
  const secretKeys = o.facts?.secretKeys ?? [];
  const needsSecrets = !clock.secretsExist && secretKeys.length > 0;
  if (needsSecrets && (await ctx.docker.stackSecrets(stack)).length > 0) clock.secretsExist = true;
  if (needsSecrets && !clock.secretsExist) {
    const problem = secretNameProblem(stack, secretKeys);
    if (problem) throw new InputError(problem);
    await abraStep(ctx, 'abra app secret generate', async () => {
      const generated = await ctx.abra.secretGenerateAll(domain);
      for (const v of generated.values) ctx.redactor.add(v);
      ctx.log('info', `generated ${generated.names.length} secret(s): ${generated.names.join(', ')} (values withheld)`);
    });
    return { done: false, requeueAfterMs: 0 };
  }

  const atCommit = o.deployedCommit !== null && o.deployedCommit.startsWith(want.commit.slice(0, 8));
  const installSteps = ctx.workspace!.customization.hooks['install-steps'];
  if (!atCommit && o.services.length === 0 && installSteps && !clock.installStepsRan) {
    // After app new, env and secrets, before the first deploy (e.g. inserting generate=false secrets).
    const r = await runHook(ctx, 'install-steps', readyApp(ctx, o.lease, [], want), [], { CCCI_OP: want.purpose });
    if (!r.ok) throw new TestFailure(`the install-steps hook failed: ${r.output.split('\n').slice(-3).join(' | ')}`);
    clock.installStepsRan = true;
    return { done: false, requeueAfterMs: 0 };
  }
  if (!atCommit && clock.deployIssuedFor === want.commit) {
    // `docker stack deploy` relabels the services before abra returns, so a stack that still
    // shows another commit a little later was not moved, whatever abra said.
    if (Date.now() - (clock.deployedAt ?? 0) > DID_NOT_MOVE_GRACE_MS) {
      throw new TestFailure(
        `abra app deploy of ${want.describe} reported success, but the stack did not move: ` +
          `its app service runs chaos-version ${o.deployedCommit ?? '(no app service)'}`,
      );
    }
    return { done: false, requeueAfterMs: 1000 };
  }
  if (!atCommit) {
    await ensureCheckout(ctx, clock, want.commit);
    copyRecipeOverlay(ctx);
    if (ctx.config.ingress.mode !== 'traefik') writeIngressOverlay(ctx, o);
    ctx.setPhase('Deploying', `${want.purpose}: ${want.describe}`);
    const redeploy = o.services.length > 0;
    try {
      await abraStep(
        ctx,
        'abra app deploy',
        () =>
          ctx.abra.appDeploy(domain, {
            chaos: true,
            force: redeploy,
            // cc-ci waits itself (strict convergence below), with its own deadline and diagnostics.
            noConvergeChecks: true,
            noDomainChecks: true,
            offline: true,
          }),
        `${domain} at ${want.describe}${redeploy ? ' (in place)' : ''}`,
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
    ctx.log('info', `converged at chaos-version ${o.deployedCommit ?? 'unknown'}: ${o.services.map((s) => `${s.name} ${s.running}/${s.desired}`).join(', ')}`);
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
 * An abra step of the deploy. abra failing on a recipe (a FATA about its compose, its secrets,
 * a deploy that docker refuses) is the recipe's verdict; abra failing because docker is gone is
 * an infrastructure fault, told apart by asking docker.
 */
async function abraStep(ctx: RunContext, name: string, fn: () => Promise<void>, detail?: string): Promise<void> {
  try {
    await ctx.step(name, fn, detail);
  } catch (e) {
    if (!(e instanceof AbraError)) throw e;
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

function configureEnv(ctx: RunContext, env: EnvFile, app: AppRecord): void {
  const settings = ctx.workspace!.settings;
  // No ACME for test apps (reference §1.1); abra's own wait honours TIMEOUT where the recipe reads it.
  env.set('LETS_ENCRYPT_ENV', '');
  env.set('TIMEOUT', String(Math.round(settings.deployTimeoutSeconds)));
  for (const [k, v] of Object.entries(settings.extraEnv)) env.set(k, v);
  const listed = (env.resolved('COMPOSE_FILE') ?? '').split(':');
  if (ctx.workspace!.customization.overlay && !listed.includes(OVERLAY_FILE)) {
    env.appendLine(`COMPOSE_FILE="$COMPOSE_FILE:${OVERLAY_FILE}"`);
  }
  if (ctx.config.ingress.mode !== 'traefik' && !listed.includes(INGRESS_OVERLAY)) {
    env.appendLine(`COMPOSE_FILE="$COMPOSE_FILE:${INGRESS_OVERLAY}"`);
  }
  env.set(RUN_MARKER, ctx.name);
  env.save();
  ctx.log('info', `app env: LETS_ENCRYPT_ENV= TIMEOUT=${Math.round(settings.deployTimeoutSeconds)}${
    Object.keys(settings.extraEnv).length ? ` extra: ${Object.keys(settings.extraEnv).join(', ')}` : ''
  }${app.port ? ` ingress overlay on port ${app.port}` : ''}`);
}

/** Copies the customisation's compose overlay into the run's recipe checkout (reference §13.3:
 *  its presence makes every deploy chaos, which cc-ci's deploys are anyway). */
function copyRecipeOverlay(ctx: RunContext): void {
  const overlay = ctx.workspace!.customization.overlay;
  if (overlay) copyFileSync(overlay.path, join(ctx.workspace!.recipeDir, OVERLAY_FILE));
}

/** Writes the local ingress overlay into the run's recipe checkout (the tree is the run's own). */
function writeIngressOverlay(ctx: RunContext, o: AppObservation): void {
  const port = o.lease?.port;
  const target = o.facts?.appPort;
  if (!port) throw new Error('local ingress mode but the app has no host port leased');
  if (!target) {
    throw new TestFailure(
      'cannot tell which port the app serves on: the app service has no ' +
        '"traefik.http.services.<name>.loadbalancer.server.port" label with a number',
    );
  }
  const yaml = [
    '# Written by cc-ci for a local swarm without Traefik: publish the app port on the host.',
    'version: "3.8"',
    'services:',
    '  app:',
    '    ports:',
    `      - target: ${target}`,
    `        published: ${port}`,
    '        protocol: tcp',
    '        mode: host',
    '',
  ].join('\n');
  mkdirSync(ctx.workspace!.recipeDir, { recursive: true });
  writeFileSync(join(ctx.workspace!.recipeDir, INGRESS_OVERLAY), yaml);
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
