/**
 * What an uploaded file really is, decided from its bytes while they stream past (never from its name or
 * the client's Content-Type). Diagnostic bundles (gzip-compressed tar) are inflated on the fly, their
 * tar headers checked and their members listed; a file named like a bundle that is not one is refused
 * as soon as that is known.
 */
import { isUtf8 } from 'node:buffer';
import { createGunzip, type Gunzip, type ZlibOptions } from 'node:zlib';
import { AppError } from '../platform/errors.ts';
import { NotTar, TarReader, type TarMember } from './tar.ts';

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

/** Size of the batches the inflater is fed. */
const STAGE = 1024 * 1024;
/** Free batch buffers kept for reuse (process-wide). */
const stagePool: Buffer[] = [];
const STAGE_POOL_MAX = 8;
const takeStage = () => stagePool.pop() ?? Buffer.allocUnsafeSlow(STAGE);
const giveStage = (b: Buffer) => {
  if (stagePool.length < STAGE_POOL_MAX) stagePool.push(b);
};

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

/** Streaming inspector of one file. Feed it with `write`, then call `finish`. */
export class Inspector {
  private head = Buffer.alloc(HEAD);
  private headFill = 0;
  private decided: { kind: Kind; contentType: string } | undefined;
  private gunzip: Gunzip | undefined;
  private tar: TarReader | undefined;
  private failure: AppError | undefined;
  /** Stopped inflating: the archive ended, or the gzip holds no tar. */
  private inflateDone = false;
  private notTar = false;
  /** Compressed bytes given to the inflater, and uncompressed bytes it gave back. */
  private compressedIn = 0;
  private inflated = 0;
  /** Bytes gathered for the inflater (see `inflate`). */
  private stage: Buffer | undefined;
  private stageFill = 0;

  constructor(
    readonly fileName: string,
    readonly allowed: ReadonlySet<string>,
    readonly limits: InspectLimits = DEFAULT_INSPECT_LIMITS,
  ) {}

