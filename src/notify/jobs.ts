/**
 * The notification jobs.
 * - notify.batch {bugId, actorId}: waits until the actor's first unsent event on the bug is
 *   NOTIFY_BATCH_SECONDS old, takes all of that actor's unsent events on the bug, works out the
 *   recipients now, and enqueues one mail.send per recipient (idempotency key: batch + recipient) —
 *   all in one transaction, so a crash leaves either everything or nothing.
 * - mail.send {bugId, userId, eventIds, roles}: checks again that the recipient is active and may see
 *   the bug, composes the mail from the bug as it is now and sends it.
 */
import { visibleComments } from '../access/index.ts';
import {
  EVENT_COLUMNS,
  type EventRow,
  loadEvents,
  NOTIFY_BATCH_JOB,
  type StoredBugEvent,
  toEvent,
} from '../events/index.ts';
import { type Defer, enqueue, type Job, type JobHandler } from '../jobs/index.ts';
import { type Db, type Queryable, sql } from '../platform/db.ts';
import { composeMail, type MailAttachment, type MailBug, type MailComment } from './compose.ts';
import type { Role } from './preferences.ts';
import { activeViewer, maySeeBug, recipientsFor } from './recipients.ts';
import type { MailTransport } from './transport.ts';

/** The job kind of one mail to one person. */
export const MAIL_JOB = 'mail.send';

