// Turns the Swagger 2.0 contract (gitea-openapi-subset.json) into ajv validators for the double.
//
// Swagger 2.0 schemas are nearly JSON Schema draft-07; the differences handled here:
// * `$ref: '#/definitions/X'` is kept and resolved against one schema document holding every
//   definition (registered in ajv under DOC_ID).
// * `x-*` and `example` keys are dropped (not JSON Schema; ajv's strict mode rejects them).
// * Swagger cannot say "nullable". Properties listed in `x-go-json-semantics.*.may_be_null` become
//   `anyOf: [<schema>, {type: null}]`, because Go writes nil pointers, slices and maps as null.
// * Every serialised User carries `username` (User.MarshalJSON); it is added as a property.
// * `format: email` also accepts "": organisations and hidden addresses come out empty (the
//   example body's repository owner has `"email": ""`), which no email format allows.
//
// Two profiles are built from the same document:
// * `exact`: what the double itself sends and what cc-ci must send. Objects allow no unknown keys,
//   and every property is required except those Go omits when zero (`omitted_when_zero`), so the
//   double cannot drift from the forge's shape without a test failing. Requests are additionally
//   held to a cc-ci profile that is stricter than the spec (see REQUEST_PROFILE).
// * `wire`: the spec as a real forge's output must satisfy it (unknown keys allowed, nothing
//   required beyond the spec), for checking captured real deliveries.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ForgeOperation } from '../../../controller/clients/forge/client.js';
import { readContractAdditionsText, readContractSpecText } from './fixtures.js';

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the module.
const addFormats = addFormatsModule.default;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export type Profile = 'exact' | 'wire';
export type HttpMethod = 'GET' | 'POST' | 'PATCH';

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

function asObject(value: Json | undefined, what: string): JsonObject {
  if (!isObject(value)) throw new Error(`contract: ${what} is not an object`);
  return value;
}

function stringList(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** The copied contract with cc-ci's additions merged in (paths, definitions, responses, Go semantics). */
function mergedSpec(): JsonObject {
  const base = asObject(JSON.parse(readContractSpecText()) as Json, 'document');
  const extra = asObject(JSON.parse(readContractAdditionsText()) as Json, 'additions');
  for (const key of ['paths', 'definitions', 'responses'] as const) {
    base[key] = { ...asObject(base[key], key), ...asObject(extra[key], `additions.${key}`) };
  }
  const semantics = asObject(base['x-go-json-semantics'], 'x-go-json-semantics');
  const extraSemantics = asObject(extra['x-go-json-semantics'], 'additions.x-go-json-semantics');
  semantics['definitions'] = { ...asObject(semantics['definitions'], 'semantics'), ...asObject(extraSemantics['definitions'], 'additions.semantics') };
  return base;
}

export const spec: JsonObject = mergedSpec();
const definitions = asObject(spec['definitions'], 'definitions');
const sharedResponses = asObject(spec['responses'], 'responses');
const goSemantics = asObject(asObject(spec['x-go-json-semantics'], 'x-go-json-semantics')['definitions'], 'x-go-json-semantics.definitions');
const webhookPayloads = asObject(spec['x-webhook-payloads'], 'x-webhook-payloads');

const docId = (profile: Profile): string => `forge-contract-${profile}`;

/** Drops Swagger-only keys and points $refs at the definitions document of `profile`. */
function toJsonSchema(node: Json, refBase: string): Json {
  if (Array.isArray(node)) return node.map((item) => toJsonSchema(item, refBase));
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-') || key === 'example') continue;
    if (key === '$ref' && typeof value === 'string') {
      out[key] = value.replace(/^#\/definitions\//, `${refBase}#/definitions/`);
    } else if (key === 'properties' && isObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, prop]) => [name, toJsonSchema(prop, refBase)]));
    } else if (key === 'format' && value === 'email') {
      // Replaced by the anyOf below (see the file comment).
    } else {
      out[key] = toJsonSchema(value, refBase);
    }
  }
  if (node['format'] === 'email') out['anyOf'] = [{ format: 'email' }, { maxLength: 0 }];
  return out;
}

