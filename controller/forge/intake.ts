import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { CommentDecision, CommentRecord, ForgeStore } from '../../state/forge-store.js';
import type { Store } from '../../state/store.js';
import type { Logger } from '../model/log.js';
import type { StatePaths } from '../model/paths.js';
import { specFilePath, writeSpecFile } from '../model/spec-files.js';
import { validateSpec, type RunSpecInput } from '../model/spec.js';
import type { BotIdentity } from '../clients/forge/bot.js';
import { ForgeError, type ForgeClient, type RepoRef } from '../clients/forge/client.js';
import type { EnrolledRepo, EnrolledRepos } from './enrolled.js';
import { replyMarker, replyText, type ReplyKind } from './replies.js';
import { parseTrigger, type TriggerLane } from './trigger.js';
import { rerunPlan } from '../runtime/run-actions.js';
import { RunHistory } from '../../state/history.js';
import type { TierName } from '../../state/types.js';
import { isFromBot, type PrCommentCreated } from './webhook.js';

/**
 * The intake (Prow's trigger plugin): a new PR comment, from a webhook or the poller, becomes a
 * decision — start a run (a spec file in <state>/specs/), answer once with help or a polite
 * refusal, or ignore it. The comment's row in forge_comments is written before any decision, so
 * the same comment never makes two runs or two replies, and the spec name comes from the comment
 * id, so even a lost row cannot make a second run.
 */

/** A created comment on a pull request, whichever way it arrived. */
export interface CommentEvent {
  via: 'webhook' | 'poll';
  delivery: string | null;
  owner: string;
  repo: string;
  pr: number;
  commentId: number;
  body: string;
  commenter: string;
  sender: string;
  /** Null when the pull request is still to be read (poll mode: the intake reads it when deciding). */
  prState: 'open' | 'closed' | null;
  /** The PR head when the comment was made (webhook) or read (poll): what the run tests. Null: read it. */
  headSha: string | null;
  /** The PR head repository's clone URL (a fork's, for a PR from a fork); null if it is gone. */
  cloneUrl: string | null;
  /**
   * When the forge says the comment was created (poll mode: what the head is checked against;
   * a webhook brings the head itself). Null or absent: unknown.
   */
  commentedAt?: string | null;
}

const eventSchema = z.object({
  via: z.enum(['webhook', 'poll']),
  delivery: z.string().nullable(),
  owner: z.string(),
  repo: z.string(),
  pr: z.number().int(),
  commentId: z.number().int(),
  body: z.string(),
  commenter: z.string(),
  sender: z.string(),
  prState: z.enum(['open', 'closed']).nullable(),
  headSha: z.string().nullable(),
  cloneUrl: z.string().nullable(),
  commentedAt: z.string().nullable().default(null),
});

export function eventFromWebhook(d: PrCommentCreated): CommentEvent {
  return {
    via: 'webhook',
    delivery: d.delivery,
    owner: d.owner,
    repo: d.repo,
    pr: d.pr,
    commentId: d.commentId,
    body: d.body,
    commenter: d.commenter,
    sender: d.sender,
    prState: d.prState,
    headSha: d.headSha,
    cloneUrl: d.cloneUrl,
  };
}

export type IntakeOutcome =
  { kind: 'run'; run: string } | { kind: 'replied'; reply: ReplyKind } | { kind: 'ignored'; reason: string } | { kind: 'deferred'; error: string };

export interface IntakeDeps {
  store: Store;
  forgeStore: ForgeStore;
  paths: StatePaths;
  repos: EnrolledRepos;
  allowList: readonly string[];
  /** Retrying client: reads, permission checks. */
  client: Pick<ForgeClient, 'getCollaboratorPermission' | 'listIssueComments' | 'getPullRequest' | 'listPullPushes'>;
  /** Single-attempt client for creating comments: a retried create after a timeout can duplicate. */
  createClient: Pick<ForgeClient, 'createComment'>;
  bot: BotIdentity;
  logger: Logger;
  onOutcome?: (outcome: IntakeOutcome) => void;
  /** When a deferred decision or an unposted reply is tried again (default: DEFAULT_INTAKE_RETRY). */
  retry?: IntakeRetry;
}

