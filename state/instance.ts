import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Store } from './store.js';
import type { InstanceRecord } from './types.js';
import { isAlive, processStartTicks } from '../controller/clients/process.js';

/**
 * At most one controller serves a state directory. The claim is a row in the store naming the
 * process (pid and its start time, so a reused pid is not mistaken for it); a claim whose
 * process is gone is stale and taken over — that is how a restart after kill -9 proceeds.
 */

export class AlreadyServingError extends Error {
  constructor(readonly holder: InstanceRecord) {
    super(
      `another cc-ci controller (pid ${holder.pid} on ${holder.host}, ${holder.mode}, since ${new Date(holder.startedAt).toISOString()}) ` +
        'is already serving this state directory; stop it first, or use a different --state-dir',
    );
  }
}

/** How long a heartbeat from another host stays believable (its pid cannot be checked here). */
const FOREIGN_HEARTBEAT_MS = 30_000;

export function instanceAlive(i: InstanceRecord): boolean {
  if (i.host !== hostname()) return Date.now() - i.heartbeatAt < FOREIGN_HEARTBEAT_MS;
  return isAlive(i.pid, i.pidStart);
}

/** The live controller of a state directory, if any. */
export function liveInstance(store: Store): InstanceRecord | undefined {
  return store.listLiveInstances().find(instanceAlive);
}

export function acquireInstance(store: Store, mode: 'serve' | 'run'): InstanceRecord {
  return store.atomically(() => {
    for (const i of store.listLiveInstances()) {
      if (instanceAlive(i)) throw new AlreadyServingError(i);
      store.stopInstance(i.id);
    }
    const now = Date.now();
    const me: InstanceRecord = {
      id: randomUUID(),
      pid: process.pid,
      pidStart: processStartTicks(process.pid),
      host: hostname(),
      mode,
      startedAt: now,
      heartbeatAt: now,
      stoppedAt: null,
    };
    store.insertInstance(me);
    return me;
  });
}
