import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../controller/model/config.js';
import { createLogger } from '../controller/model/log.js';
import { ensureStateDirs, statePaths } from '../controller/model/paths.js';
import { projectRoot } from '../controller/model/project-root.js';
import { writeSpecFile } from '../controller/model/spec-files.js';
import { validateSpec, type RunSpec } from '../controller/model/spec.js';
import { RuntimeMetrics } from '../controller/engine/metrics.js';
import { SpecSync } from '../controller/runtime/spec-sync.js';
import { Retention } from '../reconcilers/retention.js';
import { ForgeStore } from '../state/forge-store.js';
import { Store } from '../state/store.js';
import { TIER_NAMES, type RunResult } from '../state/types.js';

/**
 * History at scale: 10,000 finished runs — several recipes, both lanes, five tiers and a few
 * log lines and steps each, most from a pull request (reported), a spec file each on disk — and
 * then the real `cc-ci serve` on them (its own process, on loopback; the forge configured but
 * unreachable, the Docker daemon pointed at nothing so the janitor touches no swarm). Prints:
 * page, API and badge latencies (p50/p99 over BENCH_REQUESTS sequential requests, client side),
 * answer sizes, serve's idle CPU (% of one core over BENCH_IDLE_SECONDS, from /proc) and RSS, the
 * time of a spec resync over every file (first, and unchanged), the old full-scan query for
 * comparison, and a retention pass. Targets: pages and badges p99 ≤ 20 ms, idle CPU < 0.5 %,
 * RSS < 150 MB, resync < 200 ms. It measures; it asserts nothing.
 *
 *   npm run bench:history     (BENCH_RUNS=10000 BENCH_REQUESTS=200 BENCH_SETTLE_SECONDS=60 BENCH_IDLE_SECONDS=60)
 */

const RUNS = Number(process.env.BENCH_RUNS ?? 10_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const SETTLE_SECONDS = Number(process.env.BENCH_SETTLE_SECONDS ?? 60);
const RECIPES = ['webnotes', 'plainpage', 'custom-html', 'nextcloud', 'gitea', 'wordpress', 'keycloak', 'matrix-synapse'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => ok(port));
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'ccci-bench-history-'));
const paths = statePaths(join(dir, 'state'));
ensureStateDirs(paths);
const port = await freePort();
writeFileSync(join(dir, 'token'), 'bench-token\n');
writeFileSync(join(dir, 'secret'), 'bench-secret\n');
mkdirSync(join(dir, 'abra'), { recursive: true });
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  stringify({
    abra: { dir: join(dir, 'abra') },
    ingress: { mode: 'local' },
    http: { port, host: '127.0.0.1' },
    log: { level: 'warn' },
    forge: { url: 'http://127.0.0.1:9', tokenFile: join(dir, 'token'), webhookSecretFile: join(dir, 'secret'), mode: 'webhook' },
    repos: RECIPES.map((r) => `recipes/${r}`),
    // Nothing is old enough to prune while serve idles: its retention pass is measured apart below.
    retention: { logs: { keepPerRecipe: 1_000_000 }, summaries: { keepPerRecipe: 1_000_000 } },
  }),
);
const config = loadConfig(configFile, {});

// ---- 10,000 finished runs --------------------------------------------------------------------