/**
 * Deferred decisions and unposted replies are retried with exponential backoff: `firstDelayMs`
 * after the first failure, doubling up to `maxDelayMs`, until the delays add up to `horizonMs`.
 * Then the intake gives up: a decision becomes `error` and the commenter gets one reply saying so.
 */
export interface IntakeRetry {
  firstDelayMs: number;
  maxDelayMs: number;
  horizonMs: number;
}

/** A forge down for up to a day still gets its `!testme` answered (the reporter chases a week). */
export const DEFAULT_INTAKE_RETRY: IntakeRetry = { firstDelayMs: 20_000, maxDelayMs: 30 * 60_000, horizonMs: 24 * 3600_000 };

/** How long after its `attempts`-th failure a comment is tried again. */
export function intakeRetryDelayMs(attempts: number, r: IntakeRetry = DEFAULT_INTAKE_RETRY): number {
  if (attempts <= 0) return 0;
  return Math.min(r.maxDelayMs, r.firstDelayMs * 2 ** Math.min(attempts - 1, 40));
}

/** The failures after which the intake gives up: the first count whose delays cover the horizon. */
export function maxIntakeAttempts(r: IntakeRetry = DEFAULT_INTAKE_RETRY): number {
  let waited = 0;
  let n = 0;
  while (waited < r.horizonMs && n < 10_000) waited += intakeRetryDelayMs(++n, r);
  return Math.max(1, n);
}

export const MAX_INTAKE_ATTEMPTS = maxIntakeAttempts();

/** Decisions whose detail starts with the reply they need (the decision alone does not say). */
const TAGGED_REPLIES: readonly ReplyKind[] = ['cannot-check', 'no-source', 'unreadable', 'gave-up', 'moved', 'pushed', 'unpinned', 'no-rerun'];

/** The reply a decided comment is owed, from its stored decision and detail. */
export function replyKindOf(rec: Pick<CommentRecord, 'decision' | 'detail'>): ReplyKind | null {
  const tagged = TAGGED_REPLIES.find((k) => rec.detail?.startsWith(`${k}:`));
  if (tagged) return tagged;
  if (rec.decision === 'help' || rec.decision === 'denied' || rec.decision === 'closed') return rec.decision;
  return rec.decision === 'error' ? 'gave-up' : null;
}

/** A pull request the forge will not show however often it is asked: a lasting 4xx, or an
 *  answer that does not read as a pull request. */
function isFinalRefusal(e: unknown): e is ForgeError {
  return e instanceof ForgeError && (e.kind === 'invalid-response' || e.lastingRefusal);
}

const WRITE_OR_ABOVE = new Set(['write', 'admin', 'owner']);

/** The forge's access mode that lets a person trigger a run, or act on one (docs/security.md):
 *  write or above on the recipe's repository. */
export function grantsWrite(mode: string): boolean {
  return WRITE_OR_ABOVE.has(mode);
}

/** The operator's allow-list, compared as the forge compares logins: case-insensitively. */
export function onAllowList(allowList: readonly string[], login: string): boolean {
  const wanted = login.toLowerCase();
  return allowList.some((u) => u.toLowerCase() === wanted);
}

/** The timeline since one comment: a page of the forge's default size, a few pages at most. */
const TIMELINE_PAGE_SIZE = 50;
const TIMELINE_MAX_PAGES = 10;

/** A run name from the comment: the same comment always names the same run (≤ 63, [a-z0-9-]). */
export function runNameFor(recipe: string, pr: number, commentId: number): string {
  const suffix = `-pr${pr}-c${commentId}`;
  const head = recipe.slice(0, Math.max(0, 63 - suffix.length)).replace(/-+$/, '');
  return `${head || 'run'}${suffix}`;
}

