/**
 * SQL of the attachments module: attachments, bundle members, uploads in progress, storage garbage.
 * Every read of an attachment joins its bug through the visibility predicate of `access/`.
 */
import { type Viewer, visibleBugs } from '../access/index.ts';
import { empty, join, type Queryable, type Sql, sql } from '../platform/db.ts';
import type { StagedState } from '../storage/index.ts';
import type { TarMember } from './tar.ts';

/** An attachment as stored (sizes as numbers: exact up to 2^53). */
export interface AttachmentRow {
  id: number;
  bug_id: number;
  product_id: number;
  uploader_id: number;
  uploader_name: string;
  file_name: string;
  kind: string;
  content_type: string;
  size: number;
  sha256: string;
  storage_key: string;
  comment_id: number | null;
  member_count: number | null;
  members_listed: number | null;
  created_at: Date;
}

const ATTACHMENT_COLUMNS = sql`a.id, a.bug_id, b.product_id, a.uploader_id, u.name AS uploader_name, a.file_name,
  a.kind, a.content_type, a.size::float8 AS size, a.sha256, a.storage_key, a.comment_id, a.member_count,
  a.members_listed, a.created_at`;

/** One attachment the viewer may see (its bug visible), or undefined. */
export async function findAttachment(
  db: Queryable,
  viewer: Viewer,
  id: number,
): Promise<AttachmentRow | undefined> {
  const rows = await db.query<AttachmentRow>(sql`
    SELECT ${ATTACHMENT_COLUMNS}
    FROM attachments a JOIN bugs b ON b.id = a.bug_id JOIN users u ON u.id = a.uploader_id
    WHERE a.id = ${id} AND ${visibleBugs(viewer, 'b')}`);
  return rows[0];
}

/** Filters of the support listing; every field optional. */
export interface AttachmentFilter {
  productId?: number | undefined;
  bugId?: number | undefined;
  uploaderId?: number | undefined;
  kinds?: string[] | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  minSize?: number | undefined;
  maxSize?: number | undefined;
}

/** Sort orders of the listing, each with its keyset. */
export type AttachmentSort = 'newest' | 'largest';

/** Cursor of the listing: the last row's sort key and id. */
export interface AttachmentCursor {
  key: number;
  id: number;
}

/** Attachments the viewer may see, filtered and sorted, one page (keyset). */
export function listAttachments(
  db: Queryable,
  viewer: Viewer,
  filter: AttachmentFilter,
  page: { sort: AttachmentSort; limit: number; after?: AttachmentCursor | undefined },
): Promise<AttachmentRow[]> {
  const where: Sql[] = [visibleBugs(viewer, 'b')];
  if (filter.productId !== undefined) where.push(sql`b.product_id = ${filter.productId}`);
  if (filter.bugId !== undefined) where.push(sql`a.bug_id = ${filter.bugId}`);
  if (filter.uploaderId !== undefined) where.push(sql`a.uploader_id = ${filter.uploaderId}`);
  if (filter.kinds?.length) where.push(sql`a.kind = ANY(${filter.kinds}::text[])`);
  if (filter.since) where.push(sql`a.created_at >= ${filter.since}`);
  if (filter.until) where.push(sql`a.created_at < ${filter.until}`);
  if (filter.minSize !== undefined) where.push(sql`a.size >= ${filter.minSize}`);
  if (filter.maxSize !== undefined) where.push(sql`a.size <= ${filter.maxSize}`);
  const after = page.after;
  let order: Sql;
  if (page.sort === 'largest') {
    if (after) where.push(sql`(a.size, a.id) < (${after.key}::bigint, ${after.id})`);
    order = sql`a.size DESC, a.id DESC`;
  } else {
    // Newest first by id (ids grow with time; created_at ties are broken the same way).
    if (after) where.push(sql`a.id < ${after.id}`);
    order = sql`a.id DESC`;
  }
  return db.query<AttachmentRow>(sql`
    SELECT ${ATTACHMENT_COLUMNS}
    FROM attachments a JOIN bugs b ON b.id = a.bug_id JOIN users u ON u.id = a.uploader_id
    WHERE ${join(where, ' AND ')}
    ORDER BY ${order} LIMIT ${page.limit}`);
}

