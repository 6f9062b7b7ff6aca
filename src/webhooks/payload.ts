/** The webhook payload of one event for one owner, built at send time with the owner's visibility. */
import { type UserViewer, visibleBugs, visibleComments } from '../access/index.ts';
import { presentBug } from '../bugs/present.ts';
import { loadBug } from '../bugs/repository.ts';
import type { StoredBugEvent } from '../events/index.ts';
import { type Queryable, sql } from '../platform/db.ts';
import type { WebhookEvent } from './service.ts';

interface CommentRow {
  id: number;
  author_id: number;
  author_name: string;
  body: string;
  is_private: boolean;
  created_at: Date;
}

interface AttachmentRow {
  id: number;
  file_name: string;
  kind: string;
  content_type: string;
  size: number | string;
  sha256: string;
  uploader_id: number;
  created_at: Date;
}

/**
 * The payload as the owner may see it; undefined when the owner may not see the bug (or the comment).
 * Its queries run at once (a fan-out waits for the slowest, not for their sum); nothing is used before
 * the visibility answer says the owner may see the bug.
 */
export async function buildPayload(
  q: Queryable,
  viewer: UserViewer,
  event: StoredBugEvent,
  type: WebhookEvent,
): Promise<Record<string, unknown> | undefined> {
  const wantsComment = event.commentId !== null && (type === 'comment.created' || type === 'bug.updated');
  const wantsAttachment = type === 'attachment.created' && event.attachmentId !== null;
  const [[access], bug, [c], [a], [via]] = await Promise.all([
    // Whether the owner may see the bug, and the bug it duplicates (else duplicate_of is hidden).
    q.query<{ dup_visible: boolean }>(sql`
      SELECT b.duplicate_of IS NOT NULL AND EXISTS (
               SELECT 1 FROM bugs d WHERE d.id = b.duplicate_of AND ${visibleBugs(viewer, 'd')}) AS dup_visible
      FROM bugs b WHERE b.id = ${event.bugId} AND ${visibleBugs(viewer, 'b')}`),
    loadBug(q, event.bugId),
    wantsComment
      ? q.query<CommentRow>(sql`SELECT c.id, c.author_id, u.name AS author_name, c.body, c.is_private,
          c.created_at FROM comments c JOIN users u ON u.id = c.author_id
          WHERE c.id = ${event.commentId} AND ${visibleComments(viewer, 'c')}`)
      : Promise.resolve([]),
    wantsAttachment
      ? q.query<AttachmentRow>(sql`SELECT id, file_name, kind, content_type, size, sha256, uploader_id,
          created_at FROM attachments WHERE id = ${event.attachmentId}`)
      : Promise.resolve([]),
    event.viaUserId !== null
      ? q.query<{ id: number; name: string }>(sql`SELECT id, name FROM users WHERE id = ${event.viaUserId}`)
      : Promise.resolve([]),
  ]);
  if (!access || !bug) return undefined;
  const payload: Record<string, unknown> = {
    id: Number(event.id),
    type,
    created_at: event.createdAt.toISOString(),
    actor_id: event.actorId,
    // Made on behalf of actor_id by an API key's owner (a bot): who really acted.
    ...(via ? { via: { id: via.id, name: via.name } } : {}),
    bug: presentBug({ ...bug, duplicate_of: access.dup_visible ? bug.duplicate_of : null }),
  };
  if (type === 'bug.updated') payload.changes = event.changes;
  if (type === 'bug.status_changed') {
    payload.changes = event.changes.filter((ch) => ch.field === 'status' || ch.field === 'resolution');
  }
  if (wantsComment) {
    // The comment query applied the access module's comment predicate: a private one is absent here.
    if (c) {
      payload.comment = {
        id: c.id,
        bug_id: event.bugId,
        author: { id: c.author_id, name: c.author_name },
        body: c.body,
        is_private: c.is_private,
        created_at: c.created_at.toISOString(),
      };
    } else if (type === 'comment.created') return undefined;
  }
  if (wantsAttachment) {
    if (!a) return undefined;
    payload.attachment = {
      id: a.id,
      bug_id: event.bugId,
      file_name: a.file_name,
      kind: a.kind,
      content_type: a.content_type,
      size: Number(a.size),
      sha256: a.sha256,
      uploader_id: a.uploader_id,
      created_at: a.created_at.toISOString(),
    };
  }
  return payload;
}
