import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeModel, ComposeError, readComposeFile, type ComposeModel, type ComposeService } from '../model/compose-model.js';
import { hostAccessOf, type HostAccess } from '../model/compose-policy.js';
import { DockerError, type Docker } from './docker.js';

/**
 * What cc-ci understands of a recipe before it deploys it, from the compose configuration docker
 * would deploy (compose-model.ts): which service serves the web and on which port, which
 * service's volumes the backup covers, which secrets abra must generate and how. Every answer
 * says why, so the run log and `cc-ci describe run` can show it; where no answer exists the
 * facts say why not, in words a maintainer can act on (docs/testing.md "What cc-ci reads").
 */

export interface WebFacts {
  service: string;
  port: number;
  why: string;
  /** The service's update and rollback order: start-first cannot work with a host-mode port. */
  updateOrder: string | null;
  rollbackOrder: string | null;
}

export interface MarkerCandidate {
  service: string;
  /** The compose volume key. */
  volume: string;
  /** Where the volume is mounted in the service's containers. */
  mount: string;
  /** The paths (relative to the volume) the backup is limited to; null = the whole volume. */
  paths: string[] | null;
}

export interface BackupFacts {
  /** Some service has `backupbot.backup` true (after interpolation with the app's env). */
  capable: boolean;
  labelled: string[];
  /** Services whose `backupbot.backup` interpolated to something other than true. */
  disabled: string[];
  /** Volumes the test data may go into, best first: whole volumes, then path-limited ones. */
  candidates: MarkerCandidate[];
  excluded: { service: string; volume: string }[];
  why: string;
}

export interface SecretFacts {
  key: string;
  /** The docker secret name for this app. */
  name: string;
  versionVar: string | null;
  version: string | null;
  /** The generation modifiers on the SECRET_*_VERSION line, as written (`length=64 charset=hex`). */
  modifiers: string;
  generate: boolean;
}

export interface RecipeFacts {
  files: string[];
  /** The `version:` of the recipe's compose files, which cc-ci's overlays repeat; null = none. */
  version: string | null;
  services: { name: string; image: string | null; replicas: number | null; mode: string }[];
  web: WebFacts | { service: null; problem: string };
  backup: BackupFacts;
  /** The secrets abra generates (external, named through a SECRET_*_VERSION variable). */
  secrets: SecretFacts[];
  /** What the configuration would hand of the host to the stack (compose-policy.ts). */
  hostAccess: HostAccess[];
}

export interface FactsInput {
  recipeDir: string;
  /** The recipe's compose files (COMPOSE_FILE, cc-ci's ingress overlay left out). */
  files: readonly string[];
  /** The app's env as abra deploys with it: .env values, abra.sh exports, STACK_NAME. */
  env: Record<string, string>;
  /** The .env's generation modifiers per SECRET_*_VERSION variable. */
  modifiers: (versionVar: string) => string;
  /** The recipe settings' `webService` / `webPort`, when the maintainer named them. */
  web?: { service?: string | null; port?: number | null };
}

/**
 * abra.sh's `export K=V` lines, which abra merges into the deploy env (docs/abra-double.md, The contract; abra reads
 * them with a regex, never runs the file). Functions and other lines are not env.
 */
export function abraShExports(recipeDir: string): Record<string, string> {
  const path = join(recipeDir, 'abra.sh');
  const out: Record<string, string> = {};
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, 'utf8').split('\n').slice(0, 5000)) {
    const m = /^export\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)\s*$/.exec(line);
    if (m?.[1]) out[m[1]] = (m[2] ?? '').replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/** The env abra deploys an app with (docs/abra-double.md, The contract). */
export function deployEnv(envValues: ReadonlyMap<string, string>, recipeDir: string, stack: string): Record<string, string> {
  return { ...Object.fromEntries(envValues), ...abraShExports(recipeDir), STACK_NAME: stack };
}

const cache = new Map<string, { facts: RecipeFacts; merged: Record<string, unknown> }>();
const CACHE_ENTRIES = 64;

