/**
 * The browser assets: every client entry is bundled by esbuild at startup and served from memory —
 * under a content-hashed URL cached for a year, and under its plain name with a strong ETag that is
 * revalidated. Pages link the hashed URLs, carry no inline script or handler, and the CSP allows only
 * our own scripts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { writeAssets } from '../src/web/assets.ts';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`assets (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  const page = async (url: string) => {
    const { cookie } = await t.session(w.users.dev);
    return t.request({ method: 'GET', url, headers: { cookie, accept: 'text/html' } });
  };

  test('the file-a-bug page links its bundle by content hash; the bytes served are the esbuild bundle', async () => {
    const res = await page('/bugs/new');
    const src = /<script src="(\/assets\/file-bug\.([0-9a-f]{16})\.js)" defer><\/script>/.exec(res.body);
    assert.ok(src, 'a deferred, hashed script tag');
    const js = await t.request({ method: 'GET', url: src[1]! });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.headers['etag'], `"${src[2]}"`);
    const expected = await build({
      entryPoints: [new URL('../src/web/client/file-bug.entry.ts', import.meta.url).pathname],
      bundle: true,
      minify: true,
      format: 'iife',
      target: 'es2020',
      platform: 'browser',
      write: false,
      legalComments: 'none',
      logLevel: 'silent',
    });
    assert.equal(js.body, expected.outputFiles[0]!.text, 'served exactly as esbuild bundles it');
    assert.doesNotMatch(js.body, /^\s*import\s|\bexport\s/m, 'one self-contained file');
    assert.match(js.body, /\/api\/v1\/products\//, 'the product choice code is in it');
    assert.ok(js.body.split('\n').length <= 2, 'minified');
  });

  test('the plain name has a strong ETag, is revalidated, and answers 304 when unchanged', async () => {
    const first = await t.request({ method: 'GET', url: '/assets/bug-page.js' });
    assert.equal(first.statusCode, 200);
    const etag = String(first.headers['etag']);
    assert.match(etag, /^"[0-9a-f]{16}"$/, 'strong, not W/');
    assert.equal(first.headers['cache-control'], 'public, no-cache');
    const again = await t.request({
      method: 'GET',
      url: '/assets/bug-page.js',
      headers: { 'if-none-match': etag },
    });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    // Another release's hash still gets the current file, but is not cached for long under it.
    const stale = await t.request({ method: 'GET', url: '/assets/bug-page.0123456789abcdef.js' });
    assert.equal(stale.statusCode, 200);
    assert.equal(stale.body, first.body);
    assert.equal(stale.headers['cache-control'], 'public, no-cache');
    const css = await page('/');
    const href = /<link rel="stylesheet" href="(\/assets\/app\.[0-9a-f]{16}\.css)"\/>/.exec(css.body);
    assert.ok(href, 'the stylesheet is linked by hash');
    const sheet = await t.request({ method: 'GET', url: href[1]! });
    assert.match(String(sheet.headers['content-type']), /^text\/css/);
    assert.match(sheet.body, /prefers-color-scheme: dark/);
    assert.equal(sheet.headers['cache-control'], 'public, max-age=31536000, immutable');
    // Browsers that accept it get brotli or gzip, each with its own strong ETag; the bytes are the same file.
    for (const [accept, encoding] of [
      ['gzip, deflate, br', 'br'],
      ['gzip', 'gzip'],
    ] as const) {
      const packed = await t.request({
        method: 'GET',
        url: '/assets/bug-page.js',
        headers: { 'accept-encoding': accept },
      });
      assert.equal(packed.headers['content-encoding'], encoding);
      assert.equal(packed.headers['vary'], 'accept-encoding');
      assert.equal(packed.headers['etag'], etag.replace(/"$/, `-${encoding}"`));
      const unpacked =
        encoding === 'br' ? brotliDecompressSync(packed.rawPayload) : gunzipSync(packed.rawPayload);
      assert.equal(unpacked.toString(), first.body);
      assert.ok(packed.rawPayload.length < first.rawPayload.length);
    }
    for (const bad of ['/assets/nothing.js', '/assets/..%2Fapp.ts', '/assets/app.css.map']) {
      assert.equal((await t.request({ method: 'GET', url: bad })).statusCode, 404, bad);
    }
  });

  test('every client entry is served; pages carry no inline script or handler; CSP allows only our scripts', async () => {
    const entries = readdirSync(new URL('../src/web/client/', import.meta.url)).filter((f) =>
      f.endsWith('.entry.ts'),
    );
    assert.ok(entries.includes('file-bug.entry.ts') && entries.includes('bug-page.entry.ts'));
    for (const e of entries) {
      const res = await t.request({ method: 'GET', url: `/assets/${e.replace('.entry.ts', '.js')}` });
      assert.equal(res.statusCode, 200, e);
    }
    for (const url of ['/', '/bugs/new', `/bugs/${w.bugs.public.id}`, '/account']) {
      const res = await page(url);
      assert.equal(res.statusCode, 200, url);
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /script-src 'self'(;|$)/, url);
      for (const tag of res.body.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)) {
        assert.match(tag[0], /^<script src="\/assets\/[a-z0-9.-]+\.js" defer>/, `${url}: ${tag[0]}`);
        assert.equal(tag[1], '', `${url}: no inline code`);
      }
      assert.doesNotMatch(res.body, /\son[a-z]+=/i, `${url}: no inline event handlers`);
    }
  });

  test('`bugzot assets --out DIR` writes the same files under the names the pages link, with .br and .gz', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bugzot-assets-'));
    try {
      const written = await writeAssets(root);
      const css = /href="\/assets\/(app\.[0-9a-f]{16}\.css)"/.exec((await page('/')).body)![1]!;
      const js = /src="\/assets\/(file-bug\.[0-9a-f]{16}\.js)"/.exec((await page('/bugs/new')).body)![1]!;
      for (const name of [css, js]) {
        const file = join(root, 'assets', name);
        assert.ok(written.includes(file), name);
        const served = await t.request({ method: 'GET', url: `/assets/${name}` });
        assert.equal(readFileSync(file, 'utf8'), served.body);
        assert.equal(brotliDecompressSync(readFileSync(`${file}.br`)).toString(), served.body);
        assert.equal(gunzipSync(readFileSync(`${file}.gz`)).toString(), served.body);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
