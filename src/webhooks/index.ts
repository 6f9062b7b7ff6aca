/**
 * Webhooks: subscriptions (service.ts, routes.ts), the SSRF guard (address.ts), signatures (signing.ts),
 * the delivery jobs (jobs.ts, payload.ts, send.ts) and the notice to an owner whose webhook was disabled
 * (notice.ts). See docs/integration.md for the payload schema and verification.
 */
export { type AddressPolicy, addressPolicy, checkUrl } from './address.ts';
export { eventTypes, type WebhookDeps, webhookHandlers } from './jobs.ts';
export { composeDisabledNotice, DISABLED_NOTICE_JOB } from './notice.ts';
export { buildPayload } from './payload.ts';
export { webhooksRoutes } from './routes.ts';
export { DELIVER_JOB, WEBHOOK_EVENTS } from './service.ts';
export { signature, verifySignature } from './signing.ts';

import type { Config } from '../config.ts';
import type { JobHandler } from '../jobs/index.ts';
import type { Db } from '../platform/db.ts';
import { webhookHandlers } from './jobs.ts';
import { disabledNoticeHandler } from './notice.ts';

/** The webhook job handlers for this configuration (give them to both `createWorker` calls). */
export function webhookJobs(
  config: Config,
  db: Db,
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void },
): JobHandler[] {
  const giveUpAfterMs = 24 * 3600_000;
  return [
    ...webhookHandlers({
      db,
      allowedHosts: config.webhooks.allowedHosts,
      disableAfterFailures: config.webhooks.disableAfterFailures,
      retryBaseMs: config.worker.retryBaseMs,
      giveUpAfterMs,
      log,
    }),
    // A notice is worth retrying as long as a mail is (MAIL_GIVE_UP_HOURS).
    disabledNoticeHandler(config, db, log, config.mail.giveUpHours * 3600_000),
  ];
}
