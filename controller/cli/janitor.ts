import { janitorOnce } from '../../reconcilers/janitor.js';
import { EXIT, loadEnv, openStore, out, table, type GlobalOptions } from './common.js';

/** `cc-ci janitor [--dry-run]`: one janitor pass now, with what it found and did. */
export async function janitorCommand(o: GlobalOptions & { dryRun?: boolean; grace?: string }): Promise<number> {
  const env = loadEnv(o, true);
  const store = openStore(env.paths, true);
  try {
    const findings = await janitorOnce(
      { store, config: env.config, paths: env.paths, logger: env.logger },
      { dryRun: o.dryRun === true, ...(o.grace !== undefined ? { graceMs: Number(o.grace) * 1000 } : {}) },
    );
    if (findings.length === 0) {
      out('no test apps on the swarm');
      return EXIT.passed;
    }
    out(
      table([
        ['DOMAIN', 'VERDICT', 'OUTCOME', 'WHY'],
        ...findings.map((f) => [f.domain, f.verdict.action, f.outcome ?? '-', `${f.verdict.why}${f.detail ? `; ${f.detail}` : ''}`]),
      ]),
    );
    return findings.some((f) => f.outcome === 'failed') ? EXIT.failed : EXIT.passed;
  } finally {
    store.close();
  }
}
