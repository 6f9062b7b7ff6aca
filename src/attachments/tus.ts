/**
 * The tus 1.0.0 resumable upload protocol at /api/v1/uploads: core (HEAD, PATCH), creation,
 * creation-with-upload, expiration, termination and checksum (sha256). Metadata `filename` and `bug_id`
 * (and optionally `comment`) say what the file is and where it goes. Any process may take any request:
 * the state is in the database and storage (see uploads.ts).
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { signedIn } from '../access/index.ts';
import { AppError, invalid } from '../platform/errors.ts';
import { sendError } from '../platform/http.ts';
import { emptyBody } from './ingest.ts';
import type { AttachmentsContext } from './service.ts';
import {
  appendToUpload,
  type ChunkChecksum,
  createUpload,
  terminateUpload,
  type UploadStatus,
  uploadStatus,
} from './uploads.ts';

const TUS_VERSION = '1.0.0';
const EXTENSIONS = 'creation,creation-with-upload,expiration,termination,checksum';
const OFFSET_TYPE = 'application/offset+octet-stream';

/** Parses Upload-Metadata: comma-separated `key base64value` pairs. */
export function parseMetadata(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const pair of header.split(',')) {
    const [key, value, extra] = pair.trim().split(' ');
    if (!key || extra !== undefined || !/^[\x21-\x7e]+$/.test(key))
      throw invalid('Upload-Metadata must be comma-separated "key base64value" pairs', 'Upload-Metadata');
    if (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
      throw invalid(`Upload-Metadata value of ${key} is not base64`, 'Upload-Metadata');
    out.set(key, value ? Buffer.from(value, 'base64').toString('utf8') : '');
  }
  return out;
}

function nonNegative(header: string | string[] | undefined, name: string): number {
  if (typeof header !== 'string' || !/^\d{1,16}$/.test(header))
    throw invalid(`${name} must be a non-negative whole number`, name);
  return Number(header);
}

function parseChecksum(header: string | undefined): ChunkChecksum | undefined {
  if (header === undefined) return undefined;
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(header.trim());
  if (!m) throw invalid('Upload-Checksum must be "<algorithm> <base64 digest>"', 'Upload-Checksum');
  if (m[1]!.toLowerCase() !== 'sha256')
    throw invalid(`checksum algorithm ${m[1]} is not supported; use sha256`, 'Upload-Checksum');
  const digest = Buffer.from(m[2]!, 'base64');
  if (digest.length !== 32) throw invalid('a sha256 digest has 32 bytes', 'Upload-Checksum');
  return { algorithm: 'sha256', digest };
}

function statusHeaders(reply: FastifyReply, s: UploadStatus): void {
  reply.header('upload-offset', String(s.offset));
  reply.header('upload-length', String(s.length));
  if (s.attachmentId === undefined) reply.header('upload-expires', s.expiresAt.toUTCString());
  else reply.header('bugzot-attachment-id', String(s.attachmentId));
}

const UploadParams = Type.Object({ uploadId: Type.String({ pattern: '^[0-9a-f]{32}$' }) });

