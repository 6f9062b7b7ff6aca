/**
 * The API reference: an OpenAPI 3.1 document generated from the routes' own schemas (the single source
 * for validation and documentation), served at /api/openapi.json, with interactive docs at /api/docs.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { packageVersion } from '../ops/routes.ts';
import { ErrorBody } from './http.ts';

/**
 * The answers every API route may give besides its own, added to the document only (the routes'
 * serializers are untouched): the error envelope for 4xx and 5xx, and 304 for conditional reads
 * (src/platform/conditional.ts).
 */
function documentedResponses(
  declared: unknown,
  method: string | string[],
  produces: unknown,
): Record<string, unknown> {
  const own = { ...((declared as Record<string, unknown> | undefined) ?? {}) };
  // A route's own `4xx` (or `default`) stands; one naming only, say, 404 still gets the range for the rest.
  const has = (range: string) => Object.keys(own).some((k) => k.toLowerCase() === range || k === 'default');
  // Errors are JSON even where the success answer is not (the CSV export).
  const error = (description: string) => ({
    description,
    content: { 'application/json': { schema: ErrorBody } },
  });
  // Only JSON answers are tagged for conditional reads (a download or an export is not).
  const okContent = (own['200'] as { content?: Record<string, unknown> } | undefined)?.content;
  const json =
    (!Array.isArray(produces) || produces.some((type) => /json/.test(String(type)))) &&
    (!okContent || Object.keys(okContent).some((type) => /json/.test(type)));
  if (!has('4xx'))
    own['4xx'] = error('The request cannot be served: the envelope says why (`code`, `message`, `field`).');
  if (!has('5xx')) own['5xx'] = error('Something failed on our side; `request_id` finds it in the logs.');
  if ([method].flat().includes('GET') && json && !('304' in own)) {
    own['304'] = { type: 'null', description: 'Not Modified: the If-None-Match ETag is still current.' };
  }
  return own;
}

/**
 * A query parameter with a default is optional to the client (validation fills it in), though the schema
 * lists it as required so that handlers see it set; the document says what the client must send.
 */
function optionalDefaults(querystring: unknown): unknown {
  const q = querystring as { required?: string[]; properties?: Record<string, { default?: unknown }> };
  if (!q.required || !q.properties) return querystring;
  return { ...q, required: q.required.filter((name) => q.properties![name]?.default === undefined) };
}

const description = `Bugzot's REST API. Authenticate with an API key (\`Authorization: Bearer bzk_...\`, created at
\`POST /api/v1/api-keys\`) or a session cookie from \`POST /api/v1/session\`. Errors are
\`{"error": {"code", "message", "field"?}}\` with a 4xx status; a bug you may not see answers 404 exactly like
one that does not exist. Every JSON read carries an \`ETag\`: send it back as \`If-None-Match\` to get 304 while
the answer is unchanged. A bug's tag also goes back as \`If-Match\` on \`PATCH\` to be told (412) when someone
changed the bug meanwhile.`;

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
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description:
              'An API key: bzk_... A key an admin allowed to act on behalf of others may add the header ' +
              'X-Bugzot-On-Behalf-Of: <user id or e-mail> to act as that (non-admin, active) user; any other ' +
              'credential sending it gets 403 on_behalf_refused (docs/integration.md).',
          },
          session: { type: 'apiKey', in: 'cookie', name: 'bugzot_session' },
        },
      },
      security: [{ apiKey: [] }, { session: [] }],
    },
    // Every operation that takes credentials declares the on-behalf-of header (an optional parameter).
    transformObject: (doc) => withOnBehalfHeader(doc as unknown as OpenApiDoc) as never,
    // Only the API proper: not the pages, the probes or the docs themselves.
    transform: ({ schema, url, route }) => {
      const hidden = !url.startsWith('/api/v1/');
      const tag = url.split('/')[3]?.replace(/^api-keys$/, 'api keys') ?? 'api';
      const isPublic = (route.config as { public?: boolean } | undefined)?.public === true;
      return {
        schema: {
          ...(schema ?? {}),
          ...(schema?.querystring ? { querystring: optionalDefaults(schema.querystring) } : {}),
          // Routes without any declared answer (the tus protocol's) stay as they are.
          ...(hidden || !schema?.response
            ? {}
            : { response: documentedResponses(schema.response, route.method, schema.produces) }),
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

/** The parts of the generated document withOnBehalfHeader touches. */
interface OpenApiDoc {
  openapiObject?: OpenApiDoc;
  components?: { parameters?: Record<string, unknown> };
  paths?: Record<string, Record<string, { security?: unknown[]; parameters?: unknown[] } | undefined>>;
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);

/**
 * Adds `X-Bugzot-On-Behalf-Of` as a shared optional header parameter to every operation that accepts
 * credentials (all but those marked public with `security: []`), so clients generated from the document
 * can send it.
 */
function withOnBehalfHeader(arg: OpenApiDoc): OpenApiDoc {
  const doc = arg.openapiObject ?? arg;
  doc.components = {
    ...doc.components,
    parameters: {
      ...doc.components?.parameters,
      OnBehalfOf: {
        name: 'X-Bugzot-On-Behalf-Of',
        in: 'header',
        required: false,
        description:
          'Act as this user (id or e-mail): only with an API key an admin allowed to act on behalf of ' +
          'others; the user must be active and not an admin. Anything else gets 403 on_behalf_refused.',
        schema: { type: 'string', maxLength: 254 },
      },
    },
  };
  for (const item of Object.values(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!op || !HTTP_METHODS.has(method)) continue;
      if (Array.isArray(op.security) && op.security.length === 0) continue;
      op.parameters = [...(op.parameters ?? []), { $ref: '#/components/parameters/OnBehalfOf' }];
    }
  }
  return doc;
}
