// Convergence wait after a deploy (docs/abra-double.md, The contract): every service of the stack N/N, no running
// task from an older spec, UpdateStatus settled (only `updating`/`rollback_started` block; `paused`
// does not, see docs/abra-double.md), within the timeout from the
// `coop-cloud.<stack>.timeout` label (seconds, default 50). A service whose tasks keep failing
// (3 failed/rejected tasks since the deploy started) ends the wait early with "deploy failed".
import { inspect, serviceTaskIds, stackServices } from './docker.js';
import { dict, str, type Dict } from './json.js';
import { fatal, log } from './log.js';
import { sleep } from './proc.js';

export const DEFAULT_TIMEOUT_SECONDS = 50;
const FAILED_TASKS_LIMIT = 3;
const BLOCKING_UPDATE_STATES = new Set(['updating', 'rollback_started']);

interface ServiceState {
  name: string;
  running: number;
  desired: number;
  updateState: string;
  /** When the current update/rollback started (ms), 0 if none. */
  updateStartedAt: number;
  staleTasks: number;
  failures: number;
  lastError: string;
}

/** Stable JSON with empty values (null, [], {}) dropped, so daemon-side defaults do not differ. */
function canonical(x: unknown): string {
  if (Array.isArray(x)) return x.length === 0 ? '' : `[${x.map(canonical).join(',')}]`;
  if (x !== null && typeof x === 'object') {
    const d = x as Dict;
    const parts = Object.keys(d)
      .sort()
      .map((k) => [k, canonical(d[k])] as const)
      .filter(([, v]) => v !== '')
      .map(([k, v]) => `${JSON.stringify(k)}:${v}`);
    return parts.length === 0 ? '' : `{${parts.join(',')}}`;
  }
  return x === null || x === undefined ? '' : JSON.stringify(x);
}

/** The parts of a container spec that a rolling update replaces tasks for. */
const SPEC_FIELDS = ['Image', 'Command', 'Args', 'Env', 'Labels', 'Dir', 'User', 'Mounts', 'Healthcheck', 'Secrets', 'Configs'];

function specFingerprint(containerSpec: unknown): string {
  const d = dict(containerSpec);
  const env = Array.isArray(d.Env) ? [...(d.Env as unknown[])].map(String).sort() : d.Env;
  return canonical(Object.fromEntries(SPEC_FIELDS.map((k) => [k, k === 'Env' ? env : d[k]])));
}

async function serviceState(svc: Dict, replicas: string, since: number): Promise<ServiceState> {
  const spec = dict(svc.Spec);
  const name = str(spec.Name) ?? '';
  const m = /^(\d+)\/(\d+)/.exec(replicas);
  const running = m ? Number(m[1]) : 0;
  const desired = m ? Number(m[2]) : 1;
  const updateState = str(dict(svc.UpdateStatus).State) ?? '';
  const updateStartedAt = Date.parse(str(dict(svc.UpdateStatus).StartedAt) ?? '') || 0;
  const wantContainer = specFingerprint(dict(spec.TaskTemplate).ContainerSpec);
  const tasks = await inspect(await serviceTaskIds(name), 'task');
  let staleTasks = 0;
  let failures = 0;
  let lastError = '';
  let lastErrorAt = 0;
  for (const t of tasks) {
    const status = dict(t.Status);
    const state = str(status.State) ?? '';
    const desiredState = str(t.DesiredState) ?? '';
    const created = Date.parse(str(t.CreatedAt) ?? '') || 0;
    if (desiredState === 'running' && state === 'running' && specFingerprint(dict(t.Spec).ContainerSpec) !== wantContainer) staleTasks++;
    if ((state === 'failed' || state === 'rejected') && created >= since - 2000) {
      failures++;
      const at = Date.parse(str(status.Timestamp) ?? '') || created;
      if (at >= lastErrorAt) {
        lastErrorAt = at;
        lastError = str(status.Err) ?? str(status.Message) ?? state;
      }
    }
  }
  return { name, running, desired, updateState, updateStartedAt, staleTasks, failures, lastError };
}

function converged(s: ServiceState): boolean {
  return s.running === s.desired && s.staleTasks === 0 && !BLOCKING_UPDATE_STATES.has(s.updateState);
}

function describe(s: ServiceState): string {
  const parts = [`${s.running}/${s.desired}`];
  if (s.updateState !== '') parts.push(`update ${s.updateState}`);
  if (s.staleTasks > 0) parts.push(`${s.staleTasks} task(s) from an older spec still running`);
  if (s.lastError !== '') parts.push(`last task error: ${s.lastError}`);
  return `${s.name} (${parts.join(', ')})`;
}

export async function waitForConvergence(stack: string, timeoutSeconds: number, since: number): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  log.info(`waiting up to ${timeoutSeconds}s for ${stack} to converge`);
  let okStreak = 0;
  for (;;) {
    const rows = await stackServices(stack);
    const byName = new Map(rows.map((r) => [r.name, r.replicas]));
    const services = await inspect(
      rows.map((r) => r.id),
      'service',
    );
    const states: ServiceState[] = [];
    for (const svc of services) {
      states.push(await serviceState(svc, byName.get(str(dict(svc.Spec).Name) ?? '') ?? '', since));
    }
    const failing = states.filter((s) => s.failures >= FAILED_TASKS_LIMIT && !converged(s));
    if (failing.length > 0) {
      fatal(`deploy failed: ${failing.map((s) => `${s.name}: ${s.failures} tasks failed, last error: ${s.lastError}`).join('; ')}`);
    }
    // a rollback left over from an earlier deploy does not count, only one that started since
    const rollback = states.filter((s) => (s.updateState === 'rollback_completed' || s.updateState === 'rollback_paused') && s.updateStartedAt >= since - 2000);
    const allOk = states.length > 0 && states.every(converged);
    okStreak = allOk ? okStreak + 1 : 0;
    // two consecutive good polls: a rolling update may not have started on the first one
    if (okStreak >= 2) {
      if (rollback.length > 0) fatal(`deploy failed: rolled back: ${rollback.map(describe).join('; ')}`);
      log.info(`${stack} converged`);
      return;
    }
    if (Date.now() >= deadline) {
      const pending = states.filter((s) => !converged(s));
      fatal(
        `deploy timed out after ${timeoutSeconds}s; services not converged: ${(pending.length > 0 ? pending : states).map(describe).join('; ') || 'no services found'}`,
      );
    }
    await sleep(1000);
  }
}

export function timeoutFromLabels(stack: string, labels: Record<string, string>): number {
  const raw = labels[`coop-cloud.${stack}.timeout`];
  if (raw === undefined || raw.trim() === '') return DEFAULT_TIMEOUT_SECONDS;
  const n = Number.parseInt(raw.trim(), 10);
  if (!Number.isFinite(n) || n <= 0) {
    log.warn(`ignoring invalid timeout label coop-cloud.${stack}.timeout=${raw}; using ${DEFAULT_TIMEOUT_SECONDS}s`);
    return DEFAULT_TIMEOUT_SECONDS;
  }
  return n;
}
