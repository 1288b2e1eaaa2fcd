import { z } from 'zod';
import { readBoundedFile, UnreadableFileError } from '../model/bounded-read.js';
import { isName } from '../model/spec.js';
import { ApiError, CcCiApi, serverUrl } from '../clients/cc-ci-api.js';
import { formatEvent } from '../views/follow.js';
import { MAX_PAGE_SIZE, parseRunQuery } from '../views/run-query.js';
import type { InvalidSpecRow, RunListJson, RunRow } from '../views/run-view.js';
import { EXIT, UsageError, err, out } from './common.js';
import { printInvalidSpecs, printRunDescription, printRunList, type DescribedRun, type GetRunsOptions } from './run-output.js';

/**
 * The CLI's remote mode, kubectl-like: with `--server URL` (or CCCI_SERVER) `get runs`,
 * `describe run`, `logs`, `cancel` and `rerun` ask a running `cc-ci serve` over its /api/v1
 * (controller/clients/cc-ci-api.ts) instead of opening a state directory, and print what they
 * print on the host (run-output.ts, from the same data shape). The token for acting comes from
 * CCCI_TOKEN or --token-file, never from an argument: arguments show in `ps`.
 */

export interface RemoteOptions {
  server?: string;
  tokenFile?: string;
  stateDir?: string;
}

/** A token file holds one line; anything this large is not one. */
const MAX_TOKEN_FILE_BYTES = 4096;

/**
 * The server to ask, or null to read the state directory as always. `--server` wins over
 * CCCI_SERVER; an explicit `--state-dir` wins over CCCI_SERVER too (it names the place to read),
 * and together with `--server` is a contradiction.
 */
export function remoteOf(o: RemoteOptions): CcCiApi | null {
  if (o.server !== undefined && o.stateDir !== undefined) throw new UsageError('--server and --state-dir name two places to read: give one');
  const raw = o.server ?? (o.stateDir === undefined ? process.env.CCCI_SERVER : undefined);
  if (raw === undefined || raw === '') {
    if (o.tokenFile !== undefined) throw new UsageError('--token-file goes with --server (or CCCI_SERVER): on the host, the state directory needs no token');
    return null;
  }
  const url = serverUrl(raw);
  if (!url.ok) throw new UsageError(url.error);
  return new CcCiApi({ server: url.url, token: tokenOf(o.tokenFile) });
}

function tokenOf(file: string | undefined): string | undefined {
  if (file === undefined) return process.env.CCCI_TOKEN?.trim() || undefined;
  let text: string;
  try {
    text = readBoundedFile(file, MAX_TOKEN_FILE_BYTES);
  } catch (e) {
    throw new UsageError(`--token-file ${file}: ${e instanceof UnreadableFileError ? e.message : ((e as NodeJS.ErrnoException).code ?? 'cannot be read')}`);
  }
  const token = text.trim();
  // Never quote the file's content back: it is the secret.
  if (token === '' || /\s/.test(token)) throw new UsageError(`--token-file ${file}: holds no token (one line: what cc-ci token create printed)`);
  return token;
}

/** An ApiError as the one line the CLI prints (exit 2). */
function usage(api: CcCiApi, e: unknown): unknown {
  if (!(e instanceof ApiError)) return e;
  // The server's words; a refusal of a request that carried no token says where one goes.
  const hint = e.status === 401 && !api.hasToken ? ' (give a token in CCCI_TOKEN or --token-file)' : '';
  return new UsageError(`${e.message}${hint}`);
}

async function ask<T>(api: CcCiApi, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw usage(api, e);
  }
}

/**
 * `value` once it is known to be a T. The server's own JSON is kept, not zod's copy of it (which
 * puts keys in the schema's order and drops those it does not know), so that `get runs -o json`
 * prints what it prints on the host.
 */
function conforming<T>(api: CcCiApi, schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UsageError(
      `${api.where} answered with ${what} this cc-ci does not understand (${issue ? `${issue.path.join('.') || 'the answer'}: ${issue.message}` : 'its shape'}): is it cc-ci serve, of this version?`,
    );
  }
  return value as T;
}

