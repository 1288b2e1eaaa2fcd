// git operations on a recipe clone (`$ABRA_DIR/recipes/<recipe>`), argument arrays only.
import semver from 'semver';
import { fatal } from './log.js';
import { failure, run } from './proc.js';

async function git(dir: string, args: string[], timeoutMs = 60_000): Promise<{ ok: boolean; out: string; why: string }> {
  const res = await run('git', ['-C', dir, ...args], { timeoutMs, env: gitEnv() });
  return { ok: res.ok, out: res.stdout.trim(), why: failure(res) };
}

function gitEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.GIT_TERMINAL_PROMPT = '0';
  env.LC_ALL = 'C';
  return env;
}

export interface Tag {
  name: string;
  annotated: boolean;
}

export async function tags(dir: string): Promise<Tag[]> {
  const r = await git(dir, ['for-each-ref', 'refs/tags', '--format=%(refname:short)%09%(objecttype)']);
  if (!r.ok) fatal(r.why);
  return r.out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [name = '', type = ''] = l.split('\t');
      return { name, annotated: type === 'tag' };
    });
}

/**
 * Release versions: annotated tags that parse as semver (`X.Y.Z+U`), ascending
 * (build metadata breaks ties). Lightweight tags are not releases (docs/abra-double.md, The contract).
 */
export async function releaseVersions(dir: string): Promise<string[]> {
  const all = await tags(dir);
  return all
    .filter((t) => t.annotated && semver.valid(t.name) !== null)
    .map((t) => t.name)
    .sort((a, b) => semver.compareBuild(a, b));
}

export async function tagExists(dir: string, tag: string): Promise<boolean> {
  return (await git(dir, ['rev-parse', '--verify', '--quiet', `refs/tags/${tag}`])).ok;
}

export async function commitOf(dir: string, ref: string): Promise<string | undefined> {
  const r = await git(dir, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  return r.ok ? r.out : undefined;
}

/** Untracked files count as changes too (docs/abra-double.md, The contract). */
export async function isDirty(dir: string): Promise<boolean> {
  const r = await git(dir, ['status', '--porcelain', '--untracked-files=all']);
  if (!r.ok) fatal(r.why);
  return r.out !== '';
}

export async function checkout(dir: string, ref: string): Promise<void> {
  const r = await git(dir, ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', ref]);
  if (!r.ok) fatal(r.why);
}

export async function shortHead(dir: string): Promise<string> {
  const r = await git(dir, ['rev-parse', '--short=8', 'HEAD']);
  if (!r.ok) fatal(r.why);
  return r.out.slice(0, 8);
}

/** Release versions (annotated semver tags) pointing at HEAD, latest last. */
export async function releasesAtHead(dir: string): Promise<string[]> {
  const r = await git(dir, ['tag', '--points-at', 'HEAD']);
  if (!r.ok) return [];
  const here = new Set(r.out.split('\n').filter((l) => l !== ''));
  return (await releaseVersions(dir)).filter((v) => here.has(v));
}

export async function fetchTags(dir: string): Promise<void> {
  const r = await git(dir, ['fetch', '--tags', '--quiet'], 300_000);
  if (!r.ok) fatal(`failed to fetch recipe: ${r.why}`);
}

export async function isRepo(dir: string): Promise<boolean> {
  return (await git(dir, ['rev-parse', '--git-dir'])).ok;
}