const nullable = (schema: Json): JsonObject => ({ anyOf: [schema, { type: 'null' }] });

function definitionSchema(name: string, profile: Profile, refBase = ''): JsonObject {
  const schema = asObject(toJsonSchema(asObject(definitions[name], name), refBase), name);
  const properties = schema['properties'];
  if (!isObject(properties)) return schema;
  const semantics = goSemantics[name];
  const mayBeNull = isObject(semantics) ? stringList(semantics['may_be_null']) : [];
  const omittedWhenZero = isObject(semantics) ? stringList(semantics['omitted_when_zero']) : [];
  for (const prop of mayBeNull) {
    const original = properties[prop];
    if (original !== undefined) properties[prop] = nullable(original);
  }
  if (name === 'User') properties['username'] = { type: 'string' };
  if (profile === 'exact') {
    schema['additionalProperties'] = false;
    schema['required'] = Object.keys(properties).filter((prop) => !omittedWhenZero.includes(prop));
  }
  return schema;
}

/** x-webhook-payloads.IssueCommentPayload, with Gitea's null label lists in `changes`. */
function issueCommentPayloadSchema(profile: Profile): JsonObject {
  const schema = asObject(toJsonSchema(asObject(webhookPayloads['IssueCommentPayload'], 'IssueCommentPayload'), ''), 'payload');
  const changes = asObject(asObject(schema['properties'], 'payload.properties')['changes'], 'changes');
  const changeProps = asObject(changes['properties'], 'changes.properties');
  for (const labels of ['added_labels', 'removed_labels']) {
    const original = changeProps[labels];
    if (original !== undefined) changeProps[labels] = nullable(original);
  }
  if (profile === 'exact') {
    schema['additionalProperties'] = false;
    changes['additionalProperties'] = false;
  }
  return schema;
}

/** The error body the handlers send (services/context/api.go APIError); 404s add `errors`. */
const API_ERROR_SCHEMA: JsonObject = {
  type: 'object',
  properties: { message: { type: 'string' }, url: { type: 'string' }, errors: { type: 'array', items: { type: 'string' } } },
  required: ['message', 'url'],
  additionalProperties: false,
};

/**
 * Where cc-ci's requests must be stricter than the spec (which requires almost nothing):
 * a status without `state` or `context` is stored by the forge as an empty string and shows as
 * a meaningless check; `skipped` exists in Gitea only; a reaction needs its `content`; the forge's
 * binding (`binding:"Required"`) answers 422 to an empty comment body.
 */
const REQUEST_PROFILE: Record<string, JsonObject> = {
  CreateStatusOption: {
    required: ['state', 'context'],
    properties: { state: { type: 'string', enum: ['pending', 'success', 'error', 'failure', 'warning'] } },
  },
  EditReactionOption: { required: ['content'] },
  CreateIssueCommentOption: { properties: { body: { type: 'string', minLength: 1 } } },
  EditIssueCommentOption: { properties: { body: { type: 'string', minLength: 1 } } },
};

function buildAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ strict: true, allErrors: true, coerceTypes, allowUnionTypes: true });
  addFormats(ajv);
  for (const profile of ['exact', 'wire'] as const) {
    const defs: JsonObject = {};
    for (const name of Object.keys(definitions)) defs[name] = definitionSchema(name, profile);
    defs['IssueCommentPayload'] = issueCommentPayloadSchema(profile);
    defs['APIError'] = API_ERROR_SCHEMA;
    ajv.addSchema({ $id: docId(profile), definitions: defs });
  }
  return ajv;
}

const ajv = buildAjv(false);
// Path and query values arrive as strings; this instance coerces them to the declared types.
const coercingAjv = buildAjv(true);

function describe(errors: readonly ErrorObject[] | null | undefined, where: string): string[] {
  return (errors ?? []).map((error) => {
    const extra = error.keyword === 'additionalProperties' ? ` (${String(error.params['additionalProperty'])})` : '';
    return `${where}${error.instancePath || ''} ${error.message ?? error.keyword}${extra}`;
  });
}

