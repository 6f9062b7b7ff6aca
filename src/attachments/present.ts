/** JSON shapes of attachments and bundle members, with their response schemas. */
import { Type } from 'typebox';
import { Nullable } from '../platform/http.ts';
import type { AttachmentRow, MemberRow } from './repository.ts';

/** An attachment as the API shows it. */
export const AttachmentResponse = Type.Object({
  id: Type.Integer(),
  bug_id: Type.Integer(),
  product_id: Type.Integer(),
  file_name: Type.String(),
  kind: Type.String({ description: 'sniffed: bundle, gzip, text, image, pdf, zip or binary' }),
  content_type: Type.String(),
  size: Type.Number(),
  sha256: Type.String(),
  uploader: Type.Object({ id: Type.Integer(), name: Type.String() }),
  comment_id: Nullable(Type.Integer()),
  member_count: Nullable(Type.Integer({ description: 'bundles: members in the archive' })),
  members_listed: Nullable(Type.Integer({ description: 'bundles: members listed (a cap applies)' })),
  created_at: Type.String({ format: 'date-time' }),
  links: Type.Object({ content: Type.String(), members: Type.Optional(Type.String()) }),
});

/** Presents an attachment row. */
export function presentAttachment(a: AttachmentRow) {
  return {
    id: a.id,
    bug_id: a.bug_id,
    product_id: a.product_id,
    file_name: a.file_name,
    kind: a.kind,
    content_type: a.content_type,
    size: a.size,
    sha256: a.sha256,
    uploader: { id: a.uploader_id, name: a.uploader_name },
    comment_id: a.comment_id,
    member_count: a.member_count,
    members_listed: a.members_listed,
    created_at: a.created_at.toISOString(),
    links: {
      content: `/api/v1/attachments/${a.id}/content`,
      ...(a.kind === 'bundle' ? { members: `/api/v1/attachments/${a.id}/members` } : {}),
    },
  };
}

/** A member of a bundle as the API shows it. */
export const MemberResponse = Type.Object({
  index: Type.Integer(),
  path: Type.String(),
  size: Type.Number(),
  mtime: Nullable(Type.String({ format: 'date-time' })),
  type: Type.String({ description: 'file, dir, symlink, link or other' }),
  links: Type.Object({ text: Type.Optional(Type.String()), content: Type.Optional(Type.String()) }),
});

/** Presents a member row of attachment `attachmentId`. */
export function presentMember(attachmentId: number, m: MemberRow) {
  const base = `/api/v1/attachments/${attachmentId}/members/${m.idx}`;
  return {
    index: m.idx,
    path: m.path,
    size: m.size,
    mtime: m.mtime && !Number.isNaN(m.mtime.getTime()) ? m.mtime.toISOString() : null,
    type: m.type,
    links: m.type === 'file' ? { text: `${base}/text`, content: `${base}/content` } : {},
  };
}
