import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { cli, ensureSwarm, makeTestEnv, nothingOfRun, recipeRepo, runDirOf, runLeftovers, type TestEnv } from '../support/harness.js';

/**
 * The compose policy on the real swarm, through the real CLI: a pull request whose compose file
 * mounts the Docker socket and the host's root, adds every capability and joins the host's
 * network is refused before anything deploys; the operator's allowance of exactly the socket
 * lets that one item through, and the run log says who allowed it.
 */

interface JsonResult {
  name: string;
  result: string;
  reason: string;
  domains: string[];
  tiers: Record<string, { result: string; reason: string } | undefined>;
}

describe('the compose policy on the real swarm', () => {
  let t: TestEnv;
  let plainpage: RecipeRepo;
  let repo: string;

  const git = (args: string[]) =>
    execa('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { env: { GIT_CONFIG_GLOBAL: '/dev/null' } });

  /** A branch of plainpage whose app service gets `extra` merged in. */
  async function branch(name: string, extra: Record<string, unknown>, top: Record<string, unknown> = {}) {
    await git(['checkout', '-q', '-B', name, 'origin/main']);
    const file = join(repo, 'compose.yml');
    const doc = parse(readFileSync(file, 'utf8')) as { services: { app: Record<string, unknown> } } & Record<string, unknown>;
    Object.assign(doc.services.app, extra);
    Object.assign(doc, top);
    writeFileSync(file, stringify(doc));
    await git(['commit', '-qam', `test: ${name}`]);
  }

  async function run(ref: string): Promise<JsonResult> {
    const r = await cli(t, ['run', 'plainpage', '--repo', repo, '--ref', ref, '--tiers', 'install', '--json']);
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as JsonResult;
  }

  const log = (json: JsonResult) => readFileSync(join(runDirOf(t, json.name), 'log.txt'), 'utf8');

  beforeAll(async () => {
    await ensureSwarm();
    plainpage = await recipeRepo('plainpage');
    t = await makeTestEnv({ portRange: [21700, 21749], deploySeconds: 40, httpSeconds: 20 });
    repo = join(t.dir, 'plainpage-hostile');
    await execa('git', ['clone', '-q', plainpage.path, repo]);
    await branch(
      'hostile',
      {
        volumes: ['/var/run/docker.sock:/var/run/docker.sock', '/:/host'],
        cap_add: ['ALL'],
        privileged: true,
        networks: ['proxy', 'hostnet'],
      },
      { networks: { proxy: { external: true }, hostnet: { external: true, name: 'host' } } },
    );
    await branch('socket-only', { volumes: ['/var/run/docker.sock:/var/run/docker.sock:ro'] });
  });

  afterAll(() => t?.cleanup());

  it('refuses a hostile compose file with the reason naming each service and key, and deploys nothing', async () => {
    const json = await run('hostile');
    expect(json.result).toBe('error');
    for (const item of ['app: volumes /var/run/docker.sock (a bind mount', 'app: volumes /', 'app: cap_add ALL', 'app: privileged', 'app: networks hostnet']) {
      expect(json.reason).toContain(item);
    }
    expect(json.reason).toMatch(/^compose policy: refused/);
    expect(json.tiers.install?.result).not.toBe('pass');
    expect(log(json), log(json)).toContain('app: cap_add ALL');
    // Nothing reached docker: no service was ever created, and nothing is left.
    expect(log(json)).not.toMatch(/abra app deploy/);
    expect(await runLeftovers(t, json.name, json.domains)).toEqual(nothingOfRun(json.domains));
  });

  it('lets exactly the item the operator allowed through, saying who allowed it; the same branch is refused without it', async () => {
    const refused = await run('socket-only');
    expect(refused.result).toBe('error');
    expect(refused.reason).toContain('app: volumes /var/run/docker.sock');

    const config = parse(readFileSync(t.configFile, 'utf8')) as Record<string, unknown>;
    config.composePolicy = { allow: { plainpage: [{ service: 'app', key: 'volumes', value: '/var/run/docker.sock', by: 'ops@example.org', reason: 'test' }] } };
    writeFileSync(t.configFile, stringify(config));
    const allowed = await run('socket-only');
    expect(allowed.result, allowed.reason).toBe('passed');
    expect(log(allowed)).toContain("compose policy: app: volumes /var/run/docker.sock allowed by ops@example.org in cc-ci's config (test)");
    expect(await runLeftovers(t, allowed.name, allowed.domains)).toEqual(nothingOfRun(allowed.domains));

    // The allowance is for that item only: the hostile branch still names everything else.
    const still = await run('hostile');
    expect(still.result).toBe('error');
    expect(still.reason).not.toContain('app: volumes /var/run/docker.sock');
    expect(still.reason).toContain('app: cap_add ALL');
  });
});
