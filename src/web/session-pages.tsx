/**
 * Sign in, sign out and sign up in the browser. Forms work without JavaScript; errors are shown beside
 * the field with what was typed kept (never the password). Anonymous forms carry a double-submit token
 * (a random HttpOnly cookie echoed in the form); signed-in forms carry the session's CSRF token.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { versionLabel } from '../ops/routes.ts';
import { AppError } from '../platform/errors.ts';
import {
  createUser,
  endSession,
  SESSION_COOKIE,
  setSessionCookie,
  signIn,
  type UsersDeps,
} from '../users/index.ts';
import { formBodies } from './forms.ts';
import { Alert, Field, Layout, type PageContext } from './layout.tsx';

/** Cookie holding the anonymous form token. */
const FORM_COOKIE = 'bugzot_form';

/** The anonymous form token of this browser, set when missing. */
function anonymousToken(request: FastifyRequest, reply: FastifyReply): string {
  const existing = request.cookies[FORM_COOKIE];
  if (existing && /^[\w-]{43}$/.test(existing)) return existing;
  const token = randomBytes(32).toString('base64url');
  reply.setCookie(FORM_COOKIE, token, {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure: request.protocol === 'https',
  });
  return token;
}

function sameToken(a: unknown, b: string | undefined): boolean {
  if (typeof a !== 'string' || !b || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** Where to go after signing in: only a path on this site (no open redirect). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/';
}

function html(reply: FastifyReply, status: number, page: string | Promise<string>) {
  return reply.code(status).type('text/html; charset=utf-8').send(page);
}

type Form = Record<string, string | undefined>;

function SignInPage(props: {
  ctx: PageContext;
  email?: string;
  next: string;
  error?: string;
  allowSignup: boolean;
}) {
  return (
    <Layout title="Sign in" ctx={props.ctx}>
      <h1>Sign in</h1>
      <div class="card">
        <Alert message={props.error} />
        <form method="post" action="/signin">
          <input type="hidden" name="_csrf" value={props.ctx.csrf} />
          <input type="hidden" name="next" value={props.next} />
          <Field
            name="email"
            label="E-mail address"
            type="email"
            value={props.email}
            autocomplete="username"
          />
          <Field name="password" label="Password" type="password" autocomplete="current-password" />
          <button type="submit">Sign in</button>
        </form>
        {props.allowSignup ? (
          <p class="muted">
            No account yet? <a href="/signup">Sign up</a>
          </p>
        ) : (
          ''
        )}
      </div>
    </Layout>
  );
}

function SignUpPage(props: { ctx: PageContext; values: Form; errors: Form; error?: string }) {
  return (
    <Layout title="Sign up" ctx={props.ctx}>
      <h1>Create an account</h1>
      <div class="card">
        <Alert message={props.error} />
        <form method="post" action="/signup">
          <input type="hidden" name="_csrf" value={props.ctx.csrf} />
          <Field
            name="name"
            label="Your name"
            value={props.values['name']}
            error={props.errors['name']}
            autocomplete="name"
          />
          <Field
            name="email"
            label="E-mail address"
            type="email"
            value={props.values['email']}
            error={props.errors['email']}
            autocomplete="email"
          />
          <Field
            name="password"
            label="Password (10 characters or more)"
            type="password"
            error={props.errors['password']}
            autocomplete="new-password"
          />
          <button type="submit">Create account</button>
        </form>
        <p class="muted">
          Already have one? <a href="/signin">Sign in</a>
        </p>
      </div>
    </Layout>
  );
}

/** Registers /signin, /signout and /signup. */
export async function sessionPages(
  app: FastifyInstance,
  { deps, config }: { deps: UsersDeps; config: Config },
) {
  // HTML forms post urlencoded bodies; only these page routes accept them (the API takes JSON only).
  await formBodies(app, 64 * 1024);
  const anonymousCtx = (request: FastifyRequest, reply: FastifyReply): PageContext => ({
    viewer: request.viewer,
    csrf: request.credential?.csrfToken ?? anonymousToken(request, reply),
    version: versionLabel,
  });

  app.get<{ Querystring: { next?: string } }>(
    '/signin',
    { config: { public: true } },
    async (request, reply) => {
      const next = safeNext(request.query.next);
      if (request.viewer.kind === 'user') return reply.redirect(next, 303);
      return html(
        reply,
        200,
        <SignInPage ctx={anonymousCtx(request, reply)} next={next} allowSignup={config.allowSignup} />,
      );
    },
  );

  app.post<{ Body: Form }>('/signin', { config: { public: true } }, async (request, reply) => {
    const body = request.body ?? {};
    const ctx = anonymousCtx(request, reply);
    const next = safeNext(body['next']);
    const email = (body['email'] ?? '').trim();
    if (!sameToken(body['_csrf'], request.cookies[FORM_COOKIE])) {
      return html(
        reply,
        403,
        <SignInPage
          ctx={ctx}
          email={email}
          next={next}
          allowSignup={config.allowSignup}
          error="This form expired; please try again."
        />,
      );
    }
    try {
      const { token } = await signIn(deps, { email, password: body['password'] ?? '', ip: request.ip });
      setSessionCookie(reply, request, token, config.sessionTtlHours);
      return reply.redirect(next, 303);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return html(
        reply,
        err.status,
        <SignInPage
          ctx={ctx}
          email={email}
          next={next}
          allowSignup={config.allowSignup}
          error={err.message}
        />,
      );
    }
  });

  app.post('/signout', async (request, reply) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token) await endSession(deps, token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/', 303);
  });

  if (!config.allowSignup) return;

  app.get('/signup', { config: { public: true } }, async (request, reply) => {
    if (request.viewer.kind === 'user') return reply.redirect('/', 303);
    return html(reply, 200, <SignUpPage ctx={anonymousCtx(request, reply)} values={{}} errors={{}} />);
  });

  app.post<{ Body: Form }>('/signup', { config: { public: true } }, async (request, reply) => {
    const body = request.body ?? {};
    const ctx = anonymousCtx(request, reply);
    const values = { name: (body['name'] ?? '').trim(), email: (body['email'] ?? '').trim() };
    if (!sameToken(body['_csrf'], request.cookies[FORM_COOKIE])) {
      return html(
        reply,
        403,
        <SignUpPage ctx={ctx} values={values} errors={{}} error="This form expired; please try again." />,
      );
    }
    const errors: Form = {};
    if (!values.name) errors['name'] = 'Enter your name.';
    if (values.name.length > 120) errors['name'] = 'At most 120 characters.';
    if (values.email.length > 254) errors['email'] = 'At most 254 characters.';
    if (Object.keys(errors).length)
      return html(reply, 400, <SignUpPage ctx={ctx} values={values} errors={errors} />);
    try {
      // Self sign-up makes external accounts only; staff accounts are made by admins.
      await createUser(deps.db, { ...values, password: body['password'] ?? '', kind: 'external' });
      const { token } = await signIn(deps, {
        email: values.email,
        password: body['password'] ?? '',
        ip: request.ip,
      });
      setSessionCookie(reply, request, token, config.sessionTtlHours);
      return reply.redirect('/', 303);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      const field = err.field ?? '';
      return html(
        reply,
        err.status,
        <SignUpPage
          ctx={ctx}
          values={values}
          errors={field ? { [field]: err.message } : {}}
          {...(field ? {} : { error: err.message })}
        />,
      );
    }
  });
}
