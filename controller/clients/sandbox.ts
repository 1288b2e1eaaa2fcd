import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectRoot } from '../model/project-root.js';
import { joinSockets } from './join-sockets.js';
import { runProcess, type ProcessResult, type RunOptions } from './process.js';

/**
 * Runs code from a recipe repository (hooks, functional checks, Playwright specs) in a sandbox
 * made with bubblewrap (what Flatpak uses; Debian's `bubblewrap`): a read-only system, a private
 * writable work directory, no Docker socket, no state directory, no token or secret files, an
 * environment built only from what the caller passes, its own PID, IPC, UTS and network
 * namespaces — and as its only way out, a relay to the app under test (sandbox-relay.ts). The
 * program runs as an unprivileged user with no capabilities (dropPrivileges). docs/security.md
 * says the same.
 */

export interface SandboxSettings {
  /** The bubblewrap binary. */
  bwrap: string;
  /** The unprivileged user and group sandboxed code runs as when cc-ci runs as root. */
  uid: number;
  gid: number;
}

export interface SandboxedRun extends Pick<
  RunOptions,
  'cmd' | 'args' | 'timeoutMs' | 'signal' | 'tracker' | 'onLine' | 'onLines' | 'keepChars' | 'killGraceMs'
> {
  /** The whole environment the program gets, besides PATH, HOME, TMPDIR and LANG. */
  env: Record<string, string>;
  /** A private directory the program may write (created when missing, owned by the sandbox user); its HOME. */
  workDir: string;
  /** Paths the program may read, bound read-only at the same path (the recipe checkout, cc-ci's own package). */
  readOnly: readonly string[];
  /** Further directories it may write, bound at the same path (where a test writes its report). */
  writable?: readonly string[];
  /** The working directory, inside one of the paths above. */
  cwd: string;
  /**
   * The app under test: the one address the program can reach. Inside, 127.0.0.1:`port` is
   * carried to `host`:`port` outside; `names` resolve to 127.0.0.1 inside (the app's domain, for
   * https://<domain> behind Traefik).
   */
  app: { host: string; port: number; names?: readonly string[] } | null;
}

export class SandboxUnavailable extends Error {}

/** nobody/nogroup on Debian: the default sandbox user when cc-ci runs as root. */
export const SANDBOX_UID = 65534;

/**
 * What cc-ci runs repository code with: bwrap on PATH (or `CCCI_BWRAP`, e.g. a Nix store path),
 * as nobody/nogroup. Read when asked, so the environment of the moment counts.
 */
export function sandboxSettings(): SandboxSettings {
  return { bwrap: process.env.CCCI_BWRAP || 'bwrap', uid: SANDBOX_UID, gid: SANDBOX_UID };
}

/** The system's parts a program needs to run: read-only, never the whole of /etc. */
const ETC = [
  'alternatives',
  'ca-certificates',
  'ca-certificates.conf',
  'chromium',
  'chromium.d',
  'fonts',
  'group',
  'host.conf',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'localtime',
  'mime.types',
  'nsswitch.conf',
  'passwd',
  'ssl',
];
const SYSTEM = ['bin', 'lib', 'lib32', 'lib64', 'libx32', 'sbin'];
const APP_SOCKET = '/run/ccci-app.sock';

export function relayScript(): string {
  const here = fileURLToPath(new URL('./sandbox-relay.js', import.meta.url));
  return existsSync(here) ? here : join(projectRoot(), 'dist', 'controller', 'clients', 'sandbox-relay.js');
}

/** Whether bubblewrap can make a sandbox here, and if not, what to do about it. */
export async function sandboxProblem(s: SandboxSettings): Promise<string | null> {
  const r = await runProcess({ cmd: s.bwrap, args: ['--version'], timeoutMs: 10_000, cleanEnv: true, env: {} });
  if (r.spawnError) return `${s.bwrap} is not installed: install bubblewrap (apt-get install bubblewrap) — cc-ci runs no repository code without it`;
  const probe = await runProcess({ cmd: s.bwrap, args: [...baseArgs().args, '--', ...dropPrivileges(s), 'true'], timeoutMs: 10_000, cleanEnv: true, env: {} });
  if (probe.exitCode !== 0)
    return `${s.bwrap} cannot make a sandbox here (${(probe.stderr.trim() || `exit ${probe.exitCode}`).split('\n')[0]}): user namespaces may be disabled (sysctl user.max_user_namespaces)`;
  return null;
}

/**
 * bubblewrap, run by root, makes a bind target's missing parents mode 0700: the sandbox user
 * could not reach what is bound there. Each parent is made 0755 first, once.
 */
class Binds {
  readonly args: string[] = [];
  /** Directories that exist in the sandbox already (made by bubblewrap or bound). */
  readonly dirs = new Set<string>(['/']);
  parents(path: string): void {
    const up = dirname(path);
    if (this.dirs.has(up)) return;
    this.parents(up);
    this.dirs.add(up);
    this.args.push('--perms', '0755', '--dir', up);
  }
  add(flag: string, source: string, target: string): void {
    this.parents(target);
    this.args.push(flag, source, target);
  }
}

