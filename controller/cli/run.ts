import { resolve } from 'node:path';
import { runSummary, type RunSummary } from '../../reconcilers/run.js';
import { TIER_NAMES, type RunRecord, type TierName } from '../../state/types.js';
import { cliRunName } from '../model/naming.js';
import { withoutCredentials } from '../model/redact.js';
import { validateSpec, type RunSpecInput } from '../model/spec.js';
import { writeSpecFile } from '../model/spec-files.js';
import { EXIT, UsageError, duration, err, loadEnv, openStore, out, type GlobalOptions } from './common.js';
import { describeHolder, embeddedController } from './embedded.js';
import { followRun, formatEvent } from '../views/follow.js';

export interface RunCommandOptions extends GlobalOptions {
  repo: string;
  ref: string;
  tiers?: string;
  lane?: string;
  json?: boolean;
  name?: string;
}

/** Builds the spec for `cc-ci run`, validated by the same schema as every spec file. */
export function cliSpec(recipe: string, o: RunCommandOptions, cwd = process.cwd()): RunSpecInput {
  const looksLikeUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(o.repo) || /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/.test(o.repo);
  const tiers = o.tiers
    ?.split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (tiers) {
    const bad = tiers.filter((t) => !(TIER_NAMES as readonly string[]).includes(t));
    if (bad.length) throw new UsageError(`unknown tier ${bad.join(', ')} (tiers: ${TIER_NAMES.join(', ')})`);
  }
  return {
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name: o.name ?? cliRunName(recipe.toLowerCase(), o.ref) },
    spec: {
      recipe,
      source: { repo: looksLikeUrl ? o.repo : resolve(cwd, o.repo), ref: o.ref },
      ...(o.lane ? { lane: o.lane as 'cold' | 'quick' } : {}),
      ...(tiers ? { tiers: tiers as TierName[] } : {}),
      trigger: { kind: 'cli' },
    },
  };
}

/**
 * `cc-ci run`: writes the spec, then either follows the run a serving controller executes or,
 * when none serves this state directory, runs an embedded controller for this one run.
 * Exit status: 0 passed, 1 failed, 2 error or cancelled (bad input, infrastructure).
 */
export async function runCommand(recipe: string, o: RunCommandOptions): Promise<number> {
  const env = loadEnv(o, true);
  const input = cliSpec(recipe, o);
  const parsed = validateSpec(input);
  if (!parsed.ok) throw new UsageError(`invalid run: ${parsed.error}`);
  const spec = parsed.spec;
  const name = spec.metadata.name;
  const progress = o.json ? err : out;

  const store = openStore(env.paths, true);
  if (store.getRun(name)) throw new UsageError(`a run named ${name} already exists in ${env.paths.root}`);
  // A serving controller runs it; another `cc-ci run` only runs its own, so wait for it.
  const manager = await embeddedController(env, store, {
    run: name,
    handles: (holder) => holder.mode === 'serve',
    waiting: (holder) => progress(`waiting: ${describeHolder(holder)} is using ${env.paths.root}; this run starts when it has finished`),
  });
  const file = writeSpecFile(env.paths, spec);
  manager?.resync();
  progress(`run ${name}: ${spec.spec.recipe} @ ${spec.spec.source.ref} from ${withoutCredentials(spec.spec.source.repo)}`);
  progress(`spec ${file}; ${manager ? 'running it here' : 'a serving controller runs it'}`);

  // Ctrl-C cancels the run (and tears it down); a second one leaves at once.
  let interrupted = 0;
  const onSignal = () => {
    interrupted++;
    if (interrupted > 1) process.exit(EXIT.error);
    progress('interrupted: cancelling the run and tearing it down (Ctrl-C again to leave now)');
    if (manager) manager.cancel(name, 'interrupted from the terminal');
    else {
      store.updateRun(name, { cancelRequested: true, cancelReason: 'interrupted from the terminal' });
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // A serving controller takes the file in when its watch or resync sees it: until then there is
  // no run to follow.
  if (!manager && !(await appeared(store, name, TAKE_IN_WITHIN_MS))) {
    err(`the serving controller did not take ${file} in within ${TAKE_IN_WITHIN_MS / 1000}s; see cc-ci get runs`);
    store.close();
    return EXIT.error;
  }
  let t0: number | null = null;
  const final = await followRun(
    manager?.store ?? store,
    name,
    (e) => {
      t0 ??= e.ts;
      progress(formatEvent(e, t0));
    },
    { follow: true },
  );
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  const readStore = manager?.store ?? store;
  const run = final ?? readStore.getRun(name);
  const summary = run ? summarize(readStore, run) : null;
  if (manager) await manager.stop('run finished');
  else store.close();
  if (!run || !summary) {
    err(`run ${name} disappeared from the store`);
    return EXIT.error;
  }
  if (o.json) {
    out(JSON.stringify(jsonResult(summary)));
  } else {
    out('');
    out(`verdict: ${summary.result} in ${duration(summary.verdictMs ?? summary.durationMs)} — ${summary.reason ?? ''}`);
    for (const [tier, t] of Object.entries(summary.tiers)) {
      out(`  ${tier.padEnd(8)} ${t.result.padEnd(8)} ${duration(t.durationMs).padStart(7)}  ${t.reason ?? ''}`);
    }
    if (summary.verdictMs !== null && summary.durationMs !== null) out(`cleaned up ${duration(summary.durationMs - summary.verdictMs)} after the verdict`);
  }
  // The verdict stands and decides the exit status; leftovers are the server's to reap.
  if (summary.teardownProblem) err(`warning: teardown failed after the verdict: ${summary.teardownProblem} (cc-ci janitor reaps what is left)`);
  return summary.result === 'passed' ? EXIT.passed : summary.result === 'failed' ? EXIT.failed : EXIT.error;
}

/** How long `cc-ci run` waits for a serving controller to take its spec file in (its resync is at most 30 s). */
const TAKE_IN_WITHIN_MS = 90_000;

async function appeared(store: ReturnType<typeof openStore>, name: string, withinMs: number): Promise<boolean> {
  const end = Date.now() + withinMs;
  while (!store.getRun(name)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

function summarize(store: ReturnType<typeof openStore>, run: RunRecord): RunSummary {
  return runSummary(
    run,
    store.getTiers(run.name),
    store.appsOfRun(run.name).map((a) => a.domain),
  );
}

/** The `--json` shape the issue names: name, result, tiers, domain, durationMs (and a little more). */
export function jsonResult(s: RunSummary): Record<string, unknown> {
  return {
    name: s.name,
    result: s.result,
    reason: s.reason,
    tiers: s.tiers,
    domain: s.domains[0] ?? null,
    domains: s.domains,
    durationMs: s.durationMs,
    verdictMs: s.verdictMs,
    teardownProblem: s.teardownProblem,
    recipe: s.recipe,
    ref: s.ref,
    commit: s.commit,
    attempt: s.attempt,
    retries: s.retries,
    understanding: s.understanding,
  };
}
