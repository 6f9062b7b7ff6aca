/**
 * SQL of the search module. Every statement that reads bugs carries the access module's predicate in
 * its own WHERE clause: results, counts, facets, snippets, suggestions and CSV rows are never filtered
 * after a LIMIT.
 *
 * Three sources answer a search, all exact (see docs/search.md, "Performance"):
 * - `bugs` (joined to `bug_text` for words): any query;
 * - `bug_counts` (migration 007): totals and facets of a query without words whose filters read only
 *   the counted columns (product, version, status, severity, confidential);
 * - `bug_text` alone, whose rows carry copies of those columns and of the reporter: totals, facets and
 *   relevance-ordered pages of such a query with words.
 * The visibility predicate is applied to the rows of each as to bugs with the same facts.
 */
import { isStaff, type Viewer, visibleBugs, visibleComments } from '../access/index.ts';
import { join, type Queryable, type Sql, sql } from '../platform/db.ts';
import { type Compiled, severityRank, textMatch } from './filter.ts';
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

/**
 * The text query with every word restricted to lexemes of these weights: `A` is the summary, `AB` the
 * summary and the description (bug_text.doc's weights, migrations 004 and 009). Operands print as
 * `'lexeme'` (quotes doubled inside), optionally followed by `:*` and weights; those are replaced.
 */
export function weightedQuery(tsquery: string, weights: 'A' | 'AB'): string {
  return tsquery.replace(
    /'((?:[^']|'')*)'(?::(\*?)[A-D]*)?/g,
    (_all, lexeme: string, star: string | undefined) => `'${lexeme}':${star ?? ''}${weights}`,
  );
}

/**
 * Relevance is where the words are found: in the summary (3), else in the summary and description
 * together (2), else anywhere, comments included (1); newest first within each tier. Each is a weighted
 * query over the document the match is read from anyway: no ranking function runs, nothing is copied.
 */
function tierExpr(tsquery: string): Sql {
  return sql`(CASE WHEN t.doc @@ ${weightedQuery(tsquery, 'A')}::tsquery THEN 3
                   WHEN t.doc @@ ${weightedQuery(tsquery, 'AB')}::tsquery THEN 2 ELSE 1 END)`;
}

