// Thin wrappers over the docker CLI (argument arrays, timeouts). All servers are the local daemon.
import { fatal } from './log.js';
import { arr, dict, jsonLines, str, type Dict } from './json.js';
import { failure, run, type RunResult } from './proc.js';

export const NAMESPACE_LABEL = 'com.docker.stack.namespace';

async function docker(args: string[], timeoutMs?: number): Promise<RunResult> {
  return run('docker', args, timeoutMs !== undefined ? { timeoutMs } : {});
}

export async function dockerOk(args: string[], timeoutMs?: number): Promise<string> {
  const res = await docker(args, timeoutMs);
  if (!res.ok) fatal(failure(res));
  return res.stdout;
}

export interface ServiceRow {
  id: string;
  name: string;
  replicas: string;
  mode: string;
}

export async function stackServices(stack: string): Promise<ServiceRow[]> {
  const text = await dockerOk(['service', 'ls', '--filter', `label=${NAMESPACE_LABEL}=${stack}`, '--format', '{{json .}}']);
  return (
    jsonLines(text)
      .map((r) => ({ id: str(r.ID) ?? '', name: str(r.Name) ?? '', replicas: str(r.Replicas) ?? '', mode: str(r.Mode) ?? '' }))
      // the label filter matches on the namespace label; double-check the name prefix too
      .filter((r) => r.name.startsWith(`${stack}_`))
  );
}

export async function inspect(ids: readonly string[], type?: 'service' | 'task' | 'container' | 'volume'): Promise<Dict[]> {
  if (ids.length === 0) return [];
  const args = type === 'service' ? ['service', 'inspect', ...ids] : ['inspect', ...(type ? ['--type', type] : []), ...ids];
  const res = await docker(args);
  // a task/container may disappear between listing and inspecting: keep what we got
  const text = res.stdout.trim();
  if (text === '') return [];
  return arr(JSON.parse(text) as unknown).map(dict);
}

export async function serviceTaskIds(service: string): Promise<string[]> {
  const res = await docker(['service', 'ps', service, '--no-trunc', '-q']);
  if (!res.ok) return [];
  return res.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export async function stackContainers(stack: string, opts: { all?: boolean } = {}): Promise<string[]> {
  const args = ['ps', '-q', '--no-trunc', '--filter', `label=${NAMESPACE_LABEL}=${stack}`];
  if (opts.all) args.splice(1, 0, '-a');
  const text = await dockerOk(args);
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export async function runningContainersOfService(serviceName: string): Promise<string[]> {
  const text = await dockerOk(['ps', '-q', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${serviceName}`, '--filter', 'status=running']);
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export async function listNames(kind: 'secret' | 'config' | 'volume' | 'network', filters: string[] = []): Promise<string[]> {
  const args = [kind, 'ls', ...filters.flatMap((f) => ['--filter', f]), '--format', '{{.Name}}'];
  const text = await dockerOk(args);
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export async function secretCreate(name: string, value: string): Promise<void> {
  const res = await run('docker', ['secret', 'create', name, '-'], { input: value });
  if (!res.ok) fatal(failure(res));
}

export async function removeObjects(kind: 'secret' | 'config' | 'volume' | 'network', names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await dockerOk([kind, 'rm', ...names]);
}

export async function stackDeploy(stack: string, files: readonly string[], env: Record<string, string>, cwd: string): Promise<RunResult> {
  const args = ['stack', 'deploy', ...files.flatMap((f) => ['--compose-file', f]), '--resolve-image', 'never', stack];
  return run('docker', args, { env, cwd, timeoutMs: 180_000 });
}

export async function stackRm(stack: string): Promise<RunResult> {
  return docker(['stack', 'rm', stack], 120_000);
}

/** What the docker CLI itself reads from its environment. */
const CLIENT_ENV = ['PATH', 'HOME', 'TMPDIR', 'DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CONTEXT', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY', 'DOCKER_API_VERSION'];

/**
 * Env for docker CLI children that interpolate compose files: the app's env (`extra`) for the
 * interpolation, but the docker client's own variables always from this process. Real abra talks
 * to the daemon through its own API client and never reads an app's DOCKER_HOST; a recipe's
 * `.env.sample` may well set one for its containers (abramon's `tcp://socket-proxy:2375`).
 */
export function dockerEnv(extra: ReadonlyMap<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of extra) if (!CLIENT_ENV.includes(k) && !k.startsWith('DOCKER_')) env[k] = v;
  for (const k of CLIENT_ENV) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}
