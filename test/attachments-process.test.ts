/**
 * Resumable uploads across real `bugzot serve` processes: the server SIGKILLed in the middle of an
 * upload, restarted, and the tus-js-client upload resumed to the right sha256; and two server processes
 * on one PostgreSQL database taking alternate chunks of one upload (local folder and S3 storage).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { Upload } from 'tus-js-client';
import { createApiKey, createUser, toViewer } from '../src/users/index.ts';
import type { Json } from './helpers/app.ts';
import { createTestDb, type TestDb, testDbKind } from './helpers/db.ts';
import { startS3, type TestS3 } from './helpers/s3.ts';

const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dirs: string[] = [];
const children: ChildProcess[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const close of closers) await close().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bugzot-att-proc-'));
  dirs.push(d);
  return d;
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/** The environment of a child server: none of the test runner's variables. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const {
    NODE_TEST_CONTEXT: _c,
    BUGZOT_TEST_DB: _d,
    BUGZOT_TEST_DATABASE_URL: _u,
    DATABASE_URL: _x,
    ...env
  } = process.env;
  return { ...env, NODE_ENV: 'test', LOG_LEVEL: 'warn', ...extra };
}

interface Server {
  url: string;
  child: ChildProcess;
  stderr(): string;
}

async function serve(port: number, env: Record<string, string>, extraArgs: string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [bin, 'serve', '--port', String(port), ...extraArgs], {
    env: childEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${err}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return { url, child, stderr: () => err };
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`serve did not become ready: ${err}`);
}

async function kill(s: Server): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGKILL');
  await exited;
}

async function api(url: string, key: string, method: string, path: string, body?: object): Promise<Json> {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status} ${JSON.stringify(data)}`);
  return data;
}

/** A product, release, component and bug made over the API; returns the bug id. */
async function makeBug(url: string, key: string): Promise<number> {
  const product = await api(url, key, 'POST', '/products', {
    name: `P${randomBytes(3).toString('hex')}`,
    is_released: true,
  });
  const version = await api(url, key, 'POST', `/products/${product.id}/versions`, {
    name: '1.0',
    is_released: true,
  });
  const component = await api(url, key, 'POST', `/products/${product.id}/components`, { name: 'Core' });
  const bug = await api(url, key, 'POST', '/bugs', {
    product_id: product.id,
    version_id: version.id,
    component_id: component.id,
    summary: 'Crash with bundle',
  });
  return bug.id as number;
}

/** An admin's API key: made in the database (PostgreSQL) or through the first start's admin (embedded). */
async function adminKey(testDb: TestDb | undefined, first: Server): Promise<string> {
  if (testDb) {
    const row = await createUser(testDb.db, {
      email: `admin.${randomBytes(3).toString('hex')}@example.test`,
      name: 'Admin',
      password: 'correct horse battery',
      kind: 'internal',
      isAdmin: true,
    });
    return (await createApiKey(testDb.db, toViewer(row), { name: 't', scope: 'read-write', expiresAt: null }))
      .key;
  }
  const m = /created the admin account (\S+) with password (\S+)/.exec(first.stderr());
  assert.ok(m, first.stderr());
  const signIn = await fetch(`${first.url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: m[1], password: m[2] }),
  });
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  const res = await fetch(`${first.url}/api/v1/api-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ name: 't', scope: 'read-write' }),
  });
  const data = (await res.json()) as Json;
  assert.ok(data.key, JSON.stringify(data));
  return data.key as string;
}

test('a server SIGKILLed in the middle of a tus upload, restarted: the upload resumes where it was and completes', async () => {
  const dataDir = tempDir();
  const testDb = testDbKind() === 'postgres' ? await createTestDb() : undefined;
  if (testDb) closers.push(() => testDb.close());
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    ...(testDb ? { DATABASE_URL: testDb.url! } : {}),
  };
  const port = await freePort();
  let server = await serve(port, env);
  const key = await adminKey(testDb, server);
  const bugId = await makeBug(server.url, key);
  const data = Buffer.from(
    randomBytes(24 * 1024 * 1024)
      .toString('base64')
      .slice(0, 24 * 1024 * 1024),
  );
  let killedAt = -1;
  let restarting: Promise<void> | undefined;
  const offsetsAfterRestart: number[] = [];
  const id = await new Promise<number>((resolve, reject) => {
    let attachmentId: number | undefined;
    const upload = new Upload(data, {
      endpoint: `${server.url}/api/v1/uploads`,
      headers: { authorization: `Bearer ${key}` },
      metadata: { filename: 'killed.log', bug_id: String(bugId) },
      chunkSize: 2 * 1024 * 1024,
      // Generous: an embedded database restarting on a busy machine takes a while.
      retryDelays: [200, 500, 1000, 1000, 2000, 2000, 3000, 3000, 3000, ...Array<number>(20).fill(5000)],
      storeFingerprintForResuming: false,
      onProgress(sent) {
        if (killedAt < 0 && sent > data.length * 0.45) {
          killedAt = sent;
          restarting = (async () => {
            await kill(server);
            server = await serve(port, env);
          })();
        }
      },
      onAfterResponse(req, res) {
        if (killedAt >= 0 && req.getMethod() === 'HEAD' && res.getStatus() === 200) {
          offsetsAfterRestart.push(Number(res.getHeader('Upload-Offset')));
        }
        const a = res.getHeader('Bugzot-Attachment-Id');
        if (a) attachmentId = Number(a);
      },
      onSuccess: () => (attachmentId ? resolve(attachmentId) : reject(new Error('no attachment id'))),
      onError: (err) =>
        reject(new Error(`upload failed: ${err.message}\nserver: ${server.stderr().slice(-2000)}`)),
    });
    upload.start();
  });
  await restarting;
  assert.ok(killedAt > 0, 'the server was killed mid-upload');
  assert.ok(offsetsAfterRestart.length > 0, 'the client asked the restarted server for the offset');
  assert.ok(offsetsAfterRestart[0]! > 0, 'and resumed from there rather than from the start');
  const a = await api(server.url, key, 'GET', `/attachments/${id}`);
  assert.equal(a.sha256, sha(data));
  assert.equal(a.size, data.length);
  await kill(server);
});

