/**
 * Bugzilla's Bug changes (create, update, add_comment) on top of Bugzot's bugs service: names become
 * ids, Bugzilla's fields become a Bugzot patch, and the service decides what is allowed — the same
 * visibility, workflow, permission and mid-air collision rules as the API and the pages.
 */
import { isStaff, type UserViewer, type Viewer } from '../access/index.ts';
import { addComment, type BugsContext, bugHistory, fileBug, getBug, updateBug } from '../bugs/index.ts';
import { getComponent, listProducts } from '../products/index.ts';
import { findActiveUserByEmail } from '../users/index.ts';
import { refuseUnknown } from './bugs.ts';
import { bz, CODE } from './errors.ts';
import { bzDate, flag, list, one, type Params, toId, toPriority, toSeverity } from './fields.ts';
import { presentChange } from './present.ts';
import { usersByEmail } from './repository.ts';

type BugPatch = Parameters<typeof updateBug>[3];
type FullBug = Awaited<ReturnType<typeof getBug>>;

/** A product the viewer may see, by name, with its visible versions and components. */
async function productNamed(ctx: BugsContext, viewer: Viewer, name: string) {
  const product = (await listProducts(ctx.db, viewer)).find((x) => x.name === name);
  if (!product) throw bz(CODE.productAccessDenied, `Product '${name}' does not exist or you may not use it.`);
  return product;
}

function versionNamed(product: { name: string; versions: { id: number; name: string }[] }, name: string) {
  const v = product.versions.find((x) => x.name === name);
  if (!v)
    throw bz(CODE.objectDoesNotExist, `There is no version named '${name}' in product '${product.name}'.`);
  return v.id;
}

function componentNamed(product: { name: string; components: { id: number; name: string }[] }, name: string) {
  const c = product.components.find((x) => x.name === name);
  if (!c)
    throw bz(CODE.requireComponent, `There is no component named '${name}' in product '${product.name}'.`);
  return c.id;
}

/**
 * Users named by login (e-mail address). Only staff name other people: for anybody else a name that is
 * not their own is refused before any lookup, so the answer never tells whether an address exists.
 */
async function userIdsOf(
  ctx: BugsContext,
  viewer: UserViewer,
  emails: string[],
  field: string,
  activeOnly = true,
) {
  const out: number[] = [];
  for (const email of emails) {
    if (!isStaff(viewer) && email.toLowerCase() !== viewer.email.toLowerCase()) {
      throw bz(CODE.illegalChange, `You may name only yourself in ${field}.`);
    }
    // Removing someone from a list works for disabled accounts too; adding needs an active one.
    const u = activeOnly
      ? await findActiveUserByEmail(ctx.db, email)
      : (await usersByEmail(ctx.db, [email]))[0];
    if (!u) throw bz(CODE.invalidUser, `There is no active user with the login name '${email}'.`);
    out.push(u.id);
  }
  return out;
}

/** `{add, remove}` of a Bugzilla list change. */
function addRemove(p: Params, name: string): { add: string[]; remove: string[] } | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw bz(CODE.paramInvalid, `${name} must be an object with add and/or remove lists.`);
  }
  const o = v as Params;
  if ('set' in o) throw bz(CODE.paramInvalid, `${name} does not take 'set' in Bugzot; use add and remove.`);
  return { add: list(o, 'add') ?? [], remove: list(o, 'remove') ?? [] };
}

/** Bugzot's only group: `confidential`. */
function confidentialOf(groups: string[]): boolean {
  const unknown = groups.find((g) => g !== 'confidential');
  if (unknown !== undefined)
    throw bz(CODE.paramInvalid, `There is no group '${unknown}' (Bugzot has only 'confidential').`);
  return groups.length > 0;
}

const CREATE_PARAMS = new Set([
  'product',
  'component',
  'version',
  'summary',
  'description',
  'severity',
  'priority',
  'status',
  'assigned_to',
  'cc',
  'groups',
  'comment_is_private',
  'op_sys',
  'platform',
  'rep_platform',
]);

