/**
 * Changing a bug: fields, workflow step, CC list and a comment, all or nothing, with mid-air collision
 * detection and one history row per changed field, written in the same transaction.
 */
import type { UserViewer, Viewer } from '../access/index.ts';
import { recordEvent } from '../events/index.ts';
import type { Queryable } from '../platform/db.ts';
import { AppError, forbidden, notFound, unprocessable } from '../platform/errors.ts';
import { resolveFilingTarget } from '../products/index.ts';
import * as repo from './repository.ts';
import { type BugsContext, cleanSummary, getBug, REPORTER_FIELDS, roleOn } from './service.ts';
import { CLOSED_STATUSES, nextStatuses, RESOLVED, type Workflow, workflow } from './workflow.ts';

/** A change to a bug; absent fields stay as they are. */
export interface BugPatch {
  summary?: string | undefined;
  description?: string | undefined;
  productId?: number | undefined;
  versionId?: number | undefined;
  componentId?: number | undefined;
  severity?: string | undefined;
  priority?: string | undefined;
  assigneeId?: number | null | undefined;
  status?: string | undefined;
  resolution?: string | null | undefined;
  duplicateOf?: number | null | undefined;
  confidential?: boolean | undefined;
  cc?: { add?: number[] | undefined; remove?: number[] | undefined } | undefined;
  comment?: { body: string; isPrivate?: boolean | undefined } | undefined;
}

/** The row version the client last saw, and how it said so (header -> 412, form field -> 409). */
export interface Expected {
  rowVersion: number;
  via: 'if-match' | 'field';
}

type Change = { field: string; old: string | null; new: string | null };

/** Raised when the bug changed since the client loaded it; carries what changed meanwhile. */
async function midAirCollision(
  db: Queryable,
  viewer: Viewer,
  bug: repo.RawBug,
  expected: Expected,
): Promise<AppError> {
  const [changes, comments] = await Promise.all([
    repo.listChanges(db, bug.id, expected.rowVersion),
    repo.listComments(db, viewer, bug.id, expected.rowVersion),
  ]);
  return new AppError(
    expected.via === 'if-match' ? 412 : 409,
    'mid_air_collision',
    `Bug ${bug.id} was changed by someone else since you loaded it (your version ${expected.rowVersion}, now ${bug.row_version}). Review their changes and apply yours again.`,
    undefined,
    {
      current_row_version: bug.row_version,
      changes: changes.map((c) => ({
        field: c.field,
        removed: c.old_value,
        added: c.new_value,
        who: { id: c.actor_id, name: c.actor_name },
        when: c.changed_at.toISOString(),
      })),
      comments: comments.map((c) => ({
        id: c.id,
        author: { id: c.author_id, name: c.author_name },
        body: c.body,
        created_at: c.created_at.toISOString(),
      })),
    },
  );
}

