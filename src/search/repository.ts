/**
 * SQL of the search module. Every statement that reads bugs carries the access module's predicate in
 * its own WHERE clause: results, counts, facets, snippets, suggestions and CSV rows are never filtered
 * after a LIMIT.
 */
import { type Viewer, visibleBugs, visibleComments } from '../access/index.ts';
import { join, type Queryable, type Sql, sql } from '../platform/db.ts';
import { type Compiled, severityRank, textDoc, textMatch } from './filter.ts';
import type { Sort, SortColumn } from './query.ts';

/** A result row: the bug's listed fields with names, and its sort key (for the cursor). */
export interface ResultRow {
  id: number;
  summary: string;
  product_id: number;
  product: string;
  version_id: number;
  version: string;
  component_id: number;
  component: string;
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
  rank: number | null;
  sort_key: string;
}

/** Where a page starts: after the row with this sort key and id. */
export interface After {
  key: string;
  id: number;
}

/** The SQL of each sort column, and the type its key is compared as. */
function sortExpr(column: SortColumn, viewer: Viewer, tsquery: string | undefined): { expr: Sql; type: Sql } {
  switch (column) {
    case 'relevance':
      return tsquery
        ? { expr: sql`ts_rank(${textDoc(viewer)}, ${tsquery}::tsquery)`, type: sql`real` }
        : { expr: sql`b.id`, type: sql`integer` };
    case 'id':
      return { expr: sql`b.id`, type: sql`integer` };
    case 'summary':
      return { expr: sql`b.summary`, type: sql`text` };
    case 'product':
      return { expr: sql`p.name`, type: sql`text` };
    case 'version':
      return { expr: sql`v.name`, type: sql`text` };
    case 'component':
      return { expr: sql`co.name`, type: sql`text` };
    case 'status':
      return { expr: sql`b.status`, type: sql`text` };
    case 'resolution':
      return { expr: sql`coalesce(b.resolution, '')`, type: sql`text` };
    case 'severity':
      return { expr: severityRank, type: sql`integer` };
    case 'priority':
      return { expr: sql`b.priority`, type: sql`text` };
    case 'reporter':
      return { expr: sql`r.name`, type: sql`text` };
    case 'assignee':
      return { expr: sql`coalesce(a.name, '')`, type: sql`text` };
    case 'created':
      return { expr: sql`b.created_at`, type: sql`timestamptz` };
    case 'changed':
      return { expr: sql`b.changed_at`, type: sql`timestamptz` };
  }
}

/** FROM and WHERE of a search: the bugs (and their text) the viewer may see that match. */
function fromWhere(viewer: Viewer, c: Compiled, joins: Sql = sql``, extra: Sql[] = []): Sql {
  const conds = [visibleBugs(viewer, 'b'), ...c.conds, ...extra];
  if (c.tsquery) conds.push(textMatch(viewer, { ...c, tsquery: c.tsquery }));
  return sql`FROM bugs b ${c.tsquery ? sql`JOIN bug_text t ON t.bug_id = b.id` : sql``} ${joins}
    WHERE ${join(conds, ' AND ')}`;
}

/** The join a sort column needs (names live in other tables); none for the bug's own columns. */
function sortJoin(column: SortColumn): Sql {
  switch (column) {
    case 'product':
      return sql`JOIN products p ON p.id = b.product_id`;
    case 'version':
      return sql`JOIN versions v ON v.id = b.version_id`;
    case 'component':
      return sql`JOIN components co ON co.id = b.component_id`;
    case 'reporter':
      return sql`JOIN users r ON r.id = b.reporter_id`;
    case 'assignee':
      return sql`LEFT JOIN users a ON a.id = b.assignee_id`;
    default:
      return sql``;
  }
}

/**
 * Rows after the cursor. The key travels as text and is cast in SQL: a driver that sees a timestamptz
 * parameter would send it through a JS Date and lose the microseconds.
 */
function keysetCond(sort: Sort, expr: Sql, type: Sql, after: After | undefined): Sql[] {
  if (!after) return [];
  return [
    sort.dir === 'asc'
      ? sql`(${expr}, b.id) > (${after.key}::text::${type}, ${after.id}::integer)`
      : sql`(${expr}, b.id) < (${after.key}::text::${type}, ${after.id}::integer)`,
  ];
}

/** A page position: the bug, its text rank and its sort key. */
export interface PageKey {
  id: number;
  rank: number | null;
  sort_key: string;
}

/**
 * One page of matching bug ids in the sort's order, starting after `after`: a small statement (only the
 * join the sort needs), quick to plan; the rows themselves come from the bug cache.
 */
