// abra app new | deploy | undeploy | rm | ls
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import semver from 'semver';
import { deployEnv, loadApp, pinVersion, recipeOf, requireRecipeDir, stackNameOf, type App } from './app.js';
import type { Invocation } from './argv.js';
import { composeFiles, loadCompose, writeOverlay } from './compose.js';
import { timeoutFromLabels, waitForConvergence } from './converge.js';
import { dockerEnv, inspect, listNames, NAMESPACE_LABEL, removeObjects, stackContainers, stackDeploy, stackRm, stackServices } from './docker.js';
import { EnvFile } from './envfile.js';
import { crashPoint } from './faults.js';
import { checkout, commitOf, isDirty, releasesAtHead, releaseVersions, shortHead, tagExists, tags } from './git.js';
import { dict, str } from './json.js';
import { fatal, log, out } from './log.js';
import { appEnvPath, listAppFiles, listServers, recipeDir, serverDir } from './paths.js';
import { failure, sleep } from './proc.js';
import { appSecrets } from './secrets.js';
import { generateSecrets, printGenerated } from './cmd-secret.js';
import { table } from './table.js';

function need(v: string | undefined, what: string): string {
  if (v === undefined || v === '') fatal(`no ${what} provided`);
  return v;
}

// ---------------------------------------------------------------- app new

export async function appNew(inv: Invocation): Promise<void> {
  const recipe = need(inv.args[0], 'recipe');
  const version = inv.args[1];
  const chaos = inv.bool('chaos');
  if (version !== undefined && chaos) fatal('cannot use [version] and --chaos together');

  const rdir = recipeDir(recipe);
  if (!existsSync(rdir)) {
    fatal(`recipe ${recipe} does not exist at ${rdir} (the abra double has no catalogue: clone the recipe there, then "abra recipe fetch ${recipe}")`);
  }
  let server = inv.str('server');
  if (server === undefined || server === '') {
    const servers = listServers();
    if (servers.length !== 1) fatal('no server provided (use -s/--server)');
    server = servers[0] ?? '';
  }
  if (!existsSync(serverDir(server))) fatal(`server ${server} does not exist (run "abra server add --local" first)`);
  const domain = need(inv.str('domain'), 'domain (use -D/--domain)');
  const envPath = appEnvPath(server, domain);
  if (existsSync(envPath) || listAppFiles().some((a) => a.domain === domain)) fatal(`${domain} already exists`);

  if (version !== undefined) {
    if (!(await tagExists(rdir, version))) fatal(`version ${version} does not exist for recipe ${recipe}`);
    if (await isDirty(rdir)) fatal(`${recipe} has locally unstaged changes`);
    await checkout(rdir, version);
  }

  const samplePath = join(rdir, '.env.sample');
  if (!existsSync(samplePath)) fatal(`${samplePath} does not exist: recipe ${recipe} has no .env.sample`);
  // Like abra's TemplateAppEnvSample [R]: the sample with `<recipe>.example.com` replaced by the
  // domain, wherever it appears — and nothing else, so a sample that says `DOMAIN=example.com`
  // keeps it (whoever creates the app sets DOMAIN then).
  const env = EnvFile.parse(readFileSync(samplePath, 'utf8').split(`${recipe}.example.com`).join(domain));
  const typeKey = env.has('TYPE') || !env.has('RECIPE') ? 'TYPE' : 'RECIPE';
  env.set(typeKey, version !== undefined ? `${recipe}:${version}` : recipe);
  writeFileSync(envPath, env.toString());
  crashPoint('app new: after writing the .env, before generating secrets');

  out(table(['SERVER', 'RECIPE', 'VERSION', 'DOMAIN'], [[server, recipe, version ?? (chaos ? 'chaos' : 'unpinned'), domain]]));
  if (inv.bool('secrets')) {
    const app = loadApp(domain);
    const generated = await generateSecrets(app, { all: true });
    // real abra prints the generated VALUES here; keep such output out of CI logs
    printGenerated(generated, false);
  }
  log.info(`new app ${domain} created: ${envPath}`);
}

// ---------------------------------------------------------------- app deploy

