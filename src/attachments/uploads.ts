/**
 * Uploads: the single-request path (the body is the file) and resumable uploads (the commands behind
 * the tus routes). Both stream through the same one-pass ingest into staged storage and become an
 * attachment only once complete and verified.
 *
 * Resumable uploads keep their state in the database (offset, storage state, a generation) and in
 * storage; any process may take the next chunk. A write lease in the row serialises writers. The
 * running SHA-256 and the bundle inspection live in the memory of the process that wrote last, tagged
 * with the generation it wrote: when the next chunk lands on that process (the common case: one
 * client, one connection, sticky or single backend) it continues in one pass. When it lands elsewhere
 * (another process or host, a restart), that process cannot know the hash state, so the upload is
 * finished without it and, once complete, the stored object is read back once to hash and inspect it.
 * Native SHA-256 and zlib keep the common path fast; the read-back costs one extra read only when a
 * upload really moved. (Node's hash state cannot be exported, and S3 cannot read back the parts of an
 * unfinished multipart upload, which rules out rebuilding the state mid-way there.)
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import type { UserViewer } from '../access/index.ts';
import { AppError, conflict, notFound } from '../platform/errors.ts';
import { type SettleMode, StagedBytesLost, type StagedWriter, storageFailure } from '../storage/index.ts';
import { IngestState, streamInto, tooLarge } from './ingest.ts';
import * as repo from './repository.ts';
import { type AttachmentsContext, checkComment, checkFileName, commitAttachment, newKey } from './service.ts';

/** How long a write lease lasts without renewal, and how often a busy writer renews it. */
const LEASE_SECONDS = 20;
const RENEW_MS = 5_000;
/** A request that sends nothing for this long is cut off (well before its lease could lapse). */
const IDLE_MS = 10_000;

/** App instances alive in this process (lease owners that are certainly not stale). */
const liveInstances = new Set<string>();

/** A lease owner name for a new app instance: host, pid and a random instance id. */
export function newOwner(): string {
  const owner = `${hostname()}/${process.pid}/${randomBytes(6).toString('hex')}`;
  liveInstances.add(owner);
  return owner;
}

