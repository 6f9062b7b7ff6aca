/** Dates of the query language (days, instants, relative times, ranges) and the QueryError every part throws. */
import { AppError } from '../platform/errors.ts';

/** Where a piece of the query is: offset into the query text and length. */
export interface Span {
  start: number;
  length: number;
}

/** A query the parser refused: 400 with the position of the mistake. */
export class QueryError extends AppError {
  constructor(message: string, span: Span) {
    super(400, 'invalid_query', `${message} (at column ${span.start + 1})`, 'q', {
      position: span.start,
      length: Math.max(1, span.length),
    });
    this.name = 'QueryError';
  }
}

/** A point in time or an open/closed range [from, to). */
export interface DateRange {
  from?: Date | undefined;
  to?: Date | undefined;
}

/**
 * Parses a date as the query language writes them: `2026-01-31`, `2026-01-31T12:00Z`, `today`,
 * `yesterday`, `now`, or relative to now: `-30d`, `-2w`, `-6m`, `-1y`, `-12h`. A day names the whole day
 * (UTC): the returned range is [start of day, start of next day).
 */
export function parseDate(text: string, span: Span, now: Date): { from: Date; to: Date } {
  const t = text.toLowerCase();
  const day = (d: Date) => {
    const from = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
    return { from, to: new Date(from.getTime() + 86_400_000) };
  };
  if (t === 'now') return { from: now, to: now };
  if (t === 'today') return day(now);
  if (t === 'yesterday') return day(new Date(now.getTime() - 86_400_000));
  const rel = /^-(\d{1,5})([hdwmy])$/.exec(t);
  if (rel) {
    const n = Number(rel[1]);
    const d = new Date(now);
    const unit = rel[2]!;
    if (unit === 'h') d.setTime(d.getTime() - n * 3_600_000);
    else if (unit === 'd') d.setTime(d.getTime() - n * 86_400_000);
    else if (unit === 'w') d.setTime(d.getTime() - n * 7 * 86_400_000);
    else if (unit === 'm') d.setUTCMonth(d.getUTCMonth() - n);
    else d.setUTCFullYear(d.getUTCFullYear() - n);
    return { from: d, to: d };
  }
  const ymd = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (ymd) {
    const d = new Date(Date.UTC(Number(ymd[1]), Number(ymd[2]) - 1, Number(ymd[3])));
    if (d.getUTCMonth() !== Number(ymd[2]) - 1 || d.getUTCDate() !== Number(ymd[3])) {
      throw new QueryError(`${text} is not a day of the calendar`, span);
    }
    return day(d);
  }
  if (/^\d{4}-\d{2}-\d{2}t\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(z|[+-]\d{2}:\d{2})?$/.test(t)) {
    const d = new Date(/(z|[+-]\d{2}:\d{2})$/.test(t) ? text : `${text}Z`);
    if (!Number.isNaN(d.getTime())) return { from: d, to: d };
  }
  throw new QueryError(
    `"${text}" is not a date; write 2026-01-31, 2026-01-31T12:00Z, today, yesterday, now, or -30d (h, d, w, m, y)`,
    span,
  );
}

/** A range `A..B` (either side may be empty) or one date. */
export function parseRange(text: string, span: Span, now: Date): DateRange {
  const dots = text.indexOf('..');
  if (dots < 0) {
    const d = parseDate(text, span, now);
    return { from: d.from, to: d.to.getTime() === d.from.getTime() ? undefined : d.to };
  }
  const a = text.slice(0, dots);
  const b = text.slice(dots + 2);
  if (!a && !b)
    throw new QueryError('a date range needs at least one end, as in 2026-01-01..2026-02-01', span);
  return {
    from: a ? parseDate(a, { start: span.start, length: a.length }, now).from : undefined,
    to: b ? parseDate(b, { start: span.start + dots + 2, length: b.length }, now).to : undefined,
  };
}

/** Reads a comparison (`>`, `>=`, `<`, `<=`, `=`) of a date field into a range. */
export function comparison(op: string, d: { from: Date; to: Date }): DateRange {
  switch (op) {
    case '>':
      return { from: d.to.getTime() === d.from.getTime() ? d.from : d.to };
    case '>=':
      return { from: d.from };
    case '<':
      return { to: d.from };
    case '<=':
      return { to: d.to.getTime() === d.from.getTime() ? d.from : d.to };
    default:
      return d.to.getTime() === d.from.getTime() ? { from: d.from, to: d.from } : d;
  }
}