/** Works out status, resolution and duplicate_of after the patch, checking the workflow. */
async function nextWorkflowState(
  tx: Queryable,
  w: Workflow,
  viewer: Viewer,
  bug: repo.RawBug,
  patch: BugPatch,
  role: 'staff' | 'reporter' | 'none',
) {
  const status = patch.status ?? bug.status;
  if (status !== bug.status) {
    const allowed = nextStatuses(w, bug.status, role);
    if (!allowed.includes(status)) {
      const staffMay = nextStatuses(w, bug.status, 'staff').includes(status);
      if (staffMay) throw forbidden(`Only staff may change the status from ${bug.status} to ${status}.`);
      throw unprocessable(
        `cannot change status from ${bug.status} to ${status}; allowed: ${allowed.join(', ') || 'none'}`,
        'status',
        'invalid_transition',
        { allowed },
      );
    }
  }
  const resolving = status === RESOLVED && (bug.status !== RESOLVED || patch.resolution !== undefined);
  let resolution: string | null = CLOSED_STATUSES.has(status) ? bug.resolution : null;
  if (patch.resolution !== undefined && patch.resolution !== null && !resolving) {
    throw unprocessable(
      'a resolution is set only when resolving (status RESOLVED)',
      'resolution',
      'resolution_not_allowed',
    );
  }
  if (resolving) {
    if (patch.resolution == null) {
      throw unprocessable(
        `resolving needs a resolution: one of ${w.resolutions.join(', ')}`,
        'resolution',
        'resolution_required',
        { allowed: w.resolutions },
      );
    }
    if (!w.resolutions.includes(patch.resolution)) {
      throw unprocessable(
        `unknown resolution ${patch.resolution}; one of ${w.resolutions.join(', ')}`,
        'resolution',
      );
    }
    resolution = patch.resolution;
  }
  let duplicateOf: number | null = resolution === 'DUPLICATE' ? bug.duplicate_of : null;
  if (patch.duplicateOf !== undefined && patch.duplicateOf !== null) {
    if (resolution !== 'DUPLICATE') {
      throw unprocessable(
        'duplicate_of is set only with resolution DUPLICATE',
        'duplicate_of',
        'duplicate_not_allowed',
      );
    }
    duplicateOf = patch.duplicateOf;
  }
  if (resolution === 'DUPLICATE') {
    if (duplicateOf === null) {
      throw unprocessable(
        'resolution DUPLICATE needs duplicate_of: the bug this one duplicates',
        'duplicate_of',
        'duplicate_of_required',
      );
    }
    if (duplicateOf === bug.id) throw unprocessable('a bug cannot be a duplicate of itself', 'duplicate_of');
    if (duplicateOf !== bug.duplicate_of) {
      if (!(await repo.bugVisible(tx, viewer, duplicateOf))) {
        throw unprocessable(`bug ${duplicateOf} not found`, 'duplicate_of', 'unknown_bug');
      }
      if ((await repo.duplicateOf(tx, duplicateOf)) === bug.id) {
        throw unprocessable(`bug ${duplicateOf} is itself a duplicate of this bug`, 'duplicate_of');
      }
    }
  }
  return { status, resolution, duplicateOf };
}

/**
 * Changes a bug: fields, workflow step, CC list and an optional comment, all or nothing. With `expected`
 * it refuses (409/412, listing what changed meanwhile) when the bug moved on since the client saw it.
 */
