/**
 * What an uploaded file really is, decided from its bytes while they stream past (never from its name or
 * the client's Content-Type), and its SHA-256. Diagnostic bundles (gzip-compressed tar) are inflated on
 * the fly, their tar headers checked and their members listed; a file named like a bundle that is not
 * one is refused as soon as that is known. The hash runs here, or for up to four bundles receiving at a
 * time on the inflater thread, which gets their every byte anyway (HASHED_ON_THREAD).
 */
import { isUtf8 } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { AppError } from '../platform/errors.ts';
import { type FromWorker, inflatePool, SLOT_BYTES, type Slot } from './inflate-pool.ts';
import type { TarMember } from './tar.ts';

/** Kinds of attachment, as sniffed. */
export const KINDS = ['bundle', 'gzip', 'text', 'image', 'pdf', 'zip', 'binary'] as const;
export type Kind = (typeof KINDS)[number];

/** What inspection found. */
export interface Inspection {
  kind: Kind;
  contentType: string;
  members: TarMember[];
  memberCount: number | null;
}

/** How many bytes of the start decide between text and binary. */
const HEAD = 8192;
/** Members listed per bundle (all are counted). */
export const MAX_LISTED_MEMBERS = 100_000;

/**
 * Bounds on inflating a bundle, against decompression bombs (a small .tgz that inflates to terabytes
 * would otherwise keep a thread busy for hours). Past either, the upload is refused.
 */
export interface InspectLimits {
  /** Most uncompressed bytes inflated for one file (BUNDLE_INSPECT_MAX_BYTES). */
  maxInflatedBytes: number;
  /** Most uncompressed bytes per compressed byte received so far (BUNDLE_INSPECT_MAX_RATIO). */
  maxRatio: number;
}

/** The defaults of BUNDLE_INSPECT_MAX_BYTES (256 GiB) and BUNDLE_INSPECT_MAX_RATIO. */
export const DEFAULT_INSPECT_LIMITS: InspectLimits = Object.freeze({
  maxInflatedBytes: 256 * 1024 ** 3,
  maxRatio: 200,
});

/** Below this many inflated bytes the ratio is not checked (a small file of zeros is no bomb). */
const RATIO_GRACE_BYTES = 64 * 1024 * 1024;

/** Batches sent to the inflater thread and not yet read by zlib, at most (then the upload waits). */
const IN_FLIGHT = 2;

/**
 * Bundles whose SHA-256 the inflater thread computes while their bytes arrive, at most, process-wide
 * (decided when a bundle's first bytes arrive, for the whole file: a hash cannot move); the others, and
 * every other kind of file, are hashed on the main thread. The thread receives every byte of a bundle
 * anyway, and hashing there takes ~0.55 CPU-s per GiB off the event loop: one upload on a quiet machine
 * went from 0.70 to 0.80–0.87 of the raw baseline's speed.
 * With every bundle hashed there, 20 concurrent uploads peaked at 393–418 MB (the event loop, freed,
 * lets them all flow at once); with the first four, 340–375 MB, as with none (bench/README.md).
 */
const HASHED_ON_THREAD = 4;

/**
 * Bundles hashed on the inflater thread whose bytes are arriving now: from a request's first byte to
 * its end. A tus upload waiting for its next chunk (or abandoned: it stays until it expires) holds no
 * place, so that idle uploads never keep new ones from the thread.
 */
let receivingOnThread = 0;

/** How many bundles are hashed on the inflater thread while their bytes arrive (tests). */
export function hashingOnThreadNow(): number {
  return receivingOnThread;
}

/** Names that promise a gzip-compressed tar archive. */
export function claimsBundle(fileName: string): boolean {
  return /\.(tgz|tar\.gz)$/i.test(fileName);
}

/** 422 for a file that is not what its name promises, or is damaged. */
export const refused = (code: string, message: string) => new AppError(422, code, message, 'file');

function magic(head: Buffer): { kind: Kind; contentType: string } | undefined {
  const starts = (...bytes: number[]) => head.length >= bytes.length && bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return { kind: 'gzip', contentType: 'application/gzip' };
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a))
    return { kind: 'image', contentType: 'image/png' };
  if (starts(0xff, 0xd8, 0xff)) return { kind: 'image', contentType: 'image/jpeg' };
  if (starts(0x47, 0x49, 0x46, 0x38)) return { kind: 'image', contentType: 'image/gif' };
  if (
    head.length >= 12 &&
    head.toString('latin1', 0, 4) === 'RIFF' &&
    head.toString('latin1', 8, 12) === 'WEBP'
  )
    return { kind: 'image', contentType: 'image/webp' };
  if (starts(0x25, 0x50, 0x44, 0x46, 0x2d)) return { kind: 'pdf', contentType: 'application/pdf' };
  if (starts(0x50, 0x4b, 0x03, 0x04) || starts(0x50, 0x4b, 0x05, 0x06))
    return { kind: 'zip', contentType: 'application/zip' };
  return undefined;
}