function validateWith(validate: ValidateFunction, data: unknown, where: string): string[] {
  return validate(data) ? [] : describe(validate.errors, where);
}

const definitionValidators = new Map<string, ValidateFunction>();

/** Validates `data` against a definition (or IssueCommentPayload / APIError) in one profile. */
export function validateDefinition(name: string, data: unknown, profile: Profile = 'exact'): string[] {
  const key = `${profile}:${name}`;
  let validate = definitionValidators.get(key);
  if (!validate) {
    validate = ajv.compile({ $ref: `${docId(profile)}#/definitions/${name}` });
    definitionValidators.set(key, validate);
  }
  return validateWith(validate, data, name);
}

// ---- operations ---------------------------------------------------------------------------------

export interface RequestParts {
  params: Record<string, string>;
  query: Record<string, unknown>;
  /** `undefined` when the request had no body. */
  body: unknown;
}

export interface OperationContract {
  operation: ForgeOperation;
  method: HttpMethod;
  /** As in the contract, e.g. /repos/{owner}/{repo}/issues/{index}/comments (below basePath). */
  path: string;
  declaredStatuses: number[];
  /** Checks a request; on success returns params and query coerced to their declared types. */
  validateRequest(parts: RequestParts): { errors: string[]; params: Record<string, unknown>; query: Record<string, unknown> };
  /** Checks a response the double is about to send. `body` is null for an empty body. */
  validateResponse(status: number, body: unknown): string[];
}

/**
 * Statuses the spec does not declare for an operation but the forge really sends: 401 (no or bad
 * token), 403 (token scope, or a permission middleware such as reqRepoWriter in front of the
 * status POST), 422 (binding, or a bad since/before: Forgejo declares it), 500 (Gitea's answer to
 * a status POST for an unknown commit, and any internal error).
 */
const UNDECLARED_BUT_REAL = [401, 403, 422, 500];

/** 403s the handlers send with an empty body (ctx.Status(403)). */
const EMPTY_FORBIDDEN: ReadonlySet<ForgeOperation> = new Set(['issueEditComment']);

interface SwaggerParameter {
  name: string;
  in: string;
  required: boolean;
  schema: JsonObject;
}

function readParameters(operation: JsonObject): SwaggerParameter[] {
  const raw = Array.isArray(operation['parameters']) ? operation['parameters'] : [];
  return raw.map((param, i) => {
    const p = asObject(param, `parameter ${i}`);
    const name = String(p['name']);
    const location = String(p['in']);
    const schema: JsonObject =
      location === 'body'
        ? asObject(toJsonSchema(asObject(p['schema'], `${name}.schema`), docId('exact')), name)
        : asObject(toJsonSchema(Object.fromEntries(Object.entries(p).filter(([k]) => ['type', 'format', 'enum', 'items'].includes(k))), ''), name);
    return { name, in: location, required: p['required'] === true, schema };
  });
}

function objectSchema(params: readonly SwaggerParameter[]): JsonObject {
  return {
    type: 'object',
    properties: Object.fromEntries(params.map((p) => [p.name, p.schema])),
    required: params.filter((p) => p.required).map((p) => p.name),
    additionalProperties: false,
  };
}

/** The body schema of the cc-ci profile: the definition's exact schema plus REQUEST_PROFILE. */
function requestBodySchema(param: SwaggerParameter): JsonObject {
  const ref = param.schema['$ref'];
  const name = typeof ref === 'string' ? (ref.split('/').pop() ?? '') : '';
  const extra = REQUEST_PROFILE[name];
  const exact = definitionSchema(name, 'wire', docId('exact'));
  exact['additionalProperties'] = false;
  if (!extra) return exact;
  const properties = asObject(exact['properties'], `${name}.properties`);
  for (const [prop, tighter] of Object.entries(asObject(extra['properties'] ?? {}, 'profile'))) {
    properties[prop] = { allOf: [properties[prop] ?? {}, tighter] };
  }
  exact['required'] = [...stringList(exact['required']), ...stringList(extra['required'])];
  return exact;
}

