// Backups after the backupbot label specification (docs/abra-double.md, The contract), without backup-bot-two,
// doing what the bot does where cc-ci relies on it (docs/abra-double.md, the contract table):
//   * the services labelled `backupbot.backup=true` are backed up (the spec says exactly one;
//     bonfire labels two and real life tolerates it, so all labelled services are taken, with a WARN;
//     none → FATA);
//   * `backupbot.backup.pre-hook` / `post-hook` run in that service's running container the way
//     backup-bot-two runs them [R]: a leading `bash -c`/`sh -c` and surrounding quotes dropped, then
//     `bash -c 'set -o pipefail;<hook>'`; a hook that fails is logged ("Failed to run command …")
//     and the backup carries on without it — in an image without bash every hook fails;
//   * every volume the service mounts is saved, except `backupbot.backup.volumes.<vol>=false`;
//     `backupbot.backup.volumes.<vol>.path=a,b` limits it to those paths (relative to the volume);
//   * the double's own snapshot store (restic's part) is one `.tar.gz` per snapshot with each
//     volume under `var/lib/docker/volumes/<stack>_<vol>/_data/...`, as
//     `$ABRA_DIR/backups/<domain>/<id>.tar.gz` next to `<id>.json` (metadata);
//   * `download` packs a snapshot as the bot's download does [R]: `backup.tar.gz` in the working
//     directory holding one `<stack>_<vol>.tar` per volume and, unless `--volumes` alone was asked
//     for, `<domain>.json` with the app's secrets read from its containers;
//   * restore copies each volume back into a running container that mounts it (`docker cp -a`),
//     between `backupbot.restore.pre-hook` and `post-hook` (run like the backup hooks).
// Data moves with `docker cp` from/to running containers, so no helper image is needed.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, posix, resolve } from 'node:path';
import type { App } from './app.js';
import { inspect, runningContainersOfService, stackContainers, stackServices } from './docker.js';
import { crashPoint } from './faults.js';
import { arr, dict, str } from './json.js';
import { fatal, log, out } from './log.js';
import { backupsDir } from './paths.js';
import { failure, run } from './proc.js';

const COPY_TIMEOUT_MS = 600_000;

export interface Snapshot {
  id: string;
  /** ISO-8601 UTC with milliseconds. */
  time: string;
  domain: string;
  stack: string;
  /** Full docker volume names in the archive. */
  volumes: string[];
  /** Absolute path of the .tar.gz. */
  archive: string;
  /** Archive size in bytes. */
  size: number;
}

interface VolumeMount {
  volume: string;
  short: string;
  mount: string;
}

interface Target {
  service: string;
  labels: Record<string, string>;
  container: string;
  mounts: VolumeMount[];
}

function labelsOf(svc: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(dict(dict(dict(svc).Spec).Labels))) out[k] = str(v) ?? '';
  return out;
}

async function volumeMounts(container: string, stack: string): Promise<VolumeMount[]> {
  const info = (await inspect([container], 'container'))[0];
  const mounts: VolumeMount[] = [];
  for (const m of arr(dict(info).Mounts).map(dict)) {
    const name = str(m.Name) ?? '';
    if (str(m.Type) !== 'volume' || !name.startsWith(`${stack}_`)) continue;
    mounts.push({ volume: name, short: name.slice(stack.length + 1), mount: str(m.Destination) ?? '' });
  }
  return mounts;
}

async function firstRunning(service: string): Promise<string> {
  const ids = await runningContainersOfService(service);
  const id = ids[0];
  if (id === undefined) fatal(`service ${service} has no running container`);
  return id;
}

async function backupTargets(app: App): Promise<Target[]> {
  const rows = await stackServices(app.stack);
  if (rows.length === 0) fatal(`${app.domain} is not deployed`);
  const services = await inspect(
    rows.map((r) => r.id),
    'service',
  );
  const labelled = services.filter((s) => labelsOf(s)['backupbot.backup'] === 'true');
  if (labelled.length === 0) fatal(`no service of ${app.domain} has the label backupbot.backup=true: nothing to back up`);
  if (labelled.length > 1) {
    log.warn(`backupbot.backup=true is set on ${labelled.length} services of ${app.stack}; the spec allows one, backing up all of them`);
  }
  const targets: Target[] = [];
  for (const svc of labelled) {
    const service = str(dict(dict(svc).Spec).Name) ?? '';
    const container = await firstRunning(service);
    targets.push({ service, labels: labelsOf(svc), container, mounts: await volumeMounts(container, app.stack) });
  }
  return targets;
}

/** The command backup-bot-two execs for a hook label [R]: its own `bash -c` wrapping dropped,
 *  then wrapped again with pipefail so a failure inside a pipe is not lost. */
export function hookCommand(hook: string): string {
  let command = hook.trim().replace(/^(bash|sh) -c\s*/, '');
  if (command.length >= 2 && command[0] === command[command.length - 1] && (command[0] === "'" || command[0] === '"')) command = command.slice(1, -1);
  return `set -o pipefail;${command}`;
}

/** Runs a hook as the bot does; a failure is reported and the operation carries on (the bot's
 *  behaviour, which is why cc-ci reads the output for it). */