/** Reads the recipe's facts; the same files and env give the same answer without asking docker again. */
export async function readRecipeFacts(docker: Docker, input: FactsInput): Promise<RecipeFacts> {
  const rawDocs = input.files.map((f) => readComposeFile(input.recipeDir, f));
  const hash = createHash('sha256');
  hash.update(JSON.stringify([input.recipeDir, input.files, Object.entries(input.env).sort(), input.web ?? null]));
  for (const f of input.files) hash.update(readFileSync(join(input.recipeDir, f)));
  for (const s of secretVersionVars(rawDocs)) hash.update(`${s}=${input.modifiers(s)}`);
  const key = hash.digest('hex');
  // Host access is judged afresh every time: a config file that became a link to a host file
  // between two commits leaves the compose files, and so the key, unchanged.
  const hit = cache.get(key);
  if (hit) return { ...hit.facts, hostAccess: hostAccessOf(hit.merged, input.recipeDir) };

  let merged: string;
  try {
    merged = await docker.stackConfig(input.files, input.env, input.recipeDir);
  } catch (e) {
    if (e instanceof DockerError && !e.result.timedOut && !e.result.aborted && !e.result.spawnError) {
      throw new ComposeError(`docker's compose loader refuses ${input.files.join(':')}: ${e.message}`);
    }
    throw e;
  }
  const model = composeModel(merged, rawDocs);
  const facts = factsOf(model, input);
  cache.set(key, { facts, merged: model.merged });
  if (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  return facts;
}

function secretVersionVars(docs: readonly Record<string, unknown>[]): string[] {
  const vars: string[] = [];
  for (const d of docs) {
    const secrets = d.secrets && typeof d.secrets === 'object' ? (d.secrets as Record<string, unknown>) : {};
    for (const s of Object.values(secrets)) {
      const name = s && typeof s === 'object' ? (s as { name?: unknown }).name : undefined;
      const v = typeof name === 'string' ? versionVarOf(name) : null;
      if (v) vars.push(v);
    }
  }
  return vars;
}

function versionVarOf(template: string): string | null {
  return /\$\{?(SECRET_[A-Za-z0-9_]+_VERSION)\b/.exec(template)?.[1] ?? null;
}

export function factsOf(model: ComposeModel, input: FactsInput): RecipeFacts {
  // The recipe's `app` first: abra's own service, and the tie-breaker everywhere below.
  const services = [...model.services].sort((a, b) => Number(b.name === 'app') - Number(a.name === 'app'));
  return {
    files: [...input.files],
    version: model.version,
    services: services.map((s) => ({ name: s.name, image: s.image, replicas: s.replicas, mode: s.mode })),
    web: webFacts(services, input),
    hostAccess: hostAccessOf(model.merged, input.recipeDir),
    backup: backupFacts(services, model.volumes),
    secrets: model.secrets.flatMap((s) => {
      const versionVar = s.template ? versionVarOf(s.template) : null;
      if (!s.external || !versionVar || !s.name) return [];
      const modifiers = input.modifiers(versionVar);
      // Unset in the app env (a secret newer than the app's .env), the name's default says it.
      const prefix = `${input.env.STACK_NAME ?? ''}_${s.key}_`;
      const version = input.env[versionVar] || (s.name.startsWith(prefix) ? s.name.slice(prefix.length) : null) || null;
      return [{ key: s.key, name: s.name, versionVar, version, modifiers, generate: !/(^|\s)generate=false(\s|$)/.test(modifiers) }];
    }),
  };
}

// ---- the web service -----------------------------------------------------------------------

interface Route {
  service: ComposeService;
  port: number;
  router: string | null;
  rule: string;
}

const truthy = (v: string | undefined) => /^\s*true\s*$/i.test(v ?? '');
const numericPort = (v: string | undefined): number | null => {
  const n = /^\s*(\d{1,5})\s*$/.exec(v ?? '')?.[1];
  return n !== undefined && Number(n) > 0 && Number(n) < 65536 ? Number(n) : null;
};

/** Traefik's HTTP routes of a service: each router with the port its load balancer names. */
function routesOf(s: ComposeService): { routes: Route[]; ports: Map<string, string> } {
  const ports = new Map<string, string>();
  const routers = new Map<string, { rule: string; service: string | null }>();
  for (const [k, v] of Object.entries(s.labels)) {
    const lb = /^traefik\.http\.services\.([^.]+)\.loadbalancer\.server\.port$/.exec(k);
    if (lb?.[1]) ports.set(lb[1], v);
    const r = /^traefik\.http\.routers\.([^.]+)\.(rule|service)$/.exec(k);
    if (r?.[1]) {
      const cur = routers.get(r[1]) ?? { rule: '', service: null };
      if (r[2] === 'rule') cur.rule = v;
      else cur.service = v;
      routers.set(r[1], cur);
    }
  }
  const numeric = [...ports.entries()].filter(([, v]) => numericPort(v) !== null);
  const routes: Route[] = [];
  for (const [name, r] of routers) {
    const named = r.service !== null ? numericPort(ports.get(r.service)) : null;
    const port = named ?? (numeric.length === 1 ? numericPort(numeric[0]?.[1]) : null);
    if (port !== null) routes.push({ service: s, port, router: name, rule: r.rule });
  }
  if (routers.size === 0 && numeric.length === 1) routes.push({ service: s, port: numericPort(numeric[0]?.[1]) as number, router: null, rule: '' });
  return { routes, ports };
}

function webFacts(services: ComposeService[], input: FactsInput): RecipeFacts['web'] {
  const orders = (s: ComposeService) => ({ updateOrder: s.updateOrder, rollbackOrder: s.rollbackOrder });
  const wanted = input.web?.service ? services.find((s) => s.name === input.web?.service) : undefined;
  if (input.web?.service && !wanted) {
    return {
      service: null,
      problem: `the settings name webService "${input.web.service}", which the compose files do not have (services: ${services.map((s) => s.name).join(', ')})`,
    };
  }
  if (wanted && input.web?.port)
    return { service: wanted.name, port: input.web.port, why: "named by the recipe's settings (webService, webPort)", ...orders(wanted) };

  const domain = input.env.DOMAIN ?? '';
  const score = (r: Route): number =>
    (domain !== '' && r.rule.includes(domain) && /Host\(/.test(r.rule) ? 4 : 0) + (/Path(Prefix)?\(/.test(r.rule) ? 0 : 2) + (r.service.name === 'app' ? 1 : 0);
  const seen: string[] = [];
  let best: Route | null = null;
  for (const s of wanted ? [wanted] : services) {
    if (s.labels['traefik.enable'] !== undefined && !truthy(s.labels['traefik.enable'])) continue;
    const { routes, ports } = routesOf(s);
    for (const r of routes) if (!best || score(r) > score(best)) best = r;
    if (routes.length === 0 && ports.size > 0)
      seen.push(`${s.name} has loadbalancer.server.port ${[...ports.values()].map((v) => `"${v}"`).join(', ')}, not a port number cc-ci can use`);
  }
  if (best) {
    const routers = routesOf(best.service).routes.length;
    const why =
      `Traefik ${best.router ? `router "${best.router}"${best.rule ? ` (${best.rule})` : ''}` : 'load balancer'} → port ${best.port}` +
      (routers > 1 ? `, the main one of ${routers} routes on ${best.service.name}` : '') +
      (wanted ? ' (webService from the settings)' : '');
    return { service: best.service.name, port: best.port, why, ...orders(best.service) };
  }
  // No Traefik labels cc-ci can use: a service that publishes exactly one port is the web.
  const publishing = (wanted ? [wanted] : services).filter((s) => s.ports.length === 1);
  if (publishing.length === 1 && publishing[0]) {
    const s = publishing[0];
    return { service: s.name, port: s.ports[0]?.target as number, why: `publishes port ${s.ports[0]?.target} and carries no Traefik port label`, ...orders(s) };
  }
  return {
    service: null,
    problem:
      'cannot tell which service serves the web and on which port: ' +
      (seen.length ? `${seen.join('; ')}; ` : 'no service has a "traefik.http.services.<name>.loadbalancer.server.port" label with a number; ') +
      'set webService and webPort in the recipe settings (docs/testing.md)',
  };
}

// ---- backups -------------------------------------------------------------------------------

function backupFacts(services: ComposeService[], volumeKeys: readonly string[]): BackupFacts {
  const labelled = services.filter((s) => truthy(s.labels['backupbot.backup']));
  const disabled = services.filter((s) => s.labels['backupbot.backup'] !== undefined && !truthy(s.labels['backupbot.backup'])).map((s) => s.name);
  const whole: MarkerCandidate[] = [];
  const limited: MarkerCandidate[] = [];
  const excluded: BackupFacts['excluded'] = [];
  const skipped: string[] = [];
  for (const s of labelled) {
    const named = s.volumes.filter((v) => v.type === 'volume' && volumeKeys.includes(v.source));
    if (named.length === 0) skipped.push(`${s.name} mounts no named volume`);
    for (const v of named) {
      if (/^\s*false\s*$/i.test(s.labels[`backupbot.backup.volumes.${v.source}`] ?? '')) {
        excluded.push({ service: s.name, volume: v.source });
        continue;
      }
      const paths = splitPaths(s.labels[`backupbot.backup.volumes.${v.source}.path`]) ?? legacyPaths(s.labels['backupbot.backup.path'], v.target);
      (paths ? limited : whole).push({ service: s.name, volume: v.source, mount: v.target, paths });
    }
  }
  const candidates = [...whole, ...limited];
  let why: string;
  if (labelled.length === 0) {
    why = disabled.length ? `backupbot.backup is not true on ${disabled.join(', ')} with this app's env` : 'no service carries backupbot.backup labels';
  } else if (candidates.length) {
    const c = candidates[0] as MarkerCandidate;
    why =
      `backed up: ${labelled.map((s) => s.name).join(', ')}; test data goes into volume ${c.volume} of ${c.service}` +
      (c.paths ? ` (within ${c.paths.join(', ')})` : '');
  } else {
    why =
      `backed up: ${labelled.map((s) => s.name).join(', ')}, but no backed-up volume can hold test data (` +
      [...skipped, ...excluded.map((e) => `${e.volume} of ${e.service} is excluded`)].join('; ') +
      ')';
  }
  return { capable: labelled.length > 0, labelled: labelled.map((s) => s.name), disabled, candidates, excluded, why };
}

function splitPaths(v: string | undefined): string[] | null {
  if (v === undefined) return null;
  const paths = v
    .split(',')
    .map((p) => p.trim().replace(/^\/+/, ''))
    .filter(Boolean);
  return paths.length ? paths : null;
}

/** The old single `backupbot.backup.path` label names container paths (custom-html's
 *  `/usr/share/nginx/html`); within this mount it limits the volume like `volumes.<v>.path`. */
function legacyPaths(v: string | undefined, mount: string): string[] | null {
  if (v === undefined) return null;
  const inside = v
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p === mount || p.startsWith(`${mount.replace(/\/$/, '')}/`))
    .map((p) => p.slice(mount.length).replace(/^\/+/, ''));
  // The label naming the mount itself (foodsharing-cms's `/data`) limits nothing.
  return inside.length && !inside.includes('') ? inside : null;
}
