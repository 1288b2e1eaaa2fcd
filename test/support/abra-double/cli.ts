// The command tree: names, aliases, usage and flags as in abra 0.13 (cobra). Flags marked [R] in
// the reference are spelled as recalled there; `abra <cmd> --help` prints them.
import type { CommandSpec, FlagSpec, Invocation } from './argv.js';
import { log } from './log.js';

// Command modules are imported when their command runs: `--help`/`--version` and cheap commands
// do not pay for loading execa, yaml and semver (a noticeable share of each call's time).
type Run = (inv: Invocation) => Promise<void>;
const appCmd =
  (name: 'appDeploy' | 'appList' | 'appNew' | 'appRemove' | 'appUndeploy'): Run =>
  async (inv) =>
    (await import('./cmd-app.js'))[name](inv);
const backupCmd =
  (name: 'appRestore' | 'backupCreate' | 'backupDownload' | 'backupSnapshots'): Run =>
  async (inv) =>
    (await import('./cmd-backup.js'))[name](inv);
const miscCmd =
  (name: 'recipeFetch' | 'serverAdd' | 'serverList'): Run =>
  async (inv) =>
    (await import('./cmd-misc.js'))[name](inv);
const secretCmd =
  (name: 'secretGenerate' | 'secretList' | 'secretRemove'): Run =>
  async (inv) =>
    (await import('./cmd-secret.js'))[name](inv);
const volumeCmd =
  (name: 'volumeList' | 'volumeRemove'): Run =>
  async (inv) =>
    (await import('./cmd-volume.js'))[name](inv);

export const VERSION = '0.13.0-beta-ccci-double';

const machine: FlagSpec = { long: 'machine', short: 'm', kind: 'bool', desc: 'print machine-readable output' };
const force = (desc: string): FlagSpec => ({ long: 'force', short: 'f', kind: 'bool', desc });
const chaos: FlagSpec = { long: 'chaos', short: 'C', kind: 'bool', desc: 'ignore uncommitted recipes changes' };
const snapshot: FlagSpec = { long: 'snapshot', short: 's', kind: 'string', desc: 'snapshot to use (default: the latest)' };

