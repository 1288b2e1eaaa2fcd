import { existsSync } from 'node:fs';
import { readBoundedFile, tooDeep } from './bounded-read.js';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * A recipe's compose files as docker deploys them. The merge, the interpolation, YAML merge keys
 * (`<<: *anchor`) and the loader's own checks (a `version:` that differs between files) are
 * docker's, through `docker stack config` (Docker.stackConfig): this module only reads what that
 * printed, plus the few things the merged output no longer shows — the `version:` key as the
 * files spell it, and each secret's `name:` template before interpolation.
 */

export class ComposeError extends Error {}

/** Bounds what cc-ci reads of a recipe (a pull request's files are hostile input). */
const MAX_COMPOSE_BYTES = 1024 * 1024;
const MAX_ALIASES = 200;

export interface ComposePort {
  target: number;
  published: number | null;
  mode: string;
  protocol: string;
}

export interface ComposeVolumeMount {
  type: string;
  /** The top-level volume key (named volumes), or the host path (binds). */
  source: string;
  target: string;
}

export interface ComposeService {
  name: string;
  image: string | null;
  /** `deploy.labels`: the service labels Traefik and backup-bot-two read in swarm mode. */
  labels: Record<string, string>;
  mode: string;
  /** `deploy.replicas`; null when the file leaves it to swarm (1 for a replicated service). */
  replicas: number | null;
  updateOrder: string | null;
  rollbackOrder: string | null;
  volumes: ComposeVolumeMount[];
  ports: ComposePort[];
  /** Secret keys the service mounts. */
  secrets: string[];
}

export interface ComposeSecret {
  key: string;
  /** The docker secret name, interpolated. */
  name: string | null;
  /** The `name:` as written, `${STACK_NAME}_x_${SECRET_X_VERSION:-v1}`. */
  template: string | null;
  external: boolean;
}

export interface ComposeModel {
  /** The `version:` key as the recipe's files spell it; null when they have none. */
  version: string | null;
  services: ComposeService[];
  secrets: ComposeSecret[];
  /** Top-level volume keys. */
  volumes: string[];
  /** The merged configuration as docker printed it, for what the model leaves out (compose-policy.ts). */
  merged: Dict;
}

type Dict = Record<string, unknown>;
const dict = (v: unknown): Dict => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Dict) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null);
const int = (v: unknown): number | null => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) ? n : null;
};

/** Compose allows labels as a map or as a list of `k=v` strings. */
export function labelsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item !== 'string') continue;
      const eq = item.indexOf('=');
      if (eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
    }
  } else {
    for (const [k, val] of Object.entries(dict(v))) out[k] = text(val) ?? '';
  }
  return out;
}

/** One recipe file as YAML (merge keys applied), bounded in size and aliases. */
export function readComposeFile(recipeDir: string, file: string): Dict {
  const path = join(recipeDir, file);
  if (!existsSync(path)) throw new ComposeError(`compose file ${file} (from COMPOSE_FILE) does not exist in the recipe`);
  let source: string;
  try {
    source = readBoundedFile(path, MAX_COMPOSE_BYTES);
  } catch (e) {
    throw new ComposeError(`compose file ${file} cannot be read: ${(e as Error).message}`);
  }
  const deep = tooDeep(source);
  if (deep) throw new ComposeError(`compose file ${file} ${deep}`);
  let doc: unknown;
  try {
    doc = parseYaml(source, { merge: true, maxAliasCount: MAX_ALIASES, logLevel: 'error' });
  } catch (e) {
    throw new ComposeError(`compose file ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ComposeError(`compose file ${file} is empty or not a mapping`);
  return doc as Dict;
}

/** The `version:` the recipe's files declare (the first that has one), or null. */
export function composeVersion(docs: readonly Dict[]): string | null {
  for (const d of docs) {
    const v = text(d.version);
    if (v !== null && v.trim() !== '') return v.trim();
  }
  return null;
}

function secretTemplates(docs: readonly Dict[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of docs) {
    for (const [key, s] of Object.entries(dict(d.secrets))) {
      const name = text(dict(s).name);
      if (name !== null) out.set(key, name);
    }
  }
  return out;
}

function port(p: unknown): ComposePort | null {
  const d = dict(p);
  const target = int(d.target);
  if (target === null) return null;
  return { target, published: int(d.published), mode: text(d.mode) ?? 'ingress', protocol: text(d.protocol) ?? 'tcp' };
}

/**
 * The model of `docker stack config`'s output (which spells everything in the long form), with
 * the raw files for what interpolation hides.
 */
export function composeModel(mergedYaml: string, rawDocs: readonly Dict[]): ComposeModel {
  let merged: Dict;
  const deep = tooDeep(mergedYaml);
  if (deep) throw new ComposeError(`the merged compose configuration ${deep}`);
  try {
    merged = dict(parseYaml(mergedYaml, { maxAliasCount: MAX_ALIASES, logLevel: 'error' }));
  } catch (e) {
    throw new ComposeError(`docker stack config printed something that is not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const templates = secretTemplates(rawDocs);
  const services: ComposeService[] = Object.entries(dict(merged.services)).map(([name, raw]) => {
    const s = dict(raw);
    const deploy = dict(s.deploy);
    return {
      name,
      image: text(s.image),
      labels: labelsOf(deploy.labels),
      mode: text(deploy.mode) ?? 'replicated',
      replicas: int(deploy.replicas),
      updateOrder: text(dict(deploy.update_config).order),
      rollbackOrder: text(dict(deploy.rollback_config).order),
      volumes: list(s.volumes).flatMap((v) => {
        const m = dict(v);
        const source = text(m.source);
        const target = text(m.target);
        return source !== null && target !== null ? [{ type: text(m.type) ?? 'volume', source, target }] : [];
      }),
      ports: list(s.ports).flatMap((p) => port(p) ?? []),
      secrets: list(s.secrets).flatMap((x) => text(dict(x).source) ?? text(x) ?? []),
    };
  });
  const secrets: ComposeSecret[] = Object.entries(dict(merged.secrets)).map(([key, raw]) => {
    const s = dict(raw);
    return { key, name: text(s.name), template: templates.get(key) ?? null, external: s.external === true || Object.keys(dict(s.external)).length > 0 };
  });
  return { version: composeVersion(rawDocs), services, secrets, volumes: Object.keys(dict(merged.volumes)), merged };
}

/** COMPOSE_FILE is colon-separated; abra defaults to compose.yml. */
export function splitComposeFile(value: string | undefined): string[] {
  const files = (value ?? '')
    .split(':')
    .map((s) => s.trim())
    .filter(Boolean);
  return files.length > 0 ? files : ['compose.yml'];
}
