import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { POLICY_KEYS } from './compose-policy.js';
import { formatIssues } from './spec.js';

/**
 * The controller's configuration: a YAML file (`--config` or `CCCI_CONFIG`), every key optional,
 * unknown keys an error. docs/configuration.md documents each key; keep the two in step.
 */

/** Node fires a timer of more than 2^31 - 1 ms after 1 ms: every setting that becomes a timer stays below it. */
export const MAX_TIMER_SECONDS = 2_000_000;
const seconds = z.number().positive().max(MAX_TIMER_SECONDS, `must be at most ${MAX_TIMER_SECONDS} (about 23 days): Node cannot time longer`);
/** An age compared with a clock, never a timer: bounded only to stay a sane number. */
const ageSeconds = z
  .number()
  .positive()
  .max(100 * 365 * 24 * 3600);

export const configSchema = z.strictObject({
  /** How many runs may hold swarm resources at once. */
  capacity: z.number().int().min(1).max(64).default(1),
  /**
   * Install the upgrade tier's base release while the install tier runs (a second app of the run,
   * from a checkout of its own), instead of after it: a full ladder's verdict comes sooner. Off:
   * one deploy of a run at a time, for a server where two would starve each other.
   */
  overlapBaseInstall: z.boolean().default(true),
  abra: z
    .strictObject({
      /** The abra binary. `CCCI_ABRA` overrides it. */
      bin: z.string().min(1).default('abra'),
      /** The canonical ABRA_DIR whose servers/ and catalogue/ every run shares. */
      dir: z
        .string()
        .min(1)
        .default(process.env.ABRA_DIR ?? join(homedir(), '.abra')),
      /** The abra server name apps are created on (`abra server add --local` names it "default"). */
      server: z.string().min(1).default('default'),
      /** Wall-clock limit of one abra call that does not say otherwise. A call that runs out
       *  ends the run `error`, "timed out in <tier>: abra … did not return within Ns". */
      callTimeoutSeconds: seconds.default(900),
    })
    .prefault({}),
  domain: z
    .strictObject({
      /** Apps get `<4 chars of recipe>-<6 hex>.<base>`; the janitor recognises exactly that. */
      base: z
        .string()
        .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'must be a lowercase DNS name')
        .max(24, 'must be at most 24 characters, so stack and secret names stay within their limits')
        .default('ci.localhost'),
    })
    .prefault({}),
  ingress: z
    .strictObject({
      /** local: publish the app port on the host (no Traefik); traefik: reach https://<domain>;
       *  auto: traefik when a Traefik service runs on the swarm, else local (controller/runtime/ingress.ts). */
      mode: z.enum(['auto', 'local', 'traefik']).default('auto'),
      /** Host ports the local mode hands out, one per live app. */
      portRange: z
        .tuple([z.number().int().min(1024).max(65535), z.number().int().min(1024).max(65535)])
        .refine(([a, b]) => a <= b, 'the first port must not be above the second')
        .default([20000, 20999]),
    })
    .prefault({}),
  timeouts: z
    .strictObject({
      /** A run's execution: from its first admission until teardown begins (preparation and
       *  every tier; an earlier, interrupted attempt's time counts too; teardown has its own
       *  teardownSeconds). */
      runSeconds: seconds.default(3600),
      /** One tier, unless `tiers.<tier>` says otherwise. */
      tierSeconds: seconds.default(1800),
      /** Per-tier limits over tierSeconds, e.g. `{ install: 900, custom: 2400 }`. */
      tiers: z
        .strictObject({
          install: seconds.optional(),
          upgrade: seconds.optional(),
          backup: seconds.optional(),
          restore: seconds.optional(),
          custom: seconds.optional(),
        })
        .prefault({}),
      /** Default deploy convergence wait; a recipe's settings may change it. */
      deploySeconds: seconds.default(600),
      /** Default wait for the app to answer HTTP after converging. */
      httpSeconds: seconds.default(300),
      /** Teardown, including waiting for containers to go. */
      teardownSeconds: seconds.default(600),
      /** docker CLI calls (observation). */
      dockerSeconds: seconds.default(60),
      /** git clone/fetch. */
      gitSeconds: seconds.default(300),
    })
    .prefault({}),
  /** The janitor: reaps test apps no live run owns (docs/architecture.md, Ownership, leases and the janitor). */
  janitor: z
    .strictObject({
      /** How often `cc-ci serve` runs it. */
      intervalSeconds: seconds.default(600),
      /** An app no run of this state directory claims is reaped once it is this old. */
      unknownOwnerAgeSeconds: ageSeconds.default(7200),
      /** Candidates are looked at again after this long before anything is deleted. */
      graceSeconds: z.number().min(0).max(MAX_TIMER_SECONDS).default(30),
    })
    .prefault({}),
  /** Retention (docs/runbook.md, State directory growth): what `cc-ci serve` keeps of finished runs. */
  retention: z
    .strictObject({
      /** Off: nothing new is removed (marks an earlier pass left are still finished). */
      enabled: z.boolean().default(true),
      /** How often a pass runs (also once at the start). */
      intervalSeconds: seconds.default(600),
      /** A pass removes the files of at most this many runs, and the summaries of at most as many. */
      runsPerPass: z.number().int().min(1).max(100_000).default(500),
      /** Past this, a finished run's log, steps, run directory and spec file are removed; its summary stays. */
      logs: z
        .strictObject({
          /** Finished longer ago than this. */
          maxAgeSeconds: ageSeconds.default(90 * 86_400),
          /** Beyond the newest this many finished runs of its recipe. */
          keepPerRecipe: z.number().int().min(1).max(10_000_000).default(1_000),
        })
        .prefault({}),
      /** Past this, the summary goes too (the recipe's counts and pass rate keep it). */
      summaries: z
        .strictObject({
          maxAgeSeconds: ageSeconds.default(2 * 365 * 86_400),
          keepPerRecipe: z.number().int().min(1).max(10_000_000).default(20_000),
        })
        .prefault({}),
    })
    .refine(
      (r) => r.summaries.maxAgeSeconds >= r.logs.maxAgeSeconds && r.summaries.keepPerRecipe >= r.logs.keepPerRecipe,
      'summaries must be kept at least as long (maxAgeSeconds) and as many (keepPerRecipe) as logs',
    )
    .prefault({}),
  /** Warm canonical apps (docs/warm.md). */
  warm: z
    .strictObject({
      /** How often each Warm object's default branch is read for a new head to promote. */
      headCheckSeconds: seconds.default(60),
      /** How often a warm app nobody holds is looked at (services, convergence, HTTP) and repaired. */
      checkSeconds: seconds.default(60),
      /** How long a quick run waits for its recipe's warm app (held, or being returned) before it
       *  climbs the cold ladder instead. */
      leaseWaitSeconds: seconds.default(900),
    })
    .prefault({}),
  /** How often every run is reconciled even without a file event. */
  resyncSeconds: seconds.default(30),
  /** A run interrupted by an infrastructure fault (controller crash, daemon restart) is retried
   *  from a clean slate at most this many times in all. Test failures are never retried. */
  maxAttempts: z.number().int().min(1).max(5).default(2),
  /** The forge (Gitea/Forgejo) cc-ci takes `!testme` from and reports to. Absent: no forge. */
  forge: z
    .strictObject({
      /** The forge's base URL, e.g. https://git.coopcloud.tech */
      url: z.url(),
      /** A file holding the bot's API token (never logged). */
      tokenFile: z.string().min(1),
      /** A file holding the webhook secret (HMAC-SHA256 key). Required for webhook mode. */
      webhookSecretFile: z.string().min(1).optional(),
      /** webhook: the forge POSTs to /hooks/forge; poll: cc-ci reads comments; both. */
      mode: z.enum(['webhook', 'poll', 'both']).default('webhook'),
      /** How often poll mode reads each enrolled repository's comments. */
      pollSeconds: seconds.default(60),
      /** Users allowed to trigger runs besides those with write access on the repository. */
      allowList: z.array(z.string().min(1)).default([]),
      /** Per forge call. */
      timeoutSeconds: seconds.default(10),
      /** A `!testme` the forge could not answer for (permission, pull request) is decided again
       *  after firstSeconds, doubling up to maxSeconds, until horizonSeconds have passed. */
      intakeRetry: z
        .strictObject({
          firstSeconds: seconds.default(20),
          maxSeconds: seconds.default(1800),
          horizonSeconds: seconds.default(86_400),
        })
        .prefault({}),
    })
    .optional(),
  /** Enrolled repositories: `owner/name`, or an object mapping it to a recipe and clone URL. */
  repos: z
    .array(
      z.union([
        z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be owner/name'),
        z.strictObject({
          name: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be owner/name'),
          /** The recipe name, when it is not the repository's name. */
          recipe: z
            .string()
            .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/)
            .optional(),
          /** Clone from here instead of the pull request's head repository. */
          cloneUrl: z.string().min(1).optional(),
        }),
      ]),
    )
    .default([]),
  /** The HTTP server of `cc-ci serve`: webhooks, run pages, live logs. */
  http: z
    .strictObject({
      port: z.number().int().min(0).max(65535).default(8080),
      host: z.string().default('127.0.0.1'),
      /** How the forge and people reach this server; links in PR comments and statuses use it. */
      publicUrl: z.url().optional(),
      /** Open connections at most (live-log streams included); further ones are closed at once. */
      maxConnections: z.number().int().min(8).max(65_536).default(512),
      /** Live-log streams (server-sent events) open at once, in all and from one client address. */
      maxStreams: z.number().int().min(1).max(65_536).default(256),
      maxStreamsPerClient: z.number().int().min(1).max(65_536).default(16),
      /** Every page and API read needs a login or an API token (docs/security.md, "Who may read");
       *  /healthz, the webhook, the login itself and badges stay open. Off: reading is open. */
      requireLogin: z.boolean().default(false),
    })
    .prefault({}),
  /** People log in through the forge, an OAuth2 provider (docs/security.md, "Who may act").
   *  Absent: no login for people; actions take API tokens only. */
  login: z
    .strictObject({
      /** The OAuth2 application's client id, as the forge shows it when the application is made. */
      clientId: z.string().min(1).max(256),
      /** A file holding the application's client secret (never logged). */
      clientSecretFile: z.string().min(1),
      /** How long a login lasts (the session cookie's Max-Age); at most a week. */
      sessionHours: z.number().positive().max(168).default(12),
    })
    .optional(),
  /** What a recipe's compose configuration may hand of the host to its stack (docs/security.md,
   *  "Compose policy"). Everything it lists is refused unless allowed here, item by item, per
   *  recipe: only the operator writes this file, never a pull request. */
  composePolicy: z
    .strictObject({
      allow: z
        .record(
          z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a recipe name'),
          z.array(
            z.strictObject({
              /** The compose service, as the recipe names it. */
              service: z.string().min(1),
              key: z.enum(POLICY_KEYS),
              /** The item within the key, as the refusal names it (`/var/run/docker.sock`, `NET_ADMIN`); none for `privileged`. */
              value: z.string().min(1).optional(),
              /** Who allowed it: the run log says so next to the item. */
              by: z.string().min(1),
              reason: z.string().optional(),
            }),
          ),
        )
        .default({}),
    })
    .prefault({}),
  /** Where cc-ci looks for per-recipe customisation, besides the bundled recipes/. */
  recipesDir: z.string().optional(),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** A run keeps at most this much of its programs' output (abra, docker, hooks, tests); past
       *  it, one line says so and cc-ci's own lines go on. */
      runOutputBytes: z
        .number()
        .int()
        .min(64 * 1024)
        .max(1024 * 1024 * 1024)
        .default(20 * 1024 * 1024),
      /** A longer line of a run's log is cut, saying so. */
      lineChars: z
        .number()
        .int()
        .min(256)
        .max(1024 * 1024)
        .default(8192),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;

