/** SQL of the bugs module. Every read takes a Viewer and filters through the access predicates. */
import { type Viewer, visibleBugs, visibleComments } from '../access/index.ts';
import { join, type Queryable, raw, type Sql, sql } from '../platform/db.ts';

/** A bug with the names of what it refers to. */
export interface BugRow {
  id: number;
  product_id: number;
  product: string;
  version_id: number;
  version: string;
  component_id: number;
  component: string;
  summary: string;
  description: string;
  status: string;
  resolution: string | null;
  severity: string;
  priority: string;
  reporter_id: number;
  reporter_name: string;
  assignee_id: number | null;
  assignee_name: string | null;
  confidential: boolean;
  duplicate_of: number | null;
  created_at: Date;
  changed_at: Date;
  row_version: number;
}

/** A bug with its CC list. */
export interface FullBugRow extends BugRow {
  cc: { id: number; name: string }[];
}

/** A bug with its CC list and the facts the visibility rule needs; not yet checked against any viewer. */
export interface LoadedBug extends FullBugRow {
  product_released: boolean;
  version_released: boolean;
}

const loadedBugSelect = sql`
    SELECT b.id, b.product_id, p.name AS product, b.version_id, v.name AS version,
      b.component_id, c.name AS component, b.summary, b.description, b.status, b.resolution,
      b.severity, b.priority, b.reporter_id, r.name AS reporter_name, b.assignee_id, a.name AS assignee_name,
      b.confidential, b.duplicate_of, b.created_at, b.changed_at, b.row_version,
      p.is_released AS product_released, v.is_released AS version_released,
      COALESCE((SELECT json_agg(json_build_object('id', u.id, 'name', u.name) ORDER BY u.name, u.id)
                FROM bug_cc cc JOIN users u ON u.id = cc.user_id WHERE cc.bug_id = b.id), '[]') AS cc
    FROM bugs b
      JOIN products p ON p.id = b.product_id
      JOIN versions v ON v.id = b.version_id
      JOIN components c ON c.id = b.component_id
      JOIN users r ON r.id = b.reporter_id
      LEFT JOIN users a ON a.id = b.assignee_id`;

/**
 * Loads bugs whole, unchecked, for the bug cache (which keeps them as data and checks each viewer with
 * `canSeeBug`). The rows come back in no particular order.
 */
export async function loadBugs(db: Queryable, ids: number[]): Promise<LoadedBug[]> {
  if (ids.length === 0) return [];
  return db.query<LoadedBug>(sql`${loadedBugSelect} WHERE b.id = ANY(${ids}::int[])`);
}

/**
 * Loads one bug whole, unchecked, for the bug cache; callers decide visibility with the access module's
 * `canSeeBug` before anything leaves the service. duplicate_of is the raw value here.
 */
export async function loadBug(db: Queryable, id: number): Promise<LoadedBug | undefined> {
  const rows = await db.query<LoadedBug>(sql`${loadedBugSelect} WHERE b.id = ${id}`);
  return rows[0];
}

/** A bug's own columns, unmasked (for computing changes inside a write). */
export interface RawBug {
  id: number;
  product_id: number;
  version_id: number;
  component_id: number;
  summary: string;
  description: string;
  status: string;
  resolution: string | null;
  severity: string;
  priority: string;
  reporter_id: number;
  assignee_id: number | null;
  confidential: boolean;
  duplicate_of: number | null;
  row_version: number;
}

/** Locks a visible bug's row for the rest of the transaction; undefined when missing or invisible. */
export async function lockBug(db: Queryable, viewer: Viewer, id: number): Promise<RawBug | undefined> {
  const rows = await db.query<RawBug>(sql`
    SELECT b.id, b.product_id, b.version_id, b.component_id, b.summary, b.description, b.status, b.resolution,
           b.severity, b.priority, b.reporter_id, b.assignee_id, b.confidential, b.duplicate_of, b.row_version
    FROM bugs b WHERE b.id = ${id} AND ${visibleBugs(viewer, 'b')} FOR UPDATE OF b`);
  return rows[0];
}

/** The duplicate_of of a bug (for refusing A dup-of B dup-of A). */
export async function duplicateOf(db: Queryable, id: number): Promise<number | null> {
  const rows = await db.query<{ duplicate_of: number | null }>(
    sql`SELECT duplicate_of FROM bugs WHERE id = ${id}`,
  );
  return rows[0]?.duplicate_of ?? null;
}

/** Names for history rows: products, versions, components, users by id. */
export async function names(
  db: Queryable,
  table: 'products' | 'versions' | 'components' | 'users',
  ids: number[],
): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: number; name: string }>(
    sql`SELECT id, name FROM ${raw(table)} WHERE id = ANY(${ids}::int[])`,
  );
  return new Map(rows.map((r) => [r.id, r.name]));
}

/** Whether the viewer may see bug `id` (cheap check for references such as duplicate_of). */
export async function bugVisible(db: Queryable, viewer: Viewer, id: number): Promise<boolean> {
  const rows = await db.query(sql`SELECT 1 FROM bugs b WHERE b.id = ${id} AND ${visibleBugs(viewer, 'b')}`);
  return rows.length > 0;
}