/** `POST /rest/bug`: files a bug; `{id}`. op_sys and platform are accepted and ignored. */
export async function createBug(ctx: BugsContext, viewer: UserViewer, p: Params) {
  refuseUnknown(p, CREATE_PARAMS, 'a new bug');
  const productName = one(p, 'product');
  if (!productName) throw bz(CODE.paramRequired, 'You must name the product to file the bug against.');
  const componentName = one(p, 'component');
  if (!componentName) throw bz(CODE.requireComponent, 'You must name a component.');
  const versionName = one(p, 'version');
  if (!versionName) throw bz(CODE.paramRequired, 'You must name the version the bug is seen in.');
  const summary = one(p, 'summary');
  if (!summary?.trim()) throw bz(CODE.requireSummary, 'You must enter a summary for this bug.');
  if (flag(p, 'comment_is_private')) throw bz(CODE.paramInvalid, 'Bugzot descriptions cannot be private.');
  const product = await productNamed(ctx, viewer, productName);
  const assignee = one(p, 'assigned_to');
  const severity = one(p, 'severity');
  const priority = one(p, 'priority');
  const bug = await fileBug(ctx, viewer, {
    productId: product.id,
    versionId: versionNamed(product, versionName),
    componentId: componentNamed(product, componentName),
    summary,
    description: one(p, 'description') ?? '',
    severity: severity === undefined ? undefined : toSeverity(severity),
    priority: priority === undefined ? undefined : toPriority(priority),
    status: one(p, 'status'),
    assigneeId: assignee ? (await userIdsOf(ctx, viewer, [assignee], 'assigned_to'))[0] : undefined,
    cc: await userIdsOf(ctx, viewer, list(p, 'cc') ?? [], 'cc'),
    confidential: confidentialOf(list(p, 'groups') ?? []),
  });
  return { id: bug.id };
}

const UPDATE_PARAMS = new Set([
  'ids',
  'id_or_alias',
  'summary',
  'status',
  'resolution',
  'dupe_of',
  'severity',
  'priority',
  'assigned_to',
  'reset_assigned_to',
  'product',
  'component',
  'version',
  'cc',
  'comment',
  'groups',
  'update_token',
  'minor_update',
  'op_sys',
  'platform',
  'rep_platform',
]);

/** The comment of an update or of `add_comment`: `{body}` (Bugzilla 5) or `{comment}` (older clients). */
function commentOf(v: unknown): { body: string; isPrivate: boolean } | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return { body: v, isPrivate: false };
  if (typeof v !== 'object' || Array.isArray(v))
    throw bz(CODE.paramInvalid, 'comment must be an object {body, is_private}.');
  const c = v as Params;
  const body = one(c, 'body') ?? one(c, 'comment');
  if (body === undefined) throw bz(CODE.paramRequired, 'comment needs a body.');
  return { body, isPrivate: flag(c, 'is_private') ?? false };
}

/** Builds Bugzot's patch for one bug from Bugzilla's update parameters. */
async function patchFor(ctx: BugsContext, viewer: UserViewer, bug: FullBug, p: Params): Promise<BugPatch> {
  const patch: BugPatch = {};
  const summary = one(p, 'summary');
  if (summary !== undefined) patch.summary = summary;
  const status = one(p, 'status');
  if (status !== undefined) patch.status = status.toUpperCase();
  const resolution = one(p, 'resolution');
  if (resolution !== undefined)
    patch.resolution = resolution === '' || resolution === '---' ? null : resolution;
  const dupe = one(p, 'dupe_of');
  if (dupe !== undefined) {
    // As in Bugzilla, naming the original resolves the bug as its duplicate.
    patch.duplicateOf = toId('dupe_of', dupe);
    patch.resolution ??= 'DUPLICATE';
    if (patch.status === undefined && !['RESOLVED', 'VERIFIED', 'CLOSED'].includes(bug.status))
      patch.status = 'RESOLVED';
  }
  const severity = one(p, 'severity');
  if (severity !== undefined) patch.severity = toSeverity(severity);
  const priority = one(p, 'priority');
  if (priority !== undefined) patch.priority = toPriority(priority);
  const assignee = one(p, 'assigned_to');
  if (assignee !== undefined) {
    patch.assigneeId = assignee === '' ? null : (await userIdsOf(ctx, viewer, [assignee], 'assigned_to'))[0];
  }
  if (flag(p, 'reset_assigned_to')) {
    patch.assigneeId = (await getComponent(ctx.db, viewer, bug.component_id)).default_assignee_id;
  }
  const productName = one(p, 'product');
  const componentName = one(p, 'component');
  const versionName = one(p, 'version');
  if (productName !== undefined || componentName !== undefined || versionName !== undefined) {
    const product = await productNamed(ctx, viewer, productName ?? bug.product);
    if (product.id !== bug.product_id) patch.productId = product.id;
    if (componentName !== undefined || product.id !== bug.product_id)
      patch.componentId = componentNamed(product, componentName ?? bug.component);
    if (versionName !== undefined || product.id !== bug.product_id)
      patch.versionId = versionNamed(product, versionName ?? bug.version);
  }
  const cc = addRemove(p, 'cc');
  if (cc) {
    patch.cc = {
      add: await userIdsOf(ctx, viewer, cc.add, 'cc'),
      remove: await userIdsOf(ctx, viewer, cc.remove, 'cc', false),
    };
  }
  const groups = addRemove(p, 'groups');
  if (groups) {
    if (confidentialOf(groups.add)) patch.confidential = true;
    if (confidentialOf(groups.remove)) patch.confidential = false;
  }
  const comment = commentOf(p['comment']);
  if (comment) patch.comment = comment;
  return patch;
}