interface Chosen {
  /** What goes into the version label and TYPE=. */
  version: string;
  /** Chaos: short commit (+U if dirty). */
  chaosVersion: string | undefined;
  dirty: boolean;
}

/** Which version deploys (docs/abra-double.md): explicit arg > chaos (current checkout) > TYPE pin (unless -i) > latest release > HEAD. */
async function chooseAndCheckout(app: App, explicit: string | undefined, chaos: boolean, ignorePin: boolean): Promise<Chosen> {
  const dir = app.recipeDir;
  if (chaos) {
    const head = await shortHead(dir);
    const dirty = await isDirty(dir);
    return { version: dirty ? `${head}+U` : head, chaosVersion: dirty ? `${head}+U` : head, dirty };
  }
  let ref: string | undefined;
  let version: string;
  const resolve = async (v: string, origin: string): Promise<string> => {
    if (await tagExists(dir, v)) return `refs/tags/${v}`;
    const commit = await commitOf(dir, v);
    if (commit !== undefined) return commit;
    fatal(`version ${v} (${origin}) does not exist for recipe ${app.recipe}`);
  };
  if (explicit !== undefined) {
    version = explicit;
    ref = await resolve(explicit, 'from the command line');
    // Outside chaos, abra lints the recipe at the version it deploys; a lightweight version tag
    // fails rule R014 (foodsharing-cms's README quotes the refusal; the wording here is recalled).
    const tag = (await tags(dir)).find((t) => t.name === explicit);
    if (tag && !tag.annotated) fatal(`lint error in ${app.recipe}: R014: only annotated tags used for recipe version (${explicit} is a lightweight tag)`);
  } else if (app.pinnedVersion !== undefined && !ignorePin) {
    version = app.pinnedVersion;
    ref = await resolve(app.pinnedVersion, `pinned by TYPE= in ${app.envPath}; pass a version or -i`);
  } else {
    const releases = await releaseVersions(dir);
    const latest = releases[releases.length - 1];
    if (latest !== undefined) {
      version = latest;
      ref = `refs/tags/${latest}`;
    } else {
      version = await shortHead(dir);
      ref = undefined; // no releases: deploy the current HEAD
      log.warn(`recipe ${app.recipe} has no release versions; deploying the current commit ${version}`);
    }
  }
  if (await isDirty(dir)) fatal(`${app.recipe} has locally unstaged changes`);
  if (ref !== undefined) await checkout(dir, ref.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : ref);
  return { version, chaosVersion: undefined, dirty: false };
}

