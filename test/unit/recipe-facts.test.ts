import { describe, expect, it } from 'vitest';
import { composeModel } from '../../controller/model/compose-model.js';
import { factsOf, type FactsInput } from '../../controller/clients/recipe-facts.js';
import { EnvFile } from '../../controller/model/envfile.js';
import { applyRunEnv, recipeComposeFiles } from '../../reconcilers/app-env.js';
import { deployedState, sameCommit } from '../../reconcilers/deploy.js';
import type { ServiceState } from '../../controller/clients/docker.js';

/**
 * What cc-ci reads of a recipe, on compose models in the long form `docker stack config` prints
 * (the layouts are those of the public recipes docs/abra-double.md names; the files are ours).
 */

const input = (o: Partial<FactsInput> = {}): FactsInput => ({
  recipeDir: '/nowhere',
  files: ['compose.yml'],
  env: { DOMAIN: 'abcd-123456.ci.example', STACK_NAME: 'abcd-123456_ci_example' },
  modifiers: () => '',
  ...o,
});

const facts = (merged: string, o: Partial<FactsInput> = {}, raw: Record<string, unknown>[] = [{ version: '3.8' }]) =>
  factsOf(composeModel(merged, raw), input(o));

describe('the web service and its port', () => {
  it('is the service whose Traefik router names the domain — `web`, not `app` (llamenos)', () => {
    const f = facts(`
services:
  app: { image: x }
  web:
    image: y
    deploy:
      labels:
        traefik.enable: "true"
        traefik.http.services.s-web.loadbalancer.server.port: "8080"
        traefik.http.routers.s.rule: Host(\`abcd-123456.ci.example\`)
`);
    expect(f.web).toMatchObject({ service: 'web', port: 8080 });
  });

  it('of several routers on one service, the Host-only one wins over a PathPrefix one on another port (bore, rollout)', () => {
    const f = facts(`
services:
  app:
    image: x
    deploy:
      labels:
        traefik.http.routers.s-api.rule: Host(\`abcd-123456.ci.example\`) && PathPrefix(\`/api\`)
        traefik.http.routers.s-api.service: s-api
        traefik.http.services.s-api.loadbalancer.server.port: "9090"
        traefik.http.routers.s.rule: Host(\`abcd-123456.ci.example\`)
        traefik.http.routers.s.service: s
        traefik.http.services.s.loadbalancer.server.port: "8080"
        traefik.tcp.services.s-tunnel.loadbalancer.server.port: "7835"
`);
    expect(f.web).toMatchObject({ service: 'app', port: 8080 });
    expect((f.web as { why: string }).why).toMatch(/router "s" .*→ port 8080, the main one of 2 routes on app/);
  });

  it('a service with traefik.enable=false is not the web; a named port is reported, not guessed (traefik 2021)', () => {
    const f = facts(`
services:
  app:
    image: x
    deploy:
      labels:
        traefik.http.services.s.loadbalancer.server.port: web
  other:
    image: y
    deploy:
      labels:
        traefik.enable: "false"
        traefik.http.services.o.loadbalancer.server.port: "80"
`);
    expect(f.web.service).toBeNull();
    expect((f.web as { problem: string }).problem).toMatch(
      /app has loadbalancer.server.port "web", not a port number cc-ci can use; set webService and webPort/,
    );
  });

  it('without Traefik labels, the one service that publishes one port (agora)', () => {
    const f = facts(`
services:
  app:
    image: x
    ports: [{ mode: ingress, target: 5017, protocol: tcp }]
`);
    expect(f.web).toMatchObject({ service: 'app', port: 5017, why: 'publishes port 5017 and carries no Traefik port label' });
  });

  it("the settings' webService and webPort win", () => {
    const f = facts(`services: { app: { image: x }, front: { image: y } }`, { web: { service: 'front', port: 81 } });
    expect(f.web).toMatchObject({ service: 'front', port: 81 });
    expect(facts(`services: { app: { image: x } }`, { web: { service: 'nope', port: 81 } }).web).toMatchObject({ service: null });
  });

  it('carries the update and rollback order (start-first cannot share a host-mode port)', () => {
    const f = facts(`
services:
  app:
    image: x
    deploy:
      update_config: { order: start-first, failure_action: rollback }
      rollback_config: { order: start-first }
      labels: { traefik.http.services.s.loadbalancer.server.port: "8787" }
`);
    expect(f.web).toMatchObject({ updateOrder: 'start-first', rollbackOrder: 'start-first' });
  });
});

