// `abra app deploy | undeploy | rm` and `app ls -S` against the real swarm, pinned to
// docs/abra-double.md's contract (rows 9–16, 22, 23, 32, 33), which names the source of each;
// Each case pins a row of the contract in docs/abra-double.md: deploy, version choice, labels,
// convergence, teardown.
import { execa } from 'execa';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  docker,
  ensureImage,
  leftovers,
  makeSandbox,
  newDomain,
  NS,
  purgeStack,
  serviceEnv,
  serviceLabels,
  stackOf,
  LIGHTWEIGHT,
  V1,
  V2,
  type RunResult,
  type Sandbox,
} from './helpers.js';

let sb: Sandbox;
const stacks = new Set<string>();

beforeAll(async () => {
  await ensureImage();
  sb = await makeSandbox();
});

afterAll(async () => {
  for (const s of stacks) await purgeStack(s);
  sb.cleanup();
});

function expectFatal(r: RunResult, message: string | RegExp): void {
  expect(r.exitCode, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/^FATA /m);
  if (typeof message === 'string') expect(r.stderr).toContain(message);
  else expect(r.stderr).toMatch(message);
}

function expectOk(r: RunResult): void {
  expect(r.exitCode, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
}

async function newApp(version?: string): Promise<{ domain: string; stack: string }> {
  const domain = newDomain();
  const stack = stackOf(domain);
  stacks.add(stack);
  expectOk(await sb.abra(['app', 'new', 'dbltest', ...(version ? [version] : []), '-s', 'default', '-D', domain, '-n']));
  expectOk(await sb.abra(['app', 'secret', 'generate', domain, '--all', '-m', '-n']));
  return { domain, stack };
}

async function headTag(): Promise<string> {
  const r = await execa('git', ['-C', sb.recipeDir, 'describe', '--tags', '--exact-match', 'HEAD'], { reject: false, timeout: 30_000 });
  return String(r.stdout);
}

async function shortHead(): Promise<string> {
  const r = await execa('git', ['-C', sb.recipeDir, 'rev-parse', '--short=8', 'HEAD'], { timeout: 30_000 });
  return String(r.stdout).slice(0, 8);
}

async function serviceNames(stack: string): Promise<string[]> {
  return (await docker(['service', 'ls', '--filter', `label=${NS}=${stack}`, '--format', '{{.Name}}']))
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

describe('an app through its life: deploy, redeploy, chaos, undeploy, rm', () => {
  let domain: string;
  let stack: string;
  const label = (k: string): string => `coop-cloud.${stack}.${k}`;

  beforeAll(async () => {
    await sb.git(['checkout', '--quiet', 'main']);
    ({ domain, stack } = await newApp());
  });

  it('a plain deploy takes the latest annotated release, converges and pins TYPE=', async () => {
    const r = await sb.abra(['app', 'deploy', domain, '-n']);
    expectOk(r);
    // latest annotated semver tag; the higher lightweight tag is not a release
    expect(await headTag()).toContain(V2);
    expect(await serviceNames(stack)).toEqual([`${stack}_app`, `${stack}_worker`]);
    // converged: every service N/N when deploy returns
    const replicas = (await docker(['service', 'ls', '--filter', `label=${NS}=${stack}`, '--format', '{{.Replicas}}'])).split('\n');
    for (const rep of replicas) expect(rep).toMatch(/^1\/1/);
    expect(sb.readEnv(domain)).toMatch(/^TYPE=dbltest:1\.1\.0\+1\.36\.1$/m);
  });

  it('labels the app service: recipe, chaos=false, version = deployed version, no chaos-version', async () => {
    const labels = await serviceLabels(`${stack}_app`);
    expect(labels[label('recipe')]).toBe('dbltest');
    expect(labels[label('chaos')]).toBe('false');
    expect(labels[label('version')]).toBe(V2);
    expect(labels[label('chaos-version')]).toBeUndefined();
    // the recipe's own labels survive, interpolated with the app env + STACK_NAME
    expect(labels[label('timeout')]).toBe('120');
    expect(labels[`traefik.http.routers.${stack}.rule`]).toBe(`Host(\`${domain}\`)`);
    expect(labels[NS]).toBe(stack);
    // abra's labels go on the app service only
    const worker = await serviceLabels(`${stack}_worker`);
    expect(worker[label('recipe')]).toBeUndefined();
  });

  it('exposes the app env in the app service unless already set there', async () => {
    const env = await serviceEnv(`${stack}_app`);
    expect(env).toContain('LETS_ENCRYPT_ENV=production');
    expect(env).toContain(`STACK_NAME=${stack}`);
    expect(env).toContain('ENTRYPOINT_VERSION=v1'); // from abra.sh `export`
    expect(env).toContain('API_TOKEN_FILE=/run/secrets/api_token'); // compose value kept
    expect(env).toContain(`DOMAIN=${domain}`);
    expect(env.filter((e) => e.startsWith('DOMAIN='))).toHaveLength(1);
    // not the other services
    expect((await serviceEnv(`${stack}_worker`)).some((e) => e.startsWith('LETS_ENCRYPT_ENV='))).toBe(false);
    // the generated overlay lives outside the recipe tree: the checkout stays clean
    expect((await execa('git', ['-C', sb.recipeDir, 'status', '--porcelain'], { timeout: 30_000 })).stdout).toBe('');
  });

  it('refuses to deploy an already deployed app without -f or -C', async () => {
    expectFatal(await sb.abra(['app', 'deploy', domain, '-n']), `${domain} is already deployed`);
  });

  it('app ls -S -m reports the deployment', async () => {
    const r = await sb.abra(['app', 'ls', '-S', '-m', '-n']);
    expectOk(r);
    const list = (JSON.parse(r.stdout) as Record<string, { apps: Array<Record<string, string>>; appCount: number }>).default;
    const app = list?.apps.find((a) => a.domain === domain);
    expect(app).toEqual({
      server: 'default',
      recipe: 'dbltest',
      appName: domain,
      domain,
      status: 'deployed',
      chaos: 'false',
      chaosVersion: 'unknown',
      autoUpdate: 'false',
      version: V2,
      upgrade: 'latest',
    });
  });

  it('-f redeploys an explicit version and re-pins TYPE=', async () => {
    expectOk(await sb.abra(['app', 'deploy', domain, V1, '-f', '-n']));
    expect(await headTag()).toBe(V1);
    expect((await serviceLabels(`${stack}_app`))[label('version')]).toBe(V1);
    expect(sb.readEnv(domain)).toMatch(/^TYPE=dbltest:1\.0\.0\+1\.36\.1$/m);
  });

  it('refuses an explicit lightweight tag outside chaos, as abra lint R014 does; the stack is left as it was', async () => {
    expectFatal(await sb.abra(['app', 'deploy', domain, LIGHTWEIGHT, '-f', '-n']), /R014: only annotated tags/);
    expect((await serviceLabels(`${stack}_app`))[label('version')]).toBe(V1);
  });

  it("an app env's DOCKER_HOST reaches the app's containers, never the docker CLI the deploy runs (abramon)", async () => {
    sb.editEnv(domain, { DOCKER_HOST: 'tcp://socket-proxy.invalid:2375' });
    try {
      expectOk(await sb.abra(['app', 'deploy', domain, V1, '-f', '-c', '-n']));
      expect(await serviceEnv(`${stack}_app`)).toContain('DOCKER_HOST=tcp://socket-proxy.invalid:2375');
    } finally {
      writeFileSync(sb.envPath(domain), sb.readEnv(domain).replace(/^DOCKER_HOST=.*\n/m, ''));
    }
  });

  it('without a version the TYPE= pin wins over the latest release; -i ignores the pin', async () => {
    await sb.git(['checkout', '--quiet', 'main']);
    expectOk(await sb.abra(['app', 'deploy', domain, '-f', '-c', '-n']));
    expect(await headTag()).toBe(V1);
    expectOk(await sb.abra(['app', 'deploy', domain, '-f', '-i', '-n']));
    expect(await headTag()).toContain(V2);
    expect((await serviceLabels(`${stack}_app`))[label('version')]).toBe(V2);
    expect(sb.readEnv(domain)).toMatch(/^TYPE=dbltest:1\.1\.0\+1\.36\.1$/m);
  });

  it('refuses a dirty recipe tree (untracked files count) unless chaos', async () => {
    writeFileSync(join(sb.recipeDir, 'compose.ccci.yml'), 'version: "3.8"\n');
    expectFatal(await sb.abra(['app', 'deploy', domain, '-f', '-n']), 'dbltest has locally unstaged changes');
  });

  it('a file named in .git/info/exclude is no local change: the release deploys outside chaos (how cc-ci keeps its overlays)', async () => {
    const exclude = join(sb.recipeDir, '.git', 'info', 'exclude');
    writeFileSync(exclude, '/compose.ccci.yml\n');
    try {
      expectOk(await sb.abra(['app', 'deploy', domain, V2, '-f', '-c', '-n']));
      expect((await serviceLabels(`${stack}_app`))[label('chaos')]).toBe('false');
    } finally {
      writeFileSync(exclude, '');
    }
  });

  it('a chaos deploy keeps the checkout, labels chaos=true, chaos-version=<sha8>+U, keeps the compose version label', async () => {
    const head = await shortHead();
    // -C alone is enough on a deployed app
    expectOk(await sb.abra(['app', 'deploy', domain, '-C', '-n']));
    const labels = await serviceLabels(`${stack}_app`);
    expect(labels[label('chaos')]).toBe('true');
    expect(labels[label('chaos-version')]).toBe(`${head}+U`);
    expect(labels[label('version')]).toBe(V2); // from compose.yml at the V2 checkout
    expect(await headTag()).toContain(V2); // not moved
    // dirty chaos deploys leave TYPE= as it was
    expect(sb.readEnv(domain)).toMatch(/^TYPE=dbltest:1\.1\.0\+1\.36\.1$/m);
    rmSync(join(sb.recipeDir, 'compose.ccci.yml'));
  });

  it('a clean chaos deploy of another commit: chaos-version without +U; TYPE= untouched off a release', async () => {
    await sb.git(['checkout', '--quiet', 'main']);
    const head = await shortHead();
    expectOk(await sb.abra(['app', 'deploy', domain, '-C', '-f', '-n']));
    const labels = await serviceLabels(`${stack}_app`);
    expect(labels[label('chaos-version')]).toBe(head);
    expect(sb.readEnv(domain)).toMatch(/^TYPE=dbltest:1\.1\.0\+1\.36\.1$/m);
    const ls = JSON.parse((await sb.abra(['app', 'ls', '-S', '-m'])).stdout) as Record<string, { apps: Array<Record<string, string>> }>;
    expect(ls.default?.apps.find((a) => a.domain === domain)).toMatchObject({ status: 'deployed', chaos: 'true', chaosVersion: head });
  });

  it('undeploy removes services and containers, keeps volumes, secrets and the .env', async () => {
    const volumesBefore = (await leftovers(stack)).volumes ?? [];
    expect(volumesBefore.sort()).toEqual([`${stack}_cache`, `${stack}_data`, `${stack}_www`]);
    expectOk(await sb.abra(['app', 'undeploy', domain, '-n']));
    const left = await leftovers(stack);
    expect(left.services).toEqual([]);
    expect(left.containers).toEqual([]);
    expect(left.volumes?.sort()).toEqual(volumesBefore.sort());
    expect(left.secrets?.sort()).toEqual([`${stack}_api_token_v1`, `${stack}_db_password_v1`]);
    // configs belong to the stack: `docker stack rm` removes them (documented in docs/abra-double.md)
    expect(left.configs).toEqual([]);
    expect(existsSync(sb.envPath(domain))).toBe(true);
    expectFatal(await sb.abra(['app', 'undeploy', domain, '-n']), `${domain} is not deployed`);
  });

  it('volume ls -m lists the stack volumes; volume rm <vol> -f removes one', async () => {
    const r = await sb.abra(['app', 'volume', 'ls', domain, '-m', '-n']);
    expectOk(r);
    expect(JSON.parse(r.stdout)).toEqual([
      { name: `${stack}_cache`, driver: 'local' },
      { name: `${stack}_data`, driver: 'local' },
      { name: `${stack}_www`, driver: 'local' },
    ]);
    expectFatal(await sb.abra(['app', 'volume', 'rm', domain, 'cache']), '--force');
    expectOk(await sb.abra(['app', 'volume', 'rm', domain, 'cache', '-f', '-n']));
    expect(((await leftovers(stack)).volumes ?? []).sort()).toEqual([`${stack}_data`, `${stack}_www`]);
    expectFatal(await sb.abra(['app', 'volume', 'rm', domain, 'cache', '-f', '-n']), 'does not exist');
  });

  it('rm refuses while deployed; after undeploy removes volumes, secrets, configs and the .env', async () => {
    // redeploy to have configs again, then check the refusal
    expectOk(await sb.abra(['app', 'deploy', domain, '-C', '-c', '-n']));
    expect((await leftovers(stack)).configs).toEqual([`${stack}_entrypoint_v1`]);
    expectFatal(await sb.abra(['app', 'rm', domain, '-f', '-n']), 'still deployed');
    expectOk(await sb.abra(['app', 'undeploy', domain, '-n']));
    // a config left behind (e.g. by an older abra): rm must take it too
    await docker(['config', 'create', `${stack}_entrypoint_v0`, '-'], { input: 'old' });
    expectOk(await sb.abra(['app', 'rm', domain, '-f', '-n']));
    const left = await leftovers(stack);
    expect(left).toEqual({ services: [], containers: [], volumes: [], secrets: [], configs: [], networks: [] });
    expect(await docker(['volume', 'ls', '-q', '--filter', `label=${NS}=${stack}`])).toBe('');
    expect(existsSync(sb.envPath(domain))).toBe(false);
    expectFatal(await sb.abra(['app', 'rm', domain, '-f', '-n']), `cannot find app with name ${domain}`);
  });
});

describe('convergence failures', () => {
  it('a never-healthy service: FATA "deploy timed out" naming it, within the timeout label (seconds)', async () => {
    await sb.git(['checkout', '--quiet', 'main']);
    const { domain, stack } = await newApp();
    // coop-cloud.${STACK_NAME}.timeout=${TIMEOUT:-120} in the recipe → TIMEOUT=5 in the .env
    sb.editEnv(domain, { COMPOSE_FILE: '"compose.yml:compose.unhealthy.yml"', TIMEOUT: '5' });
    const started = Date.now();
    const r = await sb.abra(['app', 'deploy', domain, '-n']);
    const elapsed = Date.now() - started;
    expectFatal(r, 'deploy timed out');
    expect(r.stderr).toContain(`${stack}_app`);
    expect(elapsed).toBeLessThan(45_000); // far below the 50 s default and the 120 s recipe default
    // a failed deploy does not pin TYPE=
    expect(sb.readEnv(domain)).toMatch(/^TYPE=dbltest$/m);
    await purgeStack(stack);
  });

  it('a crash-looping service: FATA "deploy failed" with the task error, before the timeout', async () => {
    await sb.git(['checkout', '--quiet', 'main']);
    const { domain, stack } = await newApp();
    sb.editEnv(domain, { COMPOSE_FILE: '"compose.yml:compose.crashloop.yml"' });
    const started = Date.now();
    const r = await sb.abra(['app', 'deploy', domain, '-n']);
    expectFatal(r, 'deploy failed');
    expect(r.stderr).toContain(`${stack}_app`);
    expect(r.stderr).toMatch(/non-zero exit \(3\)/);
    expect(Date.now() - started).toBeLessThan(100_000);
    await purgeStack(stack);
  });

  it('-c skips the wait: the same broken app deploys "successfully"', async () => {
    await sb.git(['checkout', '--quiet', 'main']);
    const { domain, stack } = await newApp();
    sb.editEnv(domain, { COMPOSE_FILE: '"compose.yml:compose.crashloop.yml"' });
    expectOk(await sb.abra(['app', 'deploy', domain, '-c', '-n']));
    expect(await serviceNames(stack)).toContain(`${stack}_app`);
    await purgeStack(stack);
  });
});

describe('fault injection in deploy/undeploy', () => {
  let state: string;
  beforeAll(() => {
    state = mkdtempSync(join(tmpdir(), 'abd-state-'));
  });
  afterAll(() => rmSync(state, { recursive: true, force: true }));

  it('crash: deploy dies by SIGKILL after `docker stack deploy`, before converging; TYPE= not pinned', async () => {
    await sb.git(['checkout', '--quiet', 'main']);
    const { domain, stack } = await newApp();
    const env = { ABRA_DOUBLE_FAULTS: 'app.deploy:1:crash,app.undeploy:1:hang,app.undeploy:2:fail', ABRA_DOUBLE_STATE: state };
    const r = await sb.abra(['app', 'deploy', domain, '-n'], { env });
    expect(r.signal).toBe('SIGKILL');
    expect(await serviceNames(stack)).toEqual([`${stack}_app`, `${stack}_worker`]);
    expect(sb.readEnv(domain)).toMatch(/^TYPE=dbltest$/m);

    // hang: undeploy never returns; the stack is still there
    const h = await sb.abra(['app', 'undeploy', domain, '-n'], { env, timeoutMs: 3000 });
    expect(h.timedOut).toBe(true);
    expect(await serviceNames(stack)).toHaveLength(2);

    // fail: FATA before doing anything
    expectFatal(await sb.abra(['app', 'undeploy', domain, '-n'], { env }), 'injected fault');
    expect(await serviceNames(stack)).toHaveLength(2);

    // third undeploy: no fault
    expectOk(await sb.abra(['app', 'undeploy', domain, '-n'], { env }));
    expect(await serviceNames(stack)).toEqual([]);
    await purgeStack(stack);
  });
});
