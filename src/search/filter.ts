/**
 * Turns a parsed query into SQL conditions over `bugs b` (and the text query over `bug_text t`).
 * Names typed by the viewer (products, versions, components, statuses…) are checked against what the
 * viewer may see, so a typo is a QueryError at its position, and an invisible product reads exactly like
 * one that does not exist. Every condition is parameterised.
 */
import { isStaff, type Viewer, visibleComments } from '../access/index.ts';
import { workflow } from '../bugs/index.ts';
import { join, type Queryable, raw, type Sql, sql } from '../platform/db.ts';
import { listProducts } from '../products/index.ts';
import {
  closest,
  type DateRange,
  type HistoryField,
  type ListField,
  type ParsedQuery,
  QueryError,
  type Span,
  type Term,
  type Value,
} from './query.ts';

/** Severities, most severe first (the CHECK constraint of bugs.severity). */
export const SEVERITIES = ['blocker', 'critical', 'major', 'normal', 'minor', 'trivial', 'enhancement'];
/** Priorities, most urgent first. */
export const PRIORITIES = ['P1', 'P2', 'P3', 'P4', 'P5'];

/** Filters given by id (the bug list page's selects, the API's parameters), beside the query text. */
export interface IdFilters {
  productIds?: number[] | undefined;
  versionIds?: number[] | undefined;
  componentIds?: number[] | undefined;
  statuses?: string[] | undefined;
  reporterIds?: number[] | undefined;
  assigneeIds?: number[] | undefined;
}

/** What the query compiles to. */
export interface Compiled {
  /** Conditions over `bugs b`, ANDed (the visibility predicate is added by the caller). */
  conds: Sql[];
  /** The text query as a tsquery literal, when the query searches text. */
  tsquery?: string | undefined;
  /** Whether the text query negates a word (then matching is not monotone in the document). */
  negatedText?: boolean;
  /**
   * Whether every condition reads only the counted columns (product, version, status, severity,
   * confidential): then totals and facets come from bug_counts, or from bug_text's copies of those
   * columns when the query has text, instead of the bugs table (repository.ts).
   */
  counted?: boolean;
  /**
   * Conditions over `bug_text t` that some of `conds` imply (product and status, read from bug_text's
   * copies of them): the text index holds those columns too (migration 009), so a search with words
   * visits only the documents that also pass these filters.
   */
  textConds?: Sql[];
}

/** The list fields whose conditions read only the counted columns. */
const COUNTED_FIELDS: ReadonlySet<string> = new Set([
  'product',
  'version',
  'status',
  'severity',
  'confidential',
]);

/**
 * The text condition over `bug_text t` for the documents the viewer may search: staff also match private
 * comments (the rule of visibleComments). A query without negated words matches `doc || private_doc`
 * whenever it matches `doc`, so the simpler form is exact and the indexes answer it without a recheck.
 */
export function textMatch(viewer: Viewer, c: Compiled & { tsquery: string }): Sql {
  const q = c.tsquery;
  if (!isStaff(viewer)) return sql`t.doc @@ ${q}::tsquery`;
  return c.negatedText
    ? sql`((t.private_doc IS NULL AND t.doc @@ ${q}::tsquery)
          OR (t.private_doc IS NOT NULL AND (t.doc || t.private_doc) @@ ${q}::tsquery))`
    : sql`(t.doc @@ ${q}::tsquery OR (t.private_doc IS NOT NULL AND (t.doc || t.private_doc) @@ ${q}::tsquery))`;
}

const negate = (negated: boolean, cond: Sql) => (negated ? sql`(${cond}) IS NOT TRUE` : cond);

function rangeCond(col: Sql, r: DateRange): Sql {
  if (r.from && r.to && r.from.getTime() === r.to.getTime())
    return sql`${col} = ${r.from.toISOString()}::timestamptz`;
  const parts: Sql[] = [];
  if (r.from) parts.push(sql`${col} >= ${r.from.toISOString()}::timestamptz`);
  if (r.to) parts.push(sql`${col} < ${r.to.toISOString()}::timestamptz`);
  return parts.length ? join(parts, ' AND ') : sql`TRUE`;
}