export class Intake {
  /** Comments being decided right now: a webhook and the poller may bring the same one at once. */
  private readonly inFlight = new Set<number>();
  private readonly pending = new Set<Promise<unknown>>();

  private readonly retry: IntakeRetry;
  private readonly maxAttempts: number;

  constructor(private readonly deps: IntakeDeps) {
    this.retry = deps.retry ?? DEFAULT_INTAKE_RETRY;
    this.maxAttempts = maxIntakeAttempts(this.retry);
  }

  /**
   * The webhook's synchronous half, before it answers: the delivery id and, for a command on an
   * enrolled repository, the comment's row (no decision yet) are written in one transaction. A
   * crash after the answer loses nothing: the retry loop finds the row and decides it. Returns
   * false for a delivery id seen before.
   */
  accept(event: CommentEvent): boolean {
    const claim = this.deps.repos.lookup(event.owner, event.repo) && parseTrigger(event.body).kind !== 'none' ? this.claimOf(event) : null;
    return this.deps.forgeStore.acceptDelivery(event.delivery, event.commentId, claim);
  }

  private claimOf(event: CommentEvent) {
    return { commentId: event.commentId, owner: event.owner, repo: event.repo, pr: event.pr, via: event.via, eventJson: JSON.stringify(event) };
  }

  /** Decides one comment. Never throws: a forge that does not answer defers the decision. */
  handle(event: CommentEvent): Promise<IntakeOutcome> {
    const p = this.decide(event).then((outcome) => {
      this.deps.onOutcome?.(outcome);
      return outcome;
    });
    this.track(p);
    return p;
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    // The derived promise must not turn a rejection into an unhandled one; callers see `p` itself.
    p.finally(() => this.pending.delete(p)).catch(() => undefined);
  }

  /**
   * True when the intake knows the comment already: decided, being decided, or waiting for its
   * retry (the retry loop owns it then). The poller skips those without a forge call.
   */
  seen(commentId: number): boolean {
    return this.inFlight.has(commentId) || this.deps.forgeStore.getComment(commentId) !== undefined;
  }

