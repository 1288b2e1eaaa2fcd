import type { Config } from '../controller/model/config.js';
import type { Store } from '../state/store.js';

/**
 * Admission: whether one more run may leave Pending now. Asked inside the store's transaction
 * that admits the run, so two workers never admit past the limit.
 */

/** Why a waiting run cannot start yet, or null when it can. */
export function whyNotAdmitted(store: Store, config: Config): string | null {
  const active = store.countActiveRuns();
  if (active >= config.capacity) return `capacity full (${active}/${config.capacity} runs active)`;
  return leaseHeld(store, config);
}

/**
 * Whether a run may take one more host port beyond what admission counted for it (a second app at
 * once) and still leave one for every admitted run that has not leased yet. Always in traefik mode.
 */
export function spareIngressPort(store: Store, config: Config): boolean {
  return leaseHeld(store, config) === null;
}

/**
 * In the local ingress mode every app holds a host port, so a run is admitted only while a port
 * of the range is left for it — one for each live app, and one for each admitted run that has
 * not leased its app yet. (A port something else on the host listens on is found only at lease
 * time.)
 */
function leaseHeld(store: Store, config: Config): string | null {
  if (config.ingress.mode === 'traefik') return null;
  const [lo, hi] = config.ingress.portRange;
  const held = [...store.livePorts()].filter((p) => p >= lo && p <= hi).length;
  const leasing = store
    .listRuns({ phases: ['Preparing', 'Deploying', 'Testing'] })
    .filter((r) => !store.appsOfRun(r.name).some((a) => a.state !== 'released' && a.port !== null)).length;
  const used = held + leasing;
  return used >= hi - lo + 1 ? `lease held: no free ingress port in ${lo}-${hi} (${used} apps hold them)` : null;
}
