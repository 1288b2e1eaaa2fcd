import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../controller/engine/workqueue.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('keyed work queue', () => {
  it('never reconciles one key twice at once, and runs a key added during processing once more', async () => {
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    const q = new WorkQueue({
      concurrency: 4,
      reconcile: async () => {
        calls++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        await tick(30);
        running--;
      },
    });
    q.add('a');
    await tick();
    q.add('a');
    q.add('a');
    q.add('a');
    await tick(100);
    await q.idle();
    expect(maxRunning).toBe(1);
    expect(calls).toBe(2);
  });

  it('collapses a key queued many times before it runs into one reconcile', async () => {
    const seen: string[] = [];
    const q = new WorkQueue({ concurrency: 1, reconcile: async (k) => void seen.push(k) });
    q.add('block');
    for (let i = 0; i < 10; i++) q.add('b');
    await q.idle();
    expect(seen.filter((k) => k === 'b')).toHaveLength(1);
  });

  it('runs different keys in parallel up to the concurrency', async () => {
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue({
      concurrency: 3,
      reconcile: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await tick(20);
        running--;
      },
    });
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await q.idle();
    expect(maxRunning).toBe(3);
  });

  it('retries a failing reconcile with growing backoff and reports each error', async () => {
    const times: number[] = [];
    const errors: number[] = [];
    const q = new WorkQueue({
      concurrency: 1,
      baseBackoffMs: 20,
      reconcile: async () => {
        times.push(Date.now());
        if (times.length < 3) throw new Error('boom');
      },
      onError: (_k, _e, retryIn) => errors.push(retryIn),
    });
    q.add('k');
    for (let i = 0; i < 40 && times.length < 3; i++) await tick(10);
    expect(times).toHaveLength(3);
    expect(errors).toEqual([20, 40]);
    expect((times[2] ?? 0) - (times[1] ?? 0)).toBeGreaterThanOrEqual(35);
  });

  it('honours requeueAfterMs and lets an immediate add win over a pending delay', async () => {
    let calls = 0;
    const q = new WorkQueue({
      concurrency: 1,
      reconcile: async () => {
        calls++;
        return calls === 1 ? { requeueAfterMs: 10_000 } : {};
      },
    });
    q.add('k');
    await q.idle();
    expect(calls).toBe(1);
    q.add('k');
    await q.idle();
    expect(calls).toBe(2);
    await q.shutdown();
  });

  it('takes no new work after shutdown and waits for work in flight', async () => {
    let finished = false;
    const q = new WorkQueue({
      concurrency: 1,
      reconcile: async () => {
        await tick(30);
        finished = true;
      },
    });
    q.add('a');
    await tick();
    await q.shutdown();
    expect(finished).toBe(true);
    q.add('b');
    expect(q.pending).toBe(0);
  });
});