function unknownValue(what: string, v: Value, known: readonly string[], listAll = true): never {
  const near = closest(v.text, known);
  const list = listAll && known.length <= 12 ? `; one of ${known.join(', ')}` : '';
  throw new QueryError(`unknown ${what} "${v.text}"${near ? `; did you mean ${near}?` : list}`, v.span);
}

/** Users named by `me`, an id, an e-mail address or a name; unknown users simply match nobody. */
function userIds(viewer: Viewer, values: Value[]): { ids: number[]; names: string[]; none: boolean } {
  const ids: number[] = [];
  const names: string[] = [];
  let none = false;
  for (const v of values) {
    const t = v.text.toLowerCase();
    if (t === 'me') {
      if (viewer.kind !== 'user') throw new QueryError('"me" needs you to sign in', v.span);
      ids.push(viewer.id);
    } else if (t === 'none' || t === 'nobody') none = true;
    else if (/^\d{1,10}$/.test(t) && Number(t) <= 2147483647) ids.push(Number(t));
    else names.push(t);
  }
  return { ids, names, none };
}

function userSet(u: { ids: number[]; names: string[] }): Sql {
  return sql`(SELECT uu.id FROM users uu WHERE uu.id = ANY(${u.ids}::int[])
              OR lower(uu.email) = ANY(${u.names}::text[]) OR lower(uu.name) = ANY(${u.names}::text[]))`;
}

/** A LIKE pattern matching `s` anywhere, with LIKE's wildcards escaped. */
const contains = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** Compiles a parsed query and the id filters for `viewer`. */
export async function compile(
  db: Queryable,
  viewer: Viewer,
  query: ParsedQuery,
  ids: IdFilters = {},
): Promise<Compiled> {
  const conds: Sql[] = [];
  const textConds: Sql[] = [];
  const statusesInIndex = (names: string[]) => sql`ARRAY[t.status] && ${names}::text[]`;
  const productsInIndex = (ids: number[]) => sql`ARRAY[t.product_id] && ${ids}::int[]`;
  let counted = !ids.componentIds?.length && !ids.reporterIds?.length && !ids.assigneeIds?.length;
  const needsCatalogue = query.terms.some(
    (t) => t.kind === 'list' && (t.field === 'product' || t.field === 'version' || t.field === 'component'),
  );
  const [w, products] = await Promise.all([
    workflow(db),
    needsCatalogue ? listProducts(db, viewer) : Promise.resolve([]),
  ]);
  const statusNames = w.statuses.map((s) => s.name);
  const catalogue: Catalogue = { statusNames, w, products };

  if (ids.productIds?.length) {
    conds.push(sql`b.product_id = ANY(${ids.productIds}::int[])`);
    textConds.push(productsInIndex(ids.productIds));
  }
  if (ids.versionIds?.length) conds.push(sql`b.version_id = ANY(${ids.versionIds}::int[])`);
  if (ids.componentIds?.length) conds.push(sql`b.component_id = ANY(${ids.componentIds}::int[])`);
  if (ids.statuses?.length) {
    conds.push(sql`b.status = ANY(${ids.statuses}::text[])`);
    textConds.push(statusesInIndex(ids.statuses));
  }
  if (ids.reporterIds?.length) conds.push(sql`b.reporter_id = ANY(${ids.reporterIds}::int[])`);
  if (ids.assigneeIds?.length) conds.push(sql`b.assignee_id = ANY(${ids.assigneeIds}::int[])`);

  const text: Sql[] = [];
  let textSpan: Span | undefined;
  let positiveText = false;
  for (const term of query.terms) {
    if (term.kind === 'text') {
      textSpan ??= term.span;
      positiveText ||= !term.negated;
      const q =
        term.mode === 'phrase'
          ? sql`phraseto_tsquery('english', ${term.text})`
          : term.mode === 'prefix'
            ? sql`to_tsquery('english', ${`${term.text}:*`})`
            : sql`plainto_tsquery('english', ${term.text})`;
      text.push(term.negated ? sql`(!! ${q})` : q);
      continue;
    }
    counted &&= term.kind === 'list' && COUNTED_FIELDS.has(term.field);
    conds.push(negate(term.negated, termCond(viewer, term, catalogue)));
    if (term.kind === 'list' && !term.negated && term.field === 'status') {
      textConds.push(statusesInIndex(statusesOf(term.values, catalogue)));
    } else if (term.kind === 'list' && !term.negated && term.field === 'product') {
      textConds.push(productsInIndex(productsOf(term.values, catalogue)));
    }
  }

  let tsquery: string | undefined;
  if (text.length) {
    const combined = join(text, ' && ');
    const rows = await db.query<{ q: string; n: number }>(
      sql`SELECT (${combined})::text AS q, numnode(${combined}) AS n`,
    );
    const row = rows[0]!;
    if (row.n === 0 || !positiveText) {
      throw new QueryError(
        positiveText
          ? 'these words are too common to search for; add a more specific word'
          : 'a text search needs at least one word that is not negated',
        textSpan!,
      );
    }
    tsquery = row.q;
  }
  return {
    conds,
    tsquery,
    negatedText: query.terms.some((t) => t.kind === 'text' && t.negated),
    counted,
    textConds,
  };
}

