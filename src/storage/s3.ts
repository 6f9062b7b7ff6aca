/**
 * S3-compatible backend (AWS SDK v3). A staged object is an S3 multipart upload whose parts all have
 * the same size, so part n always holds bytes [(n-1)·P, n·P): a resumed write knows which part comes
 * next from the recorded offset alone, and a part a crashed writer uploaded is simply uploaded again.
 * What is left over at the end of a request (less than one part) is kept as a small "tail" object,
 * named after the offset it ends at, and read back by the next write. Parts' ETags are recorded in the
 * database with the offset (the StagedState), so no listing of parts is needed to finish.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { type Readable, Writable } from 'node:stream';
import {
  ObjectMissing,
  type SettleMode,
  type StagedState,
  type StagedWriter,
  type Storage,
} from './types.ts';

const MiB = 1024 * 1024;
const KEY = /^[0-9a-f]{32}$/;

function checkKey(key: string): string {
  if (!KEY.test(key)) throw new Error(`bad storage key ${key}`);
  return key;
}

/** What the database keeps about a staged S3 object. */
interface S3State {
  uploadId: string;
  /** ETag of part i+1. */
  parts: string[];
  /** Offset whose tail object holds the bytes after the last full part, if any. */
  tail?: number;
}

function asState(state: StagedState): S3State | undefined {
  const s = state as Partial<S3State>;
  return typeof s.uploadId === 'string' && Array.isArray(s.parts) ? (s as S3State) : undefined;
}

/** Connection settings for S3 (from the configuration). */
export interface S3Settings {
  endpoint: string | undefined;
  bucket: string | undefined;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
}

/** The S3 backend. */
export class S3Storage implements Storage {
  readonly kind = 's3' as const;
  readonly client: S3Client;
  readonly bucket: string;
  /** Size of every part but the last: at least 5 MiB (S3's minimum), more for very large limits (10,000 parts). */
  readonly partSize: number;

