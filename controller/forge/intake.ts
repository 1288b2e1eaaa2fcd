import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { ForgeStore, CommentRecord } from '../../state/forge-store.js';
import type { Store } from '../../state/store.js';
import type { Logger } from '../log.js';
import type { StatePaths } from '../paths.js';
import { writeSpecFile } from '../spec-files.js';
import { validateSpec, type RunSpecInput } from '../spec.js';
import type { BotIdentity } from './bot.js';
import { ForgeError, type ForgeClient, type RepoRef } from './client.js';
import type { EnrolledRepo, EnrolledRepos } from './enrolled.js';
import { replyMarker, replyText, type ReplyKind } from './replies.js';
import { parseTrigger, type TriggerLane } from './trigger.js';
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
  prState: 'open' | 'closed';
  /** The PR head when the comment was made (webhook) or read (poll): what the run tests. */
  headSha: string;
  /** The PR head repository's clone URL (a fork's, for a PR from a fork); null if it is gone. */
  cloneUrl: string | null;
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
  prState: z.enum(['open', 'closed']),
  headSha: z.string(),
  cloneUrl: z.string().nullable(),
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
  | { kind: 'run'; run: string }
  | { kind: 'replied'; reply: ReplyKind }
  | { kind: 'ignored'; reason: string }
  | { kind: 'deferred'; error: string };

export interface IntakeDeps {
  store: Store;
  forgeStore: ForgeStore;
  paths: StatePaths;
  repos: EnrolledRepos;
  allowList: readonly string[];
  /** Retrying client: reads, permission checks. */
  client: Pick<ForgeClient, 'getCollaboratorPermission' | 'listIssueComments'>;
  /** Single-attempt client for creating comments: a retried create after a timeout can duplicate. */
  createClient: Pick<ForgeClient, 'createComment'>;
  bot: BotIdentity;
  logger: Logger;
  onOutcome?: (outcome: IntakeOutcome) => void;
}

/** Attempts at one comment before the intake gives up (retried every 20 s by the forge service). */
export const MAX_INTAKE_ATTEMPTS = 30;

