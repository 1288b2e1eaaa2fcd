import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../controller/model/log.js';
import type { StatePaths } from '../../controller/model/paths.js';
import { watchDir } from '../../controller/runtime/dir-watch.js';
import { SpecSync } from '../../controller/runtime/spec-sync.js';
import { Store } from '../../state/store.js';
import { removeTempState, tempState } from '../support/history.js';

/**
 * The spec directory's watch (one inotify watch, not one per file) and the resync that reads only
 * what may have changed: a file that appears, changes or goes is reported once it is still; a
 * resync re-reads a file only when its fingerprint changed, and while the directory is unchanged
 * looks only at the files whose content still matters (invalid ones, unfinished runs').
 */

let dir: string;
let paths: StatePaths;
let store: Store;
let calls: string[];
let sync: SpecSync;

beforeEach(() => {
  ({ dir, paths, store } = tempState('ccci-spec-watch-'));
  calls = [];
  sync = new SpecSync(store, paths.specs, createLogger('silent'), {
    enqueue: () => undefined,
    accepted: (n) => calls.push(`accepted ${n}`),
    cancel: (n, why) => calls.push(`cancel ${n}: ${why}`),
  });
});

afterEach(() => removeTempState({ dir, store }));

const spec = (name: string, ref = 'main') => `apiVersion: cc-ci/v1
kind: Run
metadata: { name: ${name} }
spec:
  recipe: webnotes
  source: { repo: https://git.example.org/recipes/webnotes.git, ref: ${ref} }
`;
const file = (name: string) => join(paths.specs, `${name}.yaml`);

describe('the spec directory', () => {
  it('is watched with one watch: a file added, then removed, reaches spec sync once it is still', async () => {
    const w = watchDir(paths.specs, { settleMs: 50, changed: (p) => sync.syncFile(p), overflow: () => sync.resync(), error: (e) => calls.push(String(e)) });
    try {
      writeFileSync(file('watched'), spec('watched'));
      await vi.waitFor(() => expect(calls).toEqual(['accepted watched']), { timeout: 5_000 });
      unlinkSync(file('watched'));
      await vi.waitFor(() => expect(calls).toEqual(['accepted watched', 'cancel watched: spec file watched.yaml was deleted']), { timeout: 5_000 });
    } finally {
      w.close();
    }
  });

  it('is resynced by what may have changed: a finished run’s file only when the directory changed, an invalid one whenever it did', async () => {
    writeFileSync(file('good'), spec('good'));
    writeFileSync(file('bad'), 'not: [a spec');
    sync.resync();
    expect(calls).toEqual(['accepted good']);
    expect(store.getSpecFile(file('bad'))).toMatchObject({ status: 'invalid' });
    store.updateRun('good', { phase: 'Done', result: 'passed' });
    // The directory has been still long enough to be trusted as unchanged.
    await new Promise((r) => setTimeout(r, 2_200));
    sync.resync();
    // A finished run's file is not read while the directory is unchanged (an edit in place is the watcher's to see).
    writeFileSync(file('good'), 'garbage');
    sync.resync();
    expect(store.getSpecFile(file('good'))).toMatchObject({ status: 'valid' });
    // Fixed in place (the directory itself does not change): picked up by the next resync.
    writeFileSync(file('bad'), spec('bad'));
    sync.resync();
    expect(calls).toEqual(['accepted good', 'accepted bad']);
    // A new file changes the directory: a full look finds it.
    writeFileSync(file('new'), spec('new'));
    sync.resync();
    expect(calls).toEqual(['accepted good', 'accepted bad', 'accepted new']);
    // …and compares every fingerprint: the edited file is read, and refused.
    expect(store.getSpecFile(file('good'))).toMatchObject({ status: 'invalid' });
    // An unfinished run's file edited in place is read by the next resync, and refused, not applied.
    await new Promise((r) => setTimeout(r, 2_200));
    sync.resync();
    writeFileSync(file('new'), spec('new', 'other-ref'));
    sync.resync();
    expect(store.getSpecFile(file('new'))).toMatchObject({ status: 'invalid', error: expect.stringMatching(/accepted with a different spec/) });
  });
});
