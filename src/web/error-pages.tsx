/**
 * Error pages for people in a browser: a friendly 404 (also for what the viewer may not see), 403, the
 * 4xx a form or link can cause, and a generic 500 that names only the request id — never a stack trace.
 * API requests (under /api/, or not asking for HTML) keep the JSON error envelope.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { anonymous } from '../access/index.ts';
import { versionLabel } from '../ops/routes.ts';
import { AppError } from '../platform/errors.ts';
import { Layout, type PageContext } from './layout.tsx';

/** Whether an answer to this request is a page: a browser asking for HTML, outside the API. */
export function isPageRequest(request: FastifyRequest): boolean {
  return !request.url.startsWith('/api/') && (request.headers.accept ?? '').includes('text/html');
}

function context(request: FastifyRequest): PageContext {
  // The auth hook may not have run (an error before it) or may have failed: then nobody is signed in.
  const viewer = request.viewer ?? anonymous;
  return { viewer, csrf: request.credential?.csrfToken ?? '', version: versionLabel };
}

function ErrorPage(props: { ctx: PageContext; title: string; children: JSX.Element | JSX.Element[] }) {
  return (
    <Layout title={props.title} ctx={props.ctx}>
      <h1 safe>{props.title}</h1>
      <>{props.children}</>
      <p>
        <a href="/">Home</a>
      </p>
    </Layout>
  );
}

/** The 404 page, for things that do not exist and things the viewer may not see alike. */
export function notFoundHtml(request: FastifyRequest, message?: string): string {
  return (
    <ErrorPage ctx={context(request)} title="Not found">
      <p safe>{message ?? 'There is nothing here, or you may not see it.'}</p>
    </ErrorPage>
  ) as string;
}

/** The 403 page: signed in, but this is not for them (admin pages, a refused form). */
export function forbiddenHtml(request: FastifyRequest, message: string): string {
  return (
    <ErrorPage ctx={context(request)} title="Not allowed">
      <p safe>{message}</p>
      <p>If you think you should be allowed, ask an administrator of this Bugzot.</p>
    </ErrorPage>
  ) as string;
}

/** The 500 page: something broke on our side; the request id finds it in the logs. */
export function serverErrorHtml(request: FastifyRequest): string {
  return (
    <ErrorPage ctx={context(request)} title="Something went wrong">
      <p>
        Something went wrong on our side, and what you asked for was not done. Please try again in a moment.
      </p>
      <p>
        If it keeps happening, tell an administrator this request id:{' '}
        <code class="request-id" safe>
          {String(request.id)}
        </code>
      </p>
    </ErrorPage>
  ) as string;
}

/** Any other 4xx: what to fix, in words. */
function clientErrorHtml(request: FastifyRequest, status: number, message: string): string {
  return (
    <ErrorPage
      ctx={context(request)}
      title={
        status === 401 ? 'Please sign in again' : status === 429 ? 'Too many requests' : 'That did not work'
      }
    >
      <p safe>{message}</p>
      {status === 401 ? (
        <p>
          <a href="/signin">Sign in</a>, then go back and try again.
        </p>
      ) : (
        <p>Go back, correct it and try again.</p>
      )}
    </ErrorPage>
  ) as string;
}

/** Answers a failed page request with an HTML page of the right status. */
export function sendErrorPage(
  err: FastifyError | AppError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const fe = err as FastifyError;
  const status = err instanceof AppError ? err.status : fe.validation ? 400 : (fe.statusCode ?? 500);
  reply.type('text/html; charset=utf-8').header('cache-control', 'no-store');
  if (status >= 500 || status < 400) {
    request.log.error({ err }, 'unhandled error');
    return reply.code(500).send(serverErrorHtml(request));
  }
  // Framework errors (body too large, malformed input) carry technical messages: say it plainly instead.
  const message =
    err instanceof AppError
      ? err.message
      : status === 413
        ? 'What you sent is too large.'
        : 'The request could not be understood.';
  if (status === 404) return reply.code(404).send(notFoundHtml(request));
  if (status === 403) return reply.code(403).send(forbiddenHtml(request, message));
  return reply.code(status).send(clientErrorHtml(request, status, message));
}
