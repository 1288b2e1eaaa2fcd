// The bundled example recipes (fixtures/recipes/): their git repositories, their compose files
// at every commit, and — on the real swarm — that webnotes and plainpage actually serve, that
// an upgrade across the releases keeps the notes, and that the failing variants fail.
//
// Swarm tests deploy with plain `docker stack deploy` (the same compose loader abra vendors),
// with the environment abra would give and a test-only overlay publishing the app port in
// `mode: host`. Everything a test creates is removed in `finally`, whatever happened.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { BUSYBOX_IMAGE, ensureImages } from '../fixtures/images.js';
import { buildRecipeRepo, listRecipes, replaceOnce, type RecipeRepo } from '../fixtures/recipe-repo.js';

const T = 30_000; // timeout of each docker/git call

const EXPECTED: Record<string, { tags: string[]; variants: string[] }> = {
  webnotes: {
    tags: ['1.0.0+1.35.0', '1.1.0+1.35.0'],
    variants: ['unhealthy', 'deploy-fails', 'wipes-data', 'restore-loses', 'page-broken', 'crash-loop', 'slow-start'],
  },
  plainpage: { tags: ['0.1.0+1.35.0', '0.2.0+1.35.0'], variants: [] },
};

let work: string;
const repos: Record<string, RecipeRepo> = {};

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ccci-fixtures-test-'));
  for (const recipe of Object.keys(EXPECTED)) {
    repos[recipe] = await buildRecipeRepo(recipe, path.join(work, recipe));
  }
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function git(repo: string, args: string[]): Promise<string> {
  return (await execa('git', args, { cwd: repo, timeout: T })).stdout.trim();
}

function repo(recipe: string): RecipeRepo {
  const r = repos[recipe];
  if (!r) throw new Error(`no repo for ${recipe}`);
  return r;
}

/** Every ref worth looking at: tags, main, variant branches. */
function refs(r: RecipeRepo): string[] {
  return [...r.tags, 'main', ...Object.keys(r.branches)];
}

let worktrees = 0;
/** A separate checkout of `ref` (a git worktree), for docker to read compose files from. */
async function checkout(r: RecipeRepo, ref: string): Promise<string> {
  const dir = path.join(work, `wt-${worktrees++}`);
  await git(r.path, ['worktree', 'add', '--quiet', '--detach', dir, ref]);
  return dir;
}

// --------------------------------------------------------------------------------------------
// The environment abra would give a deploy: the app .env (from .env.sample), abra.sh exports,
// STACK_NAME. cc-ci leaves LETS_ENCRYPT_ENV empty so no ACME runs.

/** Parses a dotenv file the way abra reads an app .env; keeps `# length=N` modifiers apart. */
function parseDotenv(text: string): { env: Record<string, string>; modifiers: Record<string, string> } {
  const env: Record<string, string> = {};
  const modifiers: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!;
    let value = m[2]!;
    const q = /^"([^"]*)"|^'([^']*)'/.exec(value);
    if (q) {
      modifiers[key] = value.slice(q[0].length).replace(/^\s*#\s*/, '');
      value = q[1] ?? q[2] ?? '';
    } else {
      const hash = value.search(/\s#/);
      if (hash >= 0) {
        modifiers[key] = value.slice(hash).replace(/^\s*#\s*/, '');
        value = value.slice(0, hash);
      }
      value = value.trim();
    }
    // abra's COMPOSE_FILE idiom: COMPOSE_FILE="$COMPOSE_FILE:compose.x.yml"
    env[key] = value.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, v: string) => env[v] ?? '');
  }
  return { env, modifiers };
}

interface DeployEnv {
  stack: string;
  domain: string;
  env: Record<string, string>;
  modifiers: Record<string, string>;
}