/** What the notification jobs need. */
export interface NotifyDeps {
  db: Db;
  transport: MailTransport;
  baseUrl: string;
  from: string;
  batchSeconds: number;
  giveUpAfterMs: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

interface BatchPayload {
  bugId: number;
  actorId: number;
}

interface MailPayload {
  bugId: number;
  userId: number;
  actorId: number;
  eventIds: number[];
  roles: Role[];
}

/** Turns one actor's waiting events on one bug into mail jobs. */
async function runBatch(deps: NotifyDeps, job: Job): Promise<undefined | Defer> {
  const { bugId, actorId } = job.payload as unknown as BatchPayload;
  const [first] = await deps.db.query<{ due: Date; now: Date }>(sql`
    SELECT min(created_at) + make_interval(secs => ${deps.batchSeconds}) AS due, now() AS now
    FROM bug_events WHERE bug_id = ${bugId} AND actor_id = ${actorId} AND batched_by IS NULL`);
  if (!first?.due) return undefined;
  if (first.due > first.now) return { deferUntil: first.due };
  await deps.db.transaction(async (tx) => {
    // Row locks make each event belong to exactly one batch, even with two batch jobs racing.
    const rows = await tx.query<EventRow>(sql`
      UPDATE bug_events SET batched_by = ${job.id}
      WHERE bug_id = ${bugId} AND actor_id = ${actorId} AND batched_by IS NULL
      RETURNING ${EVENT_COLUMNS}`);
    if (rows.length === 0) return;
    const events = rows.map(toEvent).sort((a, b) => a.id - b.id);
    const batchId = events[0]!.id;
    for (const r of await recipientsFor(tx, bugId, actorId, events)) {
      const payload: MailPayload = {
        bugId,
        userId: r.viewer.id,
        actorId,
        eventIds: events.map((e) => e.id),
        roles: r.roles,
      };
      await enqueue(tx, {
        kind: MAIL_JOB,
        payload: { ...payload },
        idempotencyKey: `${batchId}:${r.viewer.id}`,
      });
    }
  });
  return undefined;
}

/** The bug as mails show it. */
async function loadMailBug(q: Queryable, bugId: number): Promise<MailBug | undefined> {
  const [row] = await q.query<MailBug>(sql`
    SELECT b.id, b.summary, b.status, b.resolution, b.confidential, p.name AS product, v.name AS version,
      c.name AS component, a.name AS assignee, r.name AS reporter
    FROM bugs b JOIN products p ON p.id = b.product_id JOIN versions v ON v.id = b.version_id
      JOIN components c ON c.id = b.component_id JOIN users r ON r.id = b.reporter_id
      LEFT JOIN users a ON a.id = b.assignee_id
    WHERE b.id = ${bugId}`);
  return row;
}

/** Attachments named by events; read loosely so the mail does not depend on that module's columns. */
async function loadAttachments(q: Queryable, events: readonly StoredBugEvent[]): Promise<MailAttachment[]> {
  const ids = events.flatMap((e) => (e.attachmentId === null ? [] : [e.attachmentId]));
  if (ids.length === 0) return [];
  const rows = await q.query<{ id: number; a: Record<string, unknown> | string }>(
    sql`SELECT a.id, to_jsonb(a) AS a FROM attachments a WHERE a.id = ANY(${ids}::int[]) ORDER BY a.id`,
  );
  const found = new Map(
    rows.map((r) => {
      const a = typeof r.a === 'string' ? (JSON.parse(r.a) as Record<string, unknown>) : r.a;
      const name = a.file_name ?? a.filename ?? a.name ?? `attachment ${r.id}`;
      const size = typeof a.size === 'number' ? a.size : a.size ? Number(a.size) : null;
      return [r.id, { id: r.id, name: String(name), size }] as const;
    }),
  );
  // One not (yet) readable still gets its line: the link shows whatever the reader may see.
  return [...new Set(ids)].map((id) => found.get(id) ?? { id, name: `attachment ${id}`, size: null });
}

/** Sends one mail to one person, if they are still allowed to have it. */
async function runMail(deps: NotifyDeps, job: Job): Promise<undefined> {
  const p = job.payload as unknown as MailPayload;
  const { db } = deps;
  const viewer = await activeViewer(db, p.userId);
  // Visibility at send time: a disabled account, or someone who may no longer see the bug, gets nothing.
  if (!viewer || !(await maySeeBug(db, viewer, p.bugId))) {
    deps.log.info(
      { job: job.id, user: p.userId, bug: p.bugId },
      'mail skipped: recipient may not see the bug now',
    );
    return undefined;
  }
  const bug = await loadMailBug(db, p.bugId);
  if (!bug) return undefined;
  const events = await loadEvents(db, p.eventIds);
  const commentIds = events.flatMap((e) => (e.commentId === null ? [] : [e.commentId]));
  const comments = commentIds.length
    ? await db.query<MailComment>(sql`
        SELECT c.id, u.name AS author, c.body, c.is_private AS "isPrivate"
        FROM comments c JOIN users u ON u.id = c.author_id
        WHERE c.id = ANY(${commentIds}::int[]) AND c.bug_id = ${p.bugId} AND ${visibleComments(viewer, 'c')}
        ORDER BY c.id`)
    : [];
  let changes = events.flatMap((e) => e.changes);
  // duplicate_of names another bug: show its number only to those who may see that bug.
  for (const c of changes) {
    if (c.field !== 'duplicate_of') continue;
    for (const side of ['old', 'new'] as const) {
      const v = c[side];
      if (v !== null && !(await maySeeBug(db, viewer, Number(v))))
        changes = changes.map((x) => (x === c ? { ...x, [side]: null } : x));
    }
  }
  const attachments = await loadAttachments(db, events);
  const filed = events.some((e) => e.kind === 'bug.created');
  if (!filed && changes.length === 0 && comments.length === 0 && attachments.length === 0) {
    // Only a private comment the recipient may not read: nothing to tell them.
    return undefined;
  }
  // Changes made on behalf of the actor name the real actor too ("Alice (via CI bot)").
  const viaIds = [...new Set(events.flatMap((e) => (e.viaUserId === null ? [] : [e.viaUserId])))];
  const [actor] = await db.query<{ name: string }>(sql`SELECT name FROM users WHERE id = ${p.actorId}`);
  const via = viaIds.length
    ? await db.query<{ name: string }>(
        sql`SELECT name FROM users WHERE id = ANY(${viaIds}::int[]) ORDER BY id`,
      )
    : [];
  const actorName = actor?.name ?? 'Someone';
  const mail = composeMail({
    bug,
    to: { id: viewer.id, name: viewer.name, email: viewer.email },
    roles: p.roles,
    actor: via.length ? `${actorName} (via ${via.map((v) => v.name).join(', ')})` : actorName,
    filed,
    changes,
    comments,
    attachments,
    batchId: events[0]?.id ?? job.id,
    baseUrl: deps.baseUrl,
    from: deps.from,
  });
  await deps.transport.send(mail);
  return undefined;
}

/** The handlers of the notification jobs, for a Worker. */
export function notifyHandlers(deps: NotifyDeps): JobHandler[] {
  return [
    { kind: NOTIFY_BATCH_JOB, run: (job) => runBatch(deps, job), giveUpAfterMs: deps.giveUpAfterMs },
    { kind: MAIL_JOB, run: (job) => runMail(deps, job), giveUpAfterMs: deps.giveUpAfterMs },
  ];
}