const t0 = performance.now();
const store = new Store(paths.db);
const forge = new ForgeStore(store);
const DAY = 86_400_000;
const start = Date.now() - 80 * DAY;
const results: RunResult[] = ['passed', 'passed', 'passed', 'passed', 'failed', 'failed', 'error', 'cancelled'];
const sha = (i: number) => (i * 2654435761).toString(16).padStart(8, '0').repeat(5).slice(0, 40);
store.atomically(() => {
  for (let i = 0; i < RUNS; i++) {
    const recipe = RECIPES[i % RECIPES.length]!;
    const lane = i % 3 === 0 ? 'quick' : 'cold';
    const name = `${recipe}-r${i}`;
    const pr = i % 5 === 0 ? null : 1 + (i % 97);
    const input = {
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name },
      spec: {
        recipe,
        source: { repo: `https://git.example.org/recipes/${recipe}.git`, ref: sha(i) },
        lane,
        ...(pr ? { trigger: { kind: 'comment', forge: { owner: 'recipes', repo: recipe, pr, comment: 1000 + i, by: 'alice', sha: sha(i) } } } : {}),
      },
    };
    const v = validateSpec(input);
    if (!v.ok) throw new Error(v.error);
    const spec: RunSpec = v.spec;
    const file = writeSpecFile(paths, spec);
    const created = start + Math.floor((i * 80 * DAY) / RUNS);
    store.insertRun({ name, specJson: JSON.stringify(spec), specHash: v.hash, specPath: file, recipe, lane });
    store.db.prepare('UPDATE runs SET created_at = ? WHERE name = ?').run(created, name);
    store.planTiers(name, TIER_NAMES);
    const result = results[i % results.length]!;
    store.db
      .prepare("UPDATE tiers SET result = ?, started_at = ?, finished_at = ?, duration_ms = ? WHERE run = ? AND tier = 'install'")
      .run(result === 'passed' ? 'pass' : 'fail', created + 5_000, created + 65_000, 60_000, name);
    store.appendEvents(name, [
      { kind: 'info', text: `accepted from ${name}.yaml: ${recipe} @ ${sha(i)} (${lane})` },
      { kind: 'phase', text: 'Preparing' },
      { kind: 'tier', text: 'install' },
      { kind: 'out', text: 'abra app deploy: service converged 1/1' },
      { kind: 'result', text: `${result}: install` },
    ]);
    for (const step of ['prepare', 'abra app new', 'abra app deploy']) store.endStep(store.beginStep(name, 1, step), 'done');
    if (pr) {
      forge.ensureReport(name);
      forge.updateReport(name, { final: true });
    }
    store.updateRun(name, { phase: 'Done', result, reason: `${result}: install`, startedAt: created + 2_000, finishedAt: created + 300_000 });
    store.recordSpecFile({ path: file, name, status: 'valid', error: null, hash: null });
  }
});
console.log(`created ${RUNS} finished runs of ${RECIPES.length} recipes with spec files in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// ---- a resync over every spec file; the old full scan -------------------------------------------

const newSync = () => new SpecSync(store, paths.specs, createLogger('warn'), { enqueue: () => undefined, accepted: () => undefined, cancel: () => undefined });
const timed = (fn: () => void) => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};
const firstResync = timed(() => newSync().resync());
// A new SpecSync knows nothing of the directory: a full look, as after a file was added or removed.
const fullResyncs = Array.from({ length: 10 }, () => timed(() => newSync().resync()));
const sync = newSync();
await sleep(2_500);
sync.resync();
const quietResyncs = Array.from({ length: 10 }, () => timed(() => sync.resync()));
const fullScan = Array.from({ length: 10 }, () => timed(() => void store.listRuns()));
store.close();

// ---- the real serve --------------------------------------------------------------------------

const main = resolve(projectRoot(), 'dist', 'controller', 'cli', 'main.js');
const serve = spawn(process.execPath, [main, 'serve', '--state-dir', paths.root, '--config', configFile], {
  // The janitor asks Docker for test apps: here it asks nothing that exists, so it reaps nothing of the swarm's.
  env: { ...process.env, DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`, CCCI_LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let serveErr = '';
serve.stderr.on('data', (b: Buffer) => (serveErr += b.toString()));
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {
    // not listening yet
  }
  if (i > 300 || serve.exitCode !== null) throw new Error(`serve did not start: ${serveErr}`);
  await sleep(100);
}

async function measure(path: string): Promise<{ p50: number; p99: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < REQUESTS + 10; i++) {
    const t = performance.now();
    const r = await fetch(`${base}${path}`);
    const body = await r.arrayBuffer();
    if (!r.ok) throw new Error(`${path}: ${r.status} ${Buffer.from(body).toString()}`);
    if (i >= 10) times.push(performance.now() - t); // the first few warm the server up
    bytes = body.byteLength;
  }
  return { p50: pct(times, 50), p99: pct(times, 99), bytes };
}

// ---- serve at rest, then under requests ------------------------------------------------------

