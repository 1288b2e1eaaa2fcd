import { execa } from 'execa';
import { ensureImages } from '../fixtures/images.js';

/**
 * Shared set-up for the whole suite, run once before any test file (vitest `globalSetup`): the
 * local images every swarm test deploys. Building them here, once, instead of in each file's
 * `beforeAll`, keeps a file's own time limit for its own work — on a fresh machine the build used
 * to land in whichever file ran first and, when it hung, that file's tests never ran. Every step
 * has its own time limit and says which image and step hung.
 *
 * Without a docker daemon (unit tests on a laptop) there is nothing to build: the swarm tests
 * then fail in their own set-up, saying the swarm is missing.
 */
export default async function setup(): Promise<void> {
  const info = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false, timeout: 30_000 });
  if (info.timedOut) throw new Error('global set-up: `docker info` did not answer within 30s: dockerd is hung');
  if (info.exitCode !== 0) {
    process.stderr.write('global set-up: no docker daemon answers; the swarm tests will fail (run ./setup.sh --no-demo)\n');
    return;
  }
  const started = Date.now();
  const images = await ensureImages();
  process.stderr.write(`global set-up: ${images.length} test image(s) ready in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
}
