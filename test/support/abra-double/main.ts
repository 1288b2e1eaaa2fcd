// Entry point of the abra test double (test/support/abra is the executable shim).
import { parse, renderHelp } from './argv.js';
import { canonicalKey, ROOT, VERSION } from './cli.js';
import { beforeCommand } from './faults.js';
import { Fatal, log, setDebug } from './log.js';

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const outcome = parse(ROOT, argv);
    if (outcome.kind === 'help') {
      process.stdout.write(renderHelp(outcome.path));
      return 0;
    }
    if (outcome.kind === 'version') {
      process.stdout.write(`abra version ${VERSION}\n`);
      return 0;
    }
    const { inv, path } = outcome;
    setDebug(inv.bool('debug'));
    const cmd = path[path.length - 1];
    if (!cmd?.run) return 0;
    const fault = await beforeCommand(inv.path.join('.'), canonicalKey);
    if (fault.moves) await checkoutLatestRelease(inv.args[0] ?? '');
    await cmd.run(inv);
    return 0;
  } catch (e) {
    if (e instanceof Fatal) log.fatal(e.message);
    else log.fatal(e instanceof Error ? `${e.message}${process.env.ABRA_DOUBLE_TRACE ? `\n${e.stack ?? ''}` : ''}` : String(e));
    return 1;
  }
}

/** The `moves` fault: checks the app's recipe out at its latest release, as abra's recipe check
 *  does on a call that is not chaos [R], before the command itself runs. */
async function checkoutLatestRelease(domain: string): Promise<void> {
  const { loadApp } = await import('./app.js');
  const { checkout, releaseVersions } = await import('./git.js');
  const app = loadApp(domain);
  const latest = (await releaseVersions(app.recipeDir)).pop();
  if (latest === undefined) return;
  log.info(`injected recipe check: checked out ${latest} in ${app.recipeDir}`);
  await checkout(app.recipeDir, latest);
}

process.exitCode = await main(process.argv.slice(2));
