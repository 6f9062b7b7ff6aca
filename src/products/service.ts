/**
 * Products, their versions (releases) and components. Everybody reads what the visibility rules let
 * them see; only admins write. A product is internal-only until released; so is a version.
 */
import { isAdmin, type Viewer } from '../access/index.ts';
import { type Db, isUniqueViolation, type Queryable } from '../platform/db.ts';
import { conflict, forbidden, invalid, notFound, unprocessable } from '../platform/errors.ts';
import type { Invalidation } from '../platform/invalidation.ts';
import * as repo from './repository.ts';

export type { ComponentRow, ProductRow, VersionRow } from './repository.ts';

function requireAdmin(viewer: Viewer) {
  if (!isAdmin(viewer)) throw forbidden('Only admins may change products, versions and components.');
}

/**
 * Checks a name and description as the tables take them (the API's schemas say the same; the pages
 * rely on this): a name of 1 to 64 characters, not blank; a description of at most 10,000.
 */
function checkText(input: { name?: string | undefined; description?: string | undefined }) {
  if (input.name !== undefined) {
    const name = input.name.trim();
    if (!name) throw invalid('name must not be blank', 'name');
    if (name.length > 64) throw invalid('name must be at most 64 characters', 'name');
  }
  if (input.description !== undefined && input.description.length > 10000)
    throw invalid('description must be at most 10000 characters', 'description');
}

/** Runs an insert/update, turning a duplicate name into a 409 that names the field. */
async function uniqueName<T>(what: string, name: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isUniqueViolation(err))
      throw conflict(`${what} named "${name}" already exists`, 'name', {}, 'duplicate_name');
    throw err;
  }
}

/** What the product commands that change shared data work with. */
export interface ProductsContext {
  db: Db;
  bus: Invalidation;
}

/**
 * Releases, renames and moves change what cached bugs show and who may see them: every process drops
 * its cached bugs after such a change (rare admin actions, so dropping all is cheap).
 */
async function invalidateAll(ctx: ProductsContext): Promise<void> {
  await ctx.bus.apply('all');
  await ctx.bus.publish(ctx.db, 'all');
}

/** Products the viewer may see, with their visible versions and components. */
export function listProducts(db: Queryable, viewer: Viewer) {
  return repo.listProducts(db, viewer);
}

/** One product, or 404 when it does not exist or the viewer may not see it. */
export async function getProduct(db: Queryable, viewer: Viewer, id: number) {
  const p = await repo.findProduct(db, viewer, id);
  if (!p) throw notFound('Product', id);
  return p;
}

/** One version, or 404 when it does not exist or the viewer may not see it. */
export async function getVersion(db: Queryable, viewer: Viewer, id: number) {
  const v = await repo.findVersion(db, viewer, id);
  if (!v) throw notFound('Version', id);
  return v;
}

/** One component of a product the viewer may see, or 404. */
export async function getComponent(db: Queryable, viewer: Viewer, id: number) {
  const c = await repo.findComponent(db, viewer, id);
  if (!c) throw notFound('Component', id);
  return c;
}

/** Creates a product (admins). */
export async function createProduct(
  db: Db,
  viewer: Viewer,
  input: { name: string; description?: string | undefined; isReleased?: boolean | undefined },
) {
  requireAdmin(viewer);
  checkText(input);
  const id = await uniqueName('a product', input.name, () =>
    repo.insertProduct(db, {
      name: input.name.trim(),
      description: input.description ?? '',
      isReleased: input.isReleased ?? false,
    }),
  );
  return getProduct(db, viewer, id);
}

/** Renames, describes, releases or un-releases a product (admins). */
export async function updateProduct(
  ctx: ProductsContext,
  viewer: Viewer,
  id: number,
  patch: { name?: string | undefined; description?: string | undefined; isReleased?: boolean | undefined },
) {
  requireAdmin(viewer);
  checkText(patch);
  const { db } = ctx;
  const name = patch.name?.trim();
  const ok = await uniqueName('a product', name, () => repo.updateProduct(db, id, { ...patch, name }));
  if (!ok) throw notFound('Product', id);
  await invalidateAll(ctx);
  return getProduct(db, viewer, id);
}

