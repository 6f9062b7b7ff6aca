/**
 * Email preferences: a matrix of (role on the bug) x (kind of change), as in Bugzilla, every cell on by
 * default; whether to be mailed about one's own changes (off by default); and watched products and
 * components. Stored as the cells a user turned away from the default.
 */
import { type UserViewer, visibleProducts } from '../access/index.ts';
import { type Db, isUniqueViolation, type Queryable, sql } from '../platform/db.ts';
import { notFound, unprocessable } from '../platform/errors.ts';

/** How a person relates to a bug. */
export const ROLES = ['reporter', 'assignee', 'cc', 'watcher'] as const;
/** A role on a bug. */
export type Role = (typeof ROLES)[number];

/** Kinds of change a person may want mail about. */
export const EVENTS = [
  'filed',
  'status',
  'resolved',
  'comment',
  'assignee',
  'attachment',
  'cc',
  'other',
] as const;
/** A kind of change. */
export type NotifyEvent = (typeof EVENTS)[number];

/** Labels shown on the preferences page. */
export const ROLE_LABELS: Record<Role, string> = {
  reporter: 'I reported the bug',
  assignee: 'I am the assignee',
  cc: 'I am on the CC list',
  watcher: 'I watch its product or component',
};
/** Labels shown on the preferences page. */
export const EVENT_LABELS: Record<NotifyEvent, string> = {
  filed: 'A bug is filed',
  status: 'The status changes',
  resolved: 'The bug is resolved or reopened',
  comment: 'A comment is added',
  assignee: 'The assignee changes',
  attachment: 'An attachment is added',
  cc: 'The CC list changes',
  other: 'Any other field changes',
};

/** Header values for X-Bugzot-Reason, as Bugzilla names them. */
export const REASON_NAMES: Record<Role, string> = {
  reporter: 'Reporter',
  assignee: 'AssignedTo',
  cc: 'CC',
  watcher: 'Watcher',
};

/** One user's preferences. */
export interface Preferences {
  mailOwnChanges: boolean;
  matrix: Record<Role, Record<NotifyEvent, boolean>>;
}

function defaults(): Preferences {
  const matrix = {} as Preferences['matrix'];
  for (const r of ROLES)
    matrix[r] = Object.fromEntries(EVENTS.map((e) => [e, true])) as Record<NotifyEvent, boolean>;
  return { mailOwnChanges: false, matrix };
}

/** The preferences of each of `userIds` (defaults for those who changed nothing). */
export async function loadPreferences(
  q: Queryable,
  userIds: readonly number[],
): Promise<Map<number, Preferences>> {
  const out = new Map<number, Preferences>(userIds.map((id) => [id, defaults()]));
  if (userIds.length === 0) return out;
  const ids = [...userIds];
  const [cells, settings] = await Promise.all([
    q.query<{ user_id: number; role: Role; event: NotifyEvent; enabled: boolean }>(
      sql`SELECT user_id, role, event, enabled FROM notification_prefs WHERE user_id = ANY(${ids}::int[])`,
    ),
    q.query<{ user_id: number; mail_own_changes: boolean }>(
      sql`SELECT user_id, mail_own_changes FROM notification_settings WHERE user_id = ANY(${ids}::int[])`,
    ),
  ]);
  for (const c of cells) {
    const p = out.get(c.user_id);
    if (p && c.role in p.matrix && (EVENTS as readonly string[]).includes(c.event))
      p.matrix[c.role][c.event] = c.enabled;
  }
  for (const s of settings) {
    const p = out.get(s.user_id);
    if (p) p.mailOwnChanges = s.mail_own_changes;
  }
  return out;
}

/** A change to preferences: cells given are set, others stay. */
export interface PreferencesPatch {
  mailOwnChanges?: boolean | undefined;
  matrix?: Partial<Record<string, Partial<Record<string, boolean>>>> | undefined;
}