/** Text: valid UTF-8 without NUL bytes (a character cut at the end of the sample is fine). */
function looksLikeText(head: Buffer, whole: boolean): boolean {
  if (head.includes(0)) return false;
  if (isUtf8(head)) return true;
  if (whole) return false;
  for (let cut = 1; cut <= 3 && cut < head.length; cut++)
    if (isUtf8(head.subarray(0, head.length - cut))) return true;
  return false;
}

/** The answer of the inflater thread at the end of a bundle. */
type Done = Extract<FromWorker, { t: 'done' }>;

/**
 * Streaming inspector of one file. Feed it with `write`, then call `finish`. A gzip file is inflated
 * and its tar headers read on the inflater thread (inflate-pool.ts); the decisions stay here.
 */
export class Inspector {
  private head = Buffer.alloc(HEAD);
  private headFill = 0;
  private decided: { kind: Kind; contentType: string } | undefined;
  /** The stream's id on the inflater thread, while it inflates (or hashes). */
  private remote: number | undefined;
  /** The running digest, when it is computed here (not on the inflater thread). */
  private hash: Hash | undefined;
  /** The inflater thread computes the digest: every byte goes to it, to the last. */
  private hashedOnThread = false;
  /** Bytes are arriving (see `receivingOnThread`). */
  private receiving = false;
  /** Batches sent and not yet done with (read by zlib, and hashed when the thread hashes). */
  private inFlight = 0;
  /** Woken when a batch was read, inflating stopped or failed. */
  private wake: (() => void) | undefined;
  /** Waiting for the thread's `done`. */
  private awaitingDone: ((done: Done | undefined) => void) | undefined;
  private failure: AppError | undefined;
  /** Stopped inflating: the archive ended, or the gzip holds no tar. */
  private inflateDone = false;
  private notTar = false;
  /** Compressed bytes given to the inflater (the thread checks the inflation ratio against it). */
  private compressedIn = 0;
  /** Bytes gathered for the inflater (see `inflate`). */
  private stage: Slot | undefined;
  private stageFill = 0;

  constructor(
    readonly fileName: string,
    readonly allowed: ReadonlySet<string>,
    readonly limits: InspectLimits = DEFAULT_INSPECT_LIMITS,
  ) {}

  /** The inflater thread computes this file's digest (decided with the first bytes). */
  get hashesOnThread(): boolean {
    return this.hashedOnThread;
  }

  /**
   * Feeds the next bytes (hashed and inspected); returns a promise when the inflater needs time
   * (backpressure). Throws when refused.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    this.setReceiving(true);
    if (!this.decided) {
      const n = Math.min(HEAD - this.headFill, chunk.length);
      chunk.copy(this.head, this.headFill, 0, n);
      this.headFill += n;
      const head = this.head.subarray(0, this.headFill);
      const found = this.headFill >= 12 ? magic(head) : undefined;
      if (found) this.decide(found);
      else if (this.headFill >= HEAD) this.decide(this.textOrBinary(head, false));
      else return undefined;
      // The head went in already (decide() hashes it and sends a bundle's to the inflater).
      return n < chunk.length ? this.feed(chunk.subarray(n)) : undefined;
    }
    return this.feed(chunk);
  }

  /** The request bringing the bytes ended (the file may go on with the next one: tus). */
  pause(): void {
    this.setReceiving(false);
  }

  private setReceiving(on: boolean): void {
    if (on === this.receiving) return;
    this.receiving = on;
    if (this.hashedOnThread) receivingOnThread += on ? 1 : -1;
  }

  /** Bytes past the head: to the digest here, and to the inflater thread while it wants them. */
  private feed(chunk: Buffer): Promise<void> | undefined {
    this.hash?.update(chunk);
    return this.sending() ? this.inflate(chunk) : undefined;
  }

  /** The inflater thread takes more bytes: it inflates still, or it computes the digest. */
  private sending(): boolean {
    return this.remote !== undefined && (this.hashedOnThread || !this.inflateDone);
  }

  private textOrBinary(head: Buffer, whole: boolean) {
    return looksLikeText(head, whole)
      ? { kind: 'text' as const, contentType: 'text/plain; charset=utf-8' }
      : { kind: 'binary' as const, contentType: 'application/octet-stream' };
  }