  /** Waits for decisions in flight (graceful stop). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private log(event: CommentEvent, outcome: IntakeOutcome): IntakeOutcome {
    const fields = { repo: `${event.owner}/${event.repo}`, pr: event.pr, comment: event.commentId, by: event.commenter, via: event.via };
    if (outcome.kind === 'deferred') this.deps.logger.warn({ ...fields, error: outcome.error }, 'forge comment: decision deferred (the forge did not answer)');
    else this.deps.logger.info({ ...fields, outcome }, `forge comment: ${outcome.kind}`);
    return outcome;
  }

  private async decide(event: CommentEvent): Promise<IntakeOutcome> {
    const enrolled = this.deps.repos.lookup(event.owner, event.repo);
    if (!enrolled) return this.log(event, { kind: 'ignored', reason: `${event.owner}/${event.repo} is not enrolled (config repos)` });
    const trigger = parseTrigger(event.body);
    if (trigger.kind === 'none') return { kind: 'ignored', reason: 'not a command' };

    const { record, created } = this.deps.forgeStore.claimComment(this.claimOf(event));
    if (!created && (record.decision !== null || this.inFlight.has(event.commentId))) {
      return this.log(event, { kind: 'ignored', reason: `comment already seen (${record.decision ?? 'being decided'})` });
    }
    return this.decideClaimed(event, enrolled);
  }

  private async decideClaimed(given: CommentEvent, enrolled: EnrolledRepo): Promise<IntakeOutcome> {
    const { forgeStore } = this.deps;
    this.inFlight.add(given.commentId);
    try {
      const bot = await this.deps.bot.login();
      if (isFromBot(given, bot)) {
        forgeStore.decideComment(given.commentId, { decision: 'ignored', detail: 'written by cc-ci’s own bot account' });
        return this.log(given, { kind: 'ignored', reason: 'the bot’s own comment' });
      }
      const trigger = parseTrigger(given.body);
      if (trigger.kind === 'none') {
        forgeStore.decideComment(given.commentId, { decision: 'ignored', detail: 'not a command' });
        return { kind: 'ignored', reason: 'not a command' };
      }
      if (trigger.kind === 'help') return await this.refuse(given, 'help', `not a command: ${trigger.got}`);
      const event = await this.withPullRequest(given);
      if (!('headSha' in event)) return event;
      if (event.prState !== 'open') return await this.refuse(event, 'closed', 'the pull request is closed');

      const permission = await this.permission(event);
      if (permission !== 'allowed') {
        return await this.refuse(
          event,
          permission,
          permission === 'cannot-check'
            ? 'cannot-check: the bot may not read collaborator permissions (give it admin)'
            : `${event.commenter} has no write access`,
        );
      }
      if (trigger.pin && !event.headSha.toLowerCase().startsWith(trigger.pin)) {
        // What runs must be what the maintainer looked at: a head that moved is refused, not tested.
        return await this.refuse(event, 'moved', `moved: the comment pins ${trigger.pin}, the head is ${event.headSha}`, 'error');
      }
      if (!trigger.pin && event.via === 'poll') {
        // The head read now is the head at comment time only if nothing was pushed since.
        const moved = await this.pushSinceComment(event);
        if (moved.kind === 'pushed') {
          return await this.refuse(
            event,
            'pushed',
            `pushed: a push at ${moved.at} came after the comment (${event.commentedAt ?? '?'}); the head is now ${event.headSha}`,
            'error',
          );
        }
        if (moved.kind === 'unknown') return await this.refuse(event, 'unpinned', `unpinned: ${moved.why}`, 'error');
      }
      return await this.startRun(event, enrolled, trigger.lane, trigger.failed === true);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      forgeStore.noteCommentFailure(given.commentId, error);
      return this.log(given, { kind: 'deferred', error });
    } finally {
      this.inFlight.delete(given.commentId);
    }
  }

  /**
   * The event with the pull request's head and state. A webhook brings them; a polled comment
   * does not, so the pull request is read now (and the timeline checked for pushes since the comment).
   * A 404 means an issue after all; a refusal for good is an `error` decision with a reply, so one
   * unreadable pull request never holds up anything else. Anything else throws (deferred).
   */
  private async withPullRequest(event: CommentEvent): Promise<(CommentEvent & { headSha: string; prState: 'open' | 'closed' }) | IntakeOutcome> {
    if (event.headSha !== null && event.prState !== null) return { ...event, headSha: event.headSha, prState: event.prState };
    try {
      const pr = await this.deps.client.getPullRequest({ owner: event.owner, repo: event.repo }, event.pr);
      return { ...event, headSha: pr.headSha, prState: pr.state, cloneUrl: pr.cloneUrl };
    } catch (e) {
      if (e instanceof ForgeError && e.status === 404) {
        this.deps.forgeStore.decideComment(event.commentId, { decision: 'ignored', detail: `#${event.pr} is not a pull request` });
        return this.log(event, { kind: 'ignored', reason: 'not a pull request' });
      }
      if (!isFinalRefusal(e)) throw e;
      this.deps.logger.error(
        { repo: `${event.owner}/${event.repo}`, pr: event.pr, comment: event.commentId, status: e.status, error: e.message },
        'forge comment: the forge refused to show the pull request',
      );
      return await this.refuse(event, 'unreadable', `unreadable: cannot read pull request #${event.pr} (${e.message})`, 'error');
    }
  }

