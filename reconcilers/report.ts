import { createHash } from 'node:crypto';
import type { BotIdentity } from '../controller/clients/forge/bot.js';
import { ForgeError, type ForgeClient, type RepoRef } from '../controller/clients/forge/client.js';
import { renderComment, renderStatus, reportMarker, statusContext, type ReportView } from '../controller/clients/forge/report-text.js';
import type { Logger } from '../controller/model/log.js';
import { acceptedSpec } from '../controller/model/spec.js';
import { aborted, type Runnable } from '../controller/engine/runnable.js';
import { WorkQueue } from '../controller/engine/workqueue.js';
import type { ForgeStore } from '../state/forge-store.js';
import type { Store } from '../state/store.js';
import type { RunRecord } from '../state/types.js';

/**
 * The forge reporter (Prow's crier). Level-triggered and idempotent: for every run started from a
 * forge comment, the desired forge state is
 *   - a 👀 reaction on the trigger comment once the run is accepted,
 *   - ONE PR comment, edited in place: queued (with queue position) → running → the verdict,
 *   - one commit status per lane on the tested commit: pending → success / failure / error,
 * and what was last reported is stored (forge_reports), so each pass only does what is missing and
 * a restart never posts twice. Our comment carries a hidden marker: if its id was never stored (a
 * create that timed out but arrived, a crash before the write), the next pass finds and adopts it.
 *
 * Triggers: every change of a run in this process (a run leaving the queue also brings every run
 * still queued, whose position moved), and a resync timer that also catches up with a forge that
 * was down. No run waits for it (Prow's crier): a run reaches Done on its own, and a verdict the
 * forge would not take is tried with the queue's backoff a few times, then marked failed and left to
 * the resync.
 */

export interface ForgeTarget {
  owner: string;
  repo: string;
  pr: number;
  comment: number | null;
  by: string | null;
  sha: string | null;
}

export interface ForgeReporterDeps {
  store: Store;
  forgeStore: ForgeStore;
  client: Pick<ForgeClient, 'editComment' | 'listIssueComments' | 'listCommitStatuses'>;
  /**
   * Single-attempt client for the writes that add something: a write that timed out may have
   * happened, so it is never repeated in the same breath. The next pass looks first (the comment
   * by its marker, the status by listing the commit's statuses); a reaction is safe to post again
   * because the forge answers a repeat with 200 and adds nothing.
   */
  createClient: Pick<ForgeClient, 'createComment' | 'createCommitStatus' | 'addCommentReaction'>;
  bot: BotIdentity;
  logger: Logger;
  runUrl(name: string): string;
  resyncSeconds: number;
  /** Attempts of the final report inside the Reporting phase (default 3). */
  finalAttempts?: number;
  finalBackoffMs?: number;
  onReport?: (outcome: 'ok' | 'error') => void;
}

/** A run that finished this long ago without its verdict on the forge is no longer chased. */
const GIVE_UP_AFTER_MS = 7 * 24 * 3600 * 1000;

export function forgeTarget(run: RunRecord): ForgeTarget | null {
  const spec = acceptedSpec(run);
  const t = spec.spec.trigger;
  if (t?.kind !== 'comment' || !t.forge) return null;
  return {
    owner: t.forge.owner,
    repo: t.forge.repo,
    pr: t.forge.pr,
    comment: t.forge.comment ?? null,
    by: t.forge.by ?? null,
    sha: t.forge.sha ?? run.commitSha,
  };
}

/**
 * The verdict is known once the last tier has ended and the run went to teardown without a retry
 * pending (docs/architecture.md, A run): it is reported then, not after teardown.
 */
export function verdictKnown(run: RunRecord): boolean {
  if (run.phase === 'Reporting' || run.phase === 'Done') return true;
  return run.phase === 'TearingDown' && !run.retryPending && run.result !== null;
}

