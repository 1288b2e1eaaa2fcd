import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../state/store.js';
import type { StatePaths } from '../model/paths.js';
import { acceptedSpec, isName } from '../model/spec.js';
import { cancelRun, rerunRun, type ActionOutcome } from '../runtime/run-actions.js';
import { crossSiteProblem, type ActionTarget, type Auth } from './auth.js';
import { esc, page } from './html.js';

/**
 * Cancel and rerun over HTTP (docs/architecture.md, "Actions"): the JSON routes under /api/v1/
 * for the CLI and scripts, and the same as forms on the run page for people. Each needs an
 * actor (auth.ts) allowed on the run, and — when a cookie carries it — proof that the request
 * comes from cc-ci's own page. What is done is recorded in the run's log with who did it
 * (controller/runtime/run-actions.ts); a refusal changes nothing.
 */

export interface ActionDeps {
  store: Store;
  paths: StatePaths;
  auth: Auth;
  /** The serving controller's cancel (records it and stops the running step at once). */
  cancel?: (name: string, reason: string) => void;
}

type Verb = 'cancel' | 'rerun';

interface ActionBody {
  failed?: unknown;
  _form?: unknown;
}

/** A form is a few short fields: anything larger is not one of cc-ci's forms. */
const FORM_LIMIT = 4096;

function targetOf(store: Store, name: string): ActionTarget | null {
  const run = isName(name) ? store.getRun(name) : undefined;
  if (!run) return null;
  const forge = acceptedSpec(run).spec.trigger?.forge;
  return { recipe: run.recipe, forgeRepo: forge ? { owner: forge.owner, repo: forge.repo } : null };
}

type Decided = { ok: true; outcome: ActionOutcome } | { ok: false; status: number; message: string };

async function decide(deps: ActionDeps, request: FastifyRequest<{ Params: { name: string }; Body: ActionBody | undefined }>, verb: Verb): Promise<Decided> {
  const { name } = request.params;
  const target = targetOf(deps.store, name);
  if (!target) return { ok: false, status: 404, message: `no run named ${name}` };
  const who = await deps.auth.actorOf(request);
  // A request that sends a token is judged by it alone: a bad one is not rescued by a cookie.
  if (request.headers.authorization !== undefined && who?.actor.via !== 'token') {
    return { ok: false, status: 401, message: 'the token is not known (revoked, or mistyped): ask the operator for one (cc-ci token create)' };
  }
  if (!who) return { ok: false, status: 401, message: `log in to ${verb} runs, or send an API token (Authorization: Bearer)` };
  const body = request.body ?? {};
  const forgery = crossSiteProblem(request, who.actor, who.source, typeof body._form === 'string' ? body._form : undefined);
  if (forgery) return { ok: false, status: 403, message: forgery };
  const refusal = await who.source.refusal(who.actor, target);
  if (refusal) return { ok: false, status: 403, message: refusal };
  const failed = body.failed === true || body.failed === '1' || body.failed === 'true' || (request.query as { failed?: string }).failed === '1';
  const outcome =
    verb === 'cancel' ? cancelRun(deps.store, name, who.actor.login, deps.cancel) : rerunRun(deps.store, deps.paths, name, { failed, by: who.actor.login });
  return { ok: true, outcome };
}

function jsonAnswer(reply: FastifyReply, verb: Verb, d: Decided): FastifyReply {
  if (!d.ok) return reply.code(d.status).send({ error: d.message });
  if (!d.outcome.ok) return reply.code(d.outcome.status).send({ error: d.outcome.message });
  // A cancel is carried out after the answer (202); a rerun is a new run (201, where it lives).
  if (verb === 'rerun') reply.code(201).header('location', `/api/v1/runs/${encodeURIComponent(d.outcome.run)}`);
  else reply.code(202);
  return reply.send({ run: d.outcome.run, message: d.outcome.message });
}

function pageAnswer(reply: FastifyReply, name: string, d: Decided): FastifyReply {
  const refused = !d.ok ? d : !d.outcome.ok ? { status: d.outcome.status, message: d.outcome.message } : null;
  if (refused) {
    return reply
      .code(refused.status)
      .type('text/html; charset=utf-8')
      .send(
        page(
          'not done',
          `<h1>Not done</h1><p role="alert">${esc(refused.message)}</p><p><a href="/runs/${esc(encodeURIComponent(name))}">Back to ${esc(name)}</a></p>`,
        ),
      );
  }
  // 303: the browser follows with a GET, so a reload of the next page does not post again.
  const to = d.ok && d.outcome.ok ? d.outcome.run : name;
  return reply
    .code(303)
    .header('location', `/runs/${encodeURIComponent(to)}`)
    .send();
}

export function registerActions(app: FastifyInstance, deps: ActionDeps): void {
  // cc-ci's own forms post urlencoded fields; three lines rather than a dependency (@fastify/formbody).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
  for (const verb of ['cancel', 'rerun'] as const) {
    app.post<{ Params: { name: string }; Body: ActionBody | undefined }>(`/api/v1/runs/:name/${verb}`, { bodyLimit: FORM_LIMIT }, async (request, reply) =>
      jsonAnswer(reply, verb, await decide(deps, request, verb)),
    );
    app.post<{ Params: { name: string }; Body: ActionBody | undefined }>(`/runs/:name/${verb}`, { bodyLimit: FORM_LIMIT }, async (request, reply) =>
      pageAnswer(reply, request.params.name, await decide(deps, request, verb)),
    );
  }
}
