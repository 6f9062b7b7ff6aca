/**
 * HTTP routes of attachments under /api/v1: the single-request upload (the raw body is the file),
 * listing, metadata, download with ranges, bundle members and their text, admin deletion. The tus
 * routes are in tus.ts.
 */
import { type Readable, Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { signedIn } from '../access/index.ts';
import { invalid } from '../platform/errors.ts';
import { ErrorBody, Id, IdParams, Nullable } from '../platform/http.ts';
import { downloadHeaders, planDownload } from './download.ts';
import { emptyBody } from './ingest.ts';
import { KINDS } from './inspect.ts';
import { MEMBER_TEXT_CAP, memberText, openMember } from './members.ts';
import { AttachmentResponse, MemberResponse, presentAttachment, presentMember } from './present.ts';
import type { AttachmentRow } from './repository.ts';
import * as service from './service.ts';
import { attachFile } from './uploads.ts';

type Ctx = service.AttachmentsContext;

const UploadQuery = Type.Object(
  { comment: Type.Optional(Type.String({ maxLength: 65535 })) },
  { additionalProperties: false },
);

/** Registers the raw-body upload route: its own scope, where every body is handed over as a stream. */
export async function attachmentUploadRoutes(app: FastifyInstance, { ctx }: { ctx: Ctx }) {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  app.put(
    '/bugs/:id/attachments/:filename',
    {
      schema: {
        summary: 'Attach a file in one request: the raw body is the file (curl -T file URL/)',
        description:
          'The file name is the last path segment; `comment` adds a comment with it. The content is sniffed ' +
          '(never trusted from Content-Type); a .tgz/.tar.gz must really be a gzip-compressed tar. ' +
          'Answers 201 with the attachment, 413 over ATTACHMENT_MAX_BYTES, 415 for a kind not accepted, ' +
          '422 for a file that is not what its name says.',
        params: Type.Object({ id: Id, filename: Type.String({ minLength: 1, maxLength: 255 }) }),
        querystring: UploadQuery,
        response: { 201: AttachmentResponse, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const viewer = signedIn(request.viewer);
      const { id, filename } = request.params as { id: number; filename: string };
      const { comment } = request.query as { comment?: string };
      const cl = request.headers['content-length'];
      const declaredLength = cl === undefined ? undefined : Number(cl);
      const body = (request.body as Readable | undefined) ?? emptyBody();
      // Refusals before the end of the body: close the connection rather than read the rest.
      reply.header('connection', 'close');
      let attachmentId: number;
      try {
        attachmentId = await attachFile(
          ctx,
          viewer,
          { bugId: id, fileName: filename, comment, declaredLength },
          body,
        );
      } catch (err) {
        // A small remainder is read and dropped so the client gets the answer instead of a broken
        // pipe; a large one is not worth the bandwidth, and the connection closes.
        if (await drainSmallRest(body, declaredLength)) reply.removeHeader('connection');
        throw err;
      }
      reply.removeHeader('connection');
      const row = await service.getAttachment(ctx, viewer, attachmentId);
      return reply
        .code(201)
        .header('location', `/api/v1/attachments/${attachmentId}`)
        .send(presentAttachment(row));
    },
  );
}

/** Bodies declared up to this size are read to their end after a refusal. */
const DRAIN_MAX_BYTES = 16 * 1024 * 1024;

async function drainSmallRest(body: Readable, declaredLength: number | undefined): Promise<boolean> {
  if (body.readableEnded) return true;
  if (declaredLength === undefined || !(declaredLength <= DRAIN_MAX_BYTES) || body.destroyed) return false;
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false), 10_000);
    const done = (ended: boolean) => {
      clearTimeout(timer);
      body.off('end', onEnd);
      body.off('close', onClose);
      resolve(ended);
    };
    const onEnd = () => done(true);
    const onClose = () => done(body.readableEnded);
    body.on('end', onEnd);
    body.on('close', onClose);
    body.resume();
  });
}

