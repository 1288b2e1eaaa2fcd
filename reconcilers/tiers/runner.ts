import type { TierName } from '../../state/types.js';
import type { RunContext } from '../context.js';

/**
 * A tier runner: the operations and assertions of one rung of the ladder. It says whether it
 * applies to the recipe (`n/a` with a reason does not stop the climb) and, when run, either
 * returns `pass` with what it saw or throws TestFailure with a reason a maintainer can act on.
 */
export interface TierRunner {
  name: TierName;
  applies(ctx: RunContext): Promise<{ applies: true } | { applies: false; reason: string }>;
  run(ctx: RunContext): Promise<{ reason: string }>;
}