/** The SQL of each sort column, and the type its key is compared as. */
function sortExpr(column: SortColumn, tsquery: string | undefined): { expr: Sql; type: Sql } {
  switch (column) {
    case 'relevance':
      return tsquery
        ? { expr: tierExpr(tsquery), type: sql`integer` }
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

/**
 * bug_text as the narrow twin of bugs (migration 007): `b` has the bug's id, reporter and counted
 * columns, copied in the transaction of every change, so the visibility predicate and the counted
 * filters read it as they read bugs.
 */
const TEXT_AS_BUGS = sql`bug_text t CROSS JOIN LATERAL (
    SELECT t.bug_id AS id, t.product_id, t.version_id, t.status, t.severity, t.confidential, t.reporter_id) b`;

/**
 * FROM and WHERE of a search: the bugs (and their text) the viewer may see that match. `twin`: read
 * bug_text alone (only for a query with words whose conditions are all counted ones).
 */
function fromWhere(
  viewer: Viewer,
  c: Compiled,
  opts: { joins?: Sql; extra?: Sql[]; twin?: boolean } = {},
): Sql {
  const conds = [visibleBugs(viewer, 'b'), ...c.conds, ...(opts.extra ?? [])];
  if (c.tsquery) conds.push(textMatch(viewer, { ...c, tsquery: c.tsquery }), ...(c.textConds ?? []));
  const from = opts.twin
    ? TEXT_AS_BUGS
    : c.tsquery
      ? sql`bugs b JOIN bug_text t ON t.bug_id = b.id`
      : sql`bugs b`;
  return sql`FROM ${from} ${opts.joins ?? sql``} WHERE ${join(conds, ' AND ')}`;
}

/**
 * Whether bug_text alone answers this search, page and counts in one pass over the matches: it has
 * words, only counted conditions, and is in relevance or bug number order.
 */
export function twinAnswers(c: Compiled, sort: Sort): boolean {
  return (
    c.tsquery !== undefined && c.counted === true && (sort.column === 'relevance' || sort.column === 'id')
  );
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

/** The relevance tier of each of these bugs for the text query (for rows listed in another order). */
async function tiersOf(db: Queryable, tsquery: string, ids: number[]): Promise<Map<number, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: number; tier: number }>(sql`
    SELECT t.bug_id AS id, ${tierExpr(tsquery)} AS tier FROM bug_text t WHERE t.bug_id = ANY(${ids}::int[])`);
  return new Map(rows.map((r) => [r.id, r.tier]));
}

/**
 * One page of matching bug ids in the sort's order, starting after `after`: a small statement (only the
 * join the sort needs), quick to plan; the rows themselves come from the bug cache. The rank (the
 * relevance tier) of rows in another order is worked out for the page's rows only.
 */
export async function pageKeys(
  db: Queryable,
  viewer: Viewer,
  c: Compiled,
  sort: Sort,
  limit: number,
  after: After | undefined,
): Promise<PageKey[]> {
  const { expr, type } = sortExpr(sort.column, c.tsquery);
  const dir = sort.dir === 'asc' ? sql`ASC` : sql`DESC`;
  const byTier = c.tsquery !== undefined && sort.column === 'relevance';
  const keys = await db.query<PageKey>(sql`
    SELECT b.id, ${byTier ? expr : sql`NULL`}::real AS rank, (${expr})::text AS sort_key
    ${fromWhere(viewer, c, { joins: sortJoin(sort.column), extra: keysetCond(sort, expr, type, after) })}
    ORDER BY ${expr} ${dir}, b.id ${dir}
    LIMIT ${limit}`);
  if (c.tsquery !== undefined && !byTier) {
    const tiers = await tiersOf(
      db,
      c.tsquery,
      keys.map((k) => k.id),
    );
    for (const k of keys) k.rank = tiers.get(k.id) ?? null;
  }
  return keys;
}

/** The shard values of bug_text's text indexes (migration 010): (bug_id >> 16) & 3. */
const SHARDS = [0, 1, 2, 3];

/** The shards split among `width` statements: four statements when there may be four, else two. */
export function shardGroups(width: number): number[][] {
  const n = width >= 4 ? 4 : 2;
  return Array.from({ length: n }, (_, i) => SHARDS.filter((v) => v % n === i));
}

/** Bugs of these shards, in the form the text indexes answer (the same expression as migration 010). */
function shardCond(shards: number[]): Sql {
  return sql`ARRAY[(t.bug_id >> 16) & 3] && ${shards}::int[]`;
}

/**
 * A page and the counts of a query bug_text alone answers (twinAnswers): one pass over the matches,
 * kept in memory, gives the page in relevance (or bug number) order after the cursor, the exact total
 * and the facets.
 */
export async function twinSearch(
  db: Queryable,
  viewer: Viewer,
  c: Compiled & { tsquery: string },
  sort: Sort,
  limit: number,
  after: After | undefined,
  facets: boolean,
): Promise<{ keys: PageKey[]; agg: Aggregate }> {
  const byTier = sort.column === 'relevance';
  const tier = byTier ? tierExpr(c.tsquery) : sql`NULL::integer`;
  const dir = sort.dir === 'asc' ? sql`ASC` : sql`DESC`;
  const key = byTier ? sql`m.tier` : sql`m.id`;
  const keyset = !after
    ? sql`TRUE`
    : sort.dir === 'asc'
      ? sql`(${key}, m.id) > (${after.key}::text::integer, ${after.id}::integer)`
      : sql`(${key}, m.id) < (${after.key}::text::integer, ${after.id}::integer)`;
  const counts = facets
    ? sql`SELECT 1 AS part, NULL::integer AS id, NULL::integer AS tier, m.status, m.product_id,
                 GROUPING(m.status)::int AS by, count(*)::int AS n
          FROM m GROUP BY GROUPING SETS ((m.status), (m.product_id))`
    : sql`SELECT 1, NULL, NULL, NULL, NULL, 1, count(*)::int FROM m`;
  const statement = (extra: Sql[]) => sql`
    WITH m AS MATERIALIZED (
      SELECT b.id, b.status, b.product_id, ${tier} AS tier ${fromWhere(viewer, c, { twin: true, extra })}
    )
    (SELECT 0 AS part, m.id, m.tier, NULL::text AS status, NULL::integer AS product_id, 0 AS by, 0 AS n
     FROM m WHERE ${keyset} ORDER BY ${key} ${dir}, m.id ${dir} LIMIT ${limit})
    UNION ALL (${counts})`;
  type Row = {
    part: number;
    id: number | null;
    tier: number | null;
    status: string | null;
    product_id: number | null;
    by: number;
    n: number;
  };
  // With connections to spare, the matches are read by statements that each take some of the shards
  // (migration 010), at once and in one snapshot: each reads its matching bugs' pages, the page is the
  // best of theirs and the counts are their sums.
  const parallel = db.parallel;
  const rows = parallel
    ? (await parallel.run<Row>(shardGroups(parallel.width).map((g) => statement([shardCond(g)])))).flat()
    : await db.query<Row>(statement([]));
  const keys: PageKey[] = [];
  const agg: Aggregate = { total: 0, status: new Map(), product: new Map() };
  const add = <K>(m: Map<K, number>, k: K, n: number) => m.set(k, (m.get(k) ?? 0) + n);
  for (const r of rows) {
    if (r.part === 0) {
      keys.push({ id: r.id!, rank: r.tier, sort_key: String(byTier ? r.tier : r.id) });
    } else if (!facets) agg.total += r.n;
    else if (r.by === 0) {
      add(agg.status, r.status!, r.n);
      agg.total += r.n;
    } else add(agg.product, r.product_id!, r.n);
  }
  // In the page's order (the UNION keeps it in practice; this makes it certain).
  const sign = sort.dir === 'asc' ? 1 : -1;
  keys.sort((x, y) => sign * (Number(x.sort_key) - Number(y.sort_key) || x.id - y.id));
  keys.splice(limit);
  if (!byTier) {
    const tiers = await tiersOf(
      db,
      c.tsquery,
      keys.map((k) => k.id),
    );
    for (const k of keys) k.rank = tiers.get(k.id) ?? null;
  }
  return { keys, agg };
}

/** One page of matching bugs with their fields, in the sort's order, starting after `after` (CSV). */
export async function page(
  db: Queryable,
  viewer: Viewer,
  c: Compiled,
  sort: Sort,
  limit: number,
  after: After | undefined,
): Promise<ResultRow[]> {
  return rowsOf(db, viewer, await pageKeys(db, viewer, c, sort, limit, after));
}

/** The listed fields of the bugs of a page, in its order (those the viewer may see). */
export async function rowsOf(db: Queryable, viewer: Viewer, keys: PageKey[]): Promise<ResultRow[]> {
  if (keys.length === 0) return [];
  const rows = await db.query<Omit<ResultRow, 'rank' | 'sort_key'>>(sql`
    SELECT b.id, b.summary, b.product_id, p.name AS product, b.version_id, v.name AS version,
           b.component_id, co.name AS component, b.status, b.resolution, b.severity, b.priority,
           b.reporter_id, r.name AS reporter_name, b.assignee_id, a.name AS assignee_name, b.confidential,
           CASE WHEN b.duplicate_of IS NOT NULL AND EXISTS (
                  SELECT 1 FROM bugs d WHERE d.id = b.duplicate_of AND ${visibleBugs(viewer, 'd')})
                THEN b.duplicate_of END AS duplicate_of,
           b.created_at, b.changed_at, b.row_version
    FROM bugs b
    JOIN products p ON p.id = b.product_id
    JOIN versions v ON v.id = b.version_id
    JOIN components co ON co.id = b.component_id
    JOIN users r ON r.id = b.reporter_id
    LEFT JOIN users a ON a.id = b.assignee_id
    WHERE b.id = ANY(${keys.map((k) => k.id)}::int[]) AND ${visibleBugs(viewer, 'b')}`);
  const byId = new Map(rows.map((r) => [r.id, r]));
  return keys.flatMap((k) => {
    const r = byId.get(k.id);
    return r ? [{ ...r, rank: k.rank, sort_key: k.sort_key }] : [];
  });
}

/** What a count answers: the total, and per status and per product when asked for. */
export interface Aggregate {
  total: number;
  status: Map<string, number>;
  product: Map<number, number>;
}

/**
 * The counted rows (bug_counts) as `b`, each standing for `n` bugs with those facts. id and reporter
 * are NULL: the visibility predicate holds for a row exactly when it holds for a bug with those facts
 * that the viewer neither reported nor is on the CC list of.
 */
const COUNTS_AS_BUGS = sql`(SELECT c.product_id, c.version_id, c.status, c.severity, c.confidential, c.n,
    NULL::integer AS id, NULL::integer AS reporter_id FROM bug_counts c) b`;

/**
 * The bugs a viewer sees beyond the counted rows: those visible to them, but not to a viewer who
 * neither reported them nor is on their CC list. By the visibility rule (src/access/visibility.ts)
 * such bugs are among those they reported (read from bugs_reporter_search_idx alone) or are on the CC
 * list of. test/search-counts.test.ts checks the sum against counting the bugs for every kind of viewer.
 */
function personalBugs(viewer: Viewer, c: Compiled): Sql {
  const id = viewer.kind === 'user' ? viewer.id : 0;
  const anon = sql`CROSS JOIN LATERAL (
      SELECT b.confidential, b.version_id, NULL::integer AS id, NULL::integer AS reporter_id) anon`;
  const where = sql`${join([visibleBugs(viewer, 'b'), ...c.conds], ' AND ')}
      AND (${visibleBugs(viewer, 'anon')}) IS NOT TRUE`;
  return sql`
    SELECT b.status, b.product_id, 1 FROM bugs b ${anon} WHERE b.reporter_id = ${id} AND ${where}
    UNION ALL
    SELECT b.status, b.product_id, 1 FROM bug_cc cc JOIN bugs b ON b.id = cc.bug_id ${anon}
    WHERE cc.user_id = ${id} AND b.reporter_id <> ${id} AND ${where}`;
}

/** Exact count of matching bugs, with counts per status and per product when `facets` is set. */
export async function aggregate(
  db: Queryable,
  viewer: Viewer,
  c: Compiled,
  facets: boolean,
): Promise<Aggregate> {
  let source: Sql;
  if (c.tsquery === undefined && c.counted) {
    const counted = sql`SELECT b.status, b.product_id, b.n
      FROM ${COUNTS_AS_BUGS} WHERE ${join([visibleBugs(viewer, 'b'), ...c.conds], ' AND ')}`;
    source = isStaff(viewer) ? counted : sql`${counted} UNION ALL ${personalBugs(viewer, c)}`;
  } else {
    const twin = c.tsquery !== undefined && c.counted === true;
    source = sql`SELECT b.status, b.product_id, 1 AS n ${fromWhere(viewer, c, { twin })}`;
  }
  if (!facets) {
    const rows = await db.query<{ n: number }>(
      sql`SELECT coalesce(sum(m.n), 0)::int AS n FROM (${source}) m`,
    );
    return { total: rows[0]!.n, status: new Map(), product: new Map() };
  }
  const rows = await db.query<{
    status: string | null;
    product_id: number | null;
    by: number;
    n: number;
  }>(sql`
    SELECT m.status, m.product_id, GROUPING(m.status)::int AS by, sum(m.n)::int AS n
    FROM (${source}) m
    GROUP BY GROUPING SETS ((m.status), (m.product_id))
    HAVING sum(m.n) > 0`);
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
  // ts_headline parses each bug's whole text (~0.1 ms a bug): with connections to spare, the page's
  // bugs are split among statements run at once (no shared snapshot needed: each excerpt stands alone).
  const width = ids.length >= 8 ? (db.parallel?.width ?? 1) : 1;
  const size = Math.ceil(ids.length / width);
  const parts = await Promise.all(
    Array.from({ length: width }, (_, i) =>
      headlines(db, viewer, tsquery, ids.slice(i * size, (i + 1) * size)),
    ),
  );
  return new Map(parts.flat().map((r) => [r.id, r.snippet]));
}

async function headlines(
  db: Queryable,
  viewer: Viewer,
  tsquery: string,
  ids: number[],
): Promise<{ id: number; snippet: string }[]> {
  if (ids.length === 0) return [];
  return db.query<{ id: number; snippet: string }>(sql`
    SELECT b.id, ts_headline('english',
             concat_ws(' … ', b.summary, nullif(b.description, ''),
               (SELECT string_agg(cm.body, ' … ' ORDER BY cm.id) FROM comments cm
                WHERE cm.bug_id = b.id AND ${visibleComments(viewer, 'cm')})),
             ${tsquery}::tsquery,
             ${`StartSel=${MARK_START}, StopSel=${MARK_STOP}, MaxWords=35, MinWords=15`}
           ) AS snippet
    FROM bugs b WHERE b.id = ANY(${ids}::int[]) AND ${visibleBugs(viewer, 'b')}`);
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
