/**
 * Errors with stable codes. Services throw these; the HTTP layer turns them into
 * `{ "error": { "code", "message", "field"? } }` with the status they carry. Anything else is a 500
 * whose body names only the request id.
 */

/** An error meant for the client: a status, a stable machine-readable code and a message saying what to fix. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

/** 400: the request is malformed or a value is invalid; `field` names the culprit. */
export const invalid = (message: string, field?: string, code = 'invalid_request') =>
  new AppError(400, code, message, field);

/** 401: no valid credentials. */
export const unauthenticated = (message = 'Sign in or send an API key (Authorization: Bearer <key>).') =>
  new AppError(401, 'unauthenticated', message);

/** 403: the viewer may see the thing but not do this to it. */
export const forbidden = (message: string) => new AppError(403, 'forbidden', message);

/** 404: does not exist, or the viewer may not see it — the two are indistinguishable on purpose. */
export const notFound = (what: string, id?: number | string) =>
  new AppError(404, 'not_found', id === undefined ? `${what} not found.` : `${what} ${id} not found.`);

/** 409: conflicts with stored state (a duplicate name, a stale row version in a form). */
export const conflict = (
  message: string,
  field?: string,
  details?: Record<string, unknown>,
  code = 'conflict',
) => new AppError(409, code, message, field, details);

/** 422: well-formed but breaks a business rule (an illegal workflow step, a version of another product). */
export const unprocessable = (
  message: string,
  field?: string,
  code = 'invalid_value',
  details?: Record<string, unknown>,
) => new AppError(422, code, message, field, details);

/** 429: too many attempts; retry later. */
export const tooManyRequests = (message: string) => new AppError(429, 'rate_limited', message);
