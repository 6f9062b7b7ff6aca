/**
 * Bug events: the outbox. A command that changes a bug calls `recordEvent` inside its own transaction,
 * so the change and the record of it (and the jobs that tell people about it) commit together or not
 * at all. Consumers (email now, webhooks later) are jobs enqueued here, in the same transaction.
 *
 * Events carry ids and the history of what changed, never a rendered message: whoever sends something
 * about an event loads the bug again and checks visibility at send time.
 *
 * Adding a consumer (webhooks): enqueue its job in `recordEvent` with the event id in the payload and an
 * idempotency key, and give its handler to `createWorker` (src/notify) so every worker runs it.
 */

import { enqueue } from '../jobs/index.ts';
import { type Queryable, raw, sql } from '../platform/db.ts';

/** What happened to a bug. */
export type BugEventKind = 'bug.created' | 'bug.updated' | 'comment.created' | 'attachment.created';

/** One changed field, as written to the bug's history (names rather than ids where people read them). */
export interface FieldChange {
  field: string;
  old: string | null;
  new: string | null;
}

/** A bug event as a command records it. */
export interface BugEvent {
  kind: BugEventKind;
  bugId: number;
  /** The user who made the change. */
  actorId: number;
  /** Fields that changed (bug.updated; may accompany comment.created when both happen at once). */
  changes?: readonly FieldChange[] | undefined;
  /** The comment added (comment.created, or a bug.updated that came with a comment). */
  commentId?: number | undefined;
  /** The attachment added (attachment.created). */
  attachmentId?: number | undefined;
}

/** A stored bug event. */
export interface StoredBugEvent {
  id: number;
  kind: BugEventKind;
  bugId: number;
  actorId: number;
  changes: FieldChange[];
  commentId: number | null;
  attachmentId: number | null;
  /**
   * The real actor when the change was made on behalf of `actorId` (the owner of an API key an admin
   * marked as such; see src/users/on-behalf.ts), else null.
   */
  viaUserId: number | null;
  createdAt: Date;
}

/** The job kind that turns one person's recent events on one bug into mails (see src/notify). */
export const NOTIFY_BATCH_JOB = 'notify.batch';

/** The job kind that turns one event into one delivery job per matching webhook (see src/webhooks). */
export const WEBHOOK_FANOUT_JOB = 'webhook.fanout';

/**
 * Records a bug event inside the caller's transaction `tx` and enqueues its consumers there too.
 * Returns the event id. Call it after the change itself was written.
 */
export async function recordEvent(tx: Queryable, event: BugEvent): Promise<number> {
  const [row] = await tx.query<{ id: number }>(sql`
    INSERT INTO bug_events (kind, bug_id, actor_id, changes, comment_id, attachment_id)
    VALUES (${event.kind}, ${event.bugId}, ${event.actorId}, ${JSON.stringify(event.changes ?? [])}::text::jsonb,
            ${event.commentId ?? null}, ${event.attachmentId ?? null})
    RETURNING id`);
  // One pending batch job per (bug, actor): later events of the same person join it (src/notify).
  await enqueue(tx, {
    kind: NOTIFY_BATCH_JOB,
    payload: { bugId: event.bugId, actorId: event.actorId },
    groupKey: `${event.bugId}:${event.actorId}`,
  });
  // One webhook fan-out per event: it creates a delivery job per matching webhook (src/webhooks).
  await enqueue(tx, {
    kind: WEBHOOK_FANOUT_JOB,
    payload: { eventId: Number(row!.id) },
    idempotencyKey: `event:${row!.id}`,
  });
  return row!.id;
}

/** Loads events by id, oldest first. */
export async function loadEvents(q: Queryable, ids: readonly number[]): Promise<StoredBugEvent[]> {
  if (ids.length === 0) return [];
  const rows = await q.query<EventRow>(sql`
    SELECT ${EVENT_COLUMNS}
    FROM bug_events WHERE id = ANY(${[...ids]}::int[]) ORDER BY id`);
  return rows.map(toEvent);
}

/** The bug_events columns an EventRow holds, for SELECT and RETURNING lists. */
export const EVENT_COLUMNS = raw(
  'id, kind, bug_id, actor_id, changes, comment_id, attachment_id, via_user_id, created_at',
);

/** Database row of bug_events. */
export interface EventRow {
  id: number;
  kind: BugEventKind;
  bug_id: number;
  actor_id: number;
  changes: FieldChange[] | string;
  comment_id: number | null;
  attachment_id: number | null;
  via_user_id: number | null;
  created_at: Date;
}

/** A bug_events row as a StoredBugEvent. */
export function toEvent(r: EventRow): StoredBugEvent {
  return {
    id: r.id,
    kind: r.kind,
    bugId: r.bug_id,
    actorId: r.actor_id,
    changes: typeof r.changes === 'string' ? (JSON.parse(r.changes) as FieldChange[]) : r.changes,
    commentId: r.comment_id,
    attachmentId: r.attachment_id,
    viaUserId: r.via_user_id ?? null,
    createdAt: r.created_at,
  };
}
