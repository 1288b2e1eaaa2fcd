import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/harness.js';

// nixpkgs cannot be fetched here, so the module is checked as far as Nix itself can without
// it: every file parses, and the module declares what the design says the server needs.
describe('nix/', () => {
  const dir = join(ROOT, 'nix');
  it.each(readdirSync(dir).filter((f) => f.endsWith('.nix')))('%s parses', async (file) => {
    const r = await execa('nix-instantiate', ['--parse', join(dir, file)], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it('declares the controller service, the swarm with its proxy network, and a pinned abra', async () => {
    const r = await execa('nix-instantiate', ['--parse', join(dir, 'module.nix')]);
    expect(r.stdout).toContain('cc-ci serve');
    expect(r.stdout).toContain('docker swarm init');
    expect(r.stdout).toContain('network create -d overlay --attachable proxy');
    expect(r.stdout).toContain('abra.nix');
  });

  it('declares the warm-reconcile timer: persistent, its interval an option, running cc-ci warm reconcile', async () => {
    const r = await execa('nix-instantiate', ['--parse', join(dir, 'module.nix')]);
    // nix-instantiate --parse prints the attribute sets nested: timers = { cc-ci-warm-reconcile = ….
    expect(r.stdout).toMatch(/timers = \{ cc-ci-warm-reconcile = /);
    expect(r.stdout).toMatch(/OnUnitActiveSec = \(cfg\)\.warmReconcile\.interval; Persistent = true;/);
    expect(r.stdout).toContain('/bin/cc-ci warm reconcile');
  });
});
