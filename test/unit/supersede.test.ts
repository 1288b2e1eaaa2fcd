import { describe, expect, it } from 'vitest';
import { newerThan, supersedeKey } from '../../reconcilers/supersede.js';
import type { RunRecord } from '../../state/types.js';

function run(name: string, createdAt: number, forge?: { pr: number; comment?: number }, lane = 'cold'): RunRecord {
  const spec = {
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: {
      recipe: 'webnotes',
      source: { repo: '/r', ref: 'main' },
      lane,
      ...(forge ? { trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'webnotes', ...forge } } } : {}),
    },
  };
  return {
    name,
    specJson: JSON.stringify(spec),
    specHash: '',
    specPath: null,
    recipe: 'webnotes',
    lane,
    phase: 'Pending',
    result: null,
    reason: null,
    step: null,
    waitingReason: null,
    commitSha: null,
    attempt: 1,
    retries: [],
    retryPending: false,
    teardownStartedAt: null,
    cancelRequested: false,
    cancelReason: null,
    owner: null,
    customization: null,
    understanding: null,
    laneNote: null,
    teardownProblem: null,
    createdAt,
    startedAt: null,
    finishedAt: null,
    updatedAt: createdAt,
  };
}

describe('supersede', () => {
  it('groups runs by recipe, pull request and lane; runs without a forge trigger are never grouped', () => {
    expect(supersedeKey(run('a', 1, { pr: 7, comment: 1 }))).toBe(supersedeKey(run('b', 2, { pr: 7, comment: 9 })));
    expect(supersedeKey(run('a', 1, { pr: 7 }))).not.toBe(supersedeKey(run('b', 1, { pr: 8 })));
    expect(supersedeKey(run('a', 1, { pr: 7 }, 'cold'))).not.toBe(supersedeKey(run('b', 1, { pr: 7 }, 'quick')));
    expect(supersedeKey(run('a', 1))).toBeNull();
  });

  it('orders by the triggering comment first: a resync that accepts the newer comment first still keeps it', () => {
    // After downtime pr7-b (comment 20) was read from disk, and so accepted, before pr7-a (comment 10).
    const b = run('pr7-b', 1000, { pr: 7, comment: 20 });
    const a = run('pr7-a', 2000, { pr: 7, comment: 10 });
    expect(newerThan(b, a)).toBe(true);
    expect(newerThan(a, b)).toBe(false);
  });

  it('falls back to the order of acceptance, then the name, when comments do not tell', () => {
    const early = run('x', 1000, { pr: 7 });
    const late = run('y', 2000, { pr: 7 });
    expect(newerThan(late, early)).toBe(true);
    expect(newerThan(early, late)).toBe(false);
    const sameComment = [run('p', 1000, { pr: 7, comment: 5 }), run('q', 3000, { pr: 7, comment: 5 })] as const;
    expect(newerThan(sameComment[1], sameComment[0])).toBe(true);
    expect(newerThan(run('n2', 5, { pr: 7 }), run('n1', 5, { pr: 7 }))).toBe(true);
  });
});