describe('the backed-up service that holds the test data', () => {
  it('skips a labelled service without a volume for one whose volume the backup covers (llamenos)', () => {
    const f = facts(`
services:
  app:
    image: x
    deploy: { labels: { backupbot.backup: "true" } }
  db:
    image: y
    volumes: [{ type: volume, source: db-data, target: /var/lib/db }]
    deploy: { labels: { backupbot.backup: "true", backupbot.backup.path: /var/lib/db/data } }
  store:
    image: z
    volumes: [{ type: volume, source: store-data, target: /data }]
    deploy: { labels: { backupbot.backup: "true" } }
volumes: { db-data: {}, store-data: {} }
`);
    expect(f.backup.labelled).toEqual(['app', 'db', 'store']);
    // a whole volume first, then one the (legacy) path label limits
    expect(f.backup.candidates).toEqual([
      { service: 'store', volume: 'store-data', mount: '/data', paths: null },
      { service: 'db', volume: 'db-data', mount: '/var/lib/db', paths: ['data'] },
    ]);
    expect(f.backup.why).toBe('backed up: app, db, store; test data goes into volume store-data of store');
  });

  it('respects volumes.<v>=false and volumes.<v>.path, and says why no volume can hold test data', () => {
    const f = facts(`
services:
  app:
    image: x
    volumes: [{ type: volume, source: cache, target: /cache }, { type: bind, source: /etc, target: /host-etc }]
    deploy: { labels: { backupbot.backup: "true", backupbot.backup.volumes.cache: "false" } }
volumes: { cache: {} }
`);
    expect(f.backup.capable).toBe(true);
    expect(f.backup.candidates).toEqual([]);
    expect(f.backup.why).toBe('backed up: app, but no backed-up volume can hold test data (cache of app is excluded)');
  });

  it('reads backupbot.backup as interpolated with the app env: ${ENABLE_BACKUPS:-true} that became false is no backup', () => {
    const f = facts(`
services:
  app: { image: x, deploy: { labels: { backupbot.backup: "false" } } }
  db: { image: y, deploy: { labels: { backupbot.backup: "false" } } }
`);
    expect(f.backup).toMatchObject({ capable: false, disabled: ['app', 'db'], why: "backupbot.backup is not true on app, db with this app's env" });
  });
});

describe('the secrets abra generates', () => {
  it('are the external ones named through a SECRET_*_VERSION variable, with their modifiers', () => {
    const raw = [
      {
        version: '3.8',
        secrets: {
          hmac_key: { external: true, name: '${STACK_NAME}_hmac_key_${SECRET_HMAC_KEY_VERSION}' },
          smtp: { external: true, name: '${STACK_NAME}_smtp_${SECRET_SMTP_VERSION:-v1}' },
          file_secret: { file: './x' },
        },
      },
    ];
    const mods: Record<string, string> = { SECRET_HMAC_KEY_VERSION: 'length=64 charset=hex', SECRET_SMTP_VERSION: 'generate=false' };
    const f = factsOf(
      composeModel(
        `
services: { app: { image: x } }
secrets:
  hmac_key: { external: true, name: s_hmac_key_v2 }
  smtp: { external: true, name: s_smtp_v1 }
  file_secret: { file: /r/x }
`,
        raw,
      ),
      input({ env: { SECRET_HMAC_KEY_VERSION: 'v2', STACK_NAME: 's' }, modifiers: (v) => mods[v] ?? '' }),
    );
    expect(f.secrets).toEqual([
      { key: 'hmac_key', name: 's_hmac_key_v2', versionVar: 'SECRET_HMAC_KEY_VERSION', version: 'v2', modifiers: 'length=64 charset=hex', generate: true },
      // unset in the env, defaulted in the name: the version is the name's
      { key: 'smtp', name: 's_smtp_v1', versionVar: 'SECRET_SMTP_VERSION', version: 'v1', modifiers: 'generate=false', generate: false },
    ]);
  });
});