  /**
   * Poll mode: was the pull request's head pushed to at or after the comment's creation? Read
   * after the pull request, so a push between the two reads counts as one after the comment. The
   * forge keeps whole seconds, so a push in the comment's own second counts too (refusing it only
   * asks for a second comment; testing it could test what nobody looked at). A forge that cannot
   * show the timeline (404, or a comment without a creation time) cannot tell: pinning still works.
   * Transient failures throw (the decision is deferred).
   */
  private async pushSinceComment(event: CommentEvent): Promise<{ kind: 'none' } | { kind: 'pushed'; at: string } | { kind: 'unknown'; why: string }> {
    const commented = Date.parse(event.commentedAt ?? '');
    if (Number.isNaN(commented)) return { kind: 'unknown', why: 'the forge gave no creation time for the comment' };
    const since = new Date(Math.floor(commented / 1000) * 1000);
    const ref = { owner: event.owner, repo: event.repo };
    try {
      for (let page = 1; page <= TIMELINE_MAX_PAGES; page++) {
        const { pushes, rows } = await this.deps.client.listPullPushes(ref, event.pr, { since, page, limit: TIMELINE_PAGE_SIZE });
        // `since` compares with updated_at; a push row is never edited, but check its creation anyway.
        const after = pushes.find((p) => Number.isNaN(Date.parse(p.createdAt)) || Date.parse(p.createdAt) >= since.getTime());
        if (after) return { kind: 'pushed', at: after.createdAt || 'an unknown time' };
        if (rows < TIMELINE_PAGE_SIZE) return { kind: 'none' };
      }
      return { kind: 'unknown', why: `more than ${TIMELINE_MAX_PAGES * TIMELINE_PAGE_SIZE} timeline rows since the comment` };
    } catch (e) {
      if (e instanceof ForgeError && (e.status === 404 || e.status === 405 || e.kind === 'invalid-response')) {
        return { kind: 'unknown', why: `the forge does not show the pull request's timeline (${e.message})` };
      }
      throw e;
    }
  }

  /** Write access or above, or the allow-list. A 403 means the bot itself lacks admin. */
  private async permission(event: CommentEvent): Promise<'allowed' | 'denied' | 'cannot-check'> {
    if (onAllowList(this.deps.allowList, event.commenter)) return 'allowed';
    try {
      const p = await this.deps.client.getCollaboratorPermission({ owner: event.owner, repo: event.repo }, event.commenter);
      return grantsWrite(p.permission) ? 'allowed' : 'denied';
    } catch (e) {
      if (e instanceof ForgeError && e.status === 404) return 'denied';
      if (e instanceof ForgeError && e.status === 403) {
        this.deps.logger.error(
          { repo: `${event.owner}/${event.repo}` },
          'the forge refused to tell the bot a commenter’s permission: give the bot account admin on the repository (docs/enroll-recipe.md)',
        );
        return 'cannot-check';
      }
      throw e;
    }
  }

  /**
   * `!testme --failed`: the tiers to run again, from the pull request's newest finished run of the
   * lane — only at the same commit (a failure of an older commit says nothing of the head) and
   * only if something did not pass (controller/runtime/run-actions.ts, rerunPlan).
   */
  private failedTiersOf(event: CommentEvent & { headSha: string }, enrolled: EnrolledRepo, lane: TriggerLane): { of: string; tiers: TierName[] } | string {
    const filter = { recipe: enrolled.recipe, lane, pr: event.pr, repo: `${event.owner}/${event.repo}` };
    const last = new RunHistory(this.deps.store).finished(filter, null, 1)[0];
    if (!last) return `this pull request has no finished ${lane} run`;
    if (last.commitSha !== event.headSha) {
      return `its last ${lane} run, ${last.name}, tested ${last.commitSha?.slice(0, 12) ?? 'another commit'}, and the head is ${event.headSha.slice(0, 12)} now`;
    }
    const plan = rerunPlan(this.deps.store, last, true);
    return typeof plan === 'string' ? plan : { of: last.name, tiers: plan.tiers };
  }

