/** CSV export of a search: every match the viewer may see, in the sort order, read in keyset batches. */
import type { Viewer } from '../access/index.ts';
import type { Queryable } from '../platform/db.ts';
import * as repo from './repository.ts';
import { effectiveSort, prepare, type SearchInput } from './service.ts';

/** Columns of the CSV export, in order. */
export const CSV_COLUMNS = [
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
  'confidential',
  'created',
  'changed',
] as const;

/** The most rows one export writes (a header says when it stopped there). */
export const CSV_MAX_ROWS = 100_000;

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A leading = + - @ or tab
 * would make a spreadsheet run it as a formula, so such a field is prefixed with an apostrophe.
 */
export function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  let s = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvLine(r: repo.ResultRow): string {
  return `${[
    r.id,
    r.summary,
    r.product,
    r.version,
    r.component,
    r.status,
    r.resolution,
    r.severity,
    r.priority,
    r.reporter_name,
    r.assignee_name,
    r.confidential,
    r.created_at.toISOString(),
    r.changed_at.toISOString(),
  ]
    .map(csvField)
    .join(',')}\r\n`;
}

/**
 * The whole result of a query as CSV lines (header first), read in keyset batches so memory stays flat.
 * Parsing errors are thrown before the first line, so the caller can still answer 400.
 */
export async function exportCsv(
  db: Queryable,
  viewer: Viewer,
  input: Omit<SearchInput, 'cursor' | 'limit' | 'facets'>,
): Promise<AsyncGenerator<string>> {
  const { parsed: effective, compiled } = await prepare(db, viewer, input.q, input.ids);
  const sort = effectiveSort(
    { ...input, limit: 0, facets: false },
    effective,
    compiled.tsquery !== undefined,
  );
  async function* lines(): AsyncGenerator<string> {
    yield `${CSV_COLUMNS.join(',')}\r\n`;
    let after: repo.After | undefined;
    let written = 0;
    const batch = 1000;
    while (written < CSV_MAX_ROWS) {
      const rows = await repo.page(
        db,
        viewer,
        compiled,
        sort,
        Math.min(batch, CSV_MAX_ROWS - written),
        after,
      );
      for (const r of rows) yield csvLine(r);
      written += rows.length;
      const last = rows.at(-1);
      if (!last || rows.length < batch) return;
      after = { key: last.sort_key, id: last.id };
    }
  }
  return lines();
}
