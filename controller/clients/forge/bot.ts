import type { ForgeClient } from './client.js';

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

  /** The login if it is known already (for a page or a log line), without asking. */
  get known(): string | null {
    return this.cached;
  }
}