  private async startRun(event: CommentEvent & { headSha: string }, enrolled: EnrolledRepo, lane: TriggerLane, failedOnly = false): Promise<IntakeOutcome> {
    const { forgeStore, store, paths } = this.deps;
    const name = runNameFor(enrolled.recipe, event.pr, event.commentId);
    const rerun = failedOnly && !store.getRun(name) ? this.failedTiersOf(event, enrolled, lane) : null;
    if (typeof rerun === 'string') return await this.refuse(event, 'no-rerun', `no-rerun: ${rerun}`, 'error');
    // A deleted fork takes the head repository with it; the commit may still be had elsewhere.
    const repoUrl = enrolled.cloneUrl ?? event.cloneUrl;
    if (repoUrl === null) {
      return await this.refuse(event, 'no-source', 'no-source: the pull request’s head repository is gone and no cloneUrl is configured', 'error');
    }
    const doc: RunSpecInput = {
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name },
      spec: {
        recipe: enrolled.recipe,
        source: { repo: repoUrl, ref: event.headSha },
        lane,
        ...(rerun ? { tiers: rerun.tiers, rerun: { of: rerun.of, tiers: 'failed' as const, by: event.commenter } } : {}),
        trigger: {
          kind: 'comment',
          forge: {
            owner: event.owner,
            repo: event.repo,
            pr: event.pr,
            comment: event.commentId,
            by: event.commenter,
            sha: event.headSha,
            ...(event.delivery ? { delivery: event.delivery } : {}),
          },
        },
      },
    };
    const parsed = validateSpec(doc);
    if (!parsed.ok) {
      forgeStore.decideComment(event.commentId, { decision: 'error', detail: `no valid run spec: ${parsed.error}` });
      this.deps.logger.error({ run: name, error: parsed.error }, 'forge comment: could not build a valid run spec');
      return this.log(event, { kind: 'ignored', reason: `invalid spec: ${parsed.error}` });
    }
    // The name is the comment's: if a run or its file exists already, this comment made it.
    if (!store.getRun(name) && !existsSync(specFilePath(paths, name))) writeSpecFile(paths, parsed.spec);
    const what = rerun ? `${rerun.tiers.join(', ')} of ${rerun.of} (--failed)` : `${lane} lane`;
    forgeStore.decideComment(event.commentId, { decision: 'run', detail: `${what} at ${event.headSha}`, run: name });
    return this.log(event, { kind: 'run', run: name });
  }

  /** Decides the comment as refused (`decision`, by default the kind itself) and posts the one reply. */
  private async refuse(event: CommentEvent, kind: ReplyKind, detail: string, decision?: CommentDecision): Promise<IntakeOutcome> {
    this.deps.forgeStore.decideComment(event.commentId, {
      decision: decision ?? (kind === 'cannot-check' ? 'denied' : (kind as CommentDecision)),
      detail,
      reply: true,
    });
    const outcome: IntakeOutcome = { kind: 'replied', reply: kind };
    this.log(event, outcome);
    await this.postReply(event, kind, detail).catch((e: unknown) => {
      this.deps.forgeStore.noteCommentFailure(event.commentId, e instanceof Error ? e.message : String(e));
      this.deps.logger.warn({ comment: event.commentId, error: e instanceof Error ? e.message : String(e) }, 'forge comment: reply not posted yet; will retry');
    });
    return outcome;
  }

  /** Posts the reply once: an earlier post (e.g. one that timed out but arrived) is found by its marker. */
  private async postReply(event: CommentEvent, kind: ReplyKind, detail: string | null): Promise<void> {
    const ref: RepoRef = { owner: event.owner, repo: event.repo };
    const existing = await this.deps.bot.findOwnComment(this.deps.client, ref, event.pr, replyMarker(event.commentId));
    const trigger = parseTrigger(event.body);
    const text = replyText(kind, {
      commentId: event.commentId,
      commenter: event.commenter,
      repo: `${event.owner}/${event.repo}`,
      ...(trigger.kind === 'help' ? { got: trigger.got } : {}),
      ...(trigger.kind === 'run' && trigger.pin ? { pin: trigger.pin } : {}),
      ...(kind === 'pushed' ? { pushedAt: /^pushed: a push at (\S+)/.exec(detail ?? '')?.[1] ?? '?' } : {}),
      ...(kind === 'no-rerun' ? { why: detail?.replace(/^no-rerun: /, '') ?? '?' } : {}),
    });
    const id = existing?.id ?? (await this.deps.createClient.createComment(ref, event.pr, text)).id;
    this.deps.forgeStore.setReply(event.commentId, 'posted', id);
  }

  /**
   * Level-triggered catch-up (on a timer): comments whose decision is still open — deferred
   * because the forge did not answer, or claimed by a webhook just before a crash — and replies
   * not posted yet. Each is tried again once its backoff has passed, and given up at the horizon.
   */
  async retryUnfinished(): Promise<void> {
    const now = Date.now();
    for (const rec of this.deps.forgeStore.listUnfinishedComments()) {
      if (this.inFlight.has(rec.commentId)) continue;
      if (now < rec.updatedAt + intakeRetryDelayMs(rec.attempts, this.retry)) continue;
      const event = this.eventOf(rec);
      if (!event) continue;
      if (rec.attempts >= this.maxAttempts) {
        await this.giveUp(rec, event);
        continue;
      }
      if (rec.decision === null) {
        const enrolled = this.deps.repos.lookup(event.owner, event.repo);
        if (!enrolled) {
          this.deps.forgeStore.decideComment(rec.commentId, { decision: 'ignored', detail: 'repository no longer enrolled' });
          continue;
        }
        await this.handleTracked(this.decideClaimed(event, enrolled));
      } else if (rec.replyState === 'pending') {
        await this.retryReply(rec, event);
      }
    }
  }

  private async retryReply(rec: CommentRecord, event: CommentEvent): Promise<void> {
    const kind = replyKindOf(rec);
    if (kind === null) {
      this.deps.forgeStore.setReply(rec.commentId, 'failed');
      return;
    }
    this.inFlight.add(rec.commentId);
    await this.postReply(event, kind, rec.detail)
      .catch((e: unknown) => this.deps.forgeStore.noteCommentFailure(rec.commentId, e instanceof Error ? e.message : String(e)))
      .finally(() => this.inFlight.delete(rec.commentId));
  }

  private handleTracked(p: Promise<IntakeOutcome>): Promise<IntakeOutcome> {
    this.track(p);
    return p.then((o) => {
      this.deps.onOutcome?.(o);
      return o;
    });
  }

  /**
   * The horizon is reached. An undecided comment becomes `error` and is owed one reply telling the
   * commenter (tried now, then on the reply's own backoff); a reply that never went out is failed.
   */
  private async giveUp(rec: CommentRecord, event: CommentEvent): Promise<void> {
    const fields = { comment: rec.commentId, repo: `${rec.owner}/${rec.repo}`, pr: rec.pr, error: rec.lastError };
    if (rec.decision === null) {
      this.deps.logger.error(fields, 'forge comment: gave up deciding after the forge failed for too long; telling the commenter');
      this.inFlight.add(rec.commentId);
      try {
        await this.refuse(event, 'gave-up', `gave-up: the forge did not answer (${rec.lastError ?? ''})`, 'error');
      } finally {
        this.inFlight.delete(rec.commentId);
      }
    } else {
      this.deps.forgeStore.setReply(rec.commentId, 'failed');
      this.deps.logger.error(fields, 'forge comment: gave up posting the reply after the forge failed for too long');
    }
  }

  private eventOf(rec: CommentRecord): CommentEvent | null {
    try {
      return eventSchema.parse(JSON.parse(rec.eventJson));
    } catch {
      this.deps.forgeStore.decideComment(rec.commentId, { decision: 'error', detail: 'stored event is unreadable' });
      return null;
    }
  }
}