for (const backend of ['local', 's3'] as const) {
  test(`[${backend}] two server processes on one database take alternate chunks of one bundle upload`, {
    skip: testDbKind() !== 'postgres' && 'several processes need PostgreSQL (this pass is embedded PGlite)',
  }, async () => {
    const testDb = await createTestDb();
    closers.push(() => testDb.close());
    let s3: TestS3 | undefined;
    if (backend === 's3') {
      s3 = await startS3();
      closers.push(() => s3!.close());
    }
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, DATABASE_URL: testDb.url!, ...(s3?.env ?? {}) };
    const [a, b] = await Promise.all([
      freePort().then((p) => serve(p, env, ['--no-migrate'])),
      freePort().then((p) => serve(p, env, ['--no-migrate'])),
    ]);
    const key = await adminKey(testDb, a);
    const bugId = await makeBug(a.url, key);

    // A real bundle made by tar(1).
    const src = join(dataDir, 'src');
    mkdirSync(join(src, 'logs'), { recursive: true });
    const log = 'kernel: oops\n'.repeat(50_000);
    writeFileSync(join(src, 'logs/kern.log'), log);
    writeFileSync(join(src, 'blob.bin'), randomBytes(10 * 1024 * 1024));
    const tgz = join(dataDir, 'alt.tgz');
    await promisify(execFile)('tar', ['czf', tgz, '-C', src, 'logs', 'blob.bin']);
    const data = readFileSync(tgz);

    const meta = `filename ${Buffer.from('alt.tgz').toString('base64')},bug_id ${Buffer.from(String(bugId)).toString('base64')}`;
    const headers = { authorization: `Bearer ${key}`, 'tus-resumable': '1.0.0' };
    const created = await fetch(`${a.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { ...headers, 'upload-length': String(data.length), 'upload-metadata': meta },
    });
    assert.equal(created.status, 201);
    const path = created.headers.get('location')!;
    const chunk = Math.ceil(data.length / 5);
    let offset = 0;
    let attachmentId = 0;
    const servers = [a, b];
    for (let i = 0; offset < data.length; i++) {
      const server = servers[i % 2]!;
      const head = await fetch(`${server.url}${path}`, { method: 'HEAD', headers });
      assert.equal(Number(head.headers.get('upload-offset')), offset, `process ${i % 2} sees the offset`);
      const body = data.subarray(offset, offset + chunk);
      const res = await fetch(`${server.url}${path}`, {
        method: 'PATCH',
        headers: {
          ...headers,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
        },
        body: new Uint8Array(body),
      });
      assert.equal(res.status, 204, await res.text());
      offset += body.length;
      assert.equal(Number(res.headers.get('upload-offset')), offset);
      attachmentId = Number(res.headers.get('bugzot-attachment-id') ?? 0);
    }
    assert.ok(attachmentId > 0);
    const att = await api(b.url, key, 'GET', `/attachments/${attachmentId}`);
    assert.equal(att.sha256, sha(data));
    assert.equal(att.kind, 'bundle');
    const members = await api(a.url, key, 'GET', `/attachments/${attachmentId}/members`);
    const kern = (members.members as Json[]).find((m: Json) => m.path === 'logs/kern.log');
    assert.equal(kern.size, log.length);
    const text = await api(b.url, key, 'GET', kern.links.text.replace('/api/v1', ''));
    assert.equal(text.text, log.slice(0, 1024 * 1024));
    await Promise.all([kill(a), kill(b)]);
  });
}
