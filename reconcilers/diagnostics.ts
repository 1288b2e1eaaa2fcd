import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceState } from '../controller/clients/docker.js';
import { serviceConverged } from './app-state.js';
import type { RunContext } from './context.js';

/**
 * What a maintainer needs when an app does not converge: each service's tasks, last task error
 * and log tail — in the tier's reason (short) and in the run's evidence (whole). Also tells a
 * task Docker's own networking rejected from the recipe's fault.
 */

/** Where the diagnostics of a stack go in the run's evidence. */
export function diagnosticsFile(ctx: Pick<RunContext, 'dir'>, stack: string): string {
  return join(ctx.dir, 'evidence', `diagnostics-${stack}.txt`);
}

/**
 * Task errors that come from Docker's own networking, whatever the recipe says: overlay
 * networks created and removed in quick succession can leave a stale vxlan interface behind,
 * and the tasks of the next stack given that subnet are rejected (moby/libnetwork#1765).
 */
const SWARM_FAULTS = /network sandbox join failed|error creating vxlan interface|subnet sandbox join failed/;

export interface Diagnosis {
  /** For the tier's reason: each unconverged service, its task state, last error and log tail. */
  summary: string;
  /** The first unconverged service whose tasks were rejected for a Docker fault, if any. */
  swarmFault: { service: string; error: string } | null;
}

/** Which services did not converge, their last task errors and the tail of their logs. The
 *  full text — every service of the stack, the unconverged first — goes to the run's evidence
 *  (and, unless quiet, to its log); the summary goes into the tier's reason. */
export async function diagnose(
  ctx: Pick<RunContext, 'docker' | 'dir' | 'redactor' | 'log'>,
  stack: string,
  services: ServiceState[],
  o: { quiet?: boolean } = {},
): Promise<Diagnosis> {
  const isBad = (s: ServiceState) => !serviceConverged(s);
  const bad = services.filter(isBad);
  const summaries: string[] = [];
  let swarmFault: Diagnosis['swarmFault'] = null;
  const full: string[] = [`# ${stack} at ${new Date().toISOString()}: ${services.length} service(s), ${bad.length} not converged`];
  if (services.length === 0) full.push('no service of the stack exists');
  for (const s of [...bad, ...services.filter((x) => !isBad(x))]) {
    const tasks = await ctx.docker.serviceTasks(s.name).catch(() => []);
    const lastError = tasks.find((t) => t.error)?.error ?? '';
    const state = tasks[0]?.currentState ?? 'no task';
    const logs = await ctx.docker.serviceLogsTail(s.name, 20).catch(() => '');
    if (isBad(s)) {
      const rejected = tasks.find((t) => SWARM_FAULTS.test(t.error));
      if (rejected) swarmFault ??= { service: s.name, error: rejected.error };
      const logTail = logs.split('\n').filter(Boolean).slice(-3).join(' | ');
      summaries.push(
        `${s.name} ${s.running}/${s.desired}${s.updateState ? ` (update ${s.updateState})` : ''}, task ${state}` +
          `${lastError ? `, last task error: ${lastError}` : ''}${logTail ? `, log tail: ${logTail}` : ''}`,
      );
    }
    full.push(`== ${s.name} ${s.running}/${s.desired} update=${s.updateState || 'none'}${isBad(s) ? ' NOT CONVERGED' : ''}`);
    full.push(`last task error: ${lastError || 'none'}`);
    for (const t of tasks.slice(0, 10)) full.push(`task ${t.name} desired=${t.desiredState} current=${t.currentState} error=${t.error}`);
    full.push('-- log tail (last 20 lines)', logs || '(no output)');
  }
  mkdirSync(join(ctx.dir, 'evidence'), { recursive: true });
  writeFileSync(diagnosticsFile(ctx, stack), ctx.redactor.apply(full.join('\n')) + '\n');
  if (!o.quiet) for (const line of full) ctx.log('err', ctx.redactor.apply(line).slice(0, 2000));
  const summary = services.length === 0 ? 'no service of the stack exists' : summaries.length ? summaries.join('; ') : 'every service converged';
  return { summary, swarmFault };
}
