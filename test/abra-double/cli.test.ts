// The abra double's command line, `app new`, secrets, `app ls`, recipes/servers and fault
// injection: everything that needs no deployed stack. The facts pinned here are the rows of
// docs/abra-double.md's contract, which names the source of each (§ numbers in the comments are
// the abra reference's sections).
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ABRA, docker, makeSandbox, newDomain, purgeStack, stackOf, V1, V2, type Sandbox } from './helpers.js';

let sb: Sandbox;
const stacks = new Set<string>();

function track(domain: string): string {
  const stack = stackOf(domain);
  stacks.add(stack);
  return domain;
}

async function secretNames(prefix: string): Promise<string[]> {
  return (await docker(['secret', 'ls', '--format', '{{.Name}}'])).split('\n').filter((n) => n.startsWith(prefix));
}

beforeAll(async () => {
  sb = await makeSandbox();
});

afterAll(async () => {
  for (const s of stacks) await purgeStack(s);
  sb.cleanup();
});

// Errors go through a fatal logger: a `FATA <message>` line on stderr and exit status 1.
function expectFatal(r: { exitCode: number | undefined; stderr: string }, message: string | RegExp): void {
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/^FATA /m);
  if (typeof message === 'string') expect(r.stderr).toContain(message);
  else expect(r.stderr).toMatch(message);
}