/** Adds a version (release) to a product (admins). */
export async function createVersion(
  db: Db,
  viewer: Viewer,
  productId: number,
  input: { name: string; isReleased?: boolean | undefined; sortKey?: number | undefined },
) {
  requireAdmin(viewer);
  checkText(input);
  await getProduct(db, viewer, productId);
  return uniqueName('a version of this product', input.name, () =>
    repo.insertVersion(db, {
      productId,
      name: input.name.trim(),
      isReleased: input.isReleased ?? false,
      sortKey: input.sortKey ?? 0,
    }),
  );
}

/** Renames, releases or reorders a version (admins). */
export async function updateVersion(
  ctx: ProductsContext,
  viewer: Viewer,
  id: number,
  patch: { name?: string | undefined; isReleased?: boolean | undefined; sortKey?: number | undefined },
) {
  requireAdmin(viewer);
  checkText(patch);
  const { db } = ctx;
  const name = patch.name?.trim();
  const v = await uniqueName('a version of this product', name, () =>
    repo.updateVersion(db, id, { ...patch, name }),
  );
  if (!v) throw notFound('Version', id);
  await invalidateAll(ctx);
  return v;
}

/** Adds a component to a product (admins). */
export async function createComponent(
  db: Db,
  viewer: Viewer,
  productId: number,
  input: { name: string; description?: string | undefined; defaultAssigneeId?: number | null | undefined },
) {
  requireAdmin(viewer);
  checkText(input);
  await getProduct(db, viewer, productId);
  if (input.defaultAssigneeId && !(await repo.activeUserExists(db, input.defaultAssigneeId))) {
    throw unprocessable(
      `user ${input.defaultAssigneeId} does not exist or is disabled`,
      'default_assignee_id',
    );
  }
  return uniqueName('a component of this product', input.name, () =>
    repo.insertComponent(db, {
      productId,
      name: input.name.trim(),
      description: input.description ?? '',
      defaultAssigneeId: input.defaultAssigneeId ?? null,
    }),
  );
}

/** Renames, describes or sets the default assignee of a component (admins). */
export async function updateComponent(
  ctx: ProductsContext,
  viewer: Viewer,
  id: number,
  patch: {
    name?: string | undefined;
    description?: string | undefined;
    defaultAssigneeId?: number | null | undefined;
  },
) {
  requireAdmin(viewer);
  checkText(patch);
  const { db } = ctx;
  if (patch.defaultAssigneeId && !(await repo.activeUserExists(db, patch.defaultAssigneeId))) {
    throw unprocessable(
      `user ${patch.defaultAssigneeId} does not exist or is disabled`,
      'default_assignee_id',
    );
  }
  const name = patch.name?.trim();
  const c = await uniqueName('a component of this product', name, () =>
    repo.updateComponent(db, id, { ...patch, name }),
  );
  if (!c) throw notFound('Component', id);
  await invalidateAll(ctx);
  return c;
}

/**
 * Checks where a bug is filed or moved to: the product must be visible to the viewer, and the version
 * and component must belong to that product (and the version be visible: externals file only against
 * released versions). Returns the three, or throws naming the field at fault.
 */
export async function resolveFilingTarget(
  db: Queryable,
  viewer: Viewer,
  target: { productId: number; versionId: number; componentId: number },
) {
  const product = await repo.findProduct(db, viewer, target.productId);
  if (!product)
    throw unprocessable(`product ${target.productId} does not exist`, 'product_id', 'unknown_product');
  const version = await repo.findVersion(db, viewer, target.versionId);
  if (!version)
    throw unprocessable(`version ${target.versionId} does not exist`, 'version_id', 'unknown_version');
  if (version.product_id !== product.id) {
    throw unprocessable(
      `version "${version.name}" is not a version of ${product.name}`,
      'version_id',
      'version_of_other_product',
    );
  }
  const component = await repo.findComponent(db, viewer, target.componentId);
  if (!component || component.product_id !== product.id) {
    throw unprocessable(
      `component ${target.componentId} is not a component of ${product.name}`,
      'component_id',
      'component_of_other_product',
    );
  }
  return { product, version, component };
}
