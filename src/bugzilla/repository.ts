/**
 * SQL of the Bugzilla layer: which bugs a Bugzilla search matches (ids only, always under the
 * visibility predicate of src/access, so neither results nor counts include a bug the viewer may not
 * see), and the e-mail addresses Bugzilla uses as user names.
 */
import { isStaff, type Viewer, visibleBugs } from '../access/index.ts';
import { join, type Queryable, type Sql, sql } from '../platform/db.ts';

/** A Bugzilla search in Bugzot's columns; fields AND together, values within a field OR. */
export interface BugCriteria {
  ids?: number[] | undefined;
  products?: string[] | undefined;
  components?: string[] | undefined;
  versions?: string[] | undefined;
  statuses?: string[] | undefined;
  /** null stands for "no resolution" (Bugzilla's `---`). */
  resolutions?: (string | null)[] | undefined;
  severities?: string[] | undefined;
  priorities?: string[] | undefined;
  creators?: string[] | undefined;
  assignees?: string[] | undefined;
  ccs?: string[] | undefined;
  /** Substrings of the summary, any case. */
  summaries?: string[] | undefined;
  createdSince?: Date | undefined;
  changedSince?: Date | undefined;
  /** A search with a list that can match nothing (an alias, say: Bugzot has none). */
  nothing?: boolean | undefined;
}

const like = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Users named by Bugzilla user names. Staff name anybody by e-mail address; others only themselves
 * (they see other people by display name only, so a display name matches too): a search must not
 * confirm whose address is whose.
 */
function userIds(viewer: Viewer, values: string[]): Sql {
  const lowered = values.map((v) => v.toLowerCase());
  const self = viewer.kind === 'user' ? viewer.id : 0;
  return sql`(SELECT u.id FROM users u WHERE (lower(u.email) = ANY(${lowered}::text[])
    AND (${isStaff(viewer)}::boolean OR u.id = ${self})) OR u.name = ANY(${values}::text[]))`;
}

function conditions(viewer: Viewer, c: BugCriteria): Sql[] {
  const conds: Sql[] = [visibleBugs(viewer, 'b')];
  if (c.nothing) conds.push(sql`FALSE`);
  if (c.ids) conds.push(sql`b.id = ANY(${c.ids}::int[])`);
  if (c.products)
    conds.push(sql`b.product_id IN (SELECT id FROM products WHERE name = ANY(${c.products}::text[]))`);
  if (c.components)
    conds.push(sql`b.component_id IN (SELECT id FROM components WHERE name = ANY(${c.components}::text[]))`);
  if (c.versions)
    conds.push(sql`b.version_id IN (SELECT id FROM versions WHERE name = ANY(${c.versions}::text[]))`);
  if (c.statuses) conds.push(sql`b.status = ANY(${c.statuses}::text[])`);
  if (c.resolutions) {
    const named = c.resolutions.filter((r): r is string => r !== null);
    const none = c.resolutions.includes(null);
    conds.push(sql`(b.resolution = ANY(${named}::text[]) OR (${none}::boolean AND b.resolution IS NULL))`);
  }
  if (c.severities) conds.push(sql`b.severity = ANY(${c.severities}::text[])`);
  if (c.priorities) conds.push(sql`b.priority = ANY(${c.priorities}::text[])`);
  if (c.creators) conds.push(sql`b.reporter_id IN ${userIds(viewer, c.creators)}`);
  if (c.assignees) conds.push(sql`b.assignee_id IN ${userIds(viewer, c.assignees)}`);
  if (c.ccs) {
    conds.push(
      sql`EXISTS (SELECT 1 FROM bug_cc scc WHERE scc.bug_id = b.id AND scc.user_id IN ${userIds(viewer, c.ccs)})`,
    );
  }
  if (c.summaries) conds.push(sql`b.summary ILIKE ANY(${c.summaries.map(like)}::text[])`);
  if (c.createdSince) conds.push(sql`b.created_at >= ${c.createdSince}`);
  if (c.changedSince) conds.push(sql`b.changed_at >= ${c.changedSince}`);
  return conds;
}

/** Ids of the visible bugs matching a search, in id order. */
export async function searchBugIds(
  db: Queryable,
  viewer: Viewer,
  c: BugCriteria,
  page: { limit: number; offset: number },
): Promise<number[]> {
  const rows = await db.query<{ id: number }>(sql`
    SELECT b.id FROM bugs b WHERE ${join(conditions(viewer, c), ' AND ')}
    ORDER BY b.id LIMIT ${page.limit} OFFSET ${page.offset}`);
  return rows.map((r) => r.id);
}

/** How many visible bugs match a search (Bugzilla's count_only). */
export async function countBugs(db: Queryable, viewer: Viewer, c: BugCriteria): Promise<number> {
  const rows = await db.query<{ n: number }>(
    sql`SELECT count(*)::int AS n FROM bugs b WHERE ${join(conditions(viewer, c), ' AND ')}`,
  );
  return rows[0]?.n ?? 0;
}

/** A user as the Bugzilla layer names them. */
export interface UserIdentity {
  id: number;
  email: string;
  name: string;
  kind: 'internal' | 'external';
  is_admin: boolean;
  disabled: boolean;
}

const identity = sql`u.id, u.email, u.name, u.kind, u.is_admin, u.disabled`;

/** Users by id (for the e-mail addresses Bugzilla uses as user names). */
export async function usersById(db: Queryable, ids: number[]): Promise<Map<number, UserIdentity>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<UserIdentity>(
    sql`SELECT ${identity} FROM users u WHERE u.id = ANY(${[...new Set(ids)]}::int[])`,
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/** Users by e-mail address, any case. */
export async function usersByEmail(db: Queryable, emails: string[]): Promise<UserIdentity[]> {
  if (emails.length === 0) return [];
  const lowered = emails.map((e) => e.toLowerCase());
  return db.query<UserIdentity>(
    sql`SELECT ${identity} FROM users u WHERE lower(u.email) = ANY(${lowered}::text[]) ORDER BY u.id`,
  );
}