/** Filters of the bug list; every field optional, values within a field OR, fields AND. */
export interface BugFilter {
  productIds?: number[];
  versionIds?: number[];
  componentIds?: number[];
  statuses?: string[];
  reporterIds?: number[];
  assigneeIds?: number[];
  /** Bugs any of these users is on the CC list of. */
  ccUserIds?: number[];
  /** Only bugs in open statuses (not RESOLVED, VERIFIED, CLOSED). */
  openOnly?: boolean;
}

/**
 * Ids of a page of visible bugs in id order, starting after the cursor id. Only ids: the rows come from
 * the bug cache, which keeps this statement small (its planning, not its execution, dominated).
 */
export async function listBugIds(
  db: Queryable,
  viewer: Viewer,
  f: BugFilter,
  page: { after?: number | undefined; limit: number; order: 'asc' | 'desc' | 'changed' },
): Promise<number[]> {
  const conds: Sql[] = [visibleBugs(viewer, 'b')];
  if (f.ccUserIds?.length) {
    conds.push(
      sql`EXISTS (SELECT 1 FROM bug_cc fcc WHERE fcc.bug_id = b.id AND fcc.user_id = ANY(${f.ccUserIds}::int[]))`,
    );
  }
  if (f.openOnly) conds.push(sql`b.status IN (SELECT name FROM bug_statuses WHERE is_open)`);
  if (f.productIds?.length) conds.push(sql`b.product_id = ANY(${f.productIds}::int[])`);
  if (f.versionIds?.length) conds.push(sql`b.version_id = ANY(${f.versionIds}::int[])`);
  if (f.componentIds?.length) conds.push(sql`b.component_id = ANY(${f.componentIds}::int[])`);
  if (f.statuses?.length) conds.push(sql`b.status = ANY(${f.statuses}::text[])`);
  if (f.reporterIds?.length) conds.push(sql`b.reporter_id = ANY(${f.reporterIds}::int[])`);
  if (f.assigneeIds?.length) conds.push(sql`b.assignee_id = ANY(${f.assigneeIds}::int[])`);
  if (page.after !== undefined && page.order !== 'changed') {
    conds.push(page.order === 'desc' ? sql`b.id < ${page.after}` : sql`b.id > ${page.after}`);
  }
  // 'changed': most recently changed first, for the dashboard (no cursor: a first page only).
  const order =
    page.order === 'changed'
      ? sql`ORDER BY b.changed_at DESC, b.id DESC`
      : page.order === 'desc'
        ? sql`ORDER BY b.id DESC`
        : sql`ORDER BY b.id ASC`;
  const rows = await db.query<{ id: number }>(
    sql`SELECT b.id FROM bugs b WHERE ${join(conds, ' AND ')} ${order} LIMIT ${page.limit}`,
  );
  return rows.map((r) => r.id);
}

/** How many bugs the viewer may see in each status. */
export function countByStatus(db: Queryable, viewer: Viewer): Promise<{ status: string; n: number }[]> {
  return db.query(sql`
    SELECT b.status, count(*)::int AS n FROM bugs b WHERE ${visibleBugs(viewer, 'b')} GROUP BY b.status`);
}

/** Columns a bug insert sets. */
export interface NewBug {
  productId: number;
  versionId: number;
  componentId: number;
  summary: string;
  description: string;
  status: string;
  severity: string;
  priority: string;
  reporterId: number;
  assigneeId: number | null;
  confidential: boolean;
}

export async function insertBug(db: Queryable, b: NewBug): Promise<number> {
  const rows = await db.query<{ id: number }>(sql`
    INSERT INTO bugs (product_id, version_id, component_id, summary, description, status, severity, priority,
                      reporter_id, assignee_id, confidential)
    VALUES (${b.productId}, ${b.versionId}, ${b.componentId}, ${b.summary}, ${b.description}, ${b.status},
            ${b.severity}, ${b.priority}, ${b.reporterId}, ${b.assigneeId}, ${b.confidential})
    RETURNING id`);
  return rows[0]!.id;
}

/** Bug columns an update may set, by column name. */
export type BugColumns = Partial<Omit<RawBug, 'id' | 'reporter_id' | 'row_version'>>;

const UPDATABLE = new Set([
  'product_id',
  'version_id',
  'component_id',
  'summary',
  'description',
  'status',
  'resolution',
  'severity',
  'priority',
  'assignee_id',
  'confidential',
  'duplicate_of',
]);

/** Writes changed columns and bumps the row version; returns the new row version. */
export async function updateBugColumns(db: Queryable, id: number, cols: BugColumns): Promise<number> {
  const sets = Object.entries(cols).map(([k, v]) => {
    if (!UPDATABLE.has(k)) throw new Error(`not an updatable bug column: ${k}`);
    return sql`${raw(k)} = ${v}`;
  });
  sets.push(sql`row_version = row_version + 1`, sql`changed_at = now()`);
  const rows = await db.query<{ row_version: number }>(
    sql`UPDATE bugs SET ${join(sets, ', ')} WHERE id = ${id} RETURNING row_version`,
  );
  return rows[0]!.row_version;
}

