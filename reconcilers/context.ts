import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Abra } from '../controller/abra.js';
import type { Config } from '../controller/config.js';
import { Docker } from '../controller/docker.js';
import type { Logger } from '../controller/log.js';
import { runAbraDir, runDir, type StatePaths } from '../controller/paths.js';
import type { GitOptions } from '../controller/git.js';
import type { ChildTracker, ProcessResult } from '../controller/process.js';
import { Redactor } from '../controller/redact.js';
import type { RunSpec } from '../controller/spec.js';
import type { Customization, Settings } from '../recipes/customization.js';
import type { Store } from '../state/store.js';
import type { EventKind, Phase, RunRecord } from '../state/types.js';
import type { AppsApi } from './apps.js';

/**
 * Everything one attempt of one run needs: its record, its log, its step journal, its own
 * abra and docker clients (bound to its ABRA_DIR, its cancel signal and the child tracker).
 */

/** The recipe failed a check: the tier fails, the run's verdict is `failed`. */
export class TestFailure extends Error {}
/** The run's input is wrong (unknown ref, bad settings, a repository that does not exist). */
export class InputError extends Error {}
/** The run was cancelled (spec deleted, `cc-ci delete run`, superseded). */
export class CancelledError extends Error {}
/** The run or a tier ran out of time. */
export class DeadlineError extends Error {}
/**
 * One external call (abra, docker, git) did not return within its own time limit and was
 * killed. The message names the tier it hung in. A hung tool is infrastructure, not the
 * recipe's verdict: the run ends `error` (not retried: a second try would hang as long).
 */
export class CallTimeoutError extends DeadlineError {}
/**
 * An external call was killed by a signal cc-ci did not send (the OOM killer, an operator, a
 * crash of the tool): infrastructure. The attempt is torn down and retried from a clean slate,
 * within maxAttempts, the reason on record.
 */
export class CallKilledError extends Error {}
/**
 * The swarm itself failed the app (a task rejected for a Docker networking fault, not for
 * anything in the recipe): infrastructure. The attempt is torn down and retried from a clean
 * slate, within maxAttempts, the reason on record.
 */
export class SwarmFaultError extends Error {}
/** The controller is shutting down: the attempt is interrupted, not failed; the next start
 *  tears it down and tries again. */
export class ShutdownError extends Error {}

export interface Workspace {
  /** The run's own ABRA_DIR. */
  abraDir: string;
  /** The run's clone of the recipe, inside its ABRA_DIR. */
  recipeDir: string;
  /** The commit the run tests. */
  commit: string;
  settings: Settings;
  customization: Customization;
}

/** An app of the run that is deployed, converged and serving. */
export interface SubjectApp {
  purpose: string;
  /** The recipe commit it runs, and how the log names it. */
  commit: string;
  describe: string;
  domain: string;
  stack: string;
  port: number | null;
  /** Where the app answers from this host (http://127.0.0.1:<port> locally, https://<domain> behind Traefik). */
  baseUrl: string;
  /** The Host header to send with requests to baseUrl. */
  host: string;
}

export interface RunContextOptions {
  store: Store;
  /** The app controller: deploys and tears down the run's apps. */
  apps: AppsApi;
  config: Config;
  paths: StatePaths;
  logger: Logger;
  run: RunRecord;
  spec: RunSpec;
  signal: AbortSignal;
  tracker: ChildTracker;
}

export class RunContext {
  readonly store: Store;
  readonly config: Config;
  readonly paths: StatePaths;
  readonly logger: Logger;
  readonly spec: RunSpec;
  readonly signal: AbortSignal;
  readonly redactor: Redactor;
  /** Records every child the run starts (abra, docker, git, hooks, checks) for crash recovery. */
  readonly tracker: ChildTracker;
  readonly abra: Abra;
  readonly docker: Docker;
  readonly apps: AppsApi;
  readonly dir: string;
  readonly abraDir: string;
  private readonly logFile: string;
  private _run: RunRecord;
  workspace: Workspace | null = null;
  /** The app the later tiers test (set by install, replaced by upgrade); shared by derived contexts. */
  subject: { current: SubjectApp | null } = { current: null };
  /** Told which tier the attempt climbs (with the tier's abort handle), so the Run reconciler can
   *  stop a tier at its deadline; shared by derived contexts. */
  onTier: (tier: string | null, abort: AbortController | null) => void = () => undefined;
  /** The snapshot the backup tier took, for the restore tier; shared by derived contexts. */
  backup: { current: { snapshot: string; marker: string; where: string; checked: boolean } | null } = { current: null };

  constructor(
    private readonly o: RunContextOptions,
    redactor?: Redactor,
  ) {
    this.redactor = redactor ?? new Redactor();
    this.store = o.store;
    this.apps = o.apps;
    this.config = o.config;
    this.paths = o.paths;
    this.logger = o.logger.child({ run: o.run.name });
    this.spec = o.spec;
    this.signal = o.signal;
    this.tracker = o.tracker;
    this._run = o.run;
    this.dir = runDir(o.paths, o.run.name);
    this.abraDir = runAbraDir(o.paths, o.run.name);
    mkdirSync(this.dir, { recursive: true });
    this.logFile = join(this.dir, 'log.txt');
    this.abra = new Abra({
      bin: o.config.abra.bin,
      abraDir: this.abraDir,
      server: o.config.abra.server,
      callTimeoutMs: o.config.abra.callTimeoutSeconds * 1000,
      signal: o.signal,
      tracker: o.tracker,
      onLine: (stream, line) => this.log(stream, `  ${line}`),
    });
    this.docker = new Docker({ timeoutMs: o.config.timeouts.dockerSeconds * 1000, signal: o.signal, tracker: o.tracker });
  }

