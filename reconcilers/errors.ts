import type { ProcessResult } from '../controller/clients/process.js';

/**
 * The error catalogue: every way an attempt can end other than passing, as a class, and how an
 * external call's failure becomes one of them. The Run reconciler turns each into a verdict
 * (docs/architecture.md, "Verdicts").
 */

/** The recipe failed a check: the tier fails, the run's verdict is `failed`. */
export class TestFailure extends Error {}
/** The run's input is wrong (unknown ref, bad settings, a repository that does not exist). */
export class InputError extends Error {}
/** The recipe's compose configuration would hand the host to its stack (compose-policy.ts):
 *  nothing is deployed, the verdict is `error`, the reason names each service and key. */
export class PolicyRefusal extends InputError {}
/** The run was cancelled (spec deleted, `cc-ci delete run`, superseded). */
export class CancelledError extends Error {}
/** The run or a tier ran out of time. */
export class DeadlineError extends Error {}
/**
 * One external call (abra, docker, git) did not return within its own time limit and was
 * killed. The message names the tier it hung in. A hung tool is infrastructure, not the
 * recipe's verdict: the run ends `error` (not retried: a second try would hang as long).
 */
export class CallTimeoutError extends DeadlineError {}
/**
 * An external call was killed by a signal cc-ci did not send (the OOM killer, an operator, a
 * crash of the tool): infrastructure. The attempt is torn down and retried from a clean slate,
 * within maxAttempts, the reason on record.
 */
export class CallKilledError extends Error {}
/**
 * The swarm itself failed the app (a task rejected for a Docker networking fault, not for
 * anything in the recipe): infrastructure. The attempt is torn down and retried from a clean
 * slate, within maxAttempts, the reason on record.
 */
export class SwarmFaultError extends Error {}
/** The controller is shutting down: the attempt is interrupted, not failed; the next start
 *  tears it down and tries again. */
export class ShutdownError extends Error {}

function resultOf(e: unknown): ProcessResult | null {
  const r = e instanceof Error ? (e as { result?: unknown }).result : undefined;
  if (!r || typeof r !== 'object') return null;
  const p = r as Partial<ProcessResult>;
  return typeof p.command === 'string' && typeof p.timedOut === 'boolean' ? (p as ProcessResult) : null;
}

/** `abra app deploy`, `docker service ls`, `git clone`: the program and its subcommand words. */
export function shortCommand(command: string): string {
  const [bin = '', ...args] = command.split(' ');
  const words = [bin.split('/').pop() ?? bin];
  for (const a of args) {
    if (!/^[a-z][a-z-]*$/.test(a) || words.length >= 3) break;
    words.push(a);
  }
  return words.join(' ');
}

/**
 * Tells an external call that did not end on its own from one that answered: a call that ran
 * out of its own time limit becomes a CallTimeoutError naming where the run was, one killed by a
 * signal nobody in cc-ci sent a CallKilledError. Anything else (abra's FATA, docker refusing) is
 * left as it is, for the caller to judge. `what` names the call when the caller knows better.
 */
export function callFault(e: unknown, what: string | null, where: string): CallTimeoutError | CallKilledError | null {
  if (e instanceof CallTimeoutError || e instanceof CallKilledError) return e;
  const r = resultOf(e);
  if (!r || r.aborted) return null;
  const call = what && /^(abra|docker|git) /.test(what) ? what : shortCommand(r.command);
  if (r.timedOut) {
    const limit = Number(((r.timeoutMs ?? r.durationMs) / 1000).toFixed(1));
    return new CallTimeoutError(`timed out in ${where}: ${call} did not return within ${limit}s (its call timeout) and was killed`);
  }
  if (r.signal) return new CallKilledError(`infrastructure: ${call} was killed by ${r.signal} in ${where} (not by cc-ci)`);
  return null;
}
