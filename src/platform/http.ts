/**
 * HTTP plumbing shared by every module: schema validation (strict for bodies, coercing for query
 * strings and path parameters), the error envelope, and small schema helpers.
 */
import { Ajv, type Options as AjvOptions } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Static, type TSchema, Type } from 'typebox';
import { AppError } from './errors.ts';

/** The error body every 4xx and 5xx carries. */
export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    field: Type.Optional(Type.String()),
    request_id: Type.Optional(Type.String()),
  }),
});

/** `:id` path parameter: a positive 32-bit integer. */
export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2147483647 }) });
export type IdParams = Static<typeof IdParams>;

/** A positive database id. */
export const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });

/** Makes a schema nullable (JSON `null` allowed). */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

function makeAjv(opts: AjvOptions): Ajv {
  const ajv = new Ajv({ allErrors: false, strict: false, useDefaults: true, ...opts });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

/**
 * Bodies are validated strictly (no type coercion, unknown properties refused), so `"summary": 123`
 * is a 400 rather than the string "123". Query strings and path parameters arrive as text and are coerced.
 */
export function installValidators(app: FastifyInstance): void {
  const strict = makeAjv({ coerceTypes: false, removeAdditional: false });
  const coercing = makeAjv({ coerceTypes: 'array', removeAdditional: false });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema as object),
  );
}

/**
 * Every `:id` in a path is a decimal database id. Schema coercion alone would read `1e0` or `0x1` as 1,
 * so the raw text is checked before validation.
 */
export function installIdParamCheck(app: FastifyInstance): void {
  app.addHook('preValidation', (request, reply, done) => {
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string' && !/^[1-9][0-9]{0,9}$/.test(id)) {
      sendError(reply, 400, {
        code: 'invalid_request',
        message: 'id must be a positive whole number',
        field: 'id',
      });
      return;
    }
    done();
  });
}

/** Names the field a validation error is about, as the client sent it. */
function fieldOf(err: FastifyError): string | undefined {
  const v = err.validation?.[0];
  if (!v) return undefined;
  const missing = (v.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
  let path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
  // A query parameter may repeat (?status=A&status=B): name the parameter, not its n-th value.
  if (err.validationContext === 'querystring') path = path.replace(/\.\d+$/, '');
  const extra = missing.missingProperty ?? missing.additionalProperty;
  return [path, extra].filter(Boolean).join('.') || undefined;
}

function validationMessage(err: FastifyError, field: string | undefined): string {
  const v = err.validation?.[0];
  if (!v) return err.message;
  const where = err.validationContext ?? 'request';
  if (v.keyword === 'additionalProperties') return `${where} has an unknown property "${field}"`;
  if (v.keyword === 'required') return `${where} is missing the required property "${field}"`;
  return `${field ?? where} ${v.message ?? 'is invalid'}`;
}

/** Sends the error envelope; HTML pages install their own renderer on top. */
export function sendError(
  reply: FastifyReply,
  status: number,
  body: { code: string; message: string; field?: string | undefined; [k: string]: unknown },
) {
  const error: Record<string, unknown> = { ...body };
  if (error['field'] === undefined) delete error['field'];
  return reply.code(status).type('application/json; charset=utf-8').send({ error });
}

/** Maps any thrown error to a 4xx the client can act on, or a 500 that names only the request id. */
export function errorHandler(
  err: FastifyError | AppError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  if (err instanceof AppError) {
    return sendError(reply, err.status, {
      code: err.code,
      message: err.message,
      field: err.field,
      ...err.details,
    });
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    const field = fieldOf(fe);
    return sendError(reply, 400, { code: 'invalid_request', message: validationMessage(fe, field), field });
  }
  const status = fe.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code =
      status === 413
        ? 'payload_too_large'
        : status === 415
          ? 'unsupported_media_type'
          : status === 429
            ? 'rate_limited'
            : err instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
              ? 'malformed_json'
              : fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
                ? 'empty_body'
                : 'bad_request';
    const message = code === 'malformed_json' ? 'The request body is not valid JSON.' : fe.message;
    return sendError(reply, status, { code, message });
  }
  // Unexpected: log it whole, tell the client only how to find it in the logs.
  request.log.error({ err }, 'unhandled error');
  return sendError(reply, 500, {
    code: 'internal_error',
    message: `Something went wrong on our side. Quote request id ${request.id} when reporting it.`,
    request_id: String(request.id),
  });
}
