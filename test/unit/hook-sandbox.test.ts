import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHook } from '../../reconcilers/hooks.js';
import type { Customization, HookName, LayerSource } from '../../recipes/customization.js';
import { Store } from '../../state/store.js';
import { testRunContext } from '../support/run-context.js';

/**
 * A hook from a pull request, run as cc-ci runs it (runHook, a run's context, the real
 * bubblewrap): it tries the forge token file, the webhook secret, the state database, the Docker
 * socket and the controller's environment, and prints whatever it got. It gets none of them, and
 * the run's log holds no secret — the sandbox keeps them out, and the redactor would mask them if
 * it did not. The operator's own hook, trusted, still runs on the host with ABRA_DIR.
 */

const TOKEN = 'forge-token-7f3a9c1e5b2d';
const WEBHOOK = 'webhook-secret-0d8e6f4a2c';
const PARENT = 'parent-env-secret-91b7';

let dir: string;
let store: Store;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-hooksbx-'));
  mkdirSync(join(dir, 'etc'), { mode: 0o700 });
  writeFileSync(join(dir, 'etc', 'token'), `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'etc', 'webhook'), WEBHOOK, { mode: 0o600 });
  store = new Store(join(dir, 'cc-ci.db'));
  process.env.CCCI_PARENT_SECRET = PARENT;
});

afterAll(() => {
  delete process.env.CCCI_PARENT_SECRET;
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The state directory is `dir/state`: the database the hook tries is the one the run writes. */
function contextWithHook(name: string, hook: HookName, source: LayerSource, script: string) {
  const ctx = testRunContext(store, join(dir, 'state'), name, {
    forge: { url: 'https://git.example.org', tokenFile: join(dir, 'etc', 'token'), webhookSecretFile: join(dir, 'etc', 'webhook') },
  });
  const recipeDir = join(dir, name, 'recipe');
  const hooksDir = join(dir, name, 'layer', 'hooks');
  mkdirSync(recipeDir, { recursive: true });
  mkdirSync(hooksDir, { recursive: true });
  writeFileSync(join(recipeDir, 'compose.yml'), 'services: {}\n');
  const path = join(hooksDir, hook);
  writeFileSync(path, script);
  chmodSync(path, 0o755);
  const customization = { hooks: { [hook]: { path, source } } } as unknown as Customization;
  ctx.workspace = { abraDir: ctx.abraDir, recipeDir, commit: 'c0ffee', settings: { hookTimeoutSeconds: 30 } as never, customization };
  return ctx;
}

const logOf = (name: string): string =>
  store
    .eventsSince(name, 0, 10_000)
    .map((e) => e.text)
    .join('\n');

describe('a hook from the recipe repository', () => {
  it('gets no token, secret, state database, Docker socket or parent environment, and leaves no secret in the log', async () => {
    const db = join(dir, 'state', 'cc-ci.db');
    const script = [
      '#!/bin/sh',
      `for f in "${join(dir, 'etc', 'token')}" "${join(dir, 'etc', 'webhook')}" "${db}" "${join(dir, 'cc-ci.db')}"; do`,
      '  if [ -r "$f" ]; then echo "READ $f: $(head -c 64 "$f")"; else echo "no $f"; fi',
      'done',
      '[ -S /var/run/docker.sock ] || [ -S /run/docker.sock ] && echo "SOCKET reachable" || echo "no docker socket"',
      'echo "parent=${CCCI_PARENT_SECRET:-none} abra=${ABRA_DIR:-none} uid=$(id -u)"',
      'env | sort',
      'echo "::add-mask::hook-chosen-password-42"',
      'echo "my password is hook-chosen-password-42"',
    ].join('\n');
    const ctx = contextWithHook('hostile-hook', 'seed', 'recipe-repo', script);
    const r = await runHook(ctx, 'seed', null, ['backup'], { CCCI_MARKER: 'm-1' });
    expect(r).toMatchObject({ ran: true, ok: true });
    const log = logOf('hostile-hook');
    expect(log).toContain('sandboxed');
    expect(log).not.toMatch(/READ |SOCKET reachable/);
    expect(log).toContain('no docker socket');
    expect(log).toContain('parent=none abra=none uid=65534');
    expect(log).toContain('CCCI_MARKER=m-1');
    for (const secret of [TOKEN, WEBHOOK, PARENT, 'hook-chosen-password-42']) expect(log).not.toContain(secret);
    expect(log).not.toContain('::add-mask::');
    expect(log).toContain('my password is ***');
  });

  it('a hook that prints a secret it was handed has it masked: the forge token, in the clear and base64', async () => {
    const ctx = contextWithHook('leaky-hook', 'check', 'recipe-repo', `#!/bin/sh\necho "$LEAK"\necho "$LEAK" | base64\n`);
    await runHook(ctx, 'check', null, [], { LEAK: `Authorization: token ${TOKEN}` });
    const log = logOf('leaky-hook');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain(Buffer.from(TOKEN).toString('base64').slice(4, -4));
  });
});

describe('without bubblewrap', () => {
  it('runs no repository code: the hook never starts, and the error says how to install it', async () => {
    const marker = join(dir, 'ran-anyway');
    const ctx = contextWithHook('no-bwrap', 'seed', 'recipe-repo', `#!/bin/sh\ntouch "${marker}"\n`);
    process.env.CCCI_BWRAP = join(dir, 'no-such-bwrap');
    try {
      await expect(runHook(ctx, 'seed', null, ['upgrade'])).rejects.toThrow(/repository code is not run without its sandbox: .*apt-get install bubblewrap/);
    } finally {
      delete process.env.CCCI_BWRAP;
    }
    expect(existsSync(marker)).toBe(false);
  });
});

describe("the operator's own hook", () => {
  it('runs on the host, trusted like the config, with ABRA_DIR', async () => {
    const ctx = contextWithHook('operator-hook', 'install-steps', 'operator', '#!/bin/sh\necho "abra=$ABRA_DIR uid=$(id -u)"\n');
    await runHook(ctx, 'install-steps', null);
    const log = logOf('operator-hook');
    expect(log).toContain(`abra=${ctx.abraDir} uid=${process.getuid?.()}`);
    expect(log).toContain('on the host');
  });
});
