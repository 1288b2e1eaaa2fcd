import { describe, expect, it } from 'vitest';
import { AbraError } from '../../controller/clients/abra.js';
import { tierSeconds, configSchema } from '../../controller/model/config.js';
import { DockerError } from '../../controller/clients/docker.js';
import { runProcess } from '../../controller/clients/process.js';
import { CallKilledError, CallTimeoutError, callFault, shortCommand } from '../../reconcilers/errors.js';

describe('a call that did not end on its own', () => {
  it('names the tier when it ran out of its own time limit', async () => {
    const r = await runProcess({ cmd: 'sleep', args: ['30'], timeoutMs: 300, killGraceMs: 100 });
    const f = callFault(
      new AbraError('app deploy', { ...r, command: '/opt/abra app deploy webn-0a1b2c.ci.localhost --chaos -n' }),
      'abra app deploy',
      'install',
    );
    expect(f).toBeInstanceOf(CallTimeoutError);
    expect(f?.message).toBe('timed out in install: abra app deploy did not return within 0.3s (its call timeout) and was killed');
    const d = callFault(new DockerError({ ...r, command: 'docker service ls --filter label=x' }), null, 'backup');
    expect(d?.message).toMatch(/^timed out in backup: docker service ls did not return/);
  });

  it('is infrastructure when something else killed it', async () => {
    const r = await runProcess({ cmd: 'sh', args: ['-c', 'kill -9 $$'], timeoutMs: 5000 });
    expect(r.signal).toBe('SIGKILL');
    const f = callFault(new AbraError('app deploy', r), 'abra app deploy', 'install');
    expect(f).toBeInstanceOf(CallKilledError);
    expect(f?.message).toMatch(/abra app deploy was killed by SIGKILL in install/);
  });

  it('leaves a call that answered, or one cc-ci cancelled, to its caller', async () => {
    const failed = await runProcess({ cmd: 'sh', args: ['-c', 'echo FATA nope >&2; exit 1'], timeoutMs: 5000 });
    expect(callFault(new AbraError('app deploy', failed), 'abra app deploy', 'install')).toBeNull();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const cancelled = await runProcess({ cmd: 'sleep', args: ['30'], timeoutMs: 10_000, signal: ac.signal });
    expect(callFault(new AbraError('app deploy', cancelled), 'abra app deploy', 'install')).toBeNull();
    expect(callFault(new Error('plain'), null, 'install')).toBeNull();
  });

  it('shortens a command line to the program and its subcommand', () => {
    expect(shortCommand('/work/test/support/abra app deploy webn-0a1b2c.ci.localhost --chaos')).toBe('abra app deploy');
    expect(shortCommand('git clone --no-checkout --quiet /r /d')).toBe('git clone');
    expect(shortCommand('docker service inspect abc123')).toBe('docker service inspect');
  });
});

describe('per-tier time limits', () => {
  it('override tierSeconds for the tier they name only', () => {
    const c = configSchema.parse({ timeouts: { tierSeconds: 600, tiers: { custom: 2400 } } });
    expect(tierSeconds(c, 'custom')).toBe(2400);
    expect(tierSeconds(c, 'install')).toBe(600);
    expect(() => configSchema.parse({ timeouts: { tiers: { instal: 5 } } })).toThrow();
  });
});
