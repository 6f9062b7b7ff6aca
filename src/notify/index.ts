/**
 * Email notifications: who hears of a change (recipients.ts), what they want (preferences.ts), the mail
 * (compose.ts), where it goes (transport.ts), the jobs that do it (jobs.ts), and the worker that runs
 * them — in `serve` (WORKER_IN_PROCESS) or in `bugzot worker` processes, any number at once.
 */
import type { Config } from '../config.ts';
import { type JobHandler, Worker, type WorkerOptions } from '../jobs/index.ts';
import type { Db } from '../platform/db.ts';
import { notifyHandlers } from './jobs.ts';
import { type MailTransport, transportFor } from './transport.ts';

export { adminListJobs, adminRetryJob } from './admin.ts';
export { composeMail, oneLine } from './compose.ts';
export { MAIL_JOB, notifyHandlers } from './jobs.ts';
export { EVENTS, ROLES } from './preferences.ts';
export { notifyRoutes } from './routes.ts';
export { createTransport, type MailTransport, transportFor } from './transport.ts';

/** A worker running the jobs of every kind this process knows, and its mail transport. */
export interface BackgroundWorker {
  worker: Worker;
  transport: MailTransport;
  /** Stops claiming, lets jobs in hand finish, closes the SMTP pool. */
  stop(): Promise<void>;
}

/**
 * Builds (not starts) the worker for this configuration. `extraHandlers`: job kinds of other modules
 * (webhooks) to run on the same queue.
 */
export function createWorker(
  config: Config,
  db: Db,
  log: WorkerOptions['log'],
  extraHandlers: readonly JobHandler[] = [],
): BackgroundWorker {
  const transport = transportFor(config, log);
  const giveUpAfterMs = config.mail.giveUpHours * 3600_000;
  const handlers = [
    ...notifyHandlers({
      db,
      transport,
      baseUrl: config.baseUrl,
      from: config.mail.from,
      batchSeconds: config.mail.batchSeconds,
      giveUpAfterMs,
      log,
    }),
    ...extraHandlers,
  ];
  const worker = new Worker(db, handlers, {
    concurrency: config.worker.concurrency,
    pollMs: config.worker.pollMs,
    leaseMs: config.worker.leaseSeconds * 1000,
    retryBaseMs: config.worker.retryBaseMs,
    retryCapMs: 3600_000,
    giveUpAfterMs,
    log,
  });
  return {
    worker,
    transport,
    async stop() {
      await worker.stop();
      transport.close();
    },
  };
}
