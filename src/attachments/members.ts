/**
 * Reading one member out of a stored bundle: the archive is streamed from storage and inflated up to the
 * member's recorded data offset, its bytes are passed on, and the rest of the archive is never read.
 */
import { Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { type AttachmentsContext, openContent } from './service.ts';
import type { AttachmentRow, MemberRow } from './repository.ts';

/** Most bytes of one member shown as text in the browser or the API. */
export const MEMBER_TEXT_CAP = 1024 * 1024;

/** Streams up to `cap` bytes of a bundle member's data. */
export async function openMember(
  ctx: AttachmentsContext,
  attachment: AttachmentRow,
  member: MemberRow,
  cap = Number.POSITIVE_INFINITY,
): Promise<Readable> {
  const length = Math.min(member.size, cap);
  if (length === 0) return Readable.from([]);
  const source = await openContent(ctx, attachment);
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  const start = member.data_offset;
  const end = start + length;
  let position = 0;
  let done = false;
  const stop = () => {
    source.unpipe(gunzip);
    gunzip.unpipe(slicer);
    source.destroy();
    gunzip.destroy();
  };
  const slicer = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (done) return cb();
      const from = position;
      position += chunk.length;
      if (position <= start) return cb();
      const a = Math.max(start, from) - from;
      const b = Math.min(end, position) - from;
      if (b > a) this.push(chunk.subarray(a, b));
      if (position >= end) {
        done = true;
        this.push(null);
        stop();
      }
      cb();
    },
    flush(cb) {
      if (!done) cb(new Error('the bundle ended before the member did'));
      else cb();
    },
  });
  const fail = (err: Error) => {
    if (!done) slicer.destroy(err);
  };
  source.on('error', fail);
  gunzip.on('error', fail);
  slicer.on('close', () => {
    if (!done) stop();
  });
  source.pipe(gunzip).pipe(slicer);
  return slicer;
}

/** Up to MEMBER_TEXT_CAP bytes of a member, as text when it is text. */
export async function memberText(
  ctx: AttachmentsContext,
  attachment: AttachmentRow,
  member: MemberRow,
): Promise<{ text: string | null; truncated: boolean; bytes: number }> {
  const stream = await openMember(ctx, attachment, member, MEMBER_TEXT_CAP);
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream) {
    parts.push(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  const data = Buffer.concat(parts, bytes);
  const binary = data.subarray(0, 8192).includes(0);
  return {
    text: binary ? null : data.toString('utf8'),
    truncated: member.size > bytes,
    bytes,
  };
}
