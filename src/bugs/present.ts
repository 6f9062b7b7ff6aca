/** Presenters: bugs, comments and history rows as the API shows them. */
import type { BugRow, ChangeRow, CommentRow, FullBugRow } from './repository.ts';

/** A bug in a list (no description, no CC list). */
export function presentBugSummary(b: BugRow) {
  return {
    id: b.id,
    summary: b.summary,
    product: { id: b.product_id, name: b.product },
    version: { id: b.version_id, name: b.version },
    component: { id: b.component_id, name: b.component },
    status: b.status,
    resolution: b.resolution,
    severity: b.severity,
    priority: b.priority,
    reporter: { id: b.reporter_id, name: b.reporter_name },
    assignee: b.assignee_id === null ? null : { id: b.assignee_id, name: b.assignee_name },
    confidential: b.confidential,
    duplicate_of: b.duplicate_of,
    created_at: b.created_at.toISOString(),
    changed_at: b.changed_at.toISOString(),
    row_version: b.row_version,
  };
}

/** A whole bug. */
export function presentBug(b: FullBugRow) {
  return { ...presentBugSummary(b), description: b.description, cc: b.cc };
}

export function presentComment(c: CommentRow) {
  return {
    id: c.id,
    bug_id: c.bug_id,
    author: { id: c.author_id, name: c.author_name },
    ...(c.via_user_id ? { via: { id: c.via_user_id, name: c.via_name ?? '' } } : {}),
    body: c.body,
    is_private: c.is_private,
    created_at: c.created_at.toISOString(),
  };
}

export function presentChange(h: ChangeRow) {
  return {
    id: h.id,
    who: { id: h.actor_id, name: h.actor_name },
    ...(h.via_user_id ? { via: { id: h.via_user_id, name: h.via_name ?? '' } } : {}),
    when: h.changed_at.toISOString(),
    field: h.field,
    removed: h.old_value,
    added: h.new_value,
  };
}

/**
 * The bug's JSON for any viewer who may see it, without duplicate_of, actions and the closing brace
 * (the route appends those per viewer). Computed once per cached version of the bug.
 */
export function bugJsonHead(b: FullBugRow): string {
  const { duplicate_of: _hidden, ...shared } = presentBug(b);
  return JSON.stringify(shared).slice(0, -1);
}

/** The bug's entity tag: changes whenever its row version does. */
export const bugEtag = (b: { id: number; row_version: number }) => `"bug-${b.id}-v${b.row_version}"`;

/** The row version an If-Match header names, if it names one of this bug's tags. */
export function parseIfMatch(header: string | undefined, bugId: number): number | undefined | 'invalid' {
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"bug-(\d+)-v(\d+)"\s*$/.exec(header);
  if (!m || Number(m[1]) !== bugId) return 'invalid';
  return Number(m[2]);
}
