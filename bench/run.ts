import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { loadConfig } from '../controller/model/config.js';
import { createLogger } from '../controller/model/log.js';
import { Manager } from '../controller/runtime/manager.js';
import { statePaths } from '../controller/model/paths.js';
import { projectRoot } from '../controller/model/project-root.js';
import { writeSpecFile } from '../controller/model/spec-files.js';
import { validateSpec } from '../controller/model/spec.js';
import { ensureImages } from '../fixtures/images.js';
import { buildRecipeRepo } from '../fixtures/recipe-repo.js';
import { Store } from '../state/store.js';
import { TIER_NAMES, type RunEvent, type StepRecord, type TierName } from '../state/types.js';
import { WorkQueue } from '../controller/engine/workqueue.js';

/**
 * Where a run's time goes, and how much of it is the controller's own. Runs the bundled
 * `webnotes` recipe (install tier) N times through an in-process controller on the real swarm
 * and reports, per run: prepare, deploy (app new → converged), probe (converged → serving),
 * teardown; time inside external programs (abra, docker, git: the step journal); and the
 * controller's own CPU time (process.cpuUsage excludes children). Then micro-benchmarks of the
 * store and the work queue. Writes dist/bench-report.json.
 *
 * With BENCH_TIERS=full it instead climbs the whole ladder (install, upgrade, backup, restore,
 * custom) on each bundled recipe, webnotes and plainpage, and reports how long every tier took
 * and how many times abra was asked to create and deploy an app (the abra double's call
 * counter) — the numbers docs/testing.md quotes.
 *
 *   npm run bench                       (BENCH_RUNS=5 to change the number of runs)
 *   BENCH_TIERS=full npm run bench      (BENCH_RUNS runs of each recipe, default 1)
 */

const FULL = process.env.BENCH_TIERS === 'full';
const RUNS = Number(process.env.BENCH_RUNS ?? (FULL ? 1 : 3));

interface RunTiming {
  name: string;
  result: string | null;
  totalMs: number;
  prepareMs: number;
  deployMs: number;
  probeMs: number;
  teardownMs: number;
  stepsMs: number;
  controllerCpuMs: number;
}

function at(events: RunEvent[], re: RegExp): number | null {
  return events.find((e) => re.test(e.text))?.ts ?? null;
}

function span(a: number | null, b: number | null): number {
  return a !== null && b !== null ? b - a : NaN;
}

interface BenchEnv {
  dir: string;
  paths: ReturnType<typeof statePaths>;
  config: ReturnType<typeof loadConfig>;
}

async function benchEnv(): Promise<BenchEnv> {
  await ensureImages();
  const dir = mkdtempSync(join(tmpdir(), 'ccci-bench-'));
  const abraDir = join(dir, 'abra');
  const abra = resolve(projectRoot(), 'test', 'support', 'abra');
  mkdirSync(abraDir, { recursive: true });
  await execa(abra, ['server', 'add', '--local', '-n'], { env: { ABRA_DIR: abraDir } });
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, stringify({ abra: { bin: abra, dir: abraDir }, ingress: { portRange: [22000, 22099] }, log: { level: 'warn' } }));
  return { dir, paths: statePaths(join(dir, 'state')), config: loadConfig(configFile, {}) };
}

/** One run through an in-process controller, as `cc-ci run` does it. */
async function oneRun(env: BenchEnv, name: string, recipe: string, repo: string, tiers: TierName[]) {
  const manager = new Manager({ paths: env.paths, config: env.config, logger: createLogger('warn'), mode: 'run', only: name });
  const parsed = validateSpec({
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: { recipe, source: { repo, ref: 'main' }, tiers },
  });
  if (!parsed.ok) throw new Error(parsed.error);
  const cpu0 = process.cpuUsage();
  await manager.start();
  writeSpecFile(env.paths, parsed.spec);
  manager.resync();
  const run = await manager.waitForRun(name);
  const cpu = process.cpuUsage(cpu0);
  const events = manager.store.eventsSince(name, 0, 100_000);
  const steps: StepRecord[] = manager.store.getSteps(name);
  const tierRecords = manager.store.getTiers(name);
  await manager.stop('bench');
  return { run, cpu, events, steps, tiers: tierRecords };
}