/** The time limit of one tier: `timeouts.tiers.<tier>` when set, else `timeouts.tierSeconds`. */
export function tierSeconds(config: Config, tier: keyof Config['timeouts']['tiers']): number {
  return config.timeouts.tiers[tier] ?? config.timeouts.tierSeconds;
}

export class ConfigError extends Error {}

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

/** Loads and validates the config. Environment overrides: CCCI_ABRA for the abra binary. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (e) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${(e as Error).message}`);
    }
  }
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`config file ${file}: ${formatIssues(r.error)}`);
  const config = r.data;
  if (env.CCCI_ABRA) config.abra.bin = env.CCCI_ABRA;
  config.abra.dir = resolve(expandHome(config.abra.dir));
  if (config.recipesDir) config.recipesDir = resolve(expandHome(config.recipesDir));
  if (config.forge) {
    config.forge.tokenFile = resolve(expandHome(config.forge.tokenFile));
    if (config.forge.webhookSecretFile) config.forge.webhookSecretFile = resolve(expandHome(config.forge.webhookSecretFile));
    if (config.forge.mode !== 'poll' && !config.forge.webhookSecretFile) {
      throw new ConfigError(`config file ${file}: forge.webhookSecretFile is required when forge.mode is ${config.forge.mode}`);
    }
  }
  if (config.login) {
    config.login.clientSecretFile = resolve(expandHome(config.login.clientSecretFile));
    // The forge sends people back to <publicUrl>/login/callback, the redirect URI registered with
    // the OAuth2 application: an address guessed from the listen address would not be it.
    if (!config.forge) throw new ConfigError(`config file ${file}: login needs forge: people log in through the forge`);
    if (!config.http.publicUrl) {
      throw new ConfigError(`config file ${file}: login needs http.publicUrl: the forge sends people back to <publicUrl>/login/callback`);
    }
  }
  return config;
}
