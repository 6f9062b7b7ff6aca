/** HTTP routes of the products module under /api/v1. */
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';
import { Id, IdParams, Nullable } from '../platform/http.ts';
import * as products from './service.ts';

const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '\\S' });
const Description = Type.String({ maxLength: 10000 });

const NewProduct = Type.Object(
  { name: Name, description: Type.Optional(Description), is_released: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
const ProductPatch = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    is_released: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const NewVersion = Type.Object(
  {
    name: Name,
    is_released: Type.Optional(Type.Boolean()),
    sort_key: Type.Optional(Type.Integer({ minimum: -1000000, maximum: 1000000 })),
  },
  { additionalProperties: false },
);
const VersionPatch = Type.Partial(NewVersion, { additionalProperties: false });
const NewComponent = Type.Object(
  { name: Name, description: Type.Optional(Description), default_assignee_id: Type.Optional(Nullable(Id)) },
  { additionalProperties: false },
);
const ComponentPatch = Type.Partial(NewComponent, { additionalProperties: false });

// Response schemas: documentation, and Fastify's serialiser writes only what they list.
const VersionOut = Type.Object({
  id: Type.Integer(),
  product_id: Type.Optional(Type.Integer()),
  name: Type.String(),
  is_released: Type.Boolean(),
  sort_key: Type.Integer(),
});
const ComponentOut = Type.Object({
  id: Type.Integer(),
  product_id: Type.Optional(Type.Integer()),
  name: Type.String(),
  description: Type.String(),
  default_assignee_id: Nullable(Type.Integer()),
});
const ProductOut = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  is_released: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  versions: Type.Array(VersionOut),
  components: Type.Array(ComponentOut),
});

function presentProduct(p: products.ProductRow) {
  return { ...p, created_at: p.created_at.toISOString() };
}

/** Registers the product, version and component routes. */
export async function productsRoutes(app: FastifyInstance, { ctx }: { ctx: products.ProductsContext }) {
  const { db } = ctx;
  app.get(
    '/products',
    { schema: { response: { 200: Type.Object({ products: Type.Array(ProductOut) }) } } },
    async (request) => ({
      products: (await products.listProducts(db, request.viewer)).map(presentProduct),
    }),
  );

  app.get<{ Params: IdParams }>(
    '/products/:id',
    { schema: { params: IdParams, response: { 200: ProductOut } } },
    async (request) => presentProduct(await products.getProduct(db, request.viewer, request.params.id)),
  );

  app.post<{ Body: Static<typeof NewProduct> }>(
    '/products',
    { schema: { body: NewProduct, response: { 201: ProductOut } } },
    async (request, reply) => {
      const b = request.body;
      const p = await products.createProduct(db, request.viewer, {
        name: b.name,
        description: b.description,
        isReleased: b.is_released,
      });
      return reply.code(201).send(presentProduct(p));
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof ProductPatch> }>(
    '/products/:id',
    { schema: { params: IdParams, body: ProductPatch, response: { 200: ProductOut } } },
    async (request) => {
      const b = request.body;
      return presentProduct(
        await products.updateProduct(ctx, request.viewer, request.params.id, {
          name: b.name,
          description: b.description,
          isReleased: b.is_released,
        }),
      );
    },
  );

  app.post<{ Params: IdParams; Body: Static<typeof NewVersion> }>(
    '/products/:id/versions',
    { schema: { params: IdParams, body: NewVersion, response: { 201: VersionOut } } },
    async (request, reply) => {
      const b = request.body;
      const v = await products.createVersion(db, request.viewer, request.params.id, {
        name: b.name,
        isReleased: b.is_released,
        sortKey: b.sort_key,
      });
      return reply.code(201).send(v);
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof VersionPatch> }>(
    '/versions/:id',
    { schema: { params: IdParams, body: VersionPatch, response: { 200: VersionOut } } },
    async (request) => {
      const b = request.body;
      return products.updateVersion(ctx, request.viewer, request.params.id, {
        name: b.name,
        isReleased: b.is_released,
        sortKey: b.sort_key,
      });
    },
  );

  app.post<{ Params: IdParams; Body: Static<typeof NewComponent> }>(
    '/products/:id/components',
    { schema: { params: IdParams, body: NewComponent, response: { 201: ComponentOut } } },
    async (request, reply) => {
      const b = request.body;
      const c = await products.createComponent(db, request.viewer, request.params.id, {
        name: b.name,
        description: b.description,
        defaultAssigneeId: b.default_assignee_id,
      });
      return reply.code(201).send(c);
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof ComponentPatch> }>(
    '/components/:id',
    { schema: { params: IdParams, body: ComponentPatch, response: { 200: ComponentOut } } },
    async (request) => {
      const b = request.body;
      return products.updateComponent(ctx, request.viewer, request.params.id, {
        name: b.name,
        description: b.description,
        defaultAssigneeId: b.default_assignee_id,
      });
    },
  );
}
