import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { loadConfig } from '../controller/model/config.js';
import { createLogger } from '../controller/model/log.js';
import { statePaths } from '../controller/model/paths.js';
import { projectRoot } from '../controller/model/project-root.js';
import { writeSpecFile } from '../controller/model/spec-files.js';
import { validateSpec } from '../controller/model/spec.js';
import { writeWarmFile, validateWarm } from '../controller/model/warm.js';
import { Manager } from '../controller/runtime/manager.js';
import { ensureImages } from '../fixtures/images.js';
import { buildRecipeRepo } from '../fixtures/recipe-repo.js';
import { WarmStore } from '../state/warm-store.js';

/**
 * Cold against quick, side by side in one run (docs/testing.md, The quick lane). The bundled
 * `webnotes` recipe gets a Warm object; the controller promotes its head and creates the warm app
 * (set-up, timed apart). Then the same pull-request head — one commit past the promoted one — is
 * tested BENCH_RUNS times in each lane, alternating: a cold run (the full ladder on fresh apps)
 * and a quick run (the warm app upgraded in place: upgrade, backup, restore, custom). Reported:
 * each run's wall time from admission to verdict, the warm app's return to canonical after each
 * quick run (which the next quick run waits for, but the verdict does not), and quick/cold.
 *
 *   npm run bench:lanes            (BENCH_RUNS=3 to change the number of pairs; default 1)
 */

const RUNS = Number(process.env.BENCH_RUNS ?? 1);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

await ensureImages();
const dir = mkdtempSync(join(tmpdir(), 'ccci-bench-lanes-'));
const abraDir = join(dir, 'abra');
const abra = resolve(projectRoot(), 'test', 'support', 'abra');
mkdirSync(abraDir, { recursive: true });
await execa(abra, ['server', 'add', '--local', '-n'], { env: { ABRA_DIR: abraDir } });
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  stringify({
    abra: { bin: abra, dir: abraDir },
    domain: { base: 'lanes.localhost' },
    ingress: { portRange: [22100, 22199] },
    log: { level: 'warn' },
    capacity: 1,
    warm: { headCheckSeconds: 5 },
  }),
);
const paths = statePaths(join(dir, 'state'));
const config = loadConfig(configFile, {});

const built = await buildRecipeRepo('webnotes', join(dir, 'webnotes'));
const repo = built.path;
const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim();
// The pull request's head: one commit past the promoted head.
git('checkout', '--quiet', '-b', 'feature', 'main');
writeFileSync(join(repo, 'README.md'), 'webnotes, with a feature\n');
git('-c', 'user.name=bench', '-c', 'user.email=bench@example.org', 'commit', '--quiet', '-am', 'docs: a feature');
git('checkout', '--quiet', 'main');
const feature = git('rev-parse', 'feature');

// One in-process controller that runs every run and keeps the warm app, as `cc-ci serve` does.
const manager = new Manager({ paths, config, logger: createLogger('warn'), mode: 'run', warm: true });
await manager.start();
const warm = new WarmStore(manager.store);
const ready = () => {
  const w = warm.get('webnotes');
  return w?.health === 'healthy' && !w.upkeep && !w.holder && !w.returnPending && w.canonicalCommit !== null;
};
const until = async (what: string, fn: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
};

const spec = validateWarm({
  apiVersion: 'cc-ci/v1',
  kind: 'Warm',
  metadata: { name: 'webnotes' },
  spec: { recipe: 'webnotes', source: { repo, branch: 'main' } },
});
if (!spec.ok) throw new Error(spec.error);
const t0 = Date.now();
writeWarmFile(paths, spec.spec);
manager.enqueueWarm('webnotes');
await until('the warm app', ready, 900_000);
const setupMs = Date.now() - t0;
console.log(JSON.stringify({ setup: 'promotion run + warm app created', ms: setupMs }));

async function oneRun(name: string, lane: 'cold' | 'quick') {
  const parsed = validateSpec({ apiVersion: 'cc-ci/v1', kind: 'Run', metadata: { name }, spec: { recipe: 'webnotes', source: { repo, ref: feature }, lane } });
  if (!parsed.ok) throw new Error(parsed.error);
  writeSpecFile(paths, parsed.spec);
  manager.resync();
  const run = await manager.waitForRun(name);
  const tiers = Object.fromEntries(manager.store.getTiers(name).map((t) => [t.tier, { result: t.result, ms: t.durationMs }]));
  return { name, lane, result: run.result, laneNote: run.laneNote, wallMs: (run.finishedAt ?? 0) - (run.startedAt ?? 0), tiers };
}

const pairs: { cold: Awaited<ReturnType<typeof oneRun>>; quick: Awaited<ReturnType<typeof oneRun>>; returnMs: number }[] = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const cold = await oneRun(`lanes-cold-${i}`, 'cold');
    console.log(JSON.stringify(cold));
    const quick = await oneRun(`lanes-quick-${i}`, 'quick');
    console.log(JSON.stringify(quick));
    const r0 = Date.now();
    await until('the warm app to be returned', ready, 600_000);
    const returnMs = Date.now() - r0;
    console.log(JSON.stringify({ returnToCanonicalMs: returnMs }));
    pairs.push({ cold, quick, returnMs });
  }
} finally {
  await manager.stop('bench over');
  // The warm app is this bench's own: remove its stack, volumes and secrets.
  const stack = `warm-webnotes_${config.domain.base.replace(/\./g, '_')}`;
  await execa('docker', ['stack', 'rm', stack], { reject: false });
  // Volumes can go only once the stack's containers have: wait for them (up to a minute).
  for (let i = 0; i < 60; i++) {
    const left = (await execa('docker', ['ps', '-aq', '--filter', `label=com.docker.stack.namespace=${stack}`], { reject: false })).stdout.trim();
    if (!left) break;
    await sleep(1_000);
  }
  const vols = (await execa('docker', ['volume', 'ls', '-q', '--filter', `name=${stack}`], { reject: false })).stdout.split('\n').filter(Boolean);
  if (vols.length) await execa('docker', ['volume', 'rm', '-f', ...vols], { reject: false });
  const secrets = (await execa('docker', ['secret', 'ls', '-q', '--filter', `name=${stack}`], { reject: false })).stdout.split('\n').filter(Boolean);
  if (secrets.length) await execa('docker', ['secret', 'rm', ...secrets], { reject: false });
  rmSync(dir, { recursive: true, force: true });
}

const cold = median(pairs.map((p) => p.cold.wallMs));
const quick = median(pairs.map((p) => p.quick.wallMs));
const summary = {
  pairs: pairs.length,
  results: pairs.map((p) => [p.cold.result, p.quick.result]),
  quickServedWarm: pairs.every((p) => p.quick.laneNote === null),
  medianMs: { cold, quick, returnToCanonical: median(pairs.map((p) => p.returnMs)), setup: setupMs },
  quickOverCold: Math.round((quick / cold) * 1000) / 1000,
  tiersMs: {
    cold: Object.fromEntries(Object.entries(pairs[0]?.cold.tiers ?? {}).map(([k, v]) => [k, v.ms])),
    quick: Object.fromEntries(Object.entries(pairs[0]?.quick.tiers ?? {}).map(([k, v]) => [k, v.ms])),
  },
};
mkdirSync('dist', { recursive: true });
writeFileSync('dist/bench-lanes.json', `${JSON.stringify({ summary, pairs }, null, 2)}\n`);
console.log(JSON.stringify(summary, null, 2));