const nullableString = z.string().nullable();
const nullableNumber = z.number().nullable();

const runRowSchema = z.object({
  name: z.string(),
  recipe: z.string(),
  ref: z.string(),
  lane: z.string(),
  phase: z.string(),
  tier: nullableString,
  result: nullableString,
  reason: nullableString,
  queuePosition: nullableNumber,
  waiting: nullableString,
  attempt: z.number(),
  createdAt: z.number(),
  startedAt: nullableNumber,
  finishedAt: nullableNumber,
  durationMs: nullableNumber,
  domains: z.array(z.string()),
  trigger: z.string(),
  forge: z.object({ repo: z.string(), pr: z.number(), by: nullableString }).nullable(),
}) satisfies z.ZodType<RunRow>;

const invalidSpecSchema = z.object({ file: z.string(), name: nullableString, error: z.string() }) satisfies z.ZodType<InvalidSpecRow>;

const runListSchema = z.object({
  runs: z.array(runRowSchema),
  unfinishedTotal: z.number(),
  next: nullableString,
  invalidSpecs: z.array(invalidSpecSchema),
  invalidTotal: z.number(),
}) satisfies z.ZodType<RunListJson>;

const describedRunSchema = z.object({
  name: z.string(),
  lane: z.string(),
  laneNote: nullableString,
  phase: z.string(),
  step: nullableString,
  result: nullableString,
  reason: nullableString,
  queuePosition: nullableNumber,
  waiting: nullableString,
  attempt: z.number(),
  createdAt: z.number(),
  durationMs: nullableNumber,
  commitSha: nullableString,
  cancelRequested: z.boolean(),
  cancelReason: nullableString,
  prunedAt: nullableNumber,
  understood: z.array(z.string()).nullable(),
  dir: z.string(),
  spec: z.object({ spec: z.object({ recipe: z.string(), source: z.object({ repo: z.string(), ref: z.string() }), trigger: z.unknown() }) }),
  retries: z.array(z.object({ attempt: z.number(), reason: z.string() })),
  customization: z.unknown(),
  tiers: z.array(z.object({ tier: z.string(), result: nullableString, durationMs: nullableNumber, reason: nullableString })),
  apps: z.array(z.object({ domain: z.string(), purpose: z.string(), state: z.string(), port: nullableNumber })),
  evidence: z.array(z.object({ path: z.string(), bytes: z.number() })),
  steps: z.array(z.object({ id: z.number(), attempt: z.number(), name: z.string(), state: z.string(), startedAt: z.number(), finishedAt: nullableNumber })),
}) satisfies z.ZodType<DescribedRun>;

const logLineSchema = z.object({ seq: z.number().int().min(0), ts: z.number(), kind: z.string(), text: z.string() });

const actionDoneSchema = z.object({ run: z.string(), message: z.string() });

/** `cc-ci get runs --server URL`: GET /api/v1/runs with the same filters, checked here with the server's page limit. */
export async function getRunsRemote(api: CcCiApi, o: GetRunsOptions): Promise<number> {
  const { limit, cursor, recipe, result, lane, pr, repo } = o;
  const parsed = parseRunQuery({ limit, cursor, recipe, result, lane, pr, repo }, MAX_PAGE_SIZE);
  if (!parsed.ok) throw new UsageError(`get runs: ${parsed.error}`);
  const raw = await ask(api, () => api.get('api/v1/runs', { limit, cursor, recipe, result, lane, pr, repo }));
  return printRunList(conforming(api, runListSchema, raw, 'a runs list'), { output: o.output, limit: parsed.query.limit });
}

