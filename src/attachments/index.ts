/**
 * The attachments module: files and diagnostic bundles on bugs — single-request and resumable (tus)
 * uploads streamed to storage in one pass, downloads with ranges, bundle browsing, the support listing
 * and housekeeping. Other modules import only this file.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import type { Db } from '../platform/db.ts';
import type { Invalidation } from '../platform/invalidation.ts';
import { openStorage, type Storage } from '../storage/index.ts';
import { scheduleHousekeeping } from './housekeeping.ts';
import { attachmentRoutes, attachmentUploadRoutes } from './routes.ts';
import type { AttachmentsContext } from './service.ts';
import { tusRoutes } from './tus.ts';
import { newOwner, retireOwner } from './uploads.ts';

export { runHousekeeping } from './housekeeping.ts';
export { MEMBER_TEXT_CAP, memberText } from './members.ts';
export { presentAttachment, presentMember } from './present.ts';
export { decodeCursor, encodeCursor, listFilter } from './routes.ts';
export {
  type AttachmentFilter,
  type AttachmentRow,
  type AttachmentsContext,
  getAttachment,
  getMember,
  listAttachments,
  listBugAttachments,
  listMembers,
  type MemberRow,
  openContent,
} from './service.ts';
export { attachFile } from './uploads.ts';

/** Builds the context of the attachment commands from the configuration. */
export function createAttachmentsContext(opts: {
  config: Config;
  db: Db;
  bus: Invalidation;
  log: AttachmentsContext['log'];
  storage?: Storage;
}): AttachmentsContext {
  const { config } = opts;
  return {
    db: opts.db,
    bus: opts.bus,
    storage: opts.storage ?? openStorage(config),
    maxBytes: config.attachmentMaxBytes,
    expiryHours: config.uploadExpiryHours,
    allowed: new Set(config.attachmentTypes),
    inspectLimits: {
      maxInflatedBytes: config.bundleInspectMaxBytes,
      maxRatio: config.bundleInspectMaxRatio,
    },
    states: new Map(),
    owner: newOwner(),
    log: opts.log,
  };
}

/** Registers the attachment API (under the /api/v1 prefix of the caller) and the housekeeping timer. */
export async function attachmentsApi(app: FastifyInstance, { ctx }: { ctx: AttachmentsContext }) {
  await app.register(attachmentUploadRoutes, { ctx });
  await app.register(tusRoutes, { ctx });
  await app.register(attachmentRoutes, { ctx });
  // Expired uploads go every 15 minutes (or sooner when uploads expire sooner).
  const stop = scheduleHousekeeping(ctx, Math.min(15 * 60_000, ctx.expiryHours * 3600_000));
  app.addHook('onClose', async () => {
    stop();
    for (const { state } of ctx.states.values()) state.dispose();
    ctx.states.clear();
    retireOwner(ctx.owner);
    await ctx.storage.close();
  });
}
