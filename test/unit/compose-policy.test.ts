import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Docker } from '../../controller/clients/docker.js';
import { composeModel } from '../../controller/model/compose-model.js';
import { describeItem, hostAccessOf, judge, refusalMessage } from '../../controller/model/compose-policy.js';
import { configSchema } from '../../controller/model/config.js';

/**
 * The compose policy on what docker's own loader makes of a hostile recipe: every file below goes
 * through the real `docker stack config` (merge, interpolation, long form), as before a deploy.
 */

const docker = new Docker({ timeoutMs: 30_000 });
let dir: string;

async function accessOf(files: Record<string, string>, env: Record<string, string> = {}) {
  const recipe = mkdtempSync(join(dir, 'recipe-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(recipe, name, '..'), { recursive: true });
    writeFileSync(join(recipe, name), text);
  }
  const composeFiles = Object.keys(files).filter((f) => f.endsWith('.yml'));
  const merged = await docker.stackConfig(composeFiles, { STACK_NAME: 'x', ...env }, recipe);
  return { recipe, items: hostAccessOf(composeModel(merged, []).merged, recipe) };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-policy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('what a compose configuration would hand of the host to its stack', () => {
  it('names every item of a hostile service, by service and key', async () => {
    const { items } = await accessOf({
      'compose.yml': `version: "3.8"
services:
  app:
    image: busybox
    privileged: true
    cap_add: [ALL]
    devices: ["/dev/fuse:/dev/fuse"]
    security_opt: ["apparmor:unconfined"]
    sysctls: { net.core.somaxconn: 1024 }
    pid: host
    ipc: host
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - /:/host
      - data:/data
      - type: tmpfs
        target: /t
    networks: [hostnet]
  web:
    image: busybox
    network_mode: host
volumes:
  data:
networks:
  hostnet:
    external: true
    name: host
`,
    });
    expect(items.map(describeItem).sort()).toEqual(
      [
        'app: cap_add ALL',
        'app: devices /dev/fuse:/dev/fuse',
        'app: ipc host',
        'app: networks hostnet',
        'app: pid host',
        'app: privileged',
        'app: security_opt apparmor:unconfined',
        'app: sysctls net.core.somaxconn',
        'app: volumes /',
        'app: volumes /var/run/docker.sock',
        'web: network_mode host',
      ].sort(),
    );
    expect(items.find((i) => i.value === '/var/run/docker.sock')?.why).toMatch(/Docker socket/);
  });

  it('sees through interpolation, an overlay file, a bind in disguise and host files read by the client', async () => {
    const { items } = await accessOf(
      {
        'compose.yml': `version: "3.8"
services:
  app:
    image: busybox
    env_file: [/etc/hostname, own.env]
    configs: [{ source: own, target: /own }, { source: hostcfg, target: /h }]
    secrets: [leak]
    volumes: [sneaky:/x]
configs:
  own: { file: ./own.conf }
  hostcfg: { file: /etc/hostname }
secrets:
  leak: { file: ./link-out }
volumes:
  sneaky:
    driver_opts: { type: none, o: bind, device: / }
`,
        'compose.ccci.yml': `version: "3.8"
services:
  app:
    volumes: ["\${SOCK}:/s"]
`,
        'own.conf': 'x\n',
        'own.env': 'A=1\n',
      },
      { SOCK: '/run/docker.sock' },
    );
    expect(items.map(describeItem).sort()).toEqual(
      [
        'app: configs /etc/hostname',
        'app: env_file /etc/hostname',
        'app: secrets ' + items.find((i) => i.key === 'secrets')?.value,
        'app: volumes /',
        'app: volumes /run/docker.sock',
      ].sort(),
    );
  });

  it('takes a config file that is a link out of the recipe for a host file', async () => {
    const recipe = mkdtempSync(join(dir, 'linked-'));
    symlinkSync('/etc/hostname', join(recipe, 'cfg'));
    writeFileSync(join(recipe, 'compose.yml'), 'version: "3.8"\nservices:\n  app:\n    image: busybox\n    configs: [c]\nconfigs:\n  c: { file: ./cfg }\n');
    const merged = await docker.stackConfig(['compose.yml'], { STACK_NAME: 'x' }, recipe);
    expect(hostAccessOf(composeModel(merged, []).merged, recipe).map(describeItem)).toEqual([`app: configs ${join(recipe, 'cfg')}`]);
  });

  it('finds nothing in a plain recipe: named volumes, configs in the recipe, ports, an internal network', async () => {
    const { items } = await accessOf({
      'compose.yml': `version: "3.8"
services:
  app:
    image: busybox
    volumes: [data:/data]
    configs: [{ source: c, target: /c }]
    networks: [internal, proxy]
    ports: [{ target: 80, published: 8080, mode: host }]
volumes: { data: {} }
configs:
  c: { file: ./conf/nginx.conf }
networks:
  internal: {}
  proxy: { external: true }
`,
      'conf/nginx.conf': 'x\n',
    });
    expect(items).toEqual([]);
  });
});

describe("the operator's allowances", () => {
  const items = [
    { service: 'app', key: 'volumes' as const, value: '/var/run/docker.sock', why: 'socket' },
    { service: 'app', key: 'volumes' as const, value: '/', why: 'root' },
    { service: 'app', key: 'privileged' as const, value: '', why: 'privileged' },
  ];

  it('let exactly the named item through, and say by whom', () => {
    const v = judge(items, [{ service: 'app', key: 'volumes', value: '/var/run/docker.sock', by: 'ops', reason: 'traefik reads services' }]);
    expect(v.allowed).toEqual([{ item: items[0], by: 'ops', reason: 'traefik reads services' }]);
    expect(v.refused.map(describeItem)).toEqual(['app: volumes /', 'app: privileged']);
    expect(judge(items, [{ service: 'web', key: 'volumes', value: '/var/run/docker.sock', by: 'ops' }]).refused).toHaveLength(3);
    expect(judge(items, [{ service: 'app', key: 'privileged', by: 'ops' }]).refused).toHaveLength(2);
  });

  it('are read from the config, keyed by recipe; an unknown key is refused', () => {
    const c = configSchema.parse({ composePolicy: { allow: { traefik: [{ service: 'app', key: 'volumes', value: '/var/run/docker.sock', by: 'ops' }] } } });
    expect(c.composePolicy.allow.traefik?.[0]?.by).toBe('ops');
    expect(configSchema.safeParse({ composePolicy: { allow: { traefik: [{ service: 'app', key: 'root', by: 'ops' }] } } }).success).toBe(false);
    expect(configSchema.safeParse({ composePolicy: { allow: { traefik: [{ service: 'app', key: 'volumes', value: '/x' }] } } }).success).toBe(false);
  });

  it('a refusal names each service and key and who may allow it', () => {
    const m = refusalMessage(items);
    expect(m).toContain('app: volumes /var/run/docker.sock (socket)');
    expect(m).toContain('app: privileged (privileged)');
    expect(m).toMatch(/composePolicy\.allow/);
  });
});