export async function appDeploy(inv: Invocation): Promise<void> {
  const domain = need(inv.args[0], 'app');
  const explicit = inv.args[1];
  const chaos = inv.bool('chaos');
  if (explicit !== undefined && chaos) fatal('cannot use [version] and --chaos together');
  const app = loadApp(domain);
  requireRecipeDir(app);

  const deployed = (await stackServices(app.stack)).length > 0;
  if (deployed && !inv.bool('force') && !chaos) fatal(`${domain} is already deployed`);

  const chosen = await chooseAndCheckout(app, explicit, chaos, inv.bool('ignore-env-version'));

  const env = deployEnv(app);
  const files = composeFiles(app.recipeDir, env);
  const raw = await loadCompose(files, env, app.recipeDir, { interpolate: false });
  const model = await loadCompose(files, env, app.recipeDir, { interpolate: true });

  // Every SECRET_*_VERSION secret must exist
  const existing = new Set(await listNames('secret'));
  for (const s of appSecrets(app, raw, env)) {
    if (existing.has(s.remoteName)) continue;
    fatal(s.generate ? `secret not generated: ${s.remoteName}` : `secret not inserted (#generate=false): ${s.remoteName}`);
  }

  // Keys of .env.sample missing from the app .env → warning only
  const samplePath = join(app.recipeDir, '.env.sample');
  if (existsSync(samplePath)) {
    const appKeys = app.env.values();
    for (const key of EnvFile.parse(readFileSync(samplePath, 'utf8')).values().keys()) {
      if (!appKeys.has(key)) log.warn(`${key} is missing from ${app.envPath} (present in .env.sample)`);
    }
  }

  const appService = model.services.get('app');
  if (!appService) fatal(`recipe ${app.recipe} has no "app" service in ${files.join(', ')}`);

  // abra's labels and ExposeAllEnv, through a generated overlay appended last
  const s = app.stack;
  const labels = new Map<string, string>();
  labels.set(`coop-cloud.${s}.recipe`, app.recipe);
  labels.set(`coop-cloud.${s}.chaos`, chaos ? 'true' : 'false');
  if (chaos && chosen.chaosVersion !== undefined) labels.set(`coop-cloud.${s}.chaos-version`, chosen.chaosVersion);
  if (!chaos) labels.set(`coop-cloud.${s}.version`, chosen.version);
  const environment = new Map<string, string>();
  for (const [k, v] of env) if (!appService.environment.has(k)) environment.set(k, v);
  const overlay = writeOverlay(model.version, { labels, environment });

  out(
    table(
      ['APP', 'RECIPE', 'VERSION', 'CHAOS', 'STACK', 'COMPOSE FILES'],
      [
        [
          domain,
          app.recipe,
          chaos ? (model.services.get('app')?.labels.get(`coop-cloud.${s}.version`) ?? 'unknown') : chosen.version,
          chaos ? (chosen.chaosVersion ?? 'true') : 'false',
          s,
          files.map((f) => f.slice(app.recipeDir.length + 1)).join(':'),
        ],
      ],
    ),
  );

  const since = Date.now();
  const res = await stackDeploy(s, [...files, overlay], dockerEnv(env), app.recipeDir);
  rmSync(dirname(overlay), { recursive: true, force: true });
  if (!res.ok) fatal(`deploy failed: ${failure(res)}`);
  crashPoint('app deploy: after docker stack deploy, before the convergence wait');

  if (!inv.bool('no-converge-checks')) {
    const appSvc = (await inspect([`${s}_app`], 'service'))[0];
    const deployedLabels: Record<string, string> = {};
    for (const [k, v] of Object.entries(dict(dict(appSvc?.Spec).Labels))) deployedLabels[k] = str(v) ?? '';
    await waitForConvergence(s, timeoutFromLabels(s, deployedLabels), since);
  }

  // Pin the deployed version in TYPE=
  if (!chaos) {
    pinVersion(app, chosen.version);
  } else if (!chosen.dirty) {
    const here = await releasesAtHead(app.recipeDir);
    const release = here[here.length - 1];
    if (release !== undefined) pinVersion(app, release);
  }
  log.info(`${domain} deployed (${chaos ? `chaos ${chosen.chaosVersion ?? ''}` : chosen.version})`);
}

// ---------------------------------------------------------------- app undeploy

const UNDEPLOY_WAIT_MS = 180_000;

/**
 * Waits until no service and no container of the stack is left, and stays so for a moment: a
 * task the scheduler had already handed to the node can still start a container after its
 * service is gone (seen right after a `-c` deploy).
 */
async function waitStackGone(stack: string): Promise<void> {
  const deadline = Date.now() + UNDEPLOY_WAIT_MS;
  let emptyPolls = 0;
  for (;;) {
    const services = await stackServices(stack);
    const containers = await stackContainers(stack, { all: true });
    emptyPolls = services.length === 0 && containers.length === 0 ? emptyPolls + 1 : 0;
    if (emptyPolls >= 4) return;
    if (Date.now() > deadline) {
      fatal(`undeploy timed out: ${services.length} service(s) and ${containers.length} container(s) of ${stack} remain`);
    }
    await sleep(500);
  }
}

export async function appUndeploy(inv: Invocation): Promise<void> {
  const domain = need(inv.args[0], 'app');
  const app = loadApp(domain);
  if ((await stackServices(app.stack)).length === 0) fatal(`${domain} is not deployed`);
  const res = await stackRm(app.stack);
  if (!res.ok) fatal(`undeploy failed: ${failure(res)}`);
  crashPoint('app undeploy: after docker stack rm, before waiting for tasks and containers to go');
  await waitStackGone(app.stack);
  // `docker stack rm` gives up on networks whose endpoints were still attached: retry now
  for (let i = 0; i < 10; i++) {
    const nets = await listNames('network', [`label=${NAMESPACE_LABEL}=${app.stack}`]);
    if (nets.length === 0) break;
    await sleep(500);
    if (i === 9) log.warn(`networks left behind: ${nets.join(', ')}`);
    else {
      for (const n of nets) {
        await removeObjects('network', [n]).catch(() => undefined);
      }
    }
  }
  log.info(`${domain} undeployed (volumes, secrets and ${app.envPath} kept)`);
}

