/**
 * Search commands: run a query (results, exact total, facets, snippets, keyset cursor) and suggest
 * similar bugs while filing (CSV: csv.ts; saved searches: saved.ts). Every read takes the Viewer first and
 * filters through the access predicates inside its SQL (see repository.ts).
 */
import { createHash } from 'node:crypto';
import { canSeeBug, type Viewer } from '../access/index.ts';
import { type BugCache, workflow } from '../bugs/index.ts';
import type { Queryable } from '../platform/db.ts';
import { invalid } from '../platform/errors.ts';
import { compile, type IdFilters } from './filter.ts';
import { type ParsedQuery, parseQuery, type Sort } from './query.ts';
import * as repo from './repository.ts';

/** What to search for and which page of it. */
export interface SearchInput {
  /** The query text in the search language ('' for everything). */
  q: string;
  /** Filters by id beside the text (the bug list's selects, the API's parameters). */
  ids?: IdFilters | undefined;
  /** Overrides the query's own `sort:`. */
  sort?: Sort | undefined;
  cursor?: string | undefined;
  limit: number;
  facets: boolean;
}

/** A result row with its highlighted excerpt (HTML: text escaped, matches in <mark>). */
export type SearchRow = repo.ResultRow & { snippet: string | null };

/** What a search answers. */
export interface SearchResult {
  /** The query is one bug number the viewer may see: go there. */
  jumpTo?: number | undefined;
  rows: SearchRow[];
  total: number;
  facets?: {
    status: { name: string; count: number }[];
    product: { id: number; name: string; count: number }[];
  };
  nextCursor: string | null;
  sort: Sort;
  parsed: ParsedQuery;
}

const MAX_ID = 2147483647;

/** The sort a search uses: asked for, else the query's, else relevance for text and newest first otherwise. */
export function effectiveSort(input: SearchInput, parsed: ParsedQuery, hasText: boolean): Sort {
  const sort = input.sort ?? parsed.sort;
  if (sort && (sort.column !== 'relevance' || hasText)) return sort;
  return hasText ? { column: 'relevance', dir: 'desc' } : { column: 'id', dir: 'desc' };
}

/** A fingerprint of what a cursor belongs to, so a cursor of another query is refused, not misread. */
function signature(input: SearchInput, sort: Sort): string {
  return createHash('sha256')
    .update(JSON.stringify([input.q.trim(), input.ids ?? {}, sort]))
    .digest('base64url')
    .slice(0, 12);
}

function encodeCursor(after: repo.After, sig: string): string {
  return Buffer.from(JSON.stringify({ k: after.key, i: after.id, s: sig })).toString('base64url');
}

function decodeCursor(cursor: string | undefined, sig: string, sort: Sort): repo.After | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let parsed: { k?: unknown; i?: unknown; s?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid('cursor is not one this server handed out', 'cursor');
  }
  if (
    typeof parsed?.k !== 'string' ||
    parsed.k.length > 300 ||
    typeof parsed.i !== 'number' ||
    !Number.isInteger(parsed.i) ||
    parsed.i < 1 ||
    parsed.i > MAX_ID
  ) {
    throw invalid('cursor is not one this server handed out', 'cursor');
  }
  if (parsed.s !== sig) {
    throw invalid('cursor belongs to another query or sort order; start again from the first page', 'cursor');
  }
  // The fingerprint is no secret: the key is checked against the sort column's type before it reaches SQL.
  const type = keyType(sort.column);
  if (!KEY_SHAPE[type].test(parsed.k) || (type === 'integer' && Math.abs(Number(parsed.k)) > MAX_ID)) {
    throw invalid('cursor is not one this server handed out', 'cursor');
  }
  return { key: parsed.k, id: parsed.i };
}

const KEY_SHAPE = {
  integer: /^-?\d{1,10}$/,
  timestamptz: /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:\d{2})?|Z)?$/,
  text: /^/s,
};

function keyType(column: Sort['column']): keyof typeof KEY_SHAPE {
  switch (column) {
    case 'id':
    case 'severity':
    case 'relevance': // the relevance tier (1-3), or the bug number without words
      return 'integer';
    case 'created':
    case 'changed':
      return 'timestamptz';
    default:
      return 'text';
  }
}

/** Escapes text for HTML and turns the snippet marks into <mark> elements. */
export function snippetHtml(raw: string): string {
  return raw
    .replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
    .replaceAll(repo.MARK_START, '<mark>')
    .replaceAll(repo.MARK_STOP, '</mark>');
}

/**
 * Parses and compiles a query. A query that is one bug number the viewer may see selects that bug (and
 * tells the caller to jump there); a number that is no visible bug is searched for as text, like any
 * other word, so the answer says nothing about bugs the viewer may not see.
 */
export async function prepare(db: Queryable, viewer: Viewer, q: string, ids: IdFilters | undefined) {
  let parsed = parseQuery(q);
  let jumpTo: number | undefined;
  if (parsed.bugNumber !== undefined) {
    const n = parsed.bugNumber;
    if (await repo.visibleBug(db, viewer, n)) jumpTo = n;
    parsed = parseQuery(jumpTo ? `id:${n}` : `"${n}"`);
  }
  return { parsed, jumpTo, compiled: await compile(db, viewer, parsed, ids) };
}

