// Sends a webhook the way Gitea v1.26.3 or Forgejo v15.0.3 does (contract README §2, §3): a POST
// of the payload's json.MarshalIndent bytes with content type application/json, the delivery,
// event and signature headers of the chosen flavour, and the forge's 5 s delivery timeout.
import { randomUUID } from 'node:crypto';
import { sign } from '../../../controller/forge/signature.js';
import { goMarshalIndentBytes } from './go-json.js';
import type { ForgeFlavour } from './payloads.js';

/** What the forge delivers for an event type (X-*-Event is the coarser group of X-*-Event-Type). */
const EVENT_OF_TYPE: Record<string, string> = {
  issue_comment: 'issue_comment',
  pull_request_comment: 'issue_comment',
  pull_request_review_comment: 'pull_request_comment',
};

/** `[webhook] DELIVER_TIMEOUT`, 5 s by default. */
const FORGE_DELIVER_TIMEOUT_MS = 5_000;

export interface DeliveryOptions {
  secret: string;
  /** X-*-Event-Type; default `pull_request_comment`. */
  eventType?: string;
  /** X-*-Event; default derived from eventType as the forge does. */
  event?: string;
  /** X-*-Delivery; default a fresh UUID, like a new hook task. */
  deliveryId?: string;
  flavour?: ForgeFlavour;
  /** X-Gitea-Hook-Installation-Target-Type (Gitea only); default `repository`. */
  targetType?: 'repository' | 'organization' | 'user' | 'system' | 'default';
  timeoutMs?: number;
  /** Added last, overriding the forge's headers: for tampering in tests. */
  extraHeaders?: Record<string, string>;
}

export interface DeliveryResult {
  status: number;
  body: string;
  /** Exactly the bytes sent and signed. */
  sentBody: Buffer;
  sentHeaders: Record<string, string>;
}

/** The bytes the forge would send: objects are marshalled Go-style, bytes and strings go as given. */
export function webhookBytes(payload: object | Buffer | string): Buffer {
  if (Buffer.isBuffer(payload)) return payload;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  return goMarshalIndentBytes(payload);
}

export function webhookHeaders(body: Buffer, options: DeliveryOptions): Record<string, string> {
  const flavour = options.flavour ?? 'gitea';
  const eventType = options.eventType ?? 'pull_request_comment';
  const event = options.event ?? EVENT_OF_TYPE[eventType] ?? eventType;
  const delivery = options.deliveryId ?? randomUUID();
  const names = flavour === 'forgejo' ? ['Forgejo', 'Gitea', 'Gogs', 'GitHub'] : ['Gitea', 'Gogs', 'GitHub'];

  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  for (const name of names) headers[`X-${name}-Delivery`] = delivery;
  for (const name of names) headers[`X-${name}-Event`] = event;
  for (const name of names) headers[`X-${name}-Event-Type`] = eventType;
  Object.assign(headers, sign(options.secret, body, flavour));
  if (flavour === 'gitea') {
    const target = options.targetType ?? 'repository';
    headers['X-Gitea-Hook-Installation-Target-Type'] = target;
    headers['X-GitHub-Hook-Installation-Target-Type'] = target;
  }
  return { ...headers, ...options.extraHeaders };
}

export async function deliverWebhook(url: string, payload: object | Buffer | string, options: DeliveryOptions): Promise<DeliveryResult> {
  const sentBody = webhookBytes(payload);
  const sentHeaders = webhookHeaders(sentBody, options);
  const response = await fetch(url, {
    method: 'POST',
    headers: sentHeaders,
    body: sentBody,
    signal: AbortSignal.timeout(options.timeoutMs ?? FORGE_DELIVER_TIMEOUT_MS),
  });
  return { status: response.status, body: await response.text(), sentBody, sentHeaders };
}
