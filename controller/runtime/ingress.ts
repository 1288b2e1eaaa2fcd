import type { Config } from '../model/config.js';
import type { Docker } from '../clients/docker.js';
import type { Logger } from '../model/log.js';

/**
 * How a test app is reached. `traefik`: through the Traefik every Co-op Cloud server runs, at
 * https://<domain>. `local`: cc-ci publishes the app's port on the host (a compose overlay,
 * `mode: host`), for a machine with no Traefik — a laptop, or CI. `auto` (the default) picks
 * traefik when a Traefik service runs on the swarm, else local, once, when the controller starts.
 */

export type IngressMode = 'local' | 'traefik';

/** A Traefik image, by repository name: `traefik`, `traefik:v3.1`, `docker.io/library/traefik@sha256:…`. */
const TRAEFIK_IMAGE = /(^|\/)traefik(:|@|$)/;

export async function findTraefik(docker: Docker): Promise<string | null> {
  const services = await docker.serviceImages();
  return services.find((s) => TRAEFIK_IMAGE.test(s.image))?.name ?? null;
}

/** Settles `auto` to a concrete mode in the config, and says which and why. */
export async function resolveIngressMode(config: Config, docker: Docker, log: Logger): Promise<IngressMode> {
  const configured = config.ingress.mode;
  if (configured !== 'auto') return configured;
  let mode: IngressMode = 'local';
  let why = 'no Traefik service runs on the swarm';
  try {
    const traefik = await findTraefik(docker);
    if (traefik) {
      mode = 'traefik';
      why = `the Traefik service ${traefik} runs on the swarm`;
    }
  } catch (e) {
    why = `the swarm could not be asked (${(e as Error).message.split('\n')[0]})`;
  }
  config.ingress.mode = mode;
  log.info({ ingress: mode, why }, `ingress mode auto: ${mode}, because ${why}`);
  return mode;
}