/** `domain` defaults to a fresh `<prefix>-<6 hex>.ccci.test` (short, like cc-ci's run domains). */
async function deployEnv(checkoutDir: string, prefix: string, domain?: string): Promise<DeployEnv> {
  domain ??= `${prefix}-${randomBytes(3).toString('hex')}.ccci.test`;
  const stack = domain.replaceAll('.', '_'); // abra's SanitiseAppName
  const dotenv = parseDotenv(await readFile(path.join(checkoutDir, '.env.sample'), 'utf8'));
  const abraSh = parseDotenv(await readFile(path.join(checkoutDir, 'abra.sh'), 'utf8'));
  const env: Record<string, string> = {
    EXTRA_DOMAINS: '', // commented out in .env.sample; abra would substitute it empty too
    ...dotenv.env,
    DOMAIN: domain,
    LETS_ENCRYPT_ENV: '',
    ...abraSh.env,
    STACK_NAME: stack,
  };
  return { stack, domain, env, modifiers: dotenv.modifiers };
}

/** The compose files named by COMPOSE_FILE, as `-c` arguments. */
function composeArgs(e: DeployEnv): string[] {
  return (e.env.COMPOSE_FILE ?? 'compose.yml').split(':').flatMap((f) => ['-c', f]);
}

/** `docker stack config` of a checkout: the merged, interpolated compose model. */
async function stackConfig(dir: string, e: DeployEnv): Promise<Record<string, any>> {
  const r = await execa('docker', ['stack', 'config', ...composeArgs(e)], {
    cwd: dir,
    env: e.env,
    timeout: T,
  });
  return parseYaml(r.stdout) as Record<string, any>;
}