  /** The same run under another signal (a tier's deadline), sharing its log, secrets and workspace. */
  withSignal(signal: AbortSignal): RunContext {
    const c = new RunContext({ ...this.o, run: this._run, signal }, this.redactor);
    c.workspace = this.workspace;
    c.subject = this.subject;
    c.backup = this.backup;
    c.onTier = this.onTier;
    return c;
  }

  get name(): string {
    return this._run.name;
  }

  /** How the run calls git: its timeout, its cancel signal, its child tracker. */
  get gitOptions(): GitOptions {
    return { timeoutMs: this.config.timeouts.gitSeconds * 1000, signal: this.signal, tracker: this.tracker };
  }

  /** Where the run is, for messages: `teardown`, the tier that is running, or `preparation`. */
  where(): string {
    const run = this.store.getRun(this.name);
    if (run?.phase === 'TearingDown') return 'teardown';
    return this.store.runningTier(this.name)?.tier ?? 'preparation';
  }

  get attempt(): number {
    return this._run.attempt;
  }

  get run(): RunRecord {
    return this._run;
  }

  refresh(): RunRecord {
    const r = this.store.getRun(this.name);
    if (r) this._run = r;
    return this._run;
  }

  /** Appends to the run's log (store events and log.txt), secrets masked. */
  log(kind: EventKind, text: string): void {
    const safe = this.redactor.apply(text);
    this.store.appendEvent(this.name, kind, safe);
    try {
      appendFileSync(this.logFile, `${new Date().toISOString()} ${kind.padEnd(5)} ${safe}\n`);
    } catch {
      /* the store copy is the record; the file is a convenience */
    }
  }

  /** Moves the run to a phase (read from the store: contexts derived for tiers share it). */
  setPhase(phase: Phase, note?: string): void {
    const current = this.store.getRun(this.name)?.phase;
    if (current !== phase) this.store.updateRun(this.name, { phase });
    this._run = { ...this._run, phase };
    if (current !== phase || note) this.log('phase', note ? `${phase}: ${note}` : phase);
  }

  throwIfCancelled(): void {
    if (!this.signal.aborted) return;
    const reason: unknown = this.signal.reason;
    if (reason instanceof Error) throw reason;
    throw new CancelledError(typeof reason === 'string' ? reason : 'cancelled');
  }

  /** Records a step before it is taken and its outcome after: the journal a restart reads. */
  async step<T>(name: string, fn: () => Promise<T>, detail?: string): Promise<T> {
    this.throwIfCancelled();
    const id = this.store.beginStep(this.name, this.attempt, name, detail === undefined ? undefined : this.redactor.apply(detail));
    this.log('step', detail ? `${name}: ${detail}` : name);
    try {
      const out = await fn();
      this.store.endStep(id, 'done');
      return out;
    } catch (e) {
      this.store.endStep(id, 'failed', e instanceof Error ? this.redactor.apply(e.message).slice(0, 2000) : String(e));
      // A call killed because the run was cancelled or timed out reports that, not its exit code.
      if (this.signal.aborted) this.throwIfCancelled();
      throw callFault(e, name, this.where()) ?? e;
    }
  }
}

function resultOf(e: unknown): ProcessResult | null {
  const r = e instanceof Error ? (e as { result?: unknown }).result : undefined;
  if (!r || typeof r !== 'object') return null;
  const p = r as Partial<ProcessResult>;
  return typeof p.command === 'string' && typeof p.timedOut === 'boolean' ? (p as ProcessResult) : null;
}

/** `abra app deploy`, `docker service ls`, `git clone`: the program and its subcommand words. */
export function shortCommand(command: string): string {
  const [bin = '', ...args] = command.split(' ');
  const words = [bin.split('/').pop() ?? bin];
  for (const a of args) {
    if (!/^[a-z][a-z-]*$/.test(a) || words.length >= 3) break;
    words.push(a);
  }
  return words.join(' ');
}

/**
 * Tells an external call that did not end on its own from one that answered: a call that ran
 * out of its own time limit becomes a CallTimeoutError naming where the run was, one killed by a
 * signal nobody in cc-ci sent a CallKilledError. Anything else (abra's FATA, docker refusing) is
 * left as it is, for the caller to judge. `what` names the call when the caller knows better.
 */
export function callFault(e: unknown, what: string | null, where: string): CallTimeoutError | CallKilledError | null {
  if (e instanceof CallTimeoutError || e instanceof CallKilledError) return e;
  const r = resultOf(e);
  if (!r || r.aborted) return null;
  const call = what && /^(abra|docker|git) /.test(what) ? what : shortCommand(r.command);
  if (r.timedOut) {
    const limit = Number(((r.timeoutMs ?? r.durationMs) / 1000).toFixed(1));
    return new CallTimeoutError(`timed out in ${where}: ${call} did not return within ${limit}s (its call timeout) and was killed`);
  }
  if (r.signal) return new CallKilledError(`infrastructure: ${call} was killed by ${r.signal} in ${where} (not by cc-ci)`);
  return null;
}
