/**
 * Bugs: filing, reading, listing, comments and history (changing a bug is update.ts). Each command
 * loads what it touches through the access predicates, checks, then writes — in one transaction that
 * also writes the history rows.
 */
import { canSeeBug, isStaff, type UserViewer, type Viewer } from '../access/index.ts';
import { recordEvent } from '../events/index.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { forbidden, notFound, unprocessable } from '../platform/errors.ts';
import type { Invalidation } from '../platform/invalidation.ts';
import { resolveFilingTarget } from '../products/index.ts';
import type { BugCache, CachedBug } from './cache.ts';
import * as repo from './repository.ts';
import { nextStatuses, workflow } from './workflow.ts';

export type { BugFilter, BugRow, ChangeRow, CommentRow, FullBugRow } from './repository.ts';

/** What the bug commands work with. */
export interface BugsContext {
  db: Db;
  bus: Invalidation;
  cache: BugCache;
}

/** Severities, most severe first. */
export const SEVERITIES = [
  'blocker',
  'critical',
  'major',
  'normal',
  'minor',
  'trivial',
  'enhancement',
] as const;
/** Priorities, most urgent first. */
export const PRIORITIES = ['P1', 'P2', 'P3', 'P4', 'P5'] as const;

/** How the viewer relates to a bug, for what they may change. */
export function roleOn(viewer: Viewer, bug: { reporter_id: number }): 'staff' | 'reporter' | 'none' {
  if (isStaff(viewer)) return 'staff';
  return viewer.kind === 'user' && viewer.id === bug.reporter_id ? 'reporter' : 'none';
}

/** Fields an external reporter may change on their own bug (besides workflow steps marked reporter_may). */
export const REPORTER_FIELDS = new Set([
  'summary',
  'description',
  'confidential',
  'status',
  'resolution',
  'duplicate_of',
]);

/** What the viewer may do to a bug: the next statuses they may choose and whether they may edit fields. */
export async function allowedActions(
  db: Queryable,
  viewer: Viewer,
  bug: { status: string; reporter_id: number },
) {
  const role = roleOn(viewer, bug);
  const w = await workflow(db);
  return {
    statuses: nextStatuses(w, bug.status, role),
    resolutions: w.resolutions,
    can_edit_fields: role === 'staff' ? 'all' : role === 'reporter' ? [...REPORTER_FIELDS] : [],
    can_comment: viewer.kind === 'user',
  };
}

/** Input of fileBug. */
export interface NewBugInput {
  productId: number;
  versionId: number;
  componentId: number;
  summary: string;
  description?: string | undefined;
  severity?: string | undefined;
  priority?: string | undefined;
  status?: string | undefined;
  assigneeId?: number | null | undefined;
  cc?: number[] | undefined;
  confidential?: boolean | undefined;
}

/** A summary with its runs of white space collapsed; blank is refused. */
export function cleanSummary(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  if (!t) throw unprocessable('summary must not be blank', 'summary');
  return t;
}

/** Files a bug against a product and one of its versions; returns it as the reporter now sees it. */
export async function fileBug(
  ctx: BugsContext,
  viewer: UserViewer,
  input: NewBugInput,
): Promise<repo.FullBugRow> {
  const { db } = ctx;
  const staff = isStaff(viewer);
  const w = await workflow(db);
  const id = await db.transaction(async (tx) => {
    const { component } = await resolveFilingTarget(tx, viewer, input);
    const status = input.status ?? 'NEW';
    const initial = nextStatuses(w, '', staff ? 'staff' : 'reporter');
    if (!initial.includes(status)) {
      throw unprocessable(
        `a new bug cannot start as ${status}; allowed: ${initial.join(', ')}`,
        'status',
        'invalid_transition',
        {
          allowed: initial,
        },
      );
    }
    if (!staff && input.assigneeId != null) throw forbidden('Only staff may assign bugs.');
    if (!staff && input.priority !== undefined) throw forbidden('Only staff may set the priority.');
    const cc = [...new Set(input.cc ?? [])];
    if (!staff && cc.some((u) => u !== viewer.id))
      throw forbidden('You may add only yourself to the CC list.');
    const assigneeId = input.assigneeId ?? component.default_assignee_id;
    const wanted = [...new Set([...cc, ...(assigneeId ? [assigneeId] : [])])];
    const found = new Set((await repo.activeUsers(tx, wanted)).map((u) => u.id));
    const missing = wanted.find((u) => !found.has(u));
    if (missing !== undefined) {
      throw unprocessable(
        `user ${missing} does not exist or is disabled`,
        cc.includes(missing) ? 'cc' : 'assignee_id',
      );
    }
    const bugId = await repo.insertBug(tx, {
      productId: input.productId,
      versionId: input.versionId,
      componentId: input.componentId,
      summary: cleanSummary(input.summary),
      description: input.description ?? '',
      status,
      severity: input.severity ?? 'normal',
      priority: input.priority ?? 'P3',
      reporterId: viewer.id,
      assigneeId: assigneeId ?? null,
      confidential: input.confidential ?? false,
    });
    await repo.setCc(tx, bugId, cc, []);
    await recordEvent(tx, { kind: 'bug.created', bugId, actorId: viewer.id });
    return bugId;
  });
  return getBug(ctx, viewer, id);
}

/**
 * One bug the viewer may see, as held in the cache, and the duplicate_of this viewer may be told
 * (the original only when they may see it too); 404 when it does not exist or they may not see it.
 */
