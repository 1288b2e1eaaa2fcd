import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { stringify } from 'yaml';
import { projectRoot } from '../controller/model/project-root.js';
import { ensureImages } from '../fixtures/images.js';
import { buildRecipeRepo } from '../fixtures/recipe-repo.js';

/**
 * cc-ci against the baseline it must beat, side by side in one run (docs/testing.md, How long a
 * run takes): `bench/abra-script.sh` — a plain shell script doing by hand what a maintainer would,
 * the same abra calls one after another with abra waiting for convergence — and `cc-ci run` handed
 * to a running `cc-ci serve` (the production shape: the server is up when the maintainer asks),
 * on the bundled webnotes recipe, alternating which goes first, BENCH_RUNS rounds of:
 *
 *   install   a fresh app of the head, converged and serving
 *   full      install, the upgrade from the last release (data kept), backup and restore
 *   red       a head whose healthcheck never passes (`unhealthy`, the server's default 600 s
 *             deploy deadline) and one whose app exits at once (`crash-loop`): time to "failed"
 *
 * Each wall time is taken by this process from starting the command to the line that says the
 * verdict (`VERDICT …` from the script, the run's `verdict: …` log line from cc-ci), and to the
 * command's exit (everything cleaned up). Printed per run and as medians with cc-ci ÷ script.
 * Writes dist/bench-baseline.json, and every command's output to dist/bench-baseline/.
 *
 *   npm run bench:baseline              (BENCH_RUNS=3 by default)
 */

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROOT = projectRoot();
const ABRA = resolve(ROOT, 'test', 'support', 'abra');
const CLI = resolve(ROOT, 'dist', 'controller', 'cli', 'main.js');
const SCRIPT = resolve(ROOT, 'bench', 'abra-script.sh');
const SCRIPT_PORT = 22290;
const HTTP_PORT = 22291;

const LOGS = resolve('dist', 'bench-baseline');
let logs = 0;
rmSync(LOGS, { recursive: true, force: true });
mkdirSync(LOGS, { recursive: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await ensureImages();
const dir = mkdtempSync(join(tmpdir(), 'ccci-bench-baseline-'));
const abraDir = join(dir, 'abra');
mkdirSync(join(abraDir, 'catalogue'), { recursive: true });
await execa(ABRA, ['server', 'add', '--local', '-n'], { env: { ABRA_DIR: abraDir } });
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  stringify({
    abra: { bin: ABRA, dir: abraDir },
    ingress: { portRange: [22200, 22289] },
    http: { port: HTTP_PORT, host: '127.0.0.1' },
    log: { level: 'warn' },
    capacity: 1,
  }),
);
const stateDir = join(dir, 'state');
const repo = (await buildRecipeRepo('webnotes', join(dir, 'webnotes'))).path;
const env = { CCCI_CONFIG: configFile, CCCI_STATE_DIR: stateDir, CCCI_ABRA: ABRA };

interface Timing {
  who: 'script' | 'cc-ci';
  what: string;
  verdict: string;
  verdictMs: number;
  doneMs: number;
}

/** Runs a command, timing the first stdout/stderr line that matches `verdictLine` and the exit. */
async function timed(who: Timing['who'], what: string, cmd: string, args: string[], extraEnv: Record<string, string>, verdictLine: RegExp): Promise<Timing> {
  const t0 = performance.now();
  let verdictMs = NaN;
  let verdict = 'none';
  const child = execa(cmd, args, { env: { ...process.env, ...extraEnv }, reject: false, timeout: 1_800_000, buffer: false });
  const out: string[] = [];
  const watch = (stream: NodeJS.ReadableStream | null) => {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      out.push(text);
      const lines = (rest + text).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const m = verdictLine.exec(line);
        if (m && Number.isNaN(verdictMs)) {
          verdictMs = performance.now() - t0;
          verdict = m[1] ?? 'unknown';
        }
      }
    });
  };
  watch(child.stdout);
  watch(child.stderr);
  const r = await child;
  const doneMs = performance.now() - t0;
  const t: Timing = { who, what, verdict, verdictMs: Math.round(verdictMs), doneMs: Math.round(doneMs) };
  // Every command's output is kept, to see where the time went.
  writeFileSync(join(LOGS, `${++logs}-${who}-${what.replace(/\W+/g, '-')}.log`), out.join(''));
  console.log(JSON.stringify({ ...t, exitCode: r.exitCode }));
  return t;
}

