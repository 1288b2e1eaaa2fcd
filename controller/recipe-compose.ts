import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * Reads what cc-ci needs to know from a recipe's compose files, without deploying anything:
 * the app service's HTTP port (from its Traefik label), whether it carries backupbot labels,
 * and the secret keys it declares. abra and docker remain the authority on deploying them.
 */

export interface ComposeFacts {
  files: string[];
  services: string[];
  /** The port Traefik would route to on the `app` service, if the recipe says. */
  appPort: number | null;
  /** Some service carries `backupbot.backup` (reference §10.1). */
  backupCapable: boolean;
  /** The service that carries it (its hooks run there), and per-volume backup rules. */
  backupService: string | null;
  /** `backupbot.backup.volumes.<vol>.path=a,b`: only these paths of the volume are backed up. */
  backupPaths: Record<string, string[]>;
  /** `backupbot.backup.volumes.<vol>=false`: volumes left out of the backup. */
  backupExcluded: string[];
  secretKeys: string[];
}

type Labels = Record<string, string>;

/** Compose allows labels as a map or as a list of `k=v` strings. */
function labelsOf(v: unknown): Labels {
  const out: Labels = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item !== 'string') continue;
      const eq = item.indexOf('=');
      if (eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
    }
  } else if (v && typeof v === 'object') {
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) out[k] = String(val);
  }
  return out;
}

/** Resolves `${X:-default}` with its default and a bare number as is; anything else is unknown. */
function literalPort(v: string): number | null {
  const m = /^\s*(?:\$\{[A-Za-z_][A-Za-z0-9_]*:?-(\d+)\}|(\d+))\s*$/.exec(v);
  const n = Number(m?.[1] ?? m?.[2]);
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : null;
}

export class ComposeError extends Error {}

export function readComposeFacts(recipeDir: string, composeFiles: readonly string[]): ComposeFacts {
  const facts: ComposeFacts = {
    files: [],
    services: [],
    appPort: null,
    backupCapable: false,
    backupService: null,
    backupPaths: {},
    backupExcluded: [],
    secretKeys: [],
  };
  for (const f of composeFiles) {
    const path = join(recipeDir, f);
    if (!existsSync(path)) throw new ComposeError(`compose file ${f} (from COMPOSE_FILE) does not exist in the recipe`);
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new ComposeError(`compose file ${f} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!doc || typeof doc !== 'object') throw new ComposeError(`compose file ${f} is empty or not a mapping`);
    facts.files.push(f);
    const d = doc as { services?: Record<string, unknown>; secrets?: Record<string, unknown> };
    for (const [name, svc] of Object.entries(d.services ?? {})) {
      if (!facts.services.includes(name)) facts.services.push(name);
      const s = (svc ?? {}) as { deploy?: { labels?: unknown }; labels?: unknown };
      const labels = { ...labelsOf(s.labels), ...labelsOf(s.deploy?.labels) };
      for (const [k, v] of Object.entries(labels)) {
        if (k === 'backupbot.backup' && !/^\s*false\s*$/i.test(v)) {
          facts.backupCapable = true;
          facts.backupService ??= name;
        }
        const vol = /^backupbot\.backup\.volumes\.([^.]+)(\.path)?$/.exec(k);
        if (vol?.[1] && vol[2]) facts.backupPaths[vol[1]] = v.split(',').map((p) => p.trim()).filter(Boolean);
        else if (vol?.[1] && /^\s*false\s*$/i.test(v)) facts.backupExcluded.push(vol[1]);
        if (name === 'app' && /^traefik\.http\.services\.[^.]+\.loadbalancer\.server\.port$/.test(k)) {
          facts.appPort = literalPort(v) ?? facts.appPort;
        }
      }
    }
    for (const key of Object.keys(d.secrets ?? {})) if (!facts.secretKeys.includes(key)) facts.secretKeys.push(key);
  }
  return facts;
}

/** COMPOSE_FILE is colon-separated; abra defaults to compose.yml. */
export function splitComposeFile(value: string | undefined): string[] {
  const files = (value ?? '').split(':').map((s) => s.trim()).filter(Boolean);
  return files.length > 0 ? files : ['compose.yml'];
}