async function runHook(kind: string, target: Target, label: string): Promise<void> {
  const hook = target.labels[label];
  if (hook === undefined || hook.trim() === '') return;
  const command = hookCommand(hook);
  out(`INFO: run command in ${target.service}: bash -c '${command}'`);
  const res = await run('docker', ['exec', target.container, 'bash', '-c', command], { timeoutMs: COPY_TIMEOUT_MS });
  const output = `${res.stdout}${res.stderr}`.trim();
  if (!res.ok) out(`ERROR: Failed to run command bash -c '${command}' in ${target.service} (${kind}): ${output || failure(res)}`);
  else if (output) out(output);
}

async function tar(args: string[]): Promise<void> {
  const res = await run('tar', args, { timeoutMs: COPY_TIMEOUT_MS });
  if (!res.ok) fatal(failure(res));
}

/** `docker cp <ctr>:<path> -` unpacked into `destParent` (entries are named after basename(path)). */
async function copyOut(container: string, path: string, destParent: string, scratch: string): Promise<boolean> {
  const tarFile = join(scratch, `cp-${randomBytes(4).toString('hex')}.tar`);
  const res = await run('docker', ['cp', `${container}:${path}`, '-'], { stdoutFile: tarFile, timeoutMs: COPY_TIMEOUT_MS });
  if (!res.ok) {
    rmSync(tarFile, { force: true });
    if (/no such file|could not find the file/i.test(res.stderr)) return false;
    fatal(failure(res));
  }
  mkdirSync(destParent, { recursive: true });
  await tar(['-xf', tarFile, '-C', destParent]);
  rmSync(tarFile, { force: true });
  return true;
}

function snapshotDir(app: App): string {
  return backupsDir(app.domain);
}

export function listSnapshots(app: App): Snapshot[] {
  const dir = snapshotDir(app);
  if (!existsSync(dir)) return [];
  const snaps: Snapshot[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    const meta = dict(JSON.parse(readFileSync(join(dir, f), 'utf8')) as unknown);
    const id = str(meta.id) ?? f.slice(0, -5);
    const archive = join(dir, `${id}.tar.gz`);
    if (!existsSync(archive)) continue;
    snaps.push({
      id,
      time: str(meta.time) ?? '',
      domain: str(meta.domain) ?? app.domain,
      stack: str(meta.stack) ?? app.stack,
      volumes: arr(meta.volumes).map((v) => str(v) ?? ''),
      archive,
      size: statSync(archive).size,
    });
  }
  // oldest first (restic order); the id breaks ties between equal timestamps
  return snaps.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}

export function findSnapshot(app: App, id: string | undefined): Snapshot {
  const snaps = listSnapshots(app);
  if (snaps.length === 0) fatal(`no snapshots for ${app.domain}`);
  if (id === undefined || id === '' || id === 'latest') {
    const last = snaps[snaps.length - 1];
    if (!last) fatal(`no snapshots for ${app.domain}`);
    return last;
  }
  const found = snaps.find((s) => s.id === id || s.id.startsWith(id));
  if (!found) fatal(`snapshot ${id} not found for ${app.domain}`);
  return found;
}

