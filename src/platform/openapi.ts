/**
 * The API reference: an OpenAPI 3.1 document generated from the routes' own schemas (the single source
 * for validation and documentation), served at /api/openapi.json, with interactive docs at /api/docs.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { packageVersion } from '../ops/routes.ts';

const description = `Bugzot's REST API. Authenticate with an API key (\`Authorization: Bearer bzk_...\`, created at
\`POST /api/v1/api-keys\`) or a session cookie from \`POST /api/v1/session\`. Errors are
\`{"error": {"code", "message", "field"?}}\` with a 4xx status; a bug you may not see answers 404 exactly like
one that does not exist. Bugs carry an \`ETag\`; send it back as \`If-Match\` on \`PATCH\` to be told (412) when
someone changed the bug meanwhile.`;

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered after the docs, for checking that each one is documented. */
    registeredRoutes: { method: string; url: string }[];
  }
}

/** Registers the OpenAPI generator and the docs UI; call before the routes are registered. */
export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  const routes: { method: string; url: string }[] = [];
  app.decorate('registeredRoutes', routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      if (method !== 'HEAD') routes.push({ method, url: route.url });
    // The docs are for everyone, signed in or not (the auth hook honours `public`).
    if (route.url.startsWith('/api/docs')) route.config = { ...(route.config ?? {}), public: true };
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Bugzot API', version: packageVersion, description },
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'An API key: bzk_...' },
          session: { type: 'apiKey', in: 'cookie', name: 'bugzot_session' },
        },
      },
      security: [{ apiKey: [] }, { session: [] }],
    },
    // Only the API proper: not the pages, the probes or the docs themselves.
    transform: ({ schema, url, route }) => {
      const hidden = !url.startsWith('/api/v1/');
      const tag = url.split('/')[3]?.replace(/^api-keys$/, 'api keys') ?? 'api';
      const isPublic = (route.config as { public?: boolean } | undefined)?.public === true;
      return {
        schema: {
          ...(schema ?? {}),
          hide: hidden,
          tags: [tag],
          ...(isPublic ? { security: [] } : {}),
        } as never,
        url,
      };
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/api/docs',
    // Swagger UI's own files only; no upgrade-insecure-requests, which would break plain-http development.
    staticCSP:
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
      "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
  });
  app.get('/api/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
}