/** Forgets an owner when its app closes. */
export function retireOwner(owner: string): void {
  liveInstances.delete(owner);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lease held by a process of this host that no longer runs (killed, restarted) may be taken over. */
function staleOwner(owner: string | null): boolean {
  if (!owner) return false;
  const [host, pidText] = owner.split('/');
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (pid === process.pid) return !liveInstances.has(owner);
  return Number.isInteger(pid) && pid > 0 && !processAlive(pid);
}

async function discard(
  ctx: AttachmentsContext,
  key: string,
  writer: StagedWriter | undefined,
  whole: boolean,
) {
  try {
    const settled = writer ? await writer.settle('discard') : { state: {} };
    if (whole) await ctx.storage.discardStaged(key, settled.state);
  } catch (err) {
    ctx.log.warn({ err, key }, 'could not discard staged bytes');
  }
}

/** Reads a stored object back once to hash and inspect it (an upload whose chunks moved between processes). */
async function verifyStored(ctx: AttachmentsContext, key: string, fileName: string, size: number) {
  const state = new IngestState(fileName, ctx.allowed, ctx.inspectLimits);
  try {
    const source = await ctx.storage.read(key).catch((err) => {
      throw storageFailure(err);
    });
    const sink = new Writable({
      highWaterMark: 1024 * 1024,
      write(_chunk, _enc, cb) {
        cb();
      },
    });
    const outcome = await streamInto(source, sink, {
      state,
      limit: size,
      limitBytes: ctx.maxBytes,
      idleMs: 60_000,
    });
    if (outcome.bodyError) throw storageFailure(outcome.bodyError);
    if (outcome.received !== size)
      throw new Error(`stored object ${key} has ${outcome.received} bytes, expected ${size}`);
    return await state.finish();
  } finally {
    state.dispose();
  }
}

/** What the single-request path was told about the file. */
export interface SingleUpload {
  bugId: number;
  fileName: string | undefined;
  comment?: string | undefined;
  /** Content-Length, when the client sent one. */
  declaredLength?: number | undefined;
}

/**
 * The single-request path: `body` is the whole file. Streams it to storage in one pass, verifies it,
 * and makes it an attachment; on any failure nothing is kept.
 */
export async function attachFile(
  ctx: AttachmentsContext,
  viewer: UserViewer,
  input: SingleUpload,
  body: Readable,
): Promise<number> {
  const fileName = checkFileName(input.fileName);
  const comment = checkComment(input.comment);
  if (!(await repo.bugVisible(ctx.db, viewer, input.bugId))) throw notFound('Bug', input.bugId);
  if (input.declaredLength !== undefined && input.declaredLength > ctx.maxBytes) throw tooLarge(ctx.maxBytes);
  const key = newKey();
  const state = new IngestState(fileName, ctx.allowed, ctx.inspectLimits);
  let writer: StagedWriter | undefined;
  try {
    writer = await ctx.storage.openStaged(key, 0, {}).catch((err) => {
      throw storageFailure(err);
    });
    const outcome = await streamInto(body, writer.stream, {
      state,
      limit: ctx.maxBytes,
      limitBytes: ctx.maxBytes,
      idleMs: IDLE_MS * 3,
    }).catch((err) => {
      throw storageFailure(err);
    });
    if (outcome.bodyError)
      throw new AppError(400, 'incomplete_upload', 'The upload broke off before the end; nothing was kept.');
    if (input.declaredLength !== undefined && outcome.received !== input.declaredLength) {
      throw new AppError(
        400,
        'incomplete_upload',
        'The body is shorter than its Content-Length; nothing was kept.',
      );
    }
    const { sha256, inspection } = await state.finish();
    const settled = await writer.settle('complete').catch((err) => {
      throw storageFailure(err);
    });
    writer = undefined;
    try {
      await ctx.storage.commitStaged(key, outcome.received, settled.state);
    } catch (err) {
      await ctx.storage.discardStaged(key, settled.state).catch(() => {});
      throw storageFailure(err);
    }
    return await commitAttachment(ctx, viewer, {
      bugId: input.bugId,
      fileName,
      comment,
      storageKey: key,
      size: outcome.received,
      sha256,
      inspection,
    });
  } catch (err) {
    if (writer) await discard(ctx, key, writer, true);
    throw err;
  } finally {
    state.dispose();
  }
}

/** An upload as the tus routes report it. */
export interface UploadStatus {
  id: string;
  offset: number;
  length: number;
  expiresAt: Date;
  /** Set once the last byte arrived and the attachment exists. */
  attachmentId?: number;
}

function status(row: repo.UploadRow): UploadStatus {
  return { id: row.id, offset: row.upload_offset, length: row.upload_length, expiresAt: row.expires_at };
}

/** Starts a resumable upload of `length` bytes to a bug the viewer may see. */
export async function createUpload(
  ctx: AttachmentsContext,
  viewer: UserViewer,
  input: { bugId: number; fileName: string | undefined; comment?: string | undefined; length: number },
): Promise<UploadStatus> {
  const fileName = checkFileName(input.fileName);
  const comment = checkComment(input.comment);
  if (input.length > ctx.maxBytes) throw tooLarge(ctx.maxBytes);
  if (!(await repo.bugVisible(ctx.db, viewer, input.bugId))) throw notFound('Bug', input.bugId);
  const row = await repo.insertUpload(ctx.db, {
    id: newKey(),
    bugId: input.bugId,
    uploaderId: viewer.id,
    fileName,
    comment,
    length: input.length,
    storageKey: newKey(),
    generation: newKey(),
    expiryHours: ctx.expiryHours,
  });
  return status(row);
}

/** The viewer's own upload in progress; 404 when unknown (or someone else's), 410 when expired. */
export async function uploadStatus(
  ctx: AttachmentsContext,
  viewer: UserViewer,
  id: string,
): Promise<UploadStatus> {
  const row = await repo.findUpload(ctx.db, viewer.id, id);
  if (!row) throw notFound('Upload', id);
  if (row.expired) throw new AppError(410, 'upload_expired', `Upload ${id} expired; start a new one.`);
  return status(row);
}

/** 409 for a chunk sent at the wrong offset. */
function offsetMismatch(expected: number, got: number): AppError {
  return new AppError(
    409,
    'offset_mismatch',
    `Upload-Offset ${got} does not match the upload's offset ${expected}; ask for it (HEAD) and resume from there.`,
    'Upload-Offset',
    { offset: expected },
  );
}

const locked = () =>
  new AppError(423, 'upload_locked', 'Another request is writing to this upload; retry in a few seconds.');

/** A tus checksum: the algorithm (sha256 only) and the expected digest. */
export interface ChunkChecksum {
  algorithm: 'sha256';
  digest: Buffer;
}

/**
 * Appends `body` to the viewer's upload at `offset` (tus PATCH, or the body of a creation-with-upload).
 * What arrives is kept even when the client breaks off (without a checksum: with one, an incomplete
 * chunk cannot be verified and is dropped). When the last byte arrives, the file is verified and
 * becomes an attachment.
 */
export async function appendToUpload(
  ctx: AttachmentsContext,
  viewer: UserViewer,
  id: string,
  offset: number,
  body: Readable,
  checksum?: ChunkChecksum,
): Promise<UploadStatus> {
  const token = newKey();
  const lease = { id, uploaderId: viewer.id, offset, token, owner: ctx.owner, seconds: LEASE_SECONDS };
  // The common case in one statement (each chunk pays it before its first byte is read): the viewer's
  // upload, at this offset, not expired, no lease held. Otherwise, why not, or a stale lease taken over.
  let row = await repo.takeLease(ctx.db, { ...lease, staleToken: null });
  if (!row) {
    const found = await repo.findUpload(ctx.db, viewer.id, id);
    if (!found) throw notFound('Upload', id);
    if (found.expired) throw new AppError(410, 'upload_expired', `Upload ${id} expired; start a new one.`);
    if (found.upload_offset !== offset) throw offsetMismatch(found.upload_offset, offset);
    if (found.lease_active && !staleOwner(found.lease_owner)) throw locked();
    row = await repo.takeLease(ctx.db, {
      ...lease,
      staleToken: found.lease_active ? found.lease_token : null,
    });
    if (!row) {
      const now = await repo.findUpload(ctx.db, viewer.id, id);
      if (!now) throw notFound('Upload', id);
      if (now.upload_offset !== offset) throw offsetMismatch(now.upload_offset, offset);
      throw locked();
    }
  }
  const length = row.upload_length;

  // The running state, if this process wrote last (same generation); a fresh one at offset 0.
  const cached = ctx.states.get(id);
  ctx.states.delete(id);
  let state: IngestState | undefined;
  if (cached && cached.generation === row.generation && cached.state.bytes === offset) state = cached.state;
  else {
    cached?.state.dispose();
    if (offset === 0) state = new IngestState(row.file_name, ctx.allowed, ctx.inspectLimits);
  }
  const chunkHash = checksum ? createHash('sha256') : undefined;

  let writer: StagedWriter | undefined;
  let lastRenewed = 0;
  const progress = { received: 0 };
  const renew = setInterval(() => {
    if (progress.received === lastRenewed) return;
    lastRenewed = progress.received;
    repo.renewLease(ctx.db, id, token, LEASE_SECONDS).catch(() => {});
  }, RENEW_MS);
  try {
    writer = await ctx.storage.openStaged(row.storage_key, offset, row.storage_state).catch(async (err) => {
      if (err instanceof StagedBytesLost) {
        ctx.log.error({ err, upload: id }, 'the bytes of an upload were lost; it must start again');
        await repo.deleteUpload(ctx.db, id, token).catch(() => {});
        await ctx.storage.discardStaged(row!.storage_key, row!.storage_state).catch(() => {});
        throw new AppError(
          410,
          'upload_lost',
          `The stored bytes of upload ${id} were lost; start a new upload.`,
        );
      }
      throw storageFailure(err);
    });
    const outcome = await streamInto(body, writer.stream, {
      state,
      chunkHash,
      progress,
      limit: length - offset,
      limitBytes: ctx.maxBytes,
      idleMs: IDLE_MS,
    }).catch((err) => {
      if (err instanceof AppError && err.status === 413) {
        throw new AppError(
          413,
          'payload_too_large',
          `The chunk goes past Upload-Length (${length}).`,
          'Upload-Length',
        );
      }
      throw storageFailure(err);
    });
    if (checksum) {
      const ok = !outcome.bodyError && chunkHash!.digest().equals(checksum.digest);
      if (!ok) {
        await discard(ctx, row.storage_key, writer, false);
        writer = undefined;
        state?.dispose();
        state = undefined;
        await repo.releaseLease(ctx.db, id, token);
        if (outcome.bodyError) throw outcome.bodyError;
        throw new AppError(
          460,
          'checksum_mismatch',
          'Upload-Checksum does not match the chunk; it was not kept. Send it again.',
        );
      }
    }
    const complete = offset + outcome.received === length;
    const mode: SettleMode = complete ? 'complete' : 'keep';
    const settled = await writer.settle(mode).catch((err) => {
      throw storageFailure(err);
    });
    writer = undefined;
    const newOffset = settled.length;
    const consistent = state !== undefined && state.bytes === newOffset;
    if (newOffset === length) {
      return await finishUpload(ctx, viewer, row, token, settled.state, consistent ? state : undefined);
    }
    const generation = newKey();
    const recorded = await repo.recordProgress(ctx.db, {
      id,
      token,
      offset: newOffset,
      state: settled.state,
      generation,
      expiryHours: ctx.expiryHours,
    });
    if (!recorded)
      throw conflict('Another request took over this upload; ask for its offset (HEAD) and resume.');
    if (consistent) {
      ctx.states.set(id, { generation, state: state! });
      trimStates(ctx);
      state = undefined;
    }
    if (outcome.bodyError) throw outcome.bodyError;
    return status(recorded);
  } catch (err) {
    if (err instanceof AppError && (err.status === 415 || err.status === 422)) {
      // The content itself was refused (not what its name says, a decompression bomb, a kind not
      // accepted): no later chunk can make it acceptable, so the upload and its bytes go now.
      if (writer) await discard(ctx, row.storage_key, writer, true);
      else await ctx.storage.discardStaged(row.storage_key, row.storage_state).catch(() => {});
      await repo.deleteUpload(ctx.db, id, token).catch(() => {});
      throw err;
    }
    if (writer) await discard(ctx, row.storage_key, writer, false);
    await repo.releaseLease(ctx.db, id, token).catch(() => {});
    throw err;
  } finally {
    clearInterval(renew);
    state?.dispose();
  }
}

/** Keeps the per-process state cache small (each holds an inflater): the oldest go first. */
function trimStates(ctx: AttachmentsContext): void {
  while (ctx.states.size > 256) {
    const [oldest, entry] = ctx.states.entries().next().value!;
    entry.state.dispose();
    ctx.states.delete(oldest);
  }
}

/** The last byte arrived: verify, commit the object, make the attachment; refusals remove everything. */
async function finishUpload(
  ctx: AttachmentsContext,
  viewer: UserViewer,
  row: repo.UploadRow,
  token: string,
  stagedState: Record<string, unknown>,
  state: IngestState | undefined,
): Promise<UploadStatus> {
  const key = row.storage_key;
  const dropUpload = async () => {
    await repo.deleteUpload(ctx.db, row.id, token).catch(() => {});
  };
  let verified: Awaited<ReturnType<IngestState['finish']>>;
  if (state) {
    try {
      verified = await state.finish();
    } catch (err) {
      await ctx.storage.discardStaged(key, stagedState).catch(() => {});
      await dropUpload();
      throw err;
    }
  }
  try {
    await ctx.storage.commitStaged(key, row.upload_length, stagedState);
  } catch (err) {
    await ctx.storage.discardStaged(key, stagedState).catch(() => {});
    await dropUpload();
    throw storageFailure(err);
  }
  if (!state) {
    try {
      verified = await verifyStored(ctx, key, row.file_name, row.upload_length);
    } catch (err) {
      await ctx.storage.remove(key).catch(() => {});
      await dropUpload();
      throw err;
    }
  }
  try {
    const attachmentId = await commitAttachment(
      ctx,
      viewer,
      {
        bugId: row.bug_id,
        fileName: row.file_name,
        comment: row.comment,
        storageKey: key,
        size: row.upload_length,
        sha256: verified!.sha256,
        inspection: verified!.inspection,
      },
      { id: row.id, token },
    );
    return { ...status(row), offset: row.upload_length, attachmentId };
  } catch (err) {
    await dropUpload();
    throw err;
  }
}

/** Ends an upload in progress and removes its bytes (tus termination). */
export async function terminateUpload(
  ctx: AttachmentsContext,
  viewer: UserViewer,
  id: string,
): Promise<void> {
  const row = await repo.findUpload(ctx.db, viewer.id, id);
  if (!row) throw notFound('Upload', id);
  if (row.lease_active && !staleOwner(row.lease_owner)) throw locked();
  if (!(await repo.deleteUpload(ctx.db, id))) throw notFound('Upload', id);
  ctx.states.get(id)?.state.dispose();
  ctx.states.delete(id);
  try {
    await ctx.storage.discardStaged(row.storage_key, row.storage_state);
  } catch (err) {
    ctx.log.warn(
      { err, key: row.storage_key },
      'could not remove a terminated upload; housekeeping will retry',
    );
    await repo.addGarbage(ctx.db, row.storage_key, true, row.storage_state).catch(() => {});
  }
}
