import { simpleGit, type SimpleGit } from 'simple-git';
import semver from 'semver';

/**
 * The recipe checkout of a run. Each run clones into its own ABRA_DIR/recipes/<recipe>, so
 * abra's in-place `git checkout` of tags can never disturb another run (reference §12.7).
 */

export interface GitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

export class GitError extends Error {}

function git(dir: string | undefined, o: GitOptions): SimpleGit {
  return simpleGit({
    ...(dir ? { baseDir: dir } : {}),
    timeout: { block: o.timeoutMs },
    ...(o.signal ? { abort: o.signal } : {}),
  }).env(gitEnv());
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

function lastLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => l.startsWith('fatal:')) ?? lines[lines.length - 1] ?? text;
}

export async function cloneRepo(repo: string, dest: string, o: GitOptions): Promise<void> {
  try {
    await git(undefined, o).clone(repo, dest, ['--no-checkout', '--quiet']);
  } catch (e) {
    throw new GitError(`could not clone ${repo}: ${lastLine(e)}`);
  }
}

/** Resolves a commit, tag or branch name to a full commit sha in a fresh clone. */
export async function resolveRef(dir: string, ref: string, o: GitOptions): Promise<string> {
  const g = git(dir, o);
  const candidates = [`${ref}^{commit}`, `refs/tags/${ref}^{commit}`, `refs/remotes/origin/${ref}^{commit}`];
  for (const c of candidates) {
    try {
      const sha = (await g.raw(['rev-parse', '--verify', '--quiet', '--end-of-options', c])).trim();
      if (/^[0-9a-f]{40,64}$/.test(sha)) return sha;
    } catch {
      /* try the next form */
    }
  }
  // A commit that no branch or tag reaches (e.g. a pull request head): ask the remote for it.
  if (/^[0-9a-f]{7,64}$/.test(ref)) {
    try {
      await g.raw(['fetch', '--quiet', 'origin', '--end-of-options', ref]);
      const sha = (await g.raw(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`])).trim();
      if (sha) return sha;
    } catch {
      /* fall through to the error below */
    }
  }
  throw new GitError(`ref "${ref}" does not exist in the repository (not a commit, tag or branch)`);
}

export async function checkout(dir: string, sha: string, o: GitOptions): Promise<void> {
  try {
    await git(dir, o).raw(['checkout', '--quiet', '--force', '--detach', sha]);
  } catch (e) {
    throw new GitError(`could not check out ${sha}: ${lastLine(e)}`);
  }
}

/** Release tags of the form X.Y.Z+U (or X.Y.Z), semver-sorted ascending. */
export async function releaseTags(dir: string, o: GitOptions): Promise<string[]> {
  const out = await git(dir, o).raw(['tag', '--list']);
  return out
    .split('\n')
    .map((t) => t.trim())
    .filter((t) => semver.valid(t) !== null)
    .sort(compareVersions);
}

/** semver order, with build metadata (the `+upstream` part) as a tie-breaker. */
export function compareVersions(a: string, b: string): number {
  const c = semver.compare(a, b);
  return c !== 0 ? c : a.localeCompare(b);
}

export async function tagCommit(dir: string, tag: string, o: GitOptions): Promise<string> {
  return (await git(dir, o).raw(['rev-parse', '--verify', '--end-of-options', `refs/tags/${tag}^{commit}`])).trim();
}

export async function isAncestor(dir: string, ancestor: string, of: string, o: GitOptions): Promise<boolean> {
  try {
    await git(dir, o).raw(['merge-base', '--is-ancestor', ancestor, of]);
    return true;
  } catch {
    return false;
  }
}

/** The highest release tag reachable from `commit` that is not on `commit` itself: the last
 *  release before the change under test. A prerelease (`2.0.0-rc.1+1.4`) is not a release an
 *  operator runs, so it is never picked; the recipe's `upgradeBase` setting can still name one. */
export async function releaseBelow(dir: string, commit: string, o: GitOptions): Promise<{ tag: string; commit: string } | null> {
  const g = git(dir, o);
  const merged = (await g.raw(['tag', '--merged', commit]))
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
