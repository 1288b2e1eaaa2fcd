// Shared setup for the abra double's tests: the local busybox image, a throwaway $ABRA_DIR with the
// `dbltest` fixture recipe as a git repo (annotated release tags), a runner for the double, and a
// docker-level teardown that does not trust the double.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOUBLE_TEST_IMAGE, ensureImages } from '../../fixtures/images.js';

// Works from test/abra-double/ (vitest runs the .ts sources) and from dist/test/abra-double/.
const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, HERE.includes(`${'/dist/'}`) ? '../../..' : '../..');
export const ABRA = join(REPO_ROOT, 'test', 'support', 'abra');
export const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'abra-double', 'dbltest');
export const IMAGE = DOUBLE_TEST_IMAGE;
export const RECIPE = 'dbltest';

/** The label every docker stack object carries (docs/abra-double.md, The contract). */
export const NS = 'com.docker.stack.namespace';

export const V1 = '1.0.0+1.36.1';
export const V2 = '1.1.0+1.36.1';
/** A lightweight tag that is higher than every release: abra must not treat it as one. */
export const LIGHTWEIGHT = '9.9.9+lightweight';

export async function docker(args: string[], opts: { input?: string; reject?: boolean } = {}): Promise<string> {
  const r = await execa('docker', args, { timeout: 120_000, reject: opts.reject ?? true, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  return typeof r.stdout === 'string' ? r.stdout.trim() : '';
}

async function git(dir: string, args: string[]): Promise<void> {
  await execa('git', ['-C', dir, '-c', 'user.name=cc-ci tests', '-c', 'user.email=ci@example.invalid', '-c', 'init.defaultBranch=main', ...args], {
    timeout: 60_000,
  });
}

/** The test image (built once for the whole suite by test/global-setup.ts; this only makes sure,
 *  for a file run on its own). */
export async function ensureImage(): Promise<void> {
  await ensureImages();
}

export interface RunResult {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface Sandbox {
  abraDir: string;
  recipeDir: string;
  env: Record<string, string>;
  /** Runs the double (no TTY). */
  abra(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number; cwd?: string }): Promise<RunResult>;
  /** Runs the double under a pseudo-terminal (`script -qec`), as cc-ci does for backup/restore. */
  abraTty(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult>;
  envPath(domain: string): string;
  readEnv(domain: string): string;
  /** Replaces or appends KEY=value lines in the app .env. */
  editEnv(domain: string, changes: Record<string, string>): void;
  git(args: string[]): Promise<void>;
  cleanup(): void;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function toResult(r: { exitCode?: number | undefined; signal?: string | undefined; stdout?: unknown; stderr?: unknown; timedOut?: boolean }): RunResult {
  return {
    exitCode: r.exitCode,
    signal: r.signal,
    stdout: typeof r.stdout === 'string' ? r.stdout : '',
    stderr: typeof r.stderr === 'string' ? r.stderr : '',
    timedOut: r.timedOut === true,
  };
}

/** A fresh $ABRA_DIR with server `default` and the fixture recipe (tags V1, V2, a lightweight tag, one unreleased commit). */
export async function makeSandbox(): Promise<Sandbox> {
  const abraDir = mkdtempSync(join(tmpdir(), 'abd-abra-'));
  const recipeDir = join(abraDir, 'recipes', RECIPE);
  mkdirSync(join(abraDir, 'servers', 'default'), { recursive: true });
  cpSync(FIXTURE, recipeDir, { recursive: true });
  await git(recipeDir, ['init', '--quiet']);
  await git(recipeDir, ['add', '-A']);
  await git(recipeDir, ['commit', '--quiet', '-m', 'init: dbltest recipe']);
  await git(recipeDir, ['tag', '-a', V1, '-m', `chore: publish ${V1} release`]);
  const compose = join(recipeDir, 'compose.yml');
  writeFileSync(compose, readFileSync(compose, 'utf8').replace(`version=${V1}`, `version=${V2}`));
  await git(recipeDir, ['commit', '--quiet', '-am', `chore: bump to ${V2}`]);
  await git(recipeDir, ['tag', '-a', V2, '-m', `chore: publish ${V2} release`]);
  await git(recipeDir, ['tag', LIGHTWEIGHT]);
  writeFileSync(join(recipeDir, 'NOTES.md'), 'unreleased work\n');
  await git(recipeDir, ['add', 'NOTES.md']);
  await git(recipeDir, ['commit', '--quiet', '-m', 'docs: unreleased change']);

  const env: Record<string, string> = {
    ABRA_DIR: abraDir,
    NO_COLOR: '1',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    TERM: 'dumb',
  };
  const baseEnv = (): Record<string, string> => {
    const e: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith('ABRA_DOUBLE_')) e[k] = v;
    }
    return { ...e, ...env };
  };
  const sb: Sandbox = {
    abraDir,
    recipeDir,
    env,
    async abra(args, opts = {}) {
      const r = await execa(ABRA, args, {
        env: { ...baseEnv(), ...(opts.env ?? {}) },
        extendEnv: false,
        reject: false,
        timeout: opts.timeoutMs ?? 240_000,
        stdin: 'ignore',
        cwd: opts.cwd ?? abraDir,
      });
      return toResult(r);
    },
    async abraTty(args, opts = {}) {
      const cmd = [ABRA, ...args].map(quote).join(' ');
      const r = await execa('script', ['-qec', cmd, '/dev/null'], {
        env: { ...baseEnv(), ...(opts.env ?? {}) },
        extendEnv: false,
        reject: false,
        timeout: opts.timeoutMs ?? 240_000,
        stdin: 'ignore',
        cwd: abraDir,
      });
      return toResult(r);
    },
    envPath: (domain) => join(abraDir, 'servers', 'default', `${domain}.env`),
    readEnv: (domain) => readFileSync(join(abraDir, 'servers', 'default', `${domain}.env`), 'utf8'),
    editEnv(domain, changes) {
      const p = join(abraDir, 'servers', 'default', `${domain}.env`);
      let text = readFileSync(p, 'utf8');
      for (const [k, v] of Object.entries(changes)) {
        const re = new RegExp(`^#?${k}=.*$`, 'm');
        text = re.test(text) ? text.replace(re, `${k}=${v}`) : `${text}${text.endsWith('\n') ? '' : '\n'}${k}=${v}\n`;
      }
      writeFileSync(p, text);
    },
    git: (args) => git(recipeDir, args),
    cleanup: () => rmSync(abraDir, { recursive: true, force: true }),
  };
  return sb;
}

/** A short random domain; its stack name is `abd-xxxxxx_test_local`. */
export function newDomain(): string {
  return `abd-${randomBytes(3).toString('hex')}.test.local`;
}

export function stackOf(domain: string): string {
  return domain.replace(/\./g, '_').slice(0, 45);
}

async function names(kind: string, filters: string[]): Promise<string[]> {
  const out = await docker([kind, 'ls', ...filters.flatMap((f) => ['--filter', f]), '--format', '{{.Name}}']);
  return out.split('\n').filter((l) => l !== '');
}

/** Everything docker still has for a stack, by namespace label and by `<stack>_` name prefix. */
export async function leftovers(stack: string): Promise<Record<string, string[]>> {
  const byPrefix = async (kind: string): Promise<string[]> => (await names(kind, [])).filter((n) => n.startsWith(`${stack}_`));
  const containers = (await docker(['ps', '-a', '--filter', `label=${NS}=${stack}`, '--format', '{{.Names}}'])).split('\n').filter((l) => l !== '');
  return {
    services: [...new Set([...(await names('service', [`label=${NS}=${stack}`])), ...(await byPrefix('service'))])],
    containers,
    volumes: [...new Set([...(await names('volume', [`label=${NS}=${stack}`])), ...(await byPrefix('volume'))])],
    secrets: [...new Set([...(await names('secret', [`label=${NS}=${stack}`])), ...(await byPrefix('secret'))])],
    configs: [...new Set([...(await names('config', [`label=${NS}=${stack}`])), ...(await byPrefix('config'))])],
    networks: [...new Set([...(await names('network', [`label=${NS}=${stack}`])), ...(await byPrefix('network'))])],
  };
}

/** Removes every docker object of a stack with docker itself (test teardown; never trusts the double). */
export async function purgeStack(stack: string): Promise<void> {
  await docker(['stack', 'rm', stack], { reject: false });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const left = await leftovers(stack);
    if (left.services?.length === 0 && left.containers?.length === 0) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const left = await leftovers(stack);
  for (const kind of ['volume', 'secret', 'config', 'network'] as const) {
    const list = left[`${kind}s`] ?? [];
    for (const n of list) {
      for (let i = 0; i < 20; i++) {
        const r = await execa('docker', [kind, 'rm', n], { reject: false, timeout: 60_000 });
        if (r.exitCode === 0) break;
        await new Promise((res) => setTimeout(res, 500));
      }
    }
  }
}

export async function serviceLabels(service: string): Promise<Record<string, string>> {
  const out = await docker(['service', 'inspect', service, '--format', '{{json .Spec.Labels}}']);
  return JSON.parse(out) as Record<string, string>;
}

export async function serviceEnv(service: string): Promise<string[]> {
  const out = await docker(['service', 'inspect', service, '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Env}}']);
  return (JSON.parse(out) as string[] | null) ?? [];
}

/** Runs a shell command in the first running container of a service. */
export async function execIn(service: string, script: string): Promise<string> {
  const ids = (await docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${service}`, '--filter', 'status=running']))
    .split('\n')
    .filter((l) => l !== '');
  const id = ids[0];
  if (!id) throw new Error(`no running container for ${service}`);
  return docker(['exec', id, '/bin/sh', '-c', script]);
}
