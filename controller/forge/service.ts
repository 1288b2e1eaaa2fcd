import { ForgeReporter } from '../../reconcilers/report.js';
import { aborted, every, type Runnable } from '../engine/runnable.js';
import { ForgeStore } from '../../state/forge-store.js';
import type { Store } from '../../state/store.js';
import type { Config } from '../model/config.js';
import type { Logger } from '../model/log.js';
import type { StatePaths } from '../model/paths.js';
import { BotIdentity } from '../clients/forge/bot.js';
import { ForgeClient } from '../clients/forge/client.js';
import { EnrolledRepos } from './enrolled.js';
import { Intake, type IntakeOutcome } from './intake.js';
import { Poller } from './poller.js';
import type { ForgeSecrets } from '../clients/forge/secrets.js';

/**
 * Everything `cc-ci serve` runs for the forge, assembled from config: the client (token from
 * forge.tokenFile), the intake, the poller (forge.mode poll or both), the reporter, and what the
 * HTTP server's webhook route needs (forge.mode webhook or both).
 */

export interface ForgeCounters {
  intake(outcome: string): void;
  report(outcome: 'ok' | 'error'): void;
}

export interface ForgeServiceOptions {
  config: Config;
  /** Read by the caller (readForgeSecrets) before anything starts. */
  secrets: ForgeSecrets;
  paths: StatePaths;
  store: Store;
  logger: Logger;
  runUrl(name: string): string;
  counters?: ForgeCounters;
}

/** What the webhook route needs; null when forge.mode is poll. */
export interface WebhookIntake {
  secret: string;
  forgeStore: ForgeStore;
  intake: Intake;
}

/** How often the intake looks for deferred decisions and unposted replies whose backoff is over. */
const INTAKE_RETRY_TICK_MS = 5_000;

export class ForgeService {
  readonly forgeStore: ForgeStore;
  readonly intake: Intake;
  readonly webhook: WebhookIntake | null;
  readonly bot: BotIdentity;
  private readonly repos: EnrolledRepos;
  private readonly reporter: ForgeReporter;
  private readonly poller: Poller | null;

  /** Builds everything; starts nothing. */
  constructor(private readonly options: ForgeServiceOptions & { config: Config & { forge: NonNullable<Config['forge']> } }) {
    const forge = options.config.forge;
    const { token, webhookSecret: secret } = options.secrets;
    const log = options.logger.child({ component: 'forge' });
    const clientOptions = {
      baseUrl: forge.url,
      token,
      timeoutMs: forge.timeoutSeconds * 1000,
      logger: { warn: (fields: Record<string, unknown>, msg: string) => log.warn(fields, msg) },
    };
    const client = new ForgeClient(clientOptions);
    // Writes that add something (comments, statuses, reactions) get one attempt only: one that
    // timed out may have arrived, and a blind retry would post it twice. The next pass looks first
    // (a comment by its marker, a status by listing; a repeated reaction the forge answers 200).
    const createClient = new ForgeClient({ ...clientOptions, retry: { attempts: 1 } });

    this.forgeStore = new ForgeStore(options.store);
    this.bot = new BotIdentity(client);
    this.repos = new EnrolledRepos(options.config.repos);
    this.intake = new Intake({
      store: options.store,
      forgeStore: this.forgeStore,
      paths: options.paths,
      repos: this.repos,
      allowList: forge.allowList,
      client,
      createClient,
      bot: this.bot,
      logger: log,
      onOutcome: (outcome: IntakeOutcome) => options.counters?.intake(outcome.kind),
      retry: {
        firstDelayMs: forge.intakeRetry.firstSeconds * 1000,
        maxDelayMs: forge.intakeRetry.maxSeconds * 1000,
        horizonMs: forge.intakeRetry.horizonSeconds * 1000,
      },
    });
    this.webhook = secret === null ? null : { secret, forgeStore: this.forgeStore, intake: this.intake };
    this.reporter = new ForgeReporter({
      store: options.store,
      forgeStore: this.forgeStore,
      client,
      createClient,
      bot: this.bot,
      logger: log,
      runUrl: (name: string) => options.runUrl(name),
      resyncSeconds: Math.min(options.config.resyncSeconds, 30),
      ...(options.counters ? { onReport: (outcome: 'ok' | 'error') => options.counters?.report(outcome) } : {}),
    });
    this.poller =
      forge.mode === 'webhook'
        ? null
        : new Poller({ client, forgeStore: this.forgeStore, repos: this.repos, intake: this.intake, logger: log, pollSeconds: forge.pollSeconds });
  }

  static fromConfig(o: Omit<ForgeServiceOptions, 'secrets'> & { secrets: ForgeSecrets | null }): ForgeService | null {
    const forge = o.config.forge;
    const secrets = o.secrets;
    return forge && secrets ? new ForgeService({ ...o, secrets, config: { ...o.config, forge } }) : null;
  }

  /** What runs for the forge, in start order: the reporter, the intake's retries, the poller. */
  runnables(): Runnable[] {
    const log = this.options.logger.child({ component: 'forge' });
    const forge = this.options.config.forge;
    const intake = this.intake;
    const greet: Runnable = {
      name: 'forge bot',
      start: async (signal, ready) => {
        for (const p of this.repos.problems) log.error({ problem: p }, 'enrolled repository cannot be served');
        log.info({ url: forge.url, mode: forge.mode, repos: this.repos.list().map((r) => r.fullName) }, 'forge intake and reporting enabled');
        this.bot.login().then(
          (login) => log.info({ bot: login }, 'forge bot account'),
          (e: unknown) =>
            log.warn({ error: e instanceof Error ? e.message : String(e) }, 'cannot read the bot account yet (GET /user); will ask again when needed'),
        );
        ready();
        await aborted(signal);
      },
    };
    // A deferred decision or an unposted reply is looked at again once its backoff is over.
    let retrying: Promise<void> | null = null;
    const retry = (): void => {
      retrying ??= intake
        .retryUnfinished()
        .catch((e: unknown) => log.warn({ error: String(e) }, 'intake retry failed'))
        .finally(() => {
          retrying = null;
        });
    };
    const retries: Runnable = {
      name: 'forge intake retries',
      start: async (signal, ready) => {
        retry();
        const inner = new AbortController();
        const ticking = every('forge intake retries', INTAKE_RETRY_TICK_MS, retry).start(inner.signal, ready);
        await aborted(signal);
        inner.abort();
        await ticking;
        await retrying;
        await intake.drain();
      },
    };
    return [greet, this.reporter, retries, ...(this.poller ? [this.poller] : [])];
  }
}
