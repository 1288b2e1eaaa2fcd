import { describe, expect, it } from 'vitest';
import { parseTrigger } from '../../controller/forge/trigger.js';
import { renderComment, renderStatus, reportMarker, statusContext, type ReportView } from '../../controller/clients/forge/report-text.js';

/** What cc-ci says on a pull request, from a view of the run. */

const base: ReportView = {
  run: 'webnotes-pr7-c1234',
  recipe: 'webnotes',
  lane: 'cold',
  laneNote: null,
  sha: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
  by: 'alice',
  stage: 'queued',
  queuePosition: 2,
  waiting: 'capacity full (1/1 runs active)',
  result: null,
  reason: null,
  tiers: [],
  testedMs: null,
  runUrl: 'https://ci.example.org/runs/webnotes-pr7-c1234',
};

const verdict = (over: Partial<ReportView>): ReportView => ({
  ...base,
  stage: 'verdict',
  queuePosition: null,
  waiting: null,
  testedMs: 65_400,
  ...over,
});

describe('the PR comment', () => {
  it('queued: position and why it waits, under a hidden marker', () => {
    expect(renderComment(base)).toBe(
      [
        '<!-- cc-ci:report run=webnotes-pr7-c1234 -->',
        '**cc-ci** · `webnotes` at `4b825dc642` · cold lane · requested by alice',
        '',
        '⏳ **Queued**: position 2 in the queue (capacity full (1/1 runs active)).',
        '',
        'Run page: https://ci.example.org/runs/webnotes-pr7-c1234',
      ].join('\n'),
    );
  });

  it('pings nobody a failing tier’s output mentions', () => {
    const text = renderComment(
      verdict({
        result: 'failed',
        reason: 'install failed: ask @bob',
        tiers: [{ tier: 'install', result: 'fail', reason: 'owner (@carol) says: see @dave.e', durationMs: 1_000 }],
      }),
    );
    expect(text).not.toMatch(/@(bob|carol|dave)/);
    expect(text).toContain('ask @\u200Bbob');
    expect(text).toContain('owner (@\u200Bcarol) says: see @\u200Bdave.e');
    // An e-mail address is no mention and reads the same either way.
    expect(renderComment(verdict({ result: 'error', reason: 'mail root@example.org' }))).toContain('root@\u200Bexample.org');
  });

  it('a rerun of failed tiers says of which run and which tiers, under the header', () => {
    const text = renderComment(verdict({ result: 'passed', rerun: { of: 'webnotes-pr7-c1200', tiers: ['backup', 'restore'] } }));
    expect(text.split('\n').slice(1, 4)).toEqual([
      '**cc-ci** · `webnotes` at `4b825dc642` · cold lane · requested by alice',
      '',
      '🔁 Rerun of `webnotes-pr7-c1200` at the same commit: only backup, restore, from the first tier that did not pass there.',
    ]);
    expect(renderComment(verdict({ result: 'passed' }))).not.toContain('Rerun of');
  });

  it('running: a link to the live page', () => {
    expect(renderComment({ ...base, stage: 'running', queuePosition: null, waiting: null })).toContain(
      '🏃 **Running**: follow the live log at https://ci.example.org/runs/webnotes-pr7-c1234',
    );
  });

  it('passed: tier table with durations, the link, and how to rerun', () => {
    const text = renderComment(
      verdict({
        result: 'passed',
        reason: 'passed: install; n/a: upgrade',
        tiers: [
          { tier: 'install', result: 'pass', reason: 'serving on 1 app', durationMs: 12_300 },
          { tier: 'upgrade', result: 'n/a', reason: 'cc-ci does not run the upgrade tier yet', durationMs: null },
        ],
      }),
    );
    expect(text).toBe(
      [
        '<!-- cc-ci:report run=webnotes-pr7-c1234 -->',
        '**cc-ci** · `webnotes` at `4b825dc642` · cold lane · requested by alice',
        '',
        '✅ **Passed** in 1m5s',
        '',
        '| tier | result | duration | details |',
        '| --- | --- | --- | --- |',
        '| install | ✅ pass | 12.3s | serving on 1 app |',
        '| upgrade | ➖ n/a | – | cc-ci does not run the upgrade tier yet |',
        '',
        'Full log and evidence: https://ci.example.org/runs/webnotes-pr7-c1234',
        '',
        'To run again, comment `!testme` (or `!testme --quick` for the quick lane; `!testme --failed` for only the tiers that did not pass).',
      ].join('\n'),
    );
  });

  it('failed: each failing tier’s reason in full, table cells kept on one line', () => {
    const reason = 'service web is 0/1 | not converged\nlast log: `boom`';
    const text = renderComment(
      verdict({
        result: 'failed',
        reason: `install failed: ${reason}`,
        tiers: [
          { tier: 'install', result: 'fail', reason, durationMs: 30_000 },
          { tier: 'upgrade', result: 'skipped', reason: 'not run: install failed', durationMs: null },
        ],
      }),
    );
    expect(text).toContain('❌ **Failed** in 1m5s: install failed: service web is 0/1 \\| not converged last log: `boom`');
    expect(text).toContain('| install | ❌ fail | 30.0s | service web is 0/1 \\| not converged last log: `boom` |');
    expect(text).toContain('| upgrade | ⏭️ skipped | – | not run: install failed |');
    expect(text).toContain(`**Why install failed:**\n\`\`\`text\n${reason}\n\`\`\``);
  });

  it('error and cancelled say what happened without claiming a verdict', () => {
    expect(renderComment(verdict({ result: 'error', reason: 'infrastructure: docker is down' }))).toContain(
      '⚠️ **Error** in 1m5s: infrastructure: docker is down — a problem running the test, not a verdict on the recipe',
    );
    expect(renderComment(verdict({ result: 'cancelled', reason: 'superseded by webnotes-pr7-c1300', testedMs: null }))).toContain(
      '⏹️ **Cancelled**: superseded by webnotes-pr7-c1300',
    );
  });

  it('a quick-lane report says it is lower-confidence', () => {
    const text = renderComment(verdict({ lane: 'quick', result: 'passed', reason: 'passed' }));
    expect(text).toContain('quick lane');
    expect(text).toContain('lower-confidence result that does not gate a merge');
  });

  it('a quick run that fell back to cold says so, and why, instead of claiming lower confidence', () => {
    const why = 'no healthy warm app — webnotes has no Warm object — so this run climbs the cold ladder on fresh apps';
    const v = verdict({ lane: 'quick', laneNote: why, result: 'passed', reason: 'passed' });
    const text = renderComment(v);
    expect(text).toContain(`**Quick lane fell back to cold**: ${why}. This result has the cold lane's confidence.`);
    expect(text).not.toContain('lower-confidence');
    expect(renderStatus(v)).toEqual({ state: 'success', description: 'Passed (quick lane fell back to cold)' });
  });

  it('never reads as a command to cc-ci itself', () => {
    for (const v of [
      base,
      verdict({ result: 'passed' }),
      verdict({ lane: 'quick', result: 'failed', tiers: [{ tier: 'install', result: 'fail', reason: '!testme', durationMs: 1 }] }),
    ]) {
      expect(parseTrigger(renderComment(v))).toEqual({ kind: 'none' });
    }
  });

  it('the marker names exactly one run', () => {
    expect(reportMarker('a-pr1-c5')).not.toBe(reportMarker('a-pr1-c50'));
    expect(reportMarker('a-pr1-c50').includes(reportMarker('a-pr1-c5'))).toBe(false);
  });
});

