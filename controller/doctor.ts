import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Abra, AbraError } from './abra.js';
import type { Config } from './config.js';
import { Docker } from './docker.js';
import { ensureStateDirs, type StatePaths } from './paths.js';
import { ok, runProcess } from './process.js';

/**
 * `cc-ci doctor`: checks what a run needs and says exactly what is missing and how to fix it.
 * It also self-checks the pinned abra: every flag cc-ci passes must appear in that
 * subcommand's `--help` (flag spellings changed across abra versions, reference §0).
 */

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
  fix?: string;
}

/** The abra flags cc-ci relies on, by subcommand. */
export const ABRA_FLAGS: { path: string[]; flags: string[] }[] = [
  { path: ['app', 'new'], flags: ['--server', '--domain', '--chaos', '--offline', '--no-input'] },
  { path: ['app', 'deploy'], flags: ['--chaos', '--force', '--no-converge-checks', '--no-domain-checks', '--offline', '--no-input'] },
  { path: ['app', 'undeploy'], flags: ['--no-input'] },
  { path: ['app', 'remove'], flags: ['--force', '--no-input'] },
  { path: ['app', 'ls'], flags: ['--status', '--machine'] },
  { path: ['app', 'secret', 'generate'], flags: ['--all', '--machine'] },
  { path: ['app', 'secret', 'remove'], flags: ['--all'] },
  { path: ['app', 'volume', 'remove'], flags: ['--force'] },
];

export async function checkAbraFlags(abra: Abra): Promise<string[]> {
  const missing: string[] = [];
  for (const { path, flags } of ABRA_FLAGS) {
    let help: string;
    try {
      help = await abra.help(path);
    } catch (e) {
      missing.push(`abra ${path.join(' ')} --help failed: ${e instanceof AbraError ? (e.fatal ?? e.message) : String(e)}`);
      continue;
    }
    for (const f of flags) if (!new RegExp(`(^|[\\s,])${f}([\\s=,]|$)`, 'm').test(help)) missing.push(`abra ${path.join(' ')} ${f}`);
  }
  return missing;
}

export async function runDoctor(config: Config, paths: StatePaths): Promise<Check[]> {
  const checks: Check[] = [];
  const docker = new Docker({ timeoutMs: 15_000 });

  const git = await runProcess({ cmd: 'git', args: ['--version'], timeoutMs: 10_000 });
  checks.push({ name: 'git', ok: ok(git), required: true, detail: ok(git) ? git.stdout.trim() : 'not found', fix: 'apt-get install git' });

  let swarmOk = false;
  try {
    const info = await docker.info();
    checks.push({ name: 'docker daemon', ok: true, required: true, detail: `server ${info.serverVersion}` });
    swarmOk = info.swarm === 'active' && info.isManager;
    checks.push({
      name: 'swarm',
      ok: swarmOk,
      required: true,
      detail: swarmOk ? 'active, this node is a manager' : `swarm state "${info.swarm}"${info.isManager ? '' : ', not a manager'}`,
      fix: 'docker swarm init --advertise-addr 127.0.0.1',
    });
  } catch (e) {
    checks.push({
      name: 'docker daemon',
      ok: false,
      required: true,
      detail: (e as Error).message,
      fix: 'apt-get install docker.io, then start dockerd (./setup.sh does both)',
    });
  }
  if (swarmOk) {
    const proxy = await docker.networkExists('proxy');
    const good = proxy.exists && proxy.driver === 'overlay' && proxy.scope === 'swarm';
    checks.push({
      name: 'proxy network',
      ok: good,
      required: true,
      detail: proxy.exists ? `${proxy.driver ?? '?'} / ${proxy.scope ?? '?'}` : 'missing (recipes declare it as external)',
      fix: 'docker network create -d overlay --attachable proxy',
    });
  }

  const abra = new Abra({ bin: config.abra.bin, abraDir: config.abra.dir, server: config.abra.server, callTimeoutMs: 15_000 });
  let abraOk = false;
  try {
    const v = await abra.version();
    abraOk = true;
    checks.push({ name: 'abra', ok: true, required: true, detail: `${config.abra.bin}: ${v}` });
  } catch (e) {
    checks.push({
      name: 'abra',
      ok: false,
      required: true,
      detail: `${config.abra.bin}: ${e instanceof AbraError ? e.result.spawnError ?? e.fatal ?? e.message : String(e)}`,
      fix: 'install the pinned abra binary, or point CCCI_ABRA / abra.bin in the config at it',
    });
  }
  if (abraOk) {
    const missing = await checkAbraFlags(abra);
    checks.push({
      name: 'abra flags',
      ok: missing.length === 0,
      required: true,
      detail: missing.length ? `missing: ${missing.join('; ')}` : 'every flag cc-ci passes is present',
      fix: 'use the abra version cc-ci is pinned to (see docs/install.md)',
    });
  }
  const serverDir = join(config.abra.dir, 'servers', config.abra.server);
  checks.push({
    name: 'abra server',
    ok: existsSync(serverDir),
    required: true,
    detail: existsSync(serverDir) ? serverDir : `${serverDir} does not exist`,
    fix: `ABRA_DIR=${config.abra.dir} abra server add --local`,
  });

  try {
    ensureStateDirs(paths);
    accessSync(paths.root, constants.W_OK);
    checks.push({ name: 'state directory', ok: true, required: true, detail: paths.root });
  } catch (e) {
    checks.push({ name: 'state directory', ok: false, required: true, detail: `${paths.root}: ${(e as Error).message}`, fix: 'pass a writable --state-dir' });
  }

  const chromium = existsSync('/usr/bin/chromium');
  checks.push({
    name: 'chromium',
    ok: chromium,
    required: false,
    detail: chromium ? '/usr/bin/chromium (Playwright tests)' : 'not installed: recipes with Playwright tests cannot run their custom tier',
    fix: 'apt-get install chromium',
  });
  return checks;
}
