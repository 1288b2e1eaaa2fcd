#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { AlreadyServingError } from '../../state/instance.js';
import { getWarmCommand, describeWarmCommand, warmReconcileCommand } from './warm.js';
import { applyCommand, deleteRunCommand, describeRunCommand, doctorCommand, getRunsCommand, logsCommand, serveCommand } from './commands.js';
import type { GetRunsOptions } from './run-output.js';
import type { RemoteOptions } from './remote.js';
import { PAGE_SIZE } from '../views/run-query.js';
import { EXIT, UsageError, err, type GlobalOptions } from './common.js';
import { cancelCommand, rerunCommand, tokenCommand } from './actions.js';
import { janitorCommand } from './janitor.js';
import { runCommand, type RunCommandOptions } from './run.js';
import { configCheckCommand } from './config-check.js';

/** The `cc-ci` command line, kubectl-style. Every command takes --state-dir and --config; the
 *  commands that read runs or act on them also take --server, to ask a running `cc-ci serve`. */

function withGlobals(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', 'state directory (default: $CCCI_STATE_DIR or ~/.local/state/cc-ci)')
    .option('--config <file>', 'YAML config file (default: $CCCI_CONFIG)');
}

/** The remote mode (remote.ts). The token has no option of its own: an argument shows in `ps`. */
function withServer(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'ask this cc-ci serve over its API instead of reading a state directory (default: $CCCI_SERVER)')
    .option('--token-file <file>', 'a file holding an API token for --server (default: $CCCI_TOKEN)');
}

