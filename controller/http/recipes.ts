import type { StatePaths } from '../model/paths.js';
import { warmRows, type WarmRow } from '../views/warm-view.js';
import { runList, type RunList, type RunRow } from '../views/run-view.js';
import { PAGE_SIZE, parseRunQuery, queryString, type RunQuery } from '../views/run-query.js';
import { makeBadge } from 'badge-maker';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../../state/store.js';
import { RunHistory, type DayVerdicts, type RecipeStats, type RunBrief } from '../../state/history.js';
import type { RunResult } from '../../state/types.js';
import { formatDuration } from '../clients/forge/report-text.js';
import { isName } from '../model/spec.js';
import { ago, esc, page } from './html.js';

/**
 * The recipe overview (docs/architecture.md, Web pages): per recipe its latest runs and pass rate, a history page, and
 * a status badge for a README. Counts and the last verdict of each lane come from the recipe's
 * aggregates (state/history.ts, kept by the store as each run reaches Done and outliving the rows
 * retention removes); the latest runs and the history are index lookups of a page. The pass rate
 * counts verdicts only: a run that ended in `error` or was cancelled says nothing about the recipe.
 */

const LANES = ['cold', 'quick'] as const;
type Lane = (typeof LANES)[number];

/** How many of the newest runs the overview shows per recipe. */
const LATEST = 10;

/** The newest run of a recipe (and lane) that reached Done, as its aggregates remember it. */
interface LastDone {
  name: string;
  result: RunResult | null;
  createdAt: number;
}

export interface RecipeSummary {
  recipe: string;
  /** Every run that reached Done, and those not finished yet. */
  runs: number;
  passed: number;
  failed: number;
  /** passed / (passed + failed), null before the first verdict. */
  passRate: number | null;
  /** The newest Done run, per lane and of any lane. */
  lastDone: LastDone | null;
  lastDoneByLane: Partial<Record<Lane, LastDone>>;
  /** The newest LATEST runs, any phase, newest first. */
  latest: RunBrief[];
}

function summarise(recipe: string, stats: RecipeStats[], unfinished: number, latest: RunBrief[]): RecipeSummary {
  let passed = 0;
  let failed = 0;
  let done = 0;
  let lastDone: LastDone | null = null;
  const lastDoneByLane: Partial<Record<Lane, LastDone>> = {};
  for (const s of stats) {
    passed += s.passed;
    failed += s.failed;
    done += s.passed + s.failed + s.error + s.cancelled;
    if (s.lastRun === null || s.lastCreatedAt === null) continue;
    const last = { name: s.lastRun, result: s.lastResult, createdAt: s.lastCreatedAt };
    if ((LANES as readonly string[]).includes(s.lane)) lastDoneByLane[s.lane as Lane] = last;
    if (!lastDone || last.createdAt > lastDone.createdAt || (last.createdAt === lastDone.createdAt && last.name > lastDone.name)) lastDone = last;
  }
  return {
    recipe,
    runs: done + unfinished,
    passed,
    failed,
    passRate: passed + failed > 0 ? passed / (passed + failed) : null,
    lastDone,
    lastDoneByLane,
    latest,
  };
}

export function recipeSummaries(store: Store): RecipeSummary[] {
  const history = new RunHistory(store);
  const byRecipe = new Map<string, RecipeStats[]>();
  for (const s of history.allStats()) byRecipe.set(s.recipe, [...(byRecipe.get(s.recipe) ?? []), s]);
  const unfinished = history.unfinishedByRecipe();
  const recipes = [...new Set([...byRecipe.keys(), ...unfinished.keys()])].sort((a, b) => a.localeCompare(b));
  return recipes.map((recipe) => summarise(recipe, byRecipe.get(recipe) ?? [], unfinished.get(recipe) ?? 0, history.latest(recipe, LATEST)));
}

export function recipeSummary(store: Store, recipe: string): RecipeSummary | null {
  const history = new RunHistory(store);
  const stats = history.stats(recipe);
  const latest = history.latest(recipe, LATEST);
  if (stats.length === 0 && latest.length === 0) return null;
  return summarise(recipe, stats, history.countUnfinished({ recipe }), latest);
}

/** The badge's only question: the newest Done run of the recipe (of one lane). Two rows at most. */
function lastVerdict(store: Store, recipe: string, lane: Lane | null): RunResult | null {
  const s = summarise(recipe, new RunHistory(store).stats(recipe), 0, []);
  return (lane ? s.lastDoneByLane[lane] : s.lastDone)?.result ?? null;
}

