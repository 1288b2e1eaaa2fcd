import type { Config } from '../model/config.js';
import { describeFailure, ok, runProcess, type ChildTracker, type ProcessResult } from './process.js';

/**
 * Reads the swarm through the docker CLI. cc-ci changes swarm state only through abra; the
 * exceptions are here and named as such: removing leftovers of its own test apps after abra
 * could not (docs/abra-double.md, The contract).
 */

export interface DockerOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  tracker?: ChildTracker;
}

/** The docker client of cc-ci's config (its call timeout), under the caller's signal and tracker. */
export function dockerFromConfig(config: Pick<Config, 'timeouts'>, o: Pick<DockerOptions, 'signal' | 'tracker'> = {}): Docker {
  return new Docker({ timeoutMs: config.timeouts.dockerSeconds * 1000, ...o });
}

export class DockerError extends Error {
  constructor(
    readonly result: ProcessResult,
    message?: string,
  ) {
    super(message ?? describeFailure(result));
  }
}

export interface ServiceState {
  id: string;
  name: string;
  /** Desired replicas (global services: the number of nodes with a task). */
  desired: number;
  running: number;
  /** '' when no update ever ran, else swarm's UpdateStatus.State. */
  updateState: string;
  labels: Record<string, string>;
}

export interface TaskState {
  id: string;
  name: string;
  node: string;
  desiredState: string;
  currentState: string;
  error: string;
}

export interface StackLeftovers {
  services: string[];
  containers: string[];
  volumes: string[];
  secrets: string[];
  configs: string[];
  networks: string[];
}

/** docker prints times as RFC 3339 (inspect) or as `2026-11-23 17:07:09.01 +0000 UTC` (ls). */
/** A task that ended on its own (Docker.endedTasksSince). */
export interface EndedTask {
  id: string;
  state: string;
  /** Swarm's error for the task (`task: non-zero exit (1)`), empty for a clean exit. */
  error: string;
  exitCode: number | null;
  containerId: string | null;
  createdAt: number;
}

const ENDED_ON_THEIR_OWN = new Set(['failed', 'rejected', 'complete']);

export function parseDockerTime(text: string): number | null {
  const t = text.trim();
  if (!t) return null;
  const direct = Date.parse(t);
  if (!Number.isNaN(direct)) return direct;
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.\d+)? ([+-]\d{2})(\d{2})/.exec(t);
  if (!m) return null;
  const v = Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
  return Number.isNaN(v) ? null : v;
}

export function leftoverCount(l: StackLeftovers): number {
  return l.services.length + l.containers.length + l.volumes.length + l.secrets.length + l.configs.length + l.networks.length;
}

export function describeLeftovers(l: StackLeftovers): string {
  const parts = (Object.entries(l) as [string, string[]][])
    .filter(([, v]) => v.length > 0)
    .map(([k, v]) => `${v.length} ${k} (${v.slice(0, 5).join(', ')}${v.length > 5 ? ', …' : ''})`);
  return parts.length ? parts.join('; ') : 'nothing';
}

/** docs/abra-double.md, The contract: block only on `updating` and `rollback_started`. A `paused` flag sticks
 *  until the next update after one task flicker, so waiting on it would hang every later wait. */
export function updateSettled(state: string): boolean {
  return state !== 'updating' && state !== 'rollback_started';
}

/** What the docker CLI itself reads from its environment: always the controller's, never an
 *  app's (a recipe's `.env.sample` may set DOCKER_HOST for its own containers). */
export const DOCKER_CLIENT_ENV = [
  'PATH',
  'HOME',
  'TMPDIR',
  'DOCKER_HOST',
  'DOCKER_CONFIG',
  'DOCKER_CONTEXT',
  'DOCKER_CERT_PATH',
  'DOCKER_TLS_VERIFY',
  'DOCKER_API_VERSION',
] as const;

export class Docker {
  constructor(private readonly options: DockerOptions) {}