const ListQuery = Type.Object(
  {
    product_id: Type.Optional(Id),
    bug_id: Type.Optional(Id),
    uploader_id: Type.Optional(Id),
    kind: Type.Optional(Type.Array(Type.String())),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    min_size: Type.Optional(Type.Integer({ minimum: 0 })),
    max_size: Type.Optional(Type.Integer({ minimum: 0 })),
    sort: Type.Optional(Type.Union([Type.Literal('newest'), Type.Literal('largest')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

/** Filters of the support listing, from its query string. */
export function listFilter(q: {
  product_id?: number;
  bug_id?: number;
  uploader_id?: number;
  kind?: string[];
  since?: string;
  until?: string;
  min_size?: number;
  max_size?: number;
}): service.AttachmentFilter {
  const kinds = q.kind?.flatMap((k) => k.split(',')).filter(Boolean);
  const unknown = kinds?.find((k) => !(KINDS as readonly string[]).includes(k));
  if (unknown) throw invalid(`kind must be among ${KINDS.join(', ')} (got ${unknown})`, 'kind');
  return {
    productId: q.product_id,
    bugId: q.bug_id,
    uploaderId: q.uploader_id,
    kinds,
    since: q.since ? new Date(q.since) : undefined,
    until: q.until ? new Date(q.until) : undefined,
    minSize: q.min_size,
    maxSize: q.max_size,
  };
}

/** Cursor of the listing: base64url JSON of the last row's key. */
export function encodeCursor(sort: service.AttachmentSort, row: AttachmentRow): string {
  return Buffer.from(JSON.stringify({ k: sort === 'largest' ? row.size : row.id, i: row.id })).toString(
    'base64url',
  );
}

export function decodeCursor(cursor: string | undefined): { key: number; id: number } | undefined {
  if (cursor === undefined) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown; i?: unknown };
    if (Number.isSafeInteger(v.k) && Number.isSafeInteger(v.i))
      return { key: v.k as number, id: v.i as number };
  } catch {
    // below
  }
  throw invalid('cursor is not one this server handed out', 'cursor');
}

const MemberParams = Type.Object({ id: Id, idx: Type.Integer({ minimum: 0, maximum: 2147483647 }) });

/** The bytes of a download, as the OpenAPI document describes them (the real type is the stored one). */
const Bytes = { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } };

/** Every answer of a download route (sendDownload), declared so the API document lists them. */
const DownloadResponses = {
  200: { description: 'The bytes, with the stored Content-Type; ETag is the SHA-256', content: Bytes },
  206: { description: 'The byte range asked for with Range (single ranges)', content: Bytes },
  304: { type: 'null', description: 'Not Modified: If-None-Match names the current ETag' },
  '4xx': ErrorBody,
};

async function sendDownload(
  request: FastifyRequest,
  reply: FastifyReply,
  file: { fileName: string; contentType: string; size: number; etag: string },
  open: (range?: { start: number; end: number }) => Promise<Readable>,
) {
  downloadHeaders(reply, file);
  reply.header('etag', file.etag).header('accept-ranges', 'bytes');
  const plan = planDownload(request, file.size, file.etag);
  if (plan.status === 304) return reply.code(304).send();
  if (plan.status === 416) {
    return reply
      .code(416)
      .header('content-range', `bytes */${file.size}`)
      .type('application/json; charset=utf-8')
      .send({ error: { code: 'range_not_satisfiable', message: `The file has ${file.size} bytes.` } });
  }
  reply.header('content-length', String(plan.length));
  if (plan.range) reply.header('content-range', `bytes ${plan.range.start}-${plan.range.end}/${file.size}`);
  reply.code(plan.status);
  // HEAD: an empty stream keeps our Content-Length (Fastify's HEAD handling would set 0 for no body).
  if (request.method === 'HEAD') return reply.send(emptyBody());
  if (plan.length === 0) return reply.send();
  return reply.send(await open(plan.range));
}

/** Registers the JSON and download routes. */
export async function attachmentRoutes(app: FastifyInstance, { ctx }: { ctx: Ctx }) {
  app.get(
    '/bugs/:id/attachments',
    {
      schema: {
        summary: "A bug's attachments, newest first",
        params: IdParams,
        response: { 200: Type.Object({ attachments: Type.Array(AttachmentResponse) }), '4xx': ErrorBody },
      },
    },
    async (request) => {
      const { id } = request.params as IdParams;
      const rows = await service.listBugAttachments(ctx, request.viewer, id);
      return { attachments: rows.map(presentAttachment) };
    },
  );

  app.get(
    '/attachments',
    {
      schema: {
        summary:
          'Every attachment and bundle the caller may see, across bugs (filters, newest or largest first)',
        querystring: ListQuery,
        response: {
          200: Type.Object({
            attachments: Type.Array(AttachmentResponse),
            next_cursor: Nullable(Type.String()),
          }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) => {
      const q = request.query as Parameters<typeof listFilter>[0] & {
        sort?: service.AttachmentSort;
        limit?: number;
        cursor?: string;
      };
      const sort = q.sort ?? 'newest';
      const limit = q.limit ?? 50;
      const rows = await service.listAttachments(ctx, request.viewer, listFilter(q), {
        sort,
        limit,
        after: decodeCursor(q.cursor),
      });
      return {
        attachments: rows.map(presentAttachment),
        next_cursor: rows.length === limit ? encodeCursor(sort, rows[rows.length - 1]!) : null,
      };
    },
  );

  app.get(
    '/attachments/:id',
    {
      schema: {
        summary: 'One attachment',
        params: IdParams,
        response: { 200: AttachmentResponse, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const { id } = request.params as IdParams;
      return presentAttachment(await service.getAttachment(ctx, request.viewer, id));
    },
  );

  app.get(
    '/attachments/:id/content',
    {
      schema: {
        summary: "An attachment's bytes (Range requests answered with 206; ETag is the SHA-256)",
        params: IdParams,
        response: DownloadResponses,
      },
    },
    async (request, reply) => {
      const { id } = request.params as IdParams;
      const row = await service.getAttachment(ctx, request.viewer, id);
      return sendDownload(
        request,
        reply,
        { fileName: row.file_name, contentType: row.content_type, size: row.size, etag: `"${row.sha256}"` },
        (range) => service.openContent(ctx, row, range),
      );
    },
  );

  app.delete(
    '/attachments/:id',
    {
      schema: {
        summary: 'Delete an attachment and its bytes (admins)',
        params: IdParams,
        response: { '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { id } = request.params as IdParams;
      await service.deleteAttachment(ctx, signedIn(request.viewer), id);
      return reply.code(204).send();
    },
  );

  app.get(
    '/attachments/:id/members',
    {
      schema: {
        summary: "A bundle's members (path, size, mtime), in archive order, a page at a time",
        params: IdParams,
        querystring: Type.Object(
          {
            after: Type.Optional(Type.Integer({ minimum: -1, maximum: 2147483647 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            attachment: AttachmentResponse,
            members: Type.Array(MemberResponse),
            next_after: Nullable(Type.Integer()),
          }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) => {
      const { id } = request.params as IdParams;
      const q = request.query as { after?: number; limit?: number };
      const limit = q.limit ?? 1000;
      const { attachment, members } = await service.listMembers(ctx, request.viewer, id, {
        after: q.after ?? -1,
        limit,
      });
      return {
        attachment: presentAttachment(attachment),
        members: members.map((m) => presentMember(id, m)),
        next_after: members.length === limit ? members[members.length - 1]!.idx : null,
      };
    },
  );

  app.get(
    '/attachments/:id/members/:idx/text',
    {
      schema: {
        summary: `The text of one bundle member (first ${MEMBER_TEXT_CAP} bytes), read out of the archive`,
        params: MemberParams,
        response: {
          200: Type.Object({
            path: Type.String(),
            size: Type.Number(),
            bytes: Type.Integer(),
            truncated: Type.Boolean(),
            text: Nullable(Type.String({ description: 'null when the member is not text' })),
          }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) => {
      const { id, idx } = request.params as { id: number; idx: number };
      const { attachment, member } = await service.getMember(ctx, request.viewer, id, idx);
      const t = await memberText(ctx, attachment, member);
      return { path: member.path, size: member.size, ...t };
    },
  );

  app.get(
    '/attachments/:id/members/:idx/content',
    {
      schema: {
        summary: 'One bundle member alone, as a download',
        params: MemberParams,
        response: DownloadResponses,
      },
    },
    async (request, reply) => {
      const { id, idx } = request.params as { id: number; idx: number };
      const { attachment, member } = await service.getMember(ctx, request.viewer, id, idx);
      const name = member.path.split('/').filter(Boolean).pop() ?? `member-${idx}`;
      return sendDownload(
        request,
        reply,
        {
          fileName: name,
          contentType: 'application/octet-stream',
          size: member.size,
          etag: `"${attachment.sha256}-${idx}"`,
        },
        async (range) => {
          if (!range) return openMember(ctx, attachment, member);
          // A range of a member: read up to its end, then skip to the start.
          const whole = await openMember(ctx, attachment, member, range.end + 1);
          let pos = 0;
          return whole.pipe(
            new Transform({
              transform(chunk: Buffer, _e, cb) {
                const from = pos;
                pos += chunk.length;
                if (pos <= range.start) return cb();
                cb(null, chunk.subarray(Math.max(0, range.start - from)));
              },
            }),
          );
        },
      );
    },
  );
}