const ticksOf = (pid: number | undefined) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (1/100 s)
};
const ticks = () => ticksOf(serve.pid);
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${serve.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const startupCpu = ticks() / 100;
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
// A browser on /runs: the live runs list stays open while serve idles.
const watching = new AbortController();
const live = await fetch(`${base}/events/runs`, { signal: watching.signal });
void live.body?.pipeTo(new WritableStream(), { signal: watching.signal }).catch(() => undefined);
// Settled: what its start read and built is behind it, and collected (V8 shrinks the heap a while after start: one large GC).
await sleep(SETTLE_SECONDS * 1000);
// Alongside, for scale: node doing nothing, and node running only prom-client's default metrics
// (what controller/http/metrics.ts registers: among them an event-loop delay monitor sampling every 10 ms).
const prom = resolve(projectRoot(), 'node_modules', 'prom-client', 'index.js');
const alongside = [
  spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)']),
  spawn(process.execPath, ['-e', `require(${JSON.stringify(prom)}).collectDefaultMetrics(); setInterval(() => {}, 1 << 30)`]),
];
await sleep(1_000);
const c0 = ticks();
const a0 = alongside.map((p) => ticksOf(p.pid));
const w0 = performance.now();
await sleep(IDLE_SECONDS * 1000);
const wall = performance.now() - w0;
const share = (t: number) => ((t / 100) * 1000) / wall;
const cpu = share(ticks() - c0);
const [bare, promOnly] = alongside.map((p, i) => share(ticksOf(p.pid) - a0[i]!));
for (const p of alongside) p.kill();
const idleRss = rssMb();
watching.abort();
console.log(
  `\nserve: started in ${startupCpu.toFixed(1)} s of CPU; at rest over ${IDLE_SECONDS} s, ${SETTLE_SECONDS} s after its start (resync every ${config.resyncSeconds} s, heartbeat, janitor, reporter resync, retention, the live runs list open)`,
);
console.log(`  idle CPU ${(cpu * 100).toFixed(2)} % of a core (target < 0.5 %)   RSS ${idleRss.toFixed(0)} MB (target < 150 MB)`);
console.log(
  `  for scale, alongside: node doing nothing ${(bare! * 100).toFixed(2)} %; node running only prom-client's default metrics ${(promOnly! * 100).toFixed(2)} %`,
);

const api = (await (await fetch(`${base}/api/runs`)).json()) as { next: string };
const rows: [string, string][] = [
  ['/runs (first page)', '/runs'],
  ['/runs?recipe&result (filtered)', '/runs?recipe=gitea&result=failed'],
  ['/runs?pr&repo (one pull request)', '/runs?pr=42&repo=recipes/gitea'],
  ['/runs?lane=quick&result=error', '/runs?lane=quick&result=error'],
  ['/runs?cursor (second page)', `/runs?cursor=${encodeURIComponent(api.next)}`],
  ['/badge/<recipe>.svg', '/badge/gitea.svg'],
  ['/badge/<recipe>.svg?lane=quick', '/badge/gitea.svg?lane=quick'],
  ['/recipes', '/recipes'],
  ['/recipes/<recipe> (history page)', '/recipes/gitea'],
  ['/api/runs (first page)', '/api/runs'],
  ['/api/runs?limit=200', '/api/runs?limit=200'],
];
console.log(`\nHTTP, ${REQUESTS} sequential requests each, client and server on this machine (load average ${load()}; target p99 ≤ 20 ms)`);
for (const [what, path] of rows) {
  const m = await measure(path);
  console.log(`  ${what.padEnd(36)} p50 ${ms(m.p50).padStart(9)}   p99 ${ms(m.p99).padStart(9)}   ${(m.bytes / 1024).toFixed(1).padStart(7)} KiB`);
}

// V8 keeps the heap it grew under the burst until it has been idle a while (about a minute).
const rssAfter = rssMb();
await sleep(90_000);
console.log(`  RSS right after the requests ${rssAfter.toFixed(0)} MB; 90 s later ${rssMb().toFixed(0)} MB`);
serve.kill('SIGTERM');
await new Promise((r) => serve.once('exit', r));

console.log(`\nspec resync over ${RUNS} files (target < 200 ms)`);
console.log(`  first (reads and parses every file)            ${ms(firstResync)}`);
console.log(`  a file added or removed (lstat of every file)  p50 ${ms(pct(fullResyncs, 50))}   max ${ms(Math.max(...fullResyncs))}`);
console.log(`  directory unchanged (lstat of the directory)   p50 ${ms(pct(quietResyncs, 50))}   max ${ms(Math.max(...quietResyncs))}`);
console.log(`\nthe old pages' full scan (store.listRuns(), every run) p50 ${ms(pct(fullScan, 50))}, before any rendering`);

// ---- a retention pass --------------------------------------------------------------------------

if (process.env.BENCH_KEEP) {
  console.log(`\nkept ${dir}`);
  process.exit(0);
}
const again = new Store(paths.db);
const keep = 500;
config.retention.logs.keepPerRecipe = keep;
const retention = new Retention({ store: again, config, paths, logger: createLogger('warn'), metrics: new RuntimeMetrics() });
const r0 = performance.now();
const report = await retention.runOnce();
console.log(
  `\nretention pass (logs: keep ${keep} per recipe; at most ${config.retention.runsPerPass} runs a pass): ${report.pruned.length} runs pruned (${report.logLines} log lines, ${report.steps} steps, their run dirs and spec files) in ${ms(performance.now() - r0)}, in slices of ≤ 25 ms`,
);
again.close();
if (serveErr.trim()) console.log(`\nserve's stderr:\n${serveErr.trim().split('\n').slice(0, 10).join('\n')}`);
rmSync(dir, { recursive: true, force: true });