export function pageKeys(
  db: Queryable,
  viewer: Viewer,
  c: Compiled,
  sort: Sort,
  limit: number,
  after: After | undefined,
): Promise<PageKey[]> {
  const { expr, type } = sortExpr(sort.column, viewer, c.tsquery);
  const dir = sort.dir === 'asc' ? sql`ASC` : sql`DESC`;
  const rank = c.tsquery ? sql`ts_rank(${textDoc(viewer)}, ${c.tsquery}::tsquery)` : sql`NULL::real`;
  return db.query<PageKey>(sql`
    SELECT b.id, ${rank} AS rank, (${expr})::text AS sort_key
    ${fromWhere(viewer, c, sortJoin(sort.column), keysetCond(sort, expr, type, after))}
    ORDER BY ${expr} ${dir}, b.id ${dir}
    LIMIT ${limit}`);
}

/** One page of matching bugs with their fields, in the sort's order, starting after `after` (CSV). */
export function page(
  db: Queryable,
  viewer: Viewer,
  c: Compiled,
  sort: Sort,
  limit: number,
  after: After | undefined,
): Promise<ResultRow[]> {
  const { expr, type } = sortExpr(sort.column, viewer, c.tsquery);
  const dir = sort.dir === 'asc' ? sql`ASC` : sql`DESC`;
  const keyset = keysetCond(sort, expr, type, after);
  const rank = c.tsquery ? sql`ts_rank(${textDoc(viewer)}, ${c.tsquery}::tsquery)` : sql`NULL::real`;
  return db.query<ResultRow>(sql`
    SELECT b.id, b.summary, b.product_id, p.name AS product, b.version_id, v.name AS version,
           b.component_id, co.name AS component, b.status, b.resolution, b.severity, b.priority,
           b.reporter_id, r.name AS reporter_name, b.assignee_id, a.name AS assignee_name, b.confidential,
           CASE WHEN b.duplicate_of IS NOT NULL AND EXISTS (
                  SELECT 1 FROM bugs d WHERE d.id = b.duplicate_of AND ${visibleBugs(viewer, 'd')})
                THEN b.duplicate_of END AS duplicate_of,
           b.created_at, b.changed_at, b.row_version, ${rank} AS rank, (${expr})::text AS sort_key
    ${fromWhere(
      viewer,
      c,
      sql`JOIN products p ON p.id = b.product_id
      JOIN versions v ON v.id = b.version_id
      JOIN components co ON co.id = b.component_id
      JOIN users r ON r.id = b.reporter_id
      LEFT JOIN users a ON a.id = b.assignee_id`,
      keyset,
    )}
    ORDER BY ${expr} ${dir}, b.id ${dir}
    LIMIT ${limit}`);
}

/** Exact count of matching bugs, with counts per status and per product when `facets` is set. */
export async function aggregate(
  db: Queryable,
  viewer: Viewer,
  c: Compiled,
  facets: boolean,
): Promise<{ total: number; status: Map<string, number>; product: Map<number, number> }> {
  if (!facets) {
    const rows = await db.query<{ n: number }>(sql`SELECT count(*)::int AS n ${fromWhere(viewer, c)}`);
    return { total: rows[0]!.n, status: new Map(), product: new Map() };
  }
  const rows = await db.query<{
    status: string | null;
    product_id: number | null;
    by: number;
    n: number;
  }>(sql`
    SELECT b.status, b.product_id, GROUPING(b.status)::int AS by, count(*)::int AS n
    ${fromWhere(viewer, c)}
    GROUP BY GROUPING SETS ((b.status), (b.product_id))`);
  const status = new Map<string, number>();
  const product = new Map<number, number>();
  let total = 0;
  for (const r of rows) {
    if (r.by === 0) {
      status.set(r.status!, r.n);
      total += r.n;
    } else product.set(r.product_id!, r.n);
  }
  return { total, status, product };
}

/** Start and stop marks of highlighted words in snippets (private-use characters, never typed text). */
export const MARK_START = '\uE000';
export const MARK_STOP = '\uE001';

/**
 * Highlighted excerpts of the text of these bugs matching the query: summary, description and the
 * comments the viewer may read. Bugs the viewer may not see yield nothing.
 */
export async function snippets(
  db: Queryable,
  viewer: Viewer,
  tsquery: string,
  ids: number[],
): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: number; snippet: string }>(sql`
    SELECT b.id, ts_headline('english',
             concat_ws(' … ', b.summary, nullif(b.description, ''),
               (SELECT string_agg(cm.body, ' … ' ORDER BY cm.id) FROM comments cm
                WHERE cm.bug_id = b.id AND ${visibleComments(viewer, 'cm')})),
             ${tsquery}::tsquery,
             ${`StartSel=${MARK_START}, StopSel=${MARK_STOP}, MaxWords=35, MinWords=15`}
           ) AS snippet
    FROM bugs b WHERE b.id = ANY(${ids}::int[]) AND ${visibleBugs(viewer, 'b')}`);
  return new Map(rows.map((r) => [r.id, r.snippet]));
}

