import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../state/store.js';
import { TokenStore } from '../../state/token-store.js';
import { cli, makeTestEnv, type TestEnv } from '../support/harness.js';

/**
 * `cc-ci token`, `cc-ci rerun` and `cc-ci cancel` as an operator types them, against a state
 * directory no controller serves (no swarm needed: nothing here deploys).
 */

let t: TestEnv;

beforeAll(async () => {
  t = await makeTestEnv({ portRange: [21900, 21909] });
});
afterAll(() => t?.cleanup());

function withStore<T>(f: (s: Store) => T): T {
  mkdirSync(t.stateDir, { recursive: true });
  const s = new Store(join(t.stateDir, 'cc-ci.db'));
  try {
    return f(s);
  } finally {
    s.close();
  }
}

function addRun(name: string, phase: 'Pending' | 'Done', tiers: [string, 'pass' | 'fail' | 'skipped'][] = []): void {
  withStore((s) => {
    const spec = {
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name },
      spec: { recipe: 'webnotes', source: { repo: '/srv/recipes/webnotes', ref: 'main' }, lane: 'cold', tiers: tiers.map(([x]) => x) },
    };
    s.insertRun({ name, specJson: JSON.stringify(spec), specHash: 'h', specPath: null, recipe: 'webnotes', lane: 'cold' });
    s.planTiers(
      name,
      tiers.map(([x]) => x as 'install'),
    );
    for (const [x, r] of tiers) {
      s.startTier(name, x as 'install');
      s.finishTier(name, x as 'install', r, null);
    }
    if (phase === 'Done') s.updateRun(name, { phase, result: 'failed', reason: 'upgrade failed', commitSha: 'b'.repeat(40) });
  });
}

describe('the actions from the CLI', () => {
  it('token create prints a token once and keeps its hash; list shows it; revoke removes it', async () => {
    const made = await cli(t, ['token', 'create', 'deploy-bot']);
    expect(made.exitCode, made.stderr).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^ccci_[A-Za-z0-9_-]{43}$/);
    expect(made.stderr).toMatch(/shown only this once/);
    expect(withStore((s) => new TokenStore(s).nameOf(token))).toBe('deploy-bot');
    expect(readFileSync(join(t.stateDir, 'cc-ci.db')).includes(Buffer.from(token))).toBe(false);
    expect((await cli(t, ['token', 'create', 'deploy-bot'])).stderr).toMatch(/a token named deploy-bot exists/);
    expect((await cli(t, ['token', 'list'])).stdout).toMatch(/^deploy-bot\s+\d+s\s+\d+s$/m);
    expect((await cli(t, ['token', 'revoke', 'deploy-bot'])).exitCode).toBe(0);
    expect(withStore((s) => new TokenStore(s).nameOf(token))).toBeNull();
    expect((await cli(t, ['token', 'revoke', 'deploy-bot'])).stderr).toMatch(/no token named deploy-bot/);
  });

  it('rerun --failed writes the spec of a run from the failed tier at the same commit; an unknown run is an error', async () => {
    addRun('cli-up', 'Done', [
      ['install', 'pass'],
      ['upgrade', 'fail'],
      ['backup', 'skipped'],
    ]);
    const r = await cli(t, ['rerun', 'cli-up', '--failed']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^run cli-up-r1 reruns upgrade, backup from upgrade, the first tier that did not pass \(install passed in cli-up/m);
    const file = join(t.stateDir, 'specs', 'cli-up-r1.yaml');
    expect(existsSync(file)).toBe(true);
    const spec = parse(readFileSync(file, 'utf8')) as { spec: { tiers: string[]; source: { ref: string }; rerun: { by: string } } };
    expect(spec.spec.tiers).toEqual(['upgrade', 'backup']);
    expect(spec.spec.source.ref).toBe('b'.repeat(40));
    expect(spec.spec.rerun.by).toMatch(/\(cc-ci CLI\)$/);
    const unknown = await cli(t, ['rerun', 'no-such-run']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/no run named no-such-run/);
  });

  it('cancel of a queued run with no controller serving: carried out here, recorded with who, reported cancelled', async () => {
    addRun('cli-q', 'Pending', []);
    const r = await cli(t, ['cancel', 'cli-q']);
    expect(r.exitCode, r.stderr).toBe(0);
    const run = withStore((s) => s.getRun('cli-q'));
    expect(run).toMatchObject({ phase: 'Done', result: 'cancelled' });
    expect(run?.reason).toMatch(/cancelled by .* \(cc-ci CLI\)/);
    const again = await cli(t, ['cancel', 'cli-q']);
    expect(again.exitCode).toBe(2);
    expect(again.stdout).toMatch(/has finished \(cancelled\): there is nothing to cancel/);
  }, 60_000);
});
