import type { StatePaths } from '../model/paths.js';
import { warmRows, type WarmRow } from '../views/warm-view.js';
import { makeBadge } from 'badge-maker';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../../state/store.js';
import type { RunRecord } from '../../state/types.js';
import { formatDuration } from '../clients/forge/report-text.js';
import { acceptedSpec, isName } from '../model/spec.js';
import { ago, esc, page } from './html.js';

/**
 * The recipe overview (docs/architecture.md, Web pages): per recipe its latest runs and pass rate, a history page, and
 * a status badge for a README. Everything is computed from the runs table on each request, so it
 * says what the run pages say. The pass rate counts verdicts only: a run that ended in `error`
 * or was cancelled says nothing about the recipe.
 */

const LANES = ['cold', 'quick'] as const;
type Lane = (typeof LANES)[number];

/** How many of the newest runs the overview shows per recipe. */
const LATEST = 10;

export interface RecipeSummary {
  recipe: string;
  runs: number;
  passed: number;
  failed: number;
  /** passed / (passed + failed), null before the first verdict. */
  passRate: number | null;
  /** The newest Done run, per lane and of any lane. */
  lastDone: RunRecord | null;
  lastDoneByLane: Partial<Record<Lane, RunRecord>>;
  /** Every run of the recipe, newest first. */
  history: RunRecord[];
  /** The first LATEST of the history. */
  latest: RunRecord[];
}

function summarise(recipe: string, runs: RunRecord[]): RecipeSummary {
  const newestFirst = [...runs].sort((a, b) => b.createdAt - a.createdAt || b.name.localeCompare(a.name));
  const done = newestFirst.filter((r) => r.phase === 'Done');
  const passed = done.filter((r) => r.result === 'passed').length;
  const failed = done.filter((r) => r.result === 'failed').length;
  const lastDoneByLane: Partial<Record<Lane, RunRecord>> = {};
  for (const lane of LANES) {
    const last = done.find((r) => r.lane === lane);
    if (last) lastDoneByLane[lane] = last;
  }
  return {
    recipe,
    runs: runs.length,
    passed,
    failed,
    passRate: passed + failed > 0 ? passed / (passed + failed) : null,
    lastDone: done[0] ?? null,
    lastDoneByLane,
    history: newestFirst,
    latest: newestFirst.slice(0, LATEST),
  };
}

export function recipeSummaries(store: Store): RecipeSummary[] {
  const byRecipe = new Map<string, RunRecord[]>();
  for (const r of store.listRuns()) {
    const runs = byRecipe.get(r.recipe);
    if (runs) runs.push(r);
    else byRecipe.set(r.recipe, [r]);
  }
  return [...byRecipe.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([recipe, runs]) => summarise(recipe, runs));
}

export function recipeSummary(store: Store, recipe: string): RecipeSummary | null {
  const runs = store.listRuns().filter((r) => r.recipe === recipe);
  return runs.length ? summarise(recipe, runs) : null;
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
export function recipeBadge(summary: RecipeSummary | null, recipe: string, lane: Lane | null): string {
  const run = summary ? (lane ? (summary.lastDoneByLane[lane] ?? null) : summary.lastDone) : null;
  const look = run?.result ? (BADGE[run.result] ?? NO_RESULT) : NO_RESULT;
  return badgeSvg(lane ? `${recipe} ${lane}` : recipe, look.text, look.color);
}

// ---- the pages -------------------------------------------------------------------------------

const runLink = (name: string): string => `/runs/${encodeURIComponent(name)}`;
const recipeLink = (recipe: string): string => `/recipes/${encodeURIComponent(recipe)}`;

function resultText(r: RunRecord): string {
  return r.result ? `<span class="${esc(r.result)}">${esc(r.result)}</span>` : `<span class="muted">${esc(r.phase)}</span>`;
}

function rate(s: RecipeSummary): string {
  return s.passRate === null ? '–' : `${Math.round(s.passRate * 100)}% <span class="muted">(${s.passed} of ${s.passed + s.failed})</span>`;
}

function durationOf(r: RunRecord): number | null {
  const end = r.finishedAt ?? (r.phase === 'Done' ? r.updatedAt : null);
  return r.startedAt !== null && end !== null ? end - r.startedAt : null;
}

function triggerOf(r: RunRecord): string {
  const t = acceptedSpec(r).spec.trigger;
  if (t?.forge) return esc(`${t.forge.owner}/${t.forge.repo}#${t.forge.pr}${t.forge.by ? ` by ${t.forge.by}` : ''}`);
  return esc(t?.kind ?? 'file');
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
    '<meta http-equiv="refresh" content="30">',
  );
}