// ---------------------------------------------------------------- app rm

/** Stacks of other apps whose names start with `<stack>_`: their objects must not be swept by prefix. */
function longerStacksSharingPrefix(app: App): string[] {
  const out: string[] = [];
  for (const a of listAppFiles()) {
    if (a.domain === app.domain) continue;
    try {
      const other = stackNameOf(a.domain, EnvFile.parse(readFileSync(a.path, 'utf8')));
      if (other.startsWith(`${app.stack}_`)) out.push(other);
    } catch {
      // unreadable .env: ignore
    }
  }
  return out;
}

export function ownedByPrefix(name: string, stack: string, foreign: readonly string[]): boolean {
  return name.startsWith(`${stack}_`) && !foreign.some((f) => name.startsWith(`${f}_`));
}

async function removeWithRetry(kind: 'volume' | 'secret' | 'config', names: readonly string[]): Promise<void> {
  for (const name of names) {
    for (let attempt = 0; ; attempt++) {
      try {
        await removeObjects(kind, [name]);
        break;
      } catch (e) {
        // a container that is just going away may still hold a volume
        if (attempt >= 20) throw e;
        await sleep(500);
      }
    }
  }
}

export async function appRemove(inv: Invocation): Promise<void> {
  const domain = need(inv.args[0], 'app');
  if (!inv.bool('force') && !inv.bool('no-input')) {
    fatal('app remove asks for confirmation, which the abra double cannot do: pass -f/--force (or -n/--no-input)');
  }
  const app = loadApp(domain);
  if ((await stackServices(app.stack)).length > 0) fatal(`${domain} is still deployed; run "abra app undeploy ${domain}" first`);
  const foreign = longerStacksSharingPrefix(app);

  const volumes = await listNames('volume', [`label=${NAMESPACE_LABEL}=${app.stack}`]);
  await removeWithRetry('volume', volumes);
  crashPoint('app rm: after removing volumes, before secrets, configs and the .env');

  const secretNames = new Set<string>();
  if (existsSync(app.recipeDir)) {
    try {
      const env = deployEnv(app);
      const raw = await loadCompose(composeFiles(app.recipeDir, env), env, app.recipeDir, { interpolate: false });
      for (const s of appSecrets(app, raw, env)) secretNames.add(s.remoteName);
    } catch (e) {
      log.warn(`could not read the recipe's secrets (${e instanceof Error ? e.message : String(e)}); removing by name prefix only`);
    }
  }
  const allSecrets = await listNames('secret');
  const secrets = allSecrets.filter((n) => secretNames.has(n) || ownedByPrefix(n, app.stack, foreign));
  await removeWithRetry('secret', secrets);

  const labelled = await listNames('config', [`label=${NAMESPACE_LABEL}=${app.stack}`]);
  const configs = [...new Set([...labelled, ...(await listNames('config')).filter((n) => ownedByPrefix(n, app.stack, foreign))])];
  await removeWithRetry('config', configs);

  unlinkSync(app.envPath);
  log.info(`${domain} removed: ${volumes.length} volume(s), ${secrets.length} secret(s), ${configs.length} config(s), ${app.envPath}`);
}

// ---------------------------------------------------------------- app ls

export interface AppListEntry {
  server: string;
  recipe: string;
  appName: string;
  domain: string;
  status: string;
  chaos: string;
  chaosVersion: string;
  autoUpdate: string;
  version: string;
  upgrade: string;
}

export interface ServerAppList {
  apps: AppListEntry[];
  appCount: number;
  versionCount: number;
  unversionedCount: number;
  latestCount: number;
  upgradeCount: number;
}

async function composeVersionLabel(app: App): Promise<string | undefined> {
  if (!existsSync(app.recipeDir)) return undefined;
  try {
    const env = deployEnv(app);
    const model = await loadCompose(composeFiles(app.recipeDir, env), env, app.recipeDir, { interpolate: true });
    return model.services.get('app')?.labels.get(`coop-cloud.${app.stack}.version`) ?? undefined;
  } catch {
    return undefined;
  }
}

