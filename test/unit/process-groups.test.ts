import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cloneRepo, GitError, resolveRef } from '../../controller/clients/git.js';
import { groupMembers, isAlive, processStartTicks, runProcess, stopRecordedGroup } from '../../controller/clients/process.js';

function waitUntil(fn: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => (fn() ? resolve() : Date.now() > until ? reject(new Error('timed out')) : setTimeout(tick, 20));
    tick();
  });
}

describe('process groups of recorded children', () => {
  it('are stopped even when the leader is already dead', async () => {
    // A detached leader (its own group) with a grandchild, like abra with its docker child.
    const leader = spawn('sh', ['-c', 'sleep 60 & echo $!; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const grandchild = await new Promise<number>((resolve) => leader.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim()))));
    const pid = leader.pid!;
    const ticks = processStartTicks(pid);
    expect(groupMembers(pid).sort()).toEqual([pid, grandchild].sort());
    process.kill(pid, 'SIGKILL'); // the leader dies; its child lives on in the group
    await waitUntil(() => !isAlive(pid, ticks));
    expect(isAlive(grandchild, null)).toBe(true);
    expect(groupMembers(pid)).toEqual([grandchild]);

    expect(stopRecordedGroup(pid, ticks)).toBe(1);
    await waitUntil(() => groupMembers(pid).length === 0);
    expect(isAlive(grandchild, null)).toBe(false);
  });

  it('are left alone when the pid now names another process', () => {
    // Our own pid with a start time it never had: a reused pid. Nothing is signalled.
    expect(stopRecordedGroup(process.pid, `${processStartTicks(process.pid)}1`)).toBeNull();
  });
});

describe('runProcess with bytes', () => {
  it('feeds bytes to stdin and keeps stdout as bytes', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13, 0]);
    const r = await runProcess({ cmd: 'cat', args: [], timeoutMs: 5000, input: bytes, binaryStdout: true });
    expect(r.exitCode).toBe(0);
    expect(r.stdoutBytes?.equals(bytes)).toBe(true);
  });
});

describe('git through runProcess', () => {
  it('records its children, and its wall-clock timeout kills a git that hangs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ccci-git-'));
    try {
      // A git on PATH that never returns, as one stuck on a dead network would.
      const shim = join(dir, 'bin');
      mkdirSync(shim);
      writeFileSync(join(shim, 'git'), '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
      const seen: string[] = [];
      const tracker = { started: (_pid: number, command: string) => seen.push(command), ended: () => {} };
      const oldPath = process.env.PATH;
      process.env.PATH = `${shim}:${oldPath}`;
      try {
        const err = await cloneRepo('/nonexistent', join(dir, 'c'), { timeoutMs: 500, tracker }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GitError);
        expect((err as GitError).result?.timedOut).toBe(true);
      } finally {
        process.env.PATH = oldPath;
      }
      expect(seen).toEqual(['git clone --no-checkout --quiet --end-of-options /nonexistent ' + join(dir, 'c')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says what is wrong when a ref does not exist', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ccci-git-'));
    try {
      const run = (args: string[]) => runProcess({ cmd: 'git', args, cwd: dir, timeoutMs: 10_000 });
      await run(['init', '-q', '-b', 'main']);
      writeFileSync(join(dir, 'f'), 'x');
      await run(['add', 'f']);
      await run(['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '-m', 'one']);
      const clone = join(dir, 'clone');
      await cloneRepo(dir, clone, { timeoutMs: 10_000 });
      expect(await resolveRef(clone, 'main', { timeoutMs: 10_000 })).toMatch(/^[0-9a-f]{40}$/);
      await expect(resolveRef(clone, 'nope', { timeoutMs: 10_000 })).rejects.toThrow(/ref "nope" does not exist/);
      await expect(cloneRepo(join(dir, 'missing'), join(dir, 'c2'), { timeoutMs: 10_000 })).rejects.toThrow(/could not clone .*fatal:/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