let n = 0;
function script(ref: string, mode: 'install' | 'full', what: string): Promise<Timing> {
  // The maintainer's own ABRA_DIR: the server entry shared (the same swarm), a recipe clone of its own.
  const own = join(dir, `script-abra-${++n}`);
  mkdirSync(join(own, 'recipes'), { recursive: true });
  symlinkSync(join(abraDir, 'servers'), join(own, 'servers'));
  symlinkSync(join(abraDir, 'catalogue'), join(own, 'catalogue'));
  return timed('script', what, SCRIPT, [repo, ref, mode, String(SCRIPT_PORT)], { ABRA, ABRA_DIR: own }, /^VERDICT (\w+)/);
}

function ccci(ref: string, tiers: string, what: string): Promise<Timing> {
  return timed(
    'cc-ci',
    what,
    process.execPath,
    [CLI, 'run', 'webnotes', '--repo', repo, '--ref', ref, '--tiers', tiers, '--json'],
    env,
    /\] (?:ERROR )?verdict: (\w+)/,
  );
}

const serve: ResultPromise = execa(process.execPath, [CLI, 'serve'], { env: { ...process.env, ...env }, reject: false, buffer: false, stdio: 'ignore' });
const results: Timing[] = [];
try {
  for (let i = 0; i < 100 && !(await fetch(`http://127.0.0.1:${HTTP_PORT}/healthz`).catch(() => null))?.ok; i++) await sleep(200);
  // One of each first, untimed: the first deploy of an image and the server's first abra calls.
  await ccci('main', 'install', 'warm-up');
  await script('main', 'install', 'warm-up');

  const FULL = 'install,upgrade,backup,restore';
  for (let i = 0; i < RUNS; i++) {
    const pairs: [() => Promise<Timing>, () => Promise<Timing>][] = [
      [() => script('main', 'install', 'install'), () => ccci('main', 'install', 'install')],
      [() => script('main', 'full', 'full'), () => ccci('main', FULL, 'full')],
      [() => script('unhealthy', 'install', 'red: unhealthy'), () => ccci('unhealthy', 'install', 'red: unhealthy')],
      [() => script('crash-loop', 'install', 'red: crash-loop'), () => ccci('crash-loop', 'install', 'red: crash-loop')],
    ];
    for (const [a, b] of pairs) {
      // Alternate which goes first, so a slower or warmer swarm favours neither.
      const [first, second] = i % 2 === 0 ? [a, b] : [b, a];
      results.push(await first(), await second());
    }
  }
} finally {
  serve.kill('SIGTERM');
  await serve;
  rmSync(dir, { recursive: true, force: true });
}

const rows = [...new Set(results.map((r) => r.what))].map((what) => {
  const of = (who: Timing['who']) => results.filter((r) => r.what === what && r.who === who);
  const s = of('script');
  const c = of('cc-ci');
  const m = (xs: Timing[], k: 'verdictMs' | 'doneMs') => median(xs.map((x) => x[k]));
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  return {
    what,
    runs: c.length,
    verdicts: { script: [...new Set(s.map((x) => x.verdict))], ccci: [...new Set(c.map((x) => x.verdict))] },
    scriptMs: { verdict: m(s, 'verdictMs'), done: m(s, 'doneMs') },
    ccciMs: { verdict: m(c, 'verdictMs'), done: m(c, 'doneMs') },
    ratio: { verdict: ratio(m(c, 'verdictMs'), m(s, 'verdictMs')), done: ratio(m(c, 'doneMs'), m(s, 'doneMs')) },
  };
});
mkdirSync('dist', { recursive: true });
writeFileSync('dist/bench-baseline.json', `${JSON.stringify({ rows, results }, null, 2)}\n`);
console.log('\n| run | script: verdict / done | cc-ci: verdict / done | cc-ci ÷ script (verdict / done) |');
console.log('| --- | --- | --- | --- |');
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
for (const r of rows) {
  console.log(
    `| ${r.what} (${r.verdicts.script.join('/')} · ${r.verdicts.ccci.join('/')}) | ${s(r.scriptMs.verdict)} / ${s(r.scriptMs.done)} | ${s(r.ccciMs.verdict)} / ${s(r.ccciMs.done)} | ${r.ratio.verdict} / ${r.ratio.done} |`,
  );
}