interface Catalogue {
  statusNames: string[];
  w: Awaited<ReturnType<typeof workflow>>;
  products: Awaited<ReturnType<typeof listProducts>>;
}

/** The products named (ids), each checked against the products the viewer may see. */
function productsOf(vals: Value[], c: Catalogue): number[] {
  const names = c.products.map((p) => p.name);
  return vals.map((v) => {
    const p = c.products.find((x) => x.name.toLowerCase() === v.text.toLowerCase());
    return p ? p.id : unknownValue('product', v, names);
  });
}

/** The statuses named, with the groups `open` and `closed` expanded. */
function statusesOf(vals: Value[], c: Catalogue): string[] {
  const names = new Set<string>();
  for (const v of vals) {
    const t = v.text.toUpperCase();
    // "open"/"closed" in lower case are Bugzilla's groups; CLOSED in capitals is the status.
    if (t === 'OPEN') for (const s of c.w.statuses.filter((s) => s.isOpen)) names.add(s.name);
    else if (t === 'CLOSED' && v.text !== 'CLOSED')
      for (const s of c.w.statuses.filter((s) => !s.isOpen)) names.add(s.name);
    else if (c.statusNames.includes(t)) names.add(t);
    else unknownValue('status', v, [...c.statusNames, 'open', 'closed']);
  }
  return [...names];
}