/** Saves the viewer's preferences (unknown roles or events are refused, nothing is written then). */
export async function savePreferences(
  db: Db,
  viewer: UserViewer,
  patch: PreferencesPatch,
): Promise<Preferences> {
  const cells: { role: Role; event: NotifyEvent; enabled: boolean }[] = [];
  for (const [role, events] of Object.entries(patch.matrix ?? {})) {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw unprocessable(`unknown role ${role}; one of ${ROLES.join(', ')}`, `matrix.${role}`);
    }
    for (const [event, enabled] of Object.entries(events ?? {})) {
      if (!(EVENTS as readonly string[]).includes(event)) {
        throw unprocessable(`unknown event ${event}; one of ${EVENTS.join(', ')}`, `matrix.${role}.${event}`);
      }
      if (typeof enabled !== 'boolean')
        throw unprocessable('must be true or false', `matrix.${role}.${event}`);
      cells.push({ role: role as Role, event: event as NotifyEvent, enabled });
    }
  }
  await db.transaction(async (tx) => {
    for (const c of cells) {
      if (c.enabled) {
        await tx.query(sql`DELETE FROM notification_prefs
          WHERE user_id = ${viewer.id} AND role = ${c.role} AND event = ${c.event}`);
      } else {
        await tx.query(sql`INSERT INTO notification_prefs (user_id, role, event, enabled)
          VALUES (${viewer.id}, ${c.role}, ${c.event}, false)
          ON CONFLICT (user_id, role, event) DO UPDATE SET enabled = false`);
      }
    }
    if (patch.mailOwnChanges !== undefined) {
      await tx.query(sql`INSERT INTO notification_settings (user_id, mail_own_changes)
        VALUES (${viewer.id}, ${patch.mailOwnChanges})
        ON CONFLICT (user_id) DO UPDATE SET mail_own_changes = EXCLUDED.mail_own_changes`);
    }
  });
  return (await loadPreferences(db, [viewer.id])).get(viewer.id)!;
}

/** A product or component the user watches. */
export interface Watch {
  id: number;
  productId: number;
  productName: string;
  componentId: number | null;
  componentName: string | null;
}

/** What the viewer watches (only products they may still see). */
export async function listWatches(q: Queryable, viewer: UserViewer): Promise<Watch[]> {
  const rows = await q.query<{
    id: number;
    product_id: number;
    product_name: string;
    component_id: number | null;
    component_name: string | null;
  }>(sql`
    SELECT w.id, w.product_id, p.name AS product_name, w.component_id, c.name AS component_name
    FROM watches w JOIN products p ON p.id = w.product_id
    LEFT JOIN components c ON c.id = w.component_id
    WHERE w.user_id = ${viewer.id} AND ${visibleProducts(viewer, 'p')}
    ORDER BY lower(p.name), lower(c.name) NULLS FIRST`);
  return rows.map((r) => ({
    id: r.id,
    productId: r.product_id,
    productName: r.product_name,
    componentId: r.component_id,
    componentName: r.component_name,
  }));
}

/** Starts watching a product the viewer may see, or one of its components; watching twice is refused. */
export async function addWatch(
  db: Db,
  viewer: UserViewer,
  input: { productId: number; componentId?: number | null | undefined },
): Promise<Watch> {
  const [product] = await db.query<{ id: number }>(
    sql`SELECT p.id FROM products p WHERE p.id = ${input.productId} AND ${visibleProducts(viewer, 'p')}`,
  );
  if (!product) throw unprocessable(`product ${input.productId} not found`, 'product_id', 'unknown_product');
  const componentId = input.componentId ?? null;
  if (componentId !== null) {
    const [component] = await db.query(
      sql`SELECT 1 FROM components WHERE id = ${componentId} AND product_id = ${product.id}`,
    );
    if (!component) {
      throw unprocessable(
        `component ${componentId} is not a component of product ${product.id}`,
        'component_id',
      );
    }
  }
  try {
    const [row] = await db.query<{ id: number }>(sql`
      INSERT INTO watches (user_id, product_id, component_id) VALUES (${viewer.id}, ${product.id}, ${componentId})
      RETURNING id`);
    return (await listWatches(db, viewer)).find((w) => w.id === row!.id)!;
  } catch (err) {
    if (isUniqueViolation(err))
      throw unprocessable('you already watch this', 'product_id', 'already_watching');
    throw err;
  }
}

/** Stops watching (only the viewer's own watches; 404 otherwise). */
export async function removeWatch(db: Db, viewer: UserViewer, id: number): Promise<void> {
  const rows = await db.query(
    sql`DELETE FROM watches WHERE id = ${id} AND user_id = ${viewer.id} RETURNING id`,
  );
  if (rows.length === 0) throw notFound('Watch', id);
}
