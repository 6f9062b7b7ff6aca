/**
 * Builds the HTTP application from the modules. Never listens: `serve` does that, and tests drive it
 * with `inject` or a real socket.
 */
import { randomUUID } from 'node:crypto';
import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance } from 'fastify';
import { BugCache, type BugsContext, bugsRoutes } from './bugs/index.ts';
import type { Config } from './config.ts';
import { opsRoutes } from './ops/routes.ts';
import type { Db } from './platform/db.ts';
import { errorHandler, installIdParamCheck, installValidators, sendError } from './platform/http.ts';
import { Invalidation } from './platform/invalidation.ts';
import { lazyChildLogger } from './platform/logging.ts';
import { registerApiDocs } from './platform/openapi.ts';
import { apiSecurityHeaders, installSecurityHeaders } from './platform/security-headers.ts';
import { productsRoutes } from './products/index.ts';
import { authPlugin, CredentialCache, LoginThrottle, type UsersDeps, usersRoutes } from './users/index.ts';
import { accountPages } from './web/account-pages.tsx';
import { bugListPages } from './web/bug-list-page.tsx';
import { bugPages } from './web/bug-page.tsx';
import { fileBugPages } from './web/file-bug-page.tsx';
import { homePages } from './web/home.tsx';
import { notFoundPage } from './web/pages.ts';
import { sessionPages } from './web/session-pages.tsx';

/** What the app is built from. */
export interface AppDeps {
  config: Config;
  db: Db;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Builds the Fastify app with every module registered. */
export async function buildApp({ config, db }: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
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
    return503OnClosing: true,
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
  installValidators(app);
  installIdParamCheck(app);
  // Plain text bodies are never an API input; refusing them also shuts a cross-site form vector.
  app.removeContentTypeParser('text/plain');

  installSecurityHeaders(app, config.env === 'production');

  await app.register(cookie);
  const bus = new Invalidation();
  await bus.start(db);
  app.addHook('onClose', () => bus.close());
  const users: UsersDeps = {
    db,
    sessionTtlHours: config.sessionTtlHours,
    credentials: new CredentialCache(bus),
    bus,
    throttle: new LoginThrottle(config.loginMaxAttempts, config.loginWindowMinutes),
  };
  const bugs: BugsContext = { db, bus, cache: new BugCache(bus) };
  await app.register(authPlugin, { deps: users, publicOrigin: new URL(config.baseUrl).host });

  app.setErrorHandler((err, request, reply) => {
    // A page asked for without signing in: off to the sign-in page, and back afterwards.
    const status = (err as { status?: number; statusCode?: number }).status;
    if (status === 401 && request.method === 'GET' && !request.url.startsWith('/api/')) {
      return reply.redirect(`/signin?next=${encodeURIComponent(request.url)}`, 303);
    }
    return errorHandler(err as Error, request, reply);
  });
  app.setNotFoundHandler((request, reply) => {
    if (request.url.startsWith('/api/') || !(request.headers.accept ?? '').includes('text/html')) {
      return sendError(reply, 404, {
        code: 'not_found',
        message: `No route ${request.method} ${request.url.split('?')[0]}.`,
      });
    }
    return reply.code(404).type('text/html; charset=utf-8').send(notFoundPage());
  });

  await registerApiDocs(app);
  await app.register(opsRoutes, { db, config });
  await app.register(homePages, { ctx: bugs });
  await app.register(sessionPages, { deps: users, config });
  await app.register(accountPages, { deps: users });
  await app.register(fileBugPages, { ctx: bugs });
  await app.register(bugListPages, { ctx: bugs });
  await app.register(bugPages, { ctx: bugs });
  await app.register(
    async (api) => {
      await api.register(usersRoutes, { deps: users, config });
      await api.register(productsRoutes, { ctx: { db, bus } });
      await api.register(bugsRoutes, { ctx: bugs });
    },
    { prefix: '/api/v1' },
  );
  return app;
}
