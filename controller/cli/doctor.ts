import { sandboxProblem, sandboxSettings } from '../clients/sandbox.js';
import { accessSync, constants, existsSync } from 'node:fs';
import { Abra, AbraError } from '../clients/abra.js';
import type { Config } from '../model/config.js';
import { Docker } from '../clients/docker.js';
import { ensureStateDirs, type StatePaths, abraServerDir } from '../model/paths.js';
import { ok, runProcess } from '../clients/process.js';

/**
 * `cc-ci doctor`: checks what a run needs and says exactly what is missing and how to fix it.
 * It also self-checks the pinned abra: every flag cc-ci passes must appear in that
 * subcommand's `--help` (flag spellings changed across abra versions, docs/abra-double.md, The contract).
 */

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
  fix?: string;
}

/**
 * Every abra command cc-ci runs, with the flags it cannot do without (`required`) and those it
 * passes where the command has them (`whereAvailable`: `--chaos`/`--offline` on the commands that
 * touch the recipe, `--volumes` on backup download — controller/clients/abra.ts reads each command's
 * `--help` at run time; without one cc-ci leaves the flag out and checks the recipe out again
 * before each deploy).
 */
export const ABRA_COMMANDS: { path: string[]; required: string[]; whereAvailable: string[] }[] = [
  { path: ['server', 'add'], required: ['--local'], whereAvailable: [] },
  { path: ['app', 'new'], required: ['--server', '--domain', '--chaos', '--offline', '--no-input'], whereAvailable: [] },
  { path: ['app', 'deploy'], required: ['--chaos', '--force', '--no-converge-checks', '--no-domain-checks', '--offline', '--no-input'], whereAvailable: [] },
  { path: ['app', 'undeploy'], required: ['--no-input'], whereAvailable: ['--offline'] },
  { path: ['app', 'remove'], required: ['--force', '--no-input'], whereAvailable: ['--offline'] },
  { path: ['app', 'secret', 'generate'], required: ['--all', '--machine'], whereAvailable: ['--chaos', '--offline'] },
  { path: ['app', 'secret', 'remove'], required: ['--all'], whereAvailable: ['--offline'] },
  { path: ['app', 'volume', 'remove'], required: ['--force'], whereAvailable: ['--offline'] },
  { path: ['app', 'backup', 'create'], required: [], whereAvailable: ['--chaos', '--offline'] },
  { path: ['app', 'backup', 'snapshots'], required: [], whereAvailable: ['--chaos', '--offline'] },
  { path: ['app', 'backup', 'download'], required: ['--snapshot'], whereAvailable: ['--volumes', '--chaos', '--offline'] },
  { path: ['app', 'restore'], required: ['--snapshot'], whereAvailable: ['--chaos', '--offline'] },
];

export interface AbraFlagReport {
  /** Commands whose help could not be read, and required flags a command lacks. */
  missing: string[];
  /** Flags cc-ci passes where available that this abra does not have. */
  unavailable: string[];
}

export async function checkAbraFlags(abra: Abra): Promise<AbraFlagReport> {
  const report: AbraFlagReport = { missing: [], unavailable: [] };
  for (const { path, required, whereAvailable } of ABRA_COMMANDS) {
    try {
      await abra.help(path);
    } catch (e) {
      report.missing.push(`abra ${path.join(' ')} --help failed: ${e instanceof AbraError ? (e.fatal ?? e.message) : String(e)}`);
      continue;
    }
    for (const f of required) if (!(await abra.supports(path, f))) report.missing.push(`abra ${path.join(' ')} ${f}`);
    for (const f of whereAvailable) if (!(await abra.supports(path, f))) report.unavailable.push(`abra ${path.join(' ')} ${f}`);
  }
  return report;
}

/**
 * backup-bot-two on the swarm: abra's backup commands exec into its container (docs/abra-double.md, The contract).
 * Found by its image or service name; the abra test double keeps backups itself.
 */
async function backupBotCheck(docker: Docker, abraVersion: string): Promise<Check> {
  const name = 'backup-bot-two';
  if (/ccci-double/.test(abraVersion)) {
    return { name, ok: true, required: false, detail: 'not needed: the abra test double keeps backups itself (docs/abra-double.md)' };
  }
  const services = await docker.serviceImages().catch(() => null);
  const bot = services?.find((s) => /backup-?bot/i.test(s.image) || /backup-?bot/i.test(s.name));
  return {
    name,
    ok: Boolean(bot),
    required: false,
    detail: bot
      ? `${bot.name} (${bot.image})`
      : services === null
        ? 'could not list the swarm services'
        : 'no backup-bot-two service runs on the swarm: the backup and restore tiers of every recipe with backupbot labels will fail',
    fix: 'deploy the backup-bot-two recipe through abra (docs/install.md, "Backups")',
  };
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
  let abraVersion = '';
  try {
    const v = await abra.version();
    abraVersion = v;
    abraOk = true;
    checks.push({ name: 'abra', ok: true, required: true, detail: `${config.abra.bin}: ${v}` });
  } catch (e) {
    checks.push({
      name: 'abra',
      ok: false,
      required: true,
      detail: `${config.abra.bin}: ${e instanceof AbraError ? (e.result.spawnError ?? e.fatal ?? e.message) : String(e)}`,
      fix: 'install the pinned abra binary, or point CCCI_ABRA / abra.bin in the config at it',
    });
  }
  if (abraOk) {
    const report = await checkAbraFlags(abra);
    checks.push({
      name: 'abra commands',
      ok: report.missing.length === 0,
      required: true,
      detail: report.missing.length ? `missing: ${report.missing.join('; ')}` : `${ABRA_COMMANDS.length} commands, every flag cc-ci needs is present`,
      fix: 'use the abra version cc-ci is pinned to (see docs/install.md)',
    });
    checks.push({
      name: 'abra recipe flags',
      ok: report.unavailable.length === 0,
      required: false,
      detail: report.unavailable.length
        ? `not in this abra: ${report.unavailable.join('; ')}; cc-ci leaves them out and checks the commit out again before each deploy`
        : '--chaos/--offline on every recipe-touching command, --volumes on backup download',
      fix: 'use the abra version cc-ci is pinned to (see docs/install.md)',
    });
    checks.push(await backupBotCheck(docker, abraVersion));
  }
  const serverDir = abraServerDir(config);
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

  const sandbox = await sandboxProblem(sandboxSettings());
  checks.push({
    name: 'sandbox',
    ok: sandbox === null,
    // Hooks, checks and specs from recipe repositories run only in it (docs/security.md).
    required: true,
    detail: sandbox ?? 'bubblewrap makes a sandbox here: hooks, checks and specs from recipe repositories run in it (docs/security.md)',
    fix: 'apt-get install bubblewrap',
  });
  return checks;
}