export async function createBackup(app: App): Promise<Snapshot> {
  const targets = await backupTargets(app);
  const id = randomBytes(4).toString('hex');
  const time = new Date().toISOString();
  // scratch space next to the snapshots (not /tmp), so a killed backup leaves its debris in $ABRA_DIR
  mkdirSync(snapshotDir(app), { recursive: true });
  const scratch = mkdtempSync(join(snapshotDir(app), '.scratch-backup-'));
  const root = join(scratch, 'root');
  const volumesRoot = join(root, 'var', 'lib', 'docker', 'volumes');
  mkdirSync(volumesRoot, { recursive: true });
  const saved: string[] = [];
  try {
    for (const t of targets) await runHook('backup pre-hook', t, 'backupbot.backup.pre-hook');
    for (const t of targets) {
      for (const m of t.mounts) {
        if (t.labels[`backupbot.backup.volumes.${m.short}`] === 'false') {
          log.info(`skipping volume ${m.volume} (backupbot.backup.volumes.${m.short}=false)`);
          continue;
        }
        if (saved.includes(m.volume)) continue;
        const data = join(volumesRoot, m.volume, '_data');
        const paths = (t.labels[`backupbot.backup.volumes.${m.short}.path`] ?? '')
          .split(',')
          .map((p) => p.trim().replace(/^\/+/, ''))
          .filter((p) => p !== '');
        if (paths.length === 0) {
          const stage = join(scratch, `stage-${m.short}`);
          await copyOut(t.container, m.mount, stage, scratch);
          mkdirSync(dirname(data), { recursive: true });
          renameSync(join(stage, basename(m.mount)), data);
        } else {
          mkdirSync(data, { recursive: true });
          for (const p of paths) {
            const ok = await copyOut(t.container, posix.join(m.mount, p), join(data, dirname(p)), scratch);
            if (!ok) log.warn(`${p} does not exist in volume ${m.volume}; not backed up`);
          }
        }
        saved.push(m.volume);
        log.info(`backed up ${m.volume}`);
      }
    }
    crashPoint('app backup create: after the pre-hooks and copying the data, before writing the archive');
    const dir = snapshotDir(app);
    mkdirSync(dir, { recursive: true });
    const archive = join(dir, `${id}.tar.gz`);
    const tmp = `${archive}.partial`;
    await tar(['--numeric-owner', '-czf', tmp, '-C', root, 'var']);
    renameSync(tmp, archive);
    const meta = { id, time, domain: app.domain, stack: app.stack, volumes: saved };
    writeFileSync(join(dir, `${id}.json`), `${JSON.stringify(meta, null, 2)}\n`);
    return { ...meta, archive, size: statSync(archive).size };
  } finally {
    for (const t of targets) await runHook('backup post-hook', t, 'backupbot.backup.post-hook');
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Running containers of the stack that mount each of its volumes: volume → [container, mountpoint]. */
async function mountsByVolume(stack: string): Promise<Map<string, { container: string; mount: string }>> {
  const out = new Map<string, { container: string; mount: string }>();
  for (const c of await stackContainers(stack)) {
    for (const m of await volumeMounts(c, stack)) if (!out.has(m.volume)) out.set(m.volume, { container: c, mount: m.mount });
  }
  return out;
}

export async function restoreBackup(app: App, snapshot: Snapshot): Promise<void> {
  const targets = await backupTargets(app);
  const scratch = mkdtempSync(join(snapshotDir(app), '.scratch-restore-'));
  try {
    await tar(['-xzf', snapshot.archive, '-C', scratch]);
    const volumesRoot = join(scratch, 'var', 'lib', 'docker', 'volumes');
    const volumes = existsSync(volumesRoot) ? readdirSync(volumesRoot).sort() : [];
    const mounts = await mountsByVolume(app.stack);
    for (const v of volumes) if (!mounts.has(v)) fatal(`no running container of ${app.stack} mounts volume ${v}: cannot restore it`);
    for (const t of targets) await runHook('restore pre-hook', t, 'backupbot.restore.pre-hook');
    for (const [i, v] of volumes.entries()) {
      const target = mounts.get(v);
      if (!target) continue;
      const res = await run('docker', ['cp', '-a', `${resolve(volumesRoot, v, '_data')}/.`, `${target.container}:${target.mount}`], {
        timeoutMs: COPY_TIMEOUT_MS,
      });
      if (!res.ok) fatal(`restoring ${v} failed: ${failure(res)}`);
      log.info(`restored ${v}`);
      if (i === 0) crashPoint('app restore: after restoring the first volume, before the post-hooks');
    }
    for (const t of targets) await runHook('restore post-hook', t, 'backupbot.restore.post-hook');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The app's secrets as the bot's download exports them [R]: name → value, read in its containers. */
async function appSecretValues(app: App): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const c of await stackContainers(app.stack)) {
    const names = await run('docker', ['exec', c, 'ls', '/run/secrets'], { timeoutMs: 30_000 });
    if (!names.ok) continue;
    for (const name of names.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)) {
      if (values[name] !== undefined) continue;
      const v = await run('docker', ['exec', c, 'cat', `/run/secrets/${name}`], { timeoutMs: 30_000 });
      if (v.ok) values[name] = v.stdout;
    }
  }
  return values;
}

/**
 * Packs a snapshot the way backup-bot-two's download does [R] into `backup.tar.gz` in the
 * current directory: one `<stack>_<vol>.tar` per volume (`volumes`) and `<domain>.json` with the
 * app's secrets (`secrets`); neither flag means both. Returns the archive's path.
 */
export async function downloadSnapshot(app: App, snapshot: Snapshot, what: { volumes: boolean; secrets: boolean }): Promise<string> {
  const both = !what.volumes && !what.secrets;
  const scratch = mkdtempSync(join(snapshotDir(app), '.scratch-download-'));
  try {
    const stage = join(scratch, 'stage');
    const pack = join(scratch, 'pack');
    mkdirSync(stage, { recursive: true });
    mkdirSync(pack, { recursive: true });
    const entries: string[] = [];
    if (what.volumes || both) {
      await tar(['-xzf', snapshot.archive, '-C', stage]);
      const volumesRoot = join(stage, 'var', 'lib', 'docker', 'volumes');
      for (const v of existsSync(volumesRoot) ? readdirSync(volumesRoot).sort() : []) {
        await tar(['--numeric-owner', '-cf', join(pack, `${v}.tar`), '-C', stage, posix.join('var/lib/docker/volumes', v)]);
        entries.push(`${v}.tar`);
      }
    }
    if (what.secrets || both) {
      writeFileSync(join(pack, `${app.domain}.json`), `${JSON.stringify(await appSecretValues(app))}\n`);
      entries.push(`${app.domain}.json`);
    }
    const target = resolve(process.cwd(), 'backup.tar.gz');
    await tar(['--numeric-owner', '-czf', `${target}.partial`, '-C', pack, ...entries]);
    renameSync(`${target}.partial`, target);
    return target;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
