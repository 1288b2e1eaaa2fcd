import { stackName } from '../controller/model/naming.js';
import type { RecipeFacts } from '../controller/clients/recipe-facts.js';
import { upgradeBase } from './tiers/upgrade.js';
import { TIER_NAMES } from '../state/types.js';
import { PREDICTED_DOMAIN, predictedFacts } from './app-env.js';
import { type RunContext } from './context.js';
import { TestFailure } from './errors.js';

/**
 * What cc-ci understood of the recipe before deploying anything, said in the run's log and kept
 * with the run for `cc-ci describe run` and the JSON summary: the compose files it will deploy,
 * the web service and port, the backup service and volumes, the secrets abra generates and how,
 * and the release the upgrade starts from — each with why. The facts are read from `.env.sample`
 * with the run's edits, through docker's own compose loader (recipe-facts.ts); the app's real
 * domain is not leased yet, so the log says `${DOMAIN}` where the rules name it.
 */

export interface Understanding {
  composeFiles: string[];
  composeVersion: string | null;
  services: { name: string; replicas: number | null; mode: string }[];
  web: { service: string; port: number; why: string } | { problem: string };
  backup: { capable: boolean; services: string[]; testData: string | null; why: string };
  secrets: { key: string; versionVar: string | null; version: string | null; modifiers: string; generate: boolean }[];
  upgradeBase: { tag: string; commit: string; why: string } | { none: string };
  /** Set when the compose files could not be read: the install tier fails with the same reason. */
  problem?: string;
}

const unpredicted = (s: string) => s.split(PREDICTED_DOMAIN).join('${DOMAIN}').split(stackName(PREDICTED_DOMAIN)).join('${STACK_NAME}');

function fromFacts(f: RecipeFacts): Omit<Understanding, 'upgradeBase'> {
  const first = f.backup.candidates[0];
  return {
    composeFiles: f.files,
    composeVersion: f.version,
    services: f.services.map((s) => ({ name: s.name, replicas: s.replicas, mode: s.mode })),
    web: f.web.service === null ? { problem: f.web.problem } : { service: f.web.service, port: f.web.port, why: unpredicted(f.web.why) },
    backup: {
      capable: f.backup.capable,
      services: f.backup.labelled,
      testData: first ? `volume ${first.volume} of ${first.service}${first.paths ? ` within ${first.paths.join(', ')}` : ''}` : null,
      why: f.backup.why,
    },
    secrets: f.secrets.map((s) => ({ key: s.key, versionVar: s.versionVar, version: s.version, modifiers: s.modifiers, generate: s.generate })),
  };
}

function secretText(s: Understanding['secrets'][number]): string {
  const how = !s.generate
    ? 'not generated: generate=false, for the install-steps hook to insert'
    : /length=/.test(s.modifiers)
      ? s.modifiers
      : `${s.modifiers ? `${s.modifiers}, ` : ''}a passphrase`;
  return `${s.key} ${s.version ?? 'v1'} (${how})`;
}

export function describeUnderstanding(u: Understanding): string[] {
  const lines: string[] = [];
  if (u.problem) return [`compose: cannot be read: ${u.problem}`];
  lines.push(`compose files: ${u.composeFiles.join(':')} (${u.composeVersion ? `version ${u.composeVersion}` : 'no version key'})`);
  lines.push(
    `services: ${u.services.map((s) => `${s.name}${s.mode === 'global' ? ' (global)' : s.replicas === 0 ? ' (scaled to 0)' : s.replicas && s.replicas > 1 ? ` (${s.replicas} replicas)` : ''}`).join(', ')}`,
  );
  lines.push('service' in u.web ? `web: ${u.web.service} on port ${u.web.port}: ${u.web.why}` : `web: ${u.web.problem}`);
  lines.push(`backup: ${u.backup.why}`);
  lines.push(`secrets: ${u.secrets.length ? u.secrets.map(secretText).join('; ') : 'none that abra generates'}`);
  lines.push(
    'tag' in u.upgradeBase
      ? `upgrade base: ${u.upgradeBase.tag} (${u.upgradeBase.commit.slice(0, 8)}) ${u.upgradeBase.why}`
      : `upgrade base: none: ${u.upgradeBase.none}`,
  );
  return lines;
}

/** Reads, logs and records what cc-ci understood. A recipe whose compose files cannot be read
 *  is recorded as such; the install tier then fails with the reason, within seconds. */
export async function understandRecipe(ctx: RunContext): Promise<Understanding> {
  let base: Understanding['upgradeBase'];
  const tiers = ctx.spec.spec.tiers ?? TIER_NAMES;
  if (!tiers.includes('upgrade')) base = { none: 'the run does not ask for the upgrade tier' };
  else {
    const b = await upgradeBase(ctx);
    base = b ? { tag: b.tag, commit: b.commit, why: b.why } : { none: `no release tag below ${ctx.spec.spec.source.ref}` };
  }
  let u: Understanding;
  try {
    u = { ...fromFacts(await predictedFacts(ctx)), upgradeBase: base };
  } catch (e) {
    if (!(e instanceof TestFailure)) throw e;
    u = {
      composeFiles: [],
      composeVersion: null,
      services: [],
      web: { problem: 'not known' },
      backup: { capable: false, services: [], testData: null, why: 'not known' },
      secrets: [],
      upgradeBase: base,
      problem: e.message,
    };
  }
  for (const line of describeUnderstanding(u)) ctx.log(u.problem ? 'warn' : 'info', `understood: ${line}`);
  ctx.store.updateRun(ctx.name, { understanding: u });
  return u;
}