async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.passed;
  const program = new Command('cc-ci')
    .description('CI for Co-op Cloud recipes: deploy with abra on a real swarm, test, tear down, report')
    .exitOverride()
    .showHelpAfterError();

  withGlobals(
    program
      .command('run <recipe>')
      .description('test a recipe at a ref now and print the verdict (exit 0 passed, 1 failed, 2 error)')
      .requiredOption('--repo <url|path>', 'the recipe repository')
      .requiredOption('--ref <ref>', 'commit, tag or branch to test')
      .option('--tiers <list>', 'comma-separated tiers (default: all that apply)')
      .option('--lane <lane>', 'cold (default) or quick')
      .option('--name <name>', 'run name (default: generated)')
      .option('--json', 'print one JSON object with the result'),
  ).action(async (recipe: string, o: RunCommandOptions) => {
    code = await runCommand(recipe, o);
  });

  withGlobals(program.command('serve').description('run the controller until SIGTERM')).action(async (o: GlobalOptions) => {
    code = await serveCommand(o);
  });

  withGlobals(
    program.command('apply').description('submit a Run spec or a Warm object').requiredOption('-f, --file <file>', 'YAML or JSON Run or Warm file'),
  ).action((o: GlobalOptions & { file: string }) => {
    code = applyCommand(o.file, o);
  });

  const get = program.command('get').description('list objects');
  withServer(
    withGlobals(
      get
        .command('runs')
        .description('list unfinished runs (queue positions, why they wait), the newest finished runs, and invalid spec files')
        .option('-o, --output <format>', 'json | wide')
        .option('--limit <n>', `finished runs to list (default ${PAGE_SIZE})`)
        .option('--cursor <cursor>', 'list the finished runs older than this (printed under a full page)')
        .option('--recipe <recipe>', 'only runs of this recipe')
        .option('--result <result>', 'only runs that ended passed, failed, error or cancelled')
        .option('--lane <lane>', 'only runs of this lane (cold, quick)')
        .option('--pr <number>', 'only runs of this pull request')
        .option('--repo <owner/name>', "only runs of this pull request's repository"),
    ),
  ).action(async (o: GlobalOptions & RemoteOptions & GetRunsOptions) => {
    code = await getRunsCommand(o);
  });

  withGlobals(get.command('warm').description('list warm canonical apps: promoted commit, health, holder').option('-o, --output <format>', 'json')).action(
    (o: GlobalOptions & { output?: string }) => {
      code = getWarmCommand(o);
    },
  );

  const warmCmd = program.command('warm').description('warm canonical apps');
  withGlobals(
    warmCmd
      .command('reconcile [recipe]')
      .description('one warm pass now (through cc-ci serve when it runs); exit 1 if a warm app is not healthy')
      .option('--wait-seconds <n>', 'how long to wait for the pass', '120'),
  ).action(async (recipe: string | undefined, o: GlobalOptions & { waitSeconds?: string }) => {
    code = await warmReconcileCommand(recipe, o);
  });

  const describe = program.command('describe').description('show one object in detail');
  withServer(withGlobals(describe.command('run <name>').description('status, tiers, apps, evidence and steps of a run'))).action(
    async (name: string, o: GlobalOptions & RemoteOptions) => {
      code = await describeRunCommand(name, o);
    },
  );
  withGlobals(describe.command('warm <recipe>').description("a recipe's warm app: source, head, promoted commit, health, holder")).action(
    (recipe: string, o: GlobalOptions) => {
      code = describeWarmCommand(recipe, o);
    },
  );

  withServer(withGlobals(program.command('logs <name>').description("print a run's log").option('-f, --follow', 'follow until the run is done'))).action(
    async (name: string, o: GlobalOptions & RemoteOptions & { follow?: boolean }) => {
      code = await logsCommand(name, o);
    },
  );

  const del = program.command('delete').description('delete an object');
  withGlobals(del.command('run <name>').description('cancel a run, tear it down and forget its spec')).action(async (name: string, o: GlobalOptions) => {
    code = await deleteRunCommand(name, o);
  });

  withServer(withGlobals(program.command('cancel <name>').description('cancel a run: it is torn down and reported cancelled; its record stays'))).action(
    async (name: string, o: GlobalOptions & RemoteOptions) => {
      code = await cancelCommand(name, o);
    },
  );
  withServer(
    withGlobals(
      program
        .command('rerun <name>')
        .description('run a run again at the same commit, lane and trigger (cc-ci serve picks it up)')
        .option('--failed', 'only the tiers from the first that did not pass'),
    ),
  ).action(async (name: string, o: GlobalOptions & RemoteOptions & { failed?: boolean }) => {
    code = await rerunCommand(name, o);
  });
  const token = program.command('token').description('API tokens for cancelling and rerunning over HTTP');
  withGlobals(token.command('create <name>').description('issue a token (printed once; only its hash is kept)')).action((name: string, o: GlobalOptions) => {
    code = tokenCommand('create', name, o);
  });
  withGlobals(token.command('list').description('the tokens, when made and last used')).action((o: GlobalOptions) => {
    code = tokenCommand('list', undefined, o);
  });
  withGlobals(token.command('revoke <name>').description('revoke a token at once')).action((name: string, o: GlobalOptions) => {
    code = tokenCommand('revoke', name, o);
  });

  withGlobals(
    program
      .command('janitor')
      .description('reap test apps no live run owns (owner dead: now; owner unknown: after an age)')
      .option('--dry-run', 'say what would be reaped, remove nothing')
      .option('--grace <seconds>', 'look again after this long before deleting (default: config janitor.graceSeconds)'),
  ).action(async (o: GlobalOptions & { dryRun?: boolean; grace?: string }) => {
    code = await janitorCommand(o);
  });

  const configCmd = program.command('config').description('the configuration file');
  configCmd
    .command('check <file>')
    .description('load and validate a config file as serve would: print "FILE: ok", or the errors and exit 2')
    .action((file: string) => {
      code = configCheckCommand(file);
    });

  withGlobals(program.command('doctor').description('check docker, the swarm, the proxy network and abra')).action(async (o: GlobalOptions) => {
    code = await doctorCommand(o);
  });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.passed : EXIT.error;
    }
    if (e instanceof UsageError || e instanceof AlreadyServingError) {
      err(`cc-ci: ${e.message}`);
      return EXIT.error;
    }
    err(`cc-ci: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT.error;
  }
  return code;
}

main(process.argv).then(
  (code) => process.exit(code),
  (e: unknown) => {
    err(`cc-ci: ${String(e)}`);
    process.exit(EXIT.error);
  },
);
