import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../controller/model/config.js';
import { Docker } from '../../controller/clients/docker.js';
import { resolveIngressMode } from '../../controller/runtime/ingress.js';
import { createLogger } from '../../controller/model/log.js';
import { BUSYBOX_IMAGE } from '../../fixtures/images.js';
import { ensureSwarm } from '../support/harness.js';

/**
 * The default ingress mode, `auto`, on the real swarm: local while no Traefik runs, traefik as
 * soon as a service runs a Traefik image. The "Traefik" here is the fixture's busybox image
 * tagged as traefik — the detection reads the image reference, which is all a test can offer.
 */

const FAKE_TRAEFIK = 'traefik:v3-ccci-test';
const SERVICE = 'ccci-ingress-test-traefik';
const docker = new Docker({ timeoutMs: 30_000 });
const log = createLogger('silent');

async function removeService(): Promise<void> {
  await execa('docker', ['service', 'rm', SERVICE], { reject: false, timeout: 60_000 });
}

beforeAll(async () => {
  await ensureSwarm();
  await removeService();
  await execa('docker', ['tag', BUSYBOX_IMAGE, FAKE_TRAEFIK], { timeout: 30_000 });
});

afterAll(async () => {
  await removeService();
  await execa('docker', ['image', 'rm', FAKE_TRAEFIK], { reject: false, timeout: 30_000 });
});

describe('ingress mode auto', () => {
  it('is the default, and settles to local while no Traefik service runs', async () => {
    const config = loadConfig(undefined, {});
    expect(config.ingress.mode).toBe('auto');
    expect(await resolveIngressMode(config, docker, log)).toBe('local');
    expect(config.ingress.mode).toBe('local');
  });

  it('settles to traefik when a service runs a Traefik image; an explicit mode is never overridden', async () => {
    await execa('docker', ['service', 'create', '--detach', '--name', SERVICE, FAKE_TRAEFIK, 'sleep', '600'], { timeout: 60_000 });
    const config = loadConfig(undefined, {});
    expect(await resolveIngressMode(config, docker, log)).toBe('traefik');
    expect(config.ingress.mode).toBe('traefik');

    const explicit = loadConfig(undefined, {});
    explicit.ingress.mode = 'local';
    expect(await resolveIngressMode(explicit, docker, log)).toBe('local');
  });

  it('falls back to local, saying why, when docker cannot be asked', async () => {
    const config = loadConfig(undefined, {});
    const unreachable = new Docker({ timeoutMs: 5_000 });
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
    try {
      expect(await resolveIngressMode(config, unreachable, log)).toBe('local');
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });
});
