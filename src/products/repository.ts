/** SQL of the products module: products, versions (releases) and components. */
import { type Viewer, visibleProducts, visibleVersions } from '../access/index.ts';
import { type Queryable, sql } from '../platform/db.ts';

/** A product with what the viewer may see of its versions and components. */
export interface ProductRow {
  id: number;
  name: string;
  description: string;
  is_released: boolean;
  created_at: Date;
  versions: { id: number; name: string; is_released: boolean; sort_key: number }[];
  components: { id: number; name: string; description: string; default_assignee_id: number | null }[];
}

export interface VersionRow {
  id: number;
  product_id: number;
  name: string;
  is_released: boolean;
  sort_key: number;
}

export interface ComponentRow {
  id: number;
  product_id: number;
  name: string;
  description: string;
  default_assignee_id: number | null;
}

function productsQuery(viewer: Viewer, where: ReturnType<typeof sql>) {
  return sql`
    SELECT p.id, p.name, p.description, p.is_released, p.created_at,
      COALESCE((SELECT json_agg(json_build_object('id', v.id, 'name', v.name, 'is_released', v.is_released,
                                                  'sort_key', v.sort_key) ORDER BY v.sort_key, v.id)
                FROM versions v WHERE v.product_id = p.id AND ${visibleVersions(viewer, 'v')}), '[]') AS versions,
      COALESCE((SELECT json_agg(json_build_object('id', c.id, 'name', c.name, 'description', c.description,
                                                  'default_assignee_id', c.default_assignee_id) ORDER BY c.name)
                FROM components c WHERE c.product_id = p.id), '[]') AS components
    FROM products p
    WHERE ${visibleProducts(viewer, 'p')} AND ${where}
    ORDER BY p.name`;
}

export function listProducts(db: Queryable, viewer: Viewer): Promise<ProductRow[]> {
  return db.query<ProductRow>(productsQuery(viewer, sql`TRUE`));
}

export async function findProduct(
  db: Queryable,
  viewer: Viewer,
  id: number,
): Promise<ProductRow | undefined> {
  return (await db.query<ProductRow>(productsQuery(viewer, sql`p.id = ${id}`)))[0];
}

export async function insertProduct(
  db: Queryable,
  p: { name: string; description: string; isReleased: boolean },
): Promise<number> {
  const rows = await db.query<{ id: number }>(sql`
    INSERT INTO products (name, description, is_released) VALUES (${p.name}, ${p.description}, ${p.isReleased})
    RETURNING id`);
  return rows[0]!.id;
}

export async function updateProduct(
  db: Queryable,
  id: number,
  p: { name?: string | undefined; description?: string | undefined; isReleased?: boolean | undefined },
): Promise<boolean> {
  const rows = await db.query(sql`
    UPDATE products SET name = COALESCE(${p.name ?? null}, name),
      description = COALESCE(${p.description ?? null}, description),
      is_released = COALESCE(${p.isReleased ?? null}::boolean, is_released)
    WHERE id = ${id} RETURNING id`);
  return rows.length > 0;
}

export async function insertVersion(
  db: Queryable,
  v: { productId: number; name: string; isReleased: boolean; sortKey: number },
): Promise<VersionRow> {
  const rows = await db.query<VersionRow>(sql`
    INSERT INTO versions (product_id, name, is_released, sort_key)
    VALUES (${v.productId}, ${v.name}, ${v.isReleased}, ${v.sortKey})
    RETURNING id, product_id, name, is_released, sort_key`);
  return rows[0]!;
}

export async function updateVersion(
  db: Queryable,
  id: number,
  v: { name?: string | undefined; isReleased?: boolean | undefined; sortKey?: number | undefined },
): Promise<VersionRow | undefined> {
  const rows = await db.query<VersionRow>(sql`
    UPDATE versions SET name = COALESCE(${v.name ?? null}, name),
      is_released = COALESCE(${v.isReleased ?? null}::boolean, is_released),
      sort_key = COALESCE(${v.sortKey ?? null}::int, sort_key)
    WHERE id = ${id} RETURNING id, product_id, name, is_released, sort_key`);
  return rows[0];
}

/** A version as the viewer may see it (a released version of a visible product for externals). */
export async function findVersion(
  db: Queryable,
  viewer: Viewer,
  id: number,
): Promise<VersionRow | undefined> {
  const rows = await db.query<VersionRow>(sql`
    SELECT v.id, v.product_id, v.name, v.is_released, v.sort_key FROM versions v
    WHERE v.id = ${id} AND ${visibleVersions(viewer, 'v')}`);
  return rows[0];
}

export async function insertComponent(
  db: Queryable,
  c: { productId: number; name: string; description: string; defaultAssigneeId: number | null },
): Promise<ComponentRow> {
  const rows = await db.query<ComponentRow>(sql`
    INSERT INTO components (product_id, name, description, default_assignee_id)
    VALUES (${c.productId}, ${c.name}, ${c.description}, ${c.defaultAssigneeId})
    RETURNING id, product_id, name, description, default_assignee_id`);
  return rows[0]!;
}

export async function updateComponent(
  db: Queryable,
  id: number,
  c: {
    name?: string | undefined;
    description?: string | undefined;
    defaultAssigneeId?: number | null | undefined;
  },
): Promise<ComponentRow | undefined> {
  const setAssignee = c.defaultAssigneeId !== undefined;
  const rows = await db.query<ComponentRow>(sql`
    UPDATE components SET name = COALESCE(${c.name ?? null}, name),
      description = COALESCE(${c.description ?? null}, description),
      default_assignee_id = CASE WHEN ${setAssignee} THEN ${c.defaultAssigneeId ?? null}::int
                                 ELSE default_assignee_id END
    WHERE id = ${id} RETURNING id, product_id, name, description, default_assignee_id`);
  return rows[0];
}

/** A component of a product the viewer may see. */
export async function findComponent(
  db: Queryable,
  viewer: Viewer,
  id: number,
): Promise<ComponentRow | undefined> {
  const rows = await db.query<ComponentRow>(sql`
    SELECT c.id, c.product_id, c.name, c.description, c.default_assignee_id
    FROM components c JOIN products p ON p.id = c.product_id
    WHERE c.id = ${id} AND ${visibleProducts(viewer, 'p')}`);
  return rows[0];
}

/** Whether an active user with this id exists (for default assignees). */
export async function activeUserExists(db: Queryable, id: number): Promise<boolean> {
  return (await db.query(sql`SELECT 1 FROM users WHERE id = ${id} AND NOT disabled`)).length > 0;
}
