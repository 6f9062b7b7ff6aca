/**
 * Who hears of a change, decided when the mail is made (not when the change happened): the people
 * associated with the bug now, who are active, who may see the bug now (through the access module's
 * predicate), and whose preferences ask for this kind of change.
 */
import { type UserViewer, visibleBugs } from '../access/index.ts';
import type { StoredBugEvent } from '../events/index.ts';
import { type Queryable, sql } from '../platform/db.ts';
import { toViewer, type UserRow } from '../users/index.ts';
import { loadPreferences, type NotifyEvent, ROLES, type Role } from './preferences.ts';

/** Someone to mail, with why. */
export interface Recipient {
  viewer: UserViewer;
  roles: Role[];
}

/** Statuses after which a bug counts as resolved (a move out of them is a reopening). */
const CLOSED = new Set(['RESOLVED', 'VERIFIED', 'CLOSED']);

/** The kinds of change a batch of events holds, as the preferences name them. */
export function categorize(events: readonly StoredBugEvent[]): Set<NotifyEvent> {
  const out = new Set<NotifyEvent>();
  for (const e of events) {
    if (e.kind === 'bug.created') out.add('filed');
    if (e.kind === 'comment.created' || e.commentId !== null) out.add('comment');
    if (e.kind === 'attachment.created') out.add('attachment');
    for (const c of e.changes) {
      if (c.field === 'status') {
        out.add('status');
        if (CLOSED.has(c.new ?? '') !== CLOSED.has(c.old ?? '')) out.add('resolved');
      } else if (c.field === 'resolution') out.add('resolved');
      else if (c.field === 'assignee') out.add('assignee');
      else if (c.field === 'cc') out.add('cc');
      else out.add('other');
    }
  }
  return out;
}

/** The active users associated with a bug now, and how. */
export async function associatedUsers(
  q: Queryable,
  bugId: number,
): Promise<Map<number, { user: UserRow; roles: Role[] }>> {
  const rows = await q.query<UserRow & { role: Role }>(sql`
    WITH bug AS (SELECT id, reporter_id, assignee_id, product_id, component_id FROM bugs WHERE id = ${bugId}),
    assoc AS (
      SELECT reporter_id AS user_id, 'reporter' AS role FROM bug
      UNION ALL SELECT assignee_id, 'assignee' FROM bug WHERE assignee_id IS NOT NULL
      UNION ALL SELECT cc.user_id, 'cc' FROM bug_cc cc JOIN bug ON cc.bug_id = bug.id
      UNION ALL SELECT w.user_id, 'watcher' FROM watches w JOIN bug ON w.product_id = bug.product_id
        AND (w.component_id IS NULL OR w.component_id = bug.component_id)
    )
    SELECT DISTINCT u.id, u.email, u.name, u.password_hash, u.kind, u.is_admin, u.disabled, u.created_at, a.role
    FROM assoc a JOIN users u ON u.id = a.user_id
    WHERE NOT u.disabled`);
  const out = new Map<number, { user: UserRow; roles: Role[] }>();
  for (const r of rows) {
    const { role, ...user } = r;
    const entry = out.get(user.id) ?? { user, roles: [] };
    entry.roles.push(role);
    out.set(user.id, entry);
  }
  for (const e of out.values()) e.roles.sort((a, b) => ROLES.indexOf(a) - ROLES.indexOf(b));
  return out;
}

/** True when `viewer` may see the bug now: the one visibility predicate, asked for this bug. */
export async function maySeeBug(q: Queryable, viewer: UserViewer, bugId: number): Promise<boolean> {
  const rows = await q.query(sql`SELECT 1 FROM bugs b WHERE b.id = ${bugId} AND ${visibleBugs(viewer, 'b')}`);
  return rows.length > 0;
}

/** Whether a user is still active (not disabled); returns their viewer if so. */
export async function activeViewer(q: Queryable, userId: number): Promise<UserViewer | undefined> {
  const [row] = await q.query<UserRow>(sql`SELECT * FROM users WHERE id = ${userId} AND NOT disabled`);
  return row ? toViewer(row) : undefined;
}

/**
 * The people to mail about `events` (one actor's batch on one bug): associated now, active, allowed to
 * see the bug, wanting at least one of the kinds of change in the batch in at least one of their roles;
 * the actor only when they asked for their own changes.
 */
export async function recipientsFor(
  q: Queryable,
  bugId: number,
  actorId: number,
  events: readonly StoredBugEvent[],
): Promise<Recipient[]> {
  const kinds = categorize(events);
  const people = await associatedUsers(q, bugId);
  const prefs = await loadPreferences(q, [...people.keys()]);
  const out: Recipient[] = [];
  for (const [id, { user, roles }] of people) {
    const p = prefs.get(id)!;
    if (id === actorId && !p.mailOwnChanges) continue;
    const wanted = roles.filter((r) => [...kinds].some((k) => p.matrix[r][k]));
    if (wanted.length === 0) continue;
    const viewer = toViewer(user);
    if (!(await maySeeBug(q, viewer, bugId))) continue;
    out.push({ viewer, roles: wanted });
  }
  return out.sort((a, b) => a.viewer.id - b.viewer.id);
}
