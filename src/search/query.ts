/**
 * The one-line query language of the search box, close to Bugzilla's quicksearch:
 *
 *   crash status:NEW,ASSIGNED product:Omega version:3.2 reporter:me -status:CLOSED "exact phrase"
 *   created>-30d changed:status=RESOLVED@2026-01-01..2026-02-01 sort:changed
 *
 * Words and "phrases" search the text (prefix with `word*`); `field:v1,v2` filters (values OR, fields
 * AND); a leading `-` negates any term. A mistake is a QueryError naming what is wrong and where
 * (0-based offset and length into the query; the message says the 1-based column).
 */
import { comparison, type DateRange, parseDate, parseRange, QueryError, type Span } from './dates.ts';

export { type DateRange, parseDate, QueryError, type Span } from './dates.ts';

/** One value of a field term, with where it was typed. */
export interface Value {
  text: string;
  span: Span;
}

/** Fields that take a list of values. */
export type ListField =
  | 'id'
  | 'product'
  | 'version'
  | 'component'
  | 'status'
  | 'resolution'
  | 'severity'
  | 'priority'
  | 'reporter'
  | 'assignee'
  | 'cc'
  | 'commenter'
  | 'confidential'
  | 'has'
  | 'summary';

/** Fields of the bug history that `changed:FIELD` may name. */
export const HISTORY_FIELDS = [
  'status',
  'resolution',
  'severity',
  'priority',
  'assignee',
  'product',
  'version',
  'component',
  'summary',
  'description',
  'confidential',
  'cc',
] as const;
export type HistoryField = (typeof HISTORY_FIELDS)[number];

/** One term of a query. */
export type Term =
  | { kind: 'text'; negated: boolean; mode: 'words' | 'phrase' | 'prefix'; text: string; span: Span }
  | { kind: 'list'; negated: boolean; field: ListField; values: Value[]; span: Span }
  | { kind: 'date'; negated: boolean; field: 'created' | 'changed'; range: DateRange; span: Span }
  | {
      kind: 'history';
      negated: boolean;
      field: HistoryField;
      values: Value[];
      range: DateRange;
      span: Span;
    };

/** Columns results can be sorted by. */
export const SORT_COLUMNS = [
  'relevance',
  'id',
  'summary',
  'product',
  'version',
  'component',
  'status',
  'resolution',
  'severity',
  'priority',
  'reporter',
  'assignee',
  'created',
  'changed',
] as const;
export type SortColumn = (typeof SORT_COLUMNS)[number];

/** A sort order: column and direction. */
export interface Sort {
  column: SortColumn;
  dir: 'asc' | 'desc';
}

/** The natural direction of each column (newest, most relevant first; names A to Z). */
export function defaultDir(column: SortColumn): 'asc' | 'desc' {
  return column === 'relevance' || column === 'created' || column === 'changed' || column === 'id'
    ? 'desc'
    : 'asc';
}

/** A parsed query. */
export interface ParsedQuery {
  terms: Term[];
  sort?: Sort | undefined;
  /** Set when the whole query is one bug number (`123` or `#123`): the box jumps to that bug. */
  bugNumber?: number | undefined;
}

const FIELD_ALIASES: Record<string, ListField | 'created' | 'changed' | 'sort'> = {
  id: 'id',
  bug: 'id',
  product: 'product',
  prod: 'product',
  version: 'version',
  ver: 'version',
  component: 'component',
  comp: 'component',
  status: 'status',
  resolution: 'resolution',
  res: 'resolution',
  severity: 'severity',
  sev: 'severity',
  priority: 'priority',
  pri: 'priority',
  prio: 'priority',
  reporter: 'reporter',
  rep: 'reporter',
  assignee: 'assignee',
  assigned_to: 'assignee',
  assigned: 'assignee',
  owner: 'assignee',
  cc: 'cc',
  commenter: 'commenter',
  confidential: 'confidential',
  has: 'has',
  summary: 'summary',
  created: 'created',
  opened: 'created',
  changed: 'changed',
  sort: 'sort',
  order: 'sort',
};

/** Names shown in "did you mean" hints and on the help page. */
export const FIELD_NAMES = [...new Set(Object.values(FIELD_ALIASES))];