/** `cc-ci describe run NAME --server URL`: GET /api/v1/runs/NAME. */
export async function describeRunRemote(api: CcCiApi, name: string): Promise<number> {
  // A name is what the route takes; anything else (`..`, a slash) would name another route.
  if (!isName(name)) throw new UsageError(`no run named ${name}`);
  let raw: unknown;
  try {
    raw = await api.get(`api/v1/runs/${name}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      const invalid = z.object({ invalidSpecs: z.array(invalidSpecSchema) }).safeParse(e.body);
      if (invalid.success && invalid.data.invalidSpecs.length) return printInvalidSpecs(invalid.data.invalidSpecs);
    }
    throw usage(api, e);
  }
  printRunDescription(conforming(api, describedRunSchema, raw, 'a run'));
  return EXIT.passed;
}

/**
 * `cc-ci logs [-f] NAME --server URL`: the run's events (GET /api/v1/runs/NAME/events), the whole
 * log (`all=1`, as on the host), then — with -f — what follows until the run is done (`end`);
 * without, until the server says it sent what there is (`follow=0`, `caught-up`). A stream that
 * drops is resumed after the last line printed (Last-Event-ID); a line is printed once, by its
 * sequence number, however often the stream resumes.
 */
export async function logsRemote(api: CcCiApi, name: string, follow: boolean): Promise<number> {
  if (!isName(name)) throw new UsageError(`no run named ${name}`);
  const ac = new AbortController();
  const interrupt = (): void => ac.abort();
  process.once('SIGINT', interrupt);
  let t0: number | null = null;
  let printed = 0;
  let pruneSaid = false;
  try {
    await ask(api, () =>
      api.events(`api/v1/runs/${name}/events`, {
        query: { all: '1', ...(follow ? {} : { follow: '0' }) },
        signal: ac.signal,
        onEvent: (e) => {
          if (e.event === 'end' || e.event === 'caught-up') return 'stop';
          if (e.event !== 'log') return undefined; // `state` (for the run page's timeline), `skipped` (not with all=1)
          let data: unknown;
          try {
            data = JSON.parse(e.data);
          } catch {
            data = null;
          }
          const line = conforming(api, logLineSchema, data, 'a log line');
          if (line.seq === 0) {
            // Not a line of the log but the server's note that retention removed it: said once, beside the output.
            if (!pruneSaid) err(line.text);
            pruneSaid = true;
            return undefined;
          }
          if (line.seq <= printed) return undefined;
          printed = line.seq;
          // Times count from the first line, as `cc-ci logs` on the host counts them.
          t0 ??= line.ts;
          out(formatEvent(line, t0));
          return undefined;
        },
      }),
    );
  } finally {
    process.off('SIGINT', interrupt);
  }
  return EXIT.passed;
}

type Acted = { ok: true; run: string; message: string } | { ok: false; message: string };

/** POST /api/v1/runs/NAME/{cancel,rerun}: done, or refused for the state the run is in (409, printed as on the host); anything else is an error line. */
async function act(api: CcCiApi, name: string, verb: 'cancel' | 'rerun', body?: Record<string, unknown>): Promise<Acted> {
  if (!isName(name)) throw new UsageError(`no run named ${name}`);
  try {
    const raw = await api.post(`api/v1/runs/${name}/${verb}`, body);
    return { ok: true, ...conforming(api, actionDoneSchema, raw, `an answer to ${verb}`) };
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) return { ok: false, message: e.message };
    throw usage(api, e);
  }
}

/** `cc-ci cancel NAME --server URL`: the serving controller records the cancel and carries it out. */
export async function cancelRemote(api: CcCiApi, name: string): Promise<number> {
  const done = await act(api, name, 'cancel');
  out(done.ok ? `${done.message} (by the controller serving ${api.where}; cc-ci logs -f ${name} --server ${api.where})` : done.message);
  return done.ok ? EXIT.passed : EXIT.error;
}

/** `cc-ci rerun NAME [--failed] --server URL`: the server writes the new run's spec and runs it. */
export async function rerunRemote(api: CcCiApi, name: string, failed: boolean): Promise<number> {
  const done = await act(api, name, 'rerun', { failed });
  out(done.ok ? `${done.message}\nrun/${done.run} created (cc-ci serve runs it; cc-ci logs -f ${done.run} --server ${api.where})` : done.message);
  return done.ok ? EXIT.passed : EXIT.error;
}
