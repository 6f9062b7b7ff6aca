/**
 * Webhooks: subscriptions (service.ts, routes.ts), the SSRF guard (address.ts), signatures (signing.ts)
 * and the delivery jobs (jobs.ts). See docs/integration.md for the payload schema and verification.
 */
export { type AddressPolicy, addressPolicy, checkUrl } from './address.ts';
export { buildPayload, eventTypes, type WebhookDeps, webhookHandlers } from './jobs.ts';
export { webhooksRoutes } from './routes.ts';
export { DELIVER_JOB, WEBHOOK_EVENTS } from './service.ts';
export { signature, verifySignature } from './signing.ts';

import type { Config } from '../config.ts';
import type { JobHandler } from '../jobs/index.ts';
import type { Db } from '../platform/db.ts';
import { webhookHandlers } from './jobs.ts';

/** The webhook job handlers for this configuration (give them to both `createWorker` calls). */
export function webhookJobs(
  config: Config,
  db: Db,
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void },
): JobHandler[] {
  return webhookHandlers({
    db,
    allowedHosts: config.webhooks.allowedHosts,
    disableAfterFailures: config.webhooks.disableAfterFailures,
    log,
  });
}