  private async run(
    args: string[],
    opts: { allowFail?: boolean; timeoutMs?: number; input?: Uint8Array; binaryStdout?: boolean; env?: Record<string, string>; cwd?: string } = {},
  ): Promise<ProcessResult> {
    const r = await runProcess({
      cmd: 'docker',
      args,
      timeoutMs: opts.timeoutMs ?? this.options.timeoutMs,
      ...(opts.env ? { env: opts.env, cleanEnv: true } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.input ? { input: opts.input } : {}),
      ...(opts.binaryStdout ? { binaryStdout: true } : {}),
      ...(this.options.signal ? { signal: this.options.signal } : {}),
      ...(this.options.tracker ? { tracker: this.options.tracker } : {}),
    });
    if (!ok(r) && !opts.allowFail) throw new DockerError(r);
    return r;
  }

  private async lines(args: string[]): Promise<string[]> {
    const r = await this.run(args);
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }

  async info(): Promise<{ swarm: string; serverVersion: string; isManager: boolean }> {
    const r = await this.run(['info', '--format', '{{json .}}']);
    const i = JSON.parse(r.stdout) as { ServerVersion?: string; Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };
    return {
      swarm: i.Swarm?.LocalNodeState ?? 'unknown',
      serverVersion: i.ServerVersion ?? 'unknown',
      isManager: i.Swarm?.ControlAvailable === true,
    };
  }

  /**
   * `docker stack config`: the compose files merged and interpolated by docker's own compose
   * loader — the one abra vendors — with exactly `env` (nothing of the controller's own
   * environment beyond what the docker CLI itself needs). Client-side: the daemon is not asked.
   * Returns the merged YAML, or throws a DockerError carrying the loader's complaint.
   */
  async stackConfig(files: readonly string[], env: Record<string, string>, cwd: string): Promise<string> {
    const clientEnv: Record<string, string> = { ...env };
    for (const k of DOCKER_CLIENT_ENV) {
      const v = process.env[k];
      if (v !== undefined) clientEnv[k] = v;
      else if (k.startsWith('DOCKER_')) delete clientEnv[k];
    }
    const r = await this.run(['stack', 'config', ...files.flatMap((f) => ['--compose-file', f])], { env: clientEnv, cwd, allowFail: true });
    if (!ok(r)) {
      const why = r.timedOut || r.spawnError ? describeFailure(r) : (r.stderr.trim().split('\n').filter(Boolean).pop() ?? describeFailure(r));
      throw new DockerError(r, why);
    }
    return r.stdout;
  }

  async networkExists(name: string): Promise<{ exists: boolean; driver?: string; scope?: string }> {
    const r = await this.run(['network', 'inspect', name, '--format', '{{.Driver}} {{.Scope}}'], { allowFail: true });
    if (!ok(r)) return { exists: false };
    const [driver, scope] = r.stdout.trim().split(' ');
    return { exists: true, ...(driver ? { driver } : {}), ...(scope ? { scope } : {}) };
  }

  /** Every swarm service with the image it runs: how a Traefik in front of the swarm is found. */
  async serviceImages(): Promise<{ name: string; image: string }[]> {
    return (await this.lines(['service', 'ls', '--format', '{{.Name}}\t{{.Image}}'])).map((l) => {
      const [name = '', image = ''] = l.split('\t');
      return { name, image };
    });
  }

  /** Every service of a stack with replica counts, update state and labels. */
  async stackServices(stack: string): Promise<ServiceState[]> {
    const rows = await this.lines(['service', 'ls', '--filter', `label=com.docker.stack.namespace=${stack}`, '--format', '{{json .}}']);
    if (rows.length === 0) return [];
    const listed = rows.map((l) => JSON.parse(l) as { ID: string; Name: string; Replicas: string });
    const inspect = await this.run(['service', 'inspect', ...listed.map((s) => s.ID)]);
    const details = JSON.parse(inspect.stdout) as {
      ID: string;
      Spec: { Name: string; Labels?: Record<string, string> };
      UpdateStatus?: { State?: string };
    }[];
    return listed.map((s) => {
      const d = details.find((x) => x.ID.startsWith(s.ID) || s.ID.startsWith(x.ID));
      const m = /^(\d+)\/(\d+)/.exec(s.Replicas);
      return {
        id: s.ID,
        name: s.Name,
        running: Number(m?.[1] ?? 0),
        desired: Number(m?.[2] ?? 0),
        updateState: d?.UpdateStatus?.State ?? '',
        labels: d?.Spec.Labels ?? {},
      };
    });
  }