/** A bundle member as stored. */
export interface MemberRow {
  idx: number;
  path: string;
  size: number;
  mtime: Date | null;
  type: string;
  data_offset: number;
}

/** Members of a bundle already checked visible, from index `after` on. */
export function listMembers(
  db: Queryable,
  attachmentId: number,
  after: number,
  limit: number,
): Promise<MemberRow[]> {
  return db.query<MemberRow>(sql`
    SELECT idx, path, size::float8 AS size, mtime, type, data_offset::float8 AS data_offset
    FROM bundle_members WHERE attachment_id = ${attachmentId} AND idx > ${after}
    ORDER BY idx LIMIT ${limit}`);
}

/** One member of a bundle already checked visible. */
export async function findMember(
  db: Queryable,
  attachmentId: number,
  idx: number,
): Promise<MemberRow | undefined> {
  const rows = await db.query<MemberRow>(sql`
    SELECT idx, path, size::float8 AS size, mtime, type, data_offset::float8 AS data_offset
    FROM bundle_members WHERE attachment_id = ${attachmentId} AND idx = ${idx}`);
  return rows[0];
}

/** The bug, locked for the transaction, when the viewer may see it. */
export async function lockVisibleBug(
  tx: Queryable,
  viewer: Viewer,
  bugId: number,
): Promise<{ id: number; product_id: number } | undefined> {
  const rows = await tx.query<{ id: number; product_id: number }>(sql`
    SELECT b.id, b.product_id FROM bugs b WHERE b.id = ${bugId} AND ${visibleBugs(viewer, 'b')} FOR UPDATE OF b`);
  return rows[0];
}

/** Whether the viewer may see the bug. */
export async function bugVisible(db: Queryable, viewer: Viewer, bugId: number): Promise<boolean> {
  const rows = await db.query(
    sql`SELECT 1 FROM bugs b WHERE b.id = ${bugId} AND ${visibleBugs(viewer, 'b')}`,
  );
  return rows.length > 0;
}

/** A new attachment row. */
export interface NewAttachment {
  bugId: number;
  uploaderId: number;
  fileName: string;
  kind: string;
  contentType: string;
  size: number;
  sha256: string;
  storageKey: string;
  commentId: number | null;
  memberCount: number | null;
  membersListed: number | null;
}

export async function insertAttachment(tx: Queryable, a: NewAttachment): Promise<number> {
  const rows = await tx.query<{ id: number }>(sql`
    INSERT INTO attachments (bug_id, uploader_id, file_name, kind, content_type, size, sha256, storage_key,
                             comment_id, member_count, members_listed)
    VALUES (${a.bugId}, ${a.uploaderId}, ${a.fileName}, ${a.kind}, ${a.contentType}, ${a.size}, ${a.sha256},
            ${a.storageKey}, ${a.commentId}, ${a.memberCount}, ${a.membersListed})
    RETURNING id`);
  return rows[0]!.id;
}

/** Inserts bundle members in batches (arrays unnested server-side: one statement per 5,000). */
export async function insertMembers(
  tx: Queryable,
  attachmentId: number,
  members: readonly TarMember[],
): Promise<void> {
  for (let start = 0; start < members.length; start += 5000) {
    const batch = members.slice(start, start + 5000);
    await tx.query(sql`
      INSERT INTO bundle_members (attachment_id, idx, path, size, mtime, type, data_offset)
      SELECT ${attachmentId}, t.idx, t.path, t.size, t.mtime, t.type, t.data_offset
      FROM unnest(${batch.map((_, i) => start + i)}::int[], ${batch.map((m) => m.path.replace(/\0/g, ''))}::text[],
                  ${batch.map((m) => m.size)}::bigint[], ${batch.map((m) => m.mtime?.toISOString() ?? null)}::timestamptz[],
                  ${batch.map((m) => m.type)}::text[], ${batch.map((m) => m.dataOffset)}::bigint[])
           AS t(idx, path, size, mtime, type, data_offset)`);
  }
}

