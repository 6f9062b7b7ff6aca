/** HTTP routes of webhooks under /api/v1 (staff manage their own; admins every one). */
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';
import type { Db } from '../platform/db.ts';
import { Id, IdParams, Nullable } from '../platform/http.ts';
import type { AddressPolicy } from './address.ts';
import {
  createWebhook,
  type DeliveryRow,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  updateWebhook,
  WEBHOOK_EVENTS,
  type WebhookRow,
} from './service.ts';

const EventName = Type.Union(WEBHOOK_EVENTS.map((e) => Type.Literal(e)));
const Events = Type.Array(EventName, { minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true });
const ProductIds = Nullable(Type.Array(Id, { maxItems: 1000, uniqueItems: true }));
const Url = Type.String({ minLength: 8, maxLength: 2000 });

const NewWebhook = Type.Object(
  { url: Url, events: Events, product_ids: Type.Optional(ProductIds), active: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
type NewWebhook = Static<typeof NewWebhook>;
const WebhookPatch = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Events),
    product_ids: Type.Optional(ProductIds),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
type WebhookPatch = Static<typeof WebhookPatch>;

const WebhookOut = Type.Object({
  id: Type.Integer(),
  owner: Type.Object({ id: Type.Integer(), name: Type.String() }),
  url: Type.String(),
  events: Type.Array(Type.String()),
  product_ids: Nullable(Type.Array(Type.Integer())),
  active: Type.Boolean(),
  failure_count: Type.Integer(),
  disabled_at: Nullable(Type.String({ format: 'date-time' })),
  disabled_reason: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
});
const CreatedWebhook = Type.Intersect([
  WebhookOut,
  Type.Object({
    secret: Type.String({ description: 'Signing secret: shown only in this answer. Keep it.' }),
  }),
]);
const DeliveryOut = Type.Object({
  id: Type.Integer(),
  webhook_id: Type.Integer(),
  event_id: Type.Integer(),
  event_type: Type.String(),
  redelivery_of: Nullable(Type.Integer()),
  state: Type.Union(['pending', 'delivered', 'failed', 'skipped'].map((s) => Type.Literal(s))),
  attempt: Type.Integer(),
  status_code: Nullable(Type.Integer()),
  duration_ms: Nullable(Type.Integer()),
  response_excerpt: Nullable(Type.String()),
  error: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  attempted_at: Nullable(Type.String({ format: 'date-time' })),
});
const DeliveryParams = Type.Object({ id: Id, deliveryId: Id });
type DeliveryParams = Static<typeof DeliveryParams>;
const DeliveriesQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) },
  { additionalProperties: false },
);
type DeliveriesQuery = Static<typeof DeliveriesQuery>;

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const present = (w: WebhookRow) => ({
  id: w.id,
  owner: { id: w.owner_id, name: w.owner_name },
  url: w.url,
  events: w.events,
  product_ids: w.product_ids,
  active: w.active,
  failure_count: w.failure_count,
  disabled_at: iso(w.disabled_at),
  disabled_reason: w.disabled_reason,
  created_at: w.created_at.toISOString(),
});
const presentDelivery = (d: DeliveryRow) => ({
  ...d,
  created_at: d.created_at.toISOString(),
  attempted_at: iso(d.attempted_at),
});

const tags = ['webhooks'];

/** Registers the webhook routes. */
export async function webhooksRoutes(
  app: FastifyInstance,
  { db, policy }: { db: Db; policy: AddressPolicy },
) {
  app.get(
    '/webhooks',
    { schema: { tags, response: { 200: Type.Object({ webhooks: Type.Array(WebhookOut) }) } } },
    async (request) => ({ webhooks: (await listWebhooks(db, request.viewer)).map(present) }),
  );

  app.post<{ Body: NewWebhook }>(
    '/webhooks',
    { schema: { tags, body: NewWebhook, response: { 201: CreatedWebhook } } },
    async (request, reply) => {
      const b = request.body;
      const { webhook, secret } = await createWebhook(db, policy, request.viewer, {
        url: b.url,
        events: b.events,
        productIds: b.product_ids,
        active: b.active,
      });
      return reply.code(201).send({ ...present(webhook), secret });
    },
  );

  app.get<{ Params: IdParams }>(
    '/webhooks/:id',
    { schema: { tags, params: IdParams, response: { 200: WebhookOut } } },
    async (request) => present(await getWebhook(db, request.viewer, request.params.id)),
  );

  app.patch<{ Params: IdParams; Body: WebhookPatch }>(
    '/webhooks/:id',
    { schema: { tags, params: IdParams, body: WebhookPatch, response: { 200: WebhookOut } } },
    async (request) => {
      const b = request.body;
      return present(
        await updateWebhook(db, policy, request.viewer, request.params.id, {
          url: b.url,
          events: b.events,
          productIds: b.product_ids,
          active: b.active,
        }),
      );
    },
  );

  app.delete<{ Params: IdParams }>(
    '/webhooks/:id',
    { schema: { tags, params: IdParams, response: { 204: Type.Null() } } },
    async (request, reply) => {
      await deleteWebhook(db, request.viewer, request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: IdParams }>(
    '/webhooks/:id/enable',
    { schema: { tags, params: IdParams, response: { 200: WebhookOut } } },
    async (request) =>
      present(await updateWebhook(db, policy, request.viewer, request.params.id, { active: true })),
  );

  app.get<{ Params: IdParams; Querystring: DeliveriesQuery }>(
    '/webhooks/:id/deliveries',
    {
      schema: {
        tags,
        params: IdParams,
        querystring: DeliveriesQuery,
        response: { 200: Type.Object({ deliveries: Type.Array(DeliveryOut) }) },
      },
    },
    async (request) => ({
      deliveries: (await listDeliveries(db, request.viewer, request.params.id, request.query.limit)).map(
        presentDelivery,
      ),
    }),
  );

  app.post<{ Params: DeliveryParams }>(
    '/webhooks/:id/deliveries/:deliveryId/redeliver',
    { schema: { tags, params: DeliveryParams, response: { 202: DeliveryOut } } },
    async (request, reply) =>
      reply
        .code(202)
        .send(
          presentDelivery(await redeliver(db, request.viewer, request.params.id, request.params.deliveryId)),
        ),
  );
}