export function recipePage(s: RecipeSummary, baseUrl: string | null, warm: WarmRow | null = null, now = Date.now()): string {
  const rows = s.history
    .map((r) => {
      const spec = acceptedSpec(r);
      return `<tr><td><a href="${runLink(r.name)}">${esc(r.name)}</a></td><td><code>${esc(spec.spec.source.ref.slice(0, 12))}</code></td><td>${esc(r.lane)}</td>
<td>${resultText(r)}</td><td>${esc(r.reason ?? '')}</td><td>${triggerOf(r)}</td><td>${esc(ago(r.createdAt, now))}</td><td>${esc(formatDuration(durationOf(r)))}</td></tr>`;
    })
    .join('\n');
  const badge = `/badge/${encodeURIComponent(s.recipe)}.svg`;
  const markdown = `[![cc-ci](${baseUrl ?? ''}${badge})](${baseUrl ?? ''}${recipeLink(s.recipe)})`;
  return page(
    s.recipe,
    `<h1>${esc(s.recipe)} <img alt="badge" src="${esc(badge)}"></h1>
<dl>
<dt>Pass rate</dt><dd>${rate(s)}</dd>
<dt>Runs</dt><dd>${s.runs}</dd>
${LANES.map((lane) => {
  const last = s.lastDoneByLane[lane];
  return `<dt>Last ${lane}</dt><dd>${last ? `<a href="${runLink(last.name)}">${resultText(last)}</a> <span class="muted">${esc(ago(last.createdAt, now))}</span>` : '–'}</dd>`;
}).join('\n')}
<dt>Badge</dt><dd><code>${esc(markdown)}</code> <span class="muted">(add <code>?lane=cold</code> or <code>?lane=quick</code> for one lane)</span></dd>
</dl>
${warm ? warmSection(warm, now) : ''}<h2>History</h2>
<table><thead><tr><th>run</th><th>ref</th><th>lane</th><th>result</th><th>reason</th><th>trigger</th><th>created</th><th>duration</th></tr></thead>
<tbody>${rows}</tbody></table>`,
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

/** GET /recipes, /recipes/:recipe and /badge/:recipe.svg[?lane=cold|quick]. */
export function registerRecipes(app: FastifyInstance, o: { store: Store; paths: StatePaths; baseUrl: () => string | null; domainBase?: string }): void {
  app.get('/recipes', async (_request, reply) => reply.type('text/html; charset=utf-8').send(recipesPage(recipeSummaries(o.store))));

  app.get<{ Params: { recipe: string } }>('/recipes/:recipe', async (request, reply) => {
    const { recipe } = request.params;
    const summary = isName(recipe) ? recipeSummary(o.store, recipe) : null;
    if (!summary) return reply.code(404).type('text/plain; charset=utf-8').send(`no runs of a recipe named ${recipe}\n`);
    const warm = warmRows(o.store, o.paths, o.domainBase ?? null).find((w) => w.recipe === recipe) ?? null;
    return reply.type('text/html; charset=utf-8').send(recipePage(summary, o.baseUrl(), warm));
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
      .send(recipeBadge(recipeSummary(o.store, recipe), recipe, lane as Lane | null));
  });
}
