import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../state/store.js';
import { testRunContext } from '../support/run-context.js';

/** A run's log is bounded (docs/security.md): program output past a size is dropped, saying so
 *  once; a long line is cut; cc-ci's own lines are always kept — also after a restart. */

const dir = mkdtempSync(join(tmpdir(), 'ccci-logbounds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const context = (store: Store, name: string) => testRunContext(store, join(dir, 'state'), name, { log: { runOutputBytes: 64 * 1024, lineChars: 256 } });

describe("a run's log", () => {
  it('keeps program output up to its bound, says so once, and keeps its own lines', () => {
    const store = new Store(join(dir, 'a.db'));
    const ctx = context(store, 'loud');
    const line = 'y'.repeat(200);
    for (let i = 0; i < 1000; i++) ctx.log('out', line); // 200 KB of output
    ctx.log('info', 'verdict: passed');
    const events = store.eventsSince('loud', 0, 100_000);
    const out = events.filter((e) => e.kind === 'out');
    expect(out.length).toBeGreaterThan(300);
    expect(store.outputBytes('loud')).toBeLessThan(64 * 1024);
    expect(events.filter((e) => /program output past 64 KiB is not kept/.test(e.text))).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ kind: 'info', text: 'verdict: passed' });
    // log.txt is bounded the same way.
    expect(readFileSync(join(ctx.dir, 'log.txt'), 'utf8').length).toBeLessThan(100 * 1024);
    // A restarted controller counts what is there, and keeps dropping.
    const again = context(store, 'loud');
    again.log('err', 'more output');
    expect(store.eventsSince('loud', 0, 100_000).some((e) => e.text === 'more output')).toBe(false);
    store.close();
  });

  it('cuts a long line, saying where', () => {
    const store = new Store(join(dir, 'b.db'));
    const ctx = context(store, 'wide');
    ctx.log('err', 'z'.repeat(10_000));
    ctx.log('info', 'i'.repeat(1000));
    const [a, b] = store.eventsSince('wide', 0);
    expect(a!.text).toBe(`${'z'.repeat(256)} … (line cut at 256 characters)`);
    expect(b!.text).toBe(`${'i'.repeat(256)} … (line cut at 256 characters)`);
    store.close();
  });
});