describe('global behaviour', () => {
  it('prints its version like cobra: "abra version <v>"', async () => {
    const r = await sb.abra(['--version']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe('abra version 0.13.0-beta-ccci-double');
  });

  it('documents every flag cc-ci relies on in --help (cobra layout)', async () => {
    // The flags a controller self-checks before use
    const expected: Array<[string[], string[]]> = [
      [
        ['app', 'new'],
        ['-s, --server string', '-D, --domain string', '-S, --secrets', '-C, --chaos'],
      ],
      [
        ['app', 'deploy'],
        ['-C, --chaos', '-f, --force', '-c, --no-converge-checks', '-D, --no-domain-checks', '-i, --ignore-env-version'],
      ],
      [['app', 'undeploy'], []],
      [['app', 'rm'], ['-f, --force']],
      [
        ['app', 'ls'],
        ['-s, --server string', '-r, --recipe string', '-S, --status', '-m, --machine'],
      ],
      [
        ['app', 'secret', 'generate'],
        ['-a, --all', '-m, --machine', '-C, --chaos'],
      ],
      [['app', 'secret', 'rm'], ['-a, --all']],
      [['app', 'secret', 'ls'], ['-m, --machine']],
      [['app', 'volume', 'ls'], ['-m, --machine']],
      [['app', 'volume', 'rm'], ['-f, --force']],
      [['app', 'backup', 'create'], ['-C, --chaos']],
      [
        ['app', 'backup', 'snapshots'],
        ['-s, --snapshot string', '-C, --chaos'],
      ],
      [
        ['app', 'backup', 'download'],
        ['-s, --snapshot string', '-v, --volumes', '-c, --secrets', '-C, --chaos'],
      ],
      [
        ['app', 'restore'],
        ['-s, --snapshot string', '-C, --chaos'],
      ],
      [['recipe', 'fetch'], []],
      [['server', 'add'], ['-l, --local']],
      [['server', 'ls'], ['-m, --machine']],
    ];
    for (const [cmd, flags] of expected) {
      for (const helpFlag of ['--help', '-h']) {
        const r = await sb.abra([...cmd, helpFlag]);
        expect(r.exitCode, `${cmd.join(' ')} ${helpFlag}`).toBe(0);
        expect(r.stdout).toContain('Usage:');
        expect(r.stdout).toContain('Flags:');
        expect(r.stdout).toContain('-h, --help');
        // global flags appear on every subcommand
        expect(r.stdout).toContain('-n, --no-input');
        expect(r.stdout).toContain('-o, --offline');
        expect(r.stdout).toContain('-d, --debug');
        for (const f of flags) expect(r.stdout, `${cmd.join(' ')}: ${f}`).toContain(f);
      }
    }
  });

  it('FATAs with exit 1 on unknown commands, unknown flags, missing arguments and unknown apps', async () => {
    expectFatal(await sb.abra(['app', 'frobnicate']), 'unknown command "frobnicate"');
    expectFatal(await sb.abra(['app', 'deploy', 'x.example.com', '--frob']), 'unknown flag: --frob');
    expectFatal(await sb.abra(['app', 'deploy']), 'no app provided');
    expectFatal(await sb.abra(['app', 'deploy', 'nope.example.com', '-n']), 'cannot find app with name nope.example.com');
  });

  it('keeps -n/-o/-d accepted anywhere; -d prints DEBU lines', async () => {
    const r = await sb.abra(['-n', 'server', 'ls', '-o', '-d', '-m']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([{ name: 'default', host: 'local' }]);
  });
});

describe('server add / ls', () => {
  it('server add --local creates servers/default and is idempotent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'abd-srv-'));
    try {
      const env = { ABRA_DIR: dir };
      const r1 = await sb.abra(['server', 'add', '--local', '-n'], { env });
      expect(r1.exitCode).toBe(0);
      expect(existsSync(join(dir, 'servers', 'default'))).toBe(true);
      const r2 = await sb.abra(['server', 'add', '-l', '-n'], { env });
      expect(r2.exitCode).toBe(0);
      expect(r2.stderr).toMatch(/^INFO .*already exists/m);
      expectFatal(await sb.abra(['server', 'add', 'example.org', '-n'], { env }), '--local');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('recipe fetch', () => {
  it('fetches tags from origin; FATA when the recipe is not there or the fetch fails; -o skips the fetch', async () => {
    const bare = mkdtempSync(join(tmpdir(), 'abd-origin-'));
    try {
      await execa('git', ['clone', '--quiet', '--bare', sb.recipeDir, bare], { timeout: 60_000 });
      await execa('git', ['-C', bare, 'tag', '-a', '3.0.0+upstream', '-m', 'new upstream release'], {
        timeout: 60_000,
        env: { GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid' },
      });
      await sb.git(['remote', 'add', 'origin', bare]);
      const r = await sb.abra(['recipe', 'fetch', 'dbltest', '-n']);
      expect(r.exitCode, r.stderr).toBe(0);
      const tags = await execa('git', ['-C', sb.recipeDir, 'tag', '-l'], { timeout: 60_000 });
      expect(String(tags.stdout)).toContain('3.0.0+upstream');

      // offline: no fetch, so a broken origin does not matter
      await sb.git(['remote', 'set-url', 'origin', join(bare, 'gone')]);
      expect((await sb.abra(['recipe', 'fetch', 'dbltest', '-o', '-n'])).exitCode).toBe(0);
      expectFatal(await sb.abra(['recipe', 'fetch', 'dbltest', '-n']), 'failed to fetch recipe');
      expectFatal(await sb.abra(['recipe', 'fetch', 'no-such-recipe', '-n']), 'no catalogue');
    } finally {
      await sb.git(['remote', 'remove', 'origin']).catch(() => undefined);
      await sb.git(['tag', '-d', '3.0.0+upstream']).catch(() => undefined);
      rmSync(bare, { recursive: true, force: true });
    }
  });
});

describe('app new', () => {
  it('copies .env.sample keeping comments, order and modifiers, with <recipe>.example.com replaced by the domain', async () => {
    const domain = track(newDomain());
    const r = await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    const sample = readFileSync(join(sb.recipeDir, '.env.sample'), 'utf8');
    // abra's TemplateAppEnvSample [R]: every `<recipe>.example.com`, the commented alias too
    const expected = sample.split('dbltest.example.com').join(domain);
    // without a version TYPE stays the bare recipe name
    expect(sb.readEnv(domain)).toBe(expected);
    expect(sb.readEnv(domain)).toContain(`DOMAIN=${domain}\n`);
    expect(sb.readEnv(domain)).toContain('SECRET_API_TOKEN_VERSION=v1 # length=32');
    expect(sb.readEnv(domain)).toContain(`#EXTRA_DOMAINS=', \`www.${domain}\`'`);
    expect(sb.readEnv(domain)).toContain('LETS_ENCRYPT_ENV=production');
    // a second `new` for the same domain is refused
    expectFatal(await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-n']), `${domain} already exists`);
  });

  it('with a version: checks the release tag out and pins TYPE=<recipe>:<version>', async () => {
    const domain = track(newDomain());
    const r = await sb.abra(['app', 'new', 'dbltest', V1, '-s', 'default', '-D', domain, '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(sb.readEnv(domain)).toMatch(new RegExp(`^TYPE=dbltest:${V1.replace(/[+.]/g, '\\$&')}$`, 'm'));
    const head = await execa('git', ['-C', sb.recipeDir, 'describe', '--tags', '--exact-match', 'HEAD'], { timeout: 60_000 });
    expect(String(head.stdout)).toBe(V1);
    await sb.git(['checkout', '--quiet', 'main']);
  });

  it('refuses unknown versions, unknown servers, unknown recipes, a missing domain and [version] with --chaos', async () => {
    const domain = newDomain();
    expectFatal(await sb.abra(['app', 'new', 'dbltest', '7.7.7+nope', '-s', 'default', '-D', domain, '-n']), 'version 7.7.7+nope does not exist');
    expectFatal(await sb.abra(['app', 'new', 'dbltest', '-s', 'elsewhere', '-D', domain, '-n']), 'server elsewhere does not exist');
    expectFatal(await sb.abra(['app', 'new', 'no-such-recipe', '-s', 'default', '-D', domain, '-n']), 'recipe no-such-recipe does not exist');
    expectFatal(await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-n']), 'no domain');
    expectFatal(await sb.abra(['app', 'new', 'dbltest', V1, '-C', '-s', 'default', '-D', domain, '-n']), 'cannot use [version] and --chaos together');
    expect(existsSync(sb.envPath(domain))).toBe(false);
  });

  it('--secrets generates every secret and prints the values (as real abra does)', async () => {
    const domain = track(newDomain());
    const r = await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-S', '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    const stack = stackOf(domain);
    expect((await secretNames(`${stack}_`)).sort()).toEqual([`${stack}_api_token_v1`, `${stack}_db_password_v1`]);
    const valueLine = r.stdout.split('\n').find((l) => l.startsWith('api_token'));
    expect(valueLine).toMatch(/^api_token\s+[A-Za-z0-9]{32}$/);
  });
});

describe('stack name', () => {
  it('is the domain with . → _, truncated to 45 characters, unless STACK_NAME is set in the .env', async () => {
    const long = track(`abd-${Date.now().toString(16)}.a-rather-long-subdomain.ci.example.org`);
    expect((await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', long, '-n'])).exitCode).toBe(0);
    const stack = long.replace(/\./g, '_').slice(0, 45);
    expect(stack.length).toBe(45);
    const ls = await sb.abra(['app', 'secret', 'ls', long, '-m']);
    expect(JSON.parse(ls.stdout)).toContainEqual({ name: 'api_token', version: 'v1', 'generated-name': `${stack}_api_token_v1`, 'created-on-server': 'false' });

    const domain = track(newDomain());
    expect((await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-n'])).exitCode).toBe(0);
    const custom = `abd${Date.now().toString(16)}custom`;
    stacks.add(custom);
    sb.editEnv(domain, { STACK_NAME: custom });
    const ls2 = await sb.abra(['app', 'secret', 'ls', domain, '-m']);
    expect(JSON.parse(ls2.stdout)).toContainEqual({
      name: 'api_token',
      version: 'v1',
      'generated-name': `${custom}_api_token_v1`,
      'created-on-server': 'false',
    });
  });
});

describe('app secret', () => {
  let domain: string;
  let stack: string;
  beforeAll(async () => {
    domain = track(newDomain());
    stack = stackOf(domain);
    expect((await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-n'])).exitCode).toBe(0);
  });

  it('generate --all -m: <stack>_<key>_<version> names, # length=N → N alphanumerics, else a passphrase; no namespace label', async () => {
    const r = await sb.abra(['app', 'secret', 'generate', domain, '--all', '-m', '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Array<{ name: string; value: string }>;
    expect(out.map((o) => o.name)).toEqual(['api_token', 'db_password']);
    for (const o of out) expect(Object.keys(o).sort()).toEqual(['name', 'value']);
    expect(out[0]?.value).toMatch(/^[A-Za-z0-9]{32}$/); // SECRET_API_TOKEN_VERSION=v1 # length=32
    expect(out[1]?.value).toMatch(/^[a-z]+(-[a-z]+){2,}$/); // no modifier: words joined by a delimiter
    expect((await secretNames(`${stack}_`)).sort()).toEqual([`${stack}_api_token_v1`, `${stack}_db_password_v1`]);
    // Recalled, not verified (docs/abra-double.md): generated secrets carry no namespace label; find them by name prefix
    const labelled = await docker(['secret', 'ls', '--filter', `label=com.docker.stack.namespace=${stack}`, '--format', '{{.Name}}']);
    expect(labelled).toBe('');
    // the value docker holds is the one printed: mount it in a throwaway service? not needed —
    // docker never reveals secret values; the length check above pins the modifier.
  });

  it('ls -m reports created-on-server', async () => {
    const r = await sb.abra(['app', 'secret', 'ls', domain, '-m']);
    expect(JSON.parse(r.stdout)).toEqual([
      { name: 'api_token', version: 'v1', 'generated-name': `${stack}_api_token_v1`, 'created-on-server': 'true' },
      { name: 'db_password', version: 'v1', 'generated-name': `${stack}_db_password_v1`, 'created-on-server': 'true' },
    ]);
  });

  it('generating an existing secret fails like docker (AlreadyExists); an explicit <secret> <version> works', async () => {
    expectFatal(await sb.abra(['app', 'secret', 'generate', domain, 'api_token', 'v1', '-n']), /AlreadyExists.*already exists/);
    const r = await sb.abra(['app', 'secret', 'generate', domain, 'api_token', 'v2', '-m', '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await secretNames(`${stack}_api_token_`)).sort()).toEqual([`${stack}_api_token_v1`, `${stack}_api_token_v2`]);
    expectFatal(await sb.abra(['app', 'secret', 'generate', domain, 'nope', 'v1', '-n']), 'no secret nope');
    expectFatal(await sb.abra(['app', 'secret', 'generate', domain, '-n']), '--all');
  });

  it('--all beside existing secrets: warns "already exists, moving on" and generates the missing ones [R]', async () => {
    expect((await sb.abra(['app', 'secret', 'rm', domain, 'db_password', '-n'])).exitCode).toBe(0);
    const r = await sb.abra(['app', 'secret', 'generate', domain, '--all', '-m', '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^WARN ${stack}_api_token_v1 already exists, moving on`, 'm'));
    expect((JSON.parse(r.stdout) as Array<{ name: string }>).map((o) => o.name)).toEqual(['db_password']);
    expect(await secretNames(`${stack}_db_password_`)).toEqual([`${stack}_db_password_v1`]);
  });

  it('rm <secret> removes the current version; rm --all every version of every declared secret', async () => {
    expect((await sb.abra(['app', 'secret', 'rm', domain, 'db_password', '-n'])).exitCode).toBe(0);
    expect(await secretNames(`${stack}_db_password_`)).toEqual([]);
    expectFatal(await sb.abra(['app', 'secret', 'rm', domain, 'db_password', '-n']), 'does not exist');
    expect((await sb.abra(['app', 'secret', 'rm', domain, '--all', '-n'])).exitCode).toBe(0);
    expect(await secretNames(`${stack}_`)).toEqual([]);
  });

  it('# generate=false secrets are skipped by --all; COMPOSE_FILE may reference itself', async () => {
    // uncomment the sample's optional lines: COMPOSE_FILE="$COMPOSE_FILE:compose.smtp.yml"
    const p = sb.envPath(domain);
    writeFileSync(p, readFileSync(p, 'utf8').replace('#COMPOSE_FILE="$COMPOSE_FILE', 'COMPOSE_FILE="$COMPOSE_FILE').replace('#SECRET_SMTP', 'SECRET_SMTP'));
    const r = await sb.abra(['app', 'secret', 'generate', domain, '-a', '-m', '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^WARN .*smtp_password/m);
    expect((JSON.parse(r.stdout) as Array<{ name: string }>).map((o) => o.name)).toEqual(['api_token', 'db_password']);
    // deploy refuses while the insert-only secret is missing
    const d = await sb.abra(['app', 'deploy', domain, '-n']);
    expectFatal(d, `secret not inserted (#generate=false): ${stack}_smtp_password_v1`);
    expect(await docker(['service', 'ls', '--filter', `label=com.docker.stack.namespace=${stack}`, '-q'])).toBe('');
  });

  it('deploy refuses while a generated secret is missing: "secret not generated: <name>"', async () => {
    const p = sb.envPath(domain);
    writeFileSync(p, readFileSync(p, 'utf8').replace('COMPOSE_FILE="$COMPOSE_FILE', '#COMPOSE_FILE="$COMPOSE_FILE'));
    expect((await sb.abra(['app', 'secret', 'rm', domain, 'api_token', '-n'])).exitCode).toBe(0);
    const d = await sb.abra(['app', 'deploy', domain, '-n']);
    expectFatal(d, `secret not generated: ${stack}_api_token_v1`);
    expect(await docker(['service', 'ls', '--filter', `label=com.docker.stack.namespace=${stack}`, '-q'])).toBe('');
    await sb.git(['checkout', '--quiet', 'main']);
  });
});

describe('app rm without a deployment', () => {
  it('removes the secrets by declared name and by <stack>_ prefix, sparing apps whose stack merely shares the prefix', async () => {
    const a = track(newDomain());
    const stackA = stackOf(a);
    expect((await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', a, '-n'])).exitCode).toBe(0);
    const b = track(newDomain());
    expect((await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', b, '-n'])).exitCode).toBe(0);
    stacks.add(`${stackA}_other`);
    sb.editEnv(b, { STACK_NAME: `${stackA}_other` });
    for (const d of [a, b]) expect((await sb.abra(['app', 'secret', 'generate', d, '-a', '-m', '-n'])).exitCode).toBe(0);
    await docker(['secret', 'create', `${stackA}_api_token_v0`, '-'], { input: 'leftover of an older version' });

    expectFatal(await sb.abra(['app', 'rm', a]), '--force'); // no prompt in the double
    const r = await sb.abra(['app', 'rm', a, '-f', '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await secretNames(`${stackA}_`)).sort()).toEqual([`${stackA}_other_api_token_v1`, `${stackA}_other_db_password_v1`]);
    expect(existsSync(sb.envPath(a))).toBe(false);
  });
});

describe('app ls -m', () => {
  it('is keyed by server, every per-app value a string; status and version empty without -S', async () => {
    const r = await sb.abra(['app', 'ls', '-m', '-n']);
    expect(r.exitCode, r.stderr).toBe(0);
    const parsed = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
    expect(Object.keys(parsed)).toEqual(['default']);
    const server = parsed.default ?? {};
    expect(Object.keys(server).sort()).toEqual(['appCount', 'apps', 'latestCount', 'unversionedCount', 'upgradeCount', 'versionCount']);
    const apps = server.apps as Array<Record<string, unknown>>;
    expect(server.appCount).toBe(apps.length);
    expect(apps.length).toBeGreaterThan(0);
    for (const a of apps) {
      expect(Object.keys(a).sort()).toEqual(['appName', 'autoUpdate', 'chaos', 'chaosVersion', 'domain', 'recipe', 'server', 'status', 'upgrade', 'version']);
      for (const v of Object.values(a)) expect(typeof v).toBe('string');
      expect(a.appName).toBe(a.domain);
      expect(a.server).toBe('default');
      expect(a.recipe).toBe('dbltest');
      expect(a.status).toBe('');
      expect(a.version).toBe('');
    }
    // filters
    const none = await sb.abra(['app', 'ls', '-r', 'other-recipe', '-m']);
    expect(JSON.parse(none.stdout)).toEqual({});
    expectFatal(await sb.abra(['app', 'ls', '-s', 'elsewhere', '-m']), 'server elsewhere does not exist');
  });

  it('with -S an undeployed app reports status "undeployed" and the recipe checkout\'s version label', async () => {
    const domain = track(newDomain());
    expect((await sb.abra(['app', 'new', 'dbltest', V1, '-s', 'default', '-D', domain, '-n'])).exitCode).toBe(0);
    const r = await sb.abra(['app', 'ls', '-S', '-m', '-n']);
    const apps = (JSON.parse(r.stdout) as Record<string, { apps: Array<Record<string, string>> }>).default?.apps ?? [];
    const app = apps.find((a) => a.domain === domain);
    expect(app).toMatchObject({ status: 'undeployed', chaos: 'false', version: V1, upgrade: V2 });
    await sb.git(['checkout', '--quiet', 'main']);
  });
});

describe('fault injection', () => {
  let state: string;
  beforeAll(() => {
    state = mkdtempSync(join(tmpdir(), 'abd-state-'));
  });
  afterAll(() => {
    rmSync(state, { recursive: true, force: true });
  });
  afterEach(() => {
    rmSync(join(state, 'calls.json'), { force: true });
  });

  const counts = (): Record<string, number> => JSON.parse(readFileSync(join(state, 'calls.json'), 'utf8')) as Record<string, number>;

  it('fail: the Nth call (counted across processes) FATAs "injected fault" before doing anything', async () => {
    const env = { ABRA_DOUBLE_FAULTS: 'app.new:2:fail', ABRA_DOUBLE_STATE: state };
    const d1 = track(newDomain());
    const d2 = track(newDomain());
    expect((await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', d1, '-n'], { env })).exitCode).toBe(0);
    const r = await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', d2, '-n'], { env });
    expectFatal(r, 'injected fault');
    expect(existsSync(sb.envPath(d2))).toBe(false);
    expect(counts()['app.new']).toBe(2);
    // the third call is fine again
    expect((await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', d2, '-n'], { env })).exitCode).toBe(0);
    // --help is not a call
    await sb.abra(['app', 'new', '--help'], { env });
    expect(counts()['app.new']).toBe(3);
  });

  it('aliases are folded: app.rm and `app remove` are the same command', async () => {
    const env = { ABRA_DOUBLE_FAULTS: 'app.rm:1:fail', ABRA_DOUBLE_STATE: state };
    expectFatal(await sb.abra(['app', 'remove', 'whatever.example.org', '-f', '-n'], { env }), 'injected fault');
    expect(counts()['app.remove']).toBe(1);
  });

  it('hang: the call never returns until killed', async () => {
    const env = { ABRA_DOUBLE_FAULTS: 'app.new:1:hang', ABRA_DOUBLE_STATE: state };
    const domain = track(newDomain());
    const started = Date.now();
    const r = await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-n'], { env, timeoutMs: 3000 });
    expect(r.timedOut).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    expect(existsSync(sb.envPath(domain))).toBe(false);
  });

  it('crash: app new dies by SIGKILL (exit 137 in a shell) after writing the .env, before the secrets', async () => {
    const env = { ABRA_DOUBLE_FAULTS: 'app.new:1:crash', ABRA_DOUBLE_STATE: state };
    const domain = track(newDomain());
    const r = await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-S', '-n'], { env });
    expect(r.signal).toBe('SIGKILL');
    expect(existsSync(sb.envPath(domain))).toBe(true);
    expect(await secretNames(`${stackOf(domain)}_`)).toEqual([]);

    rmSync(join(state, 'calls.json'), { force: true });
    const d2 = track(newDomain());
    const sh = await execa('sh', ['-c', '"$@"; echo "exit=$?"', 'sh', ABRA, 'app', 'new', 'dbltest', '-s', 'default', '-D', d2, '-n'], {
      env: { ...process.env, ...sb.env, ...env },
      reject: false,
      timeout: 60_000,
    });
    expect(String(sh.stdout)).toContain('exit=137');
  });

  it('needs ABRA_DOUBLE_STATE when faults are set, and rejects malformed specs', async () => {
    expectFatal(await sb.abra(['server', 'ls'], { env: { ABRA_DOUBLE_FAULTS: 'app.new:1:fail' } }), 'ABRA_DOUBLE_STATE');
    expectFatal(await sb.abra(['server', 'ls'], { env: { ABRA_DOUBLE_FAULTS: 'app.new:x:boom', ABRA_DOUBLE_STATE: state } }), 'invalid ABRA_DOUBLE_FAULTS');
    expectFatal(await sb.abra(['server', 'ls'], { env: { ABRA_DOUBLE_FAULTS: 'app.nope:1:fail', ABRA_DOUBLE_STATE: state } }), 'unknown command app.nope');
  });

  it('ABRA_DOUBLE_DELAY_MS adds latency to every call', async () => {
    const started = Date.now();
    const r = await sb.abra(['server', 'ls', '-m'], { env: { ABRA_DOUBLE_DELAY_MS: '1500' } });
    expect(r.exitCode).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
  });

  it('counts concurrent calls exactly (the counter file is updated under a lock)', async () => {
    const env = { ABRA_DOUBLE_STATE: state };
    await Promise.all(Array.from({ length: 8 }, () => sb.abra(['server', 'ls', '-m'], { env })));
    expect(counts()['server.list']).toBe(8);
  });
});

// A value written by a test and read back through the .env must survive quoting: keep the
// .env writer honest about the EXTRA_DOMAINS backticks.
describe('.env rewriting', () => {
  it('a deploy-time TYPE= rewrite touches only that line', async () => {
    const domain = track(newDomain());
    expect((await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-n'])).exitCode).toBe(0);
    const p = sb.envPath(domain);
    const edited = readFileSync(p, 'utf8').replace(`#EXTRA_DOMAINS=', \`www.${domain}\`'`, "EXTRA_DOMAINS=', `www.x.example.com`' # aliases");
    expect(edited).toContain('EXTRA_DOMAINS=');
    writeFileSync(p, edited);
    const before = readFileSync(p, 'utf8');
    // an explicit secret generate reads the .env but must never rewrite it
    expect((await sb.abra(['app', 'secret', 'ls', domain, '-m'])).exitCode).toBe(0);
    expect(readFileSync(p, 'utf8')).toBe(before);
  });
});
