/**
 * Builds the HTTP application from the modules. Never listens: `serve` does that, and tests drive it
 * with `inject` or a real socket.
 */
import { randomUUID } from 'node:crypto';
import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance } from 'fastify';
import { attachmentsApi, createAttachmentsContext } from './attachments/index.ts';
import { BugCache, type BugsContext, bugsRoutes } from './bugs/index.ts';
import { bugzillaRoutes, redactUrl } from './bugzilla/index.ts';
import type { Config } from './config.ts';
import { notifyRoutes } from './notify/index.ts';
import { opsRoutes, packageVersion } from './ops/routes.ts';
import type { Db } from './platform/db.ts';
import { errorHandler, installIdParamCheck, installValidators, sendError } from './platform/http.ts';
import { Invalidation } from './platform/invalidation.ts';
import { installGracefulDrain } from './platform/drain.ts';
import { installRequestTracing, startTracing, tracedDb } from './platform/tracing.ts';
import { statsRoutes, VisitRecorder } from './stats/index.ts';
import { adminStatsPages, installVisitCounting } from './web/admin-stats-page.tsx';
import { installRateLimit } from './platform/rate-limit.ts';
import type { RedisLink } from './platform/redis.ts';
import { lazyChildLogger } from './platform/logging.ts';
import { installMetrics } from './platform/metrics.ts';
import { registerApiDocs } from './platform/openapi.ts';
import { apiSecurityHeaders, installSecurityHeaders } from './platform/security-headers.ts';
import { installConditionalReads } from './platform/conditional.ts';
import { productsRoutes } from './products/index.ts';
import { searchRoutes } from './search/index.ts';
import { addressPolicy, webhooksRoutes } from './webhooks/index.ts';
import {
  actingDb,
  authPlugin,
  CredentialCache,
  LoginThrottle,
  type UsersDeps,
  usersRoutes,
} from './users/index.ts';
import { accountPages } from './web/account-pages.tsx';
import { attachmentPages } from './web/attachment-pages.tsx';
import { adminMailPages } from './web/admin-mail-page.tsx';
import { adminProductPages } from './web/admin-products-page.tsx';
import { adminUserPages } from './web/admin-users-page.tsx';
import { adminApiKeyPages } from './web/admin-api-keys-page.tsx';
import { assetRoutes } from './web/assets.ts';
import { bugListPages } from './web/bug-list-page.tsx';
import { bugPages } from './web/bug-page.tsx';
import { fileBugPages } from './web/file-bug-page.tsx';
import { homePages } from './web/home.tsx';
import { isPageRequest, notFoundHtml, sendErrorPage } from './web/error-pages.tsx';
import { preferencesPages } from './web/preferences-page.tsx';
import { sessionPages } from './web/session-pages.tsx';

