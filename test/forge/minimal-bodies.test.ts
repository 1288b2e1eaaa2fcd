import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ForgeService } from '../../controller/forge/service.js';
import type { Poller } from '../../controller/forge/poller.js';
import { configSchema } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { ensureStateDirs, statePaths, type StatePaths } from '../../controller/model/paths.js';
import type { ForgeReporter } from '../../reconcilers/report.js';
import { Store } from '../../state/store.js';
import { startForgeDouble, type DoubleIssue, type ForgeDouble } from '../support/forge-double/index.js';

/**
 * Tried against a Gitea-compatible server that answers each write with a minimal body (a comment
 * as `{"id": N}`, a reaction and a status with nothing), cc-ci once took every success for a
 * failure: 40 reactions, the same reply three times. Here the forge service is wired as `serve`
 * wires it (poll mode: the poller, the intake, the reporter), and each write must happen once.
 */

const REPO = 'recipes/webnotes';

let dir: string;
let paths: StatePaths;
let store: Store;
let double: ForgeDouble;
let pr: DoubleIssue;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-minimal-'));
  paths = statePaths(dir);
  ensureStateDirs(paths);
  store = new Store(paths.db);
  double = await startForgeDouble({ botLogin: 'cc-ci', minimalWriteBodies: true });
  for (const login of ['alice', 'bob']) double.addUser({ login });
  double.addRepo({ owner: 'recipes', name: 'webnotes', permissions: { alice: 'write', bob: 'read' } });
  pr = double.addPullRequest({ repo: REPO, author: 'bob' });
});

afterEach(async () => {
  expect(double.violations).toEqual([]);
  await double.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function service(): { poller: Poller; reporter: ForgeReporter; forge: ForgeService } {
  const config = configSchema.parse({
    repos: [REPO],
    forge: { url: double.url, tokenFile: '/unused', mode: 'poll', timeoutSeconds: 2, intakeRetry: { firstSeconds: 1, maxSeconds: 1, horizonSeconds: 5 } },
  });
  const forge = ForgeService.fromConfig({
    config,
    secrets: { token: double.botToken, webhookSecret: null },
    paths,
    store,
    logger: createLogger('silent'),
    runUrl: (name) => `https://ci.example.org/runs/${name}`,
  });
  if (!forge) throw new Error('no forge service');
  const runnables = forge.runnables();
  return { forge, reporter: runnables[1] as ForgeReporter, poller: runnables.at(-1) as Poller };
}

const count = (operation: Parameters<ForgeDouble['requestsFor']>[0]): number => double.requestsFor(operation).filter((r) => r.status < 300).length;

describe('a forge that answers writes with minimal bodies', () => {
  it('gets exactly one reaction, one reply and one report comment, however often cc-ci looks again', async () => {
    const { poller, reporter, forge } = service();
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    const refused = double.addComment({ repo: REPO, index: pr.index, author: 'bob', body: '!testme' }).comment;
    await poller.pollOnce();
    await forge.intake.drain();

    const specs = readdirSync(paths.specs).filter((f) => !f.startsWith('.'));
    expect(specs).toEqual([`webnotes-pr${pr.index}-c${trigger.id}.yaml`]);
    const name = specs[0]?.replace(/\.yaml$/, '') ?? '';
    const spec = parse(readFileSync(join(paths.specs, `${name}.yaml`), 'utf8')) as unknown;
    store.insertRun({ name, specJson: JSON.stringify(spec), specHash: name, specPath: null, recipe: 'webnotes', lane: 'cold' });

    await reporter.sync(name);
    store.updateRun(name, { phase: 'Testing', startedAt: Date.now() - 5_000 });
    await reporter.sync(name);
    store.planTiers(name, ['install']);
    store.startTier(name, 'install');
    store.finishTier(name, 'install', 'pass', 'serving');
    store.updateRun(name, { phase: 'Reporting', result: 'passed', reason: 'passed: install', teardownStartedAt: Date.now() });
    const run = store.getRun(name);
    if (!run) throw new Error('no run');
    await reporter.reportFinal(run);

    // Everything again, as a restart and the periodic passes would.
    await poller.pollOnce();
    await forge.intake.retryUnfinished();
    await forge.intake.drain();
    reporter.resync();
    await reporter.sync(name);

    expect(double.comment(trigger.id)?.reactions.map((r) => `${r.user}:${r.content}`)).toEqual(['cc-ci:eyes']);
    expect(count('issuePostCommentReaction')).toBe(1);
    expect(double.comment(refused.id)?.reactions).toEqual([]);
    const ours = double.commentsOn(REPO, pr.index).filter((c) => c.author === 'cc-ci');
    expect(ours.map((c) => c.body.split('\n')[1]?.slice(0, 40))).toEqual([expect.stringContaining('@bob thank you for asking'), expect.any(String)]);
    expect(ours[1]?.body).toContain('✅ **Passed**');
    expect(count('issueCreateComment')).toBe(2);
    expect(double.statusesFor(REPO, pr.pull?.headSha ?? '').map((s) => `${s.state} ${s.description}`)).toEqual([
      'pending Queued',
      'pending Running',
      expect.stringMatching(/^success /),
    ]);
  });
});
