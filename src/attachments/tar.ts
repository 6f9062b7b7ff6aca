/**
 * A streaming reader of tar headers (ustar, GNU long names, pax `path`/`size`/`mtime`). It is fed the
 * uncompressed bytes of a bundle chunk by chunk, checks every header's checksum, skips member data
 * without copying it, and lists the members with where their data starts. It never holds more than one
 * header (or one capped long name) in memory.
 */

/** One member of a bundle. */
export interface TarMember {
  path: string;
  size: number;
  mtime: Date | null;
  type: 'file' | 'dir' | 'symlink' | 'link' | 'other';
  /** Offset of the member's data in the uncompressed tar stream. */
  dataOffset: number;
}

/** Raised when the bytes are not a well-formed tar archive. */
export class NotTar extends Error {}

const BLOCK = 512;
/** Longest GNU long name / pax header we read (larger ones are refused). */
const MAX_META = 1024 * 1024;

function octal(buf: Buffer, start: number, len: number): number {
  // GNU base-256 for large numbers: high bit of the first byte set.
  if (buf[start]! & 0x80) {
    let v = buf[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  let i = start;
  const end = start + len;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return Number.NaN;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  return digits ? v : 0;
}

function text(buf: Buffer, start: number, len: number): string {
  let end = start;
  while (end < start + len && buf[end] !== 0) end++;
  return buf.toString('utf8', start, end);
}

function checksumOk(h: Buffer): boolean {
  const stored = octal(h, 148, 8);
  if (Number.isNaN(stored)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function isZero(h: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (h[i] !== 0) return false;
  return true;
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(data.toString('ascii', at, space));
    if (!Number.isInteger(len) || len <= 0 || at + len > data.length) throw new NotTar('bad pax header');
    const record = data.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

/** Feeds on uncompressed tar bytes; collects members up to `maxListed`, counts all of them. */
export class TarReader {
  readonly members: TarMember[] = [];
  count = 0;
  /** Two zero blocks seen: the archive ended (what follows is padding). */
  ended = false;
  private position = 0;
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** Data bytes (plus padding) of the current member still to skip. */
  private skip = 0;
  /** When collecting a long name or pax header: its bytes and how many remain. */
  private meta: { kind: 'L' | 'x' | 'g'; parts: Buffer[]; left: number; pad: number } | undefined;
  private pending: { path?: string; size?: number; mtime?: number } = {};
  private zeroBlocks = 0;

  constructor(readonly maxListed: number) {}

  /** Whether at least one valid header was seen (the content really is tar). */
  get sawHeader(): boolean {
    return this.count > 0 || this.zeroBlocks > 0;
  }

  /** Total uncompressed bytes seen. */
  get bytes(): number {
    return this.position;
  }

  push(chunk: Buffer): void {
    let at = 0;
    const len = chunk.length;
    while (at < len) {
      if (this.ended) {
        this.position += len - at;
        return;
      }
      if (this.meta) {
        const m = this.meta;
        if (m.left > 0) {
          const n = Math.min(m.left, len - at);
          m.parts.push(Buffer.from(chunk.subarray(at, at + n)));
          m.left -= n;
          at += n;
          this.position += n;
          continue;
        }
        if (m.pad > 0) {
          const n = Math.min(m.pad, len - at);
          m.pad -= n;
          at += n;
          this.position += n;
          continue;
        }
        this.finishMeta();
        continue;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - at);
        this.skip -= n;
        at += n;
        this.position += n;
        continue;
      }
      // A header: parse straight from the chunk when whole, else gather it.
      if (this.headerFill === 0 && len - at >= BLOCK) {
        this.position += BLOCK;
        this.onHeader(chunk.subarray(at, at + BLOCK));
        at += BLOCK;
        continue;
      }
      const n = Math.min(BLOCK - this.headerFill, len - at);
      chunk.copy(this.header, this.headerFill, at, at + n);
      this.headerFill += n;
      at += n;
      this.position += n;
      if (this.headerFill === BLOCK) {
        this.headerFill = 0;
        this.onHeader(this.header);
      }
    }
    if (this.meta && this.meta.left === 0 && this.meta.pad === 0) this.finishMeta();
  }

  /** Checks the archive is complete; throws NotTar otherwise. */
  finish(): void {
    if (this.meta && this.meta.left === 0 && this.meta.pad === 0) this.finishMeta();
    if (!this.sawHeader) throw new NotTar('no tar header');
    if (this.skip > 0 || this.meta || this.headerFill > 0) throw new NotTar('the archive is truncated');
    // Some writers omit the end-of-archive blocks; a clean member boundary is accepted.
  }

  private finishMeta(): void {
    const m = this.meta!;
    this.meta = undefined;
    const data = Buffer.concat(m.parts);
    if (m.kind === 'L') this.pending.path = text(data, 0, data.length);
    else if (m.kind === 'x') {
      const pax = parsePax(data);
      const path = pax.get('path');
      if (path !== undefined) this.pending.path = path;
      const size = pax.get('size');
      if (size !== undefined && /^\d+$/.test(size)) this.pending.size = Number(size);
      const mtime = pax.get('mtime');
      if (mtime !== undefined && /^-?\d+(\.\d+)?$/.test(mtime)) this.pending.mtime = Number(mtime);
    }
  }

  private onHeader(h: Buffer): void {
    if (isZero(h)) {
      this.zeroBlocks++;
      if (this.zeroBlocks >= 2) this.ended = true;
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumOk(h)) {
      throw new NotTar(
        this.count === 0 ? 'not a tar archive' : `bad tar header at byte ${this.position - BLOCK}`,
      );
    }
    const flag = String.fromCharCode(h[156]!);
    let size = octal(h, 124, 12);
    if (Number.isNaN(size)) throw new NotTar('bad size field in tar header');
    const dataStart = this.position;
    if (flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g') {
      if (size > MAX_META) throw new NotTar('tar extended header too large');
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (flag === 'K') {
        this.skip = size + pad;
      } else {
        this.meta = { kind: flag as 'L' | 'x' | 'g', parts: [], left: size, pad };
      }
      return;
    }
    const magic = h.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\u000000' || magic === 'ustar\u0000' || magic.startsWith('ustar');
    let path = text(h, 0, 100);
    if (ustar && magic === 'ustar\u0000' && h[345] !== 0) {
      // POSIX ustar prefix (GNU archives use those bytes for other fields and say "ustar  ").
      path = `${text(h, 345, 155)}/${path}`;
    }
    if (this.pending.path !== undefined) path = this.pending.path;
    if (this.pending.size !== undefined) size = this.pending.size;
    const mtimeSec = this.pending.mtime ?? octal(h, 136, 12);
    this.pending = {};
    const type =
      flag === '0' || flag === '\u0000' || flag === '7'
        ? 'file'
        : flag === '5'
          ? 'dir'
          : flag === '2'
            ? 'symlink'
            : flag === '1'
              ? 'link'
              : 'other';
    // Links and directories carry no data whatever their size field says.
    const dataSize = type === 'file' || type === 'other' ? size : 0;
    this.count++;
    if (this.members.length < this.maxListed) {
      this.members.push({
        path,
        size: dataSize,
        mtime: Number.isFinite(mtimeSec) ? new Date(mtimeSec * 1000) : null,
        type,
        dataOffset: dataStart,
      });
    }
    this.skip = dataSize + ((BLOCK - (dataSize % BLOCK)) % BLOCK);
  }
}