/** What the app is built from. */
export interface AppDeps {
  config: Config;
  db: Db;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Builds the Fastify app with every module registered. */
export async function buildApp({ config, db: untracedDb }: AppDeps): Promise<FastifyInstance> {
  // Tracing first, so that the database every module gets is the traced one (the same object when off).
  const stopTracing = config.otelEndpoint
    ? await startTracing({
        endpoint: config.otelEndpoint,
        serviceName: config.otelServiceName,
        version: packageVersion,
      })
    : undefined;
  // Writes of a request acting on behalf of another user record the real actor (src/users/on-behalf.ts).
  const db = actingDb(tracedDb(untracedDb));
  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
      // Fastify's request fields, with secrets Bugzilla clients put in URLs (password, api_key) hidden.
      serializers: {
        req: (req) => ({
          method: req.method,
          url: redactUrl(req.url),
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort,
        }),
      },
    },
    // Keep a well-formed request id from the proxy in front, so one id follows the request end to end.
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    requestIdHeader: false,
    childLoggerFactory: lazyChildLogger,
    trustProxy: config.trustProxy.length ? [...config.trustProxy] : false,
    bodyLimit: config.bodyLimitBytes,
    // Requests on open connections during a drain are answered (with Connection: close), not refused.
    return503OnClosing: false,
    // Requests Fastify refuses before routing (a malformed URL, say) get our envelope and headers too.
    frameworkErrors: (err, request, reply) => {
      reply.headers(apiSecurityHeaders(config.env === 'production')).header('x-request-id', request.id);
      return sendError(reply, 400, {
        code: 'bad_request',
        message: `The request is malformed: ${err.message}`,
      });
    },
    forceCloseConnections: 'idle',
  });
  // The first hook: everything after it runs inside the request's span.
  installRequestTracing(app);
  if (stopTracing) app.addHook('onClose', stopTracing);
  installValidators(app);
  installIdParamCheck(app);
  // Plain text bodies are never an API input; refusing them also shuts a cross-site form vector.
  app.removeContentTypeParser('text/plain');

  installSecurityHeaders(app, config.env === 'production');
  // ETag / If-None-Match (304) on every JSON read of the APIs, computed over the bytes each viewer gets.
  installConditionalReads(app);

  await app.register(cookie);
  const bus = new Invalidation();
  await bus.start(db);
  app.addHook('onClose', () => bus.close());
  // Redis (REDIS_URL): the shared second-level cache, rate limits and sign-in throttle; optional throughout.
  // Loaded only when configured: an idle process's heap stays smaller without the client.
  const redis: RedisLink | undefined = config.redisUrl
    ? new (await import('./platform/redis.ts')).RedisLink(config.redisUrl, app.log)
    : undefined;
  if (redis) {
    bus.attachShared(redis);
    app.addHook('onClose', () => redis.close());
  }
  const users: UsersDeps = {
    db,
    sessionTtlHours: config.sessionTtlHours,
    credentials: new CredentialCache(bus),
    bus,
    throttle: new LoginThrottle(config.loginMaxAttempts, config.loginWindowMinutes, redis),
    apiKeyRateLimitMax: config.apiKeyRateLimitMax,
  };
  const bugs: BugsContext = { db, bus, cache: new BugCache(bus, undefined, redis) };
  const attachments = createAttachmentsContext({ config, db, bus, log: app.log });
  installGracefulDrain(app);
  const visits = new VisitRecorder(db, app.log);
  installVisitCounting(app, visits);
  installMetrics(app, { db, allow: config.metricsAllow, caches: { bug: bugs.cache } });
  await app.register(authPlugin, { deps: users, publicOrigin: new URL(config.baseUrl).host });
  await installRateLimit(app, { perMinute: config.rateLimitPerMinute, redis: redis?.client });

  app.setErrorHandler((err, request, reply) => {
    // A page asked for without signing in: off to the sign-in page, and back afterwards.
    const status = (err as { status?: number; statusCode?: number }).status;
    if (status === 401 && request.method === 'GET' && !request.url.startsWith('/api/')) {
      return reply.redirect(`/signin?next=${encodeURIComponent(request.url)}`, 303);
    }
    // A browser gets a page (403, 500 with the request id, ...); the API keeps its JSON envelope.
    if (isPageRequest(request)) return sendErrorPage(err as Error, request, reply);
    return errorHandler(err as Error, request, reply);
  });
  app.setNotFoundHandler((request, reply) => {
    if (request.url.startsWith('/api/') || !(request.headers.accept ?? '').includes('text/html')) {
      return sendError(reply, 404, {
        code: 'not_found',
        message: `No route ${request.method} ${request.url.split('?')[0]}.`,
      });
    }
    return reply.code(404).type('text/html; charset=utf-8').send(notFoundHtml(request));
  });

  await registerApiDocs(app);
  await app.register(opsRoutes, { db, config, redis });
  await app.register(adminStatsPages, { db, recorder: visits });
  await app.register(assetRoutes);
  await app.register(homePages, { ctx: bugs });
  await app.register(sessionPages, { deps: users, config });
  await app.register(accountPages, { deps: users });
  await app.register(fileBugPages, { ctx: bugs });
  await app.register(bugListPages, { ctx: bugs });
  await app.register(bugPages, { ctx: bugs, attachments });
  await app.register(attachmentPages, { ctx: attachments });
  await app.register(preferencesPages, { db });
  await app.register(adminMailPages, { db });
  await app.register(adminProductPages, { ctx: { db, bus } });
  await app.register(adminUserPages, { deps: users });
  await app.register(adminApiKeyPages, { deps: users });
  await app.register(
    async (api) => {
      await api.register(usersRoutes, { deps: users, config });
      await api.register(statsRoutes, { db });
      await api.register(productsRoutes, { ctx: { db, bus } });
      await api.register(bugsRoutes, { ctx: bugs });
      await api.register(attachmentsApi, { ctx: attachments });
      await api.register(searchRoutes, { ctx: bugs });
      await api.register(notifyRoutes, { db });
      await api.register(webhooksRoutes, { db, policy: addressPolicy(config.webhooks.allowedHosts) });
    },
    { prefix: '/api/v1' },
  );
  // Bugzilla 5.0 REST compatibility (docs/bugzilla.md): its own error form, credentials and 404s.
  await app.register(bugzillaRoutes, { prefix: '/rest', deps: { bugs, users, attachments } });
  return app;
}
