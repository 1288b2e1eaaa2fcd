import { describe, expect, it } from 'vitest';
import { describeFailure, isAlive, ok, processStartTicks, runInTerminal, runProcess } from '../../controller/clients/process.js';

describe('running external programs', () => {
  it('streams lines of both streams and collects them', async () => {
    const lines: string[] = [];
    const r = await runProcess({ cmd: 'sh', args: ['-c', 'echo one; echo two >&2; echo three'], timeoutMs: 5000, onLine: (s, l) => lines.push(`${s}:${l}`) });
    expect(ok(r)).toBe(true);
    expect(lines).toEqual(expect.arrayContaining(['out:one', 'err:two', 'out:three']));
    expect(r.stdout).toBe('one\nthree');
  });

  it('keeps a sensitive call out of the line stream', async () => {
    const lines: string[] = [];
    const r = await runProcess({ cmd: 'echo', args: ['s3cret-value'], timeoutMs: 5000, sensitive: true, onLine: (_s, l) => lines.push(l) });
    expect(lines).toEqual([]);
    expect(r.stdout).toBe('s3cret-value');
  });

  it('kills the whole process group when the deadline passes', async () => {
    const started: number[] = [];
    const r = await runProcess({
      cmd: 'sh',
      args: ['-c', 'sleep 30 & echo $!; wait'],
      timeoutMs: 300,
      killGraceMs: 200,
      onLine: (_s, l) => started.push(Number(l)),
      tracker: { started: () => {}, ended: () => {} },
    });
    expect(r.timedOut).toBe(true);
    expect(describeFailure(r)).toMatch(/timed out after/);
    await new Promise((res) => setTimeout(res, 300));
    expect(started[0]).toBeGreaterThan(0);
    expect(isAlive(started[0]!, null)).toBe(false); // the grandchild went with the group
  });

  it('stops at once when cancelled, and reports it as cancelled', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await runProcess({ cmd: 'sleep', args: ['30'], timeoutMs: 10_000, signal: ac.signal });
    expect(r.aborted).toBe(true);
    expect(r.durationMs).toBeLessThan(5000);
    expect(describeFailure(r)).toMatch(/cancelled/);
  });

  it('says when a program cannot be started', async () => {
    const r = await runProcess({ cmd: '/nonexistent/abra', args: [], timeoutMs: 5000 });
    expect(ok(r)).toBe(false);
    expect(r.spawnError).toMatch(/ENOENT/);
  });

  it('tells a live process from a reused pid by its start time', () => {
    const ticks = processStartTicks(process.pid);
    expect(isAlive(process.pid, ticks)).toBe(true);
    expect(isAlive(process.pid, `${ticks}0`)).toBe(false);
  });

  it('runs a program under a pseudo-terminal when it needs one', async () => {
    const r = await runInTerminal({ cmd: 'tty', args: [], timeoutMs: 5000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\/dev\/pts\/\d+$/);
    const plain = await runProcess({ cmd: 'tty', args: [], timeoutMs: 5000 });
    expect(plain.exitCode).not.toBe(0);
  });
});