// ---- the badge -------------------------------------------------------------------------------

const BADGE: Record<string, { text: string; color: string }> = {
  passed: { text: 'passing', color: '#2e7d32' },
  failed: { text: 'failing', color: '#c62828' },
  error: { text: 'error', color: '#ef6c00' },
  cancelled: { text: 'cancelled', color: '#757575' },
};
const NO_RESULT = { text: 'no runs', color: '#9e9e9e' };

/** A flat two-part badge, `label | message`, drawn by shields.io's own badge-maker. */
export function badgeSvg(label: string, message: string, color: string): string {
  return makeBadge({ label, message, color, style: 'flat' });
}

/** The badge of a recipe: the result of its newest Done run (of `lane`, when given). */
function recipeBadge(result: RunResult | null, recipe: string, lane: Lane | null): string {
  const look = result ? (BADGE[result] ?? NO_RESULT) : NO_RESULT;
  return badgeSvg(lane ? `${recipe} ${lane}` : recipe, look.text, look.color);
}

// ---- the pages -------------------------------------------------------------------------------

const runLink = (name: string): string => `/runs/${encodeURIComponent(name)}`;
const recipeLink = (recipe: string): string => `/recipes/${encodeURIComponent(recipe)}`;

function resultText(r: { result: string | null; phase?: string }): string {
  return r.result ? `<span class="${esc(r.result)}">${esc(r.result)}</span>` : `<span class="muted">${esc(r.phase ?? 'no result')}</span>`;
}

function rate(s: RecipeSummary): string {
  return s.passRate === null ? '–' : `${Math.round(s.passRate * 100)}% <span class="muted">(${s.passed} of ${s.passed + s.failed})</span>`;
}

function triggerOf(r: RunRow): string {
  if (r.forge) return esc(`${r.forge.repo}#${r.forge.pr}${r.forge.by ? ` by ${r.forge.by}` : ''}`);
  return esc(r.trigger);
}

export function recipesPage(summaries: RecipeSummary[], now = Date.now()): string {
  const rows = summaries
    .map((s) => {
      const latest = s.latest.map((r) => `<a href="${runLink(r.name)}" title="${esc(`${r.name}: ${r.result ?? r.phase}`)}">${resultText(r)}</a>`).join(' ');
      const last = s.lastDone ? `${resultText(s.lastDone)} <span class="muted">${esc(ago(s.lastDone.createdAt, now))}</span>` : '–';
      return `<tr><td><a href="${recipeLink(s.recipe)}">${esc(s.recipe)}</a></td><td><img alt="${esc(s.recipe)} badge" src="/badge/${encodeURIComponent(s.recipe)}.svg"></td>
<td>${last}</td><td>${rate(s)}</td><td>${s.runs}</td><td>${latest}</td></tr>`;
    })
    .join('\n');
  return page(
    'recipes',
    `<h1>Recipes</h1>
${
  summaries.length
    ? `<table><thead><tr><th>recipe</th><th>badge</th><th>last verdict</th><th>pass rate</th><th>runs</th><th>latest runs (newest first)</th></tr></thead>
<tbody>${rows}</tbody></table>`
    : '<p>No runs yet.</p>'
}
<p class="muted">The pass rate counts passed and failed runs; errors and cancelled runs say nothing about a recipe.</p>`,
  );
}

const CHART_DAYS = 30;

/**
 * The pass rate over the last CHART_DAYS days as a small inline chart: one bar per day, its height
 * the runs that day, green the share that passed. Plain SVG (no script, no library), with a text
 * alternative that says the same in words.
 */
