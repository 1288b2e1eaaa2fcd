import { updateSettled, type ServiceState } from '../controller/clients/docker.js';

/**
 * Reading an app's state off its stack's services: whether it has converged, and whether it
 * runs the commit or release wanted — from the labels abra puts on the app service (the
 * contract in docs/abra-double.md, row 15).
 */

/** Strict convergence of one service: at its desired count with its update settled. A service a
 *  recipe scales to 0 on purpose is at its count. */
export function serviceConverged(s: ServiceState): boolean {
  return s.running === s.desired && updateSettled(s.updateState);
}

/** Every service converged, and the stack runs something. */
export function converged(services: ServiceState[]): boolean {
  return services.some((s) => s.desired > 0) && services.every(serviceConverged);
}

/** abra's short commit (8 characters [R]) — or another length — names the same commit when one
 *  is a prefix of the other; a `+U` (unstaged changes) suffix is not the commit. */
export function sameCommit(label: string, commit: string): boolean {
  const l = label.trim().toLowerCase().replace(/\+u$/, '');
  const c = commit.toLowerCase();
  return /^[0-9a-f]{7,64}$/.test(l) && (c.startsWith(l) || l.startsWith(c));
}

/**
 * Whether the stack runs what is wanted: the chaos-version of a chaos deploy, the version of a
 * release deploy. `shows` says what the stack shows instead, in words.
 */
export function deployedState(services: ServiceState[], stack: string, want: { commit: string; release?: string | undefined }): { at: boolean; shows: string } {
  const app = services.find((s) => s.name === `${stack}_app`);
  if (!app) return { at: false, shows: services.length ? 'no app service' : 'nothing deployed' };
  const chaos = app.labels[`coop-cloud.${stack}.chaos`];
  const chaosVersion = app.labels[`coop-cloud.${stack}.chaos-version`];
  const version = app.labels[`coop-cloud.${stack}.version`];
  if (want.release) {
    const at = version === want.release && chaos !== 'true';
    return { at, shows: chaos === 'true' ? `a chaos deploy (chaos-version ${chaosVersion ?? 'none'})` : version ? `version ${version}` : 'no version label' };
  }
  if (chaosVersion === undefined) return { at: false, shows: `no chaos-version label on ${app.name}${version ? ` (version ${version})` : ''}` };
  return { at: sameCommit(chaosVersion, want.commit), shows: `chaos-version ${chaosVersion}` };
}