export async function updateBug(
  ctx: BugsContext,
  viewer: UserViewer,
  id: number,
  patch: BugPatch,
  expected?: Expected,
): Promise<repo.FullBugRow> {
  const { db } = ctx;
  const w = await workflow(db);
  await db.transaction(async (tx) => {
    const bug = await repo.lockBug(tx, viewer, id);
    if (!bug) throw notFound('Bug', id);
    if (expected && expected.rowVersion !== bug.row_version)
      throw await midAirCollision(tx, viewer, bug, expected);
    const role = roleOn(viewer, bug);

    const cols: repo.BugColumns = {};
    const set = <K extends keyof repo.BugColumns>(k: K, v: repo.BugColumns[K]) => {
      if (v !== undefined && v !== bug[k as keyof repo.RawBug]) cols[k] = v;
    };
    if (patch.summary !== undefined) set('summary', cleanSummary(patch.summary));
    set('description', patch.description);
    set('severity', patch.severity);
    set('priority', patch.priority);
    set('confidential', patch.confidential);
    set('assignee_id', patch.assigneeId);

    if (patch.productId !== undefined || patch.versionId !== undefined || patch.componentId !== undefined) {
      const productId = patch.productId ?? bug.product_id;
      if (
        productId !== bug.product_id &&
        (patch.versionId === undefined || patch.componentId === undefined)
      ) {
        throw unprocessable(
          'moving a bug to another product needs its version_id and component_id too',
          'version_id',
        );
      }
      const target = {
        productId,
        versionId: patch.versionId ?? bug.version_id,
        componentId: patch.componentId ?? bug.component_id,
      };
      await resolveFilingTarget(tx, viewer, target);
      set('product_id', target.productId);
      set('version_id', target.versionId);
      set('component_id', target.componentId);
    }

    const next = await nextWorkflowState(tx, w, viewer, bug, patch, role);
    set('status', next.status);
    if (next.resolution !== bug.resolution) cols.resolution = next.resolution;
    if (next.duplicateOf !== bug.duplicate_of) cols.duplicate_of = next.duplicateOf;

    // Permissions are checked on what actually changes, so a form that re-sends every field works.
    const changed = Object.keys(cols);
    if (role !== 'staff') {
      const refused = changed.find((f) => role !== 'reporter' || !REPORTER_FIELDS.has(f));
      if (refused) throw forbidden(`You may not change ${refused} of bug ${bug.id}.`);
      if (cols.confidential === false) throw forbidden('Only staff may make a confidential bug public.');
    }

    if (cols.assignee_id != null && (await repo.activeUsers(tx, [cols.assignee_id])).length === 0) {
      throw unprocessable(`user ${cols.assignee_id} does not exist or is disabled`, 'assignee_id');
    }

    const ccAdd = [...new Set(patch.cc?.add ?? [])];
    const ccRemove = [...new Set(patch.cc?.remove ?? [])];
    if (role !== 'staff' && [...ccAdd, ...ccRemove].some((u) => u !== viewer.id)) {
      throw forbidden('You may add or remove only yourself on the CC list.');
    }
    const addUsers = await repo.activeUsers(tx, ccAdd);
    if (addUsers.length !== ccAdd.length) {
      const ok = new Set(addUsers.map((u) => u.id));
      throw unprocessable(`user ${ccAdd.find((u) => !ok.has(u))} does not exist or is disabled`, 'cc.add');
    }
    if (patch.comment?.isPrivate && role !== 'staff')
      throw forbidden('Only staff may write private comments.');

    const currentCc = new Set(await repo.ccOf(tx, bug.id));
    const reallyAdded = ccAdd.filter((u) => !currentCc.has(u));
    const reallyRemoved = ccRemove.filter((u) => currentCc.has(u));

    const changes = await describeChanges(tx, bug, cols);
    if (reallyAdded.length || reallyRemoved.length) {
      const n = await repo.names(tx, 'users', [...reallyAdded, ...reallyRemoved]);
      changes.push({
        field: 'cc',
        old: reallyRemoved.map((u) => n.get(u)).join(', ') || null,
        new: reallyAdded.map((u) => n.get(u)).join(', ') || null,
      });
    }
    if (changes.length === 0 && !patch.comment) return;

    const version = changed.length
      ? await repo.updateBugColumns(tx, bug.id, cols)
      : await repo.touchBug(tx, bug.id);
    await repo.setCc(tx, bug.id, reallyAdded, reallyRemoved);
    await repo.insertChanges(tx, bug.id, viewer.id, version, changes);
    let commentId: number | undefined;
    if (patch.comment) {
      commentId = await repo.insertComment(tx, {
        bugId: bug.id,
        authorId: viewer.id,
        body: patch.comment.body,
        isPrivate: patch.comment.isPrivate ?? false,
        bugVersion: version,
      });
    }
    // The outbox row commits with the change (or not at all): see src/events.
    await recordEvent(tx, {
      kind: changes.length ? 'bug.updated' : 'comment.created',
      bugId: bug.id,
      actorId: viewer.id,
      changes,
      commentId,
    });
    await ctx.bus.publish(tx, `bug:${bug.id}`);
  });
  await ctx.bus.apply(`bug:${id}`);
  return getBug(ctx, viewer, id);
}

/** History rows for changed columns, with names rather than ids where people read them. */
async function describeChanges(tx: Queryable, bug: repo.RawBug, cols: repo.BugColumns): Promise<Change[]> {
  const ref = async (
    table: 'products' | 'versions' | 'components' | 'users',
    a: number | null,
    b: number | null,
  ) => {
    const n = await repo.names(
      tx,
      table,
      [a, b].filter((x): x is number => x !== null),
    );
    return {
      old: a === null ? null : (n.get(a) ?? String(a)),
      new: b === null ? null : (n.get(b) ?? String(b)),
    };
  };
  const out: Change[] = [];
  for (const [field, value] of Object.entries(cols) as [keyof repo.BugColumns, unknown][]) {
    const before = bug[field as keyof repo.RawBug] as unknown;
    switch (field) {
      case 'product_id':
        out.push({ field: 'product', ...(await ref('products', before as number, value as number)) });
        break;
      case 'version_id':
        out.push({ field: 'version', ...(await ref('versions', before as number, value as number)) });
        break;
      case 'component_id':
        out.push({ field: 'component', ...(await ref('components', before as number, value as number)) });
        break;
      case 'assignee_id':
        out.push({
          field: 'assignee',
          ...(await ref('users', before as number | null, value as number | null)),
        });
        break;
      default:
        out.push({
          field,
          old: before === null || before === undefined ? null : String(before),
          new: value === null || value === undefined ? null : String(value),
        });
    }
  }
  return out;
}
