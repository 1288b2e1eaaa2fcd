import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { runDoctor } from './doctor.js';
import { readForgeSecrets, SecretFileError, type ForgeSecrets } from '../clients/forge/secrets.js';
import { Manager } from '../runtime/manager.js';
import { invalidSpecsOf, runDescription, runDetail, runList, runListJson, type RunList } from '../views/run-view.js';
import { parseRunQuery } from '../views/run-query.js';
import { kindOf, parseDocument, parseSpecText } from '../model/spec.js';
import { validateWarm, writeWarmFile } from '../model/warm.js';
import { writeSpecFile } from '../model/spec-files.js';
import { EXIT, UsageError, loadEnv, openStore, out, type GlobalOptions } from './common.js';
import { printInvalidSpecs, printRunDescription, printRunList, type GetRunsOptions } from './run-output.js';
import { describeRunRemote, getRunsRemote, logsRemote, remoteOf, type RemoteOptions } from './remote.js';
import { carryOutCancel } from './embedded.js';
import { followRun, formatEvent } from '../views/follow.js';

/** `cc-ci serve`: the controller, until SIGTERM/SIGINT. */
export async function serveCommand(o: GlobalOptions): Promise<number> {
  const env = loadEnv(o);
  // Bad secret files stop us before anything is claimed.
  let secrets: ForgeSecrets | null;
  try {
    secrets = readForgeSecrets(env.config.forge);
  } catch (e) {
    throw e instanceof SecretFileError ? new UsageError(e.message) : e;
  }
  // Imported lazily (fastify, gitea-js, prom-client would slow every other command).
  const { serveRunnables } = await import('./serve.js');
  const manager = new Manager({ paths: env.paths, config: env.config, logger: env.logger, mode: 'serve' });
  try {
    // The forge and the HTTP server are runnables of the manager like its own: started after
    // them, stopped before them. The forge reporter follows the runs; no run waits for it.
    await manager.start(
      serveRunnables({ ...env, store: manager.store, secrets, registries: [manager.metrics.registry], cancel: (name, reason) => manager.cancel(name, reason) }),
    );
  } catch (e) {
    await manager.stop('cc-ci serve could not start');
    throw e instanceof Error && 'syscall' in e && e.syscall === 'listen'
      ? new UsageError(`cannot listen on ${env.config.http.host}:${env.config.http.port}: ${e.message}`)
      : e;
  }
  out(`cc-ci serving ${env.paths.root} (capacity ${env.config.capacity}); specs in ${env.paths.specs}`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      out(`${sig}: stopping (no new work; steps in flight are stopped and recorded)`);
      void manager.stop(`controller received ${sig}`).then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return EXIT.passed;
}

/** `cc-ci apply -f FILE`: validates a Run or Warm file and drops it into specs/ or warm/. */
export function applyCommand(file: string, o: GlobalOptions): number {
  const env = loadEnv(o);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const doc = parseDocument(text);
  if (doc.ok && kindOf(doc.value) === 'Warm') {
    const warm = validateWarm(doc.value);
    if (!warm.ok) throw new UsageError(`${file}: ${warm.error}`);
    mkdirSync(env.paths.warm, { recursive: true, mode: 0o700 });
    const written = writeWarmFile(env.paths, warm.spec);
    out(`warm/${warm.spec.metadata.name} configured (${written})`);
    return EXIT.passed;
  }
  const parsed = parseSpecText(text);
  if (!parsed.ok) throw new UsageError(`${file}: ${parsed.error}`);
  const store = openStore(env.paths, true);
  const existing = store.getRun(parsed.spec.metadata.name);
  store.close();
  if (existing) {
    if (existing.specHash === parsed.hash) {
      out(`run/${existing.name} unchanged (${existing.phase}${existing.result ? `, ${existing.result}` : ''})`);
      return EXIT.passed;
    }
    throw new UsageError(`a run named ${existing.name} already exists with a different spec; runs are not edited — use a new name`);
  }
  const written = writeSpecFile(env.paths, parsed.spec);
  out(`run/${parsed.spec.metadata.name} created (${written})`);
  return EXIT.passed;
}

/** Runs `cc-ci get runs` lists at most (`--limit`): it reads a local database, but prints a page, not the history. */
const CLI_MAX_LIMIT = 10_000;

/** `cc-ci get runs [-o json|wide] [--limit N] [--cursor C] [--recipe R] [--result R] [--lane L] [--pr N] [--repo O/N]`:
 *  the unfinished runs, then the newest finished ones (PAGE_SIZE unless --limit says otherwise); with --server,
 *  from that server, whose pages are at most MAX_PAGE_SIZE. */
export async function getRunsCommand(o: GlobalOptions & RemoteOptions & GetRunsOptions): Promise<number> {
  const remote = remoteOf(o);
  if (remote) return getRunsRemote(remote, o);
  const env = loadEnv(o);
  const { limit, cursor, recipe, result, lane, pr, repo } = o;
  const parsed = parseRunQuery({ limit, cursor, recipe, result, lane, pr, repo }, CLI_MAX_LIMIT);
  if (!parsed.ok) throw new UsageError(`get runs: ${parsed.error}`);
  const empty: RunList = { unfinished: [], unfinishedTotal: 0, finished: [], next: null, invalidSpecs: [], invalidTotal: 0 };
  let list = empty;
  if (existsSync(env.paths.db)) {
    const store = openStore(env.paths);
    try {
      list = runList(store, parsed.query);
    } finally {
      store.close();
    }
  }
  return printRunList(runListJson(list), { output: o.output, limit: parsed.query.limit });
}

/** `cc-ci describe run NAME`. */
export async function describeRunCommand(name: string, o: GlobalOptions & RemoteOptions): Promise<number> {
  const remote = remoteOf(o);
  if (remote) return describeRunRemote(remote, name);
  const env = loadEnv(o);
  const store = openStore(env.paths);
  const d = runDetail(store, env.paths, name);
  const invalid = invalidSpecsOf(store, name);
  store.close();
  if (!d) {
    if (invalid.length) return printInvalidSpecs(invalid);
    throw new UsageError(`no run named ${name}`);
  }
  printRunDescription(runDescription(d));
  return EXIT.passed;
}

/** `cc-ci logs [-f] NAME`. */
export async function logsCommand(name: string, o: GlobalOptions & RemoteOptions & { follow?: boolean }): Promise<number> {
  const remote = remoteOf(o);
  if (remote) return logsRemote(remote, name, o.follow === true);
  const env = loadEnv(o);
  const store = openStore(env.paths);
  if (!store.getRun(name)) {
    store.close();
    throw new UsageError(`no run named ${name}`);
  }
  let t0: number | null = null;
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  await followRun(
    store,
    name,
    (e) => {
      t0 ??= e.ts;
      out(formatEvent(e, t0));
    },
    { follow: o.follow === true, signal: ac.signal },
  );
  store.close();
  return EXIT.passed;
}

/**
 * `cc-ci delete run NAME`: removes the spec file (the finalizer: cancel, tear down) and records
 * the cancel. With no controller serving the state directory, it carries out the teardown itself.
 */
export async function deleteRunCommand(name: string, o: GlobalOptions): Promise<number> {
  const env = loadEnv(o, true);
  const store = openStore(env.paths);
  const run = store.getRun(name);
  if (!run) {
    store.close();
    throw new UsageError(`no run named ${name}`);
  }
  if (run.specPath && existsSync(run.specPath)) unlinkSync(run.specPath);
  if (run.phase === 'Done') {
    out(`run/${name} deleted (it had finished: ${run.result}; its record stays for history)`);
    store.close();
    return EXIT.passed;
  }
  if (!run.cancelRequested) {
    store.updateRun(name, { cancelRequested: true, cancelReason: 'deleted with cc-ci delete run' });
    store.appendEvent(name, 'warn', 'cancel requested: deleted with cc-ci delete run');
  }
  await carryOutCancel(env, store, name, {
    byOther: `run/${name} deleted; the controller running it cancels it and tears it down (cc-ci logs -f ${name})`,
    here: `run/${name} deleted; tearing it down here`,
  });
  return EXIT.passed;
}

/** `cc-ci doctor`. */
export async function doctorCommand(o: GlobalOptions): Promise<number> {
  const env = loadEnv(o);
  const checks = await runDoctor(env.config, env.paths);
  for (const c of checks) {
    out(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'}  ${c.name}: ${c.detail}`);
    if (!c.ok && c.fix) out(`      fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => !c.ok && c.required);
  out(failed.length ? `\n${failed.length} required check(s) failed` : '\nall required checks passed');
  return failed.length ? EXIT.failed : EXIT.passed;
}