/** Bumps the bug's row version for a change outside its own columns; returns the new version. */
export async function touchBug(tx: Queryable, bugId: number): Promise<number> {
  const rows = await tx.query<{ row_version: number }>(sql`
    UPDATE bugs SET row_version = row_version + 1, changed_at = now() WHERE id = ${bugId} RETURNING row_version`);
  return rows[0]!.row_version;
}

/** Writes one row of the bug's history, produced by bug version `version`. */
export async function insertChange(
  tx: Queryable,
  bugId: number,
  actorId: number,
  version: number,
  change: { field: string; old: string | null; new: string | null },
): Promise<void> {
  await tx.query(sql`
    INSERT INTO bug_changes (bug_id, actor_id, field, old_value, new_value, bug_version)
    VALUES (${bugId}, ${actorId}, ${change.field}, ${change.old}, ${change.new}, ${version})`);
}

export async function insertComment(
  tx: Queryable,
  c: { bugId: number; authorId: number; body: string; bugVersion: number },
): Promise<number> {
  const rows = await tx.query<{ id: number }>(sql`
    INSERT INTO comments (bug_id, author_id, body, is_private, bug_version)
    VALUES (${c.bugId}, ${c.authorId}, ${c.body}, false, ${c.bugVersion}) RETURNING id`);
  return rows[0]!.id;
}

export async function deleteAttachment(tx: Queryable, id: number): Promise<void> {
  await tx.query(sql`DELETE FROM attachments WHERE id = ${id}`);
}

/** An upload in progress. */
export interface UploadRow {
  id: string;
  bug_id: number;
  uploader_id: number;
  file_name: string;
  comment: string | null;
  upload_length: number;
  upload_offset: number;
  storage_key: string;
  storage_state: StagedState;
  generation: string;
  lease_token: string | null;
  lease_owner: string | null;
  lease_active: boolean;
  expires_at: Date;
  expired: boolean;
}

const UPLOAD_COLUMNS = sql`id, bug_id, uploader_id, file_name, comment, upload_length::float8 AS upload_length,
  upload_offset::float8 AS upload_offset, storage_key, storage_state, generation, lease_token, lease_owner,
  (lease_token IS NOT NULL AND lease_until > now()) AS lease_active, expires_at, expires_at <= now() AS expired`;

/** The viewer's own upload (uploads belong to whoever started them). */
export async function findUpload(
  db: Queryable,
  uploaderId: number,
  id: string,
): Promise<UploadRow | undefined> {
  const rows = await db.query<UploadRow>(sql`
    SELECT ${UPLOAD_COLUMNS} FROM uploads WHERE id = ${id} AND uploader_id = ${uploaderId}`);
  return rows[0] ? normalise(rows[0]) : undefined;
}

function normalise(row: UploadRow): UploadRow {
  // postgres.js returns jsonb parsed; PGlite too. A string means it was stored as a JSON string.
  if (typeof row.storage_state === 'string') row.storage_state = JSON.parse(row.storage_state);
  return row;
}

export async function insertUpload(
  db: Queryable,
  u: {
    id: string;
    bugId: number;
    uploaderId: number;
    fileName: string;
    comment: string | null;
    length: number;
    storageKey: string;
    generation: string;
    expiryHours: number;
  },
): Promise<UploadRow> {
  const rows = await db.query<UploadRow>(sql`
    INSERT INTO uploads (id, bug_id, uploader_id, file_name, comment, upload_length, storage_key, generation, expires_at)
    VALUES (${u.id}, ${u.bugId}, ${u.uploaderId}, ${u.fileName}, ${u.comment}, ${u.length}, ${u.storageKey},
            ${u.generation}, now() + make_interval(hours => ${u.expiryHours}))
    RETURNING ${UPLOAD_COLUMNS}`);
  return normalise(rows[0]!);
}

/**
 * Takes the upload's write lease if it is still at `offset` and the lease is free, expired, or held by
 * `staleToken` (a writer known to be dead). Returns the row, or undefined when someone else moved first.
 */
