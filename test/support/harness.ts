import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { Store } from '../../state/store.js';
import type { RunRecord } from '../../state/types.js';
import { stringify } from 'yaml';
import { ensureImages } from '../../fixtures/images.js';
import { buildRecipeRepo, type RecipeRepo } from '../../fixtures/recipe-repo.js';

/**
 * Shared set-up for integration tests on the real swarm: a private canonical ABRA_DIR, state
 * directory and config per test file; the abra test double; the bundled recipes as real git
 * repositories; and the leak check every test ends with.
 */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'dist', 'controller', 'cli', 'main.js');
export const ABRA_DOUBLE = join(ROOT, 'test', 'support', 'abra');

export interface TestEnv {
  dir: string;
  abraDir: string;
  stateDir: string;
  configFile: string;
  env: Record<string, string>;
  cleanup(): void;
}

export interface TestConfig {
  capacity?: number;
  deploySeconds?: number;
  httpSeconds?: number;
  tierSeconds?: number;
  runSeconds?: number;
  teardownSeconds?: number;
  portRange: [number, number];
  maxAttempts?: number;
  resyncSeconds?: number;
  warmHeadCheckSeconds?: number;
  warmCheckSeconds?: number;
}

export async function ensureSwarm(): Promise<void> {
  const state = (await execa('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'], { timeout: 30_000 })).stdout.trim();
  if (state !== 'active') throw new Error('the swarm is not active: run ./setup.sh --no-demo first');
  const proxy = await execa('docker', ['network', 'inspect', 'proxy'], { reject: false, timeout: 30_000 });
  if (proxy.exitCode !== 0) throw new Error('the proxy network is missing: run ./setup.sh --no-demo first');
  await ensureImages();
}

export async function makeTestEnv(c: TestConfig, extraEnv: Record<string, string> = {}): Promise<TestEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'ccci-it-'));
  const abraDir = join(dir, 'abra');
  const stateDir = join(dir, 'state');
  mkdirSync(abraDir, { recursive: true });
  const configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    stringify({
      capacity: c.capacity ?? 2,
      abra: { dir: abraDir, callTimeoutSeconds: 300 },
      ingress: { mode: 'local', portRange: c.portRange },
      // Any free port: several controllers may serve at once on one test machine.
      http: { port: 0 },
      timeouts: {
        deploySeconds: c.deploySeconds ?? 60,
        httpSeconds: c.httpSeconds ?? 30,
        tierSeconds: c.tierSeconds ?? 600,
        runSeconds: c.runSeconds ?? 1200,
        teardownSeconds: c.teardownSeconds ?? 180,
      },
      resyncSeconds: c.resyncSeconds ?? 2,
      warm: { headCheckSeconds: c.warmHeadCheckSeconds ?? 60, checkSeconds: c.warmCheckSeconds ?? 60, leaseWaitSeconds: 900 },
      maxAttempts: c.maxAttempts ?? 2,
      // `cc-ci serve` runs the janitor at startup: on the shared test swarm it must never reap
      // another suite's (or agent's) app that no run of this state directory claims.
      janitor: { unknownOwnerAgeSeconds: 10 * 365 * 24 * 3600 },
    }),
  );
  const env: Record<string, string> = {
    ABRA_DIR: abraDir,
    CCCI_ABRA: ABRA_DOUBLE,
    CCCI_STATE_DIR: stateDir,
    CCCI_CONFIG: configFile,
    ...extraEnv,
  };
  await execa(ABRA_DOUBLE, ['server', 'add', '--local', '-n'], { env: { ...env }, timeout: 30_000 });
  return { dir, abraDir, stateDir, configFile, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const repoCache = new Map<string, RecipeRepo>();

/** The bundled recipe as a real git repository (built once per test file). */
export async function recipeRepo(recipe: 'webnotes' | 'plainpage'): Promise<RecipeRepo> {
  const cached = repoCache.get(recipe);
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), `ccci-repo-${recipe}-`));
  rmSync(dir, { recursive: true, force: true });
  const repo = await buildRecipeRepo(recipe, dir);
  repoCache.set(recipe, repo);
  return repo;
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function cli(t: TestEnv, args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const r = await execa('node', [CLI, ...args], { env: { ...t.env, ...extraEnv }, reject: false, timeout: 900_000 });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const servers = new Set<ResultPromise>();

/** Starts `cc-ci serve` as a real child process. */
export function serve(t: TestEnv, extraEnv: Record<string, string> = {}): ResultPromise {
  const child = execa('node', [CLI, 'serve'], { env: { ...t.env, ...extraEnv }, reject: false, detached: false });
  servers.add(child);
  void child.finally(() => servers.delete(child));
  return child;
}

/** Stops every server a test started and left running (a test that timed out), so the next
 *  test gets the state directory. */
export async function stopLeftoverServers(): Promise<void> {
  for (const s of [...servers]) {
    s.kill('SIGKILL');
    await s;
  }
}

/** Resolves once a `cc-ci serve` child says it is serving (it has claimed the state directory). */
export async function serving(server: ResultPromise, timeoutMs = 60_000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`cc-ci serve did not start within ${timeoutMs} ms: ${seen}`)), timeoutMs);
    server.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('cc-ci serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void server.then((r) => {
      clearTimeout(timer);
      reject(new Error(`cc-ci serve exited ${r.exitCode}: ${r.stderr}`));
    });
  });
}

