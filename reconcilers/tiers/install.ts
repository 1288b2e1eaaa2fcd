import type { RunContext } from '../context.js';
import { ensureApp } from '../deploy.js';
import type { TierRunner } from './runner.js';

/**
 * install: the ref under test installs on a fresh app — new .env, new secrets, new volumes —
 * converges strictly (every service N/N, updates settled) and answers HTTP.
 */
export const installTier: TierRunner = {
  name: 'install',
  applies: async () => ({ applies: true }),
  async run(ctx: RunContext) {
    const ws = ctx.workspace!;
    const app = await ensureApp(ctx, { purpose: 'install', commit: ws.commit, describe: `head ${ws.commit.slice(0, 8)}` });
    ctx.subject.current = app;
    return {
      reason: `${app.domain}: ${app.services.length} service(s) converged and GET ${ws.settings.healthPath} answered`,
    };
  },
};
