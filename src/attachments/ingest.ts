/**
 * The one-pass ingest: a request body streams into storage through a meter that counts bytes against
 * the limit and feeds the content inspector (which keeps the running SHA-256), with backpressure all
 * the way (the socket is read only as fast as storage and the inflater take it). Nothing is buffered
 * whole.
 */
import type { Hash } from 'node:crypto';
import { Readable, Transform, type Writable } from 'node:stream';
import { AppError } from '../platform/errors.ts';
import { counter, gauge } from '../platform/metrics.ts';
import { scavengeEvery } from '../platform/young-gc.ts';
import { DEFAULT_INSPECT_LIMITS, type Inspection, type InspectLimits, Inspector } from './inspect.ts';

/** Upload figures for /metrics: bytes received by this process and bodies being received now. */
const uploadBytes = counter(
  'bugzot_upload_bytes_total',
  'Attachment bytes received (single request and tus chunks).',
);
const activeUploads = gauge('bugzot_uploads_active', 'Upload bodies being received now.');

/**
 * A scavenge of the main isolate every 4 MiB received, across all uploads of the process: it frees the
 * socket reads' buffers before they add up to a full collection (platform/young-gc.ts). Made on the
 * first upload.
 */
const SCAVENGE_BYTES = 4 * 1024 * 1024;
let scavenger: ((bytes: number) => void) | undefined;
function countReceived(bytes: number): void {
  scavenger ??= scavengeEvery(SCAVENGE_BYTES);
  scavenger(bytes);
}

/** The running state of one file being ingested: its inspection and hash, from byte 0 (inspect.ts). */
export class IngestState {
  readonly inspector: Inspector;
  /** Bytes fed so far. */
  bytes = 0;
  constructor(
    fileName: string,
    allowed: ReadonlySet<string>,
    limits: InspectLimits = DEFAULT_INSPECT_LIMITS,
  ) {
    this.inspector = new Inspector(fileName, allowed, limits);
  }
  /** Feeds the next bytes; a promise when the inflater needs time (backpressure). Throws when refused. */
  write(chunk: Buffer): Promise<void> | undefined {
    this.bytes += chunk.length;
    return this.inspector.write(chunk);
  }
  /** The request that brought bytes ended; the file may go on with the next (tus). */
  pause(): void {
    this.inspector.pause();
  }
  /** Hex SHA-256 and inspection result, once every byte went in. */
  finish(): Promise<{ sha256: string; inspection: Inspection }> {
    return this.inspector.finish();
  }
  dispose(): void {
    this.inspector.dispose();
  }
}

/** 413 with the limit in words. */
export function tooLarge(limit: number): AppError {
  return new AppError(
    413,
    'payload_too_large',
    `The file is larger than the limit of ${limit} bytes (ATTACHMENT_MAX_BYTES); nothing was kept.`,
    'file',
  );
}

/** A body of no bytes (a request with Content-Length: 0 reaches no content type parser). */
export function emptyBody(): Readable {
  return Readable.from([]);
}

/** How a stream-in ended. */
export interface StreamOutcome {
  /** Bytes that went through to storage. */
  received: number;
  /** The client went away (or sent nothing for too long): what arrived was written, the rest never came. */
  bodyError?: Error;
}

/**
 * Streams `body` into `sink`, feeding `state` (when given) and `chunkHash` (tus checksums), refusing
 * more than `limit` bytes. When the client breaks off, the bytes already metered are still written
 * (so the hash state and stored bytes agree) and the outcome says so; our own refusals (413, a file
 * that is not what it claims) and storage errors reject.
 */
export function streamInto(
  body: Readable,
  sink: Writable,
  opts: {
    state?: IngestState | undefined;
    chunkHash?: Hash | undefined;
    limit: number;
    idleMs: number;
    limitBytes: number;
    /** Updated as bytes arrive (for lease renewal). */
    progress?: { received: number };
  },
): Promise<StreamOutcome> {
  const { state, chunkHash, limit } = opts;
  let received = 0;
  let lastData = Date.now();
  activeUploads.inc();
  return new Promise<StreamOutcome>((resolve, reject) => {
    let settled = false;
    let bodyError: Error | undefined;
    const meter = new Transform({
      highWaterMark: 256 * 1024,
      transform(chunk: Buffer, _enc, cb) {
        lastData = Date.now();
        if (received + chunk.length > limit) {
          cb(tooLarge(opts.limitBytes));
          return;
        }
        received += chunk.length;
        uploadBytes.inc(chunk.length);
        countReceived(chunk.length);
        if (opts.progress) opts.progress.received = received;
        chunkHash?.update(chunk);
        if (!state) {
          cb(null, chunk);
          return;
        }
        let wait: Promise<void> | undefined;
        try {
          wait = state.write(chunk);
        } catch (err) {
          cb(err as Error);
          return;
        }
        if (wait) wait.then(() => cb(null, chunk), cb);
        else cb(null, chunk);
      },
      flush(cb) {
        // The inflater gets what is still gathered (a tus state kept between requests holds no buffer).
        try {
          state?.inspector.flushPending();
          cb();
        } catch (err) {
          cb(err as Error);
        }
      },
    });
    const idle = setInterval(
      () => {
        if (Date.now() - lastData > opts.idleMs) body.destroy(new Error('no data for too long'));
      },
      Math.min(1000, opts.idleMs),
    );
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearInterval(idle);
      body.unpipe(meter);
      body.resume();
      meter.destroy();
      sink.destroy();
      reject(err);
    };
    body.on('error', (err) => {
      // The client went away: flush what arrived, then report.
      if (settled || bodyError) return;
      bodyError = err;
      body.unpipe(meter);
      meter.end();
    });
    body.on('aborted', () => body.emit('error', Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
    meter.on('error', fail);
    sink.on('error', fail);
    sink.on('finish', () => {
      if (settled) return;
      settled = true;
      clearInterval(idle);
      resolve(bodyError ? { received, bodyError } : { received });
    });
    body.pipe(meter).pipe(sink);
  }).finally(() => {
    activeUploads.dec();
    state?.pause();
  });
}