function baseArgs(): Binds {
  // As root, no user namespace: the program's own uid must exist to setpriv to it (--unshare-all
  // would map only root). Unprivileged, the user namespace is what lets bubblewrap mount at all.
  const namespaces =
    process.getuid?.() === 0 ? ['--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup-try'] : ['--unshare-all'];
  const b = new Binds();
  b.args.push('--die-with-parent', '--new-session', ...namespaces, '--hostname', 'ccci-sandbox');
  b.add('--ro-bind', '/usr', '/usr');
  for (const d of SYSTEM) {
    const path = `/${d}`;
    if (!existsSync(path)) continue;
    if (lstatSync(path).isSymbolicLink()) b.args.push('--symlink', readlinkSync(path), path);
    else b.add('--ro-bind', path, path);
  }
  for (const e of ETC) if (existsSync(`/etc/${e}`)) b.add('--ro-bind', `/etc/${e}`, `/etc/${e}`);
  b.args.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp', '--perms', '1777', '--tmpfs', '/dev/shm');
  for (const d of ['/proc', '/dev', '/tmp', '/dev/shm']) b.dirs.add(d);
  // Node outside /usr (nvm, a Nix store path): its installation, read-only.
  const nodePrefix = dirname(dirname(process.execPath));
  if (!nodePrefix.startsWith('/usr')) b.add('--ro-bind', nodePrefix, nodePrefix);
  // cc-ci's own package, read-only: the relay, and Playwright Test for specs.
  const root = projectRoot();
  b.add('--ro-bind', root, root);
  return b;
}

/**
 * Run by root, bubblewrap makes the sandbox's mounts as root (so it can bind the recipe checkout
 * out of a 0700 state directory) and the program inside becomes the sandbox user with no
 * capabilities left (setpriv); nothing inside is root. Run by an unprivileged controller,
 * bubblewrap uses a user namespace and the program is that user.
 */
function dropPrivileges(s: SandboxSettings): string[] {
  if (process.getuid?.() === 0) {
    return ['setpriv', `--reuid=${s.uid}`, `--regid=${s.gid}`, '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--'];
  }
  return ['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--'];
}

/** The argument array of one sandboxed run (for tests and the run log). */
export function sandboxCommand(s: SandboxSettings, o: SandboxedRun, socket: string | null): Pick<RunOptions, 'cmd' | 'args'> {
  const b = baseArgs();
  for (const p of o.readOnly) b.add('--ro-bind', p, p);
  b.add('--bind', o.workDir, o.workDir);
  for (const p of o.writable ?? []) b.add('--bind', p, p);
  // The relay may need a low port (https://<domain> is 443); the program never keeps it.
  if (socket && o.app) {
    b.args.push('--bind', socket, APP_SOCKET, '--cap-add', 'CAP_NET_BIND_SERVICE');
    b.args.push('--ro-bind', join(dirname(socket), 'hosts'), '/etc/hosts');
  }
  const args = [...b.args, '--chdir', o.cwd];
  const program = [...dropPrivileges(s), o.cmd, ...o.args];
  const relayed = socket && o.app ? [process.execPath, relayScript(), String(o.app.port), APP_SOCKET, ...program] : program;
  return { cmd: s.bwrap, args: [...args, '--', ...relayed] };
}

/** A Unix socket whose every connection is carried to the app (the sandbox's only way out). */
async function bridge(dir: string, app: NonNullable<SandboxedRun['app']>): Promise<{ socket: string; server: Server }> {
  const socket = join(dir, 'app.sock');
  const names = [...new Set(['localhost', ...(app.names ?? [])])].filter((n) => /^[a-z0-9.-]{1,253}$/i.test(n));
  writeFileSync(join(dir, 'hosts'), `127.0.0.1 ${names.join(' ')}\n::1 localhost\n`, { mode: 0o644 });
  const server = createServer((inner) => joinSockets(inner, connect(app.port, app.host)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  chmodSync(socket, 0o666);
  return { socket, server };
}

/** Runs the program in the sandbox; its output, exit and timeout as runProcess reports them. */
export async function runSandboxed(s: SandboxSettings, o: SandboxedRun): Promise<ProcessResult> {
  mkdirSync(o.workDir, { recursive: true, mode: 0o700 });
  if (process.getuid?.() === 0) chownSync(o.workDir, s.uid, s.gid);
  const dir = o.app ? mkdtempSync(join(tmpdir(), 'ccci-sbx-')) : null;
  let relay: { socket: string; server: Server } | null = null;
  try {
    if (dir && o.app) {
      chmodSync(dir, 0o755);
      relay = await bridge(dir, o.app);
    }
    const command = sandboxCommand(s, o, relay?.socket ?? null);
    const result = await runProcess({
      ...command,
      env: {
        PATH: `/usr/local/bin:/usr/bin:/bin${process.execPath.startsWith('/usr/') ? '' : `:${dirname(process.execPath)}`}`,
        HOME: o.workDir,
        TMPDIR: '/tmp',
        LANG: 'C.UTF-8',
        ...o.env,
      },
      cleanEnv: true,
      timeoutMs: o.timeoutMs,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.tracker ? { tracker: o.tracker } : {}),
      ...(o.onLine ? { onLine: o.onLine } : {}),
      ...(o.onLines ? { onLines: o.onLines } : {}),
      ...(o.keepChars !== undefined ? { keepChars: o.keepChars } : {}),
      ...(o.killGraceMs !== undefined ? { killGraceMs: o.killGraceMs } : {}),
      cwd: '/',
    });
    if (result.spawnError)
      throw new SandboxUnavailable(
        `the sandbox cannot be started (${result.spawnError}): install bubblewrap (apt-get install bubblewrap); cc-ci runs no repository code without it`,
      );
    return result;
  } finally {
    relay?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
