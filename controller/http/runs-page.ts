import { basename } from 'node:path';
import { formatDuration } from '../clients/forge/report-text.js';
import type { RunList, RunRow } from '../views/run-view.js';
import { MAX_UNFINISHED } from '../views/run-view.js';
import { PAGE_SIZE, queryString, type RunQuery } from '../views/run-query.js';
import { ago, esc, page } from './html.js';

/**
 * The runs list (docs/architecture.md, Web pages): on the first page the runs not finished yet —
 * queued ones with their place in the queue and why they wait — then finished runs newest first,
 * a page at a time, narrowed by recipe, result, lane or pull request. It reads only what
 * run-view.ts computes, so it says what `cc-ci get runs` says. It follows changes live: a small
 * script listens to /events/runs (runs-stream.ts) and replaces the rows that changed, in place.
 */

const runLink = (name: string): string => `/runs/${encodeURIComponent(name)}`;

/** One row of the list: the page renders it, and the live stream sends it again when the run changes. */
export function runRowHtml(r: RunRow, now = Date.now()): string {
  const info = r.queuePosition !== null ? `#${r.queuePosition} in queue: ${r.waiting ?? ''}` : (r.reason ?? '');
  const result = r.result ? `<span class="${esc(r.result)}">${esc(r.result)}</span>` : '–';
  const pr = r.forge ? ` <span class="muted">${esc(`${r.forge.repo}#${r.forge.pr}`)}</span>` : '';
  return `<tr id="run-${esc(r.name)}" data-created="${r.createdAt}" data-name="${esc(r.name)}"><td><a href="${runLink(r.name)}">${esc(r.name)}</a>${pr}</td><td><a href="/recipes/${esc(encodeURIComponent(r.recipe))}">${esc(r.recipe)}</a></td><td><code>${esc(r.ref.slice(0, 12))}</code></td><td>${esc(r.lane)}</td><td>${esc(r.phase)}${r.tier ? ` <span class="muted">(${esc(r.tier)})</span>` : ''}</td><td>${result}</td><td>${esc(info)}</td><td>${esc(ago(r.createdAt, now))}</td><td>${esc(formatDuration(r.durationMs))}</td></tr>`;
}

/**
 * Keeps the list current without reloading it: each `rows` event carries the rows that changed
 * (already escaped by the server, as the page's own rows are); a row on the page is replaced, a
 * new unfinished run goes on top of the first page, a finished one moves to its place by creation
 * time. `reload` (more changed than a stream holds) reloads the page.
 */
export const RUNS_LIVE_SCRIPT = `
const table = document.getElementById('runs'), live = document.getElementById('live');
const first = table.dataset.first === '1';
const es = new EventSource(table.dataset.events);
es.onopen = () => { live.textContent = 'live'; };
es.onerror = () => { live.textContent = 'reconnecting…'; };
const newer = (a, b) => a.created > b.created || (a.created === b.created && a.name > b.name);
const place = (body, row) => {
  const key = { created: Number(row.dataset.created), name: row.dataset.name };
  for (const other of body.rows) {
    if (newer(key, { created: Number(other.dataset.created), name: other.dataset.name })) return body.insertBefore(row, other);
  }
  if (body.id === 'unfinished') body.appendChild(row);
};
es.addEventListener('rows', (m) => {
  for (const r of JSON.parse(m.data).rows) {
    const holder = document.createElement('tbody');
    holder.innerHTML = r.html;
    const row = holder.firstElementChild;
    const old = document.getElementById('run-' + r.name);
    const body = document.getElementById(r.unfinished ? 'unfinished' : 'finished');
    if (old && old.parentElement === body) old.replaceWith(row);
    else if (old || first) {
      if (old) old.remove();
      if (first && body) place(body, row);
    }
  }
  document.getElementById('empty')?.remove();
});
es.addEventListener('reload', () => location.reload());`;

export function runsPage(list: RunList, q: RunQuery, now = Date.now()): string {
  const first = q.before === null;
  const filtered = Object.keys(q.filter).length > 0;
  const rows = (rs: RunRow[]) => rs.map((r) => runRowHtml(r, now)).join('\n');
  const more =
    list.unfinishedTotal > list.unfinished.length
      ? `<p class="muted">${list.unfinishedTotal - list.unfinished.length} more unfinished runs are not shown (the newest ${MAX_UNFINISHED} are).</p>`
      : '';
  const nav = [
    first ? '' : `<a href="/runs${esc(queryString(q.filter))}">newest</a>`,
    list.next
      ? `<a href="/runs${esc(queryString(q.filter, { cursor: list.next, ...(q.limit !== PAGE_SIZE ? { limit: String(q.limit) } : {}) }))}">older →</a>`
      : '',
  ].filter(Boolean);
  const bad = list.invalidSpecs
    .map((i) => `<tr><td><code>${esc(basename(i.file))}</code></td><td>${esc(i.name ?? '–')}</td><td>${esc(i.error)}</td></tr>`)
    .join('\n');
  const option = (name: string, values: readonly string[], current: string | undefined) =>
    `<select name="${name}" aria-label="${name}"><option value="">any ${name}</option>${values.map((v) => `<option${v === current ? ' selected' : ''}>${v}</option>`).join('')}</select>`;
  const empty = list.unfinished.length === 0 && list.finished.length === 0;
  return page(
    'runs',
    `<h1>Runs <span id="live" class="muted"></span></h1>
<form method="get" action="/runs">
<input name="recipe" placeholder="recipe" aria-label="recipe" size="14" value="${esc(q.filter.recipe ?? '')}">
${option('result', ['passed', 'failed', 'error', 'cancelled'], q.filter.result)}
${option('lane', ['cold', 'quick'], q.filter.lane)}
<input name="repo" placeholder="owner/repo" aria-label="pull request repository (owner/repo)" size="18" value="${esc(q.filter.repo ?? '')}">
<input name="pr" placeholder="PR" aria-label="pull request number" size="5" inputmode="numeric" value="${esc(q.filter.pr ?? '')}">
<button>filter</button>${filtered ? ' <a href="/runs">all runs</a>' : ''}
</form>
<table id="runs" data-first="${first ? '1' : '0'}" data-events="${esc(`/events/runs${queryString(q.filter)}`)}">
<thead><tr><th>name</th><th>recipe</th><th>ref</th><th>lane</th><th>phase</th><th>result</th><th>queue / reason</th><th>created</th><th>duration</th></tr></thead>
<tbody id="unfinished">${rows(list.unfinished)}</tbody>
<tbody id="finished">${rows(list.finished)}</tbody>
</table>
${empty ? `<p id="empty">${first ? (filtered ? 'No runs match.' : 'No runs yet.') : 'No older runs.'}</p>` : ''}${more}
${nav.length ? `<p>${nav.join(' · ')}</p>` : ''}
${
  list.invalidSpecs.length
    ? `<h2>Invalid spec files</h2><p class="muted">Left where they are in the specs directory; fix or delete them.${list.invalidTotal > list.invalidSpecs.length ? ` ${list.invalidTotal - list.invalidSpecs.length} more are not shown.` : ''}</p>
<table><thead><tr><th>file</th><th>name</th><th>error</th></tr></thead><tbody>${bad}</tbody></table>`
    : ''
}
<noscript><p class="muted">Without JavaScript this page does not follow changes: reload it.</p></noscript>
<script>${RUNS_LIVE_SCRIPT}</script>`,
  );
}
