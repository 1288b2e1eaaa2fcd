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
    await beforeCommand(inv.path.join('.'), canonicalKey);
    await cmd.run(inv);
    return 0;
  } catch (e) {
    if (e instanceof Fatal) log.fatal(e.message);
    else log.fatal(e instanceof Error ? `${e.message}${process.env.ABRA_DOUBLE_TRACE ? `\n${e.stack ?? ''}` : ''}` : String(e));
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