/**
 * `PUT /rest/bug/{id}`: changes one or more bugs (path id plus `ids`), each all or nothing through the
 * bugs service; answers Bugzilla's `changes` {field: {added, removed}} per bug. `update_token` (the
 * bug's `update_token` as last read) or an `If-Match` ETag makes a stale change a mid-air collision.
 */
export async function updateBugs(
  ctx: BugsContext,
  viewer: UserViewer,
  pathId: number,
  p: Params,
  ifMatch: number | undefined,
) {
  refuseUnknown(p, UPDATE_PARAMS, 'a bug change');
  const ids = [...new Set([pathId, ...(list(p, 'ids')?.map((v) => toId('ids', v)) ?? [])])];
  const token = one(p, 'update_token');
  if (token !== undefined && !/^[0-9]{1,10}$/.test(token))
    throw bz(CODE.paramInvalid, 'update_token is not one this server gave out.');
  const expectedVersion = token !== undefined ? Number(token) : ifMatch;
  if (expectedVersion !== undefined && ids.length > 1) {
    throw bz(CODE.paramInvalid, 'update_token applies to one bug; change the bugs one at a time.');
  }
  // Every bug must exist and be visible before any is changed.
  const before = new Map<number, FullBug>();
  for (const id of ids) {
    try {
      before.set(id, await getBug(ctx, viewer, id));
    } catch (err) {
      if ((err as { status?: number }).status === 404)
        throw bz(CODE.bugDoesNotExist, `Bug #${id} does not exist.`);
      throw err;
    }
  }
  const out = [];
  for (const id of ids) {
    const old = before.get(id)!;
    const patch = await patchFor(ctx, viewer, old, p);
    const expected =
      expectedVersion === undefined ? undefined : { rowVersion: expectedVersion, via: 'if-match' as const };
    const after = await updateBug(ctx, viewer, id, patch, expected);
    const changes: Record<string, { added: string; removed: string }> = {};
    if (after.row_version !== old.row_version) {
      for (const c of await bugHistory(ctx, viewer, id)) {
        if (c.bug_version <= old.row_version || c.actor_id !== viewer.id) continue;
        const { field_name, added, removed } = presentChange(c);
        changes[field_name] = { added, removed };
      }
    }
    out.push({ id, alias: [], last_change_time: bzDate(after.changed_at), changes });
  }
  return { bugs: out };
}

/** `POST /rest/bug/{id}/comment`: adds a comment; `{id}`. */
export async function addBugComment(ctx: BugsContext, viewer: UserViewer, id: number, p: Params) {
  refuseUnknown(p, new Set(['comment', 'body', 'is_private', 'id_or_alias', 'is_markdown']), 'a comment');
  const body = one(p, 'comment') ?? one(p, 'body');
  if (body === undefined)
    throw bz(CODE.paramRequired, 'The function Bug.add_comment requires a comment argument.');
  const c = await addComment(ctx, viewer, id, { body, isPrivate: flag(p, 'is_private') ?? false });
  return { id: c.id };
}
