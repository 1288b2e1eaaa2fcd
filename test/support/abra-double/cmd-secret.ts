// abra app secret generate | rm | ls  (docs/abra-double.md, The contract)
//
// `generate -m` prints a JSON array, one object per generated secret, sorted by name:
//   [{"name": "<compose secret key>", "value": "<generated value>"}]
// `ls -m` prints: [{"name": "<key>", "version": "v1", "generated-name": "<stack>_<key>_v1", "created-on-server": "true"|"false"}]
// No namespace label is put on generated secrets; find them by the `<stack>_` prefix.
import { deployEnv, loadApp, requireRecipeDir, type App } from './app.js';
import type { Invocation } from './argv.js';
import { composeFiles, loadCompose } from './compose.js';
import { listNames, removeObjects, secretCreate } from './docker.js';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { crashPoint } from './faults.js';
import { fatal, log, out } from './log.js';
import { appSecrets, generateValue, resolveName, type AppSecret } from './secrets.js';
import { table } from './table.js';

export async function secretsOf(app: App): Promise<{ secrets: AppSecret[]; env: Map<string, string> }> {
  requireRecipeDir(app);
  const env = deployEnv(app);
  const raw = await loadCompose(composeFiles(app.recipeDir, env), env, app.recipeDir, { interpolate: false });
  return { secrets: appSecrets(app, raw, env), env };
}

export interface Generated {
  name: string;
  remoteName: string;
  value: string;
}

export async function generateSecrets(app: App, what: { all: true } | { all: false; key: string; version: string }): Promise<Generated[]> {
  const { secrets, env } = await secretsOf(app);
  let targets: Array<{ secret: AppSecret; remoteName: string }>;
  if (what.all) {
    targets = [];
    for (const s of secrets) {
      if (!s.generate) {
        log.warn(`skipping ${s.key}: marked "# generate=false" in ${app.envPath} (insert it by hand)`);
        continue;
      }
      targets.push({ secret: s, remoteName: s.remoteName });
    }
  } else {
    const s = secrets.find((x) => x.key === what.key);
    if (!s) fatal(`no secret ${what.key} declared by recipe ${app.recipe} (known: ${secrets.map((x) => x.key).join(', ') || 'none'})`);
    targets = [{ secret: s, remoteName: resolveName(s.template, env, s.versionVar, what.version) }];
  }
  const existing = new Set(await listNames('secret'));
  if (what.all) {
    // abra's --all warns about a secret that exists and moves on to the others [R].
    for (const t of targets.filter((x) => existing.has(x.remoteName))) log.warn(`${t.remoteName} already exists, moving on...`);
    targets = targets.filter((t) => !existing.has(t.remoteName));
  } else {
    const clash = targets.filter((t) => existing.has(t.remoteName));
    if (clash.length > 0) {
      fatal(clash.map((t) => `Error response from daemon: rpc error: code = AlreadyExists desc = secret ${t.remoteName} already exists`).join('; '));
    }
  }
  const generated: Generated[] = [];
  for (const t of targets) {
    const value = generateValue(t.secret.length);
    await secretCreate(t.remoteName, value);
    generated.push({ name: t.secret.key, remoteName: t.remoteName, value });
    recordForTests(value);
    if (generated.length === 1) crashPoint('app secret generate: after creating the first secret');
  }
  return generated.sort((a, b) => a.name.localeCompare(b.name));
}

/** Test instrumentation (not abra's): with ABRA_DOUBLE_STATE set, every generated value is
 *  appended to `$ABRA_DOUBLE_STATE/generated-secrets.txt`, so a test can prove that no value
 *  reached cc-ci's logs, store or output. */
function recordForTests(value: string): void {
  const state = process.env.ABRA_DOUBLE_STATE;
  if (state) appendFileSync(join(state, 'generated-secrets.txt'), `${value}\n`);
}

export function printGenerated(generated: readonly Generated[], machine: boolean): void {
  if (machine) {
    out(JSON.stringify(generated.map((g) => ({ name: g.name, value: g.value }))));
    return;
  }
  if (generated.length === 0) {
    log.warn('no secrets generated');
    return;
  }
  out(
    table(
      ['NAME', 'VALUE'],
      generated.map((g) => [g.name, g.value]),
    ),
  );
  log.warn('generated secrets are shown above; they are not saved anywhere else');
}

export async function secretGenerate(inv: Invocation): Promise<void> {
  const [domain = '', key, version] = inv.args;
  const all = inv.bool('all');
  if (all && key !== undefined) fatal('cannot use --all together with a secret name');
  if (!all && (key === undefined || version === undefined)) fatal('provide a secret name and a version, or use -a/--all');
  const app = loadApp(domain);
  const generated = await generateSecrets(app, all ? { all: true } : { all: false, key: key ?? '', version: version ?? '' });
  printGenerated(generated, inv.bool('machine'));
}

export async function secretRemove(inv: Invocation): Promise<void> {
  const [domain = '', key] = inv.args;
  const all = inv.bool('all');
  if (all === (key !== undefined)) fatal('provide a secret name or -a/--all (not both)');
  const app = loadApp(domain);
  const { secrets, env } = await secretsOf(app);
  const existing = await listNames('secret');
  let names: string[];
  if (all) {
    // every version of every declared secret: names matching the template with any version
    const matchers = secrets.map((s) => {
      const [prefix = '', suffix = ''] = resolveName(s.template, env, s.versionVar, '\u0000').split('\u0000');
      return (n: string): boolean => n.startsWith(prefix) && n.endsWith(suffix) && n.length > prefix.length + suffix.length;
    });
    names = existing.filter((n) => matchers.some((m) => m(n)));
  } else {
    const s = secrets.find((x) => x.key === key);
    if (!s) fatal(`no secret ${key ?? ''} declared by recipe ${app.recipe}`);
    if (!existing.includes(s.remoteName)) fatal(`secret ${s.remoteName} does not exist on the server`);
    names = [s.remoteName];
  }
  for (const [i, n] of names.entries()) {
    await removeObjects('secret', [n]);
    if (i === 0) crashPoint('app secret rm: after removing the first secret');
  }
  log.info(names.length > 0 ? `removed ${names.join(', ')}` : 'no secrets to remove');
}

export async function secretList(inv: Invocation): Promise<void> {
  const app = loadApp(inv.args[0] ?? '');
  const { secrets } = await secretsOf(app);
  const existing = new Set(await listNames('secret'));
  const rows = secrets.map((s) => ({
    name: s.key,
    version: s.version,
    'generated-name': s.remoteName,
    'created-on-server': existing.has(s.remoteName) ? 'true' : 'false',
  }));
  if (inv.bool('machine')) {
    out(JSON.stringify(rows));
    return;
  }
  out(
    table(
      ['NAME', 'VERSION', 'GENERATED NAME', 'CREATED ON SERVER'],
      rows.map((r) => [r.name, r.version, r['generated-name'], r['created-on-server']]),
    ),
  );
}
