/**
 * Bugzilla's error form: `{"error":true,"code":N,"message":...,"documentation":...}` with Bugzilla 5's
 * numeric codes and the HTTP status its REST server gives each code. Bugzot's own errors (AppError)
 * are translated here, so the services stay the only place that decides what is allowed.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../platform/errors.ts';

/** Where Bugzilla's error answers point; the API implemented here is theirs. */
export const DOCUMENTATION = 'https://bugzilla.readthedocs.io/en/5.0/api/index.html';

/** The codes used here, named as Bugzilla's WS_ERROR_CODE names them. */
export const CODE = {
  paramRequired: 50,
  objectDoesNotExist: 51,
  notNumeric: 52,
  paramInvalid: 53,
  illegalDate: 56,
  improperBugId: 100,
  bugDoesNotExist: 101,
  bugAccessDenied: 102,
  illegalField: 104,
  requireComponent: 105,
  productAccessDenied: 106,
  requireSummary: 107,
  invalidFieldName: 108,
  commentIsPrivate: 110,
  userNotInsider: 113,
  illegalChange: 115,
  dupeLoop: 118,
  dupeIdRequired: 119,
  missingResolution: 121,
  resolutionNotAllowed: 122,
  illegalStatusTransition: 123,
  wrongPassword: 300,
  apiKeyNotValid: 306,
  loginRequired: 410,
  invalidUser: 504,
  fileTooLarge: 600,
  invalidContentType: 601,
  fileNotSpecified: 603,
  missingAttachmentDescription: 604,
  zeroLengthFile: 606,
  userAccessDenied: 505,
  unsupported: 910,
  transient: 32000,
  invalidResource: 32614,
} as const;

/** Bugzilla 5's REST_STATUS_CODE_MAP: the HTTP status of each code (400 for the rest). */
const STATUS: Record<number, number> = {
  51: 404,
  101: 404,
  102: 401,
  106: 401,
  109: 401,
  110: 401,
  113: 401,
  115: 401,
  120: 401,
  300: 401,
  301: 401,
  302: 401,
  303: 401,
  304: 401,
  410: 401,
  504: 401,
  505: 401,
  32614: 404,
};

/** An error in Bugzilla's terms: its code, message and (usually derived) HTTP status. */
export class BugzillaError extends Error {
  readonly status: number;
  constructor(
    readonly code: number,
    message: string,
    status?: number,
  ) {
    super(message);
    this.name = 'BugzillaError';
    this.status = status ?? STATUS[code] ?? 400;
  }
}

/** Shorthand for throwing a Bugzilla error. */
export const bz = (code: number, message: string, status?: number) =>
  new BugzillaError(code, message, status);

/** What the failed call was doing, so a Bugzot error maps onto the code Bugzilla gives in that place. */
export type Doing = 'read' | 'create' | 'update' | 'comment' | 'user' | 'login';

/** Bugzot's error codes (AppError.code) that have a direct Bugzilla equivalent. */
const BY_APP_CODE: Record<string, number> = {
  invalid_transition: CODE.illegalStatusTransition,
  resolution_required: CODE.missingResolution,
  resolution_not_allowed: CODE.resolutionNotAllowed,
  duplicate_not_allowed: CODE.resolutionNotAllowed,
  duplicate_of_required: CODE.dupeIdRequired,
  unknown_product: CODE.productAccessDenied,
  unknown_version: CODE.objectDoesNotExist,
  version_of_other_product: CODE.objectDoesNotExist,
  component_of_other_product: CODE.requireComponent,
};

/** Translates any error thrown while serving a Bugzilla call into a BugzillaError. */
export function toBugzillaError(err: unknown, doing: Doing = 'read'): BugzillaError | undefined {
  if (err instanceof BugzillaError) return err;
  if (err instanceof AppError) {
    const direct = BY_APP_CODE[err.code];
    if (direct !== undefined) return bz(direct, err.message);
    if (err.code === 'unknown_bug') return bz(CODE.bugDoesNotExist, err.message);
    if (err.code === 'mid_air_collision') return bz(CODE.transient, err.message, 409);
    if (err.status === 404) {
      return /^Bug /.test(err.message)
        ? bz(CODE.bugDoesNotExist, err.message.replace(/^Bug (\d+) not found\.$/, 'Bug #$1 does not exist.'))
        : bz(CODE.objectDoesNotExist, err.message);
    }
    if (err.status === 401) return bz(CODE.loginRequired, err.message);
    if (err.status === 429) return bz(CODE.transient, err.message, 429);
    if (err.status === 403) {
      if (/private comments/.test(err.message)) return bz(CODE.userNotInsider, err.message);
      if (/read-only/.test(err.message)) return bz(CODE.illegalChange, err.message);
      return bz(doing === 'user' ? CODE.userAccessDenied : CODE.illegalChange, err.message);
    }
    if (err.status === 413) return bz(CODE.fileTooLarge, err.message);
    if (err.status === 415) return bz(CODE.invalidContentType, err.message);
    if (err.status === 422 && err.field === 'file') return bz(CODE.invalidContentType, err.message);
    if (err.status === 422 && err.field === 'summary') return bz(CODE.requireSummary, err.message);
    if (err.status === 422 && (err.field === 'assignee_id' || err.field?.startsWith('cc')))
      return bz(CODE.invalidUser, err.message);
    if (err.status === 409 || err.status === 422 || err.status === 400)
      return bz(CODE.paramInvalid, err.message);
    if (err.status >= 400 && err.status < 500) return bz(CODE.transient, err.message, err.status);
    return undefined;
  }
  const fe = err as FastifyError;
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const message =
      err instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
        ? 'The request body is not valid JSON.'
        : fe.message;
    if (fe.statusCode === 413)
      return bz(CODE.fileTooLarge, `The request body is too large: ${fe.message}`, 413);
    return bz(CODE.transient, message, fe.statusCode);
  }
  return undefined;
}

/** Sends a Bugzilla error answer. */
export function sendBugzillaError(reply: FastifyReply, e: BugzillaError) {
  return reply
    .code(e.status)
    .type('application/json; charset=utf-8')
    .send({ error: true, code: e.code, message: e.message, documentation: DOCUMENTATION });
}

/** The error handler of the /rest/ routes: Bugzilla's form for every failure, a request id for 500s. */
export function bugzillaErrorHandler(err: Error, request: FastifyRequest, reply: FastifyReply) {
  const doing = (request.routeOptions.config as { doing?: Doing }).doing;
  const e = toBugzillaError(err, doing);
  if (e) return sendBugzillaError(reply, e);
  request.log.error({ err }, 'unhandled error');
  return sendBugzillaError(
    reply,
    bz(-32000, `Something went wrong on our side. Quote request id ${request.id} when reporting it.`, 500),
  );
}