/**
 * The rows of a page: chosen (and ordered) in SQL through the visibility predicate, their fields taken
 * from the bug cache; duplicate_of only when the viewer may see the original too.
 */
async function cachedRows(
  db: Queryable,
  cache: BugCache,
  viewer: Viewer,
  keys: repo.PageKey[],
): Promise<repo.ResultRow[]> {
  const entries = await cache.getMany(
    db,
    keys.map((k) => k.id),
  );
  const originals = entries.flatMap((e) => (e.bug.duplicate_of === null ? [] : [e.bug.duplicate_of]));
  const visibleOriginals = new Set(
    (await cache.getMany(db, originals)).filter((o) => canSeeBug(viewer, o.facts)).map((o) => o.bug.id),
  );
  const byId = new Map(entries.map((e) => [e.bug.id, e.bug]));
  return keys.flatMap((k) => {
    const b = byId.get(k.id);
    if (!b) return [];
    return [
      {
        id: b.id,
        summary: b.summary,
        product_id: b.product_id,
        product: b.product,
        version_id: b.version_id,
        version: b.version,
        component_id: b.component_id,
        component: b.component,
        status: b.status,
        resolution: b.resolution,
        severity: b.severity,
        priority: b.priority,
        reporter_id: b.reporter_id,
        reporter_name: b.reporter_name,
        assignee_id: b.assignee_id,
        assignee_name: b.assignee_name,
        confidential: b.confidential,
        duplicate_of: b.duplicate_of !== null && visibleOriginals.has(b.duplicate_of) ? b.duplicate_of : null,
        created_at: b.created_at,
        changed_at: b.changed_at,
        row_version: b.row_version,
        rank: k.rank,
        sort_key: k.sort_key,
      },
    ];
  });
}

/**
 * Parses, compiles and runs a search for `viewer`. With the bug cache, the page's SQL selects only ids
 * and the rows come from the cache; without it (a script, the CSV export), one statement reads them.
 */
export async function search(
  db: Queryable,
  viewer: Viewer,
  input: SearchInput,
  cache?: BugCache,
): Promise<SearchResult> {
  const { parsed: effective, jumpTo, compiled } = await prepare(db, viewer, input.q, input.ids);
  const sort = effectiveSort(input, effective, compiled.tsquery !== undefined);
  const sig = signature(input, sort);
  const after = decodeCursor(input.cursor, sig, sort);
  // The rows of a page and their snippets, side by side: both need only the page's ids. Snippets are
  // made for every row read (limit + 1), so the page has its snippets even if a row was deleted meanwhile.
  const rowsAndMarks = (keys: repo.PageKey[]) =>
    Promise.all([
      cache ? cachedRows(db, cache, viewer, keys) : repo.rowsOf(db, viewer, keys),
      compiled.tsquery
        ? repo.snippets(
            db,
            viewer,
            compiled.tsquery,
            keys.map((k) => k.id),
          )
        : new Map<number, string>(),
    ]);
  let rows: repo.ResultRow[];
  let marks: Map<number, string>;
  let agg: repo.Aggregate;
  if (compiled.tsquery !== undefined && repo.twinAnswers(compiled, sort)) {
    // Words with counted filters only: one pass over the matches gives the page, total and facets.
    const found = await repo.twinSearch(
      db,
      viewer,
      { ...compiled, tsquery: compiled.tsquery },
      sort,
      input.limit + 1,
      after,
      input.facets,
    );
    agg = found.agg;
    [rows, marks] = await rowsAndMarks(found.keys);
  } else {
    [[rows, marks], agg] = await Promise.all([
      repo.pageKeys(db, viewer, compiled, sort, input.limit + 1, after).then(rowsAndMarks),
      repo.aggregate(db, viewer, compiled, input.facets),
    ]);
  }
  const pageRows = rows.slice(0, input.limit);
  const last = pageRows.at(-1);
  let facets: SearchResult['facets'];
  if (input.facets) {
    const [w, names] = await Promise.all([workflow(db), repo.productNames(db, [...agg.product.keys()])]);
    facets = {
      status: w.statuses
        .filter((s) => agg.status.has(s.name))
        .map((s) => ({ name: s.name, count: agg.status.get(s.name)! })),
      product: [...agg.product]
        .map(([id, count]) => ({ id, name: names.get(id) ?? String(id), count }))
        .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)),
    };
  }
  return {
    jumpTo,
    rows: pageRows.map((r) => {
      const s = marks.get(r.id);
      return { ...r, snippet: s === undefined ? null : snippetHtml(s) };
    }),
    total: agg.total,
    facets,
    nextCursor:
      rows.length > input.limit && last ? encodeCursor({ key: last.sort_key, id: last.id }, sig) : null,
    sort,
    parsed: effective,
  };
}

/** Up to five visible bugs of the product with summaries like the one being typed. */
export async function similarBugs(
  db: Queryable,
  viewer: Viewer,
  productId: number,
  summary: string,
): Promise<repo.SimilarRow[]> {
  const s = summary.replace(/\s+/g, ' ').trim();
  if (s.length < 3) return [];
  return repo.similar(db, viewer, productId, s, 5);
}