function isFinalRefusal(e: unknown): e is ForgeError {
  return e instanceof ForgeError && e.lastingRefusal;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class ForgeReporter implements Runnable {
  readonly name = 'forge reporter';
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly queue: WorkQueue;
  /** Failed passes of each run since its last good one: after `finalAttempts` the resync takes over. */
  private readonly failures = new Map<string, number>();
  /** Whoever waits for a run's verdict to be out (or given up for now). */
  private readonly waiters = new Map<string, (() => void)[]>();
  /** Forge runs whose PR comment last showed them queued: their position moves when one leaves. */
  private readonly queued = new Set<string>();
  private readonly onRun = (name: string): void => {
    this.queue.add(name);
    // A run that leaves the queue (admitted, cancelled, deleted) moves every run behind it up one.
    if (!this.queued.has(name)) return;
    const run = this.deps.store.getRun(name);
    if (run?.phase === 'Pending' && !run.cancelRequested) return;
    this.queued.delete(name);
    for (const other of this.queued) this.queue.add(other);
  };

  constructor(private readonly deps: ForgeReporterDeps) {
    this.queue = new WorkQueue({
      concurrency: 4,
      // One backoff policy, the queue's: a failed pass is tried again after it.
      baseBackoffMs: deps.finalBackoffMs ?? 2_000,
      maxBackoffMs: 60_000,
      reconcile: async (name) => this.reconcile(name),
      onError: (name, e, retryInMs) => this.deps.logger.warn({ run: name, error: message(e), retryInMs }, 'forge report failed; will retry'),
    });
  }

  /** Every change of a run is a hint to look at it; a resync catches up with a forge that was down. */
  async start(signal: AbortSignal, ready: () => void): Promise<void> {
    this.deps.store.changes.on('run', this.onRun);
    this.resync();
    const timer = setInterval(() => this.resync(), this.deps.resyncSeconds * 1000);
    timer.unref();
    ready();
    await aborted(signal);
    clearInterval(timer);
    this.deps.store.changes.off('run', this.onRun);
    await this.queue.shutdown();
    for (const name of [...this.waiters.keys()]) this.release(name);
  }

  /** Every run whose final state is not on the forge yet gets another look. */
  resync(): void {
    for (const name of this.deps.forgeStore.runsToReport(GIVE_UP_AFTER_MS)) this.queue.add(name);
  }

  /**
   * Resolves when the run's verdict is on the forge, or when `finalAttempts` passes in a row
   * failed (the report is then marked failed and the resync keeps trying). The run's lifecycle
   * does not wait for this: it is for whoever wants to know.
   */
  reportFinal(run: RunRecord): Promise<void> {
    if (!forgeTarget(run)) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.set(run.name, [...(this.waiters.get(run.name) ?? []), resolve]);
      this.queue.add(run.name);
    });
  }

  private release(name: string): void {
    for (const w of this.waiters.get(name) ?? []) w();
    this.waiters.delete(name);
  }

  /** One pass over one run, as the reporter's controller runs it: a failure is retried with the
   *  queue's backoff until `finalAttempts` in a row have failed; then the resync takes over. */
  private async reconcile(name: string): Promise<void> {
    try {
      await this.locked(name, () => this.sync(name));
      this.failures.delete(name);
      if (this.deps.forgeStore.getReport(name)?.final || !this.deps.store.getRun(name)) this.release(name);
    } catch (e) {
      this.deps.onReport?.('error');
      const attempt = (this.failures.get(name) ?? 0) + 1;
      this.failures.set(name, attempt);
      const run = this.deps.store.getRun(name);
      if (run) this.deps.forgeStore.updateReport(name, { attempts: attempt, lastError: message(e) });
      if (attempt < (this.deps.finalAttempts ?? 3)) throw e;
      this.failures.delete(name);
      if ((run?.phase === 'Reporting' || run?.phase === 'Done') && !this.deps.forgeStore.getReport(name)?.failed) {
        this.deps.forgeStore.updateReport(name, { failed: true });
        this.deps.store.appendEvent(name, 'warn', `could not report the verdict to the forge (${message(e)}); cc-ci keeps trying in the background`);
        this.deps.logger.warn({ run: name, error: message(e) }, 'final forge report failed; the resync keeps trying');
      }
      this.release(name);
    }
  }

  /** Serialises passes per run: two passes at once could both create the comment. */
  private locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }

  /** One level-triggered pass over one run. Throws on a forge failure (the caller retries). */
  async sync(name: string): Promise<void> {
    const { store, forgeStore, createClient } = this.deps;
    const run = store.getRun(name);
    const target = run ? forgeTarget(run) : null;
    if (!run || !target) return;
    const rep = forgeStore.ensureReport(name);
    if (rep.final) return;
    const ref: RepoRef = { owner: target.owner, repo: target.repo };
    const view = this.viewOf(run, target);
    // Known as queued from the moment its position is read: a run that leaves the queue while this
    // pass is still talking to the forge queues this run again (the work queue runs it once more).
    if (view.stage === 'queued') this.queued.add(name);
    else this.queued.delete(name);

    // The reaction and the status are niceties next to the comment: a forge that refuses one of
    // them for good (a 4xx: the comment deleted, the reaction or status not allowed) must not keep
    // the rest of the report from going out.
    const trigger = target.comment;
    if (trigger !== null && rep.reaction === 'pending') {
      const done = await this.unlessRefused(name, 'the 👀 reaction on the trigger comment', () => createClient.addCommentReaction(ref, trigger, 'eyes'));
      forgeStore.updateReport(name, { reaction: done ? 'done' : 'given-up' });
    }

    const body = renderComment(view);
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
    if (rep.commentHash !== hash) {
      const put = await this.unlessRefused(name, `the ${view.stage} PR comment`, () => this.putComment(ref, target.pr, name, rep.commentId, body));
      // Refused: this text is done with (not asked again); the next stage's text tries again.
      forgeStore.updateReport(name, put ? { commentId: put.value, commentHash: hash, commentStage: view.stage } : { commentHash: hash });
      if (put && view.stage === 'verdict') this.deps.logger.info({ run: name, result: view.result, phase: run.phase }, 'verdict reported to the forge');
    }

    if (target.sha) {
      const status = renderStatus(view);
      const key = `${status.state}|${status.description}`;
      if (rep.statusKey !== key) {
        // A newer run of the same lane on the same commit owns the context now: a late "cancelled"
        // from the superseded run must not cover its "pending".
        if (!this.newerRunOnSameCommit(run, target)) {
          const sha = target.sha;
          const wanted = { state: status.state, context: statusContext(run.lane), description: status.description, targetUrl: this.deps.runUrl(name) };
          // After a failed pass the last POST may have arrived: look before writing it again.
          const already = rep.lastError !== null && (await this.statusIsOn(ref, sha, wanted));
          if (!already) {
            await this.unlessRefused(name, `the ${wanted.context} commit status "${wanted.description}"`, () =>
              createClient.createCommitStatus(ref, sha, wanted),
            );
          }
        }
        // Given up or posted, this status is done with; the next change of the run tries again.
        forgeStore.updateReport(name, { statusKey: key });
      }
    }
    // Final once teardown is over: until then a teardown that fails may still add its note.
    if (view.stage === 'verdict' && (run.phase === 'Reporting' || run.phase === 'Done')) {
      forgeStore.updateReport(name, { final: true, failed: false, lastError: null });
      this.deps.onReport?.('ok');
    }
  }

  /**
   * Runs one forge call; its answer when it went through. A refusal that asking again will not
   * change (a 4xx other than 401 and 429) is recorded in the run's log and answers null; anything
   * else (5xx, timeouts, a bad token, rate limits) throws, so the pass is retried.
   */
  private async unlessRefused<T>(run: string, what: string, call: () => Promise<T>): Promise<{ value: T } | null> {
    try {
      return { value: await call() };
    } catch (e) {
      if (!isFinalRefusal(e)) throw e;
      this.deps.store.appendEvent(run, 'warn', `the forge refused ${what} (${e.status ?? ''}: ${e.message}); cc-ci does not ask again and reports the rest`);
      this.deps.logger.warn({ run, status: e.status, error: e.message }, `forge refused ${what}; given up, the rest of the report goes on`);
      return null;
    }
  }

  /** Edits our comment, or finds it by its marker, or creates it. Returns its id. */
  private async putComment(ref: RepoRef, pr: number, run: string, known: number | null, body: string): Promise<number> {
    const { client, createClient } = this.deps;
    const id = known ?? (await this.findOwnComment(ref, pr, run));
    if (id !== null) {
      try {
        await client.editComment(ref, id, body);
        return id;
      } catch (e) {
        // Someone deleted our comment: post a new one rather than stay silent.
        if (!(e instanceof ForgeError && e.status === 404)) throw e;
      }
    }
    return (await createClient.createComment(ref, pr, body)).id;
  }

  /** Whether the newest status of `wanted.context` on the commit is `wanted` already. */
  private async statusIsOn(ref: RepoRef, sha: string, wanted: { state: string; context: string; description: string; targetUrl: string }): Promise<boolean> {
    const { items } = await this.deps.client.listCommitStatuses(ref, sha, { sort: 'highestindex', limit: 50 });
    const newest = items.find((s) => s.context === wanted.context);
    return newest !== undefined && newest.state === wanted.state && newest.description === wanted.description && newest.targetUrl === wanted.targetUrl;
  }

  private async findOwnComment(ref: RepoRef, pr: number, run: string): Promise<number | null> {
    return (await this.deps.bot.findOwnComment(this.deps.client, ref, pr, reportMarker(run)))?.id ?? null;
  }

  private newerRunOnSameCommit(run: RunRecord, target: ForgeTarget): boolean {
    return this.deps.store.runsCreatedSince(run.createdAt).some((other) => {
      if (other.name === run.name || other.lane !== run.lane || other.createdAt < run.createdAt) return false;
      if (other.createdAt === run.createdAt && other.name < run.name) return false;
      const t = forgeTarget(other);
      return t !== null && t.sha === target.sha && t.owner.toLowerCase() === target.owner.toLowerCase() && t.repo.toLowerCase() === target.repo.toLowerCase();
    });
  }

  private viewOf(run: RunRecord, target: ForgeTarget): ReportView {
    const stage = run.phase === 'Pending' ? 'queued' : verdictKnown(run) ? 'verdict' : 'running';
    // The same queue rules as the run pages (controller/views/run-view.ts).
    const pending = stage === 'queued' ? this.deps.store.listRuns({ phases: ['Pending'] }).filter((r) => !r.cancelRequested) : [];
    const position = pending.findIndex((r) => r.name === run.name);
    const end = run.teardownStartedAt ?? run.finishedAt;
    return {
      run: run.name,
      recipe: run.recipe,
      lane: run.lane,
      laneNote: run.laneNote,
      rerun: rerunOf(run),
      sha: target.sha,
      by: target.by,
      stage,
      queuePosition: position >= 0 ? position + 1 : null,
      waiting: position >= 0 ? (run.waitingReason ?? 'waiting for the controller to admit it') : null,
      result: stage === 'verdict' ? (run.result ?? 'error') : null,
      reason: run.reason,
      tiers: stage === 'verdict' ? this.deps.store.getTiers(run.name) : [],
      testedMs: run.startedAt !== null && end !== null ? end - run.startedAt : null,
      runUrl: this.deps.runUrl(run.name),
      teardownProblem: run.teardownProblem,
    };
  }
}

/** What a failed-tiers rerun reruns, from its spec. */
function rerunOf(run: RunRecord): ReportView['rerun'] {
  const spec = acceptedSpec(run).spec;
  return spec.rerun?.tiers === 'failed' ? { of: spec.rerun.of, tiers: spec.tiers ?? [] } : null;
}