export async function readBug(
  ctx: BugsContext,
  viewer: Viewer,
  id: number,
): Promise<{ entry: CachedBug; duplicateOf: number | null }> {
  const entry = await ctx.cache.get(ctx.db, id);
  if (!entry || !canSeeBug(viewer, entry.facts)) throw notFound('Bug', id);
  let duplicateOf = entry.bug.duplicate_of;
  if (duplicateOf !== null) {
    const original = await ctx.cache.get(ctx.db, duplicateOf);
    if (!original || !canSeeBug(viewer, original.facts)) duplicateOf = null;
  }
  return { entry, duplicateOf };
}

/** One bug the viewer may see; 404 when it does not exist or they may not see it. */
export async function getBug(ctx: BugsContext, viewer: Viewer, id: number): Promise<repo.FullBugRow> {
  const { entry, duplicateOf } = await readBug(ctx, viewer, id);
  const { product_released: _p, version_released: _v, ...bug } = entry.bug;
  return { ...bug, duplicate_of: duplicateOf };
}

/** A page of visible bugs matching the filter (keyset pagination on id). */
export async function listBugs(
  ctx: BugsContext,
  viewer: Viewer,
  filter: repo.BugFilter,
  page: { after?: number | undefined; limit: number; order: 'asc' | 'desc' | 'changed' },
): Promise<repo.BugRow[]> {
  // Which bugs: decided in SQL by the visibility predicate. Their fields: from the bug cache.
  const ids = await repo.listBugIds(ctx.db, viewer, filter, page);
  const entries = await ctx.cache.getMany(ctx.db, ids);
  const originals = entries.flatMap((e) => (e.bug.duplicate_of === null ? [] : [e.bug.duplicate_of]));
  const visibleOriginals = new Set(
    (await ctx.cache.getMany(ctx.db, originals))
      .filter((o) => canSeeBug(viewer, o.facts))
      .map((o) => o.bug.id),
  );
  return entries.map(({ bug }) => ({
    ...bug,
    duplicate_of:
      bug.duplicate_of !== null && visibleOriginals.has(bug.duplicate_of) ? bug.duplicate_of : null,
  }));
}

/** Adds a comment to a bug the viewer may see. */
export async function addComment(
  ctx: BugsContext,
  viewer: UserViewer,
  bugId: number,
  input: { body: string; isPrivate?: boolean | undefined },
): Promise<repo.CommentRow> {
  if (!input.body.trim()) throw unprocessable('comment must not be blank', 'body');
  if (input.isPrivate && !isStaff(viewer)) throw forbidden('Only staff may write private comments.');
  const { db } = ctx;
  const commentId = await db.transaction(async (tx) => {
    const bug = await repo.lockBug(tx, viewer, bugId);
    if (!bug) throw notFound('Bug', bugId);
    const version = await repo.touchBug(tx, bug.id);
    await ctx.bus.publish(tx, `bug:${bug.id}`);
    const id = await repo.insertComment(tx, {
      bugId: bug.id,
      authorId: viewer.id,
      body: input.body,
      isPrivate: input.isPrivate ?? false,
      bugVersion: version,
    });
    await recordEvent(tx, { kind: 'comment.created', bugId: bug.id, actorId: viewer.id, commentId: id });
    return id;
  });
  await ctx.bus.apply(`bug:${bugId}`);
  const comments = await repo.listComments(db, viewer, bugId);
  return comments.find((c) => c.id === commentId)!;
}

/** Bug counts per status, over the bugs the viewer may see (in workflow order, zeros included). */
export async function statusCounts(
  ctx: BugsContext,
  viewer: Viewer,
): Promise<{ status: string; count: number }[]> {
  const [rows, w] = await Promise.all([repo.countByStatus(ctx.db, viewer), workflow(ctx.db)]);
  const byStatus = new Map(rows.map((r) => [r.status, r.n]));
  return w.statuses.map((s) => ({ status: s.name, count: byStatus.get(s.name) ?? 0 }));
}

/** Comments of a bug the viewer may see (private ones only for staff). */
export async function listComments(
  ctx: BugsContext,
  viewer: Viewer,
  bugId: number,
): Promise<repo.CommentRow[]> {
  await getBug(ctx, viewer, bugId);
  return repo.listComments(ctx.db, viewer, bugId);
}

/** The change history of a bug the viewer may see. */
export async function bugHistory(ctx: BugsContext, viewer: Viewer, bugId: number): Promise<repo.ChangeRow[]> {
  await getBug(ctx, viewer, bugId);
  const changes = await repo.listChanges(ctx.db, bugId);
  // A duplicate_of row names another bug: show its number only to those who may see that bug.
  const referenced = changes
    .filter((c) => c.field === 'duplicate_of')
    .flatMap((c) => [c.old_value, c.new_value])
    .filter((v): v is string => v !== null)
    .map(Number);
  if (referenced.length === 0) return changes;
  const visible = new Set(
    (await ctx.cache.getMany(ctx.db, [...new Set(referenced)]))
      .filter((e) => canSeeBug(viewer, e.facts))
      .map((e) => String(e.bug.id)),
  );
  const mask = (v: string | null) => (v === null || visible.has(v) ? v : null);
  return changes.map((c) =>
    c.field === 'duplicate_of' ? { ...c, old_value: mask(c.old_value), new_value: mask(c.new_value) } : c,
  );
}
