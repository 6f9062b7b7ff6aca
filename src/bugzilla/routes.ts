/**
 * The Bugzilla 5.0 REST routes under /rest/. Thin: gather the parameters (query string over JSON body,
 * as Bugzilla does), resolve the caller, call one function, answer. Every failure — ours, a service's,
 * an unknown resource — leaves in Bugzilla's error form.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AttachmentsContext } from '../attachments/index.ts';
import type { BugsContext } from '../bugs/index.ts';
import type { UsersDeps } from '../users/index.ts';
import { ATTACHMENT_BODY_LIMIT, addAttachment, attachmentsById, bugAttachments } from './attachments.ts';
import { authenticateBugzilla, caller, login, logout, validLogin } from './auth.ts';
import { addBugComment, createBug, updateBugs } from './bug-changes.ts';
import { bugComments, bugHistoryOf, bugIdOf, getBugs, searchBugs } from './bugs.ts';
import { getFields, getProducts, getUsers, legalValues, productIds } from './catalogue.ts';
import { bugzillaErrorHandler, bz, CODE, type Doing, sendBugzillaError } from './errors.ts';
import { bzDate, type Params, toId } from './fields.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a /rest/ route does, so that errors map onto the code Bugzilla gives there. */
    doing?: Doing;
    /** A /rest/ route that answers without credentials (and ignores bad ones, as Bugzilla's login does). */
    bugzillaOpen?: boolean;
  }
}

/** What the Bugzilla layer is built on. */
export interface BugzillaDeps {
  bugs: BugsContext;
  users: UsersDeps;
  /** The attachments module's context; without it the attachment calls answer "not supported". */
  attachments?: AttachmentsContext | undefined;
}

/** The Bugzilla version this layer answers as (python-bugzilla and others read major.minor). */
export const BUGZILLA_VERSION = '5.0.4';

const paramsOf = new WeakMap<FastifyRequest, Params>();

/** The call's parameters: the JSON body's, overridden by the query string's. */
function params(request: FastifyRequest): Params {
  return paramsOf.get(request) ?? {};
}

type IdRequest = FastifyRequest<{ Params: { id_or_alias: string } }>;

/** The row version an `If-Match: "bug-<id>-v<n>"` header names (Bugzot's ETag), if any. */
function ifMatch(request: FastifyRequest, bugId: number): number | undefined {
  const h = request.headers['if-match'];
  if (h === undefined) return undefined;
  const m = /^\s*(?:W\/)?"bug-(\d+)-v(\d+)"\s*$/.exec(String(h));
  if (!m || Number(m[1]) !== bugId)
    throw bz(CODE.paramInvalid, 'If-Match must be an ETag this server gave for this bug.');
  return Number(m[2]);
}

