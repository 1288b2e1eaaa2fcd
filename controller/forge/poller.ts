import type { ForgeStore } from '../../state/forge-store.js';
import { aborted, type Runnable } from '../engine/runnable.js';
import type { Logger } from '../model/log.js';
import type { ForgeClient, ForgeComment } from '../clients/forge/client.js';
import type { EnrolledRepo, EnrolledRepos } from './enrolled.js';
import type { CommentEvent, Intake } from './intake.js';
import { parseTrigger } from './trigger.js';

/**
 * Poll mode, for a cc-ci the forge cannot reach: per enrolled repository, list the comments
 * updated since a stored checkpoint (GET /repos/{o}/{r}/issues/comments?since=) and feed the
 * PR comments that look like commands into the same intake as webhooks; the intake reads each
 * pull request, and tests its head only if the timeline shows no push since the comment was made
 * (a head that moved after the maintainer looked is refused, with a reply asking for a new comment).
 *
 * `since` is inclusive and cut to whole seconds, so the next checkpoint is the newest
 * `updated_at` seen: the overlap re-reads that second, and comments already decided are skipped
 * by id. The first poll of a repository starts a minute before now (an allowance for clock skew
 * between cc-ci and the forge), so enrolling a repository does not replay its history.
 */

const PAGE_SIZE = 50; // the forge's default MAX_RESPONSE_ITEMS
/** Pages per repository per poll; more than this many new comments between polls is not expected. */
const MAX_PAGES = 20;
const FIRST_POLL_LOOKBACK_MS = 60_000;

export interface PollerDeps {
  client: Pick<ForgeClient, 'listRepoComments'>;
  forgeStore: ForgeStore;
  repos: EnrolledRepos;
  intake: Intake;
  logger: Logger;
  pollSeconds: number;
}

export class Poller implements Runnable {
  readonly name = 'forge poller';
  private stopped = false;

  constructor(private readonly deps: PollerDeps) {}

  /** Polls now and then every `pollSeconds` after the last poll ended, until stopped. */
  async start(signal: AbortSignal, ready: () => void): Promise<void> {
    const state: { timer: NodeJS.Timeout | null; running: Promise<void> | null } = { timer: null, running: null };
    const tick = (): void => {
      if (this.stopped) return;
      state.running = this.pollOnce().finally(() => {
        state.running = null;
        if (!this.stopped) state.timer = setTimeout(tick, this.deps.pollSeconds * 1000);
      });
    };
    tick();
    ready();
    await aborted(signal);
    this.stopped = true;
    if (state.timer) clearTimeout(state.timer);
    await state.running;
  }

  /** One pass over every enrolled repository; one repository's failure does not stop the others. */
  async pollOnce(): Promise<void> {
    for (const repo of this.deps.repos.list()) {
      if (this.stopped) return;
      try {
        await this.pollRepo(repo);
      } catch (e) {
        this.deps.logger.warn(
          { repo: repo.fullName, error: e instanceof Error ? e.message : String(e) },
          'poll failed; the next poll tries again from the same checkpoint',
        );
      }
    }
  }

  private async pollRepo(repo: EnrolledRepo): Promise<void> {
    const key = repo.fullName.toLowerCase();
    const stored = this.deps.forgeStore.getCheckpoint(key);
    const since = stored ? new Date(stored) : new Date(Date.now() - FIRST_POLL_LOOKBACK_MS);
    let newest = since.getTime();
    for (let page = 1; page <= MAX_PAGES; page++) {
      const { items, totalCount } = await this.deps.client.listRepoComments({ owner: repo.owner, repo: repo.name }, { since, page, limit: PAGE_SIZE });
      for (const c of items) {
        await this.consider(repo, c);
        newest = Math.max(newest, Date.parse(c.updatedAt) || 0);
      }
      if (items.length < PAGE_SIZE || (totalCount !== null && page * PAGE_SIZE >= totalCount)) break;
    }
    // Only after every comment of the window was handed over: a crash re-reads the window.
    this.deps.forgeStore.setCheckpoint(key, new Date(newest).toISOString());
  }

  private async consider(repo: EnrolledRepo, c: ForgeComment): Promise<void> {
    if (!c.isOnPullRequest || c.issueIndex === null || c.user === null) return;
    if (parseTrigger(c.body).kind === 'none') return;
    if (this.deps.intake.seen(c.id)) return;
    // Only created comments count, as with webhooks. A comment edited before we saw it shows its
    // new text and a later updated_at; we cannot know what it said when it was created.
    if (c.updatedAt !== c.createdAt) {
      this.deps.logger.debug({ repo: repo.fullName, comment: c.id }, 'poll: an edited comment is not a command (only new comments are)');
      return;
    }
    // The pull request (its head, its state) is the intake's to read, after the comment's row is
    // written: a forge that fails that read defers this one comment, never the poll of the rest.
    const event: CommentEvent = {
      via: 'poll',
      delivery: null,
      owner: repo.owner,
      repo: repo.name,
      pr: c.issueIndex,
      commentId: c.id,
      body: c.body,
      commenter: c.user.login,
      sender: c.user.login,
      prState: null,
      headSha: null,
      cloneUrl: null,
      commentedAt: c.createdAt,
    };
    await this.deps.intake.handle(event);
  }
}
