/**
 * Download answers: Content-Length, ETag (the SHA-256), single byte ranges (206/416), and headers that
 * keep user files from ever being rendered by the browser as a page of ours (attachment disposition,
 * nosniff, a sandboxing CSP, and a content type chosen from what was sniffed, never from the uploader).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

/** An inclusive byte range. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a Range header for a body of `size` bytes: a range, 'unsatisfiable' (416), or undefined when
 * there is none or it is not one we serve (several ranges, another unit: answered whole, as RFC 9110 allows).
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Number(m[2]);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return { start, end: Math.min(end, size - 1) };
}

/** Content-Disposition: attachment, with an ASCII fallback name and the exact UTF-8 one (RFC 6266). */
export function contentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}

/** Content types served as such; anything else is application/octet-stream. None renders as a page. */
const SAFE_TYPES = new Set([
  'text/plain; charset=utf-8',
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'application/pdf',
  'application/gzip',
  'application/zip',
]);

/** The headers every download carries. */
export function downloadHeaders(reply: FastifyReply, file: { fileName: string; contentType: string }): void {
  reply.headers({
    'content-type': SAFE_TYPES.has(file.contentType) ? file.contentType : 'application/octet-stream',
    'content-disposition': contentDisposition(file.fileName),
    'x-content-type-options': 'nosniff',
    'content-security-policy': "sandbox; default-src 'none'",
    'cache-control': 'private, no-cache',
    'cross-origin-resource-policy': 'same-origin',
  });
}

/**
 * Works out status, length and range of a download of `size` bytes with entity tag `etag`: 304 when
 * the client has it, 416 for a range past the end, 206 for a range, else 200.
 */
export function planDownload(
  request: FastifyRequest,
  size: number,
  etag: string,
): { status: 200 | 206 | 304 | 416; range?: ByteRange; length: number } {
  const inm = request.headers['if-none-match'];
  if (inm?.split(',').some((t) => t.trim() === etag || t.trim() === '*')) return { status: 304, length: 0 };
  const ifRange = request.headers['if-range'];
  const rangeHeader = ifRange && ifRange !== etag ? undefined : request.headers.range;
  const range = parseRange(rangeHeader, size);
  if (range === 'unsatisfiable') return { status: 416, length: 0 };
  if (range) return { status: 206, range, length: range.end - range.start + 1 };
  return { status: 200, length: size };
}
