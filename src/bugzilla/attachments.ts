/**
 * Bugzilla's attachment calls over Bugzot's attachments module: `GET bug/{id}/attachment`,
 * `GET bug/attachment/{id}` (with the bytes as base64 `data`) and `POST bug/{id}/attachment` (base64
 * `data` in JSON). Reads and writes go through the attachments service, so the visibility rule, the
 * size limit, the allowed types and the bundle checks are the same as for Bugzot's own uploads.
 */
import { Readable } from 'node:stream';
import type { UserViewer, Viewer } from '../access/index.ts';
import {
  type AttachmentRow,
  type AttachmentsContext,
  attachFile,
  getAttachment,
  listBugAttachments,
  openContent,
} from '../attachments/index.ts';
import type { Queryable } from '../platform/db.ts';
import { refuseUnknown } from './bugs.ts';
import { bz, CODE } from './errors.ts';
import { applySelection, bzDate, flag, list, one, type Params, selection, toId, wants } from './fields.ts';
import { People } from './present.ts';

/** Attachments larger than this are not sent inline as base64 (ask with exclude_fields=data). */
export const MAX_INLINE_BYTES = 32 * 1024 * 1024;

/** The largest JSON body of an attachment upload: the inline limit, base64-encoded, plus the rest. */
export const ATTACHMENT_BODY_LIMIT = Math.ceil((MAX_INLINE_BYTES * 4) / 3) + 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Attachments in Bugzilla's shape, with `data` when wanted (and small enough to inline). */
async function present(
  ctx: AttachmentsContext,
  db: Queryable,
  viewer: Viewer,
  rows: AttachmentRow[],
  p: Params,
) {
  const sel = selection(p);
  const withData = wants(sel, 'data', false);
  const tooBig = withData ? rows.find((r) => r.size > MAX_INLINE_BYTES) : undefined;
  const total = withData ? rows.reduce((n, r) => n + r.size, 0) : 0;
  if (!tooBig && total > 2 * MAX_INLINE_BYTES) {
    throw bz(
      CODE.fileTooLarge,
      `These attachments hold ${total} bytes, too many to send as base64 at once; ask with exclude_fields=data and fetch them one by one.`,
    );
  }
  if (tooBig) {
    throw bz(
      CODE.fileTooLarge,
      `Attachment ${tooBig.id} (${tooBig.size} bytes) is too large to send as base64; ask with exclude_fields=data and download it from /api/v1/attachments/${tooBig.id}/content.`,
    );
  }
  const people = await People.load(
    db,
    viewer,
    rows.map((r) => r.uploader_id),
  );
  const out = [];
  for (const r of rows) {
    const creator = people.login(r.uploader_id, r.uploader_name);
    out.push(
      applySelection(
        {
          id: r.id,
          bug_id: r.bug_id,
          file_name: r.file_name,
          summary: r.file_name,
          content_type: r.content_type,
          size: r.size,
          creation_time: bzDate(r.created_at),
          last_change_time: bzDate(r.created_at),
          is_private: false,
          is_obsolete: false,
          is_patch: false,
          creator,
          attacher: creator,
          flags: [],
          ...(withData ? { data: (await readAll(await openContent(ctx, r))).toString('base64') } : {}),
        },
        sel,
      ),
    );
  }
  return out;
}

/** `GET bug/{id}/attachment`: `{bugs: {id: [attachments]}, attachments: {}}`; 101 for a hidden bug. */
export async function bugAttachments(ctx: AttachmentsContext, viewer: Viewer, bugId: number, p: Params) {
  const rows = await listBugAttachments(ctx, viewer, bugId);
  return { bugs: { [String(bugId)]: await present(ctx, ctx.db, viewer, rows, p) }, attachments: {} };
}

/**
 * `GET bug/attachment/{id}` (and `attachment_ids`): `{bugs: {}, attachments: {id: attachment}}`. An
 * attachment that does not exist or whose bug the caller may not see is left out, as Bugzilla leaves
 * out unknown ids.
 */
export async function attachmentsById(ctx: AttachmentsContext, viewer: Viewer, id: number, p: Params) {
  const ids = [...new Set([id, ...(list(p, 'attachment_ids')?.map((v) => toId('attachment_ids', v)) ?? [])])];
  const rows: AttachmentRow[] = [];
  for (const x of ids) {
    try {
      rows.push(await getAttachment(ctx, viewer, x));
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
  }
  const shown = await present(ctx, ctx.db, viewer, rows, p);
  return { bugs: {}, attachments: Object.fromEntries(shown.map((a, i) => [String(rows[i]!.id), a])) };
}

const ATTACH_PARAMS = new Set([
  'ids',
  'data',
  'file_name',
  'summary',
  'comment',
  'content_type',
  'is_patch',
  'is_private',
  'is_markdown',
]);

/**
 * `POST bug/{id}/attachment`: `data` (base64), `file_name`, `summary`, `comment` (the summary when
 * absent), to the path's bug and any others in `ids`; `{ids}`. Bugzot works out the content type itself.
 */
export async function addAttachment(ctx: AttachmentsContext, viewer: UserViewer, bugId: number, p: Params) {
  refuseUnknown(p, ATTACH_PARAMS, 'a new attachment');
  const data = one(p, 'data');
  if (data === undefined || data === '')
    throw bz(CODE.fileNotSpecified, 'You must send the file as base64 in data.');
  if (!/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(data)) throw bz(CODE.paramInvalid, 'data is not base64.');
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length === 0) throw bz(CODE.zeroLengthFile, 'The file is empty.');
  if (flag(p, 'is_private')) throw bz(CODE.userNotInsider, 'Bugzot attachments cannot be private.');
  const fileName = one(p, 'file_name');
  const summary = one(p, 'summary');
  if (!fileName && !summary)
    throw bz(CODE.missingAttachmentDescription, 'You must give a file_name or a summary for the attachment.');
  const comment = one(p, 'comment') ?? summary;
  const ids = [...new Set([bugId, ...(list(p, 'ids')?.map((v) => toId('ids', v)) ?? [])])];
  const created: number[] = [];
  for (const id of ids) {
    created.push(
      await attachFile(
        ctx,
        viewer,
        { bugId: id, fileName: fileName ?? summary, comment, declaredLength: bytes.length },
        Readable.from([bytes]),
      ),
    );
  }
  return { ids: created };
}
