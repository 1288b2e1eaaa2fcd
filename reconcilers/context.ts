import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Abra } from '../controller/clients/abra.js';
import type { Config } from '../controller/model/config.js';
import { Docker, dockerFromConfig } from '../controller/clients/docker.js';
import type { Logger } from '../controller/model/log.js';
import { runAbraDir, runDir, type StatePaths } from '../controller/model/paths.js';
import type { GitOptions } from '../controller/clients/git.js';
import type { ChildTracker } from '../controller/clients/process.js';
import { Redactor } from '../controller/model/redact.js';
import type { RunSpec } from '../controller/model/spec.js';
import type { Customization, Settings } from '../recipes/customization.js';
import type { Store } from '../state/store.js';
import type { AppRecord, EventKind, Phase, RunRecord } from '../state/types.js';
import type { AppsApi } from './apps.js';
import type { EarlyBase } from './tiers/upgrade.js';
import { callFault, CancelledError } from './errors.js';
import { registerKnownSecrets, rememberMask } from './run-secrets.js';

/**
 * Everything one attempt of one run needs: its record, its log, its step journal, its own
 * abra and docker clients (bound to its ABRA_DIR, its cancel signal and the child tracker).
 */

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
  /** Where its log, evidence and ABRA_DIR live, when not the run's own directory (a warm app's upkeep). */
  dir?: string;
  abraDir?: string;
}

/** How the line saying a run's program output was cut begins (a restart looks for it). */
const OUTPUT_CUT = 'program output past';

export class RunContext {
  readonly store: Store;
  readonly config: Config;
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
  /** The warm app a quick run holds (reconcilers/warm-app.ts): its apps are deployed on it, in
   *  place, rather than on fresh leases. */
  warmApp: AppRecord | null = null;
  /** Work started ahead of the tier that needs it (the upgrade's base release, installed beside
   *  install: tiers/upgrade.ts), shared by derived contexts; its failure is the later tier's. */
  early: { upgradeBase: EarlyBase | null } = { upgradeBase: null };
  /** How much program output the run's log holds (null: not counted yet), shared by derived contexts. */
  output: { bytes: number | null; cut: boolean } = { bytes: null, cut: false };
  /** Whether the ABRA_DIR outlives one use (a warm app's): prepare then remakes only the recipe clone. */
  readonly keepsAbraDir: boolean = false;

  constructor(
    private readonly options: RunContextOptions,
    redactor?: Redactor,
  ) {
    this.dir = options.dir ?? runDir(options.paths, options.run.name);
    mkdirSync(this.dir, { recursive: true });
    const dir = this.dir;
    if (redactor) this.redactor = redactor;
    else {
      this.redactor = new Redactor({ onAdd: (value) => rememberMask(dir, value) });
      registerKnownSecrets(this.redactor, options.config, dir);
    }
    this.store = options.store;
    this.apps = options.apps;
    this.config = options.config;
    this.logger = options.logger.child({ run: options.run.name });
    this.spec = options.spec;
    this.signal = options.signal;
    this.tracker = options.tracker;
    this._run = options.run;
    this.abraDir = options.abraDir ?? runAbraDir(options.paths, options.run.name);
    this.logFile = join(this.dir, 'log.txt');
    this.abra = Abra.fromConfig(options.config, {
      abraDir: this.abraDir,
      signal: options.signal,
      tracker: options.tracker,
      onLines: (stream, lines) =>
        this.logLines(
          stream,
          lines.map((line) => `  ${line}`),
        ),
    });
    this.docker = dockerFromConfig(options.config, { signal: options.signal, tracker: options.tracker });
  }

  /** The same run under another signal (a tier's deadline), sharing its log, secrets and workspace. */
  withSignal(signal: AbortSignal): RunContext {
    return this.sharedWith(this.derive({ ...this.options, run: this._run, signal }), this.workspace);
  }

  /**
   * The same run working in another ABRA_DIR: an app of the run with a recipe checkout of its own
   * (deploy.ts leaseFor), so two of its apps can deploy different commits at once without moving
   * each other's checkout. The deploy steps, abra and the hooks of that app use it.
   */
  forAbraDir(abraDir: string): RunContext {
    if (abraDir === this.abraDir) return this;
    const ws = this.workspace ? { ...this.workspace, abraDir, recipeDir: join(abraDir, 'recipes', this.spec.spec.recipe) } : null;
    return this.sharedWith(this.derive({ ...this.options, run: this._run, abraDir }), ws);
  }

  /** A derived context shares the attempt's state: what its tiers hand on to each other. */
  private sharedWith(c: RunContext, workspace: Workspace | null): RunContext {
    c.workspace = workspace;
    c.subject = this.subject;
    c.backup = this.backup;
    c.onTier = this.onTier;
    c.warmApp = this.warmApp;
    c.output = this.output;
    c.early = this.early;
    return c;
  }

  /** A context like this one with other options (a subclass derives its own kind). */
  protected derive(options: RunContextOptions): RunContext {
    return new RunContext(options, this.redactor);
  }

  protected get contextOptions(): RunContextOptions {
    return this.options;
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

  /**
   * The line as the log keeps it: secrets masked, cut at `log.lineChars`; null when it is program
   * output past `log.runOutputBytes` (the first such line is replaced by one saying so).
   */
  protected kept(kind: EventKind, text: string): { kind: EventKind; text: string } | null {
    const { lineChars, runOutputBytes } = this.config.log;
    const isOutput = kind === 'out' || kind === 'err';
    if (isOutput) {
      if (this.output.bytes === null) {
        this.output.bytes = this.store.outputBytes(this.name);
        this.output.cut = this.store.outputCut(this.name, OUTPUT_CUT);
      }
      this.output.cut ||= this.output.bytes >= runOutputBytes;
      // Past the bound a flood costs nothing more: not even the masking.
      if (this.output.cut) return null;
    }
    // Masked before it is cut, so a secret across the cut is masked whole; a line far past the
    // cut is not read to its end.
    let safe = this.redactor.apply(text.length > 4 * lineChars ? text.slice(0, 4 * lineChars) : text);
    if (safe.length > lineChars) safe = `${safe.slice(0, lineChars)} … (line cut at ${lineChars} characters)`;
    if (!isOutput || this.output.bytes === null) return { kind, text: safe };
    this.output.bytes += Buffer.byteLength(safe);
    if (this.output.bytes < runOutputBytes) return { kind, text: safe };
    this.output.cut = true;
    return { kind: 'warn', text: `${OUTPUT_CUT} ${Math.round(runOutputBytes / 1024)} KiB is not kept (log.runOutputBytes); cc-ci's own lines go on` };
  }

  /** Appends to the run's log (store events and log.txt), secrets masked, bounded. */
  log(kind: EventKind, text: string): void {
    this.logLines(kind, [text]);
  }

  /** Appends lines of one kind at once — a chunk of a program's output — in one transaction. */
  logLines(kind: EventKind, texts: readonly string[]): void {
    const lines: { kind: EventKind; text: string }[] = [];
    for (const text of texts) {
      const line = this.kept(kind, text);
      if (line) lines.push(line);
    }
    if (lines.length === 0) return;
    this.record(lines);
    const at = new Date().toISOString();
    try {
      appendFileSync(this.logFile, lines.map((l) => `${at} ${l.kind.padEnd(5)} ${l.text}\n`).join(''));
    } catch {
      /* the store copy is the record; the file is a convenience */
    }
  }

  /** Where kept lines go besides log.txt: the run's log in the store (a warm upkeep, no run, differs). */
  protected record(lines: readonly { kind: EventKind; text: string }[]): void {
    this.store.appendEvents(this.name, lines);
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
