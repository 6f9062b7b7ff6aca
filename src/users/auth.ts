/**
 * Authentication for every request, deny by default: a route answers only signed-in viewers unless it
 * opts out with `config: { public: true }`. Credentials are a bearer API key or the session cookie.
 * Writes through a read-only key are refused; session-authenticated form posts need the CSRF token.
 * A key an admin marked may act for another user: `X-Bugzot-On-Behalf-Of` (see on-behalf.ts).
 */
import type {} from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { anonymous, type Viewer } from '../access/index.ts';
import { AppError, forbidden, invalid, unauthenticated } from '../platform/errors.ts';
import { actOnBehalf, ON_BEHALF_HEADER, withActingRequest } from './on-behalf.ts';
import { type Credential, resolveApiKey, resolveSession, type UsersDeps } from './service.ts';

/** Name of the session cookie. */
export const SESSION_COOKIE = 'bugzot_session';

/** Sets the session cookie: HttpOnly, SameSite=Lax, Secure when the request came over HTTPS. */
export function setSessionCookie(
  reply: FastifyReply,
  request: FastifyRequest,
  token: string,
  ttlHours: number,
) {
  reply.setCookie(SESSION_COOKIE, token, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: request.protocol === 'https',
    maxAge: ttlHours * 3600,
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking; `anonymous` until the auth hook runs. */
    viewer: Viewer;
    /** How they proved it, when they did. */
    credential: Credential | undefined;
  }
  interface FastifyContextConfig {
    /** Route answers without a signed-in viewer. */
    public?: boolean;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function bearer(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (!m) throw unauthenticated('Authorization header must be "Bearer <api key>".');
  return m[1];
}

/**
 * A browser on another site must not act with our cookie: the Origin must be our own, as the request
 * names it (Host) or as configured (BASE_URL, for proxies that rewrite Host).
 */
function crossSite(request: FastifyRequest, publicHost: string): boolean {
  const origin = request.headers.origin;
  if (!origin || origin === 'null') return origin === 'null';
  try {
    const host = new URL(origin).host;
    return host !== request.host && host !== publicHost;
  } catch {
    return true;
  }
}

function isForm(request: FastifyRequest): boolean {
  return /^application\/x-www-form-urlencoded\b/i.test(request.headers['content-type'] ?? '');
}

const csrfFailed = () =>
  new AppError(403, 'csrf_failed', 'Missing or wrong CSRF token; reload the page and try again.');

/** Requests whose CSRF token is in their form body, to be checked after parsing. */
const csrfFromForm = new WeakSet<FastifyRequest>();

function isJson(request: FastifyRequest): boolean {
  return /^application\/([\w.+-]+\+)?json\b/i.test(request.headers['content-type'] ?? '');
}

/** Registers the authentication hook. */
export const authPlugin = fp(
  async (app: FastifyInstance, { deps, publicOrigin }: { deps: UsersDeps; publicOrigin: string }) => {
    const logUsers = ['info', 'debug', 'trace'].includes(app.log.level);
    app.decorateRequest('viewer', null as never);
    app.decorateRequest('credential', undefined);

    app.addHook('onRequest', async (request) => {
      request.viewer = anonymous;
      const key = bearer(request);
      let cred: Credential | undefined;
      if (key !== undefined) {
        cred = await resolveApiKey(deps, key);
        if (!cred) throw unauthenticated('The API key is unknown, revoked or expired.');
      } else {
        const token = request.cookies[SESSION_COOKIE];
        if (token) cred = await resolveSession(deps, token);
      }
      const onBehalf = request.headers[ON_BEHALF_HEADER];
      if (onBehalf !== undefined) {
        if (typeof onBehalf !== 'string')
          throw invalid(`send one ${ON_BEHALF_HEADER} header`, ON_BEHALF_HEADER);
        cred = await actOnBehalf(deps, cred, onBehalf);
      }
      if (cred) {
        request.viewer = cred.viewer;
        request.credential = cred;
        // Every later log line of this request names the user (skipped when nothing would be logged).
        if (logUsers) {
          request.log = request.log.child(
            cred.actor
              ? { user_id: cred.viewer.id, via_user_id: cred.actor.id }
              : { user_id: cred.viewer.id },
          );
        }
      }
      if (request.is404) return;
      if (!request.routeOptions.config.public && !cred) throw unauthenticated();
      if (cred && !SAFE_METHODS.has(request.method)) {
        if (cred.scope === 'read-only') throw forbidden('This API key is read-only.');
        if (cred.via === 'session') {
          if (crossSite(request, publicOrigin)) throw forbidden('Cross-site request refused.');
          // JSON requests cannot be sent cross-site without a CORS preflight, which we never grant;
          // anything a plain HTML form can send must carry the session's CSRF token.
          if (request.method === 'POST' && !isJson(request) && !request.routeOptions.config.public) {
            const sent = request.headers['x-csrf-token'];
            // A page's form carries the token as its _csrf field, checked once the body is parsed (the
            // API takes no forms: there a missing header is refused at once).
            if (sent === undefined && isForm(request) && !request.url.startsWith('/api/'))
              csrfFromForm.add(request);
            else if (sent !== cred.csrfToken) throw csrfFailed();
          }
        }
      }
    });

    // Writes of a request acting for someone else record who really made them (on-behalf.ts).
    app.addHook('preHandler', (request, _reply, done) => withActingRequest(request, done));

    app.addHook('preValidation', async (request) => {
      if (!csrfFromForm.has(request)) return;
      csrfFromForm.delete(request);
      const sent = (request.body as { _csrf?: unknown } | undefined)?._csrf;
      if (sent !== request.credential?.csrfToken) throw csrfFailed();
    });
  },
);