const app: CommandSpec = {
  name: 'app',
  aliases: ['a'],
  short: 'Manage apps',
  subcommands: [
    {
      name: 'new',
      aliases: ['n'],
      usage: '<recipe> [version] [flags]',
      short: 'Create a new app',
      long: 'Create a new app from a recipe: copies the recipe .env.sample to $ABRA_DIR/servers/<server>/<domain>.env,\nsetting DOMAIN and TYPE. With [version] that release is checked out and pinned in TYPE=<recipe>:<version>.',
      minArgs: 1,
      maxArgs: 2,
      argNames: ['recipe'],
      flags: [
        { long: 'server', short: 's', kind: 'string', desc: 'specify server for new app' },
        { long: 'domain', short: 'D', kind: 'string', desc: 'domain name for app' },
        { long: 'secrets', short: 'S', kind: 'bool', desc: 'automatically generate secrets (prints their values)' },
        { long: 'pass', short: 'p', kind: 'bool', desc: 'store generated secrets in a local pass store (not supported by the double)' },
        chaos,
      ],
      run: async (inv) => {
        if (inv.bool('pass')) log.warn('--pass is not supported by the abra double; secrets are not stored in pass');
        await appCmd('appNew')(inv);
      },
    },
    {
      name: 'deploy',
      aliases: ['d'],
      usage: '<domain> [version] [flags]',
      short: 'Deploy an app',
      long: 'Deploy an app. Without [version] the TYPE= pin of the app .env is used (unless -i), else the\nlatest release, else the current commit. --chaos deploys the recipe checkout as it is.',
      minArgs: 1,
      maxArgs: 2,
      argNames: ['app'],
      flags: [
        chaos,
        force('perform action without further prompt (needed to redeploy a deployed app)'),
        { long: 'no-converge-checks', short: 'c', kind: 'bool', desc: 'disable converge logic checks' },
        { long: 'no-domain-checks', short: 'D', kind: 'bool', desc: 'disable public DNS checks' },
        { long: 'ignore-env-version', short: 'i', kind: 'bool', desc: 'ignore .env version checkout' },
      ],
      run: appCmd('appDeploy'),
    },
    {
      name: 'undeploy',
      aliases: ['un'],
      usage: '<domain> [flags]',
      short: 'Undeploy an app (volumes, secrets and the .env are kept)',
      minArgs: 1,
      maxArgs: 1,
      argNames: ['app'],
      flags: [{ long: 'prune', short: 'p', kind: 'bool', desc: 'prune unused containers, networks, and dangling images (ignored by the double)' }],
      run: async (inv) => {
        if (inv.bool('prune')) log.warn('--prune is ignored by the abra double');
        await appCmd('appUndeploy')(inv);
      },
    },
    {
      name: 'remove',
      aliases: ['rm'],
      usage: '<domain> [flags]',
      short: 'Remove all app data, locally and remotely (volumes, secrets, configs and the .env)',
      minArgs: 1,
      maxArgs: 1,
      argNames: ['app'],
      flags: [force('perform action without further prompt')],
      run: appCmd('appRemove'),
    },
    {
      name: 'list',
      aliases: ['ls'],
      usage: '[flags]',
      short: 'List all managed apps',
      maxArgs: 0,
      flags: [
        { long: 'server', short: 's', kind: 'string', desc: 'show apps of a specific server' },
        { long: 'recipe', short: 'r', kind: 'string', desc: 'show apps of a specific recipe' },
        { long: 'status', short: 'S', kind: 'bool', desc: 'show app deployment status' },
        machine,
      ],
      run: appCmd('appList'),
    },
    {
      name: 'secret',
      aliases: ['s'],
      short: 'Manage app secrets',
      subcommands: [
        {
          name: 'generate',
          aliases: ['g'],
          usage: '<domain> [[secret] [version]] [flags]',
          short: 'Generate secrets',
          minArgs: 1,
          maxArgs: 3,
          argNames: ['app'],
          flags: [{ long: 'all', short: 'a', kind: 'bool', desc: 'generate all secrets' }, machine, chaos],
          run: secretCmd('secretGenerate'),
        },
        {
          name: 'remove',
          aliases: ['rm'],
          usage: '<domain> [[secret]] [flags]',
          short: 'Remove a secret',
          minArgs: 1,
          maxArgs: 2,
          argNames: ['app'],
          flags: [{ long: 'all', short: 'a', kind: 'bool', desc: 'remove all secrets' }],
          run: secretCmd('secretRemove'),
        },
        {
          name: 'list',
          aliases: ['ls'],
          usage: '<domain> [flags]',
          short: 'List all secrets',
          minArgs: 1,
          maxArgs: 1,
          argNames: ['app'],
          flags: [machine],
          run: secretCmd('secretList'),
        },
      ],
    },
    {
      name: 'volume',
      aliases: ['vl'],
      short: 'Manage app volumes',
      subcommands: [
        {
          name: 'list',
          aliases: ['ls'],
          usage: '<domain> [flags]',
          short: 'List volumes associated with an app',
          minArgs: 1,
          maxArgs: 1,
          argNames: ['app'],
          flags: [machine],
          run: volumeCmd('volumeList'),
        },
        {
          name: 'remove',
          aliases: ['rm'],
          usage: '<domain> [volume] [flags]',
          short: 'Remove volume(s) associated with an app',
          minArgs: 1,
          maxArgs: 2,
          argNames: ['app'],
          flags: [force('perform action without further prompt')],
          run: volumeCmd('volumeRemove'),
        },
      ],
    },
    {
      name: 'backup',
      aliases: ['b'],
      short: 'Manage app backups',
      subcommands: [
        {
          name: 'create',
          aliases: ['c'],
          usage: '<domain> [flags]',
          short: 'Create a new backup (needs a TTY)',
          minArgs: 1,
          maxArgs: 1,
          argNames: ['app'],
          flags: [{ long: 'retries', short: 'r', kind: 'int', desc: 'number of retry attempts (ignored by the double)', defaultValue: '1' }, chaos],
          run: backupCmd('backupCreate'),
        },
        {
          name: 'snapshots',
          aliases: ['s'],
          usage: '<domain> [flags]',
          short: 'List backup snapshots',
          minArgs: 1,
          maxArgs: 1,
          argNames: ['app'],
          flags: [snapshot, chaos],
          run: backupCmd('backupSnapshots'),
        },
        {
          name: 'download',
          aliases: ['d'],
          usage: '<domain> [flags]',
          short: 'Download a snapshot as backup.tar.gz in the current directory',
          minArgs: 1,
          maxArgs: 1,
          argNames: ['app'],
          flags: [
            snapshot,
            { long: 'volumes', short: 'v', kind: 'bool', desc: 'include the volumes (one <stack>_<volume>.tar each)' },
            { long: 'secrets', short: 'c', kind: 'bool', desc: "include the app's secrets (<domain>.json)" },
            chaos,
          ],
          run: backupCmd('backupDownload'),
        },
      ],
    },
    {
      name: 'restore',
      aliases: ['rs'],
      usage: '<domain> [flags]',
      short: 'Restore a snapshot (needs a TTY)',
      minArgs: 1,
      maxArgs: 1,
      argNames: ['app'],
      flags: [snapshot, chaos],
      run: backupCmd('appRestore'),
    },
  ],
};

const recipe: CommandSpec = {
  name: 'recipe',
  aliases: ['r'],
  short: 'Manage recipes',
  subcommands: [
    {
      name: 'fetch',
      aliases: ['f'],
      usage: '<recipe> [flags]',
      short: 'Fetch recipe tags (git fetch --tags in $ABRA_DIR/recipes/<recipe>)',
      minArgs: 1,
      maxArgs: 1,
      argNames: ['recipe'],
      run: miscCmd('recipeFetch'),
    },
  ],
};

const server: CommandSpec = {
  name: 'server',
  aliases: ['s'],
  short: 'Manage servers',
  subcommands: [
    {
      name: 'add',
      aliases: ['a'],
      usage: '[[server] | --local] [flags]',
      short: 'Add a new server',
      maxArgs: 1,
      flags: [{ long: 'local', short: 'l', kind: 'bool', desc: 'use local server' }],
      run: miscCmd('serverAdd'),
    },
    {
      name: 'list',
      aliases: ['ls'],
      usage: '[flags]',
      short: 'List managed servers',
      maxArgs: 0,
      flags: [machine],
      run: miscCmd('serverList'),
    },
  ],
};

export const ROOT: CommandSpec = {
  name: 'abra',
  short: 'The Co-op Cloud command-line utility belt (test double)',
  long: 'The Co-op Cloud command-line utility belt 🎩🐇\n\nThis is the cc-ci test double: the subset of abra that cc-ci uses, over the docker CLI.',
  subcommands: [app, recipe, server],
};

/** Resolves a dotted key with aliases (`app.rm`) to the canonical one (`app.remove`). */
export function canonicalKey(key: string): string | undefined {
  let cmd: CommandSpec = ROOT;
  const names: string[] = [];
  for (const part of key.split('.')) {
    const next = cmd.subcommands?.find((c) => c.name === part || (c.aliases ?? []).includes(part));
    if (!next) return undefined;
    names.push(next.name);
    cmd = next;
  }
  return names.join('.');
}