/** Registers the /rest/ routes (register with `prefix: '/rest'`). */
export async function bugzillaRoutes(app: FastifyInstance, { deps }: { deps: BugzillaDeps }) {
  const { bugs, users } = deps;
  const db = bugs.db;

  app.setErrorHandler(bugzillaErrorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendBugzillaError(
      reply,
      bz(
        CODE.invalidResource,
        `A REST API resource was not found for '${request.method} ${request.url.split('?')[0]}'.`,
      ),
    ),
  );
  app.addHook('preHandler', async (request) => {
    const body = request.body;
    const fromBody = body && typeof body === 'object' && !Array.isArray(body) ? (body as Params) : {};
    const p: Params = { ...fromBody, ...(request.query as Params) };
    paramsOf.set(request, p);
    if (request.is404) return;
    const open = request.routeOptions.config?.bugzillaOpen === true;
    try {
      await authenticateBugzilla(users, request, p);
    } catch (err) {
      if (!open) throw err;
    }
  });

  // Every route opts out of the app's own sign-in check: credentials are resolved above, Bugzilla's way.
  const open = { public: true, bugzillaOpen: true };
  const signedIn = (doing: Doing = 'read') => ({ public: true, doing });

  app.get('/version', { config: open }, async () => ({ version: BUGZILLA_VERSION }));
  app.get('/extensions', { config: open }, async () => ({ extensions: {} }));
  app.get('/timezone', { config: open }, async () => ({ timezone: '+0000' }));
  app.get('/time', { config: open }, async () => {
    const now = bzDate(new Date());
    return {
      db_time: now,
      web_time: now,
      web_time_utc: now,
      tz_name: 'UTC',
      tz_offset: '+0000',
      tz_short_name: 'UTC',
    };
  });

  const loginRoute = { config: { ...open, doing: 'login' as const } };
  app.get('/login', loginRoute, (request) => login(users, request, params(request)));
  app.post('/login', loginRoute, (request) => login(users, request, params(request)));
  app.get('/logout', { config: open }, (request) => logout(users, request, params(request)));
  app.get('/valid_login', { config: open }, (request) => validLogin(users, params(request)));
  app.get('/whoami', { config: signedIn() }, async (request) => {
    const me = caller(request);
    return { id: me.id, real_name: me.name, name: me.email, login: me.email };
  });

  for (const kind of ['accessible', 'selectable', 'enterable'] as const) {
    app.get(`/product_${kind}`, { config: signedIn() }, (request) => productIds(db, caller(request), kind));
  }
  app.get('/product', { config: signedIn() }, (request) => getProducts(db, caller(request), params(request)));
  app.get<{ Params: { id_or_name: string } }>('/product/:id_or_name', { config: signedIn() }, (request) =>
    getProducts(db, caller(request), params(request), request.params.id_or_name),
  );

  app.get('/field/bug', { config: signedIn() }, (request) => getFields(db, caller(request), params(request)));
  app.get<{ Params: { name: string } }>('/field/bug/:name', { config: signedIn() }, (request) =>
    getFields(db, caller(request), params(request), request.params.name),
  );
  app.get<{ Params: { name: string } }>('/field/bug/:name/values', { config: signedIn() }, (request) =>
    legalValues(db, caller(request), request.params.name),
  );
  app.get<{ Params: { name: string; product: string } }>(
    '/field/bug/:name/:product/values',
    { config: signedIn() },
    (request) =>
      legalValues(db, caller(request), request.params.name, toId('product_id', request.params.product)),
  );

  // Anonymous callers get Bugzilla's 505 from the function (python-bugzilla's login probe); a bad key
  // or token is still an error.
  const userRoute = { config: signedIn('user') };
  app.get('/user', userRoute, (request) => getUsers(db, request.viewer, params(request)));
  app.get<{ Params: { id_or_name: string } }>('/user/:id_or_name', userRoute, (request) =>
    getUsers(db, request.viewer, params(request), request.params.id_or_name),
  );

  app.get('/bug', { config: signedIn() }, (request) => searchBugs(bugs, caller(request), params(request)));
  app.post('/bug', { config: signedIn('create') }, async (request, reply) => {
    const created = await createBug(bugs, caller(request), params(request));
    return reply.code(201).send(created);
  });
  app.get('/bug/:id_or_alias', { config: signedIn() }, (request: IdRequest) =>
    getBugs(bugs, caller(request), [bugIdOf(request.params.id_or_alias)], params(request)),
  );
  app.put('/bug/:id_or_alias', { config: signedIn('update') }, (request: IdRequest) => {
    const id = bugIdOf(request.params.id_or_alias);
    return updateBugs(bugs, caller(request), id, params(request), ifMatch(request, id));
  });
  app.get('/bug/:id_or_alias/comment', { config: signedIn() }, (request: IdRequest) =>
    bugComments(bugs, caller(request), bugIdOf(request.params.id_or_alias), params(request)),
  );
  app.post(
    '/bug/:id_or_alias/comment',
    { config: signedIn('comment') },
    async (request: IdRequest, reply) => {
      const added = await addBugComment(
        bugs,
        caller(request),
        bugIdOf(request.params.id_or_alias),
        params(request),
      );
      return reply.code(201).send(added);
    },
  );
  app.get('/bug/:id_or_alias/history', { config: signedIn() }, (request: IdRequest) =>
    bugHistoryOf(bugs, caller(request), bugIdOf(request.params.id_or_alias), params(request)),
  );

  const { attachments } = deps;
  if (!attachments) {
    const noAttachments = async () => {
      throw bz(CODE.unsupported, 'Attachments are not supported by this server through the Bugzilla API.');
    };
    app.get('/bug/:id_or_alias/attachment', { config: signedIn() }, noAttachments);
    app.post('/bug/:id_or_alias/attachment', { config: signedIn('create') }, noAttachments);
    app.get('/bug/attachment/:attachment_id', { config: signedIn() }, noAttachments);
    return;
  }
  app.get('/bug/:id_or_alias/attachment', { config: signedIn() }, (request: IdRequest) =>
    bugAttachments(attachments, caller(request), bugIdOf(request.params.id_or_alias), params(request)),
  );
  app.post(
    '/bug/:id_or_alias/attachment',
    { config: signedIn('create'), bodyLimit: ATTACHMENT_BODY_LIMIT },
    async (request: IdRequest, reply) => {
      const id = bugIdOf(request.params.id_or_alias);
      return reply.code(201).send(await addAttachment(attachments, caller(request), id, params(request)));
    },
  );
  app.get<{ Params: { attachment_id: string } }>(
    '/bug/attachment/:attachment_id',
    { config: signedIn() },
    (request) =>
      attachmentsById(
        attachments,
        caller(request),
        toId('attachment_id', request.params.attachment_id),
        params(request),
      ),
  );
}