export async function takeLease(
  db: Queryable,
  u: {
    id: string;
    uploaderId: number;
    offset: number;
    token: string;
    owner: string;
    seconds: number;
    staleToken: string | null;
  },
): Promise<UploadRow | undefined> {
  const rows = await db.query<UploadRow>(sql`
    UPDATE uploads SET lease_token = ${u.token}, lease_owner = ${u.owner},
                       lease_until = now() + make_interval(secs => ${u.seconds})
    WHERE id = ${u.id} AND uploader_id = ${u.uploaderId} AND upload_offset = ${u.offset} AND expires_at > now()
      AND (lease_token IS NULL OR lease_until <= now() ${u.staleToken ? sql`OR lease_token = ${u.staleToken}` : empty})
    RETURNING ${UPLOAD_COLUMNS}`);
  return rows[0] ? normalise(rows[0]) : undefined;
}

/** Extends a lease still held; false when it was lost. */
export async function renewLease(
  db: Queryable,
  id: string,
  token: string,
  seconds: number,
): Promise<boolean> {
  const rows = await db.query(sql`
    UPDATE uploads SET lease_until = now() + make_interval(secs => ${seconds})
    WHERE id = ${id} AND lease_token = ${token} RETURNING 1`);
  return rows.length > 0;
}

/** Records the new durable offset and releases the lease; the row, or undefined when the lease was lost meanwhile. */
export async function recordProgress(
  db: Queryable,
  u: {
    id: string;
    token: string;
    offset: number;
    state: StagedState;
    generation: string;
    expiryHours: number;
  },
): Promise<UploadRow | undefined> {
  const rows = await db.query<UploadRow>(sql`
    UPDATE uploads SET upload_offset = ${u.offset}, storage_state = ${JSON.stringify(u.state)}::text::jsonb,
                       generation = ${u.generation}, lease_token = NULL, lease_owner = NULL, lease_until = NULL,
                       expires_at = now() + make_interval(hours => ${u.expiryHours})
    WHERE id = ${u.id} AND lease_token = ${u.token} RETURNING ${UPLOAD_COLUMNS}`);
  return rows[0] ? normalise(rows[0]) : undefined;
}

/** Releases a lease without changing the offset. */
export async function releaseLease(db: Queryable, id: string, token: string): Promise<void> {
  await db.query(sql`
    UPDATE uploads SET lease_token = NULL, lease_owner = NULL, lease_until = NULL
    WHERE id = ${id} AND lease_token = ${token}`);
}

/** Deletes an upload row (held by `token` when given); true when it was there. */
export async function deleteUpload(db: Queryable, id: string, token?: string): Promise<boolean> {
  const rows = await db.query(sql`
    DELETE FROM uploads WHERE id = ${id} ${token ? sql`AND lease_token = ${token}` : empty} RETURNING 1`);
  return rows.length > 0;
}

/** Expired uploads nobody is writing to, claimed for removal by this process with `token`. */
export async function claimExpiredUploads(db: Queryable, token: string, limit: number): Promise<UploadRow[]> {
  const rows = await db.query<UploadRow>(sql`
    UPDATE uploads SET lease_token = ${token}, lease_owner = 'housekeeping', lease_until = now() + interval '5 minutes'
    WHERE id IN (
      SELECT id FROM uploads
      WHERE expires_at <= now() AND (lease_token IS NULL OR lease_until <= now())
      ORDER BY expires_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
    RETURNING ${UPLOAD_COLUMNS}`);
  return rows.map(normalise);
}

/** Remembers an object whose removal failed, for housekeeping to retry. */
export async function addGarbage(
  db: Queryable,
  key: string,
  staged: boolean,
  state: StagedState,
): Promise<void> {
  await db.query(sql`
    INSERT INTO storage_garbage (storage_key, staged, state) VALUES (${key}, ${staged}, ${JSON.stringify(state)}::text::jsonb)
    ON CONFLICT (storage_key) DO NOTHING`);
}

export function listGarbage(
  db: Queryable,
  limit: number,
): Promise<{ storage_key: string; staged: boolean; state: StagedState }[]> {
  return db.query(
    sql`SELECT storage_key, staged, state FROM storage_garbage ORDER BY created_at LIMIT ${limit}`,
  );
}

export async function dropGarbage(db: Queryable, key: string): Promise<void> {
  await db.query(sql`DELETE FROM storage_garbage WHERE storage_key = ${key}`);
}