/** deploy.labels as a map, whichever form (list or map) the file uses. */
function labelsOf(service: Record<string, any>): Record<string, string> {
  const raw = service.deploy?.labels ?? {};
  if (!Array.isArray(raw)) return raw as Record<string, string>;
  return Object.fromEntries((raw as string[]).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

// --------------------------------------------------------------------------------------------

describe('history snippets', () => {
  const text = 'a:\n  b:\n    - x\n    - y\n  c:\n    - x\n';
  it('re-indents multi-line snippets to the line they match on', () => {
    expect(replaceOnce(text, '- x\n- y\n', '- x\n- z\n- y\n', 't')).toBe('a:\n  b:\n    - x\n    - z\n    - y\n  c:\n    - x\n');
  });
  it('refuses a snippet that matches twice or never', () => {
    expect(() => replaceOnce(text, '- x', '- w', 't')).toThrow(/found 2/);
    expect(() => replaceOnce(text, 'nope', 'w', 't')).toThrow(/found 0/);
  });
});

describe('recipe repositories', () => {
  it('lists the bundled recipes', async () => {
    expect(await listRecipes()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [recipe, want] of Object.entries(EXPECTED)) {
    describe(recipe, () => {
      it('has annotated release tags, one commit each, in order', async () => {
        const r = repo(recipe);
        expect(r.tags).toEqual(want.tags);
        expect(await git(r.path, ['tag', '--list', '--sort=version:refname'])).toBe(want.tags.join('\n'));
        let parent: string | undefined;
        for (const tag of want.tags) {
          expect(await git(r.path, ['cat-file', '-t', tag])).toBe('tag'); // annotated, not lightweight
          expect(await git(r.path, ['tag', '--list', '--format=%(contents:subject)', tag])).toBe(`chore: publish ${tag} release`);
          const commit = await git(r.path, ['rev-parse', `${tag}^{commit}`]);
          expect(r.tagCommits[tag]).toBe(commit);
          const parents = (await git(r.path, ['rev-list', '--parents', '-n1', commit])).split(' ').slice(1);
          expect(parents).toEqual(parent ? [parent] : []);
          parent = commit;
        }
      });

      it('has an untagged head commit on main after the last release', async () => {
        const r = repo(recipe);
        expect(await git(r.path, ['symbolic-ref', '--short', 'HEAD'])).toBe('main');
        expect(await git(r.path, ['rev-parse', 'main'])).toBe(r.head);
        expect(await git(r.path, ['rev-parse', 'main^'])).toBe(r.tagCommits[want.tags.at(-1)!]);
        expect(await git(r.path, ['tag', '--points-at', 'main'])).toBe('');
        expect(await git(r.path, ['describe', '--tags', 'main'])).toMatch(new RegExp(`^${want.tags.at(-1)!.replace(/[.+]/g, '\\$&')}-1-g[0-9a-f]+$`));
        expect(await git(r.path, ['status', '--porcelain'])).toBe('');
        expect(await git(r.path, ['log', '-1', '--format=%an <%ae> %cn <%ce>', 'main'])).toBe(
          'cc-ci fixtures <fixtures@cc-ci.invalid> cc-ci fixtures <fixtures@cc-ci.invalid>',
        );
      });

      it('has one branch per test variant, one commit on top of head', async () => {
        const r = repo(recipe);
        expect(Object.keys(r.branches)).toEqual(want.variants);
        const branches = (await git(r.path, ['branch', '--format=%(refname:short)'])).split('\n');
        expect(branches.sort()).toEqual(['main', ...want.variants].sort());
        for (const [name, sha] of Object.entries(r.branches)) {
          expect(await git(r.path, ['rev-parse', name])).toBe(sha);
          expect(await git(r.path, ['rev-parse', `${name}^`])).toBe(r.head);
          expect(await git(r.path, ['diff', '--quiet', 'main', name]).catch(() => 'differs')).toBe('differs');
        }
      });

      it('is deterministic: a second build gives the same ids', async () => {
        const again = await buildRecipeRepo(recipe, path.join(work, `${recipe}-again`));
        const r = repo(recipe);
        expect({ ...again, path: r.path }).toEqual(r);
      });

      it('refuses a non-empty target folder', async () => {
        await expect(buildRecipeRepo(recipe, repo(recipe).path)).rejects.toThrow(/not empty/);
      });
    });
  }
});

describe('recipe contents at every commit', () => {
  let dockerStackConfig = false;
  beforeAll(async () => {
    const r = await execa('docker', ['stack', 'config', '--help'], { reject: false, timeout: T });
    dockerStackConfig = r.exitCode === 0;
  });

  for (const recipe of Object.keys(EXPECTED)) {
    it(`${recipe}: every compose file parses, has an app service, publishes no ports`, async () => {
      const r = repo(recipe);
      const lastTag = r.tags.at(-1)!;
      for (const ref of refs(r)) {
        const dir = await checkout(r, ref);
        const e = await deployEnv(dir, 'cfg');
        const raw = parseYaml(await readFile(path.join(dir, 'compose.yml'), 'utf8')) as Record<string, any>;
        const model = dockerStackConfig ? await stackConfig(dir, e) : raw;
        const where = `${recipe}@${ref}`;

        expect(raw.version, where).toBe('3.8');
        expect(Object.keys(model.services), where).toContain('app');
        for (const [name, svc] of Object.entries<Record<string, any>>(model.services)) {
          expect(svc.ports, `${where} ${name} publishes ports`).toBeUndefined();
          expect(svc.image, where).toBe(BUSYBOX_IMAGE);
          // abra validates duration fields before env substitution: they must be literals.
          for (const d of ['interval', 'timeout', 'start_period']) {
            expect(String(raw.services[name].healthcheck?.[d] ?? ''), `${where} ${name}.${d}`).not.toContain('$');
          }
        }

        // The version label equals the tag in each release, and stays at the last one after it.
        const labels = labelsOf(model.services.app);
        const versionKey = dockerStackConfig ? `coop-cloud.${e.stack}.version` : 'coop-cloud.${STACK_NAME}.version';
        expect(labels[versionKey], where).toBe(r.tags.includes(ref) ? ref : lastTag);
        expect(labels['traefik.enable'], where).toBe('true');
        const timeoutKey = dockerStackConfig ? `coop-cloud.${e.stack}.timeout` : 'coop-cloud.${STACK_NAME}.timeout';
        expect(labels[timeoutKey], where).toMatch(dockerStackConfig ? /^120$/ : /TIMEOUT:-120/);

        if (r.tags.includes(ref)) {
          expect(await readFile(path.join(dir, 'release', ref), 'utf8'), where).not.toBe('');
        }
        const envSample = await readFile(path.join(dir, '.env.sample'), 'utf8');
        expect(envSample, where).toMatch(new RegExp(`^TYPE=${recipe}$`, 'm'));
        expect(await readFile(path.join(dir, 'README.md'), 'utf8'), where).toMatch(/<!-- metadata -->[\s\S]*<!-- endmetadata -->/);
      }
    });

    it(`${recipe}: a config file never changes without its version in abra.sh`, async () => {
      // Swarm configs are immutable: deploying new content under an old name fails.
      const r = repo(recipe);
      const seen = new Map<string, { content: string; ref: string }>();
      for (const ref of refs(r)) {
        const show = (p: string) => git(r.path, ['show', `${ref}:${p}`]);
        const compose = parseYaml(await show('compose.yml')) as Record<string, any>;
        const exports = parseDotenv(await show('abra.sh')).env;
        for (const [key, cfg] of Object.entries<Record<string, any>>(compose.configs ?? {})) {
          const name = String(cfg.name).replace(/\$\{([A-Z_]+)\}/g, (_, v: string) => (v === 'STACK_NAME' ? '' : (exports[v] ?? `<${v} unset>`)));
          expect(name, `${recipe}@${ref} config ${key}`).not.toContain('unset');
          const content = await show(cfg.file);
          const before = seen.get(`${key}:${name}`);
          if (before) {
            expect(content === before.content, `${key} ${name}: ${before.ref} and ${ref} differ`).toBe(true);
          }
          seen.set(`${key}:${name}`, { content, ref });
        }
      }
      expect(seen.size).toBeGreaterThan(1);
    });
  }

  it('webnotes: the releases and variants differ the way they should', async () => {
    const r = repo('webnotes');
    const show = (ref: string, p: string) => git(r.path, ['show', `${ref}:${p}`]);
    const [v100, v110] = r.tags as [string, string];
    expect(await show(v100, 'compose.yml')).not.toContain('NOTES_TITLE');
    expect(await show(v110, 'compose.yml')).toContain('NOTES_TITLE=${NOTES_TITLE:-Webnotes}');
    expect(await show(v110, '.env.sample')).toContain('NOTES_TITLE=');
    expect(await show('main', 'compose.yml')).toContain('RECIPE_VERSION=head');

    const headCompose = await show('main', 'compose.yml');
    const headEntry = await show('main', 'entrypoint.sh');
    expect(headEntry).toContain('id="notes-title"');
    expect(await show('unhealthy', 'compose.yml')).not.toContain('8080/health"');
    expect(await show('wipes-data', 'entrypoint.sh')).toContain('rm -rf "$NOTES"');
    expect(headEntry).not.toContain('rm -rf "$NOTES"');
    const restore = labelsOf(parseYaml(await show('restore-loses', 'compose.yml')).services.app);
    expect(restore['backupbot.restore.post-hook']).toBe('rm -rf /data/notes');
    expect(await show('page-broken', 'entrypoint.sh')).not.toContain('notes-title');
    expect(await show('crash-loop', 'entrypoint.sh')).toMatch(/app\)\n\s+echo "cannot reach the database[^\n]*\n\s+exit 1/);
    expect(await show('slow-start', 'entrypoint.sh')).toContain('if [ "$starts" -le 2 ]');
    expect(await show('slow-start', '.cc-ci/settings.yaml')).toContain('deployTimeoutSeconds: 120');
    expect(headEntry).not.toContain('exit 1\n');
    const labels = labelsOf(parseYaml(headCompose).services.app);
    expect(labels['backupbot.backup']).toBe('true');
    expect(labels['backupbot.backup.volumes.data.path']).toBe('notes');
    expect(labels['traefik.http.services.${STACK_NAME}.loadbalancer.server.port']).toBe('8080');
  });

  it('plainpage: no secrets, volumes or backups; port 8081', async () => {
    const r = repo('plainpage');
    const compose = parseYaml(await git(r.path, ['show', 'main:compose.yml'])) as Record<string, any>;
    expect(compose.secrets).toBeUndefined();
    expect(compose.volumes).toBeUndefined();
    const labels = labelsOf(compose.services.app);
    expect(Object.keys(labels).filter((k) => k.startsWith('backupbot'))).toEqual([]);
    expect(labels['traefik.http.services.${STACK_NAME}.loadbalancer.server.port']).toBe('8081');
  });
});

// --------------------------------------------------------------------------------------------
// On the real swarm

/** A free port in 31000-31999 (not bound on the host right now). */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = randomInt(31000, 32000);
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 31000-31999');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function http(url: string, init: RequestInit = {}): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined; // not listening (yet)
  }
}

/** Stacks not removed yet: afterAll removes them if a test died before its `finally`. */
const liveStacks = new Set<TestStack>();

/** One deployment of a checkout: the env, its port, and what to clean up. */
class TestStack {
  readonly secrets = new Map<string, string>(); // compose key -> value
  private readonly createdSecrets: string[] = [];
  private overlayDir = '';

  constructor(
    public e: DeployEnv,
    readonly port: number,
    readonly appPort: number,
  ) {
    liveStacks.add(this);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Creates the external secrets the compose file names (like `abra app secret generate`). */
  async createSecrets(dir: string): Promise<void> {
    const model = await stackConfig(dir, this.e);
    for (const [key, s] of Object.entries<Record<string, any>>(model.secrets ?? {})) {
      if (!s.external) continue;
      const envKey = `SECRET_${key.toUpperCase()}_VERSION`;
      const length = Number(/length=(\d+)/.exec(this.e.modifiers[envKey] ?? '')?.[1] ?? 32);
      const value = randomBytes(length).toString('base64url').slice(0, length);
      await execa('docker', ['secret', 'create', s.name, '-'], { input: value, timeout: T });
      this.createdSecrets.push(s.name);
      this.secrets.set(key, value);
    }
  }

  /** `docker stack deploy` of the checkout plus the host-port overlay. */
  async deploy(dir: string, opts: { reject?: boolean } = {}) {
    if (!this.overlayDir) {
      this.overlayDir = await mkdtemp(path.join(work, 'overlay-'));
      // Test-only: cc-ci publishes the app port itself; the recipes never do.
      const overlay = {
        version: '3.8',
        services: {
          app: { ports: [{ target: this.appPort, published: this.port, protocol: 'tcp', mode: 'host' }] },
        },
      };
      await writeFile(path.join(this.overlayDir, 'compose.ports.yml'), JSON.stringify(overlay, null, 2));
    }
    return execa('docker', ['stack', 'deploy', ...composeArgs(this.e), '-c', path.join(this.overlayDir, 'compose.ports.yml'), '--detach=true', this.e.stack], {
      cwd: dir,
      env: this.e.env,
      timeout: 60_000,
      reject: opts.reject ?? true,
      all: true,
    });
  }

  async services(): Promise<Array<{ name: string; replicas: string }>> {
    const r = await execa('docker', ['service', 'ls', '--filter', `label=com.docker.stack.namespace=${this.e.stack}`, '--format', '{{.Name}} {{.Replicas}}'], {
      timeout: T,
    });
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name = '', replicas = ''] = l.split(' ');
        return { name, replicas };
      });
  }

  /** Waits until every expected service runs 1/1 (with a healthcheck: healthy) and `ready` holds. */
  async waitConverged(count: number, ready: () => Promise<boolean> = async () => true, ms = 90_000) {
    const until = Date.now() + ms;
    let last = '';
    while (Date.now() < until) {
      const svcs = await this.services();
      last = svcs.map((s) => `${s.name} ${s.replicas}`).join(', ');
      if (svcs.length === count && svcs.every((s) => s.replicas === '1/1') && (await ready())) return;
      await sleep(1_000);
    }
    throw new Error(`${this.e.stack} did not converge in ${ms / 1000}s: ${last}`);
  }

  async serviceLabels(service: string): Promise<Record<string, string>> {
    const r = await execa('docker', ['service', 'inspect', `${this.e.stack}_${service}`, '--format', '{{json .Spec.Labels}}'], { timeout: T });
    return JSON.parse(r.stdout) as Record<string, string>;
  }

  /** Removes the stack and everything it made; never throws. */
  async remove(): Promise<void> {
    liveStacks.delete(this);
    const ns = `label=com.docker.stack.namespace=${this.e.stack}`;
    const docker = (args: string[]) => execa('docker', args, { reject: false, timeout: T });
    await docker(['stack', 'rm', this.e.stack]);
    // Volumes can only go once the task containers are gone.
    for (let i = 0; i < 60; i++) {
      const left = await docker(['ps', '-aq', '--filter', ns]);
      const nets = await docker(['network', 'ls', '-q', '--filter', ns]);
      if (!left.stdout.trim() && !nets.stdout.trim()) break;
      await sleep(1_000);
    }
    for (const kind of ['volume', 'config', 'network'] as const) {
      const ids = (await docker([kind, 'ls', '-q', '--filter', ns])).stdout.split('\n').filter(Boolean);
      if (ids.length) await docker([kind, 'rm', ...ids]);
    }
    if (this.createdSecrets.length) await docker(['secret', 'rm', ...this.createdSecrets]);
  }
}