export function passRateChart(days: DayVerdicts[], now = Date.now()): string {
  const first = Math.floor(now / 86_400_000) * 86_400_000 - (CHART_DAYS - 1) * 86_400_000;
  const byDay = new Map(days.map((d) => [d.day, d]));
  const max = Math.max(1, ...days.map((d) => d.total));
  const w = 8;
  const h = 40;
  const bars: string[] = [];
  let passed = 0;
  let total = 0;
  for (let i = 0; i < CHART_DAYS; i++) {
    const day = first + i * 86_400_000;
    const d = byDay.get(day);
    if (!d) continue;
    passed += d.passed;
    total += d.passed + d.failed;
    const all = Math.round((d.total / max) * h);
    const ok = d.total ? Math.round((d.passed / d.total) * all) : 0;
    const label = `${new Date(day).toISOString().slice(0, 10)}: ${d.passed} of ${d.passed + d.failed} passed`;
    bars.push(
      `<g><title>${esc(label)}</title><rect class="bad" x="${i * (w + 2)}" y="${h - all}" width="${w}" height="${all - ok}"/><rect class="ok" x="${i * (w + 2)}" y="${h - ok}" width="${w}" height="${ok}"/></g>`,
    );
  }
  const words = total ? `${passed} of ${total} runs passed in the last ${CHART_DAYS} days` : `no finished runs in the last ${CHART_DAYS} days`;
  return `<figure class="chart"><svg role="img" aria-label="${esc(words)}" viewBox="0 0 ${CHART_DAYS * (w + 2)} ${h}" width="${CHART_DAYS * (w + 2)}" height="${h}">${bars.join('')}</svg><figcaption class="muted">${esc(words)} (one bar a day; green: passed)</figcaption></figure>`;
}

/** One page of a recipe's history: its unfinished runs (first page) and then finished ones, newest first. */
export function recipePage(
  s: RecipeSummary,
  history: RunList,
  q: RunQuery,
  baseUrl: string | null,
  warm: WarmRow | null = null,
  now = Date.now(),
  days: DayVerdicts[] = [],
): string {
  const rows = [...history.unfinished, ...history.finished]
    .map(
      (r) => `<tr><td><a href="${runLink(r.name)}">${esc(r.name)}</a></td><td><code>${esc(r.ref.slice(0, 12))}</code></td><td>${esc(r.lane)}</td>
<td>${resultText(r)}</td><td>${esc(r.reason ?? '')}</td><td>${triggerOf(r)}</td><td>${esc(ago(r.createdAt, now))}</td><td>${esc(formatDuration(r.durationMs))}</td></tr>`,
    )
    .join('\n');
  const { recipe: _recipe, ...others } = q.filter;
  const nav = [
    q.before === null ? '' : `<a href="${recipeLink(s.recipe)}${esc(queryString(others))}">newest</a>`,
    history.next
      ? `<a href="${recipeLink(s.recipe)}${esc(queryString(others, { cursor: history.next, ...(q.limit !== PAGE_SIZE ? { limit: String(q.limit) } : {}) }))}">older →</a>`
      : '',
  ].filter(Boolean);
  const badge = `/badge/${encodeURIComponent(s.recipe)}.svg`;
  const markdown = `[![cc-ci](${baseUrl ?? ''}${badge})](${baseUrl ?? ''}${recipeLink(s.recipe)})`;
  return page(
    s.recipe,
    `<h1>${esc(s.recipe)} <img alt="badge" src="${esc(badge)}"></h1>
<dl>
<dt>Pass rate</dt><dd>${rate(s)}${passRateChart(days, now)}</dd>
<dt>Runs</dt><dd>${s.runs} <a href="/runs${esc(queryString({ recipe: s.recipe }))}">(in the runs list)</a></dd>
${LANES.map((lane) => {
  const last = s.lastDoneByLane[lane];
  return `<dt>Last ${lane}</dt><dd>${last ? `<a href="${runLink(last.name)}">${resultText(last)}</a> <span class="muted">${esc(ago(last.createdAt, now))}</span>` : '–'}</dd>`;
}).join('\n')}
<dt>Badge</dt><dd><code>${esc(markdown)}</code> <span class="muted">(add <code>?lane=cold</code> or <code>?lane=quick</code> for one lane)</span></dd>
</dl>
${warm ? warmSection(warm, now) : ''}<h2>History</h2>
<table><thead><tr><th>run</th><th>ref</th><th>lane</th><th>result</th><th>reason</th><th>trigger</th><th>created</th><th>duration</th></tr></thead>
<tbody>${rows}</tbody></table>
${nav.length ? `<p>${nav.join(' · ')}</p>` : ''}`,
  );
}