const WRITE_OR_ABOVE = new Set(['write', 'admin', 'owner']);

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

  constructor(private readonly d: IntakeDeps) {}

  /** Decides one comment. Never throws: a forge that does not answer defers the decision. */
  handle(event: CommentEvent): Promise<IntakeOutcome> {
    const p = this.decide(event).then((outcome) => {
      this.d.onOutcome?.(outcome);
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

  /** True when the comment has been decided already (the poller skips those without a forge call). */
  alreadyDecided(commentId: number): boolean {
    const rec = this.d.forgeStore.getComment(commentId);
    return rec !== undefined && (rec.decision !== null || this.inFlight.has(commentId));
  }

  /** Waits for decisions in flight (graceful stop). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private log(event: CommentEvent, outcome: IntakeOutcome): IntakeOutcome {
    const fields = { repo: `${event.owner}/${event.repo}`, pr: event.pr, comment: event.commentId, by: event.commenter, via: event.via };
    if (outcome.kind === 'deferred') this.d.logger.warn({ ...fields, error: outcome.error }, 'forge comment: decision deferred (the forge did not answer)');
    else this.d.logger.info({ ...fields, outcome }, `forge comment: ${outcome.kind}`);
    return outcome;
  }

  private async decide(event: CommentEvent): Promise<IntakeOutcome> {
    const enrolled = this.d.repos.lookup(event.owner, event.repo);
    if (!enrolled) return this.log(event, { kind: 'ignored', reason: `${event.owner}/${event.repo} is not enrolled (config repos)` });
    const trigger = parseTrigger(event.body);
    if (trigger.kind === 'none') return { kind: 'ignored', reason: 'not a command' };

    const { record, created } = this.d.forgeStore.claimComment({
      commentId: event.commentId,
      owner: event.owner,
      repo: event.repo,
      pr: event.pr,
      via: event.via,
      eventJson: JSON.stringify(event),
    });
    if (!created && (record.decision !== null || this.inFlight.has(event.commentId))) {
      return this.log(event, { kind: 'ignored', reason: `comment already seen (${record.decision ?? 'being decided'})` });
    }
    return this.decideClaimed(event, enrolled);
  }

  private async decideClaimed(event: CommentEvent, enrolled: EnrolledRepo): Promise<IntakeOutcome> {
    const { forgeStore } = this.d;
    this.inFlight.add(event.commentId);
    try {
      const bot = await this.d.bot.login();
      if (isFromBot(event, bot)) {
        forgeStore.decideComment(event.commentId, { decision: 'ignored', detail: 'written by cc-ci’s own bot account' });
        return this.log(event, { kind: 'ignored', reason: 'the bot’s own comment' });
      }
      const trigger = parseTrigger(event.body);
      if (trigger.kind === 'none') {
        forgeStore.decideComment(event.commentId, { decision: 'ignored', detail: 'not a command' });
        return { kind: 'ignored', reason: 'not a command' };
      }
      if (trigger.kind === 'help') return await this.refuse(event, 'help', `not a command: ${trigger.got}`);
      if (event.prState !== 'open') return await this.refuse(event, 'closed', 'the pull request is closed');

      const permission = await this.permission(event);
      if (permission !== 'allowed') {
        return await this.refuse(event, permission, permission === 'cannot-check' ? 'cannot-check: the bot may not read collaborator permissions (give it admin)' : `${event.commenter} has no write access`);
      }
      return this.startRun(event, enrolled, trigger.lane);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      forgeStore.noteCommentFailure(event.commentId, error);
      return this.log(event, { kind: 'deferred', error });
    } finally {
      this.inFlight.delete(event.commentId);
    }
  }

  /** Write access or above, or the allow-list. A 403 means the bot itself lacks admin. */
  private async permission(event: CommentEvent): Promise<'allowed' | 'denied' | 'cannot-check'> {
    const login = event.commenter.toLowerCase();
    if (this.d.allowList.some((u) => u.toLowerCase() === login)) return 'allowed';
    try {
      const p = await this.d.client.getCollaboratorPermission({ owner: event.owner, repo: event.repo }, event.commenter);
      return WRITE_OR_ABOVE.has(p.permission) ? 'allowed' : 'denied';
    } catch (e) {
      if (e instanceof ForgeError && e.status === 404) return 'denied';
      if (e instanceof ForgeError && e.status === 403) {
        this.d.logger.error(
          { repo: `${event.owner}/${event.repo}` },
          'the forge refused to tell the bot a commenter’s permission: give the bot account admin on the repository (docs/enroll-recipe.md)',
        );
        return 'cannot-check';
      }
      throw e;
    }
  }

  private startRun(event: CommentEvent, enrolled: EnrolledRepo, lane: TriggerLane): IntakeOutcome {
    const { forgeStore, store, paths } = this.d;
    const name = runNameFor(enrolled.recipe, event.pr, event.commentId);
    const repoUrl = enrolled.cloneUrl ?? event.cloneUrl;
    if (repoUrl === null) {
      forgeStore.decideComment(event.commentId, { decision: 'error', detail: 'the pull request’s head repository is gone and no cloneUrl is configured' });
      return this.log(event, { kind: 'ignored', reason: 'no repository to clone' });
    }
    const doc: RunSpecInput = {
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name },
      spec: {
        recipe: enrolled.recipe,
        source: { repo: repoUrl, ref: event.headSha },
        lane,
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
      this.d.logger.error({ run: name, error: parsed.error }, 'forge comment: could not build a valid run spec');
      return this.log(event, { kind: 'ignored', reason: `invalid spec: ${parsed.error}` });
    }
    // The name is the comment's: if a run or its file exists already, this comment made it.
    if (!store.getRun(name) && !existsSync(join(paths.specs, `${name}.yaml`))) writeSpecFile(paths, parsed.spec);
    forgeStore.decideComment(event.commentId, { decision: 'run', detail: `${lane} lane at ${event.headSha}`, run: name });
    return this.log(event, { kind: 'run', run: name });
  }

  private async refuse(event: CommentEvent, kind: ReplyKind, detail: string): Promise<IntakeOutcome> {
    this.d.forgeStore.decideComment(event.commentId, { decision: kind === 'cannot-check' ? 'denied' : kind, detail, reply: true });
    const outcome: IntakeOutcome = { kind: 'replied', reply: kind };
    this.log(event, outcome);
    await this.postReply(event, kind).catch((e: unknown) => {
      this.d.forgeStore.noteCommentFailure(event.commentId, e instanceof Error ? e.message : String(e));
      this.d.logger.warn({ comment: event.commentId, error: e instanceof Error ? e.message : String(e) }, 'forge comment: reply not posted yet; will retry');
    });
    return outcome;
  }

  /** Posts the reply once: an earlier post (e.g. one that timed out but arrived) is found by its marker. */
  private async postReply(event: CommentEvent, kind: ReplyKind): Promise<void> {
    const ref: RepoRef = { owner: event.owner, repo: event.repo };
    const bot = (await this.d.bot.login()).toLowerCase();
    const marker = replyMarker(event.commentId);
    const existing = (await this.d.client.listIssueComments(ref, event.pr)).find(
      (c) => c.user?.login.toLowerCase() === bot && c.body.includes(marker),
    );
    const trigger = parseTrigger(event.body);
    const text = replyText(kind, {
      commentId: event.commentId,
      commenter: event.commenter,
      repo: `${event.owner}/${event.repo}`,
      ...(trigger.kind === 'help' ? { got: trigger.got } : {}),
    });
    const id = existing?.id ?? (await this.d.createClient.createComment(ref, event.pr, text)).id;
    this.d.forgeStore.setReply(event.commentId, 'posted', id);
  }

  /**
   * Level-triggered catch-up (on a timer): comments whose decision was deferred because the forge
   * did not answer, and replies not posted yet. Each is given up after MAX_INTAKE_ATTEMPTS.
   */
  async retryUnfinished(): Promise<void> {
    for (const rec of this.d.forgeStore.listUnfinishedComments()) {
      if (this.inFlight.has(rec.commentId)) continue;
      const event = this.eventOf(rec);
      if (!event) continue;
      if (rec.attempts >= MAX_INTAKE_ATTEMPTS) {
        this.giveUp(rec);
        continue;
      }
      if (rec.decision === null) {
        const enrolled = this.d.repos.lookup(event.owner, event.repo);
        if (!enrolled) {
          this.d.forgeStore.decideComment(rec.commentId, { decision: 'ignored', detail: 'repository no longer enrolled' });
          continue;
        }
        await this.handleTracked(this.decideClaimed(event, enrolled));
      } else if (rec.replyState === 'pending') {
        const kind: ReplyKind = rec.decision === 'denied' && rec.detail?.startsWith('cannot-check') ? 'cannot-check' : (rec.decision as ReplyKind);
        this.inFlight.add(rec.commentId);
        await this.postReply(event, kind)
          .catch((e: unknown) => this.d.forgeStore.noteCommentFailure(rec.commentId, e instanceof Error ? e.message : String(e)))
          .finally(() => this.inFlight.delete(rec.commentId));
      }
    }
  }

  private handleTracked(p: Promise<IntakeOutcome>): Promise<IntakeOutcome> {
    this.track(p);
    return p.then((o) => {
      this.d.onOutcome?.(o);
      return o;
    });
  }

  private giveUp(rec: CommentRecord): void {
    if (rec.decision === null) {
      this.d.forgeStore.decideComment(rec.commentId, { decision: 'error', detail: `gave up: the forge did not answer (${rec.lastError ?? ''})` });
    } else {
      this.d.forgeStore.setReply(rec.commentId, 'failed');
    }
    this.d.logger.error({ comment: rec.commentId, repo: `${rec.owner}/${rec.repo}`, pr: rec.pr, error: rec.lastError }, 'forge comment: gave up after repeated forge failures');
  }

  private eventOf(rec: CommentRecord): CommentEvent | null {
    try {
      return eventSchema.parse(JSON.parse(rec.eventJson));
    } catch {
      this.d.forgeStore.decideComment(rec.commentId, { decision: 'error', detail: 'stored event is unreadable' });
      return null;
    }
  }
}
