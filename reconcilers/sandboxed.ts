import { chownSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runSandboxed, sandboxProblem, sandboxSettings, SandboxUnavailable, type SandboxedRun, type SandboxSettings } from '../controller/clients/sandbox.js';
import type { ProcessResult, RunOptions } from '../controller/clients/process.js';
import type { RunContext, SubjectApp } from './context.js';

/**
 * Code from a recipe repository — and cc-ci's bundled hooks and checks, which run the same way —
 * runs in the sandbox (controller/clients/sandbox.ts; docs/security.md): as `nobody`, with a
 * read-only system, the recipe checkout and the file itself read-only, a private work directory,
 * the environment it is given and nothing of the controller's, and the app under test as the
 * only address it can reach. Without a working bubblewrap nothing runs: the run ends in `error`
 * saying how to install it.
 */

/** Whether the sandbox works, asked once per bwrap binary and process (a restart asks again). */
const checked = new Map<string, Promise<string | null>>();

/** The tail of a repository program's output a run keeps in memory (its reasons quote the end). */
const REPO_CODE_KEEP_CHARS = 1024 * 1024;

async function ensureSandbox(settings: SandboxSettings): Promise<void> {
  let check = checked.get(settings.bwrap);
  if (!check) {
    check = sandboxProblem(settings);
    checked.set(settings.bwrap, check);
  }
  const problem = await check;
  if (problem) throw new SandboxUnavailable(`repository code is not run without its sandbox: ${problem}`);
}

/** Where the program reaches the app from inside: its URL's address, relayed to the same outside. */
export function sandboxApp(app: SubjectApp | null): SandboxedRun['app'] {
  if (!app) return null;
  const url = new URL(app.baseUrl);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return { host: url.hostname, port, names: url.hostname === '127.0.0.1' ? [app.host] : [url.hostname, app.host] };
}

export interface RepoCodeRun extends Pick<RunOptions, 'cmd' | 'args' | 'timeoutMs' | 'onLines'> {
  /** Names the work directory (`<run>/sandbox/<key>`), made afresh for each run of the code. */
  key: string;
  env: Record<string, string>;
  /** Read-only besides the system and cc-ci's package: the recipe checkout, the code's own directory. */
  readOnly: readonly string[];
  /** Working directory (default: the recipe checkout). */
  cwd?: string;
  app: SubjectApp | null;
  /** Fills the fresh work directory first (Playwright's config and specs); runs as the controller. */
  prepare?: (workDir: string) => void;
  /** Sub-directories of the work directory the program may write (made for it, e.g. its evidence). */
  dirs?: readonly string[];
}

/** Where the run's sandboxed program `key` works: its HOME, the only place it may write. */
export function sandboxWorkDir(ctx: RunContext, key: string): string {
  return join(ctx.dir, 'sandbox', key);
}

/** Runs it; what it wrote stays in `sandboxWorkDir(ctx, key)` (its HOME), for the caller to take evidence from. */
export async function runRepoCode(ctx: RunContext, o: RepoCodeRun): Promise<ProcessResult> {
  const sandbox = sandboxSettings();
  await ensureSandbox(sandbox);
  const workDir = sandboxWorkDir(ctx, o.key);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true, mode: 0o700 });
  o.prepare?.(workDir);
  for (const d of o.dirs ?? []) {
    mkdirSync(join(workDir, d), { recursive: true });
    if (process.getuid?.() === 0) chownSync(join(workDir, d), sandbox.uid, sandbox.gid);
  }
  const recipeDir = ctx.workspace?.recipeDir;
  return runSandboxed(sandbox, {
    cmd: o.cmd,
    args: o.args,
    env: o.env,
    workDir,
    readOnly: [...new Set([...(recipeDir ? [recipeDir] : []), ...o.readOnly])],
    cwd: o.cwd ?? recipeDir ?? workDir,
    app: sandboxApp(o.app),
    timeoutMs: o.timeoutMs,
    signal: ctx.signal,
    tracker: ctx.tracker,
    ...(o.onLines ? { onLines: o.onLines } : {}),
    // What the caller keeps of a flood: the tail (the log has its own bound, log.runOutputBytes).
    keepChars: REPO_CODE_KEEP_CHARS,
  });
}
