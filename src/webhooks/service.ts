/**
 * Webhook subscriptions: staff users subscribe URLs to bug events (their own webhooks); admins see and
 * manage every webhook. Deliveries are made by jobs (jobs.ts) and logged in webhook_deliveries.
 */
import { isAdmin, isStaff, signedIn, type Viewer } from '../access/index.ts';
import { enqueue } from '../jobs/index.ts';
import { type Db, type Queryable, sql } from '../platform/db.ts';
import { forbidden, notFound } from '../platform/errors.ts';
import { type AddressPolicy, checkUrl } from './address.ts';
import { newSecret } from './signing.ts';

/** The events a webhook may subscribe to. */
export const WEBHOOK_EVENTS = [
  'bug.created',
  'bug.updated',
  'comment.created',
  'attachment.created',
  'bug.status_changed',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** The job kind delivering one delivery row. */
export const DELIVER_JOB = 'webhook.deliver';

export interface WebhookRow {
  id: number;
  owner_id: number;
  owner_name: string;
  url: string;
  events: string[];
  product_ids: number[] | null;
  active: boolean;
  failure_count: number;
  disabled_at: Date | null;
  disabled_reason: string | null;
  created_at: Date;
}

export interface DeliveryRow {
  id: number;
  webhook_id: number;
  event_id: number;
  event_type: string;
  redelivery_of: number | null;
  state: string;
  attempt: number;
  status_code: number | null;
  duration_ms: number | null;
  response_excerpt: string | null;
  error: string | null;
  created_at: Date;
  attempted_at: Date | null;
}

const COLUMNS = sql`w.id, w.owner_id, u.name AS owner_name, w.url, w.events, w.product_ids, w.active,
  w.failure_count, w.disabled_at, w.disabled_reason, w.created_at`;

const norm = (r: WebhookRow): WebhookRow => ({
  ...r,
  id: Number(r.id),
  product_ids: r.product_ids === null ? null : r.product_ids.map(Number),
});
const normDelivery = (r: DeliveryRow): DeliveryRow => ({
  ...r,
  id: Number(r.id),
  event_id: Number(r.event_id),
  redelivery_of: r.redelivery_of === null ? null : Number(r.redelivery_of),
});

export interface WebhookInput {
  url?: string | undefined;
  events?: string[] | undefined;
  productIds?: number[] | null | undefined;
  active?: boolean | undefined;
}

function mayManage(viewer: Viewer) {
  const v = signedIn(viewer);
  if (!isStaff(v)) throw forbidden('Only staff users and admins may manage webhooks.');
  return v;
}

/** The webhook if the viewer may manage it (their own, or any for admins); 404 otherwise. */
export async function getWebhook(db: Queryable, viewer: Viewer, id: number): Promise<WebhookRow> {
  const v = mayManage(viewer);
  const [row] = await db.query<WebhookRow>(sql`
    SELECT ${COLUMNS} FROM webhooks w JOIN users u ON u.id = w.owner_id
    WHERE w.id = ${id} AND (${isAdmin(v)} OR w.owner_id = ${v.id})`);
  if (!row) throw notFound('Webhook', id);
  return norm(row);
}

export async function listWebhooks(db: Queryable, viewer: Viewer): Promise<WebhookRow[]> {
  const v = mayManage(viewer);
  const rows = await db.query<WebhookRow>(sql`
    SELECT ${COLUMNS} FROM webhooks w JOIN users u ON u.id = w.owner_id
    WHERE ${isAdmin(v)} OR w.owner_id = ${v.id} ORDER BY w.id`);
  return rows.map(norm);
}

async function checkProducts(db: Queryable, ids: number[] | null | undefined) {
  if (!ids || ids.length === 0) return;
  const rows = await db.query<{ id: number }>(sql`SELECT id FROM products WHERE id = ANY(${ids}::int[])`);
  const known = new Set(rows.map((r) => r.id));
  const missing = ids.find((i) => !known.has(i));
  if (missing !== undefined) throw notFound('Product', missing);
}

/** Creates a webhook owned by the viewer; returns it and its secret (shown this once). */
export async function createWebhook(
  db: Db,
  policy: AddressPolicy,
  viewer: Viewer,
  input: Required<Pick<WebhookInput, 'url' | 'events'>> & WebhookInput,
): Promise<{ webhook: WebhookRow; secret: string }> {
  const v = mayManage(viewer);
  const url = await checkUrl(policy, input.url);
  await checkProducts(db, input.productIds);
  const secret = newSecret();
  const events = [...new Set(input.events)];
  const productIds = input.productIds?.length ? [...new Set(input.productIds)] : null;
  const [row] = await db.query<{ id: number }>(sql`
    INSERT INTO webhooks (owner_id, url, secret, events, product_ids, active)
    VALUES (${v.id}, ${url.href}, ${secret}, ${events}::text[], ${productIds}::int[], ${input.active ?? true})
    RETURNING id`);
  return { webhook: await getWebhook(db, v, Number(row!.id)), secret };
}

/** Changes a webhook; re-activating it clears its failures. */
export async function updateWebhook(
  db: Db,
  policy: AddressPolicy,
  viewer: Viewer,
  id: number,
  input: WebhookInput,
): Promise<WebhookRow> {
  const current = await getWebhook(db, viewer, id);
  const url = input.url === undefined ? current.url : (await checkUrl(policy, input.url)).href;
  if (input.productIds !== undefined) await checkProducts(db, input.productIds);
  const events = input.events === undefined ? current.events : [...new Set(input.events)];
  const productIds =
    input.productIds === undefined ? current.product_ids : input.productIds?.length ? input.productIds : null;
  const reactivate = input.active === true && !current.active;
  await db.query(sql`
    UPDATE webhooks SET url = ${url}, events = ${events}::text[], product_ids = ${productIds}::int[],
      active = ${input.active ?? current.active},
      failure_count = CASE WHEN ${reactivate} THEN 0 ELSE failure_count END,
      disabled_at = CASE WHEN ${reactivate} THEN NULL ELSE disabled_at END,
      disabled_reason = CASE WHEN ${reactivate} THEN NULL ELSE disabled_reason END
    WHERE id = ${id}`);
  return getWebhook(db, viewer, id);
}

export async function deleteWebhook(db: Db, viewer: Viewer, id: number): Promise<void> {
  await getWebhook(db, viewer, id);
  await db.query(sql`DELETE FROM webhooks WHERE id = ${id}`);
}

/** Deliveries of a webhook, newest first. */
export async function listDeliveries(db: Db, viewer: Viewer, id: number, limit = 50): Promise<DeliveryRow[]> {
  await getWebhook(db, viewer, id);
  const rows = await db.query<DeliveryRow>(sql`
    SELECT * FROM webhook_deliveries WHERE webhook_id = ${id} ORDER BY id DESC LIMIT ${limit}`);
  return rows.map(normDelivery);
}

/** Sends one delivery's event again, as a new delivery (its own id and log row). */
export async function redeliver(
  db: Db,
  viewer: Viewer,
  webhookId: number,
  deliveryId: number,
): Promise<DeliveryRow> {
  await getWebhook(db, viewer, webhookId);
  return db.transaction(async (tx) => {
    const [row] = await tx.query<DeliveryRow>(sql`
      INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, redelivery_of)
      SELECT webhook_id, event_id, event_type, id FROM webhook_deliveries
      WHERE id = ${deliveryId} AND webhook_id = ${webhookId}
      RETURNING *`);
    if (!row) throw notFound('Delivery', deliveryId);
    await enqueue(tx, { kind: DELIVER_JOB, payload: { deliveryId: Number(row.id) } });
    return normDelivery(row);
  });
}
