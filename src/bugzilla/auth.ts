/**
 * Who is calling the Bugzilla API, and Bugzilla's login calls. Credentials, in Bugzilla 5's order:
 * an API key (`Bugzilla_api_key` / `api_key` parameter, or the `X-BUGZILLA-API-KEY` header), else a
 * token (`Bugzilla_token` / `token`, or `X-BUGZILLA-TOKEN`), else `Bugzilla_login` and
 * `Bugzilla_password` (or the X-BUGZILLA-LOGIN/-PASSWORD headers) on the call itself, else a Bugzot
 * `Authorization: Bearer` key. A Bugzilla token is a Bugzot session: `login` starts one and answers `<user id>-<session
 * token>`; only the session token's SHA-256 is stored, as for every session. Session cookies are not
 * accepted here (as Bugzilla 5 refuses login cookies on its API): a cross-site page cannot call it.
 */
import type { FastifyRequest } from 'fastify';
import { anonymous, type UserViewer } from '../access/index.ts';
import { authenticate, endSession, signIn, toViewer, type UsersDeps } from '../users/index.ts';
// The users module's index does not export these two yet; they are its credential resolvers.
import { type Credential, resolveApiKey, resolveSession } from '../users/index.ts';
import { bz, CODE } from './errors.ts';
import { one, type Params } from './fields.ts';

/** Parameter names that carry credentials (never search criteria or bug fields). */
export const AUTH_PARAMS: ReadonlySet<string> = new Set([
  'Bugzilla_api_key',
  'api_key',
  'Bugzilla_token',
  'token',
  'Bugzilla_login',
  'Bugzilla_password',
  'Bugzilla_restrictlogin',
]);

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Splits a Bugzilla token `<user id>-<session token>`. */
function parseToken(token: string): { userId: number; session: string } | undefined {
  const m = /^([1-9][0-9]{0,9})-([A-Za-z0-9_-]{20,200})$/.exec(token);
  return m ? { userId: Number(m[1]), session: m[2]! } : undefined;
}

/**
 * Resolves the caller from Bugzilla's credentials and sets `request.viewer`; a wrong key or token is
 * an error rather than a silent anonymous call (a script must notice that its key expired).
 */
export async function authenticateBugzilla(
  deps: UsersDeps,
  request: FastifyRequest,
  p: Params,
): Promise<void> {
  const bearer = request.credential?.via === 'api-key' ? request.credential : undefined;
  request.viewer = anonymous;
  request.credential = undefined;
  const key = one(p, 'Bugzilla_api_key') ?? one(p, 'api_key') ?? header(request, 'x-bugzilla-api-key');
  const token = one(p, 'Bugzilla_token') ?? one(p, 'token') ?? header(request, 'x-bugzilla-token');
  const login = one(p, 'Bugzilla_login') ?? header(request, 'x-bugzilla-login');
  const password = one(p, 'Bugzilla_password') ?? header(request, 'x-bugzilla-password');
  let cred: Credential | undefined;
  if (key !== undefined) {
    cred = await resolveApiKey(deps, key);
    if (!cred) throw bz(CODE.apiKeyNotValid, 'The API key you specified is invalid, revoked or expired.');
  } else if (token !== undefined) {
    const parsed = parseToken(token);
    cred = parsed && (await resolveSession(deps, parsed.session));
    if (!cred || cred.viewer.id !== parsed?.userId) {
      throw bz(CODE.transient, 'The token is invalid or has expired; log in again.');
    }
  } else if (login !== undefined && password !== undefined) {
    // Bugzilla's per-call login: checked and throttled exactly like the sign-in page; no session kept.
    await deps.throttle.attempt(login, request.ip);
    const user = await authenticate(deps.db, login, password);
    if (!user) throw bz(CODE.wrongPassword, 'The username or password you entered is not valid.');
    await deps.throttle.succeed(login, request.ip);
    cred = { viewer: toViewer(user), via: 'session', scope: 'read-write' };
  } else {
    cred = bearer;
  }
  if (!cred) return;
  // Deny by default: only a key known to be read-write may change things.
  if (cred.scope !== 'read-write' && !SAFE_METHODS.has(request.method)) {
    throw bz(CODE.illegalChange, 'This API key is read-only.');
  }
  request.viewer = cred.viewer;
  request.credential = cred;
}

/** The signed-in caller, or Bugzilla's "log in first" (410). */
export function caller(request: FastifyRequest): UserViewer {
  if (request.viewer.kind !== 'user') {
    throw bz(
      CODE.loginRequired,
      'You must log in before using this part of Bugzot (send an API key or a token).',
    );
  }
  return request.viewer;
}

/** `login`: checks a password (throttled like the sign-in page) and starts a session: `{id, token}`. */
export async function login(deps: UsersDeps, request: FastifyRequest, p: Params) {
  const email = one(p, 'login');
  const password = one(p, 'password');
  if (!email) throw bz(CODE.paramRequired, 'The function User.login requires a login argument.');
  if (password === undefined)
    throw bz(CODE.paramRequired, 'The function User.login requires a password argument.');
  try {
    const { user, token } = await signIn(deps, { email, password, ip: request.ip });
    return { id: user.id, token: `${user.id}-${token}` };
  } catch (err) {
    if ((err as { status?: number }).status === 401) {
      throw bz(CODE.wrongPassword, 'The username or password you entered is not valid.');
    }
    throw err;
  }
}

/** `logout`: ends the session a token stands for (an API key has nothing to end). */
export async function logout(deps: UsersDeps, request: FastifyRequest, p: Params) {
  const token = one(p, 'Bugzilla_token') ?? one(p, 'token') ?? header(request, 'x-bugzilla-token');
  const parsed = token === undefined ? undefined : parseToken(token);
  if (parsed) await endSession(deps, parsed.session);
  return {};
}

/** `valid_login`: whether a token is live and belongs to the given login name. */
export async function validLogin(deps: UsersDeps, p: Params) {
  const email = one(p, 'login');
  const token = one(p, 'token') ?? one(p, 'Bugzilla_token');
  if (!email) throw bz(CODE.paramRequired, 'The function User.valid_login requires a login argument.');
  const parsed = token === undefined ? undefined : parseToken(token);
  const cred = parsed && (await resolveSession(deps, parsed.session));
  const ok =
    !!cred && cred.viewer.id === parsed?.userId && cred.viewer.email.toLowerCase() === email.toLowerCase();
  return { result: ok };
}

/** Query parameters that carry secrets under /rest/ (Bugzilla takes passwords and keys in the URL). */
const SECRET_PARAM =
  /([?&](?:Bugzilla_api_key|api_key|Bugzilla_token|token|password|Bugzilla_password)=)[^&#]*/gi;

/** A request URL fit for the logs: the values of secret-bearing parameters replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(SECRET_PARAM, '$1[redacted]') : url;
}
