/**
 * Bugzilla's Product, Field and User calls over Bugzot's products, workflow and users services:
 * only what the viewer may see (products and versions by the access rules; other people's addresses
 * to staff only; the user directory searchable by staff only).
 */
import { isStaff, type UserViewer, type Viewer } from '../access/index.ts';
import { workflow } from '../bugs/index.ts';
import type { Db } from '../platform/db.ts';
import { listProducts } from '../products/index.ts';
import { listUsers } from '../users/index.ts';
import { bz, CODE } from './errors.ts';
import { applySelection, list, type Params, PRIORITIES, SEVERITIES, selection, toId } from './fields.ts';
import { People, presentProduct, presentUser } from './present.ts';
import { usersByEmail, usersById } from './repository.ts';

type Product = Awaited<ReturnType<typeof listProducts>>[number];

/** Products the viewer may file bugs against: those with a version they may file against. */
const enterable = (p: Product) => p.versions.length > 0 && p.components.length > 0;

/** `product_accessible` / `product_selectable` / `product_enterable`: `{ids}`. */
export async function productIds(db: Db, viewer: Viewer, kind: 'accessible' | 'selectable' | 'enterable') {
  const products = await listProducts(db, viewer);
  return { ids: (kind === 'enterable' ? products.filter(enterable) : products).map((p) => p.id) };
}

/**
 * `GET /rest/product` and `/rest/product/{id_or_name}`: by `ids`, `names` and/or `type`, within what
 * the viewer may see; unknown or hidden ones are left out (as Bugzilla does).
 */
export async function getProducts(db: Db, viewer: Viewer, p: Params, idOrName?: string) {
  const products = await listProducts(db, viewer);
  const ids = new Set(list(p, 'ids')?.map((v) => toId('ids', v)));
  const names = new Set(list(p, 'names'));
  if (idOrName !== undefined) {
    if (/^[0-9]+$/.test(idOrName)) ids.add(toId('id', idOrName));
    else names.add(idOrName);
  }
  const types = list(p, 'type');
  for (const t of types ?? []) {
    if (!['accessible', 'selectable', 'enterable'].includes(t))
      throw bz(CODE.paramInvalid, `type must be accessible, selectable or enterable, not '${t}'.`);
  }
  const byType = (x: Product) => types?.some((t) => t !== 'enterable' || enterable(x)) ?? false;
  const nothingAsked = ids.size === 0 && names.size === 0 && !types;
  const chosen = products.filter((x) => nothingAsked || ids.has(x.id) || names.has(x.name) || byType(x));
  const people = await People.load(
    db,
    viewer,
    chosen.flatMap((x) =>
      x.components.flatMap((c) => (c.default_assignee_id ? [c.default_assignee_id] : [])),
    ),
  );
  const sel = selection(p);
  return { products: chosen.map((x) => applySelection(presentProduct(x, people), sel)) };
}

/** Bugzilla's field types. */
const FIELD_TYPE = { unknown: 0, freetext: 1, select: 2, textarea: 4, datetime: 5, bugId: 6 } as const;

/** Bugzilla's API names of the fields Bugzot has -> their internal names. */
const FIELD_NAME: Record<string, string> = {
  status: 'bug_status',
  severity: 'bug_severity',
  summary: 'short_desc',
  id: 'bug_id',
  creator: 'reporter',
  creation_time: 'creation_ts',
  last_change_time: 'delta_ts',
  dupe_of: 'dup_id',
  description: 'longdesc',
};

function value(name: string, i: number, extra: Record<string, unknown> = {}) {
  return { name, sort_key: i * 10, sortkey: i * 10, visibility_values: [], is_active: true, ...extra };
}

/** Every field Bugzot has, in Bugzilla's Field.fields shape, with the values the viewer may see. */
async function allFields(db: Db, viewer: Viewer) {
  const [w, products] = await Promise.all([workflow(db), listProducts(db, viewer)]);
  const field = (
    id: number,
    name: string,
    display: string,
    type: number,
    extra: Record<string, unknown> = {},
  ) => ({
    id,
    name,
    display_name: display,
    type,
    is_custom: false,
    is_mandatory: ['product', 'component', 'version', 'short_desc'].includes(name),
    is_on_bug_entry: false,
    visibility_field: null,
    visibility_values: [],
    value_field: null,
    values: [],
    ...extra,
  });
  const perProduct = (pick: (p: Product) => { name: string }[]) =>
    products.flatMap((p) => pick(p).map((x, i) => ({ ...value(x.name, i), visibility_values: [p.name] })));
  return [
    field(1, 'bug_id', 'Bug #', FIELD_TYPE.unknown),
    field(2, 'short_desc', 'Summary', FIELD_TYPE.freetext),
    field(3, 'product', 'Product', FIELD_TYPE.select, {
      values: products.map((p, i) => value(p.name, i)),
    }),
    field(4, 'version', 'Version', FIELD_TYPE.select, {
      value_field: 'product',
      values: perProduct((p) => p.versions),
    }),
    field(5, 'component', 'Component', FIELD_TYPE.select, {
      value_field: 'product',
      values: perProduct((p) => p.components),
    }),
    field(6, 'bug_status', 'Status', FIELD_TYPE.select, {
      values: w.statuses.map((s, i) =>
        value(s.name, i, {
          is_open: s.isOpen,
          can_change_to: [...(w.transitions.get(s.name)?.keys() ?? [])].map((to) => ({
            name: to,
            comment_required: false,
          })),
        }),
      ),
    }),
    field(7, 'resolution', 'Resolution', FIELD_TYPE.select, {
      values: ['', ...w.resolutions].map((r, i) => value(r, i)),
    }),
    field(8, 'bug_severity', 'Severity', FIELD_TYPE.select, {
      values: SEVERITIES.map((s, i) => value(s, i)),
    }),
    field(9, 'priority', 'Priority', FIELD_TYPE.select, { values: PRIORITIES.map((s, i) => value(s, i)) }),
    field(10, 'reporter', 'Reporter', FIELD_TYPE.unknown),
    field(11, 'assigned_to', 'Assignee', FIELD_TYPE.unknown),
    field(12, 'cc', 'CC', FIELD_TYPE.unknown),
    field(13, 'creation_ts', 'Opened', FIELD_TYPE.datetime),
    field(14, 'delta_ts', 'Changed', FIELD_TYPE.datetime),
    field(15, 'dup_id', 'Duplicate of', FIELD_TYPE.bugId),
    field(16, 'longdesc', 'Description', FIELD_TYPE.textarea),
    field(17, 'bug_group', 'Group', FIELD_TYPE.unknown, { values: [value('confidential', 0)] }),
  ];
}

