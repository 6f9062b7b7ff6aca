/**
 * Housekeeping: removes uploads that expired before they completed (their rows and their staged bytes)
 * and retries removals that failed earlier (storage down when an attachment was deleted). Safe to run
 * in every process at once: each expired upload is claimed by one of them.
 */
import * as repo from './repository.ts';
import { type AttachmentsContext, newKey } from './service.ts';

/** What one run removed. */
export interface HousekeepingReport {
  expiredUploads: number;
  garbage: number;
}

/** One housekeeping run. */
export async function runHousekeeping(ctx: AttachmentsContext): Promise<HousekeepingReport> {
  const report: HousekeepingReport = { expiredUploads: 0, garbage: 0 };
  const token = newKey();
  for (;;) {
    const expired = await repo.claimExpiredUploads(ctx.db, token, 100);
    for (const upload of expired) {
      ctx.states.get(upload.id)?.state.dispose();
      ctx.states.delete(upload.id);
      try {
        await ctx.storage.discardStaged(upload.storage_key, upload.storage_state);
      } catch (err) {
        ctx.log.warn({ err, key: upload.storage_key }, 'could not remove an expired upload; will retry');
        await repo.addGarbage(ctx.db, upload.storage_key, true, upload.storage_state);
      }
      if (await repo.deleteUpload(ctx.db, upload.id, token)) report.expiredUploads++;
    }
    if (expired.length < 100) break;
  }
  for (const item of await repo.listGarbage(ctx.db, 1000)) {
    try {
      if (item.staged) await ctx.storage.discardStaged(item.storage_key, item.state);
      else await ctx.storage.remove(item.storage_key);
      await repo.dropGarbage(ctx.db, item.storage_key);
      report.garbage++;
    } catch (err) {
      ctx.log.warn({ err, key: item.storage_key }, 'could not remove a storage object; will retry');
    }
  }
  return report;
}

/** Runs housekeeping every `everyMs` until the returned function is called. */
export function scheduleHousekeeping(ctx: AttachmentsContext, everyMs: number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    runHousekeeping(ctx)
      .catch((err) => ctx.log.warn({ err }, 'attachment housekeeping failed'))
      .finally(() => {
        running = false;
      });
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
