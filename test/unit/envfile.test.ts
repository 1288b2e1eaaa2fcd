import { describe, expect, it } from 'vitest';
import { EnvFile } from '../../controller/model/envfile.js';

const sample = `TYPE=bonfire
LETS_ENCRYPT_ENV=production
DOMAIN=bonfire.example.com
#EXTRA_DOMAINS=', \`www.bonfire.example.com\`'
COMPOSE_FILE="compose.yml"
COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"
SECRET_POSTGRES_PASSWORD_VERSION=v1
SECRET_SECRET_KEY_BASE_VERSION=v1 # length=128
`;

describe('app .env editing', () => {
  it('keeps comments, order and generation modifiers while setting values', () => {
    const env = new EnvFile('/dev/null', sample);
    env.set('LETS_ENCRYPT_ENV', '');
    env.set('SECRET_SECRET_KEY_BASE_VERSION', 'v2');
    env.set('NEW_KEY', 'a value');
    const text = env.toString();
    expect(text).toContain('LETS_ENCRYPT_ENV=\n');
    expect(text).toContain('SECRET_SECRET_KEY_BASE_VERSION=v2 # length=128\n');
    expect(text).toContain("#EXTRA_DOMAINS=', `www.bonfire.example.com`'\n");
    expect(text.endsWith('NEW_KEY="a value"\n')).toBe(true);
    expect(text.indexOf('TYPE=')).toBeLessThan(text.indexOf('DOMAIN='));
  });

  it('resolves $VAR self-references the way abra does for COMPOSE_FILE', () => {
    const env = new EnvFile('/dev/null', sample);
    expect(env.resolved('COMPOSE_FILE')).toBe('compose.yml:compose.postgres.yml');
    env.appendLine('COMPOSE_FILE="$COMPOSE_FILE:compose.ccci-ingress.yml"');
    expect(env.resolved('COMPOSE_FILE')).toBe('compose.yml:compose.postgres.yml:compose.ccci-ingress.yml');
    expect(env.get('SECRET_SECRET_KEY_BASE_VERSION')).toBe('v1');
    expect(env.get('EXTRA_DOMAINS')).toBeUndefined();
  });
});