describe('the app env cc-ci writes', () => {
  const run = {
    run: 'r1',
    domain: 'abcd-123456.ci.example',
    settings: { deployTimeoutSeconds: 60, extraEnv: { X: 'y' } },
    overlay: false,
    ingressOverlay: true,
  };

  it('spells COMPOSE_FILE out when .env.sample has none: compose.yml first, then the overlay (7 of 10 recipes)', () => {
    const env = new EnvFile('/dev/null', 'TYPE=gaseous\nDOMAIN=gaseous.example.com\n');
    applyRunEnv(env, run);
    expect(env.resolved('COMPOSE_FILE')).toBe('compose.yml:compose.ccci-ingress.yml');
    expect(env.get('DOMAIN')).toBe('abcd-123456.ci.example');
    expect(env.get('X')).toBe('y');
    expect(recipeComposeFiles(env)).toEqual(['compose.yml']);
  });

  it('keeps the self-referencing list and adds both overlays after it; DOMAIN replaced whatever the sample said', () => {
    const env = new EnvFile('/dev/null', 'DOMAIN=hotline.example.com\nCOMPOSE_FILE="compose.yml"\nCOMPOSE_FILE="$COMPOSE_FILE:compose.db.yml"\n');
    applyRunEnv(env, { ...run, overlay: true });
    expect(env.resolved('COMPOSE_FILE')).toBe('compose.yml:compose.db.yml:compose.ccci.yml:compose.ccci-ingress.yml');
    expect(env.get('DOMAIN')).toBe('abcd-123456.ci.example');
    expect(env.get('LETS_ENCRYPT_ENV')).toBe('');
    expect(recipeComposeFiles(env)).toEqual(['compose.yml', 'compose.db.yml']);
  });
});

describe('whether the stack runs what was deployed', () => {
  const svc = (labels: Record<string, string>): ServiceState[] => [{ id: '1', name: 's_app', desired: 1, running: 1, updateState: '', labels }];
  const commit = '1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d';

  it('takes a chaos-version of any length as a commit prefix, a +U suffix aside', () => {
    expect(sameCommit('1a2b3c4d', commit)).toBe(true);
    expect(sameCommit('1a2b3c4', commit)).toBe(true);
    expect(sameCommit('1a2b3c4d+U', commit)).toBe(true);
    expect(sameCommit(commit, commit)).toBe(true);
    expect(sameCommit('1a2b3c', commit)).toBe(false);
    expect(sameCommit('ffffffff', commit)).toBe(false);
  });

  it('says "no chaos-version label" when that is what is missing, and "no app service" when that is', () => {
    expect(deployedState(svc({ 'coop-cloud.s.version': '1.0.0' }), 's', { commit })).toEqual({
      at: false,
      shows: 'no chaos-version label on s_app (version 1.0.0)',
    });
    expect(deployedState([{ ...svc({})[0]!, name: 's_web' }], 's', { commit }).shows).toBe('no app service');
    expect(deployedState([], 's', { commit }).shows).toBe('nothing deployed');
    expect(deployedState(svc({ 'coop-cloud.s.chaos-version': '1a2b3c4' }), 's', { commit }).at).toBe(true);
  });

  it('a release is at its version label, and not when the stack shows a chaos deploy', () => {
    expect(deployedState(svc({ 'coop-cloud.s.version': 'v1.1.0', 'coop-cloud.s.chaos': 'false' }), 's', { commit, release: 'v1.1.0' }).at).toBe(true);
    expect(
      deployedState(svc({ 'coop-cloud.s.version': 'v1.1.0', 'coop-cloud.s.chaos': 'true', 'coop-cloud.s.chaos-version': 'abc' }), 's', {
        commit,
        release: 'v1.1.0',
      }),
    ).toEqual({
      at: false,
      shows: 'a chaos deploy (chaos-version abc)',
    });
  });
});