export async function getRunsJson(t: TestEnv): Promise<{
  runs: {
    name: string;
    phase: string;
    result: string | null;
    reason: string | null;
    domains: string[];
    queuePosition: number | null;
    waiting: string | null;
    attempt: number;
  }[];
  invalidSpecs: { file: string; name: string | null; error: string }[];
}> {
  const r = await cli(t, ['get', 'runs', '-o', 'json']);
  if (r.exitCode !== 0) throw new Error(`get runs failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Awaited<ReturnType<typeof getRunsJson>>;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 300_000, everyMs = 500): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function lines(args: string[]): Promise<string[]> {
  const r = await execa('docker', args, { timeout: 60_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

export interface Leftovers {
  services: string[];
  containers: string[];
  volumes: string[];
  secrets: string[];
  configs: string[];
  networks: string[];
  envFiles: string[];
}

/** Everything of an app that could leak: by the stack label, by name prefix, and its .env. */
export async function leftoversOf(t: TestEnv, domain: string): Promise<Leftovers> {
  const stack = domain.replace(/\./g, '_').slice(0, 45);
  const label = `label=com.docker.stack.namespace=${stack}`;
  const pre = (xs: string[]) => xs.filter((x) => x.startsWith(`${stack}_`));
  const envDir = join(t.abraDir, 'servers', 'default');
  return {
    services: [
      ...new Set([
        ...(await lines(['service', 'ls', '--filter', label, '--format', '{{.Name}}'])),
        ...pre(await lines(['service', 'ls', '--format', '{{.Name}}'])),
      ]),
    ],
    containers: await lines(['ps', '-a', '--filter', label, '--format', '{{.Names}}']),
    volumes: [
      ...new Set([
        ...(await lines(['volume', 'ls', '--filter', label, '--format', '{{.Name}}'])),
        ...pre(await lines(['volume', 'ls', '--format', '{{.Name}}'])),
      ]),
    ],
    secrets: pre(await lines(['secret', 'ls', '--format', '{{.Name}}'])),
    configs: pre(await lines(['config', 'ls', '--format', '{{.Name}}'])),
    networks: [
      ...new Set([
        ...(await lines(['network', 'ls', '--filter', label, '--format', '{{.Name}}'])),
        ...pre(await lines(['network', 'ls', '--format', '{{.Name}}'])),
      ]),
    ],
    envFiles: existsSync(envDir) ? readdirSync(envDir).filter((f) => f.startsWith(domain)) : [],
  };
}

export const NOTHING: Leftovers = { services: [], containers: [], volumes: [], secrets: [], configs: [], networks: [], envFiles: [] };

export interface RunLeftovers {
  /** Per app domain, what is left of it on the swarm and in the canonical ABRA_DIR. */
  apps: Record<string, Leftovers>;
  /** Whether the run's own ABRA_DIR (its recipe clone, its backups) is still there. */
  abraDir: boolean;
  /** Backup snapshots of the run's apps anywhere abra keeps them (the run's and the canonical ABRA_DIR). */
  snapshots: string[];
}

/** Everything a finished run could have left: its apps, its ABRA_DIR, its backup snapshots. */
export async function runLeftovers(t: TestEnv, run: string, domains: string[]): Promise<RunLeftovers> {
  const apps: Record<string, Leftovers> = {};
  for (const d of domains) apps[d] = await leftoversOf(t, d);
  const runAbra = join(runDirOf(t, run), 'abra');
  const snapshots: string[] = [];
  for (const backups of [join(runAbra, 'backups'), join(t.abraDir, 'backups')]) {
    for (const d of domains) {
      const where = join(backups, d);
      if (existsSync(where)) snapshots.push(...readdirSync(where).map((f) => join(where, f)));
    }
  }
  return { apps, abraDir: existsSync(runAbra), snapshots };
}

/** What runLeftovers says of a run that left nothing. */
export function nothingOfRun(domains: string[]): RunLeftovers {
  return { apps: Object.fromEntries(domains.map((d) => [d, NOTHING])), abraDir: false, snapshots: [] };
}

/** Test apps of this env that exist on the swarm at all (by the cc-ci domain pattern). */
export async function anyTestStacks(): Promise<string[]> {
  const names = await lines(['service', 'ls', '--format', '{{.Name}}']);
  return [...new Set(names.filter((n) => /^[a-z0-9]{1,4}-[0-9a-f]{6}_ci_localhost_/.test(n)).map((n) => n.split('_').slice(0, 3).join('_')))];
}

/** The stacks of every app the env's controller ever leased (its state store says). */
export async function envStacks(t: TestEnv): Promise<string[]> {
  if (!existsSync(join(t.stateDir, 'cc-ci.db'))) return [];
  return withStore(t, (store) => store.listRuns().flatMap((r) => store.appsOfRun(r.name).map((a) => a.stack)));
}

/** Last-resort clean-up after a failed test, of this env's stacks only (other test runs may share
 *  the swarm), so one failure does not cascade. */
export async function removeEnvStacks(t: TestEnv | undefined): Promise<void> {
  if (!t) return;
  const live = new Set(await anyTestStacks());
  await forceRemoveStacks((await envStacks(t)).filter((s) => live.has(s)));
}

/** Last-resort clean-up after a failed test, so one failure does not cascade. */
export async function forceRemoveStacks(stacks: string[]): Promise<void> {
  for (const s of stacks) {
    await execa('docker', ['stack', 'rm', s], { reject: false, timeout: 60_000 });
  }
}

export function runDirOf(t: TestEnv, run: string): string {
  return join(t.stateDir, 'runs', run);
}

let faultStates = 0;

/** Fault injection for the abra double (docs/abra-double.md), with a fresh call counter. */
export function faultEnv(t: TestEnv, spec: string): Record<string, string> {
  const dir = join(t.dir, `faults-${++faultStates}`);
  mkdirSync(dir, { recursive: true });
  return { ABRA_DOUBLE_FAULTS: spec, ABRA_DOUBLE_STATE: dir };
}

/** How often the abra double was called for a command under a fault env. */
export function callsOf(env: Record<string, string>, command: string): number {
  const file = join(env.ABRA_DOUBLE_STATE ?? '', 'calls.json');
  if (!existsSync(file)) return 0;
  return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>)[command] ?? 0;
}

/** Drops a run spec into the env's specs/ directory, as a person or the intake would. */
export function dropSpec(
  t: TestEnv,
  name: string,
  o: { recipe?: string; repo: string; ref: string; tiers?: string[]; extra?: Record<string, unknown> },
): string {
  mkdirSync(join(t.stateDir, 'specs'), { recursive: true });
  const file = join(t.stateDir, 'specs', `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name },
      spec: { recipe: o.recipe ?? 'webnotes', source: { repo: o.repo, ref: o.ref }, tiers: o.tiers ?? ['install'], ...o.extra },
    }),
  );
  return file;
}

/** Reads the env's state store (WAL: safe beside a running controller). */
export function withStore<T>(t: TestEnv, fn: (s: Store) => T): T {
  const s = new Store(join(t.stateDir, 'cc-ci.db'));
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

export function readRun(t: TestEnv, name: string): RunRecord | undefined {
  return withStore(t, (s) => s.getRun(name));
}

export function untilDone(t: TestEnv, name: string, timeoutMs = 300_000): Promise<RunRecord> {
  return waitFor(
    `${name} to be done`,
    async () => {
      const r = readRun(t, name);
      return r?.phase === 'Done' ? r : undefined;
    },
    timeoutMs,
    500,
  );
}
