import type { ForgeClient, ForgeComment, RepoRef } from './client.js';

/**
 * The bot's own login (GET /user), asked once and cached: the intake ignores the bot's comments
 * (its report comments fire webhooks too). A failed lookup is not cached, so the next caller asks
 * again once the forge is back.
 */
export class BotIdentity {
  private cached: string | null = null;
  private asking: Promise<string> | null = null;

  constructor(private readonly client: Pick<ForgeClient, 'getCurrentUser'>) {}

  login(): Promise<string> {
    if (this.cached !== null) return Promise.resolve(this.cached);
    this.asking ??= this.client
      .getCurrentUser()
      .then((user) => {
        this.cached = user.login;
        return user.login;
      })
      .finally(() => {
        this.asking = null;
      });
    return this.asking;
  }

  /** The bot's own comment on a pull request that carries `marker`, if there is one: how a post
   *  that timed out but arrived is found before it is posted again. */
  async findOwnComment(client: Pick<ForgeClient, 'listIssueComments'>, ref: RepoRef, pr: number, marker: string): Promise<ForgeComment | null> {
    const bot = (await this.login()).toLowerCase();
    return (await client.listIssueComments(ref, pr)).find((c) => c.user?.login.toLowerCase() === bot && c.body.includes(marker)) ?? null;
  }
}