/** Registers the tus routes (their own scope: every body arrives as a stream). */
export async function tusRoutes(app: FastifyInstance, { ctx }: { ctx: AttachmentsContext }) {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('tus-resumable', TUS_VERSION).header('cache-control', 'no-store');
    if (request.method !== 'OPTIONS' && request.headers['tus-resumable'] !== TUS_VERSION) {
      reply.header('tus-version', TUS_VERSION);
      return sendError(reply, 412, {
        code: 'tus_version',
        message: `Send Tus-Resumable: ${TUS_VERSION} (the only version served).`,
      });
    }
  });

  app.options(
    '/uploads',
    {
      config: { public: true },
      schema: { summary: 'tus: what this server supports (versions, extensions, size limit, checksums)' },
    },
    async (_request, reply) =>
      reply
        .code(204)
        .headers({
          'tus-version': TUS_VERSION,
          'tus-extension': EXTENSIONS,
          'tus-max-size': String(ctx.maxBytes),
          'tus-checksum-algorithm': 'sha256',
        })
        .send(),
  );

  app.post(
    '/uploads',
    {
      schema: {
        summary: 'tus creation (and creation-with-upload): start a resumable upload',
        description:
          'Headers: Upload-Length; Upload-Metadata with filename, bug_id and optionally comment. A body of type ' +
          'application/offset+octet-stream is the first chunk. 201 with Location.',
      },
    },
    async (request, reply) => {
      const viewer = signedIn(request.viewer);
      if (request.headers['upload-defer-length'] !== undefined)
        throw invalid('Upload-Defer-Length is not supported: send Upload-Length', 'Upload-Defer-Length');
      const length = nonNegative(request.headers['upload-length'], 'Upload-Length');
      const meta = parseMetadata(request.headers['upload-metadata'] as string | undefined);
      const bugText = meta.get('bug_id') ?? meta.get('bug');
      if (!bugText || !/^[1-9]\d{0,9}$/.test(bugText) || Number(bugText) > 2147483647)
        throw invalid(
          'Upload-Metadata must name the bug: bug_id <base64 of the bug number>',
          'Upload-Metadata',
        );
      const created = await createUpload(ctx, viewer, {
        bugId: Number(bugText),
        fileName: meta.get('filename') ?? meta.get('name'),
        comment: meta.get('comment'),
        length,
      });
      reply.header('location', `/api/v1/uploads/${created.id}`);
      let s: UploadStatus = created;
      const withBody = (request.headers['content-type'] ?? '').startsWith(OFFSET_TYPE) && request.body;
      if (withBody) {
        const checksum = parseChecksum(request.headers['upload-checksum'] as string | undefined);
        s = await appendToUpload(ctx, viewer, created.id, 0, request.body as Readable, checksum);
      } else if (length === 0) {
        s = await appendToUpload(ctx, viewer, created.id, 0, emptyBody(), undefined);
      }
      statusHeaders(reply, s);
      return reply.code(201).send({
        id: s.id,
        offset: s.offset,
        length: s.length,
        ...(s.attachmentId !== undefined ? { attachment_id: s.attachmentId } : {}),
      });
    },
  );

  app.head(
    '/uploads/:uploadId',
    { schema: { summary: 'tus: the offset of an upload', params: UploadParams } },
    async (request, reply) => {
      const { uploadId } = request.params as { uploadId: string };
      try {
        statusHeaders(reply, await uploadStatus(ctx, signedIn(request.viewer), uploadId));
        return reply.code(200).send();
      } catch (err) {
        // HEAD answers carry no body.
        if (err instanceof AppError) return reply.code(err.status).send();
        throw err;
      }
    },
  );

  app.patch(
    '/uploads/:uploadId',
    {
      schema: {
        summary: 'tus: append a chunk at Upload-Offset (Upload-Checksum: sha256 <base64> is checked: 460)',
        params: UploadParams,
      },
    },
    async (request, reply) => {
      const { uploadId } = request.params as { uploadId: string };
      if (!(request.headers['content-type'] ?? '').startsWith(OFFSET_TYPE))
        throw new AppError(415, 'unsupported_media_type', `A chunk must be sent as ${OFFSET_TYPE}.`);
      const offset = nonNegative(request.headers['upload-offset'], 'Upload-Offset');
      const checksum = parseChecksum(request.headers['upload-checksum'] as string | undefined);
      const body = (request.body as Readable | undefined) ?? emptyBody();
      const s = await appendToUpload(ctx, signedIn(request.viewer), uploadId, offset, body, checksum);
      statusHeaders(reply, s);
      return reply.code(204).send();
    },
  );

  app.delete(
    '/uploads/:uploadId',
    { schema: { summary: 'tus termination: abandon an upload and remove its bytes', params: UploadParams } },
    async (request, reply) => {
      const { uploadId } = request.params as { uploadId: string };
      await terminateUpload(ctx, signedIn(request.viewer), uploadId);
      return reply.code(204).send();
    },
  );
}