describe('the commit status', () => {
  it('pending while queued or running, then success, failure or error', () => {
    expect(statusContext('cold')).toBe('cc-ci/cold');
    expect(statusContext('quick')).toBe('cc-ci/quick');
    expect(renderStatus(base)).toEqual({ state: 'pending', description: 'Queued' });
    expect(renderStatus({ ...base, stage: 'running' })).toEqual({ state: 'pending', description: 'Running' });
    expect(renderStatus(verdict({ result: 'passed' }))).toEqual({ state: 'success', description: 'Passed' });
    expect(renderStatus(verdict({ result: 'passed', lane: 'quick' }))).toEqual({ state: 'success', description: 'Passed (quick lane: lower confidence)' });
    expect(renderStatus(verdict({ result: 'failed', tiers: [{ tier: 'install', result: 'fail', reason: 'x', durationMs: 1 }] }))).toEqual({
      state: 'failure',
      description: 'Failed: install',
    });
    expect(renderStatus(verdict({ result: 'error', reason: 'infrastructure: x' }))).toEqual({ state: 'error', description: 'Error: infrastructure: x' });
    expect(renderStatus(verdict({ result: 'cancelled', reason: 'superseded by y' }))).toEqual({ state: 'error', description: 'Cancelled: superseded by y' });
    expect(renderStatus(verdict({ result: 'error', reason: 'x'.repeat(500) })).description.length).toBeLessThanOrEqual(140);
  });
});