/** Field names as clients send them (API or internal) -> the internal name. */
function internalName(name: string): string {
  return FIELD_NAME[name] ?? (name === 'groups' ? 'bug_group' : name);
}

/** `GET /rest/field/bug` (optionally `names`/`ids`) and `/rest/field/bug/{id_or_name}`. */
export async function getFields(db: Db, viewer: Viewer, p: Params, idOrName?: string) {
  const fields = await allFields(db, viewer);
  const names = new Set((list(p, 'names') ?? []).map(internalName));
  const ids = new Set(list(p, 'ids')?.map((v) => toId('ids', v)));
  if (idOrName !== undefined) {
    if (/^[0-9]+$/.test(idOrName)) ids.add(toId('id', idOrName));
    else names.add(internalName(idOrName));
  }
  const chosen =
    names.size === 0 && ids.size === 0 ? fields : fields.filter((f) => names.has(f.name) || ids.has(f.id));
  if (idOrName !== undefined && chosen.length === 0) {
    throw bz(CODE.invalidFieldName, `There is no field named '${idOrName}'.`);
  }
  const sel = selection(p);
  return { fields: chosen.map((f) => applySelection(f, sel)) };
}

/** `GET /rest/field/bug/{name}[/{product_id}]/values`: the legal values, `{values: [names]}`. */
export async function legalValues(db: Db, viewer: Viewer, name: string, productId?: number) {
  const field = (await allFields(db, viewer)).find((f) => f.name === internalName(name));
  if (!field || field.values.length === 0) {
    throw bz(CODE.invalidFieldName, `'${name}' is not a field with a list of values.`);
  }
  let values = field.values as { name: string; visibility_values: string[] }[];
  if (productId !== undefined) {
    const product = (await listProducts(db, viewer)).find((p) => p.id === productId);
    if (!product)
      throw bz(CODE.productAccessDenied, `Product #${productId} does not exist or you may not use it.`);
    if (field.value_field === 'product')
      values = values.filter((v) => v.visibility_values.includes(product.name));
  }
  return { values: [...new Set(values.map((v) => v.name))] };
}

/**
 * `GET /rest/user` (`ids`, `names`, `match`) and `/rest/user/{id_or_name}`. Anonymous callers get 505
 * (python-bugzilla's `logged_in` relies on it); only staff search the directory with `match` or look
 * others up by address; unknown ids are left out, an unknown or hidden name is 51.
 */
export async function getUsers(db: Db, viewer: Viewer, p: Params, idOrName?: string) {
  const ids = list(p, 'ids')?.map((v) => toId('ids', v)) ?? [];
  const names = list(p, 'names') ?? [];
  const match = list(p, 'match');
  if (idOrName !== undefined) {
    if (/^[0-9]+$/.test(idOrName)) ids.push(toId('id', idOrName));
    else names.push(idOrName);
  }
  if (viewer.kind !== 'user') {
    throw bz(CODE.userAccessDenied, 'Logged-out users cannot look up users; log in or send an API key.');
  }
  if (ids.length === 0 && names.length === 0 && !match) {
    throw bz(CODE.paramRequired, 'User.get needs ids, names or match.');
  }
  const found = new Map<number, Awaited<ReturnType<typeof usersByEmail>>[number]>();
  for (const u of (await usersById(db, ids)).values()) {
    if (!u.disabled || isStaff(viewer)) found.set(u.id, u);
  }
  for (const name of names) {
    const self = name.toLowerCase() === (viewer as UserViewer).email.toLowerCase();
    const u = isStaff(viewer) || self ? (await usersByEmail(db, [name]))[0] : undefined;
    if (!u || (u.disabled && !isStaff(viewer))) {
      throw bz(CODE.objectDoesNotExist, `There is no user named '${name}' that you may look up.`);
    }
    found.set(u.id, u);
  }
  if (match) {
    if (!isStaff(viewer)) throw bz(CODE.userAccessDenied, 'Only staff may search the user directory.');
    const limit = Math.min(Number(list(p, 'limit')?.[0] ?? 100) || 100, 200);
    for (const m of match) {
      const rows = await listUsers(db, viewer, { query: m, limit });
      for (const u of (
        await usersById(
          db,
          rows.map((r) => r.id),
        )
      ).values())
        found.set(u.id, u);
    }
  }
  const people = new People(viewer, new Map(found));
  const sel = selection(p);
  return { users: [...found.values()].map((u) => applySelection(presentUser(u, people), sel)) };
}
