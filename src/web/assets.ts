/**
 * Static assets of the pages: the stylesheet and the browser scripts. Every `src/web/client/*.entry.ts`
 * is bundled with esbuild once per process at startup (minified ES2020, one self-contained file each,
 * kept in memory), so `npm start` needs no build step. Each asset is served twice:
 *   /assets/<name>.<hash>.<ext>  immutable, cached for a year (what the pages link to: `assetUrl`);
 *   /assets/<name>.<ext>         strong ETag, revalidated on every use (stable name for hand-written links).
 * Each is also compressed once (brotli and gzip) and sent so to browsers that accept it: the embedded
 * server has no proxy in front to do that, and it keeps pages within their weight budget.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** One asset held in memory. */
export interface Asset {
  /** File name as linked without a hash: `app.css`, `file-bug.js`. */
  name: string;
  type: string;
  body: Buffer;
  /** The body compressed, for clients that accept it. */
  br: Buffer;
  gzip: Buffer;
  /** First 16 hex digits of the body's SHA-256. */
  hash: string;
}

const CLIENT_DIR = fileURLToPath(new URL('./client/', import.meta.url));
const STYLESHEET = new URL('./assets/app.css', import.meta.url);
const ENTRY = /^([a-z0-9-]+)\.entry\.ts$/;

function asset(name: string, type: string, body: Buffer): Asset {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
  const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
  return { name, type, body, br, gzip: gzipSync(body, { level: 9 }), hash };
}

/** Bundles one browser entry: everything it imports in one minified file, no module loader needed. */
async function bundle(file: string): Promise<Buffer> {
  const result = await build({
    entryPoints: [`${CLIENT_DIR}${file}`],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2020',
    platform: 'browser',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error(`esbuild produced nothing for src/web/client/${file}`);
  return Buffer.from(out.contents);
}

/** Builds every asset: the stylesheet as written, each client entry bundled. */
export async function buildAssets(): Promise<Map<string, Asset>> {
  const entries = readdirSync(CLIENT_DIR).filter((f) => ENTRY.test(f));
  const scripts = await Promise.all(
    entries.map(async (file) => {
      const name = `${ENTRY.exec(file)![1]}.js`;
      try {
        return asset(name, 'text/javascript; charset=utf-8', await bundle(file));
      } catch (err) {
        // A broken entry is a broken release: stop at start, naming the file, rather than serve pages without it.
        throw new Error(`Cannot bundle src/web/client/${file}: ${(err as Error).message}`);
      }
    }),
  );
  const all = [asset('app.css', 'text/css; charset=utf-8', readFileSync(STYLESHEET)), ...scripts];
  return new Map(all.map((a) => [a.name, a]));
}

/** The process-wide bundle: built on first use, shared by every app this process builds (tests build many). */
let loading: Promise<Map<string, Asset>> | undefined;
let loaded: Map<string, Asset> | undefined;

/** Loads the assets once per process. */
export async function loadAssets(): Promise<Map<string, Asset>> {
  loading ??= buildAssets().then((m) => {
    loaded = m;
    return m;
  });
  try {
    return await loading;
  } catch (err) {
    loading = undefined;
    throw err;
  }
}

/**
 * The URL a page links an asset by (`app.css`, `file-bug.js`): with its content hash, so browsers keep it
 * for a year and a new release is fetched at once. Before the assets are loaded, the plain name.
 */
export function assetUrl(name: string): string {
  const a = loaded?.get(name);
  return a ? `/assets/${hashedName(a)}` : `/assets/${name}`;
}

/**
 * A deferred script tag for a bundled client entry; usable in TSX as `<Script name="upload" />`.
 * Nothing for an entry that does not exist (pages work without their scripts; no 404 in the console).
 */
export function Script(props: { name: string }): string {
  if (loaded && !loaded.has(`${props.name}.js`)) return '';
  // The URL is built from [a-z0-9-] names and hex digits only: nothing in it needs escaping.
  return `<script src="${assetUrl(`${props.name}.js`)}" defer></script>`;
}

/**
 * Writes every asset under its hashed name (with `.br` and `.gz` beside it) into `<root>/assets/`, for a
 * proxy to serve from disk with `root <root>` (`bugzot assets --out <root>`; see deploy/nginx). Returns
 * the paths written.
 */
export async function writeAssets(root: string): Promise<string[]> {
  const dir = join(root, 'assets');
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const a of (await buildAssets()).values()) {
    const file = hashedName(a);
    for (const [suffix, body] of [
      ['', a.body],
      ['.br', a.br],
      ['.gz', a.gzip],
    ] as const) {
      writeFileSync(join(dir, file + suffix), body);
      written.push(join(dir, file + suffix));
    }
  }
  return written;
}

function hashedName(a: Asset): string {
  const dot = a.name.lastIndexOf('.');
  return `${a.name.slice(0, dot)}.${a.hash}${a.name.slice(dot)}`;
}

const ASSET_PATH = /^([a-z0-9-]+)(?:\.([0-9a-f]{16}))?\.(js|css)$/;

function serve(request: FastifyRequest, reply: FastifyReply, assets: Map<string, Asset>, file: string) {
  const m = ASSET_PATH.exec(file);
  const a = m ? assets.get(`${m[1]}.${m[3]}`) : undefined;
  if (!m || !a) return reply.callNotFound();
  // An older or newer hash (a page from another release during a rolling deploy) still gets the current
  // file, but never cached for long under a name that does not match it.
  const immutable = m[2] === a.hash;
  const accepted = String(request.headers['accept-encoding'] ?? '');
  // Each encoding is its own representation, with its own strong ETag.
  const [encoding, body] = /\bbr\b/.test(accepted)
    ? (['br', a.br] as const)
    : /\bgzip\b/.test(accepted)
      ? (['gzip', a.gzip] as const)
      : ([undefined, a.body] as const);
  const etag = `"${a.hash}${encoding ? `-${encoding}` : ''}"`;
  reply
    .type(a.type)
    .header('etag', etag)
    .header('vary', 'accept-encoding')
    .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'public, no-cache');
  const inm = request.headers['if-none-match'];
  if (inm?.split(',').some((t) => t.trim() === etag)) return reply.code(304).send();
  if (encoding) reply.header('content-encoding', encoding);
  return reply.send(body);
}

/** Registers GET /assets/:file; bundles the client entries first (once per process). */
export async function assetRoutes(app: FastifyInstance) {
  const assets = await loadAssets();
  app.get<{ Params: { file: string } }>(
    '/assets/:file',
    { config: { public: true } },
    async (request, reply) => serve(request, reply, assets, request.params.file),
  );
}