/** Whether the viewer may see bug `id` (the search box jumps to a bug number only then). */
export async function visibleBug(db: Queryable, viewer: Viewer, id: number): Promise<boolean> {
  const rows = await db.query(sql`SELECT 1 FROM bugs b WHERE b.id = ${id} AND ${visibleBugs(viewer, 'b')}`);
  return rows.length > 0;
}

/** Names of products by id (for the product facet). */
export async function productNames(db: Queryable, ids: number[]): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: number; name: string }>(
    sql`SELECT id, name FROM products WHERE id = ANY(${ids}::int[])`,
  );
  return new Map(rows.map((r) => [r.id, r.name]));
}

/** A bug with a summary like the one being typed. */
export interface SimilarRow {
  id: number;
  summary: string;
  status: string;
  resolution: string | null;
  score: number;
}

/** Up to `limit` visible bugs of a product whose summaries are most like `summary` (trigram similarity). */
export function similar(
  db: Queryable,
  viewer: Viewer,
  productId: number,
  summary: string,
  limit: number,
): Promise<SimilarRow[]> {
  return db.query<SimilarRow>(sql`
    SELECT b.id, b.summary, b.status, b.resolution,
           ((similarity(b.summary, ${summary}) + word_similarity(${summary}, b.summary)) / 2)::float8 AS score
    FROM bugs b
    WHERE b.product_id = ${productId} AND (b.summary % ${summary} OR ${summary} <% b.summary)
      AND ${visibleBugs(viewer, 'b')}
    ORDER BY score DESC, b.id DESC
    LIMIT ${limit}`);
}

/** A saved search as stored. */
export interface SavedSearchRow {
  id: number;
  owner_id: number;
  owner_name: string;
  name: string;
  query: string;
  shared: boolean;
  created_at: Date;
  updated_at: Date;
}

const savedSelect = sql`
  SELECT s.id, s.owner_id, u.name AS owner_name, s.name, s.query, s.shared, s.created_at, s.updated_at
  FROM saved_searches s JOIN users u ON u.id = s.owner_id`;

/** The user's own saved searches and those others shared, own first, by name. */
export function listSaved(db: Queryable, userId: number): Promise<SavedSearchRow[]> {
  return db.query<SavedSearchRow>(sql`${savedSelect}
    WHERE s.owner_id = ${userId} OR s.shared
    ORDER BY (s.owner_id = ${userId}) DESC, lower(s.name), s.id
    LIMIT 500`);
}

/** One saved search the user may read (their own, or shared); undefined otherwise. */
export async function getSaved(
  db: Queryable,
  userId: number,
  id: number,
): Promise<SavedSearchRow | undefined> {
  const rows = await db.query<SavedSearchRow>(
    sql`${savedSelect} WHERE s.id = ${id} AND (s.owner_id = ${userId} OR s.shared)`,
  );
  return rows[0];
}

export async function insertSaved(
  db: Queryable,
  s: { ownerId: number; name: string; query: string; shared: boolean },
): Promise<number> {
  const rows = await db.query<{ id: number }>(sql`
    INSERT INTO saved_searches (owner_id, name, query, shared)
    VALUES (${s.ownerId}, ${s.name}, ${s.query}, ${s.shared}) RETURNING id`);
  return rows[0]!.id;
}

/** Changes the user's own saved search; false when they own none with that id. */
export async function updateSaved(
  db: Queryable,
  ownerId: number,
  id: number,
  s: { name?: string | undefined; query?: string | undefined; shared?: boolean | undefined },
): Promise<boolean> {
  const sets: Sql[] = [sql`updated_at = now()`];
  if (s.name !== undefined) sets.push(sql`name = ${s.name}`);
  if (s.query !== undefined) sets.push(sql`query = ${s.query}`);
  if (s.shared !== undefined) sets.push(sql`shared = ${s.shared}`);
  const rows = await db.query(sql`
    UPDATE saved_searches SET ${join(sets, ', ')} WHERE id = ${id} AND owner_id = ${ownerId} RETURNING id`);
  return rows.length > 0;
}

/** Deletes the user's own saved search; false when they own none with that id. */
export async function deleteSaved(db: Queryable, ownerId: number, id: number): Promise<boolean> {
  const rows = await db.query(
    sql`DELETE FROM saved_searches WHERE id = ${id} AND owner_id = ${ownerId} RETURNING id`,
  );
  return rows.length > 0;
}
