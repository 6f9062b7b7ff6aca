/**
 * The bug workflow, read from the database (statuses, resolutions, status_transitions): which status a
 * bug may move to from which, who may take each step, and when a resolution is needed.
 */
import type { Queryable } from '../platform/db.ts';
import { sql } from '../platform/db.ts';

/** The workflow as loaded from its tables. */
export interface Workflow {
  statuses: { name: string; isOpen: boolean }[];
  resolutions: string[];
  /** from status ('' for a new bug) -> allowed next statuses, with whether a reporter may take the step. */
  transitions: Map<string, Map<string, { reporterMay: boolean }>>;
}

/** The status a bug is in while it carries a resolution it was given by resolving. */
export const RESOLVED = 'RESOLVED';
/** Statuses in which a bug carries a resolution. */
export const CLOSED_STATUSES = new Set(['RESOLVED', 'VERIFIED', 'CLOSED']);

const cache = new WeakMap<object, Promise<Workflow>>();

async function load(db: Queryable): Promise<Workflow> {
  const [statuses, resolutions, transitions] = await Promise.all([
    db.query<{ name: string; is_open: boolean }>(
      sql`SELECT name, is_open FROM bug_statuses ORDER BY sort_order`,
    ),
    db.query<{ name: string }>(sql`SELECT name FROM resolutions ORDER BY sort_order`),
    db.query<{ from_status: string | null; to_status: string; reporter_may: boolean }>(
      sql`SELECT t.from_status, t.to_status, t.reporter_may FROM status_transitions t
          JOIN bug_statuses s ON s.name = t.to_status ORDER BY s.sort_order`,
    ),
  ]);
  const map = new Map<string, Map<string, { reporterMay: boolean }>>();
  for (const t of transitions) {
    const from = t.from_status ?? '';
    if (!map.has(from)) map.set(from, new Map());
    map.get(from)!.set(t.to_status, { reporterMay: t.reporter_may });
  }
  return {
    statuses: statuses.map((s) => ({ name: s.name, isOpen: s.is_open })),
    resolutions: resolutions.map((r) => r.name),
    transitions: map,
  };
}

/** The workflow, loaded once per database handle (it is reference data that changes with migrations). */
export function workflow(db: Queryable): Promise<Workflow> {
  let w = cache.get(db);
  if (!w) {
    w = load(db);
    w.catch(() => cache.delete(db));
    cache.set(db, w);
  }
  return w;
}

/** Next statuses from `from` ('' = filing) for a staff member, or for the bug's external reporter. */
export function nextStatuses(w: Workflow, from: string, as: 'staff' | 'reporter' | 'none'): string[] {
  if (as === 'none') return [];
  const next = w.transitions.get(from);
  if (!next) return [];
  return [...next].filter(([, t]) => as === 'staff' || t.reporterMay).map(([to]) => to);
}