  /** Feeds the next bytes; returns a promise when the inflater needs time (backpressure). Throws when refused. */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    if (!this.decided) {
      const n = Math.min(HEAD - this.headFill, chunk.length);
      chunk.copy(this.head, this.headFill, 0, n);
      this.headFill += n;
      const head = this.head.subarray(0, this.headFill);
      const found = this.headFill >= 12 ? magic(head) : undefined;
      if (found) this.decide(found);
      else if (this.headFill >= HEAD) this.decide(this.textOrBinary(head, false));
      else return undefined;
      // The head went in already when gzip was decided (decide() feeds it); feed only the rest.
      if (this.decided!.kind === 'gzip' && n < chunk.length) return this.inflate(chunk.subarray(n));
      return undefined;
    }
    if (this.gunzip && !this.inflateDone) return this.inflate(chunk);
    return undefined;
  }

  private textOrBinary(head: Buffer, whole: boolean) {
    return looksLikeText(head, whole)
      ? { kind: 'text' as const, contentType: 'text/plain; charset=utf-8' }
      : { kind: 'binary' as const, contentType: 'application/octet-stream' };
  }

  private decide(found: { kind: Kind; contentType: string }): void {
    this.decided = found;
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
    this.tar = new TarReader(MAX_LISTED_MEMBERS);
    // The inflater is fed STAGE-byte batches (see `inflate`); one more may wait for it. Its output
    // chunks are smaller: each upload's buffers add up when 20 run at once.
    const gunzip = createGunzip({
      chunkSize: 256 * 1024,
      writableHighWaterMark: STAGE,
    } as ZlibOptions);
    this.gunzip = gunzip;
    gunzip.on('data', (out: Buffer) => {
      if (this.inflateDone) return;
      this.inflated += out.length;
      if (this.overExpanded()) return;
      try {
        this.tar!.push(out);
        if (this.tar!.ended) this.stopInflating();
      } catch (err) {
        if (!(err instanceof NotTar)) throw err;
        if (this.tar!.sawHeader) {
          this.fail(
            refused(
              'corrupt_bundle',
              `${this.fileName}: the tar archive inside is damaged (${err.message}).`,
            ),
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
        this.stopInflating();
      }
    });
    gunzip.on('error', (err) => {
      if (this.inflateDone) return;
      this.fail(refused('corrupt_gzip', `${this.fileName}: the gzip data is damaged (${err.message}).`));
      this.stopInflating();
    });
    const head = this.head.subarray(0, this.headFill);
    this.compressedIn += head.length;
    gunzip.write(Buffer.from(head));
  }

  /** Refuses a file that inflates beyond the limits, and stops inflating it at once. */
  private overExpanded(): boolean {
    const { maxInflatedBytes, maxRatio } = this.limits;
    const overBytes = this.inflated > maxInflatedBytes;
    const overRatio = this.inflated > RATIO_GRACE_BYTES && this.inflated > maxRatio * this.compressedIn;
    if (!overBytes && !overRatio) return false;
    this.fail(
      refused(
        'bundle_too_expanded',
        overBytes
          ? `${this.fileName} inflates to more than ${maxInflatedBytes} bytes (BUNDLE_INSPECT_MAX_BYTES); ` +
              'refused as a possible decompression bomb.'
          : `${this.fileName} inflates to more than ${maxRatio} times its compressed size ` +
              '(BUNDLE_INSPECT_MAX_RATIO); refused as a possible decompression bomb.',
      ),
    );
    this.stopInflating();
    return true;
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
    this.inflateDone = true;
    this.gunzip?.destroy();
    if (this.stage) giveStage(this.stage);
    this.stage = undefined;
    this.stageFill = 0;
  }

  /**
   * Socket reads arrive in ~64 KiB pieces; the inflater runs one thread-pool job (and a round of JS
   * callbacks) per write, so they are gathered into STAGE-byte buffers first: a 16th of the jobs. The
   * buffers come from a pool and go back to it once the inflater is done with them, so that gathering
   * allocates nothing (fresh buffers at upload speed kept V8 running full garbage collections).
   */
  private inflate(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    this.compressedIn += chunk.length;
    let at = 0;
    let full = false;
    while (at < chunk.length) {
      this.stage ??= takeStage();
      const n = chunk.copy(this.stage, this.stageFill, at);
      this.stageFill += n;
      at += n;
      if (this.stageFill === STAGE) full = this.submitStage() || full;
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
    const g = this.gunzip!;
    if (this.inflateDone || fill === 0) {
      giveStage(stage);
      return false;
    }
    // Back to the pool only once zlib is done reading it (not on an error: it may still be in use).
    return !g.write(stage.subarray(0, fill), (err) => {
      if (!err) giveStage(stage);
    });
  }

  /** Sends gathered bytes on to the inflater (the end of a request body). */
  flushPending(): void {
    if (this.failure) throw this.failure;
    if (this.stage && this.gunzip) this.submitStage();
  }

  private async drained(): Promise<void> {
    const g = this.gunzip!;
    while (g.writableNeedDrain && !this.inflateDone) {
      await new Promise<void>((resolve) => {
        const done = () => {
          g.off('drain', done);
          g.off('close', done);
          resolve();
        };
        g.on('drain', done);
        g.on('close', done);
      });
    }
    if (this.failure) throw this.failure;
  }

  /** The end of the file: settles the kind, completes the archive check, returns what was found. */
  async finish(): Promise<Inspection> {
    if (this.failure) throw this.failure;
    if (!this.decided) {
      const head = this.head.subarray(0, this.headFill);
      this.decide(magic(head) ?? this.textOrBinary(head, true));
    }
    if (this.gunzip && !this.inflateDone) {
      this.submitStage();
      const g = this.gunzip;
      const done = new Promise<void>((resolve) => {
        g.once('end', resolve);
        g.once('close', resolve);
      });
      g.end();
      g.resume();
      await done;
    }
    if (this.failure) throw this.failure;
    if (this.decided!.kind === 'gzip') {
      if (!this.notTar) {
        try {
          this.tar!.finish();
          this.checkAllowed('bundle');
          return {
            kind: 'bundle',
            contentType: 'application/gzip',
            members: this.tar!.members,
            memberCount: this.tar!.count,
          };
        } catch (err) {
          if (!(err instanceof NotTar)) throw err;
          if (this.tar!.sawHeader)
            throw this.fail(
              refused(
                'corrupt_bundle',
                `${this.fileName}: the tar archive inside is damaged (${err.message}).`,
              ),
            );
          if (claimsBundle(this.fileName))
            throw this.fail(
              refused(
                'not_a_bundle',
                `${this.fileName} is gzip-compressed but holds no tar archive; attach the real bundle.`,
              ),
            );
        }
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
