import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT } from '../support/harness.js';

// nixpkgs cannot be fetched here, so the module is checked as far as Nix itself can without
// it: every file parses, and the module evaluates against a stand-in for the nixpkgs functions
// it uses (test/support/nix/stub-nixpkgs.nix), and what it produces is asserted. Whether NixOS
// accepts it and the server boots is nix/tests/vm.nix's job, on a machine with nixpkgs.

const nixFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? nixFiles(join(dir, e.name)) : e.name.endsWith('.nix') ? [join(dir, e.name)] : [],
  );

interface Unit {
  serviceConfig: Record<string, unknown>;
  environment: Record<string, string>;
  path: string[];
  script?: string;
  requiredBy?: string[];
}
interface Produced {
  config: {
    systemd: {
      services: Record<string, Unit>;
      timers: Record<string, { timerConfig: Record<string, unknown> }>;
      tmpfiles: { rules: string[] };
    };
    users: { users: Record<string, { isSystemUser: boolean; group: string; extraGroups: string[] }>; groups: Record<string, unknown> };
    environment: { etc: Record<string, { source: string }> };
    assertions: { assertion: boolean; message: string }[];
    warnings?: string[];
    networking?: { firewall: { interfaces: Record<string, { allowedTCPPorts: number[] }> } };
  };
  settings: Record<string, unknown>;
  configCheckScript: string;
  routeCompose: {
    services: Record<string, { image: string; entrypoint: string[]; networks: string[]; deploy: { labels: string[] } }>;
    networks: Record<string, { external: boolean }>;
  } | null;
}

const PACKAGE = '{ _stub = "package"; name = "cc-ci"; outPath = "/nix/store/00000000000000000000000000000000-cc-ci"; }';

async function evalModule(cc: string): Promise<Produced> {
  const r = await execa(
    'nix-instantiate',
    ['--eval', '--strict', '--json', '--arg', 'cc', `{ enable = true; package = ${PACKAGE}; ${cc} }`, join(ROOT, 'test', 'support', 'nix', 'eval-module.nix')],
    { reject: false },
  );
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Produced;
}