function termCond(viewer: Viewer, term: Term, c: Catalogue): Sql {
  if (term.kind === 'date') {
    return rangeCond(term.field === 'created' ? sql`b.created_at` : sql`b.changed_at`, term.range);
  }
  if (term.kind === 'history') return historyCond(viewer, term.field, term.values, term.range, c);
  if (term.kind !== 'list') throw new Error('text terms are compiled apart');
  const vals = term.values;
  const field: ListField = term.field;
  switch (field) {
    case 'id': {
      const ids = vals.map((v) => {
        const n = /^#?(\d{1,10})$/.exec(v.text);
        if (!n || Number(n[1]) < 1 || Number(n[1]) > 2147483647)
          throw new QueryError(`"${v.text}" is not a bug number`, v.span);
        return Number(n[1]);
      });
      return sql`b.id = ANY(${ids}::int[])`;
    }
    case 'product':
      return sql`b.product_id = ANY(${productsOf(vals, c)}::int[])`;
    case 'version': {
      const versions = c.products.flatMap((p) => p.versions.map((x) => ({ ...x, product: p.name })));
      const ids = vals.flatMap((v) => {
        const t = v.text.toLowerCase();
        // "Omega/1.0" names one product's release; "1.0" every release of that name.
        const found = versions.filter(
          (x) => x.name.toLowerCase() === t || `${x.product}/${x.name}`.toLowerCase() === t,
        );
        return found.length
          ? found.map((x) => x.id)
          : unknownValue('version', v, [...new Set(versions.map((x) => x.name))], false);
      });
      return sql`b.version_id = ANY(${ids}::int[])`;
    }
    case 'component': {
      const comps = c.products.flatMap((p) => p.components.map((x) => ({ ...x, product: p.name })));
      const ids = vals.flatMap((v) => {
        const t = v.text.toLowerCase();
        const found = comps.filter(
          (x) => x.name.toLowerCase() === t || `${x.product}/${x.name}`.toLowerCase() === t,
        );
        return found.length
          ? found.map((x) => x.id)
          : unknownValue('component', v, [...new Set(comps.map((x) => x.name))], false);
      });
      return sql`b.component_id = ANY(${ids}::int[])`;
    }
    case 'status':
      return sql`b.status = ANY(${statusesOf(vals, c)}::text[])`;
    case 'resolution': {
      const names: string[] = [];
      let none = false;
      for (const v of vals) {
        const t = v.text.toUpperCase();
        if (t === 'NONE' || t === '---') none = true;
        else if (c.w.resolutions.includes(t)) names.push(t);
        else unknownValue('resolution', v, [...c.w.resolutions, 'none']);
      }
      const any = sql`b.resolution = ANY(${names}::text[])`;
      return none ? sql`(b.resolution IS NULL OR ${any})` : any;
    }
    case 'severity': {
      const names = vals.map((v) =>
        SEVERITIES.includes(v.text.toLowerCase())
          ? v.text.toLowerCase()
          : unknownValue('severity', v, SEVERITIES),
      );
      return sql`b.severity = ANY(${names}::text[])`;
    }
    case 'priority': {
      const names = vals.map((v) =>
        PRIORITIES.includes(v.text.toUpperCase())
          ? v.text.toUpperCase()
          : unknownValue('priority', v, PRIORITIES),
      );
      return sql`b.priority = ANY(${names}::text[])`;
    }
    case 'reporter':
    case 'assignee': {
      const u = userIds(viewer, vals);
      const col = field === 'reporter' ? sql`b.reporter_id` : sql`b.assignee_id`;
      const parts: Sql[] = [];
      if (u.ids.length) parts.push(sql`${col} = ANY(${u.ids}::int[])`);
      if (u.names.length) parts.push(sql`${col} IN ${userSet({ ids: [], names: u.names })}`);
      if (u.none) {
        if (field === 'reporter') throw new QueryError('every bug has a reporter', vals[0]!.span);
        parts.push(sql`b.assignee_id IS NULL`);
      }
      return sql`(${join(parts, ' OR ')})`;
    }
    case 'cc': {
      const u = userIds(viewer, vals);
      if (u.none) {
        return sql`NOT EXISTS (SELECT 1 FROM bug_cc fc WHERE fc.bug_id = b.id)`;
      }
      return sql`EXISTS (SELECT 1 FROM bug_cc fc WHERE fc.bug_id = b.id AND fc.user_id IN ${userSet(u)})`;
    }
    case 'commenter': {
      const u = userIds(viewer, vals);
      // Only comments the viewer may read tell who commented.
      return sql`EXISTS (SELECT 1 FROM comments c WHERE c.bug_id = b.id AND c.author_id IN ${userSet(u)}
                         AND ${visibleComments(viewer, 'c')})`;
    }
    case 'confidential': {
      if (vals.length !== 1) throw new QueryError('confidential takes one value: yes or no', vals[1]!.span);
      const v = vals[0]!;
      const t = v.text.toLowerCase();
      if (['yes', 'true', '1', 'y'].includes(t)) return sql`b.confidential`;
      if (['no', 'false', '0', 'n'].includes(t)) return sql`NOT b.confidential`;
      throw new QueryError(`confidential is yes or no, not "${v.text}"`, v.span);
    }
    case 'has': {
      const parts = vals.map((v) => {
        const t = v.text.toLowerCase().replace(/s$/, '');
        if (t !== 'attachment' && t !== 'bundle') unknownValue('has: value', v, ['attachment', 'bundle']);
        // An attachment added with a comment the viewer may not read does not count for them.
        return sql`EXISTS (SELECT 1 FROM attachments fa WHERE fa.bug_id = b.id
                      ${t === 'bundle' ? sql`AND fa.kind = 'bundle'` : sql``}
                      AND (fa.comment_id IS NULL OR EXISTS (
                        SELECT 1 FROM comments c WHERE c.id = fa.comment_id AND ${visibleComments(viewer, 'c')})))`;
      });
      return sql`(${join(parts, ' OR ')})`;
    }
    case 'summary': {
      const parts = vals.map((v) => sql`b.summary ILIKE ${contains(v.text)}`);
      return sql`(${join(parts, ' OR ')})`;
    }
  }
}