  constructor(settings: S3Settings, maxObjectBytes: number) {
    if (!settings.bucket) throw new Error('S3_BUCKET is required');
    this.bucket = settings.bucket;
    this.partSize = Math.max(8 * MiB, Math.ceil(maxObjectBytes / 9000 / MiB) * MiB);
    this.client = new S3Client({
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.accessKeyId && settings.secretAccessKey
        ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } }
        : {}),
      // Bodies are streamed parts of known length; checksums are ours (sha256 of the whole file).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 2,
    });
  }

  objectKey(key: string): string {
    return `attachments/${checkKey(key)}`;
  }

  tailKey(key: string, offset: number): string {
    return `staging/${checkKey(key)}.tail.${offset}`;
  }

  async openStaged(key: string, offset: number, state: StagedState): Promise<StagedWriter> {
    const P = this.partSize;
    let s = asState(state);
    if (offset === 0 || !s) {
      if (offset !== 0) throw new Error(`staged object ${key} has no multipart upload recorded`);
      const created = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      s = { uploadId: created.UploadId!, parts: [] };
    }
    const full = Math.floor(offset / P);
    if (s.parts.length < full) throw new Error(`staged object ${key} lacks parts before offset ${offset}`);
    const base: S3State = { uploadId: s.uploadId, parts: s.parts.slice(0, full) };
    const oldTail = offset > full * P ? offset : undefined;
    let buffer = Buffer.allocUnsafe(P);
    let fill = 0;
    if (oldTail !== undefined) {
      const tail = await this.readAll(this.tailKey(key, oldTail));
      if (tail.length !== offset - full * P) throw new Error(`tail of ${key} has ${tail.length} bytes`);
      tail.copy(buffer);
      fill = tail.length;
    }
    const parts = base.parts.slice();
    let inflight: Promise<void> = Promise.resolve();
    let failed: unknown;
    const uploadPart = (body: Buffer, n: number) =>
      this.client
        .send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: this.objectKey(key),
            UploadId: base.uploadId,
            PartNumber: n,
            Body: body,
            ContentLength: body.length,
          }),
        )
        .then((r) => {
          parts[n - 1] = r.ETag!;
        });
    // At most one part uploading while the next one fills: bounded memory (two parts per upload).
    const flushFull = async () => {
      await inflight;
      if (failed) throw failed;
      const body = buffer;
      const n = parts.length + 1;
      buffer = Buffer.allocUnsafe(P);
      fill = 0;
      inflight = uploadPart(body, n).catch((err) => {
        failed = err;
      });
    };
    const stream = new Writable({
      highWaterMark: MiB,
      write(chunk: Buffer, _enc, cb) {
        (async () => {
          let at = 0;
          while (at < chunk.length) {
            const n = Math.min(chunk.length - at, P - fill);
            chunk.copy(buffer, fill, at, at + n);
            fill += n;
            at += n;
            if (fill === P) await flushFull();
          }
        })().then(() => cb(), cb);
      },
    });
    let settled = false;
    return {
      stream,
      settle: async (mode: SettleMode) => {
        if (settled) throw new Error('settled twice');
        settled = true;
        await inflight;
        if (mode === 'discard')
          return { length: offset, state: { ...base, ...(oldTail ? { tail: oldTail } : {}) } };
        if (failed) throw failed;
        const length = parts.length * P + fill;
        const next: S3State = { uploadId: base.uploadId, parts };
        if (fill > 0 && mode === 'complete') {
          await uploadPart(buffer.subarray(0, fill), parts.length + 1);
        } else if (fill > 0) {
          await this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: this.tailKey(key, length),
              Body: buffer.subarray(0, fill),
              ContentLength: fill,
            }),
          );
          next.tail = length;
        }
        if (oldTail !== undefined && oldTail !== next.tail) {
          await this.client
            .send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.tailKey(key, oldTail) }))
            .catch(() => {});
        }
        return { length, state: next as unknown as StagedState };
      },
    };
  }

  async commitStaged(key: string, length: number, state: StagedState): Promise<void> {
    const s = asState(state);
    if (!s) throw new Error(`staged object ${key} has no multipart upload recorded`);
    if (length === 0) {
      // S3 wants at least one part; an empty object is simpler put whole.
      await this.client
        .send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: this.objectKey(key),
            UploadId: s.uploadId,
          }),
        )
        .catch(() => {});
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          Body: Buffer.alloc(0),
          ContentLength: 0,
        }),
      );
      return;
    }
    const n = Math.ceil(length / this.partSize);
    if (s.parts.length < n) throw new Error(`staged object ${key} has ${s.parts.length} of ${n} parts`);
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        UploadId: s.uploadId,
        MultipartUpload: { Parts: s.parts.slice(0, n).map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  }

  async discardStaged(key: string, state: StagedState): Promise<void> {
    const s = asState(state);
    if (s) {
      await this.client
        .send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: this.objectKey(key),
            UploadId: s.uploadId,
          }),
        )
        .catch((err) => {
          // Gone already; or a server without AbortMultipartUpload (s3rver): a bucket lifecycle rule
          // (AbortIncompleteMultipartUpload) then clears the parts, as it should on any bucket anyway.
          const name = (err as { name?: string }).name;
          if (name !== 'NoSuchUpload' && name !== 'MethodNotAllowed' && name !== 'NotImplemented') throw err;
        });
    }
    // Tails, including any a crashed writer left behind.
    const listed = await this.client.send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `staging/${checkKey(key)}.tail.` }),
    );
    // One by one: there are few, and DeleteObjects needs a Content-MD5 some S3-compatible servers insist on.
    for (const o of listed.Contents ?? []) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: o.Key! }));
    }
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      return res.Body as Readable;
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') throw new ObjectMissing(key);
      throw err;
    }
  }

  async readAll(objectKey: string): Promise<Buffer> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
