/**
 * Local folder backend: staged objects are files under `<root>/staging`, written at explicit positions
 * (so a resumed write starts exactly at the recorded offset, whatever a crashed writer left behind);
 * committing renames them into `<root>/objects/<first two hex>/<key>`.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import {
  ObjectMissing,
  type SettleMode,
  StagedBytesLost,
  type StagedState,
  type StagedWriter,
  type Storage,
} from './types.ts';

const KEY = /^[0-9a-f]{32}$/;

function checkKey(key: string): string {
  // Keys are made by Bugzot, never taken from a request; refuse anything else outright.
  if (!KEY.test(key)) throw new Error(`bad storage key ${key}`);
  return key;
}

/** Writes everything in `buffers` at `position`, looping over short writes. */
async function writeAll(fh: fsp.FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  for (const b of buffers) total += b.length;
  let done = 0;
  let list = buffers;
  while (done < total) {
    const { bytesWritten } = await fh.writev(list, position + done);
    done += bytesWritten;
    if (done < total) {
      // Short write (rare on regular files): continue with what is left.
      let skip = done;
      const rest: Buffer[] = [];
      for (const b of buffers) {
        if (skip >= b.length) skip -= b.length;
        else {
          rest.push(skip ? b.subarray(skip) : b);
          skip = 0;
        }
      }
      list = rest;
    }
  }
  return total;
}

/**
 * Bytes written between two background flushes of a file. A finished upload is made durable
 * (fdatasync) before it becomes an attachment; flushing what is already written while the rest still
 * arrives leaves that final flush only the last few MiB, instead of the whole file's dirty pages (about
 * a second for 4 GiB here, with the sender waiting).
 */
const FLUSH_EVERY = 64 * 1024 * 1024;

/**
 * Background flushes in flight in this process: at most one, so that flushes never take more than one
 * thread of libuv's pool (writes, inflating and hashing of other uploads share it).
 */
let flushing = false;

/** A sequential writer of one staged file, from a starting position. */
class FileWriter extends Writable {
  position: number;
  private unflushed = 0;
  private flush: Promise<void> | undefined;
  private flushError: Error | undefined;
  constructor(
    readonly fh: fsp.FileHandle,
    readonly start: number,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.position = start;
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    writeAll(
      this.fh,
      chunks.map((c) => c.chunk),
      this.position,
    ).then((n) => this.written(n, cb), cb);
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    writeAll(this.fh, [chunk], this.position).then((n) => this.written(n, cb), cb);
  }
  private written(n: number, cb: (err?: Error | null) => void): void {
    this.position += n;
    this.unflushed += n;
    if (this.unflushed >= FLUSH_EVERY && !flushing && !this.flush) {
      // Not awaited: the writes go on while the kernel writes back what is already there.
      this.unflushed = 0;
      flushing = true;
      this.flush = this.fh.datasync().then(
        () => {
          flushing = false;
          this.flush = undefined;
        },
        (err: Error) => {
          flushing = false;
          this.flush = undefined;
          this.flushError ??= err;
        },
      );
    }
    cb(this.flushError);
  }
  /** Waits for a background flush in flight; its error, if it failed. */
  async flushed(): Promise<void> {
    await this.flush;
    if (this.flushError) throw this.flushError;
  }
}

/** The local folder backend. */
export class LocalStorage implements Storage {
  readonly kind = 'local' as const;
  constructor(readonly root: string) {}

  stagedPath(key: string): string {
    return join(this.root, 'staging', checkKey(key));
  }

  objectPath(key: string): string {
    return join(this.root, 'objects', checkKey(key).slice(0, 2), key);
  }

  async openStaged(key: string, offset: number, _state: StagedState): Promise<StagedWriter> {
    const path = this.stagedPath(key);
    let fh: fsp.FileHandle;
    if (offset === 0) {
      await fsp.mkdir(dirname(path), { recursive: true });
      fh = await fsp.open(path, 'w');
    } else {
      try {
        fh = await fsp.open(path, 'r+');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StagedBytesLost(key, 0, offset);
        throw err;
      }
      const { size } = await fh.stat();
      if (size < offset) {
        await fh.close();
        throw new StagedBytesLost(key, size, offset);
      }
      // Bytes past the recorded offset come from a writer that died before recording them.
      if (size > offset) await fh.truncate(offset);
    }
    const stream = new FileWriter(fh, offset);
    let settled = false;
    return {
      stream,
      async settle(mode: SettleMode) {
        if (settled) throw new Error('settled twice');
        settled = true;
        if (mode !== 'complete') {
          // Kept for a later chunk, or cut back: no durability is promised for these bytes, so a
          // background flush in flight is not waited for (the handle closes when it is done).
          try {
            if (mode === 'discard') await fh.truncate(offset);
          } finally {
            void stream
              .flushed()
              .catch(() => {})
              .then(() => fh.close())
              .catch(() => {});
          }
          return { length: mode === 'discard' ? offset : stream.position, state: {} };
        }
        try {
          // A finished file is made durable before it becomes an attachment: after a background flush
          // in flight (whose failure fails the upload: those bytes may not be on disk), the last bytes.
          // Chunks of an unfinished upload are not flushed at their end (that halved throughput): they
          // survive a killed process in the page cache, and after a machine crash a staged file found
          // shorter than its recorded offset makes the upload answer 410, and the client starts again.
          await stream.flushed();
          await fh.datasync();
          return { length: stream.position, state: {} };
        } finally {
          await fh.close();
        }
      },
    };
  }

  async commitStaged(key: string, length: number, _state: StagedState): Promise<void> {
    const from = this.stagedPath(key);
    const { size } = await fsp.stat(from);
    if (size !== length) throw new Error(`staged object ${key} holds ${size} bytes, expected ${length}`);
    const to = this.objectPath(key);
    await fsp.mkdir(dirname(to), { recursive: true });
    await fsp.rename(from, to);
  }

  async discardStaged(key: string, _state: StagedState): Promise<void> {
    await fsp.rm(this.stagedPath(key), { force: true });
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const path = this.objectPath(key);
    // Opened first so that a missing file is an error here, not later inside a pipeline.
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectMissing(key);
      throw err;
    }
    return createReadStream('', {
      fd: fh,
      highWaterMark: 1024 * 1024,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async remove(key: string): Promise<void> {
    await fsp.rm(this.objectPath(key), { force: true });
  }

  async close(): Promise<void> {}
}