/** `changed:FIELD[=values][@range]`: bugs whose history has such a change. */
function historyCond(
  viewer: Viewer,
  field: HistoryField,
  values: Value[],
  range: DateRange,
  c: Catalogue,
): Sql {
  const parts: Sql[] = [sql`h.field = ${field}`];
  if (values.length) {
    let exact: string[] | undefined;
    if (field === 'status') {
      exact = values.map((v) =>
        c.statusNames.includes(v.text.toUpperCase())
          ? v.text.toUpperCase()
          : unknownValue('status', v, c.statusNames),
      );
    } else if (field === 'resolution') {
      exact = values.map((v) =>
        c.w.resolutions.includes(v.text.toUpperCase())
          ? v.text.toUpperCase()
          : unknownValue('resolution', v, c.w.resolutions),
      );
    } else if (field === 'priority') {
      exact = values.map((v) =>
        PRIORITIES.includes(v.text.toUpperCase())
          ? v.text.toUpperCase()
          : unknownValue('priority', v, PRIORITIES),
      );
    } else if (field === 'severity') {
      exact = values.map((v) =>
        SEVERITIES.includes(v.text.toLowerCase())
          ? v.text.toLowerCase()
          : unknownValue('severity', v, SEVERITIES),
      );
    } else if (field === 'confidential') {
      exact = values.map((v) => {
        const t = v.text.toLowerCase();
        if (['yes', 'true', '1', 'y'].includes(t)) return 'true';
        if (['no', 'false', '0', 'n'].includes(t)) return 'false';
        throw new QueryError(`confidential is yes or no, not "${v.text}"`, v.span);
      });
    }
    if (exact) parts.push(sql`h.new_value = ANY(${exact}::text[])`);
    else {
      const me = viewer.kind === 'user' ? viewer.name.toLowerCase() : '';
      const lowered = values.map((v) => (v.text.toLowerCase() === 'me' ? me : v.text.toLowerCase()));
      parts.push(sql`lower(h.new_value) = ANY(${lowered}::text[])`);
    }
  }
  parts.push(rangeCond(sql`h.changed_at`, range));
  return sql`b.id IN (SELECT h.bug_id FROM bug_changes h WHERE ${join(parts, ' AND ')})`;
}

/** Re-exported for the SQL of sort columns. */
export const severityRank = raw(
  `array_position(ARRAY[${SEVERITIES.map((s) => `'${s}'`).join(',')}], b.severity)`,
);
