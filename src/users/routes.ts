/** HTTP routes of the users module: sign-in, the current user, users (admin), API keys (own and admin). */
import type {} from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';
import { isAdmin, signedIn } from '../access/index.ts';
import type { Config } from '../config.ts';
import { AppError, forbidden } from '../platform/errors.ts';
import { IdParams, Nullable } from '../platform/http.ts';
import { listAllApiKeys, updateApiKeyAsAdmin } from './api-keys.ts';
import { SESSION_COOKIE, setSessionCookie } from './auth.ts';
import * as users from './service.ts';

const Email = Type.String({ minLength: 3, maxLength: 254 });
const Password = Type.String({ minLength: 1, maxLength: 1024 });

const LoginBody = Type.Object({ email: Email, password: Password }, { additionalProperties: false });
const NewUserBody = Type.Object(
  {
    email: Email,
    name: Type.String({ minLength: 1, maxLength: 120 }),
    password: Type.String({ minLength: 10, maxLength: 1024 }),
    kind: Type.Union([Type.Literal('internal'), Type.Literal('external')]),
    is_admin: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const UserPatchBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 120 })),
    kind: Type.Optional(Type.Union([Type.Literal('internal'), Type.Literal('external')])),
    is_admin: Type.Optional(Type.Boolean()),
    disabled: Type.Optional(Type.Boolean()),
    password: Type.Optional(Type.String({ minLength: 10, maxLength: 1024 })),
    current_password: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
const UserListQuery = Type.Object(
  {
    q: Type.Optional(Type.String({ maxLength: 100 })),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    after: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 2147483647, description: 'users after this id' }),
    ),
  },
  { additionalProperties: false },
);
const KeyRateLimit = Type.Integer({
  minimum: 1,
  maximum: 1_000_000,
  description:
    "the key's own limit in requests a minute, instead of RATE_LIMIT_PER_MINUTE; owners may set up to " +
    'API_KEY_RATE_LIMIT_MAX, admins more; null: the global limit',
});
const OnBehalfOf = Type.Boolean({
  description:
    'the key may act on behalf of other users with the X-Bugzot-On-Behalf-Of header (only admins set it)',
});
const NewKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scope: Type.Optional(Type.Union([Type.Literal('read-only'), Type.Literal('read-write')])),
    expires_at: Type.Optional(Nullable(Type.String({ format: 'date-time' }))),
    rate_limit_per_minute: Type.Optional(Nullable(KeyRateLimit)),
    on_behalf_of: Type.Optional(OnBehalfOf),
  },
  { additionalProperties: false },
);
const AdminKeyPatchBody = Type.Object(
  { rate_limit_per_minute: Type.Optional(Nullable(KeyRateLimit)), on_behalf_of: Type.Optional(OnBehalfOf) },
  { additionalProperties: false, minProperties: 1 },
);
const AdminKeyListQuery = Type.Object(
  {
    user_id: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 2147483647, description: "only this user's keys" }),
    ),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    before: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 2147483647, description: 'keys older than this id (paging)' }),
    ),
  },
  { additionalProperties: false },
);

// Response schemas: documentation, and Fastify's serialiser writes only what they list.
const UserOut = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  email: Type.Optional(Type.String()),
  kind: Type.Optional(Type.String()),
  is_admin: Type.Optional(Type.Boolean()),
  disabled: Type.Optional(Type.Boolean()),
});
const SessionOut = Type.Object({ user: UserOut, csrf_token: Type.String() });
const MeOut = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  email: Type.String(),
  kind: Type.String(),
  is_admin: Type.Boolean(),
  auth: Type.Optional(Type.String()),
  csrf_token: Type.Optional(Type.String()),
  via: Type.Optional(
    Type.Object(
      { id: Type.Integer(), email: Type.String(), name: Type.String(), key_id: Type.Integer() },
      { description: 'acting on behalf of this user: the key owner who really makes the request' },
    ),
  ),
});
const KeyOut = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  prefix: Type.String(),
  scope: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Nullable(Type.String({ format: 'date-time' })),
  expires_at: Nullable(Type.String({ format: 'date-time' })),
  revoked_at: Nullable(Type.String({ format: 'date-time' })),
  rate_limit_per_minute: Nullable(KeyRateLimit),
  on_behalf_of: OnBehalfOf,
});
const AdminKeyOut = Type.Object({
  ...KeyOut.properties,
  owner: Type.Object({ id: Type.Integer(), email: Type.String(), name: Type.String() }),
});
const NewKeyOut = Type.Object({
  ...KeyOut.properties,
  key: Type.String({ description: 'shown this once only' }),
});