  private decide(found: { kind: Kind; contentType: string }): void {
    this.decided = found;
    const head = this.head.subarray(0, this.headFill);
    this.hashedOnThread = found.kind === 'gzip' && receivingOnThread < HASHED_ON_THREAD;
    if (this.hashedOnThread && this.receiving) receivingOnThread++;
    if (!this.hashedOnThread) this.hash = createHash('sha256').update(head);
    if (found.kind !== 'gzip') {
      if (claimsBundle(this.fileName)) {
        throw this.fail(
          refused(
            'not_a_bundle',
            `${this.fileName} is not a gzip-compressed tar archive (its content is ${found.kind === 'text' ? 'text' : found.kind}); rename it or attach the real bundle.`,
          ),
        );
      }
      this.checkAllowed(found.kind);
      return;
    }
    this.remote = inflatePool.open(
      {
        message: (msg) => this.onMessage(msg),
        crashed: (err) => this.onCrash(err),
      },
      {
        hash: this.hashedOnThread,
        maxListed: MAX_LISTED_MEMBERS,
        maxInflatedBytes: this.limits.maxInflatedBytes,
        maxRatio: this.limits.maxRatio,
        graceBytes: RATIO_GRACE_BYTES,
      },
    );
    this.compressedIn += head.length;
    const slot = inflatePool.takeSlot();
    head.copy(slot.buf);
    this.send(slot, head.length);
  }

  private send(slot: Slot, length: number): void {
    if (inflatePool.sendSlot(this.remote!, slot, length, this.compressedIn)) this.inFlight++;
  }

