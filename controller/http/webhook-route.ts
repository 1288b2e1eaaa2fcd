import type { FastifyInstance } from 'fastify';
import { eventFromWebhook } from '../forge/intake.js';
import type { WebhookIntake } from '../forge/service.js';
import { verifySignature } from '../forge/signature.js';
import { classifyRawDelivery } from '../forge/webhook.js';
import { LogBudget } from '../model/log-budget.js';
import type { Logger } from '../model/log.js';
import type { Metrics } from './metrics.js';

/**
 * POST /hooks/forge: the Gitea/Forgejo webhook. The body is taken as raw bytes (the forge signs
 * its own Go-marshalled JSON, which re-serialising cannot reproduce) and the HMAC is checked before
 * anything is parsed; a bad or missing signature is a 401 and nothing is written. The forge gives
 * up after 5 s, so the handler only records — in one transaction, before it answers 202 — the
 * delivery id and the comment's row (no decision yet); the intake's forge calls (bot login,
 * permission) happen after the answer. A crash in between leaves the row for the intake's retry
 * loop to decide, and a redelivery is still a duplicate without being lost.
 */

/** Gitea's issue_comment payload carries the PR and repository objects in full: tens of KB.
 *  A larger body is refused (413) before it is read further, signed or not. */
export const HOOK_BODY_LIMIT = 1024 * 1024;
/** Unsigned deliveries are anyone's to send: at most this many log lines a minute about them. */
const REJECTION_LINES_PER_MINUTE = 10;

export function registerForgeHook(app: FastifyInstance, o: { webhook: WebhookIntake | null; logger: Logger; metrics: Metrics; answerWithinMs: number }): void {
  const log = o.logger.child({ component: 'webhook' });
  const rejections = new LogBudget(REJECTION_LINES_PER_MINUTE, 60_000);
  void app.register(async (scope) => {
    // In this scope only: every content type arrives as the exact bytes received.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: HOOK_BODY_LIMIT }, (_request, body, done) => done(null, body));

    // A body that trickles in, or a store that is slow to write, gets a 503 before the forge gives
    // up on its own: the delivery shows as failed there, and nothing half-written here is lost
    // (the transaction either committed or not).
    scope.post('/hooks/forge', { handlerTimeout: o.answerWithinMs }, async (request, reply) => {
      const webhook = o.webhook;
      if (!webhook) {
        o.metrics.delivery('disabled');
        return reply.code(404).send({ error: 'webhook intake is off here (no forge configured, or forge.mode is poll)' });
      }
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const check = verifySignature(webhook.secret, raw, request.headers);
      if (!check.valid) {
        o.metrics.delivery('bad-signature');
        const budget = rejections.take();
        if (budget.log) {
          const more = budget.dropped ? ` (and ${budget.dropped} more since the last line, not logged)` : '';
          log.warn(
            { reason: check.reason, header: check.header ?? null, remote: request.ip, dropped: budget.dropped },
            `webhook rejected: bad or missing signature${more}`,
          );
        }
        return reply.code(401).send({ error: 'invalid or missing signature' });
      }
      const delivery = classifyRawDelivery(request.headers, raw);
      if (delivery.kind === 'ignored') {
        o.metrics.delivery(`ignored-${delivery.reason}`);
        log.info({ delivery: delivery.delivery, reason: delivery.reason, detail: delivery.detail }, 'webhook ignored');
        return reply.code(200).send({ ignored: delivery.reason });
      }
      const event = eventFromWebhook(delivery);
      if (!webhook.intake.accept(event)) {
        o.metrics.delivery('duplicate');
        log.info({ delivery: delivery.delivery, comment: delivery.commentId }, 'webhook ignored: delivery seen before');
        return reply.code(200).send({ duplicate: delivery.delivery });
      }
      o.metrics.delivery('accepted');
      setImmediate(() => {
        webhook.intake.handle(event).catch((e: unknown) => log.error({ error: String(e) }, 'intake failed'));
      });
      return reply.code(202).send({ accepted: true, comment: delivery.commentId });
    });
  });
}
