import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../../state/store.js';
import type { InstanceRecord } from '../../state/types.js';
import { AlreadyServingError, liveInstance } from '../../state/instance.js';
import { Manager } from '../runtime/manager.js';
import { out, type Env } from './common.js';

/**
 * The CLI's commands that need a controller (`cc-ci run`, `cc-ci delete run`) either leave the
 * work to the controller that serves the state directory or start an embedded one for their one
 * run. An embedded controller of another `cc-ci run` reconciles only its own run, so it is not
 * someone to leave work to: wait until it has finished and released the directory.
 */

export interface EmbeddedOptions {
  /** The run the embedded controller is for. */
  run: string;
  /** A live controller that will do this run's work (a `serve`, or the `run` that owns it). */
  handles(holder: InstanceRecord): boolean;
  /** Told once when the command has to wait for another `cc-ci run` to finish. */
  waiting(holder: InstanceRecord): void;
  pollMs?: number;
}

/** Resolves to an embedded controller, started and holding the state directory, or to null
 *  when a live controller handles the run. */
export async function embeddedController(env: Env, store: Store, o: EmbeddedOptions): Promise<Manager | null> {
  let told = false;
  for (;;) {
    const holder = liveInstance(store);
    if (holder) {
      if (o.handles(holder)) return null;
      if (!told) o.waiting(holder);
      told = true;
      await sleep(o.pollMs ?? 1000);
      continue;
    }
    const manager = new Manager({ paths: env.paths, config: env.config, logger: env.logger, mode: 'run', only: o.run });
    try {
      await manager.start();
      return manager;
    } catch (e) {
      manager.store.close();
      // Another controller claimed the directory between the look and the claim: look again.
      if (!(e instanceof AlreadyServingError)) throw e;
    }
  }
}

export function describeHolder(h: InstanceRecord): string {
  return `${h.mode === 'run' ? 'another cc-ci run' : 'cc-ci serve'} (pid ${h.pid} on ${h.host})`;
}

/**
 * A cancel is recorded; now someone must carry it out. The controller serving the directory, or
 * the `cc-ci run` executing this very run, does; otherwise this command does the teardown itself
 * (waiting for another `cc-ci run` of a different run to finish first). Closes `store`.
 */
export async function carryOutCancel(env: Env, store: Store, name: string, said: { byOther: string; here: string }): Promise<void> {
  const manager = await embeddedController(env, store, {
    run: name,
    handles: (holder) => holder.mode === 'serve' || store.getRun(name)?.owner === holder.id,
    waiting: (holder) => out(`waiting: ${describeHolder(holder)} is using ${env.paths.root}; run/${name} is torn down when it has finished`),
  });
  store.close();
  if (!manager) {
    out(said.byOther);
    return;
  }
  out(said.here);
  const final = await manager.waitForRun(name);
  await manager.stop('cancel finished');
  out(`run/${name}: ${final.result} — ${final.reason ?? ''}`);
}