async function benchRuns(): Promise<RunTiming[]> {
  const env = await benchEnv();
  const repo = await buildRecipeRepo('webnotes', join(env.dir, 'webnotes'));
  const timings: RunTiming[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const { run, cpu, events, steps } = await oneRun(env, `bench-${i}`, 'webnotes', repo.path, ['install']);
      const stepsMs = steps.reduce((a, s) => a + ((s.finishedAt ?? s.startedAt) - s.startedAt), 0);
      timings.push({
        name: run.name,
        result: run.result,
        totalMs: (run.finishedAt ?? 0) - (run.startedAt ?? 0),
        prepareMs: span(run.startedAt, at(events, /^tiers:/)),
        deployMs: span(at(events, /^abra app new/), at(events, /^converged /)),
        probeMs: span(at(events, /^converged /), at(events, /^serving:/)),
        teardownMs: span(at(events, /^TearingDown$/), at(events, /^teardown verified/)),
        stepsMs,
        controllerCpuMs: (cpu.user + cpu.system) / 1000,
      });
      console.log(JSON.stringify(timings[timings.length - 1]));
    }
  } finally {
    rmSync(env.dir, { recursive: true, force: true });
  }
  return timings;
}

interface FullRun {
  recipe: string;
  name: string;
  result: string | null;
  reason: string | null;
  totalMs: number;
  teardownMs: number;
  tiers: Record<string, { result: string | null; durationMs: number | null; reason: string | null }>;
  /** Where the upgrade tier's time goes: tearing down install's app, installing the base
   *  release until it serves, writing the test data, and the in-place upgrade to the head
   *  until it serves again (with the data check). */
  upgradeSplitMs: { releaseInstallApp: number; installBase: number; seed: number; upgradeToHead: number };
  /** How often abra was called, per command (the abra double's counter). */
  abraCalls: Record<string, number>;
}

/** The first event matching `re` at or after `from`. */
function after(events: RunEvent[], from: number | null, re: RegExp): number | null {
  if (from === null) return null;
  return events.find((e) => e.ts >= from && re.test(e.text))?.ts ?? null;
}

function upgradeSplit(events: RunEvent[]): FullRun['upgradeSplitMs'] {
  const started = at(events, /^upgrade: started/);
  const leased = after(events, started, /^leased .* for upgrade$/);
  const baseServing = after(events, leased, /^serving:/);
  const seeded = after(events, baseServing, /^test data before the upgrade:/);
  const done = after(events, seeded, /^upgrade: (pass|FAIL)/);
  return {
    releaseInstallApp: span(started, leased),
    installBase: span(leased, baseServing),
    seed: span(baseServing, seeded),
    upgradeToHead: span(seeded, done),
  };
}

/** The whole ladder on each bundled recipe: per-tier durations and deploy counts. */
async function benchFullRuns(): Promise<FullRun[]> {
  const env = await benchEnv();
  const out: FullRun[] = [];
  try {
    for (const recipe of ['webnotes', 'plainpage'] as const) {
      const repo = await buildRecipeRepo(recipe, join(env.dir, recipe));
      for (let i = 0; i < RUNS; i++) {
        const calls = join(env.dir, `calls-${recipe}-${i}`);
        mkdirSync(calls, { recursive: true });
        // The abra double counts every call under this directory (docs/abra-double.md).
        process.env.ABRA_DOUBLE_STATE = calls;
        const { run, events, tiers } = await oneRun(env, `bench-full-${recipe}-${i}`, recipe, repo.path, [...TIER_NAMES]);
        delete process.env.ABRA_DOUBLE_STATE;
        const countsFile = join(calls, 'calls.json');
        const r: FullRun = {
          recipe,
          name: run.name,
          result: run.result,
          reason: run.reason,
          totalMs: (run.finishedAt ?? 0) - (run.startedAt ?? 0),
          teardownMs: span(at(events, /^TearingDown$/), at(events, /^teardown verified/)),
          tiers: Object.fromEntries(tiers.map((t) => [t.tier, { result: t.result, durationMs: t.durationMs, reason: t.reason }])),
          upgradeSplitMs: upgradeSplit(events),
          abraCalls: existsSync(countsFile) ? (JSON.parse(readFileSync(countsFile, 'utf8')) as Record<string, number>) : {},
        };
        out.push(r);
        console.log(JSON.stringify(r));
      }
    }
  } finally {
    rmSync(env.dir, { recursive: true, force: true });
  }
  return out;
}

