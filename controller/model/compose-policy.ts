import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';

/**
 * What a recipe's merged compose configuration would hand of the host to its stack. A pull
 * request's compose files are hostile input: a bind mount of the Docker socket is the whole
 * host. cc-ci refuses every item below before a deploy, unless the operator's config allows that
 * exact item for that recipe (docs/security.md "Compose policy"). It reads `docker stack config`'s
 * output, which spells everything in the long form, merged and interpolated as docker deploys it.
 */

export const POLICY_KEYS = [
  'volumes',
  'cap_add',
  'devices',
  'security_opt',
  'sysctls',
  'privileged',
  'pid',
  'ipc',
  'network_mode',
  'networks',
  'userns_mode',
  'cgroup_parent',
  'configs',
  'secrets',
  'env_file',
] as const;
export type PolicyKey = (typeof POLICY_KEYS)[number];

export interface HostAccess {
  /** The service that would get it; for a top-level volume, config or secret, each service using it. */
  service: string;
  key: PolicyKey;
  /** The item within the key (a host path, a capability, a sysctl name); '' for a flag (privileged). */
  value: string;
  /** Why this hands the host to the stack, in a maintainer's words. */
  why: string;
}

/** An operator's allowance from cc-ci's config: exactly this item, for this recipe. */
export interface PolicyAllowance {
  service: string;
  key: PolicyKey;
  value?: string | undefined;
  by: string;
  reason?: string | undefined;
}

export interface PolicyVerdict {
  refused: HostAccess[];
  allowed: { item: HostAccess; by: string; reason: string | null }[];
}

type Dict = Record<string, unknown>;
const dict = (v: unknown): Dict => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Dict) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null);

/** `app: volumes /var/run/docker.sock` — how an item is named in refusals, logs and allowances. */
export function describeItem(a: Pick<HostAccess, 'service' | 'key' | 'value'>): string {
  return `${a.service}: ${a.key}${a.value ? ` ${a.value}` : ''}`;
}

/** Whether `path` (after links) lies inside `dir` (after links). A path that does not exist is outside. */
function inside(dir: string, path: string): boolean {
  let real: string;
  let root: string;
  try {
    real = realpathSync(path);
    root = realpathSync(dir);
  } catch {
    return false;
  }
  const rel = relative(root, real);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Every item of the merged configuration that reaches the host. `recipeDir` is where docker
 * resolved relative paths from: a config or secret file, or an env_file, inside the recipe's own
 * checkout (links followed) is the recipe's; anything else is a host file the client would read.
 */
export function hostAccessOf(merged: Dict, recipeDir: string): HostAccess[] {
  const out: HostAccess[] = [];
  const services = dict(merged.services);
  const topVolumes = dict(merged.volumes);
  const topNetworks = dict(merged.networks);
  const usesOf = (kind: 'configs' | 'secrets', key: string) =>
    Object.entries(services)
      .filter(([, s]) => list(dict(s)[kind]).some((x) => (text(dict(x).source) ?? text(x)) === key))
      .map(([n]) => n);

  for (const [name, raw] of Object.entries(services)) {
    const s = dict(raw);
    const add = (key: PolicyKey, value: string, why: string) => out.push({ service: name, key, value, why });
    for (const v of list(s.volumes)) {
      const m = dict(v);
      const source = text(m.source) ?? '';
      if (text(m.type) === 'bind')
        add('volumes', source, `a bind mount of the host path ${source}${/docker\.sock$/.test(source) ? ' (the Docker socket: the whole host)' : ''}`);
      if (text(m.type) === 'volume' && source) {
        const opts = dict(dict(topVolumes[source]).driver_opts);
        const device = text(opts.device);
        if (device && /(^|,)\s*(r?bind)\s*(,|$)/.test(text(opts.o) ?? ''))
          add('volumes', device, `volume ${source} is a bind mount of the host path ${device} (driver_opts)`);
      }
    }
    for (const c of list(s.cap_add)) add('cap_add', text(c) ?? '', `adds the kernel capability ${text(c) ?? ''}`);
    for (const d of list(s.devices)) add('devices', text(d) ?? '', `a host device (${text(d) ?? ''})`);
    for (const o of list(s.security_opt)) add('security_opt', text(o) ?? '', `changes the container's confinement (${text(o) ?? ''})`);
    for (const k of Array.isArray(s.sysctls) ? s.sysctls.map((x) => (text(x) ?? '').split('=')[0] ?? '') : Object.keys(dict(s.sysctls))) {
      add('sysctls', k, `sets the kernel parameter ${k}`);
    }
    if (s.privileged === true || text(s.privileged) === 'true') add('privileged', '', 'runs privileged: every device and capability of the host');
    for (const k of ['pid', 'ipc', 'userns_mode'] as const) {
      if (text(s[k]) === 'host') add(k, 'host', `shares the host's ${k === 'userns_mode' ? 'user' : k.toUpperCase()} namespace`);
    }
    const mode = text(s.network_mode);
    if (mode === 'host' || mode?.startsWith('container:'))
      add('network_mode', mode, `joins the ${mode === 'host' ? "host's" : "another container's"} network namespace`);
    if (text(s.cgroup_parent)) add('cgroup_parent', text(s.cgroup_parent) ?? '', 'places the container in a cgroup of the host');
    const nets = Array.isArray(s.networks) ? s.networks.map((n) => text(n) ?? '') : Object.keys(dict(s.networks));
    for (const n of nets) {
      const top = dict(topNetworks[n]);
      const real = text(top.name) ?? n;
      if ((top.external === true || Object.keys(dict(top.external)).length > 0) && real === 'host')
        add('networks', n, "joins the external network host (the host's network stack)");
    }
    for (const f of list(s.env_file)) {
      const path = text(dict(f).path) ?? text(f) ?? '';
      if (path && !inside(recipeDir, resolve(recipeDir, path))) add('env_file', path, `reads the host file ${path} into the environment`);
    }
  }
  for (const kind of ['configs', 'secrets'] as const) {
    for (const [key, raw] of Object.entries(dict(merged[kind]))) {
      const file = text(dict(raw).file);
      if (!file || inside(recipeDir, resolve(recipeDir, file))) continue;
      for (const service of usesOf(kind, key))
        out.push({ service, key: kind, value: file, why: `${kind.slice(0, -1)} ${key} is read from the host file ${file}, outside the recipe` });
    }
  }
  return out;
}

/** Splits what a recipe would get into what the operator allowed (exactly that item) and what is refused. */
export function judge(items: readonly HostAccess[], allowances: readonly PolicyAllowance[]): PolicyVerdict {
  const verdict: PolicyVerdict = { refused: [], allowed: [] };
  for (const item of items) {
    const a = allowances.find((x) => x.service === item.service && x.key === item.key && (x.value ?? '') === item.value);
    if (a) verdict.allowed.push({ item, by: a.by, reason: a.reason ?? null });
    else verdict.refused.push(item);
  }
  return verdict;
}

/** The refusal, naming each service and key, and how an operator could allow one. */
export function refusalMessage(refused: readonly HostAccess[]): string {
  const shown = refused.slice(0, 8).map((r) => `${describeItem(r)} (${r.why})`);
  const more = refused.length > shown.length ? `; and ${refused.length - shown.length} more` : '';
  return `compose policy: refused to deploy what would hand the host to the stack: ${shown.join('; ')}${more}. Only the server's operator can allow an item, per recipe (composePolicy.allow in cc-ci's config; docs/security.md)`;
}