describe('nix/', () => {
  it.each(nixFiles(join(ROOT, 'nix')).concat(nixFiles(join(ROOT, 'test', 'support', 'nix'))))('%s parses', async (file) => {
    const r = await execa('nix-instantiate', ['--parse', file], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it('the flake exposes the package, the module and an example host; the VM test runs the bundled recipe', async () => {
    const flake = (await execa('nix-instantiate', ['--parse', join(ROOT, 'nix', 'flake.nix')])).stdout;
    expect(flake).toMatch(/packages = /);
    expect(flake).toContain('nixosModules');
    expect(flake).toContain('nixosConfigurations');
    const pkg = (await execa('nix-instantiate', ['--parse', join(ROOT, 'nix', 'package.nix')])).stdout;
    expect(pkg).toContain('importNpmLock');
    expect(pkg).not.toContain('npmDepsHash');
    const vm = (await execa('nix-instantiate', ['--parse', join(ROOT, 'nix', 'tests', 'vm.nix')])).stdout;
    expect(vm).toContain('runNixOSTest');
    expect(vm).toContain('cc-ci run webnotes');
  });
});

describe('nix/module.nix, evaluated against the stand-in for nixpkgs', () => {
  let full: Produced;
  const dir = mkdtempSync(join(tmpdir(), 'ccci-nix-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeAll(async () => {
    full = await evalModule(`
      stateDir = "/srv/cc-ci";
      forgeTokenFile = "/root/secrets/forge-token";
      webhookSecretFile = "/root/secrets/webhook-secret";
      settings = { capacity = 2; domain.base = "ci.example.org"; ingress.mode = "traefik";
                   forge.url = "https://git.example.org"; repos = [ "coop-cloud/webnotes" ];
                   http.publicUrl = "https://ci.example.org"; };
      infrastructure = { enable = true; acmeEmail = "ops@example.org"; traefik.dnsProvider = "gandiv5";
                         traefik.dnsCredentialFiles.gandiv5_personal_access_token = "/root/secrets/gandi-pat"; };`);
  });

  it('declares the controller, the swarm oneshot, the infrastructure oneshot and the warm-reconcile timer', () => {
    const { services, timers } = full.config.systemd;
    expect(Object.keys(services).sort()).toEqual(['cc-ci', 'cc-ci-infra', 'cc-ci-swarm', 'cc-ci-warm-reconcile']);
    expect(services['cc-ci']?.serviceConfig.ExecStart).toBe('/nix/store/00000000000000000000000000000000-cc-ci/bin/cc-ci serve');
    expect(services['cc-ci-swarm']?.script).toContain('docker swarm init');
    expect(services['cc-ci-swarm']?.script).toContain('network create -d overlay --attachable proxy');
    expect(timers['cc-ci-warm-reconcile']?.timerConfig).toMatchObject({ OnUnitActiveSec: '15min', Persistent: true, Unit: 'cc-ci-warm-reconcile.service' });
    expect(services['cc-ci-warm-reconcile']?.serviceConfig.ExecStart).toMatch(/\/bin\/cc-ci warm reconcile$/);
  });

  it('runs as the cc-ci system user in the docker group, with the state directory from the option, mode 0700', () => {
    expect(full.config.users.users['cc-ci']).toMatchObject({ isSystemUser: true, group: 'cc-ci', extraGroups: ['docker'] });
    expect(full.config.users.groups).toHaveProperty('cc-ci');
    expect(full.config.systemd.tmpfiles.rules).toContain('d /srv/cc-ci 0700 cc-ci cc-ci - -');
    const sc = full.config.systemd.services['cc-ci']?.serviceConfig ?? {};
    expect(sc).toMatchObject({ User: 'cc-ci', Group: 'cc-ci' });
    expect(sc).not.toHaveProperty('StateDirectory');
    expect(full.config.systemd.services['cc-ci']?.environment).toMatchObject({ CCCI_STATE_DIR: '/srv/cc-ci', ABRA_DIR: '/srv/cc-ci/abra' });
  });

  it('hardens the service and still lets it reach the docker socket and run bubblewrap and Chromium', () => {
    const unit = full.config.systemd.services['cc-ci'];
    expect(unit?.serviceConfig).toMatchObject({
      ProtectSystem: 'strict',
      ReadWritePaths: ['/srv/cc-ci'],
      NoNewPrivileges: true,
      PrivateTmp: true,
      ProtectHome: true,
      CapabilityBoundingSet: '',
      UMask: '0077',
    });
    expect(unit?.serviceConfig.RestrictAddressFamilies).toContain('AF_UNIX');
    // bubblewrap makes namespaces: these would break the sandbox (the module says why).
    expect(unit?.serviceConfig).not.toHaveProperty('RestrictNamespaces');
    expect(unit?.serviceConfig).not.toHaveProperty('PrivateUsers');
    for (const p of ['-docker', '-git', '-chromium', '-bubblewrap']) expect(unit?.path.some((x) => x.endsWith(p))).toBe(true);
    expect(unit?.environment.CCCI_BWRAP).toMatch(/-bubblewrap\/bin\/bwrap$/);
  });

  it('passes the secrets as systemd credentials, never through the Nix store', () => {
    expect(full.config.systemd.services['cc-ci']?.serviceConfig.LoadCredential).toEqual([
      'forge-token:/root/secrets/forge-token',
      'webhook-secret:/root/secrets/webhook-secret',
    ]);
    expect(full.settings.forge).toMatchObject({
      tokenFile: '/run/credentials/cc-ci.service/forge-token',
      webhookSecretFile: '/run/credentials/cc-ci.service/webhook-secret',
    });
  });

  it('generates a config that `cc-ci config check` accepts, and checks it at build time', async () => {
    expect(full.config.environment.etc['cc-ci/config.yaml']?.source).toMatch(/-cc-ci\.yaml$/);
    expect(full.configCheckScript).toMatch(/\/bin\/cc-ci config check \/nix\/store\/\S+-cc-ci-unchecked\.yaml/);
    // JSON is YAML: the file the module renders holds exactly these settings.
    const file = join(dir, 'cc-ci.yaml');
    writeFileSync(file, JSON.stringify(full.settings));
    const r = await execa('node', [CLI, 'config', 'check', file], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${file}: ok`);
  });

  it('a setting serve would refuse fails the build: the check runs on what the module generates', async () => {
    const bad = await evalModule('settings = { capacity = 0; };');
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, JSON.stringify(bad.settings));
    const r = await execa('node', [CLI, 'config', 'check', file], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/capacity/);
  });

  it('deploys Traefik (wildcard certificate by DNS challenge) and backup-bot-two through abra at pinned versions, before the controller', () => {
    const infra = full.config.systemd.services['cc-ci-infra'];
    expect(infra?.requiredBy).toEqual(['cc-ci.service']);
    expect(infra?.serviceConfig).toMatchObject({ User: 'cc-ci', Type: 'oneshot' });
    expect(infra?.environment.ABRA_DIR).toBe('/srv/cc-ci/infra-abra');
    expect(infra?.script).toMatch(/abra app new traefik \S+ --server default --domain traefik\.ci\.example\.org/);
    expect(infra?.script).toMatch(/abra app new backup-bot-two \S+ --server default --domain backups\.ci\.example\.org/);
    expect(infra?.script).toContain('LETS_ENCRYPT_EMAIL=ops@example.org');
    expect(infra?.script).toContain('LETS_ENCRYPT_DNS_CHALLENGE_PROVIDER=gandiv5');
    expect(infra?.script).toContain('WILDCARDS_ENABLED=1');
  });

  it('inserts the DNS provider key into the traefik app from a systemd credential, before the deploy, a new version when it changes', () => {
    const infra = full.config.systemd.services['cc-ci-infra'];
    expect(infra?.serviceConfig.LoadCredential).toEqual(['dns-gandiv5_personal_access_token:/root/secrets/gandi-pat']);
    const script = infra?.script ?? '';
    expect(script).toContain('cred="$CREDENTIALS_DIRECTORY/dns-gandiv5_personal_access_token"');
    // Read from the credential file where abra can (--file); the value never in the script.
    expect(script).toContain('abra app secret insert traefik.ci.example.org gandiv5_personal_access_token "v$ver" "$cred" --file');
    expect(script).not.toContain('/root/secrets/gandi-pat');
    // An existing secret at the version due is kept; a changed value bumps the version the deploy uses.
    expect(script).toContain('docker secret inspect "traefik_ci_example_org_gandiv5_personal_access_token_v$ver"');
    expect(script).toContain('echo "SECRET_GANDIV5_PERSONAL_ACCESS_TOKEN_VERSION=v$ver"');
    const insert = script.indexOf('abra app secret insert');
    expect(insert).toBeGreaterThan(script.indexOf('abra app new traefik'));
    expect(insert).toBeLessThan(script.indexOf('abra app deploy traefik.ci.example.org'));
    expect(full.config.assertions.every((a) => a.assertion)).toBe(true);
  });

  it('refuses a DNS credential file in the Nix store, and a secret name that is not a plain name', async () => {
    const bad = await evalModule(
      'infrastructure = { enable = true; acmeEmail = "a@example.org"; traefik.dnsProvider = "x"; traefik.dnsCredentialFiles = { key = "/nix/store/abc-key"; "a b" = "/root/k"; }; };',
    );
    const failed = bad.config.assertions.filter((a) => !a.assertion).map((a) => a.message);
    expect(failed).toEqual([expect.stringMatching(/must not be in the Nix store/), expect.stringMatching(/dnsCredentialFiles: a secret name/)]);
  });

  it('routes https://<http.publicUrl> to serve: a stack on the proxy network with the Traefik labels, forwarding to the host port', () => {
    const compose = full.routeCompose;
    expect(compose?.networks).toEqual({ proxy: { external: true } });
    const serve = compose?.services.serve;
    expect(serve?.networks).toEqual(['proxy']);
    expect(serve?.image).toMatch(/^alpine\/socat:/);
    expect(serve?.deploy.labels).toEqual(
      expect.arrayContaining([
        'traefik.enable=true',
        'traefik.http.routers.cc-ci-serve.rule=Host(`ci.example.org`)',
        'traefik.http.routers.cc-ci-serve.entrypoints=web-secure',
        'traefik.http.routers.cc-ci-serve.tls.certresolver=production',
        'traefik.http.services.cc-ci-serve.loadbalancer.server.port=8080',
      ]),
    );
    // The host is the task's default gateway (docker_gwbridge); `$$` is docker's escaped `$`.
    expect(serve?.entrypoint.join(' ')).toContain("TCP-LISTEN:8080,fork,reuseaddr TCP:$$(ip route | awk '/^default/ {print $$3; exit}'):8080");
    const infra = full.config.systemd.services['cc-ci-infra']?.script ?? '';
    expect(infra).toMatch(/docker stack deploy -c \/nix\/store\/\S+-cc-ci-route\.yml cc-ci-route/);
    expect(infra.indexOf('docker stack deploy')).toBeGreaterThan(infra.indexOf('abra app deploy traefik.'));
    // serve listens where the bridge reaches it; the port is open on docker_gwbridge alone.
    expect(full.settings.http).toMatchObject({ host: '0.0.0.0' });
    expect(full.config.networking?.firewall.interfaces).toEqual({ docker_gwbridge: { allowedTCPPorts: [8080] } });
    expect(full.config.warnings).toEqual([expect.stringMatching(/serveRoute\.image is not pinned by digest/)]);
  });

  it('the route is off without a publicUrl or when switched off, and refuses serve on loopback', async () => {
    const infra = 'enable = true; acmeEmail = "a@example.org"; traefik.dnsProvider = "x";';
    const none = await evalModule(`infrastructure = { ${infra} };`);
    expect(none.routeCompose).toBeNull();
    expect(none.config.networking).toBeUndefined();
    expect(none.settings).not.toHaveProperty('http');
    const off = await evalModule(`settings.http.publicUrl = "https://ci.example.org"; infrastructure = { ${infra} serveRoute.enable = false; };`);
    expect(off.routeCompose).toBeNull();
    expect(off.config.systemd.services['cc-ci-infra']?.script).toContain('docker stack rm cc-ci-route');
    const loop = await evalModule(`settings.http = { publicUrl = "https://ci.example.org"; host = "127.0.0.1"; }; infrastructure = { ${infra} };`);
    expect(loop.config.assertions.filter((a) => !a.assertion).map((a) => a.message)).toEqual([expect.stringMatching(/http\.host on loopback/)]);
  });

  it('leaves out what is switched off: no timer without warmReconcile, no infrastructure unless enabled, no credentials without secrets', async () => {
    const min = await evalModule('warmReconcile.enable = false;');
    expect(Object.keys(min.config.systemd.services).sort()).toEqual(['cc-ci', 'cc-ci-swarm']);
    expect(min.config.systemd.timers).toBeUndefined();
    expect(min.config.systemd.services['cc-ci']?.serviceConfig.LoadCredential).toEqual([]);
    expect(min.settings).not.toHaveProperty('forge');
  });
});

describe('the example host and the docs, against the module', () => {
  it('nix/example.nix evaluates, and its generated config passes `cc-ci config check`', async () => {
    const r = await execa(
      'nix-instantiate',
      [
        '--eval',
        '--strict',
        '--json',
        '--arg',
        'cc',
        `(import ${join(ROOT, 'nix', 'example.nix')} { }).services.cc-ci // { package = ${PACKAGE}; }`,
        join(ROOT, 'test', 'support', 'nix', 'eval-module.nix'),
      ],
      { reject: false },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const produced = JSON.parse(r.stdout) as Produced;
    expect(Object.keys(produced.config.systemd.services)).toContain('cc-ci-infra');
    const dir = mkdtempSync(join(tmpdir(), 'ccci-nix-example-'));
    try {
      const file = join(dir, 'cc-ci.yaml');
      writeFileSync(file, JSON.stringify(produced.settings));
      const check = await execa('node', [CLI, 'config', 'check', file], { reject: false });
      expect(check.exitCode, check.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every services.cc-ci option and cc-ci unit the docs name exists', async () => {
    // The option paths the module declares, from its options tree.
    const expr = `let s = import ${join(ROOT, 'test', 'support', 'nix', 'stub-nixpkgs.nix')};
      m = import ${join(ROOT, 'nix', 'module.nix')} { config = { services.cc-ci = { settings = { }; stateDir = "/s"; }; virtualisation.docker.package = null; }; inherit (s) lib pkgs; };
      walk = p: o: if (o._type or null) == "option" then [ p ] else builtins.concatLists (map (n: walk (if p == "" then n else "\${p}.\${n}") o.\${n}) (builtins.attrNames o));
      in walk "" m.options.services.cc-ci`;
    const r = await execa('nix-instantiate', ['--eval', '--strict', '--json', '--expr', expr], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const options = new Set(JSON.parse(r.stdout) as string[]);
    const produced = await evalModule('infrastructure = { enable = true; acmeEmail = "a@example.org"; traefik.dnsProvider = "x"; };');
    const units = new Set([
      ...Object.keys(produced.config.systemd.services).map((u) => `${u}.service`),
      ...Object.keys(produced.config.systemd.timers).map((u) => `${u}.timer`),
    ]);
    const docs = ['install.md', 'runbook.md', 'secrets.md', 'security.md'].map((f) => readFileSync(join(ROOT, 'docs', f), 'utf8')).join('\n');
    const named = [...docs.matchAll(/services\.cc-ci\.([A-Za-z][\w.]*[A-Za-z])/g)].map((m) => m[1] ?? '');
    // install.md's option list names them bare, `.x` continuing the infrastructure options.
    const list = /The options: ([\s\S]*?)\n\n/.exec(readFileSync(join(ROOT, 'docs', 'install.md'), 'utf8'))?.[1] ?? '';
    for (const m of list.matchAll(/`([.\w]+)`/g)) {
      const o = m[1] ?? '';
      if (/^[a-z][\w.]*$/i.test(o) && !o.includes('/')) named.push(o.startsWith('.') ? `infrastructure${o}` : o);
    }
    expect(named.length).toBeGreaterThan(15);
    for (const o of named) if (!/\.(nix|md)$/.test(o)) expect(options, `docs name services.cc-ci.${o}`).toContain(o);
    const unitNames = [...docs.matchAll(/\b(cc-ci(?:-[a-z]+(?:-[a-z]+)*)?)\.(service|timer)\b/g)].map((m) => `${m[1]}.${m[2]}`);
    for (const u of unitNames) expect(units, `docs name ${u}`).toContain(u);
    for (const m of docs.matchAll(/systemctl (?:status|restart|start|stop|list-timers) ([\w\s.-]+)/g)) {
      for (const u of (m[1] ?? '').split(/\s+/).filter((x) => x.startsWith('cc-ci'))) {
        expect(
          [...units].some((x) => x === u || x.startsWith(`${u}.`)),
          `docs name ${u}`,
        ).toBe(true);
      }
    }
  });
});