  async serviceTasks(service: string): Promise<TaskState[]> {
    const rows = await this.lines(['service', 'ps', service, '--no-trunc', '--format', '{{json .}}']);
    return rows.map((l) => {
      const t = JSON.parse(l) as Record<string, string>;
      return {
        id: t.ID ?? '',
        name: t.Name ?? '',
        node: t.Node ?? '',
        desiredState: t.DesiredState ?? '',
        currentState: t.CurrentState ?? '',
        error: t.Error ?? '',
      };
    });
  }

  /**
   * The tasks of each service that ended on their own and were created at or after `sinceMs`,
   * newest first: swarm's `failed` (exited non-zero, killed), `rejected` (refused by a node) and
   * `complete` — a long-running service's process that exited 0, as one does that stops cleanly
   * on the SIGTERM Docker sends when its healthcheck has failed. Tasks swarm stopped itself (an
   * update, a scale) are `shutdown` and not counted. `docker service ps` shows only relative
   * times, so the tasks are inspected for theirs.
   */
  async endedTasksSince(services: readonly { id: string; name: string }[], sinceMs: number): Promise<Map<string, EndedTask[]>> {
    const byService = new Map<string, EndedTask[]>(services.map((s) => [s.name, []]));
    if (services.length === 0) return byService;
    // One listing and one inspect for all of them: this is looked at every second while a deploy converges.
    const ids = (await this.lines(['service', 'ps', ...services.map((s) => s.name), '--no-trunc', '--quiet'])).filter(Boolean).slice(0, 200);
    if (ids.length === 0) return byService;
    // A task removed between the two calls makes inspect exit non-zero; the others still print.
    const r = await this.run(['inspect', '--type', 'task', '--format', '{{json .}}', ...ids], { allowFail: true });
    for (const row of r.stdout.split('\n')) {
      if (!row.trim()) continue;
      let t: {
        ID?: string;
        ServiceID?: string;
        CreatedAt?: string;
        Status?: { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
      };
      try {
        t = JSON.parse(row) as typeof t;
      } catch {
        continue;
      }
      const state = t.Status?.State ?? '';
      const createdAt = parseDockerTime(t.CreatedAt ?? '');
      if (createdAt === null || createdAt < sinceMs || !ENDED_ON_THEIR_OWN.has(state)) continue;
      const serviceId = t.ServiceID ?? '';
      const service = services.find((s) => s.id && serviceId && (serviceId.startsWith(s.id) || s.id.startsWith(serviceId)));
      if (!service) continue;
      const status = t.Status ?? {};
      byService.get(service.name)!.push({
        id: t.ID ?? '',
        state,
        error: status.Err ?? '',
        exitCode: status.ContainerStatus?.ExitCode ?? null,
        containerId: status.ContainerStatus?.ContainerID ?? null,
        createdAt,
      });
    }
    for (const ended of byService.values()) ended.sort((a, b) => b.createdAt - a.createdAt);
    return byService;
  }

  /**
   * Why a container's healthcheck last failed, when Docker judged it unhealthy: the check's own
   * last output. Null for a container that is gone (swarm keeps a few per service), has no
   * healthcheck, or was not unhealthy.
   */
  async unhealthyBecause(containerId: string): Promise<string | null> {
    const r = await this.run(['inspect', '--type', 'container', '--format', '{{json .State.Health}}', containerId], { allowFail: true });
    if (!ok(r)) return null;
    try {
      const h = JSON.parse(r.stdout) as { Status?: string; FailingStreak?: number; Log?: { ExitCode?: number; Output?: string }[] } | null;
      if (h?.Status !== 'unhealthy') return null;
      const last = h.Log?.at(-1);
      const output = (last?.Output ?? '').replace(/\s+/g, ' ').trim().slice(0, 300);
      return `its healthcheck failed ${h.FailingStreak ?? '?'} times in a row (last: exit ${last?.ExitCode ?? '?'}${output ? `, ${output}` : ''})`;
    } catch {
      return null;
    }
  }

  /**
   * The last lines a service logged. `docker service logs` shows nothing of a task still starting
   * (a healthcheck that has not passed yet): then the newest of its containers on this node
   * (`docker logs`), which is where a crash-looping or never-healthy app says why.
   */
  async serviceLogsTail(service: string, lines: number): Promise<string> {
    const timeoutMs = Math.min(this.options.timeoutMs, 20_000);
    const r = await this.run(['service', 'logs', '--raw', '--no-trunc', '--tail', String(lines), service], { allowFail: true, timeoutMs });
    const text = `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`.trim();
    if (text) return text;
    // `docker ps` lists the newest first.
    const ids = await this.lines(['ps', '-a', '--filter', `label=com.docker.swarm.service.name=${service}`, '--format', '{{.ID}}']);
    for (const id of ids.slice(0, 3)) {
      const c = await this.run(['logs', '--tail', String(lines), id], { allowFail: true, timeoutMs });
      const out = `${c.stdout}${c.stderr ? `\n${c.stderr}` : ''}`.trim();
      if (out) return out;
    }
    return '';
  }

  /** Every secret's name on the swarm. */
  async secretNames(): Promise<string[]> {
    return this.lines(['secret', 'ls', '--format', '{{.Name}}']);
  }

  /** Everything of a stack that exists, found both by the namespace label and by name prefix:
   *  abra-made secrets may not carry the label (docs/abra-double.md, The contract). */
  async stackLeftovers(stack: string): Promise<StackLeftovers> {
    const label = `label=com.docker.stack.namespace=${stack}`;
    const prefix = `${stack}_`;
    const byPrefix = (names: string[]) => names.filter((n) => n.startsWith(prefix));
    // Each kind both ways: a compose `name:` may put a labelled object outside the prefix, and
    // an object made beside the stack (abra's secrets) may carry the prefix but no label.
    const mine = (rows: string[]) =>
      rows.flatMap((r) => {
        const [name = '', namespace = ''] = r.split('\t');
        return name && (namespace === stack || name.startsWith(prefix)) ? [name] : [];
      });
    const byLabelOrPrefix = (kind: 'volume' | 'secret' | 'config' | 'network') =>
      this.lines([kind, 'ls', '--format', '{{.Name}}\t{{.Label "com.docker.stack.namespace"}}']).then(mine);
    const [servicesL, servicesN, containers, volumes, secrets, configs, networks] = await Promise.all([
      this.lines(['service', 'ls', '--filter', label, '--format', '{{.Name}}']),
      this.lines(['service', 'ls', '--format', '{{.Name}}']).then(byPrefix),
      this.lines(['ps', '-a', '--filter', label, '--format', '{{.Names}}']),
      byLabelOrPrefix('volume'),
      byLabelOrPrefix('secret'),
      byLabelOrPrefix('config'),
      byLabelOrPrefix('network'),
    ]);
    const services = [...new Set([...servicesL, ...servicesN])];
    return { services, containers, volumes, secrets, configs, networks };
  }

  /**
   * The names and creation times of every service, volume, secret, config and network: what the
   * janitor matches against cc-ci's naming pattern. Creation times may be null when docker does
   * not say.
   */
  async namedObjects(): Promise<{ kind: string; name: string; createdAt: number | null }[]> {
    const out: { kind: string; name: string; createdAt: number | null }[] = [];
    const pairs = (rows: string[], kind: string) => {
      for (const r of rows) {
        const [name, ...rest] = r.split('\t');
        if (name) out.push({ kind, name, createdAt: parseDockerTime(rest.join('\t')) });
      }
    };
    pairs(await this.lines(['secret', 'ls', '--format', '{{.Name}}\t{{.CreatedAt}}']), 'secret');
    pairs(await this.lines(['config', 'ls', '--format', '{{.Name}}\t{{.CreatedAt}}']), 'config');
    pairs(await this.lines(['network', 'ls', '--format', '{{.Name}}\t{{.CreatedAt}}']), 'network');
    const services = await this.lines(['service', 'ls', '--format', '{{.ID}}']);
    if (services.length) pairs(await this.lines(['service', 'inspect', ...services, '--format', '{{.Spec.Name}}\t{{.CreatedAt}}']), 'service');
    const volumes = await this.lines(['volume', 'ls', '--format', '{{.Name}}']);
    if (volumes.length) pairs(await this.lines(['volume', 'inspect', ...volumes, '--format', '{{.Name}}\t{{.CreatedAt}}']), 'volume');
    return out;
  }

  /** A running container of a swarm service (`<stack>_<service>`), if one is up. */
  async runningContainer(service: string): Promise<string | null> {
    const ids = await this.lines(['ps', '--filter', `label=com.docker.swarm.service.name=${service}`, '--filter', 'status=running', '--format', '{{.ID}}']);
    return ids[0] ?? null;
  }

  async volumeMounts(container: string): Promise<{ name: string; destination: string }[]> {
    const r = await this.run(['inspect', container, '--format', '{{json .Mounts}}']);
    const mounts = JSON.parse(r.stdout) as { Type?: string; Name?: string; Destination?: string }[] | null;
    return (mounts ?? [])
      .filter((m) => m.Type === 'volume' && m.Name && m.Destination)
      .map((m) => ({ name: m.Name as string, destination: m.Destination as string }));
  }

  /** `docker cp - <container>:<dir>`: unpacks a tar stream into the container (no shell in it needed). */
  async copyIn(container: string, dir: string, tar: Buffer): Promise<void> {
    const r = await this.run(['cp', '-', `${container}:${dir}`], { allowFail: true, input: tar });
    if (!ok(r)) throw new DockerError(r, `docker cp into ${container}:${dir} failed: ${r.stderr.trim() || describeFailure(r)}`);
  }

  /** `docker cp <container>:<path> -`: the path as a tar stream, or null when it does not exist. */
  async copyOut(container: string, path: string): Promise<Buffer | null> {
    const r = await this.run(['cp', `${container}:${path}`, '-'], { allowFail: true, binaryStdout: true });
    if (!ok(r)) {
      if (r.exitCode !== null && /No such container:path|Could not find the file|no such file/i.test(r.stderr)) return null;
      throw new DockerError(r, `docker cp from ${container}:${path} failed: ${r.stderr.trim() || describeFailure(r)}`);
    }
    return r.stdoutBytes ?? Buffer.alloc(0);
  }

  // ---- removal of a test app's leftovers, only after abra could not --------------------------

  async removeVolumes(names: string[]): Promise<ProcessResult> {
    return this.run(['volume', 'rm', '--force', ...names], { allowFail: true });
  }

  async removeSecrets(names: string[]): Promise<ProcessResult> {
    return this.run(['secret', 'rm', ...names], { allowFail: true });
  }

  async removeConfigs(names: string[]): Promise<ProcessResult> {
    return this.run(['config', 'rm', ...names], { allowFail: true });
  }

  async removeNetworks(names: string[]): Promise<ProcessResult> {
    return this.run(['network', 'rm', ...names], { allowFail: true });
  }

  async removeServices(names: string[]): Promise<ProcessResult> {
    return this.run(['service', 'rm', ...names], { allowFail: true });
  }

  /**
   * The containers of a stack whose services are all gone (none while any service is left):
   * what Docker is still stopping after `docker stack rm`.
   */
  async orphanedStackContainers(stack: string): Promise<string[]> {
    const label = `label=com.docker.stack.namespace=${stack}`;
    if ((await this.lines(['service', 'ls', '--filter', label, '--format', '{{.Name}}'])).length > 0) return [];
    return this.lines(['ps', '-a', '--filter', label, '--format', '{{.Names}}']);
  }

  async removeContainers(names: string[]): Promise<ProcessResult> {
    return this.run(['rm', '--force', ...names], { allowFail: true });
  }
}
