/**
 * Attachments: committing a verified file to its bug (with history, an optional comment and the event,
 * in one transaction), reading, listing, downloading and deleting them. Every read goes through the
 * visibility predicate: an attachment of a bug the viewer may not see is the same 404 as a missing one.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { isAdmin, type UserViewer, type Viewer } from '../access/index.ts';
import { recordEvent } from '../events/index.ts';
import type { Db } from '../platform/db.ts';
import { AppError, conflict, forbidden, invalid, notFound } from '../platform/errors.ts';
import type { Invalidation } from '../platform/invalidation.ts';
import { ObjectMissing, type Storage, storageFailure } from '../storage/index.ts';
import type { IngestState } from './ingest.ts';
import type { InspectLimits, Inspection } from './inspect.ts';
import * as repo from './repository.ts';

export type { AttachmentFilter, AttachmentRow, AttachmentSort, MemberRow } from './repository.ts';

/** What the attachment commands work with. */
export interface AttachmentsContext {
  db: Db;
  bus: Invalidation;
  storage: Storage;
  maxBytes: number;
  expiryHours: number;
  allowed: ReadonlySet<string>;
  /** Bounds on inflating bundles (decompression bombs); the defaults when absent. */
  inspectLimits?: InspectLimits;
  /** Per-process cache of running hash/inspection states of uploads, keyed by upload id. */
  states: Map<string, { generation: string; state: IngestState }>;
  /** Identifies this process (and app instance) as a lease owner. */
  owner: string;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** A new random storage key (also used as upload id): 128 bits, hex. */
export const newKey = () => randomBytes(16).toString('hex');

/** Checks an attachment's file name: what people see and what downloads are saved as. */
export function checkFileName(name: string | undefined): string {
  const n = (name ?? '').trim();
  if (!n)
    throw invalid(
      'the file name is missing (put it at the end of the URL or in Upload-Metadata)',
      'filename',
    );
  if (n.length > 255) throw invalid('the file name is longer than 255 characters', 'filename');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused.
  if (/[\u0000-\u001f\u007f/\\]/.test(n) || n === '.' || n === '..')
    throw invalid('the file name must not contain slashes or control characters', 'filename');
  return n;
}

/** Checks a comment sent with an attachment. */
export function checkComment(comment: string | undefined): string | null {
  if (comment === undefined || !comment.trim()) return null;
  if (comment.length > 65535) throw invalid('the comment is longer than 65535 characters', 'comment');
  return comment;
}

/** The file that went into storage, verified, ready to become an attachment. */
export interface VerifiedFile {
  bugId: number;
  fileName: string;
  comment: string | null;
  storageKey: string;
  size: number;
  sha256: string;
  inspection: Inspection;
}

/**
 * Makes a verified, stored file an attachment of its bug: the row, its members, a history row, the
 * optional comment, the event and the cache invalidation, all in one transaction. `upload` names the
 * upload row consumed with it (held under `token`). On failure the stored object is removed.
 */
export async function commitAttachment(
  ctx: AttachmentsContext,
  viewer: UserViewer,
  file: VerifiedFile,
  upload?: { id: string; token: string },
): Promise<number> {
  let id: number;
  try {
    id = await ctx.db.transaction(async (tx) => {
      const bug = await repo.lockVisibleBug(tx, viewer, file.bugId);
      if (!bug) throw notFound('Bug', file.bugId);
      if (upload && !(await repo.deleteUpload(tx, upload.id, upload.token))) {
        throw conflict('Another request took over this upload; ask for its offset (HEAD) and resume.');
      }
      const version = await repo.touchBug(tx, bug.id);
      const commentId = file.comment
        ? await repo.insertComment(tx, {
            bugId: bug.id,
            authorId: viewer.id,
            body: file.comment,
            bugVersion: version,
          })
        : null;
      const { inspection } = file;
      const attachmentId = await repo.insertAttachment(tx, {
        bugId: bug.id,
        uploaderId: viewer.id,
        fileName: file.fileName,
        kind: inspection.kind,
        contentType: inspection.contentType,
        size: file.size,
        sha256: file.sha256,
        storageKey: file.storageKey,
        commentId,
        memberCount: inspection.memberCount,
        membersListed: inspection.kind === 'bundle' ? inspection.members.length : null,
      });
      if (inspection.members.length) await repo.insertMembers(tx, attachmentId, inspection.members);
      const change = { field: 'attachment', old: null, new: `#${attachmentId} ${file.fileName}` };
      await repo.insertChange(tx, bug.id, viewer.id, version, change);
      await recordEvent(tx, {
        kind: 'attachment.created',
        bugId: bug.id,
        actorId: viewer.id,
        attachmentId,
        changes: [change],
        commentId: commentId ?? undefined,
      });
      await ctx.bus.publish(tx, `bug:${bug.id}`);
      return attachmentId;
    });
  } catch (err) {
    await removeObject(ctx, file.storageKey);
    throw err;
  }
  await ctx.bus.apply(`bug:${file.bugId}`);
  return id;
}

/** Removes a final object; a failure is remembered for housekeeping to retry. */
export async function removeObject(ctx: AttachmentsContext, key: string): Promise<void> {
  try {
    await ctx.storage.remove(key);
  } catch (err) {
    ctx.log.warn({ err, key }, 'could not remove an attachment object; housekeeping will retry');
    await repo.addGarbage(ctx.db, key, false, {}).catch(() => {});
  }
}

/** One attachment the viewer may see; 404 otherwise. */
export async function getAttachment(
  ctx: AttachmentsContext,
  viewer: Viewer,
  id: number,
): Promise<repo.AttachmentRow> {
  const row = await repo.findAttachment(ctx.db, viewer, id);
  if (!row) throw notFound('Attachment', id);
  return row;
}

/** Attachments of one bug the viewer may see, newest first; 404 when the bug is not visible. */
export async function listBugAttachments(
  ctx: AttachmentsContext,
  viewer: Viewer,
  bugId: number,
): Promise<repo.AttachmentRow[]> {
  if (!(await repo.bugVisible(ctx.db, viewer, bugId))) throw notFound('Bug', bugId);
  return repo.listAttachments(ctx.db, viewer, { bugId }, { sort: 'newest', limit: 1000 });
}

/** The support listing: attachments of every bug the viewer may see, filtered and sorted, one page. */
export function listAttachments(
  ctx: AttachmentsContext,
  viewer: Viewer,
  filter: repo.AttachmentFilter,
  page: { sort: repo.AttachmentSort; limit: number; after?: repo.AttachmentCursor | undefined },
): Promise<repo.AttachmentRow[]> {
  return repo.listAttachments(ctx.db, viewer, filter, page);
}

/** Deletes an attachment (admins only) and its bytes; the bug's history records it. */
export async function deleteAttachment(
  ctx: AttachmentsContext,
  viewer: UserViewer,
  id: number,
): Promise<void> {
  const row = await getAttachment(ctx, viewer, id);
  if (!isAdmin(viewer)) throw forbidden('Only administrators may delete attachments.');
  await ctx.db.transaction(async (tx) => {
    const bug = await repo.lockVisibleBug(tx, viewer, row.bug_id);
    if (!bug) throw notFound('Attachment', id);
    await repo.deleteAttachment(tx, id);
    const version = await repo.touchBug(tx, bug.id);
    await repo.insertChange(tx, bug.id, viewer.id, version, {
      field: 'attachment',
      old: `#${id} ${row.file_name}`,
      new: null,
    });
    await ctx.bus.publish(tx, `bug:${bug.id}`);
  });
  await ctx.bus.apply(`bug:${row.bug_id}`);
  await removeObject(ctx, row.storage_key);
}

/** Opens an attachment's bytes (all, or an inclusive range) for download. */
export async function openContent(
  ctx: AttachmentsContext,
  row: repo.AttachmentRow,
  range?: { start: number; end: number },
): Promise<Readable> {
  try {
    return await ctx.storage.read(row.storage_key, range);
  } catch (err) {
    if (err instanceof ObjectMissing) {
      ctx.log.error(
        { key: row.storage_key, attachment: row.id },
        'attachment bytes are missing from storage',
      );
      throw new AppError(410, 'gone', `The bytes of attachment ${row.id} are no longer in storage.`);
    }
    throw storageFailure(err);
  }
}

/** Members of a bundle the viewer may see, a page at a time (after index `after`). */
export async function listMembers(
  ctx: AttachmentsContext,
  viewer: Viewer,
  id: number,
  page: { after: number; limit: number },
): Promise<{ attachment: repo.AttachmentRow; members: repo.MemberRow[] }> {
  const attachment = await getAttachment(ctx, viewer, id);
  if (attachment.kind !== 'bundle') throw notFound('Bundle', id);
  return { attachment, members: await repo.listMembers(ctx.db, id, page.after, page.limit) };
}

/** One member of a visible bundle; 404 otherwise. */
export async function getMember(
  ctx: AttachmentsContext,
  viewer: Viewer,
  id: number,
  idx: number,
): Promise<{ attachment: repo.AttachmentRow; member: repo.MemberRow }> {
  const attachment = await getAttachment(ctx, viewer, id);
  const member = attachment.kind === 'bundle' ? await repo.findMember(ctx.db, id, idx) : undefined;
  if (!member) throw notFound(`Member ${idx} of attachment`, id);
  return { attachment, member };
}
