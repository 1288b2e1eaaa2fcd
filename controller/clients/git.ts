import semver from 'semver';
import { withoutCredentials } from '../model/redact.js';
import { describeFailure, ok, runProcess, type ChildTracker, type ProcessResult } from './process.js';

/**
 * The recipe checkout of a run. Each run clones into its own ABRA_DIR/recipes/<recipe>, so
 * abra's in-place `git checkout` of tags can never disturb another run (docs/abra-double.md, The contract).
 *
 * git runs through runProcess like abra and docker — its own process group, a wall-clock
 * timeout, the run's cancel signal and the child tracker — so a hung clone is killed on time
 * and a clone orphaned by kill -9 of the controller is found and stopped by the next start.
 * (simple-git, used here before, offers only an inactivity timeout and no way to record or
 * group its children; docs/architecture.md.)
 */

export interface GitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  tracker?: ChildTracker;
}

export class GitError extends Error {
  constructor(
    message: string,
    /** The call that failed, when one ran: tells a timeout or a kill from git's own refusal. */
    readonly result?: ProcessResult,
  ) {
    // The message reaches the run's reason, the log and the forge: never a URL's credentials.
    super(withoutCredentials(message));
  }
}

/** A small, explicit environment: git must never prompt (a private repo without credentials
 *  fails instead of hanging), and nothing from the caller's shell may steer it. */
function gitEnv(): Record<string, string> {
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: '0', LANG: 'C', LC_ALL: 'C' };
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'SSH_AUTH_SOCK', 'http_proxy', 'https_proxy', 'no_proxy']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

async function git(dir: string | undefined, args: string[], o: GitOptions): Promise<ProcessResult> {
  return runProcess({
    cmd: 'git',
    args,
    env: gitEnv(),
    cleanEnv: true,
    ...(dir ? { cwd: dir } : {}),
    timeoutMs: o.timeoutMs,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.tracker ? { tracker: o.tracker } : {}),
  });
}

/** Runs git and returns its stdout, or throws a GitError naming git's own `fatal:` line. */
async function gitOut(dir: string | undefined, args: string[], o: GitOptions, what: string): Promise<string> {
  const r = await git(dir, args, o);
  if (!ok(r)) throw new GitError(`${what}: ${reason(r)}`, r);
  return r.stdout;
}

function reason(r: ProcessResult): string {
  if (r.timedOut || r.aborted || r.spawnError || r.signal) return describeFailure(r);
  const lines = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.find((l) => l.startsWith('fatal:')) ?? lines[lines.length - 1] ?? `exit ${r.exitCode}`;
}

/** The call did not end on its own (timeout, cancel, a signal): not an answer about the repo. */
function interrupted(r: ProcessResult): boolean {
  return r.timedOut || r.aborted || r.signal !== null || r.spawnError !== null;
}

export async function cloneRepo(repo: string, dest: string, o: GitOptions): Promise<void> {
  await gitOut(undefined, ['clone', '--no-checkout', '--quiet', '--end-of-options', repo, dest], o, `could not clone ${repo}`);
}

/** Resolves a commit, tag or branch name to a full commit sha in a fresh clone. */
export async function resolveRef(dir: string, ref: string, o: GitOptions): Promise<string> {
  // The commit a name means in the clone, or null when it means none (git's answer, not a hang).
  const commitOf = async (name: string): Promise<string | null> => {
    const r = await git(dir, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${name}^{commit}`], o);
    if (interrupted(r)) throw new GitError(`could not resolve "${ref}": ${describeFailure(r)}`, r);
    const sha = r.stdout.trim();
    return ok(r) && /^[0-9a-f]{40,64}$/.test(sha) ? sha : null;
  };
  for (const name of [ref, `refs/tags/${ref}`, `refs/remotes/origin/${ref}`]) {
    const sha = await commitOf(name);
    if (sha) return sha;
  }
  // A commit that no branch or tag reaches (e.g. a pull request head): ask the remote for it.
  if (/^[0-9a-f]{7,64}$/.test(ref)) {
    const f = await git(dir, ['fetch', '--quiet', 'origin', '--end-of-options', ref], o);
    if (interrupted(f)) throw new GitError(`could not fetch "${ref}": ${describeFailure(f)}`, f);
    const sha = ok(f) ? await commitOf(ref) : null;
    if (sha) return sha;
  }
  throw new GitError(`ref "${ref}" does not exist in the repository (not a commit, tag or branch)`);
}

export async function checkout(dir: string, sha: string, o: GitOptions): Promise<void> {
  await gitOut(dir, ['checkout', '--quiet', '--force', '--detach', sha], o, `could not check out ${sha}`);
}

/** The commit the checkout is at now (abra checks versions out in place: this says where it left it). */
export async function headCommit(dir: string, o: GitOptions): Promise<string> {
  return (await gitOut(dir, ['rev-parse', '--verify', 'HEAD^{commit}'], o, "could not read the checkout's HEAD")).trim();
}

/** Whether a tag is a plain ref to a commit (lightweight) rather than a tag object (annotated). */
export async function isLightweightTag(dir: string, tag: string, o: GitOptions): Promise<boolean> {
  return (await gitOut(dir, ['cat-file', '-t', `refs/tags/${tag}`], o, `no tag ${tag}`)).trim() === 'commit';
}

/** semver order, with build metadata (the `+upstream` part) as a tie-breaker. */
export function compareVersions(a: string, b: string): number {
  const c = semver.compare(a, b);
  return c !== 0 ? c : a.localeCompare(b);
}

export async function tagCommit(dir: string, tag: string, o: GitOptions): Promise<string> {
  return (await gitOut(dir, ['rev-parse', '--verify', '--end-of-options', `refs/tags/${tag}^{commit}`], o, `no tag ${tag}`)).trim();
}

/** The highest release tag reachable from `commit` that is not on `commit` itself: the last
 *  release before the change under test. A prerelease (`2.0.0-rc.1+1.4`) is not a release an
 *  operator runs, so it is never picked; the recipe's `upgradeBase` setting can still name one. */
export async function releaseBelow(dir: string, commit: string, o: GitOptions): Promise<{ tag: string; commit: string } | null> {
  const merged = (await gitOut(dir, ['tag', '--merged', commit], o, `could not list the tags below ${commit}`))
    .split('\n')
    .map((t) => t.trim())
    .filter((t) => semver.valid(t) !== null && semver.prerelease(t) === null);
  const candidates: { tag: string; commit: string }[] = [];
  for (const tag of merged) {
    const c = await tagCommit(dir, tag, o);
    if (c !== commit) candidates.push({ tag, commit: c });
  }
  candidates.sort((a, b) => compareVersions(a.tag, b.tag));
  return candidates[candidates.length - 1] ?? null;
}

/** The commit a branch of a remote repository points at (`git ls-remote`), without cloning it. */
export async function remoteBranchHead(repo: string, branch: string, o: GitOptions): Promise<string> {
  const ref = `refs/heads/${branch}`;
  const out = await gitOut(undefined, ['ls-remote', '--end-of-options', repo, ref], o, `could not read ${branch} of ${repo}`);
  const line = out.split('\n').find((l) => l.trim().endsWith(`\t${ref}`) || l.trim().endsWith(` ${ref}`));
  const sha = line?.split(/\s+/)[0];
  if (!sha || !/^[0-9a-f]{40,64}$/.test(sha)) throw new GitError(`could not read ${branch} of ${repo}: no branch ${branch}`);
  return sha;
}
