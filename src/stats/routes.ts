/** GET /api/v1/admin/stats: the usage and bug statistics (admins only). */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { isAdmin } from '../access/index.ts';
import type { Db } from '../platform/db.ts';
import { forbidden } from '../platform/errors.ts';
import { statistics } from './service.ts';

const Query = Type.Object(
  { days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, default: 30 })) },
  { additionalProperties: false },
);
const PerProduct = Type.Array(
  Type.Object({ day: Type.String(), product: Type.String(), count: Type.Integer() }),
);
const StatsOut = Type.Object({
  days: Type.Integer(),
  usage: Type.Array(
    Type.Object({
      day: Type.String({ description: 'UTC day, YYYY-MM-DD' }),
      visitors: Type.Integer({
        description: 'unique visitors (address + user agent, hashed with a daily salt)',
      }),
      page_views: Type.Integer(),
      active_users: Type.Integer({ description: 'signed-in users who viewed a page' }),
    }),
  ),
  opened: PerProduct,
  resolved: PerProduct,
  open_by_status_severity: Type.Array(
    Type.Object({ status: Type.String(), severity: Type.String(), count: Type.Integer() }),
  ),
  median_hours_to_resolve: Type.Union([Type.Number(), Type.Null()]),
});

export async function statsRoutes(app: FastifyInstance, { db }: { db: Db }) {
  app.get<{ Querystring: { days?: number } }>(
    '/admin/stats',
    {
      schema: {
        tags: ['admin'],
        summary: 'Usage and bug statistics of the last `days` days (admins)',
        querystring: Query,
        response: { 200: StatsOut },
      },
    },
    async (request) => {
      if (!isAdmin(request.viewer)) throw forbidden('Only admins may see the statistics.');
      return statistics(db, request.query.days ?? 30);
    },
  );
}
