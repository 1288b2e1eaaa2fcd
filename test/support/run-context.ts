import { configSchema } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { ensureStateDirs, statePaths } from '../../controller/model/paths.js';
import { runSpecSchema } from '../../controller/model/spec.js';
import { RunContext } from '../../reconcilers/context.js';
import type { Store } from '../../state/store.js';

/** A run's context without a controller: a run row in `store`, a state directory under `stateDir`,
 *  the config from `config` (schema defaults for the rest), no apps, nothing tracked. */
export function testRunContext(store: Store, stateDir: string, name: string, config: Record<string, unknown> = {}): RunContext {
  const paths = statePaths(stateDir);
  ensureStateDirs(paths);
  const spec = runSpecSchema.parse({
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: { recipe: 'webnotes', source: { repo: '/r', ref: 'main' } },
  });
  if (!store.getRun(name)) store.insertRun({ name, specJson: JSON.stringify(spec), specHash: 'h', specPath: null, recipe: 'webnotes', lane: 'cold' });
  return new RunContext({
    store,
    apps: {} as never,
    config: configSchema.parse(config),
    paths,
    logger: createLogger('silent'),
    run: store.getRun(name)!,
    spec,
    signal: new AbortController().signal,
    tracker: { started: () => undefined, ended: () => undefined },
  });
}