/** The store's hot paths: appending log events and admitting runs. */
function benchStore(): Record<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'ccci-bench-store-'));
  const store = new Store(join(dir, 'cc-ci.db'));
  try {
    store.insertRun({ name: 'r', specJson: '{}', specHash: 'x', specPath: null, recipe: 'r', lane: 'cold' });
    const n = 20_000;
    let t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) store.appendEvent('r', 'out', `  line ${i} of abra output`);
    const appendUs = Number(process.hrtime.bigint() - t) / 1000 / n;
    t = process.hrtime.bigint();
    for (let i = 0; i < 2000; i++) store.atomically(() => store.countActiveRuns());
    const admitUs = Number(process.hrtime.bigint() - t) / 1000 / 2000;
    t = process.hrtime.bigint();
    for (let i = 0; i < 200; i++) store.eventsSince('r', n - 500, 500);
    const tailUs = Number(process.hrtime.bigint() - t) / 1000 / 200;
    return { appendEventMicros: appendUs, admissionCheckMicros: admitUs, tail500EventsMicros: tailUs };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchQueue(): Promise<Record<string, number>> {
  let done = 0;
  const q = new WorkQueue({ concurrency: 4, reconcile: async () => void done++ });
  const n = 50_000;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) q.add(`k${i % 5000}`);
  await q.idle();
  return { queueAddMicros: Number(process.hrtime.bigint() - t) / 1000 / n, reconciles: done };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

if (FULL) {
  const full = await benchFullRuns();
  const summary = Object.fromEntries(
    (['webnotes', 'plainpage'] as const).map((recipe) => {
      const rs = full.filter((r) => r.recipe === recipe);
      return [
        recipe,
        {
          runs: rs.length,
          results: rs.map((r) => r.result),
          medianMs: {
            total: median(rs.map((r) => r.totalMs)),
            teardown: median(rs.map((r) => r.teardownMs)),
            ...Object.fromEntries(TIER_NAMES.map((t) => [t, median(rs.map((r) => r.tiers[t]?.durationMs ?? NaN))])),
          },
          upgradeSplitMs: Object.fromEntries(
            (['releaseInstallApp', 'installBase', 'seed', 'upgradeToHead'] as const).map((k) => [k, median(rs.map((r) => r.upgradeSplitMs[k]))]),
          ),
          tierResults: rs[0] ? Object.fromEntries(TIER_NAMES.map((t) => [t, rs[0]!.tiers[t]?.result ?? null])) : {},
          appNew: rs.map((r) => r.abraCalls['app.new'] ?? 0),
          appDeploy: rs.map((r) => r.abraCalls['app.deploy'] ?? 0),
        },
      ];
    }),
  );
  mkdirSync('dist', { recursive: true });
  writeFileSync('dist/bench-report.json', `${JSON.stringify({ mode: 'full', summary, runs: full }, null, 2)}\n`);
  console.log(JSON.stringify(summary, null, 2));
} else {
  const runs = await benchRuns();
  const store = benchStore();
  const queue = await benchQueue();
  const summary = {
    runs: runs.length,
    medianMs: {
      total: median(runs.map((r) => r.totalMs)),
      prepare: median(runs.map((r) => r.prepareMs)),
      deploy: median(runs.map((r) => r.deployMs)),
      probe: median(runs.map((r) => r.probeMs)),
      teardown: median(runs.map((r) => r.teardownMs)),
      insideExternalSteps: median(runs.map((r) => r.stepsMs)),
      controllerCpu: median(runs.map((r) => r.controllerCpuMs)),
    },
    controllerCpuShareOfWall: median(runs.map((r) => r.controllerCpuMs / r.totalMs)),
    store,
    queue,
  };
  mkdirSync('dist', { recursive: true });
  writeFileSync('dist/bench-report.json', `${JSON.stringify({ summary, runs }, null, 2)}\n`);
  console.log(JSON.stringify(summary, null, 2));
}