/** The warm app of a recipe (docs/warm.md): promoted and canonical commit, health, upkeep, snapshot, last reconcile, holder. */
function warmSection(w: WarmRow, now: number): string {
  const commit = (sha: string | null) => (sha ? `<code>${esc(sha.slice(0, 12))}</code>` : '–');
  return `<h2>Warm app</h2>
<dl>
<dt>Promoted</dt><dd>${commit(w.promotedCommit)}${w.promotedRun ? ` by <a href="${runLink(w.promotedRun)}">${esc(w.promotedRun)}</a>` : ''}${w.promotedAt ? ` <span class="muted">${esc(ago(w.promotedAt, now))}</span>` : ''}</dd>
<dt>Branch head</dt><dd>${commit(w.head)}${w.source ? ` <span class="muted">(${esc(w.source.branch)})</span>` : ''}${w.candidateRun ? ` being tested by <a href="${runLink(w.candidateRun)}">${esc(w.candidateRun)}</a>` : ''}</dd>
<dt>App</dt><dd>${w.domain ? `<code>${esc(w.domain)}</code>` : '–'}</dd>
<dt>Canonical</dt><dd>${commit(w.canonicalCommit)}${w.canonicalVersion ? ` version ${esc(w.canonicalVersion)}` : ''}${w.failedCommit ? ` <span class="muted">(promoted ${esc(w.failedCommit.slice(0, 12))} failed its health gate and was rolled back)</span>` : ''}</dd>
<dt>Health</dt><dd>${esc(w.health)}${w.healthReason ? ` <span class="muted">${esc(w.healthReason)}</span>` : ''}</dd>
<dt>Upkeep</dt><dd>${w.upkeep ? esc(w.upkeep) : w.returnPending ? `to be returned to canonical after ${esc(w.returnPending)}` : '–'}</dd>
<dt>Snapshot</dt><dd>${w.snapshot ? esc(w.snapshot) : '–'}</dd>
<dt>Last reconcile</dt><dd>${w.lastReconcileAt ? esc(ago(w.lastReconcileAt, now)) : '–'}</dd>
<dt>Holder</dt><dd>${w.holder ? `<a href="${runLink(w.holder)}">${esc(w.holder)}</a>` : '–'}</dd>
</dl>
`;
}

/** GET /recipes, /recipes/:recipe[?cursor&limit&result&lane&pr&repo] and /badge/:recipe.svg[?lane=cold|quick]. */
export function registerRecipes(app: FastifyInstance, o: { store: Store; paths: StatePaths; baseUrl: () => string | null; domainBase?: string }): void {
  app.get('/recipes', async (_request, reply) => reply.type('text/html; charset=utf-8').send(recipesPage(recipeSummaries(o.store))));

  app.get<{ Params: { recipe: string } }>('/recipes/:recipe', async (request, reply) => {
    const { recipe } = request.params;
    const summary = isName(recipe) ? recipeSummary(o.store, recipe) : null;
    if (!summary) return reply.code(404).type('text/plain; charset=utf-8').send(`no runs of a recipe named ${recipe}\n`);
    const parsed = parseRunQuery(request.query);
    if (!parsed.ok) return reply.code(400).type('text/plain; charset=utf-8').send(`bad query: ${parsed.error}\n`);
    const q = { ...parsed.query, filter: { ...parsed.query.filter, recipe } };
    const warm = warmRows(o.store, o.paths, o.domainBase ?? null).find((w) => w.recipe === recipe) ?? null;
    const now = Date.now();
    const days = new RunHistory(o.store).dailyVerdicts(recipe, now - CHART_DAYS * 86_400_000);
    return reply.type('text/html; charset=utf-8').send(recipePage(summary, runList(o.store, q), q, o.baseUrl(), warm, now, days));
  });

  app.get<{ Params: { recipe: string }; Querystring: { lane?: string } }>('/badge/:recipe.svg', async (request, reply) => {
    const { recipe } = request.params;
    const lane = request.query.lane ?? null;
    if (!isName(recipe)) return reply.code(404).type('text/plain; charset=utf-8').send('not a recipe name\n');
    if (lane !== null && !(LANES as readonly string[]).includes(lane)) {
      return reply
        .code(400)
        .type('text/plain; charset=utf-8')
        .send(`lane must be one of ${LANES.join(', ')}\n`);
    }
    // A recipe without runs still gets a badge ("no runs"): a README must not show a broken image.
    return reply
      .type('image/svg+xml; charset=utf-8')
      .header('cache-control', 'no-cache, max-age=0')
      .send(recipeBadge(lastVerdict(o.store, recipe, lane as Lane | null), recipe, lane as Lane | null));
  });
}