function presentKey(k: users.ApiKeyRow) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scope: k.scope,
    created_at: k.created_at.toISOString(),
    last_used_at: k.last_used_at?.toISOString() ?? null,
    expires_at: k.expires_at?.toISOString() ?? null,
    revoked_at: k.revoked_at?.toISOString() ?? null,
    rate_limit_per_minute: k.rate_limit_per_minute,
    on_behalf_of: k.on_behalf_of,
  };
}

function presentKeyWithOwner(k: users.ApiKeyWithOwner) {
  return { ...presentKey(k), owner: { id: k.user_id, email: k.owner_email, name: k.owner_name } };
}

/** Registers the users routes under /api/v1. */
export async function usersRoutes(app: FastifyInstance, opts: { deps: users.UsersDeps; config: Config }) {
  const { deps } = opts;
  const db = deps.db;

  // A bot acting for someone must not manage that person's credentials: a key made in their name would
  // outlive the admin's permission and record no real actor.
  app.addHook('preHandler', async (request) => {
    if (!request.credential?.actor) return;
    const route = `${request.method} ${request.routeOptions.url ?? ''}`;
    if (/\/api-keys|\/session$|^PATCH .*\/users\/:id$/.test(route)) {
      throw new AppError(
        403,
        'on_behalf_refused',
        'API keys, sessions and accounts cannot be managed on behalf of others.',
      );
    }
  });

  app.post<{ Body: Static<typeof LoginBody> }>(
    '/session',
    { schema: { body: LoginBody, response: { 200: SessionOut } }, config: { public: true } },
    async (request, reply) => {
      const { email, password } = request.body;
      const { user, token, csrfToken } = await users.signIn(deps, { email, password, ip: request.ip });
      setSessionCookie(reply, request, token, opts.config.sessionTtlHours);
      return { user: users.presentUser(user, users.toViewer(user)), csrf_token: csrfToken };
    },
  );

  app.delete(
    '/session',
    { schema: { response: { 204: { type: 'null', description: 'Signed out' } } }, config: { public: true } },
    async (request, reply) => {
      const token = request.cookies[SESSION_COOKIE];
      if (token) await users.endSession(deps, token);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send();
    },
  );

  app.get('/me', { schema: { response: { 200: MeOut } } }, async (request) => {
    const v = signedIn(request.viewer);
    return {
      id: v.id,
      name: v.name,
      email: v.email,
      kind: v.isInternal ? 'internal' : 'external',
      is_admin: v.isAdmin,
      auth: request.credential?.via,
      ...(request.credential?.csrfToken ? { csrf_token: request.credential.csrfToken } : {}),
      ...(request.credential?.actor
        ? {
            via: {
              id: request.credential.actor.id,
              email: request.credential.actor.email,
              name: request.credential.actor.name,
              key_id: request.credential.actor.keyId,
            },
          }
        : {}),
    };
  });

  app.get<{ Querystring: Static<typeof UserListQuery> }>(
    '/users',
    {
      schema: { querystring: UserListQuery, response: { 200: Type.Object({ users: Type.Array(UserOut) }) } },
    },
    async (request) => {
      const rows = await users.listUsers(db, request.viewer, {
        limit: request.query.limit,
        ...(request.query.q ? { query: request.query.q } : {}),
        ...(request.query.after ? { afterId: request.query.after } : {}),
      });
      return { users: rows.map((u) => users.presentUser(u, request.viewer)) };
    },
  );

  app.post<{ Body: Static<typeof NewUserBody> }>(
    '/users',
    { schema: { body: NewUserBody, response: { 201: UserOut } } },
    async (request, reply) => {
      if (!isAdmin(request.viewer)) throw forbidden('Only admins may create users.');
      const b = request.body;
      const row = await users.createUser(db, {
        email: b.email,
        name: b.name,
        password: b.password,
        kind: b.kind,
        isAdmin: b.is_admin ?? false,
      });
      return reply.code(201).send(users.presentUser(row, request.viewer));
    },
  );

  app.get<{ Params: IdParams }>(
    '/users/:id',
    { schema: { params: IdParams, response: { 200: UserOut } } },
    async (request) => {
      const u = await users.getUser(db, request.viewer, request.params.id);
      return users.presentUser(u, request.viewer);
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof UserPatchBody> }>(
    '/users/:id',
    { schema: { params: IdParams, body: UserPatchBody, response: { 200: UserOut } } },
    async (request) => {
      const b = request.body;
      const row = await users.updateUser(
        deps,
        request.viewer,
        request.params.id,
        {
          ...(b.name !== undefined ? { name: b.name } : {}),
          ...(b.kind !== undefined ? { kind: b.kind } : {}),
          ...(b.is_admin !== undefined ? { isAdmin: b.is_admin } : {}),
          ...(b.disabled !== undefined ? { disabled: b.disabled } : {}),
          ...(b.password !== undefined ? { password: b.password } : {}),
        },
        { currentPassword: b.current_password, keepSessionToken: request.cookies[SESSION_COOKIE] },
      );
      return users.presentUser(row, request.viewer);
    },
  );

  app.get(
    '/api-keys',
    { schema: { response: { 200: Type.Object({ api_keys: Type.Array(KeyOut) }) } } },
    async (request) => ({
      api_keys: (await users.listApiKeys(deps, signedIn(request.viewer))).map(presentKey),
    }),
  );

  app.post<{ Body: Static<typeof NewKeyBody> }>(
    '/api-keys',
    { schema: { body: NewKeyBody, response: { 201: NewKeyOut } } },
    async (request, reply) => {
      const b = request.body;
      const { key, row } = await users.createApiKey(
        db,
        signedIn(request.viewer),
        {
          name: b.name,
          scope: b.scope ?? 'read-write',
          expiresAt: b.expires_at ? new Date(b.expires_at) : null,
          rateLimitPerMinute: b.rate_limit_per_minute ?? null,
          onBehalfOf: b.on_behalf_of ?? false,
        },
        { maxRateLimitPerMinute: deps.apiKeyRateLimitMax },
      );
      return reply.code(201).send({ ...presentKey(row), key });
    },
  );

  app.get<{ Querystring: Static<typeof AdminKeyListQuery> }>(
    '/admin/api-keys',
    {
      schema: {
        querystring: AdminKeyListQuery,
        response: { 200: Type.Object({ api_keys: Type.Array(AdminKeyOut) }) },
      },
    },
    async (request) => {
      const rows = await listAllApiKeys(deps, request.viewer, {
        userId: request.query.user_id,
        limit: request.query.limit,
        beforeId: request.query.before,
      });
      return { api_keys: rows.map(presentKeyWithOwner) };
    },
  );

  app.patch<{ Params: IdParams; Body: Static<typeof AdminKeyPatchBody> }>(
    '/admin/api-keys/:id',
    { schema: { params: IdParams, body: AdminKeyPatchBody, response: { 200: AdminKeyOut } } },
    async (request) => {
      const b = request.body;
      const row = await updateApiKeyAsAdmin(deps, request.viewer, request.params.id, {
        onBehalfOf: b.on_behalf_of,
        rateLimitPerMinute: b.rate_limit_per_minute,
      });
      return presentKeyWithOwner(row);
    },
  );

  app.delete<{ Params: IdParams }>(
    '/api-keys/:id',
    { schema: { params: IdParams, response: { 204: { type: 'null', description: 'Revoked' } } } },
    async (request, reply) => {
      await users.revokeApiKey(deps, signedIn(request.viewer), request.params.id);
      return reply.code(204).send();
    },
  );
}
