import type { FastifyInstance } from 'fastify';

/**
 * GET /api/v1/openapi.json: the API the pages and the CLI share, described for people writing
 * scripts against it. Written by hand (the routes carry no JSON schemas to generate it from);
 * test/forge/api-v1.test.ts checks that every /api/v1 route is described here and nothing more.
 */

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const nullable = (t: 'string' | 'integer') => ({ type: [t, 'null'] });
const error = { type: 'object', required: ['error'], properties: { error: str } } as const;
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$', maxLength: 63 } };
const filters = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200 }, description: 'finished runs per page' },
  { name: 'cursor', in: 'query', schema: str, description: 'the `next` of the previous page: finished runs older than it' },
  { name: 'recipe', in: 'query', schema: str },
  { name: 'result', in: 'query', schema: { enum: ['passed', 'failed', 'error', 'cancelled'] } },
  { name: 'lane', in: 'query', schema: { enum: ['cold', 'quick'] } },
  { name: 'pr', in: 'query', schema: int, description: 'pull request number' },
  { name: 'repo', in: 'query', schema: str, description: "owner/name of the pull request's repository" },
];
const actionAuth = [{ bearer: [] }, { session: [] }];
const actionResponses = (ok: Record<string, unknown>) => ({
  ...ok,
  '401': errorResponse('no actor: no session and no token, or a token that is not known'),
  '403': errorResponse('not allowed on this run, or a cross-site request'),
  '404': errorResponse('no such run'),
  '409': errorResponse('not possible in the state the run is in (finished, nothing failed, followed by a newer run)'),
});
const actionDone = { type: 'object', required: ['run', 'message'], properties: { run: str, message: str } };

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'cc-ci',
    version: 'v1',
    description:
      'Runs of Co-op Cloud recipes: list, read, follow, cancel and rerun. Reading is open unless the operator requires a login; actions need an API token (cc-ci token create) or a session from logging in through the forge.',
  },
  paths: {
    '/api/v1/runs': {
      get: {
        summary: 'Unfinished runs (with queue places), then a page of finished runs, newest first',
        parameters: filters,
        responses: {
          '200': { description: 'a page', content: { 'application/json': { schema: { $ref: '#/components/schemas/RunList' } } } },
          '400': errorResponse('a filter or cursor that does not parse'),
        },
      },
    },
    '/api/v1/runs/{name}': {
      get: {
        summary: 'One run: spec, tiers, apps, steps, evidence (what `cc-ci describe run` prints)',
        parameters: [nameParam],
        responses: {
          '200': { description: 'the run', content: { 'application/json': { schema: { $ref: '#/components/schemas/RunDescription' } } } },
          '404': {
            description: 'no such run; `invalidSpecs` lists spec files of that name that could not be taken in',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['error'],
                  properties: { error: str, invalidSpecs: { type: 'array', items: { $ref: '#/components/schemas/InvalidSpec' } } },
                },
              },
            },
          },
        },
      },
    },
    '/api/v1/runs/{name}/cancel': {
      post: {
        summary: 'Cancel an unfinished run: it is torn down and reported cancelled',
        parameters: [nameParam],
        security: actionAuth,
        responses: actionResponses({ '202': { description: 'cancel recorded', content: { 'application/json': { schema: actionDone } } } }),
      },
    },
    '/api/v1/runs/{name}/rerun': {
      post: {
        summary: 'A new run at the same commit, lane and trigger: every tier, or (failed) from the first tier that did not pass',
        parameters: [nameParam, { name: 'failed', in: 'query', schema: { enum: ['1'] } }],
        requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { failed: { type: 'boolean' } } } } } },
        security: actionAuth,
        responses: actionResponses({
          '201': { description: 'the new run (Location names it)', content: { 'application/json': { schema: actionDone } } },
        }),
      },
    },
    '/api/v1/runs/{name}/events': {
      get: {
        summary:
          "The run's log as server-sent events: `log` (a line, `id` its sequence number), `state` (phase, step, tiers when they changed), `skipped` (lines not replayed), `end` (the run is done; the stream ends), `caught-up` (with follow=0: the log so far was sent; the stream ends). Resume with Last-Event-ID.",
        parameters: [
          nameParam,
          { name: 'all', in: 'query', schema: { enum: ['1'] }, description: 'replay the whole log, not its tail' },
          {
            name: 'follow',
            in: 'query',
            schema: { enum: ['0'] },
            description: 'end after what the log holds now instead of following the run until it is done',
          },
        ],
        responses: { '200': { description: 'an event stream', content: { 'text/event-stream': { schema: str } } }, '404': errorResponse('no such run') },
      },
    },
    '/api/v1/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'an API token from `cc-ci token create NAME`' },
      session: {
        type: 'apiKey',
        in: 'cookie',
        name: 'ccci_session',
        description: 'a login through the forge; forms also carry the session’s form token (_form)',
      },
    },
    schemas: {
      Error: error,
      RunRow: {
        type: 'object',
        properties: {
          name: str,
          recipe: str,
          ref: str,
          lane: str,
          phase: str,
          tier: nullable('string'),
          result: nullable('string'),
          reason: nullable('string'),
          queuePosition: nullable('integer'),
          waiting: nullable('string'),
          attempt: int,
          createdAt: int,
          startedAt: nullable('integer'),
          finishedAt: nullable('integer'),
          durationMs: nullable('integer'),
          domains: { type: 'array', items: str },
          trigger: str,
          forge: { type: ['object', 'null'] },
        },
      },
      RunList: {
        type: 'object',
        properties: {
          runs: { type: 'array', items: { $ref: '#/components/schemas/RunRow' } },
          unfinishedTotal: int,
          next: nullable('string'),
          invalidSpecs: { type: 'array', items: { $ref: '#/components/schemas/InvalidSpec' } },
          invalidTotal: int,
        },
      },
      InvalidSpec: { type: 'object', properties: { file: str, name: nullable('string'), error: str } },
      RunDescription: {
        allOf: [
          { $ref: '#/components/schemas/RunRow' },
          {
            type: 'object',
            properties: {
              spec: { type: 'object', description: 'the run spec as accepted, its repository without credentials' },
              commitSha: nullable('string'),
              laneNote: nullable('string'),
              prunedAt: nullable('integer'),
              step: nullable('string'),
              cancelRequested: { type: 'boolean' },
              cancelReason: nullable('string'),
              retries: { type: 'array', items: { type: 'object', properties: { attempt: int, reason: str, at: int } } },
              understood: { type: ['array', 'null'], items: str, description: 'what cc-ci understood of the recipe before deploying it, in words' },
              customization: {},
              tiers: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    tier: str,
                    position: int,
                    result: nullable('string'),
                    reason: nullable('string'),
                    startedAt: nullable('integer'),
                    finishedAt: nullable('integer'),
                    durationMs: nullable('integer'),
                  },
                },
              },
              apps: { type: 'array', items: { type: 'object', properties: { domain: str, purpose: str, state: str, port: nullable('integer') } } },
              steps: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { id: int, attempt: int, name: str, state: str, detail: nullable('string'), startedAt: int, finishedAt: nullable('integer') },
                },
              },
              dir: { type: 'string', description: "the run's directory on the server, its paths named by placeholders (<state>)" },
              evidence: { type: 'array', items: { type: 'object', properties: { path: str, bytes: int, url: nullable('string') } } },
            },
          },
        ],
      },
    },
  },
} as const;

export function registerOpenApi(app: FastifyInstance): void {
  app.get('/api/v1/openapi.json', async () => OPENAPI);
}