  private onMessage(msg: FromWorker): void {
    if (msg.t === 'ack') {
      // (The pool took the slot back.)
      this.inFlight--;
    } else if (msg.t === 'stopped') {
      this.onStopped(msg);
    } else {
      const done = this.awaitingDone;
      this.awaitingDone = undefined;
      this.closeRemote();
      done?.(msg);
      return;
    }
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** The thread stopped inflating: the archive ended, or the content is refused. */
  private onStopped(msg: Extract<FromWorker, { t: 'stopped' }>): void {
    this.inflateDone = true;
    if (msg.why === 'expanded') {
      const { maxInflatedBytes, maxRatio } = this.limits;
      this.fail(
        refused(
          'bundle_too_expanded',
          msg.overBytes
            ? `${this.fileName} inflates to more than ${maxInflatedBytes} bytes (BUNDLE_INSPECT_MAX_BYTES); ` +
                'refused as a possible decompression bomb.'
            : `${this.fileName} inflates to more than ${maxRatio} times its compressed size ` +
                '(BUNDLE_INSPECT_MAX_RATIO); refused as a possible decompression bomb.',
        ),
      );
    } else if (msg.why === 'gzip') {
      this.fail(refused('corrupt_gzip', `${this.fileName}: the gzip data is damaged (${msg.message}).`));
    } else if (msg.why === 'notTar') {
      if (msg.sawHeader) {
        this.fail(
          refused('corrupt_bundle', `${this.fileName}: the tar archive inside is damaged (${msg.message}).`),
        );
      } else {
        this.notTar = true;
        if (claimsBundle(this.fileName)) {
          this.fail(
            refused(
              'not_a_bundle',
              `${this.fileName} is gzip-compressed but holds no tar archive; attach the real bundle.`,
            ),
          );
        } else {
          try {
            this.checkAllowed('gzip');
          } catch (e) {
            this.failure = e as AppError;
          }
        }
      }
    }
  }

  /** The inflater thread died: the file cannot be checked here (a 5xx; the bytes are not kept). */
  private onCrash(err: Error): void {
    this.remote = undefined;
    this.inflateDone = true;
    this.fail(this.unchecked(`the inflater stopped: ${err.message}`));
    const done = this.awaitingDone;
    this.awaitingDone = undefined;
    done?.(undefined);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private closeRemote(): void {
    if (this.remote === undefined) return;
    inflatePool.close(this.remote);
    this.remote = undefined;
  }

  /** A 5xx: the file could not be checked or hashed here (its bytes are not kept). */
  private unchecked(why: string): AppError {
    return new AppError(
      503,
      'inspection_failed',
      `${this.fileName} could not be checked (${why}); nothing was kept, send it again.`,
    );
  }

  private checkAllowed(kind: Kind): void {
    if (!this.allowed.has(kind)) {
      throw this.fail(
        new AppError(
          415,
          'type_not_allowed',
          `Attachments of this kind (${kind}) are not accepted here; accepted: ${[...this.allowed].join(', ')}.`,
          'file',
        ),
      );
    }
  }

  private fail(err: AppError): AppError {
    this.failure ??= err;
    return this.failure;
  }

  private stopInflating(): void {
    this.setReceiving(false);
    this.inflateDone = true;
    this.closeRemote();
    if (this.stage) inflatePool.giveSlot(this.stage);
    this.stage = undefined;
    this.stageFill = 0;
  }

  /**
   * Socket reads arrive in ~64 KiB pieces; the inflater runs one thread-pool job (and a round of JS
   * callbacks) per write, and each batch is a message to its thread, so they are gathered into
   * slots of SLOT_BYTES first: a 16th of the jobs. The slots are shared memory from the pool, lent to
   * the thread and given back once zlib is done with them, so that gathering allocates nothing on
   * either side (fresh buffers at upload speed kept V8 running full garbage collections).
   */
  private inflate(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    this.compressedIn += chunk.length;
    let at = 0;
    let full = false;
    while (at < chunk.length) {
      this.stage ??= inflatePool.takeSlot();
      const n = chunk.copy(this.stage.buf, this.stageFill, at);
      this.stageFill += n;
      at += n;
      if (this.stageFill === SLOT_BYTES) full = this.submitStage() || full;
    }
    return full ? this.drained() : undefined;
  }

  /** Hands the gathered bytes to the inflater; true when it asks to wait (backpressure). */
  private submitStage(): boolean {
    const stage = this.stage;
    const fill = this.stageFill;
    this.stage = undefined;
    this.stageFill = 0;
    if (!stage) return false;
    if (!this.sending() || fill === 0) {
      inflatePool.giveSlot(stage);
      return false;
    }
    // Back to the pool when the thread acknowledges it (zlib is done with it).
    this.send(stage, fill);
    return this.inFlight >= IN_FLIGHT;
  }

  /** Sends gathered bytes on to the inflater (the end of a request body). */
  flushPending(): void {
    if (this.failure) throw this.failure;
    if (this.stage && this.remote !== undefined) this.submitStage();
  }

  private async drained(): Promise<void> {
    while (this.inFlight >= IN_FLIGHT && this.sending() && !this.failure) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    if (this.failure) throw this.failure;
  }

  /**
   * The end of the file: settles the kind, completes the archive check, returns what was found and
   * the file's SHA-256 (hex).
   */
  async finish(): Promise<{ sha256: string; inspection: Inspection }> {
    try {
      return await this.finishing();
    } finally {
      this.setReceiving(false);
    }
  }

  private async finishing(): Promise<{ sha256: string; inspection: Inspection }> {
    if (this.failure) throw this.failure;
    if (!this.decided) {
      const head = this.head.subarray(0, this.headFill);
      this.decide(magic(head) ?? this.textOrBinary(head, true));
    }
    let done: Done | undefined;
    if (this.remote !== undefined) {
      // The thread inflates what is left, checks the archive is complete and sends the member list
      // (also when it stopped early: the archive ended).
      this.submitStage();
      const id = this.remote;
      done = await new Promise<Done | undefined>((resolve) => {
        this.awaitingDone = resolve;
        inflatePool.end(id);
      });
    }
    if (this.failure) throw this.failure;
    let sha256: string;
    if (this.hashedOnThread) {
      // The thread answers without a digest only for a stream it did not know: never unhashed.
      if (!done?.sha256) throw this.fail(this.unchecked('the inflater thread lost the stream'));
      sha256 = done.sha256;
    } else sha256 = this.hash!.digest('hex');
    return { sha256, inspection: this.inspection(done) };
  }

  /** What the file is, from its head and (for gzip) the thread's answer at its end. */
  private inspection(done: Done | undefined): Inspection {
    if (this.decided!.kind === 'gzip') {
      if (!this.notTar) {
        if (done && done.finishError === undefined) {
          this.checkAllowed('bundle');
          return {
            kind: 'bundle',
            contentType: 'application/gzip',
            members: done.members,
            memberCount: done.count,
          };
        }
        const message = done?.finishError ?? 'no tar header';
        if (done?.sawHeader)
          throw this.fail(
            refused('corrupt_bundle', `${this.fileName}: the tar archive inside is damaged (${message}).`),
          );
        if (claimsBundle(this.fileName))
          throw this.fail(
            refused(
              'not_a_bundle',
              `${this.fileName} is gzip-compressed but holds no tar archive; attach the real bundle.`,
            ),
          );
      }
      this.checkAllowed('gzip');
      return { kind: 'gzip', contentType: 'application/gzip', members: [], memberCount: null };
    }
    return { ...this.decided!, members: [], memberCount: null };
  }

  /** Frees the inflater (an upload that will not continue in this process). */
  dispose(): void {
    this.stopInflating();
  }
}