function responseSchema(operation: JsonObject, status: number): { kind: 'schema'; schema: JsonObject } | { kind: 'empty' } | { kind: 'error' } {
  const responses = asObject(operation['responses'], 'responses');
  const declared = responses[String(status)];
  if (!isObject(declared)) return { kind: 'error' };
  const ref = declared['$ref'];
  const resolved = typeof ref === 'string' ? asObject(sharedResponses[ref.split('/').pop() ?? ''], ref) : declared;
  const schema = resolved['schema'];
  if (isObject(schema)) return { kind: 'schema', schema: asObject(toJsonSchema(schema, docId('exact')), 'schema') };
  return status === 204 ? { kind: 'empty' } : { kind: 'error' };
}

function buildOperation(path: string, method: HttpMethod, operation: JsonObject): OperationContract {
  const operationId = String(operation['operationId']) as ForgeOperation;
  const params = readParameters(operation);
  const validatePath = coercingAjv.compile(objectSchema(params.filter((p) => p.in === 'path')));
  const validateQuery = coercingAjv.compile(objectSchema(params.filter((p) => p.in === 'query')));
  const bodyParam = params.find((p) => p.in === 'body');
  const validateBody = bodyParam ? ajv.compile(requestBodySchema(bodyParam)) : undefined;
  const declaredStatuses = Object.keys(asObject(operation['responses'], 'responses')).map(Number);
  const responseValidators = new Map<number, ValidateFunction | 'empty' | 'error'>();
  for (const status of [...declaredStatuses, ...UNDECLARED_BUT_REAL]) {
    const shape = responseSchema(operation, status);
    responseValidators.set(status, shape.kind === 'schema' ? ajv.compile(shape.schema) : shape.kind);
  }
  const errorValidator = ajv.compile({ $ref: `${docId('exact')}#/definitions/APIError` });

  return {
    operation: operationId,
    method,
    path,
    declaredStatuses,
    validateRequest(parts) {
      const errors: string[] = [];
      const coercedParams: Record<string, unknown> = { ...parts.params };
      const coercedQuery: Record<string, unknown> = { ...parts.query };
      errors.push(...validateWith(validatePath, coercedParams, 'path'));
      errors.push(...validateWith(validateQuery, coercedQuery, 'query'));
      if (validateBody) {
        if (parts.body === undefined) errors.push('body is missing');
        else errors.push(...validateWith(validateBody, parts.body, 'body'));
      } else if (parts.body !== undefined) {
        errors.push(`body not allowed on ${method} ${path}`);
      }
      return { errors, params: coercedParams, query: coercedQuery };
    },
    validateResponse(status, body) {
      const validator = responseValidators.get(status);
      if (validator === undefined) return [`status ${status} is not a response of ${operationId}`];
      if (validator === 'empty') return body === null ? [] : ['a 204 must have an empty body'];
      if (validator === 'error') {
        if (body === null) {
          return status === 403 && EMPTY_FORBIDDEN.has(operationId) ? [] : [`an empty ${status} body is not sent by ${operationId}`];
        }
        return validateWith(errorValidator, body, 'error body');
      }
      return validateWith(validator, body, 'response');
    },
  };
}

const METHODS: Record<string, HttpMethod> = { get: 'GET', post: 'POST', patch: 'PATCH' };

function buildOperations(): Map<ForgeOperation, OperationContract> {
  const operations = new Map<ForgeOperation, OperationContract>();
  for (const [path, item] of Object.entries(asObject(spec['paths'], 'paths'))) {
    for (const [verb, operation] of Object.entries(asObject(item, path))) {
      const method = METHODS[verb];
      if (!method) throw new Error(`contract: unsupported method ${verb} on ${path}`);
      const built = buildOperation(path, method, asObject(operation, `${verb} ${path}`));
      operations.set(built.operation, built);
    }
  }
  return operations;
}

/** Every operation of the contract, keyed by operationId. */
export const operations: ReadonlyMap<ForgeOperation, OperationContract> = buildOperations();

/** `basePath` of the contract: the double serves the operations below it. */
export const BASE_PATH = String(spec['basePath']);