async function newStack(dir: string, prefix: string, appPort: number): Promise<TestStack> {
  return new TestStack(await deployEnv(dir, prefix), await freePort(), appPort);
}

// The swarm is part of the test environment (./setup.sh makes it): missing, these tests fail
// saying so rather than quietly skipping.
describe('on the swarm', () => {
  let createdProxy = false;

  beforeAll(async () => {
    const state = (await execa('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'], { reject: false, timeout: T })).stdout.trim();
    if (state !== 'active') throw new Error(`the swarm is not active (${state || 'docker does not answer'}): run ./setup.sh --no-demo first`);
    await ensureImages();
    // The recipes join the external `proxy` network (traefik's); create it only if missing.
    const r = await execa('docker', ['network', 'inspect', 'proxy'], { reject: false, timeout: T });
    if (r.exitCode !== 0) {
      await execa('docker', ['network', 'create', '--driver', 'overlay', '--attachable', 'proxy'], { timeout: T });
      createdProxy = true;
    }
  });

  afterAll(async () => {
    for (const s of [...liveStacks]) await s.remove();
    if (createdProxy) await execa('docker', ['network', 'rm', 'proxy'], { reject: false, timeout: T });
  });

  it('webnotes head serves the page, /health and notes', async () => {
    const r = repo('webnotes');
    const dir = await checkout(r, 'main');
    const s = await newStack(dir, 'fxwn', 8080);
    try {
      await s.createSecrets(dir);
      const token = s.secrets.get('api_token')!;
      expect(token).toHaveLength(32);
      await s.deploy(dir);
      await s.waitConverged(2);

      const page = await http(`${s.url}/`);
      expect(page?.status).toBe(200);
      expect(page?.body).toContain('<h1 id="notes-title">Team notes</h1>');
      expect(page?.body).toContain('Version: head');
      expect(page?.body).toContain(`Domain: ${s.e.domain}`);
      expect(page?.body).toContain('API token: present (32 characters)');
      expect(page?.body).not.toContain(token);
      expect(await http(`${s.url}/health`)).toEqual({ status: 200, body: 'ok\n' });

      const note = `hello from the test ${randomBytes(4).toString('hex')}\nsecond line`;
      const post = await http(`${s.url}/cgi-bin/notes?key=greeting`, { method: 'POST', body: note });
      expect(post).toEqual({ status: 200, body: 'stored greeting\n' });
      expect(await http(`${s.url}/cgi-bin/notes?key=greeting`)).toEqual({ status: 200, body: note });
      expect((await http(`${s.url}/cgi-bin/notes?key=missing`))?.status).toBe(404);
      expect((await http(`${s.url}/cgi-bin/notes?key=..%2Fetc`))?.status).toBe(400);
      const wrong = { method: 'POST', body: 'x', headers: { 'X-Api-Token': 'wrong' } };
      expect((await http(`${s.url}/cgi-bin/notes?key=other`, wrong))?.status).toBe(403);
      const right = { method: 'POST', body: 'y', headers: { 'X-Api-Token': token } };
      expect((await http(`${s.url}/cgi-bin/notes?key=other`, right))?.status).toBe(200);
      expect(await http(`${s.url}/cgi-bin/notes`)).toEqual({ status: 200, body: 'greeting\nother\n' });

      const labels = await s.serviceLabels('app');
      expect(labels[`coop-cloud.${s.e.stack}.version`]).toBe(r.tags.at(-1));
      expect(labels['backupbot.backup']).toBe('true');
    } finally {
      await s.remove();
    }
  });

  it('webnotes upgrades 1.0.0 -> 1.1.0 -> head on one stack and keeps the notes', async () => {
    const r = repo('webnotes');
    const [v100, v110] = r.tags as [string, string];
    const dirs = { [v100]: await checkout(r, v100), [v110]: await checkout(r, v110), main: await checkout(r, 'main') };
    const s = await newStack(dirs[v100]!, 'fxup', 8080);
    const shows = (text: string) => async () => (await http(`${s.url}/`))?.body.includes(text) ?? false;
    try {
      await s.createSecrets(dirs[v100]!);
      await s.deploy(dirs[v100]!);
      await s.waitConverged(2, shows(`Version: ${v100}`));
      expect((await http(`${s.url}/`))?.body).toContain('<h1 id="notes-title">Webnotes</h1>');
      await http(`${s.url}/cgi-bin/notes?key=kept`, { method: 'POST', body: 'survives upgrades' });

      for (const [ref, version] of [
        [v110, v110],
        ['main', 'head'],
      ] as const) {
        // Same app, the new checkout's .env.sample and abra.sh: a new ENTRYPOINT_VERSION
        // means a new config name (swarm configs are immutable).
        s.e = await deployEnv(dirs[ref]!, 'fxup', s.e.domain);
        await s.deploy(dirs[ref]!);
        await s.waitConverged(2, shows(`Version: ${version}`));
        expect((await http(`${s.url}/cgi-bin/notes?key=kept`))?.body).toBe('survives upgrades');
      }
      expect((await http(`${s.url}/`))?.body).toContain('<h1 id="notes-title">Team notes</h1>');
    } finally {
      await s.remove();
    }
  });

  it('webnotes unhealthy: the app starts but never becomes healthy', async () => {
    const r = repo('webnotes');
    const dir = await checkout(r, 'unhealthy');
    const s = await newStack(dir, 'fxuh', 8080);
    try {
      await s.createSecrets(dir);
      await s.deploy(dir);
      let served = false;
      const until = Date.now() + 20_000;
      while (Date.now() < until) {
        const app = (await s.services()).find((x) => x.name === `${s.e.stack}_app`);
        expect(app?.replicas, 'app must never converge').not.toBe('1/1');
        const health = await execa('docker', ['ps', '-a', '--filter', `label=com.docker.swarm.service.name=${s.e.stack}_app`, '--format', '{{.Status}}'], {
          timeout: T,
        });
        expect(health.stdout).not.toContain('(healthy)');
        served ||= (await http(`${s.url}/`))?.status === 200;
        await sleep(1_000);
      }
      expect(served, 'the app itself should start and serve its page').toBe(true);
    } finally {
      await s.remove();
    }
  });

  it('webnotes deploy-fails: docker stack deploy itself fails', async () => {
    const r = repo('webnotes');
    const dir = await checkout(r, 'deploy-fails');
    const s = await newStack(dir, 'fxdf', 8080);
    try {
      await s.createSecrets(dir);
      const res = await s.deploy(dir, { reject: false });
      expect(res.exitCode).not.toBe(0);
      expect(res.all).toMatch(/undefined secret "undeclared_token"/);
      expect(await s.services()).toEqual([]);
    } finally {
      await s.remove();
    }
  });

  it('plainpage head serves its page', async () => {
    const r = repo('plainpage');
    const dir = await checkout(r, 'main');
    const s = await newStack(dir, 'fxpp', 8081);
    try {
      await s.createSecrets(dir); // none
      expect(s.secrets.size).toBe(0);
      await s.deploy(dir);
      await s.waitConverged(1);
      const page = await http(`${s.url}/`);
      expect(page?.status).toBe(200);
      expect(page?.body).toContain('<h1 id="page-title">Plain page</h1>');
      expect(page?.body).toContain('Version: head');
      const labels = await s.serviceLabels('app');
      expect(labels[`coop-cloud.${s.e.stack}.version`]).toBe(r.tags.at(-1));
    } finally {
      await s.remove();
    }
  });
});