async function statusOf(app: App): Promise<Pick<AppListEntry, 'status' | 'chaos' | 'chaosVersion' | 'autoUpdate' | 'version' | 'upgrade'>> {
  const s = app.stack;
  const services = await stackServices(s);
  let status: string;
  let chaos = 'false';
  let chaosVersion = 'unknown';
  let autoUpdate = 'false';
  let version = 'unknown';
  if (services.length > 0) {
    status = 'deployed';
    const appSvc = (await inspect([`${s}_app`], 'service'))[0];
    const labels = dict(dict(appSvc?.Spec).Labels);
    chaos = str(labels[`coop-cloud.${s}.chaos`]) ?? 'false';
    chaosVersion = str(labels[`coop-cloud.${s}.chaos-version`]) ?? 'unknown';
    autoUpdate = str(labels[`coop-cloud.${s}.autoupdate`]) ?? 'false';
    version = str(labels[`coop-cloud.${s}.version`]) ?? 'unknown';
  } else {
    status = 'undeployed';
    version = (await composeVersionLabel(app)) ?? 'unknown';
  }
  let upgrade = 'unknown';
  if (version !== 'unknown' && semver.valid(version) !== null && existsSync(app.recipeDir)) {
    const newer = (await releaseVersions(app.recipeDir)).filter((r) => semver.compareBuild(r, version) > 0);
    upgrade = newer.length === 0 ? 'latest' : newer.join(', ');
  }
  return { status, chaos, chaosVersion, autoUpdate, version, upgrade };
}

export async function appList(inv: Invocation): Promise<void> {
  const serverFilter = inv.str('server');
  const recipeFilter = inv.str('recipe');
  const withStatus = inv.bool('status');
  if (serverFilter !== undefined && !listServers().includes(serverFilter)) fatal(`server ${serverFilter} does not exist`);

  const result: Record<string, ServerAppList> = {};
  for (const f of listAppFiles()) {
    if (serverFilter !== undefined && f.server !== serverFilter) continue;
    const env = EnvFile.parse(readFileSync(f.path, 'utf8'));
    const recipe = recipeOf(env)?.recipe ?? '';
    if (recipeFilter !== undefined && recipe !== recipeFilter) continue;
    const app: App = {
      domain: f.domain,
      server: f.server,
      envPath: f.path,
      env,
      recipe,
      pinnedVersion: recipeOf(env)?.version,
      recipeDir: recipeDir(recipe),
      stack: stackNameOf(f.domain, env),
    };
    const status = withStatus ? await statusOf(app) : { status: '', chaos: '', chaosVersion: '', autoUpdate: '', version: '', upgrade: '' };
    const entry: AppListEntry = { server: f.server, recipe, appName: f.domain, domain: f.domain, ...status };
    const list = (result[f.server] ??= { apps: [], appCount: 0, versionCount: 0, unversionedCount: 0, latestCount: 0, upgradeCount: 0 });
    list.apps.push(entry);
  }
  for (const list of Object.values(result)) {
    list.appCount = list.apps.length;
    if (!withStatus) continue;
    for (const a of list.apps) {
      if (a.version === 'unknown' || a.version === '') list.unversionedCount++;
      else list.versionCount++;
      if (a.upgrade === 'latest') list.latestCount++;
      else if (a.upgrade !== 'unknown' && a.upgrade !== '') list.upgradeCount++;
    }
  }

  if (inv.bool('machine')) {
    out(JSON.stringify(result));
    return;
  }
  const rows: string[][] = [];
  for (const list of Object.values(result)) {
    for (const a of list.apps) rows.push(withStatus ? [a.server, a.recipe, a.domain, a.status, a.version, a.chaos, a.upgrade] : [a.server, a.recipe, a.domain]);
  }
  out(table(withStatus ? ['SERVER', 'RECIPE', 'APP NAME', 'STATUS', 'VERSION', 'CHAOS', 'UPGRADE'] : ['SERVER', 'RECIPE', 'APP NAME'], rows));
}