const MAX_QUERY = 2000;
const MAX_TERMS = 50;
const MAX_VALUES = 100;

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/** The known name closest to `word`, if it is close enough to be a typo of it. */
export function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const n of names) {
    const dd = distance(word.toLowerCase(), n.toLowerCase());
    if (dd < bestD) [best, bestD] = [n, dd];
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

const hint = (word: string, names: readonly string[]) => {
  const c = closest(word, names);
  return c ? `; did you mean ${c}?` : '';
};

/** Splits a field's value list on commas outside quotes; each item unquoted, with its span. */
function splitValues(text: string, offset: number): Value[] {
  const out: Value[] = [];
  let i = 0;
  while (i <= text.length) {
    const start = i;
    let value = '';
    if (text[i] === '"') {
      const close = text.indexOf('"', i + 1);
      if (close < 0) throw new QueryError('this quote is never closed', { start: offset + i, length: 1 });
      value = text.slice(i + 1, close);
      i = close + 1;
      if (i < text.length && text[i] !== ',') {
        throw new QueryError('expected a comma after the quoted value', { start: offset + i, length: 1 });
      }
    } else {
      const comma = text.indexOf(',', i);
      const end = comma < 0 ? text.length : comma;
      value = text.slice(i, end);
      i = end;
    }
    const span = { start: offset + start, length: Math.max(1, i - start) };
    if (!value.trim()) throw new QueryError('a value is missing here', span);
    out.push({ text: value.trim(), span });
    if (out.length > MAX_VALUES) throw new QueryError(`at most ${MAX_VALUES} values per field`, span);
    i++; // past the comma (or the end)
  }
  return out;
}

/** Reads one raw token starting at `i` (a run of non-space characters; quotes may hold spaces). */
function readToken(q: string, i: number): number {
  let j = i;
  while (j < q.length && !/\s/.test(q[j]!)) {
    if (q[j] === '"') {
      const close = q.indexOf('"', j + 1);
      if (close < 0) throw new QueryError('this quote is never closed', { start: j, length: 1 });
      j = close + 1;
    } else j++;
  }
  return j;
}

/** Parses a query of the search language; throws QueryError with the position of the first mistake. */
export function parseQuery(q: string, now = new Date()): ParsedQuery {
  if (q.length > MAX_QUERY) {
    throw new QueryError(`a query has at most ${MAX_QUERY} characters`, { start: MAX_QUERY, length: 1 });
  }
  const number = /^\s*#?(\d{1,10})\s*$/.exec(q);
  if (number && Number(number[1]) >= 1 && Number(number[1]) <= 2147483647) {
    return { terms: [], bugNumber: Number(number[1]) };
  }
  const terms: Term[] = [];
  let sort: Sort | undefined;
  let i = 0;
  while (i < q.length) {
    if (/\s/.test(q[i]!)) {
      i++;
      continue;
    }
    const start = i;
    const end = readToken(q, i);
    const raw = q.slice(start, end);
    i = end;
    const span = { start, length: end - start };
    let negated = false;
    let body = raw;
    let bodyStart = start;
    if (body.startsWith('-')) {
      negated = true;
      body = body.slice(1);
      bodyStart++;
      if (!body) throw new QueryError('a lone "-" negates nothing; write -word or -field:value', span);
    }
    if (terms.length >= MAX_TERMS) throw new QueryError(`a query has at most ${MAX_TERMS} terms`, span);

    if (body.startsWith('"')) {
      const close = body.indexOf('"', 1);
      if (close !== body.length - 1) {
        throw new QueryError('a phrase ends at its closing quote; put a space after it', {
          start: bodyStart + close + 1,
          length: 1,
        });
      }
      const text = body.slice(1, -1).trim();
      if (!text) throw new QueryError('this phrase is empty', span);
      terms.push({ kind: 'text', negated, mode: 'phrase', text, span });
      continue;
    }

    const m = /^([A-Za-z_]+)(:|>=|<=|>|<|=)/.exec(body);
    if (!m) {
      if (body.includes('"')) {
        throw new QueryError('quotes go around a whole phrase or a whole value', {
          start: bodyStart + body.indexOf('"'),
          length: 1,
        });
      }
      const prefix = body.endsWith('*');
      const text = prefix ? body.slice(0, -1) : body;
      if (prefix && !/^[\p{L}\p{N}_]+$/u.test(text)) {
        throw new QueryError('a prefix search is letters and digits followed by *, as in crash*', span);
      }
      terms.push({ kind: 'text', negated, mode: prefix ? 'prefix' : 'words', text, span });
      continue;
    }

    const [, name, op] = m as unknown as [string, string, string];
    const field = FIELD_ALIASES[name.toLowerCase()];
    const nameSpan = { start: bodyStart, length: name.length };
    if (!field) {
      throw new QueryError(
        `unknown field "${name}"${hint(name, FIELD_NAMES)} (to search for the text, put it in quotes)`,
        nameSpan,
      );
    }
    const valueText = body.slice(name.length + op.length);
    const valueStart = bodyStart + name.length + op.length;
    const valueSpan = { start: valueStart, length: Math.max(1, valueText.length) };
    if (!valueText) throw new QueryError(`${name}${op} needs a value`, { start: valueStart, length: 1 });

    if (field === 'created' || field === 'changed') {
      const historyField = field === 'changed' && op === ':' && /^[A-Za-z_]/.test(valueText);
      const isDateWord = /^(today|yesterday|now)(\.\.|$)/i.test(valueText);
      if (historyField && !isDateWord) {
        terms.push(history(valueText, valueStart, negated, span, now));
        continue;
      }
      const range = op === ':' || op === '=' ? parseRange(valueText, valueSpan, now) : undefined;
      terms.push({
        kind: 'date',
        negated,
        field,
        range: range ?? comparison(op, parseDate(valueText, valueSpan, now)),
        span,
      });
      continue;
    }
    if (op !== ':') {
      throw new QueryError(`${name} takes a list of values after a colon, as in ${name}:value`, {
        start: bodyStart + name.length,
        length: op.length,
      });
    }
    if (field === 'sort') {
      if (negated) throw new QueryError('sort cannot be negated', span);
      if (sort) throw new QueryError('sort is given twice', span);
      sort = parseSort(valueText, valueStart);
      continue;
    }
    terms.push({ kind: 'list', negated, field, values: splitValues(valueText, valueStart), span });
  }
  return { terms, sort };
}

/** `changed:FIELD[=V1,V2][@FROM..TO]`. */
function history(text: string, offset: number, negated: boolean, span: Span, now: Date): Term {
  let rest = text;
  let range: DateRange = {};
  const at = rest.lastIndexOf('@');
  if (at >= 0 && rest.slice(at + 1).includes('..')) {
    const r = rest.slice(at + 1);
    range = parseRange(r, { start: offset + at + 1, length: r.length }, now);
    rest = rest.slice(0, at);
  }
  const eq = rest.indexOf('=');
  const name = (eq < 0 ? rest : rest.slice(0, eq)).toLowerCase();
  const field = (FIELD_ALIASES[name] ?? name) as string;
  if (!(HISTORY_FIELDS as readonly string[]).includes(field)) {
    throw new QueryError(
      `"${name}" is not a field with history${hint(name, HISTORY_FIELDS)}; one of ${HISTORY_FIELDS.join(', ')}`,
      { start: offset, length: name.length || 1 },
    );
  }
  const values = eq < 0 ? [] : splitValues(rest.slice(eq + 1), offset + eq + 1);
  return { kind: 'history', negated, field: field as HistoryField, values, range, span };
}

/** `sort:column` or `sort:column:asc|desc`. */
function parseSort(text: string, offset: number): Sort {
  const [col = '', dir, extra] = text.toLowerCase().split(':');
  const alias: Record<string, SortColumn> = {
    rank: 'relevance',
    modified: 'changed',
    updated: 'changed',
    opened: 'created',
    sev: 'severity',
    pri: 'priority',
    prio: 'priority',
    owner: 'assignee',
  };
  const column = (alias[col] ?? col) as SortColumn;
  if (!SORT_COLUMNS.includes(column)) {
    throw new QueryError(
      `cannot sort by "${col}"${hint(col, SORT_COLUMNS)}; one of ${SORT_COLUMNS.join(', ')}`,
      { start: offset, length: col.length || 1 },
    );
  }
  if (extra !== undefined || (dir !== undefined && dir !== 'asc' && dir !== 'desc')) {
    throw new QueryError('a sort direction is asc or desc, as in sort:changed:asc', {
      start: offset + col.length + 1,
      length: text.length - col.length - 1 || 1,
    });
  }
  return { column, dir: (dir as 'asc' | 'desc' | undefined) ?? defaultDir(column) };
}

/** Quotes a value for the query language when it needs it (spaces, commas, quotes are not allowed). */
export function quoteValue(v: string): string {
  return /^[^\s,"]+$/.test(v) ? v : `"${v.replace(/"/g, '')}"`;
}
