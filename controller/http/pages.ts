import { formatDuration } from '../clients/forge/report-text.js';
import type { RunDetail } from '../views/run-view.js';
import { ago, esc, page, withoutCredentials } from './html.js';

/**
 * One run's page (docs/architecture.md, Web pages), with its tier table, evidence and a live log
 * fed by server-sent events (the runs list is runs-page.ts). It reads only what run-view.ts
 * computes, so it says what `cc-ci describe run` says.
 */

const runLink = (name: string): string => `/runs/${encodeURIComponent(name)}`;

function resultCell(result: string | null): string {
  return result ? `<span class="${esc(result)}">${esc(result)}</span>` : '–';
}

export const LIVE_LOG_SCRIPT = `
const log = document.getElementById('log'), live = document.getElementById('live');
const es = new EventSource(log.dataset.events);
es.onopen = () => { live.textContent = 'live'; };
es.onerror = () => { live.textContent = 'reconnecting…'; };
es.addEventListener('log', (m) => {
  const e = JSON.parse(m.data);
  if (e.text.startsWith('verdict: ')) live.textContent = e.text.split(' — ')[0] + ' (final; cleaning up)';
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent += e.line + '\\n';
  if (stick) log.scrollTop = log.scrollHeight;
});
es.addEventListener('skipped', (m) => {
  const e = JSON.parse(m.data);
  if (log.textContent === '') log.textContent = '… ' + e.skipped + ' earlier lines are not shown: open this page with ?all=1 for the whole log\\n';
});
es.addEventListener('end', (m) => {
  const e = JSON.parse(m.data);
  live.textContent = 'finished: ' + e.result + ' (reload for the final tier table)';
  es.close();
});`;

/** A verdict given while the run's apps are still being removed says so: the verdict is final, the run is not over. */
function cleaningUp(run: RunDetail['run']): string {
  if (run.phase !== 'TearingDown' || run.retryPending || run.result === null) return '';
  return ' <span class="muted">(final; cleaning up: the run\'s apps are being removed)</span>';
}

/** `wholeLog`: replay every line of the live log, not only its tail (the sse.ts TAIL_LINES). */
export function runPage(d: RunDetail, forgeUrl: string | null, now = Date.now(), wholeLog = false): string {
  const { run, spec, row } = d;
  const forge = spec.spec.trigger?.forge;
  const prUrl =
    forge && forgeUrl ? `${forgeUrl.replace(/\/+$/, '')}/${encodeURIComponent(forge.owner)}/${encodeURIComponent(forge.repo)}/pulls/${forge.pr}` : null;
  const trigger = forge
    ? `${prUrl ? `<a href="${esc(prUrl)}">${esc(`${forge.owner}/${forge.repo}#${forge.pr}`)}</a>` : esc(`${forge.owner}/${forge.repo}#${forge.pr}`)}${forge.by ? ` by ${esc(forge.by)}` : ''}`
    : esc(spec.spec.trigger?.kind ?? 'file');
  const tiers = d.tiers
    .map(
      (t) =>
        `<tr><td>${esc(t.tier)}</td><td class="${esc(t.result ?? '')}">${esc(t.result ?? (t.startedAt ? 'running' : 'pending'))}</td><td>${esc(formatDuration(t.durationMs))}</td><td>${esc(t.reason ?? '')}</td></tr>`,
    )
    .join('\n');
  const evidence = d.evidence
    .filter((e) => e.path.startsWith('evidence/'))
    .map((e) => {
      const rel = e.path.slice('evidence/'.length);
      const href = `${runLink(run.name)}/artifacts/${rel.split('/').map(encodeURIComponent).join('/')}`;
      return `<li><a href="${esc(href)}">${esc(rel)}</a> <span class="muted">(${e.bytes} bytes)</span></li>`;
    })
    .join('\n');
  const quick =
    run.lane !== 'quick'
      ? ''
      : run.laneNote
        ? ` <span class="muted">(fell back to cold: ${esc(run.laneNote)})</span>`
        : ' <span class="muted">(quick lane: a lower-confidence result)</span>';
  return page(
    run.name,
    `<h1>${esc(run.name)} ${run.result ? resultCell(run.result) : `<span class="muted">${esc(run.phase)}</span>`}</h1>
<dl>
<dt>Recipe</dt><dd><a href="/recipes/${esc(encodeURIComponent(spec.spec.recipe))}">${esc(spec.spec.recipe)}</a></dd>
<dt>Source</dt><dd><code>${esc(withoutCredentials(spec.spec.source.repo))}</code> @ <code>${esc(spec.spec.source.ref)}</code>${run.commitSha ? ` (<code>${esc(run.commitSha)}</code>)` : ''}</dd>
<dt>Lane</dt><dd>${esc(run.lane)}${quick}</dd>
<dt>Trigger</dt><dd>${trigger}</dd>
<dt>Phase</dt><dd>${esc(run.phase)}${run.step ? ` <span class="muted">(${esc(run.step)})</span>` : ''}</dd>
<dt>Result</dt><dd>${resultCell(run.result)}${cleaningUp(run)}</dd>
${run.teardownProblem ? `<dt>Teardown</dt><dd><span class="error">failed after the verdict</span>: ${esc(run.teardownProblem)} <span class="muted">(a problem of this server, not of the recipe: the verdict stands; the janitor reaps what is left)</span></dd>` : ''}
<dt>Reason</dt><dd>${esc(run.reason ?? '–')}</dd>
${row.queuePosition !== null ? `<dt>Queue</dt><dd>#${row.queuePosition}: ${esc(row.waiting ?? '')}</dd>` : ''}
<dt>Attempt</dt><dd>${run.attempt}</dd>
<dt>Created</dt><dd>${esc(new Date(run.createdAt).toISOString())} (${esc(ago(run.createdAt, now))})</dd>
<dt>Duration</dt><dd>${esc(formatDuration(row.durationMs))}</dd>
</dl>
<h2>Tiers</h2>
${tiers ? `<table><thead><tr><th>tier</th><th>result</th><th>duration</th><th>reason</th></tr></thead><tbody>${tiers}</tbody></table>` : '<p class="muted">Not planned yet.</p>'}
<h2>Evidence</h2>
${evidence ? `<ul>${evidence}</ul>` : '<p class="muted">None.</p>'}
<h2>Log <span id="live" class="muted"></span></h2>
<pre id="log" data-events="${esc(`${runLink(run.name)}/events${wholeLog ? '?all=1' : ''}`)}"></pre>
<noscript><p>The live log needs JavaScript; <a href="/api/runs/${esc(encodeURIComponent(run.name))}">the run as JSON</a>.</p></noscript>
<script>${LIVE_LOG_SCRIPT}</script>`,
  );
}