/** One history row. */
export interface ChangeRow {
  id: number;
  bug_id: number;
  actor_id: number;
  actor_name: string;
  /** Acted on behalf of actor_id: the key owner who really made the change (migration 008). */
  via_user_id?: number | null;
  via_name?: string | null;
  field: string;
  old_value: string | null;
  new_value: string | null;
  bug_version: number;
  changed_at: Date;
}

export async function insertChanges(
  db: Queryable,
  bugId: number,
  actorId: number,
  bugVersion: number,
  changes: { field: string; old: string | null; new: string | null }[],
): Promise<void> {
  if (changes.length === 0) return;
  const rows = changes.map((c) => sql`(${bugId}, ${actorId}, ${c.field}, ${c.old}, ${c.new}, ${bugVersion})`);
  await db.query(sql`
    INSERT INTO bug_changes (bug_id, actor_id, field, old_value, new_value, bug_version) VALUES ${join(rows, ', ')}`);
}

/** History of a bug already checked visible; `sinceVersion` limits it to what came after that version. */
export function listChanges(db: Queryable, bugId: number, sinceVersion = 0): Promise<ChangeRow[]> {
  return db.query<ChangeRow>(sql`
    SELECT h.id, h.bug_id, h.actor_id, u.name AS actor_name, h.field, h.old_value, h.new_value, h.bug_version,
           h.changed_at, h.via_user_id, vu.name AS via_name
    FROM bug_changes h JOIN users u ON u.id = h.actor_id LEFT JOIN users vu ON vu.id = h.via_user_id
    WHERE h.bug_id = ${bugId} AND h.bug_version > ${sinceVersion}
    ORDER BY h.id`);
}

export async function setCc(db: Queryable, bugId: number, add: number[], remove: number[]): Promise<void> {
  if (remove.length) {
    await db.query(sql`DELETE FROM bug_cc WHERE bug_id = ${bugId} AND user_id = ANY(${remove}::int[])`);
  }
  if (add.length) {
    await db.query(sql`
      INSERT INTO bug_cc (bug_id, user_id) SELECT ${bugId}, unnest(${add}::int[]) ON CONFLICT DO NOTHING`);
  }
}

/** User ids on a bug's CC list. */
export async function ccOf(db: Queryable, bugId: number): Promise<number[]> {
  const rows = await db.query<{ user_id: number }>(sql`SELECT user_id FROM bug_cc WHERE bug_id = ${bugId}`);
  return rows.map((r) => r.user_id);
}

/** Active users among `ids` with their names (for assignee and CC checks). */
export function activeUsers(db: Queryable, ids: number[]): Promise<{ id: number; name: string }[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db.query(sql`SELECT id, name FROM users WHERE id = ANY(${ids}::int[]) AND NOT disabled`);
}

/** One comment. */
export interface CommentRow {
  id: number;
  bug_id: number;
  author_id: number;
  author_name: string;
  /** Written on behalf of author_id: the key owner who really wrote it (migration 008). */
  via_user_id?: number | null;
  via_name?: string | null;
  body: string;
  is_private: boolean;
  bug_version: number;
  created_at: Date;
}

export async function insertComment(
  db: Queryable,
  c: { bugId: number; authorId: number; body: string; isPrivate: boolean; bugVersion: number },
): Promise<number> {
  const rows = await db.query<{ id: number }>(sql`
    INSERT INTO comments (bug_id, author_id, body, is_private, bug_version)
    VALUES (${c.bugId}, ${c.authorId}, ${c.body}, ${c.isPrivate}, ${c.bugVersion}) RETURNING id`);
  return rows[0]!.id;
}

/** Comments of a bug already checked visible, without those the viewer may not read. */
export function listComments(
  db: Queryable,
  viewer: Viewer,
  bugId: number,
  sinceVersion = 0,
): Promise<CommentRow[]> {
  return db.query<CommentRow>(sql`
    SELECT c.id, c.bug_id, c.author_id, u.name AS author_name, c.body, c.is_private, c.bug_version, c.created_at,
           c.via_user_id, vu.name AS via_name
    FROM comments c JOIN users u ON u.id = c.author_id LEFT JOIN users vu ON vu.id = c.via_user_id
    WHERE c.bug_id = ${bugId} AND c.bug_version > ${sinceVersion} AND ${visibleComments(viewer, 'c')}
    ORDER BY c.id`);
}

/** Bumps the bug's row version for a change outside its own columns (a comment, the CC list). */
export async function touchBug(db: Queryable, id: number): Promise<number> {
  const rows = await db.query<{ row_version: number }>(sql`
    UPDATE bugs SET row_version = row_version + 1, changed_at = now() WHERE id = ${id} RETURNING row_version`);
  return rows[0]!.row_version;
}
