/**
 * The attachment suite, run once per storage backend (test/attachments.test.ts: local folder;
 * test/attachments-s3.test.ts: s3rver). Real clients over a real socket: curl for the single-request
 * path, tus-js-client for resumable uploads, plain fetch for raw tus requests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { constants as zlibConstants, gzipSync } from 'node:zlib';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from 'tus-js-client';
import { createAttachmentsContext, runHousekeeping } from '../../src/attachments/index.ts';
import { sql } from '../../src/platform/db.ts';
import { type Json, startTestApp, type TestApp, type TestUser, world } from './app.ts';
import { startS3, type TestS3 } from './s3.ts';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A ustar header for one regular file of `size` bytes. */
export function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('14000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\u000000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/**
 * A .tgz whose one member is `size` zero bytes, compressed as hard as gzip can (~1000:1): the shape
 * of a decompression bomb when large. Built as concatenated gzip members (one per MiB of zeros, all
 * alike), which every gunzip reads as one stream, so no buffer of `size` bytes is ever made.
 */
export function zeroBundle(size: number): Buffer {
  const MiB = 1024 * 1024;
  const level = { level: zlibConstants.Z_BEST_COMPRESSION };
  const mib = gzipSync(Buffer.alloc(MiB), level);
  const parts = [gzipSync(tarHeader('zeros.img', size), level)];
  for (let i = 0; i < Math.floor(size / MiB); i++) parts.push(mib);
  const pad = (512 - (size % 512)) % 512;
  parts.push(gzipSync(Buffer.alloc((size % MiB) + pad + 1024), level));
  return Buffer.concat(parts);
}

/** Defines every attachment test against one storage backend. */
export function attachmentSuite(backend: 'local' | 's3') {
  const dir = mkdtempSync(join(tmpdir(), `bugzot-att-${backend}-`));
  let t: TestApp;
  let s3: TestS3 | undefined;
  let w: Awaited<ReturnType<typeof world>>;
  let base: string;
  let origin: string;

  before(async () => {
    if (backend === 's3') s3 = await startS3();
    t = await startTestApp({
      DATA_DIR: dir,
      ATTACHMENT_MAX_BYTES: String(48 * 1024 * 1024),
      ...(s3?.env ?? {}),
    });
    w = await world(t);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    origin = `http://127.0.0.1:${port}`;
    base = `${origin}/api/v1`;
  });
  after(async () => {
    await t?.close();
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every stored object (final and staged), as names. */
  async function storedObjects(): Promise<string[]> {
    if (backend === 'local') {
      const out: string[] = [];
      const walk = (d: string) => {
        let entries: string[] = [];
        try {
          entries = readdirSync(d);
        } catch {
          return;
        }
        for (const e of entries) {
          const p = join(d, e);
          if (statSync(p).isDirectory()) walk(p);
          else out.push(p);
        }
      };
      walk(join(dir, 'attachments'));
      return out.sort();
    }
    const client = new S3Client({
      endpoint: s3!.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const res = await client.send(new ListObjectsV2Command({ Bucket: s3!.bucket }));
    client.destroy();
    return (res.Contents ?? []).map((o) => o.Key!).sort();
  }

  function file(name: string, data: Buffer | string): string {
    const p = join(dir, name);
    writeFileSync(p, data);
    return p;
  }

  /** A real .tgz made by tar(1), with a log, a nested file and an empty file. */
  async function makeBundle(name: string): Promise<{ path: string; log: string }> {
    const src = join(dir, `${name}-src`);
    mkdirSync(join(src, 'var/log'), { recursive: true });
    const log = Array.from(
      { length: 2000 },
      (_, i) => `2026-11-23T10:00:${String(i % 60).padStart(2, '0')} line ${i}`,
    ).join('\n');
    writeFileSync(join(src, 'var/log/app.log'), log);
    writeFileSync(join(src, 'meminfo.txt'), 'MemTotal: 1 kB\n');
    writeFileSync(join(src, 'empty'), '');
    writeFileSync(join(src, 'random.bin'), randomBytes(300_000));
    const path = join(dir, name);
    await run('tar', ['czf', path, '-C', src, 'var', 'meminfo.txt', 'empty', 'random.bin']);
    return { path, log };
  }

  async function curl(
    path: string,
    url: string,
    as: TestUser,
    extra: string[] = [],
  ): Promise<{ status: number; body: Json }> {
    const { stdout } = await run('curl', [
      '-sS',
      '-m',
      '60',
      '-w',
      '\n%{http_code}',
      '-T',
      path,
      '-H',
      `authorization: Bearer ${as.key}`,
      ...extra,
      url,
    ]);
    const nl = stdout.lastIndexOf('\n');
    const text = stdout.slice(0, nl);
    return { status: Number(stdout.slice(nl + 1)), body: text ? JSON.parse(text) : undefined };
  }

  /** A tus-js-client upload of `data` to `bugId`; resolves with the attachment id. */
  function tusUpload(
    data: Buffer,
    opts: {
      as: TestUser;
      bugId: number;
      name: string;
      endpoint?: string;
      chunkSize?: number;
      onProgress?: (sent: number) => void;
    },
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      let attachmentId: number | undefined;
      const upload = new Upload(data, {
        endpoint: opts.endpoint ?? `${base}/uploads`,
        headers: { authorization: `Bearer ${opts.as.key}` },
        metadata: { filename: opts.name, bug_id: String(opts.bugId) },
        chunkSize: opts.chunkSize ?? Number.POSITIVE_INFINITY,
        retryDelays: [0, 100, 300, 500, 1000, 1000, 2000, 2000, 3000, 3000, 3000],
        storeFingerprintForResuming: false,
        onProgress: (sent) => opts.onProgress?.(sent),
        onAfterResponse: (_req, res) => {
          const id = res.getHeader('Bugzot-Attachment-Id');
          if (id) attachmentId = Number(id);
        },
        onSuccess: () =>
          attachmentId ? resolve(attachmentId) : reject(new Error('no attachment id on the last response')),
        onError: reject,
      });
      upload.start();
    });
  }

  async function download(id: number, as: TestUser, headers: Record<string, string> = {}) {
    const res = await fetch(`${base}/attachments/${id}/content`, { headers: { ...as.auth, ...headers } });
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  }

  const tusHeaders = (as: TestUser, more: Record<string, string> = {}) => ({
    ...as.auth,
    'tus-resumable': '1.0.0',
    ...more,
  });

  async function createTus(as: TestUser, bugId: number, name: string, length: number) {
    const meta = `filename ${Buffer.from(name).toString('base64')},bug_id ${Buffer.from(String(bugId)).toString('base64')}`;
    const res = await fetch(`${base}/uploads`, {
      method: 'POST',
      headers: tusHeaders(as, { 'upload-length': String(length), 'upload-metadata': meta }),
    });
    assert.equal(res.status, 201, await res.text());
    return new URL(res.headers.get('location')!, origin).toString();
  }

  const patch = (
    url: string,
    as: TestUser,
    offset: number,
    body: Buffer,
    more: Record<string, string> = {},
  ) =>
    fetch(url, {
      method: 'PATCH',
      headers: tusHeaders(as, {
        'content-type': 'application/offset+octet-stream',
        'upload-offset': String(offset),
        ...more,
      }),
      body: new Uint8Array(body),
    });

  test(`[${backend}] curl -T an empty file, a 3-byte note and a 3 MiB PDF: each stored with its own sha256`, async () => {
    const files: [string, Buffer, string][] = [
      ['empty.txt', Buffer.alloc(0), 'text'],
      ['note.txt', Buffer.from('ok\n'), 'text'],
      // Larger than a slot of the hashing thread, and not a multiple of one.
      ['scan.pdf', Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(3 * 1024 * 1024 + 77)]), 'pdf'],
    ];
    for (const [name, data, kind] of files) {
      const res = await curl(file(name, data), `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev);
      assert.equal(res.status, 201, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.kind, kind, name);
      assert.equal(res.body.size, data.length, name);
      assert.equal(res.body.sha256, sha(data), name);
      const { body } = await download(res.body.id, w.users.dev);
      assert.ok(body.equals(data), name);
    }
  });

  test(`[${backend}] curl -T a log: stored, sniffed as text, downloadable with length, sha256 ETag and safe headers`, async () => {
    const data = Buffer.from('<html><script>alert(1)</script></html>\nlog line\n'.repeat(500));
    const path = file('server.log', data);
    const res = await curl(path, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev, [
      '-H',
      'content-type: text/html',
    ]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.file_name, 'server.log');
    assert.equal(res.body.kind, 'text');
    assert.equal(res.body.size, data.length);
    assert.equal(res.body.sha256, sha(data));
    const { res: dl, body } = await download(res.body.id, w.users.alice);
    assert.equal(dl.status, 200);
    assert.ok(body.equals(data));
    assert.equal(dl.headers.get('content-length'), String(data.length));
    assert.equal(dl.headers.get('etag'), `"${sha(data)}"`);
    assert.match(dl.headers.get('content-disposition')!, /^attachment; filename="server.log"/);
    assert.equal(dl.headers.get('x-content-type-options'), 'nosniff');
    // Never served as HTML whatever the uploader said.
    assert.equal(dl.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.match(dl.headers.get('content-security-policy')!, /sandbox/);
    // The bug's history records it.
    const history = await t.request({
      method: 'GET',
      url: `/api/v1/bugs/${w.bugs.public.id}/history`,
      as: w.users.dev,
    });
    assert.ok(
      (history.data.history as Json[]).some(
        (h: Json) => h.field === 'attachment' && String(h.added).includes('server.log'),
      ),
      history.body,
    );
  });

  test(`[${backend}] a real .tgz bundle: members listed with sizes, one member's text read back, one member downloaded`, async () => {
    const { path, log } = await makeBundle('diag.tgz');
    const res = await curl(
      path,
      `${base}/bugs/${w.bugs.public.id}/attachments/diag.tgz?comment=Diagnostics%20from%20node%203`,
      w.users.alice,
    );
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.kind, 'bundle');
    assert.ok(res.body.comment_id);
    const id = res.body.id as number;
    const members = await t.request({
      method: 'GET',
      url: `/api/v1/attachments/${id}/members`,
      as: w.users.alice,
    });
    assert.equal(members.statusCode, 200, members.body);
    const byPath = new Map((members.data.members as Json[]).map((m: Json) => [m.path, m]));
    assert.equal(byPath.get('var/log/app.log')?.size, Buffer.byteLength(log));
    assert.equal(byPath.get('meminfo.txt')?.size, 15);
    assert.equal(byPath.get('empty')?.size, 0);
    assert.equal(byPath.get('random.bin')?.size, 300_000);
    assert.equal(byPath.get('var/log/')?.type, 'dir');
    const logMember = byPath.get('var/log/app.log');
    const text = await t.request({ method: 'GET', url: logMember.links.text, as: w.users.alice });
    assert.equal(text.statusCode, 200, text.body);
    assert.equal(text.data.text, log);
    assert.equal(text.data.truncated, false);
    const bin = byPath.get('random.bin');
    const binText = await t.request({ method: 'GET', url: bin.links.text, as: w.users.alice });
    assert.equal(binText.data.text, null, 'binary members are not shown as text');
    const dl = await fetch(`${origin}${logMember.links.content}`, { headers: w.users.alice.auth });
    assert.equal(dl.status, 200);
    assert.equal(await dl.text(), log);
    assert.match(dl.headers.get('content-disposition')!, /filename="app.log"/);
    const part = await fetch(`${origin}${logMember.links.content}`, {
      headers: { ...w.users.alice.auth, range: 'bytes=10-19' },
    });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), log.slice(10, 20));
  });

  test(`[${backend}] a text file renamed .tgz, and gzip without tar named .tgz, are refused and never appear`, async () => {
    const beforeObjects = await storedObjects();
    const fake = file('fake.tgz', 'just a text file\n'.repeat(100));
    const r1 = await curl(fake, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev);
    assert.equal(r1.status, 422);
    assert.equal(r1.body.error.code, 'not_a_bundle');
    const gz = file('fake2.tar.gz', gzipSync(Buffer.from('plain text, gzipped\n'.repeat(100))));
    const r2 = await curl(gz, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev);
    assert.equal(r2.status, 422);
    assert.equal(r2.body.error.code, 'not_a_bundle');
    // Truncated bundle: gzip cut short.
    const { path } = await makeBundle('whole.tgz');
    const whole = Buffer.from(await (await import('node:fs/promises')).readFile(path));
    const cut = file('cut.tgz', whole.subarray(0, Math.floor(whole.length / 2)));
    const r3 = await curl(cut, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev);
    assert.equal(r3.status, 422, JSON.stringify(r3.body));
    const list = await t.request({
      method: 'GET',
      url: `/api/v1/bugs/${w.bugs.public.id}/attachments`,
      as: w.users.dev,
    });
    const names = (list.data.attachments as Json[]).map((a: Json) => a.file_name);
    for (const n of ['fake.tgz', 'fake2.tar.gz', 'cut.tgz']) assert.ok(!names.includes(n), `${n} listed`);
    assert.deepEqual(await storedObjects(), beforeObjects, 'nothing kept in storage');
  });

  test(`[${backend}] a decompression bomb (.tgz inflating ~1000:1) is refused early with 422; nothing kept`, async () => {
    const beforeObjects = await storedObjects();
    // 256 MiB of zeros in ~250 KB: past the 64 MiB grace, far over BUNDLE_INSPECT_MAX_RATIO (200).
    const bomb = zeroBundle(256 * 1024 * 1024);
    assert.ok(bomb.length < 1024 * 1024, `bomb is ${bomb.length} bytes`);
    const started = performance.now();
    const r1 = await curl(
      file('bomb.tgz', bomb),
      `${base}/bugs/${w.bugs.public.id}/attachments/`,
      w.users.dev,
    );
    assert.equal(r1.status, 422, JSON.stringify(r1.body));
    assert.equal(r1.body.error.code, 'bundle_too_expanded');
    assert.match(r1.body.error.message, /BUNDLE_INSPECT_MAX_RATIO/);
    // The same bomb through tus, in two chunks: refused when the last chunk completes it.
    const url = await createTus(w.users.dev, w.bugs.public.id, 'bomb2.tgz', bomb.length);
    const half = Math.floor(bomb.length / 2);
    const p1 = await patch(url, w.users.dev, 0, bomb.subarray(0, half));
    const p2 = p1.status === 204 ? await patch(url, w.users.dev, half, bomb.subarray(half)) : p1;
    assert.equal(p2.status, 422);
    assert.equal(((await p2.json()) as Json).error.code, 'bundle_too_expanded');
    // It stopped at the cap (~64 MiB inflated twice), not after inflating 512 MiB.
    assert.ok(performance.now() - started < 20_000, 'refused without inflating everything');
    // A bundle of 16 MiB of zeros (under the 64 MiB grace) is an ordinary bundle.
    const fine = await curl(
      file('zeros.tgz', zeroBundle(16 * 1024 * 1024)),
      `${base}/bugs/${w.bugs.public.id}/attachments/`,
      w.users.dev,
    );
    assert.equal(fine.status, 201, JSON.stringify(fine.body));
    assert.equal(fine.body.kind, 'bundle');
    const list = await t.request({
      method: 'GET',
      url: `/api/v1/bugs/${w.bugs.public.id}/attachments`,
      as: w.users.dev,
    });
    const names = (list.data.attachments as Json[]).map((a: Json) => a.file_name);
    assert.ok(!names.includes('bomb.tgz') && !names.includes('bomb2.tgz'), 'bombs never listed');
    const removed = await t.request({
      method: 'DELETE',
      url: `/api/v1/attachments/${fine.body.id}`,
      as: w.users.admin,
    });
    assert.equal(removed.statusCode, 204);
    assert.deepEqual(await storedObjects(), beforeObjects, 'nothing kept in storage');
  });

  test(`[${backend}] over the size limit: 413 at once with Content-Length, 413 while streaming without; nothing kept`, async () => {
    const beforeObjects = await storedObjects();
    const big = file('big.log', Buffer.alloc(49 * 1024 * 1024, 0x61));
    const r1 = await curl(big, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev);
    assert.equal(r1.status, 413);
    assert.equal(r1.body.error.code, 'payload_too_large');
    const r2 = await curl(big, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev, [
      '-H',
      'transfer-encoding: chunked',
    ]);
    assert.equal(r2.status, 413);
    const tus = await fetch(`${base}/uploads`, {
      method: 'POST',
      headers: tusHeaders(w.users.dev, {
        'upload-length': String(49 * 1024 * 1024),
        'upload-metadata': `filename ${Buffer.from('big.log').toString('base64')},bug_id ${Buffer.from(String(w.bugs.public.id)).toString('base64')}`,
      }),
    });
    assert.equal(tus.status, 413);
    assert.deepEqual(await storedObjects(), beforeObjects);
  });

  test(`[${backend}] Range downloads: first bytes, open-ended, suffix, If-Range, unsatisfiable`, async () => {
    const data = randomBytes(100_000);
    const res = await curl(
      file('core.bin.log', Buffer.concat([Buffer.from('text head\n'), data])),
      `${base}/bugs/${w.bugs.public.id}/attachments/`,
      w.users.dev,
    );
    // Binary content is refused by default (not in ATTACHMENT_TYPES)...
    assert.equal(res.status, 415);
    const text = Buffer.from(Array.from({ length: 5000 }, (_, i) => `row ${i}\n`).join(''));
    const ok = await curl(
      file('rows.txt', text),
      `${base}/bugs/${w.bugs.public.id}/attachments/`,
      w.users.dev,
    );
    assert.equal(ok.status, 201);
    const id = ok.body.id as number;
    const etag = `"${sha(text)}"`;
    const a = await download(id, w.users.dev, { range: 'bytes=0-99' });
    assert.equal(a.res.status, 206);
    assert.equal(a.res.headers.get('content-range'), `bytes 0-99/${text.length}`);
    assert.ok(a.body.equals(text.subarray(0, 100)));
    const b = await download(id, w.users.dev, { range: `bytes=${text.length - 10}-` });
    assert.ok(b.body.equals(text.subarray(text.length - 10)));
    const c = await download(id, w.users.dev, { range: 'bytes=-5' });
    assert.equal(c.res.status, 206);
    assert.ok(c.body.equals(text.subarray(text.length - 5)));
    const d = await download(id, w.users.dev, { range: 'bytes=10-19', 'if-range': '"other"' });
    assert.equal(d.res.status, 200, 'a stale If-Range gets the whole file');
    assert.equal(d.body.length, text.length);
    const e = await download(id, w.users.dev, { range: 'bytes=10-19', 'if-range': etag });
    assert.equal(e.res.status, 206);
    const f = await download(id, w.users.dev, { range: `bytes=${text.length}-` });
    assert.equal(f.res.status, 416);
    assert.equal(f.res.headers.get('content-range'), `bytes */${text.length}`);
    const head = await fetch(`${base}/attachments/${id}/content`, {
      method: 'HEAD',
      headers: w.users.dev.auth,
    });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(text.length));
    assert.equal(head.headers.get('accept-ranges'), 'bytes');
    assert.equal(head.headers.get('etag'), etag);
    const g = await download(id, w.users.dev, { 'if-none-match': etag });
    assert.equal(g.res.status, 304);
  });

  test(`[${backend}] attachments of bugs the viewer may not see are 404, like missing ones; listings leave them out`, async () => {
    const secret = file('secret.txt', 'confidential stack trace\n');
    const r = await curl(secret, `${base}/bugs/${w.bugs.confidential.id}/attachments/`, w.users.dev);
    assert.equal(r.status, 201);
    const id = r.body.id as number;
    for (const url of [
      `/api/v1/attachments/${id}`,
      `/api/v1/attachments/${id}/content`,
      `/api/v1/attachments/999999`,
    ]) {
      const res = await t.request({ method: 'GET', url, as: w.users.alice });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.data.error.code, 'not_found');
    }
    const list = await t.request({
      method: 'GET',
      url: `/api/v1/bugs/${w.bugs.confidential.id}/attachments`,
      as: w.users.alice,
    });
    assert.equal(list.statusCode, 404);
    const all = await t.request({ method: 'GET', url: '/api/v1/attachments?limit=200', as: w.users.alice });
    assert.ok(!(all.data.attachments as Json[]).some((a: Json) => a.id === id));
    const staffAll = await t.request({
      method: 'GET',
      url: '/api/v1/attachments?limit=200',
      as: w.users.dev,
    });
    assert.ok((staffAll.data.attachments as Json[]).some((a: Json) => a.id === id));
    // Uploading to an invisible bug: 404 too (single request and tus).
    const up = await curl(secret, `${base}/bugs/${w.bugs.confidential.id}/attachments/`, w.users.alice);
    assert.equal(up.status, 404);
    const meta = `filename ${Buffer.from('x.txt').toString('base64')},bug_id ${Buffer.from(String(w.bugs.internal.id)).toString('base64')}`;
    const tus = await fetch(`${base}/uploads`, {
      method: 'POST',
      headers: tusHeaders(w.users.bob, { 'upload-length': '3', 'upload-metadata': meta }),
    });
    assert.equal(tus.status, 404);
    // Without credentials: 401.
    const anon = await fetch(`${base}/attachments/${id}/content`);
    assert.equal(anon.status, 401);
  });

  test(`[${backend}] tus-js-client: the connection cut at random offsets, resumed to completion with the same sha256`, async () => {
    const data = Buffer.concat([
      Buffer.from('log start\n'),
      Buffer.from(randomBytes(9 * 1024 * 1024).toString('base64')),
    ]);
    // A proxy that cuts the connection once the bytes through it pass each cut point.
    const cuts = [0.15, 0.4, 0.7].map((f) => Math.floor(f * data.length + Math.random() * 100_000));
    let through = 0;
    let cutsDone = 0;
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = createConnection(Number(new URL(origin).port), '127.0.0.1');
      sockets.add(client);
      client.on('data', (chunk) => {
        through += chunk.length;
        if (cutsDone < cuts.length && through >= cuts[cutsDone]!) {
          cutsDone++;
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (c) => client.write(c));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyPort = (proxy.address() as { port: number }).port;
    try {
      const id = await tusUpload(data, {
        as: w.users.alice,
        bugId: w.bugs.aliceOwn.id,
        name: 'cut.log',
        endpoint: `http://127.0.0.1:${proxyPort}/api/v1/uploads`,
      });
      assert.equal(cutsDone, 3, 'the connection was cut three times');
      const a = await t.request({ method: 'GET', url: `/api/v1/attachments/${id}`, as: w.users.alice });
      assert.equal(a.data.sha256, sha(data));
      assert.equal(a.data.size, data.length);
      const { body } = await download(id, w.users.alice);
      assert.ok(body.equals(data));
    } finally {
      for (const s of sockets) s.destroy();
      proxy.close();
    }
  });

  test(`[${backend}] tus with chunks: a bundle in 5 MiB chunks becomes an attachment with its members`, async () => {
    const { path } = await makeBundle('chunked.tgz');
    const src = join(dir, 'chunked.tgz-src');
    writeFileSync(join(src, 'big.bin'), randomBytes(12 * 1024 * 1024));
    await run('tar', ['czf', path, '-C', src, '.']);
    const data = Buffer.from(await (await import('node:fs/promises')).readFile(path));
    let progress = 0;
    const id = await tusUpload(data, {
      as: w.users.dev,
      bugId: w.bugs.public.id,
      name: 'chunked.tgz',
      chunkSize: 5 * 1024 * 1024,
      onProgress: (s) => {
        progress = s;
      },
    });
    assert.equal(progress, data.length);
    const a = await t.request({ method: 'GET', url: `/api/v1/attachments/${id}/members`, as: w.users.dev });
    assert.equal(a.data.attachment.sha256, sha(data));
    assert.ok(
      (a.data.members as Json[]).some((m: Json) => m.path === './big.bin' && m.size === 12 * 1024 * 1024),
    );
  });

  test(`[${backend}] tus: wrong checksum 460 (nothing kept), offset mismatch 409, bad version 412, then completes`, async () => {
    const data = Buffer.from('0123456789'.repeat(1000));
    const url = await createTus(w.users.dev, w.bugs.public.id, 'checked.txt', data.length);
    const first = data.subarray(0, 4000);
    const wrong = createHash('sha256').update('something else').digest('base64');
    const r460 = await patch(url, w.users.dev, 0, first, { 'upload-checksum': `sha256 ${wrong}` });
    assert.equal(r460.status, 460);
    assert.equal((await r460.json()).error.code, 'checksum_mismatch');
    let head = await fetch(url, { method: 'HEAD', headers: tusHeaders(w.users.dev) });
    assert.equal(head.headers.get('upload-offset'), '0');
    const right = createHash('sha256').update(first).digest('base64');
    const ok = await patch(url, w.users.dev, 0, first, { 'upload-checksum': `sha256 ${right}` });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('upload-offset'), '4000');
    assert.ok(ok.headers.get('upload-expires'));
    assert.equal(ok.headers.get('tus-resumable'), '1.0.0');
    const r409 = await patch(url, w.users.dev, 3000, data.subarray(3000));
    assert.equal(r409.status, 409);
    const r412 = await fetch(url, { method: 'HEAD', headers: w.users.dev.auth });
    assert.equal(r412.status, 412);
    const unsupported = await patch(url, w.users.dev, 4000, data.subarray(4000), {
      'upload-checksum': 'md5 AAAA',
    });
    assert.equal(unsupported.status, 400);
    // Someone else's upload: 404.
    const other = await patch(url, w.users.bob, 4000, data.subarray(4000));
    assert.equal(other.status, 404);
    const done = await patch(url, w.users.dev, 4000, data.subarray(4000));
    assert.equal(done.status, 204);
    const id = Number(done.headers.get('bugzot-attachment-id'));
    const a = await t.request({ method: 'GET', url: `/api/v1/attachments/${id}`, as: w.users.dev });
    assert.equal(a.data.sha256, sha(data));
    head = await fetch(url, { method: 'HEAD', headers: tusHeaders(w.users.dev) });
    assert.equal(head.status, 404, 'a finished upload is gone');
    const options = await fetch(`${base}/uploads`, { method: 'OPTIONS' });
    assert.equal(options.status, 204);
    assert.match(
      options.headers.get('tus-extension')!,
      /creation-with-upload.*expiration.*termination.*checksum/,
    );
    assert.equal(options.headers.get('tus-checksum-algorithm'), 'sha256');
  });

  test(`[${backend}] tus: a chunk sent while another is being written gets 423; the first completes, then the next`, async () => {
    // A log (text: accepted by the default list), 3 MiB.
    const data = Buffer.from(randomBytes(3 * 768 * 1024).toString('base64'));
    const url = await createTus(w.users.dev, w.bugs.public.id, 'held.log', data.length);
    const target = new URL(url);
    // The first chunk's request: headers and 1 MiB of a 2 MiB body, then a pause (it holds the lease).
    const held = createConnection({ host: target.hostname, port: Number(target.port) });
    await new Promise<void>((resolve) => held.once('connect', () => resolve()));
    const headers = {
      ...tusHeaders(w.users.dev, {
        'content-type': 'application/offset+octet-stream',
        'upload-offset': '0',
        'content-length': String(2 * 1024 * 1024),
      }),
      host: target.host,
    };
    held.write(
      `PATCH ${target.pathname} HTTP/1.1\r\n${Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('')}\r\n`,
    );
    held.write(data.subarray(0, 1024 * 1024));
    const answer = new Promise<string>((resolve) => {
      let text = '';
      held.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    // Wait until the server is writing it (its offset is still 0: nothing is recorded before the end).
    for (let i = 0; i < 100; i++) {
      const row = await t.db.query<{ active: boolean }>(
        sql`SELECT lease_token IS NOT NULL AS active FROM uploads WHERE id = ${target.pathname.split('/').pop()!}`,
      );
      if (row[0]?.active) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const busy = await patch(url, w.users.dev, 0, data.subarray(0, 1024 * 1024));
    assert.equal(busy.status, 423);
    assert.equal((await busy.json()).error.code, 'upload_locked');
    // Someone else's upload is still a 404, locked or not.
    assert.equal((await patch(url, w.users.bob, 0, data.subarray(0, 10))).status, 404);
    held.write(data.subarray(1024 * 1024, 2 * 1024 * 1024));
    assert.match(await answer, /^HTTP\/1\.1 204[\s\S]*upload-offset: 2097152/i);
    held.destroy();
    const stale = await patch(url, w.users.dev, 0, data.subarray(0, 10));
    assert.equal(stale.status, 409, 'the offset moved on');
    const done = await patch(url, w.users.dev, 2 * 1024 * 1024, data.subarray(2 * 1024 * 1024));
    assert.equal(done.status, 204);
    const id = Number(done.headers.get('bugzot-attachment-id'));
    const a = await t.request({ method: 'GET', url: `/api/v1/attachments/${id}`, as: w.users.dev });
    assert.equal(a.data.sha256, sha(data));
  });

  test(`[${backend}] tus: creation-with-upload, termination removes the bytes, expiry and housekeeping`, async () => {
    const beforeObjects = await storedObjects();
    const meta = `filename ${Buffer.from('partial.log').toString('base64')},bug_id ${Buffer.from(String(w.bugs.public.id)).toString('base64')}`;
    const created = await fetch(`${base}/uploads`, {
      method: 'POST',
      headers: tusHeaders(w.users.dev, {
        'upload-length': String(20 * 1024 * 1024),
        'upload-metadata': meta,
        'content-type': 'application/offset+octet-stream',
      }),
      body: new Uint8Array(9 * 1024 * 1024).fill(0x62),
    });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('upload-offset'), String(9 * 1024 * 1024));
    const url = new URL(created.headers.get('location')!, origin).toString();
    const del = await fetch(url, { method: 'DELETE', headers: tusHeaders(w.users.dev) });
    assert.equal(del.status, 204);
    assert.equal((await fetch(url, { method: 'HEAD', headers: tusHeaders(w.users.dev) })).status, 404);
    assert.deepEqual(
      await storedObjects(),
      beforeObjects,
      `terminated upload left no bytes ${JSON.stringify(await storedObjects())}`,
    );

    const url2 = await createTus(w.users.dev, w.bugs.public.id, 'stale.log', 10 * 1024 * 1024);
    assert.equal((await patch(url2, w.users.dev, 0, Buffer.alloc(6 * 1024 * 1024, 0x63))).status, 204);
    assert.notDeepEqual(await storedObjects(), beforeObjects);
    await t.db.query(sql`UPDATE uploads SET expires_at = now() - interval '1 minute'`);
    assert.equal((await fetch(url2, { method: 'HEAD', headers: tusHeaders(w.users.dev) })).status, 410);
    assert.equal((await patch(url2, w.users.dev, 6 * 1024 * 1024, Buffer.alloc(10))).status, 410);
    // A housekeeping run as another process would make it: its own context on the same database and storage.
    const ctx = createAttachmentsContext({
      config: t.config,
      db: t.db,
      bus: undefined as never,
      log: console,
    });
    const report = await runHousekeeping(ctx);
    await ctx.storage.close();
    assert.equal(report.expiredUploads, 1);
    assert.equal((await fetch(url2, { method: 'HEAD', headers: tusHeaders(w.users.dev) })).status, 404);
    assert.deepEqual(await storedObjects(), beforeObjects, 'expired upload bytes removed');
  });

  test(`[${backend}] 20 uploads at once (10 curl, 10 tus) all land with their own sha256`, async () => {
    const files = Array.from({ length: 20 }, (_, i) =>
      Buffer.from(`upload ${i}\n${randomBytes(300_000 + i * 1000).toString('hex')}\n`),
    );
    const ids = await Promise.all(
      files.map(async (data, i) => {
        if (i % 2 === 0) {
          const r = await curl(
            file(`many-${i}.log`, data),
            `${base}/bugs/${w.bugs.public.id}/attachments/`,
            w.users.dev,
          );
          assert.equal(r.status, 201);
          return r.body.id as number;
        }
        return tusUpload(data, {
          as: w.users.dev,
          bugId: w.bugs.public.id,
          name: `many-${i}.log`,
          chunkSize: 256 * 1024,
        });
      }),
    );
    for (const [i, id] of ids.entries()) {
      const a = await t.request({ method: 'GET', url: `/api/v1/attachments/${id}`, as: w.users.dev });
      assert.equal(a.data.file_name, `many-${i}.log`);
      assert.equal(a.data.sha256, sha(files[i]!));
    }
  });

  test(`[${backend}] support listing: filters by product, bug, uploader, kind, date, size; newest or largest first; paging`, async () => {
    const all = await t.request({ method: 'GET', url: '/api/v1/attachments?limit=200', as: w.users.admin });
    assert.equal(all.statusCode, 200, all.body);
    const rows = all.data.attachments as Json[];
    assert.ok(rows.length >= 25);
    const ids = rows.map((r: Json) => r.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => b - a),
      'newest first',
    );
    const largest = await t.request({
      method: 'GET',
      url: '/api/v1/attachments?sort=largest&limit=5',
      as: w.users.admin,
    });
    const sizes = (largest.data.attachments as Json[]).map((r: Json) => r.size);
    assert.deepEqual(
      sizes,
      [...sizes].sort((a, b) => b - a),
    );
    assert.equal(sizes[0], Math.max(...rows.map((r: Json) => r.size)));
    const page2 = await t.request({
      method: 'GET',
      url: `/api/v1/attachments?sort=largest&limit=5&cursor=${largest.data.next_cursor}`,
      as: w.users.admin,
    });
    assert.ok((page2.data.attachments as Json[]).every((r: Json) => r.size <= sizes[4]));
    const bundles = await t.request({
      method: 'GET',
      url: '/api/v1/attachments?kind=bundle',
      as: w.users.admin,
    });
    assert.ok((bundles.data.attachments as Json[]).length >= 2);
    assert.ok((bundles.data.attachments as Json[]).every((r: Json) => r.kind === 'bundle'));
    const byAlice = await t.request({
      method: 'GET',
      url: `/api/v1/attachments?uploader_id=${w.users.alice.id}`,
      as: w.users.admin,
    });
    assert.ok((byAlice.data.attachments as Json[]).every((r: Json) => r.uploader.id === w.users.alice.id));
    const bySize = await t.request({
      method: 'GET',
      url: '/api/v1/attachments?min_size=1000000&max_size=20000000',
      as: w.users.admin,
    });
    assert.ok((bySize.data.attachments as Json[]).every((r: Json) => r.size >= 1e6 && r.size <= 2e7));
    const byBug = await t.request({
      method: 'GET',
      url: `/api/v1/attachments?bug_id=${w.bugs.aliceOwn.id}&product_id=${w.products.omega.id}`,
      as: w.users.admin,
    });
    assert.ok((byBug.data.attachments as Json[]).length >= 1);
    assert.ok((byBug.data.attachments as Json[]).every((r: Json) => r.bug_id === w.bugs.aliceOwn.id));
    const future = await t.request({
      method: 'GET',
      url: '/api/v1/attachments?since=2999-01-01T00:00:00Z',
      as: w.users.admin,
    });
    assert.equal((future.data.attachments as Json[]).length, 0);
    const orion = await t.request({
      method: 'GET',
      url: `/api/v1/attachments?product_id=${w.products.orion.id}`,
      as: w.users.admin,
    });
    assert.equal((orion.data.attachments as Json[]).length, 0);
    const bad = await t.request({ method: 'GET', url: '/api/v1/attachments?kind=exe', as: w.users.admin });
    assert.equal(bad.statusCode, 400);
  });

  test(`[${backend}] storage failures: a full store answers 507, an unreachable one 503; no attachment appears`, async () => {
    const count = async () =>
      (
        (await t.request({ method: 'GET', url: '/api/v1/attachments?limit=200', as: w.users.admin })).data
          .attachments as Json[]
      ).length;
    const before = await count();
    const beforeObjects = await storedObjects();
    const data = file('crash.log', Buffer.alloc(5 * 1024 * 1024, 0x41));
    if (backend === 'local') {
      const staging = join(dir, 'attachments', 'staging');
      mkdirSync(staging, { recursive: true });
      // A full disk: a 1 MiB tmpfs over the staging folder (needs root; skipped without).
      let mounted = false;
      try {
        await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', staging]);
        mounted = true;
      } catch {
        // not permitted here
      }
      if (mounted) {
        try {
          const full = await curl(data, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev);
          assert.equal(full.status, 507, JSON.stringify(full.body));
          assert.equal(full.body.error.code, 'insufficient_storage');
          assert.deepEqual(readdirSync(staging), [], 'the partial file was removed');
        } finally {
          await run('umount', [staging]);
        }
      }
      // Unusable storage: the staging folder replaced by a file.
      const { renameSync } = await import('node:fs');
      renameSync(staging, `${staging}.away`);
      writeFileSync(staging, '');
      try {
        const down = await curl(data, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev);
        assert.equal(down.status, 503, JSON.stringify(down.body));
        assert.equal(down.body.error.code, 'storage_unavailable');
        assert.doesNotMatch(JSON.stringify(down.body), /ENOTDIR|staging/, 'no internals in the answer');
      } finally {
        rmSync(staging);
        renameSync(`${staging}.away`, staging);
      }
    } else {
      await s3!.stop();
      try {
        const down = await curl(data, `${base}/bugs/${w.bugs.public.id}/attachments/`, w.users.dev);
        assert.equal(down.status, 503, JSON.stringify(down.body));
        assert.equal(down.body.error.code, 'storage_unavailable');
        const url = await createTus(w.users.dev, w.bugs.public.id, 'down.log', 1000);
        const r = await patch(url, w.users.dev, 0, Buffer.alloc(1000, 0x41));
        assert.equal(r.status, 503);
        const head = await fetch(url, { method: 'HEAD', headers: tusHeaders(w.users.dev) });
        assert.equal(head.headers.get('upload-offset'), '0');
        await fetch(url, { method: 'DELETE', headers: tusHeaders(w.users.dev) });
      } finally {
        await s3!.start();
      }
    }
    assert.equal(await count(), before);
    assert.deepEqual(await storedObjects(), beforeObjects);
  });

  test(`[${backend}] admins delete an attachment and its bytes; others may not`, async () => {
    const r = await curl(
      file('delete-me.txt', 'bye\n'),
      `${base}/bugs/${w.bugs.public.id}/attachments/`,
      w.users.dev,
    );
    const id = r.body.id as number;
    const byDev = await t.request({ method: 'DELETE', url: `/api/v1/attachments/${id}`, as: w.users.dev });
    assert.equal(byDev.statusCode, 403);
    const secret = await curl(
      file('s.txt', 'x\n'),
      `${base}/bugs/${w.bugs.internal.id}/attachments/`,
      w.users.dev,
    );
    const byAlice = await t.request({
      method: 'DELETE',
      url: `/api/v1/attachments/${secret.body.id}`,
      as: w.users.alice,
    });
    assert.equal(byAlice.statusCode, 404);
    const objects = await storedObjects();
    const ok = await t.request({ method: 'DELETE', url: `/api/v1/attachments/${id}`, as: w.users.admin });
    assert.equal(ok.statusCode, 204);
    assert.equal(
      (await t.request({ method: 'GET', url: `/api/v1/attachments/${id}`, as: w.users.admin })).statusCode,
      404,
    );
    assert.equal((await storedObjects()).length, objects.length - 1);
  });
}
