/**
 * Production as deploy/ describes it, on this machine: PostgreSQL, Redis, two Bugzot servers (`bugzot serve`,
 * WORKERS=2 each, on their own ports) behind the shipped nginx configuration (TLS, 20 r/s per client address).
 *
 * Shows: a session made through one server works through the other; a change made through one is never served
 * stale by the other; nginx answers 429 past 20 r/s from one address while another address is served; a server
 * killed outright -> nginx fails over, no idempotent request lost; Redis stopped -> still serving, readiness
 * degraded, then recovered; a SIGHUP rolling restart under load through nginx -> 0 failed requests; /metrics
 * through nginx is Prometheus text. Runs in the PostgreSQL pass (several processes cannot share PGlite).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Upload } from 'tus-js-client';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';
import { nginxHarness, nginxPath, type RunningNginx, startNginx } from './helpers/nginx.ts';
import { redisServerPath, startRedis, type TestRedis } from './helpers/redis.ts';

const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;
const runs = testDbKind() === 'postgres';
const missing = [nginxPath() ? undefined : 'nginx', redisServerPath() ? undefined : 'redis-server'].filter(
  Boolean,
);
if (runs && missing.length && process.env['CI'] === 'true')
  throw new Error(`not installed: ${missing.join(', ')}`);
/** Test option: the reason to skip, or false to run (an empty string would still count as a skip). */
const skip: string | false = !runs
  ? 'runs in the PostgreSQL pass'
  : missing.length
    ? `not installed: ${missing.join(', ')}`
    : false;

const dir = mkdtempSync(join(tmpdir(), 'bugzot-prod-'));
let t: TestApp;
let w: Awaited<ReturnType<typeof world>>;
let redis: TestRedis;
let nginx: RunningNginx;
let nginxPort = 0;
const servers: Record<'a' | 'b', Server> = {} as Record<'a' | 'b', Server>;

interface Server {
  port: number;
  child: ChildProcess;
  out: () => string;
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  return port;
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
  return { ...env, ...extra };
}

async function startServer(port: number): Promise<Server> {
  const child = spawn(process.execPath, [bin, 'serve', '--no-migrate'], {
    env: cleanEnv({
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      WORKERS: '2',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: t.testDb.url ?? '',
      REDIS_URL: redis.url,
      TRUST_PROXY: '127.0.0.1',
      BASE_URL: `https://127.0.0.1:${nginxPort}`,
      // The app's own limit is per key/user; nginx's per-address limit is what this suite shows.
      RATE_LIMIT_PER_MINUTE: '0',
      WORKER_IN_PROCESS: 'false',
      // One attachments folder for both servers, as a shared volume (or S3) would be.
      DATA_DIR: join(dir, 'data'),
      STORAGE_BACKEND: 'local',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const deadline = Date.now() + 120_000;
  while (!/all workers serving/.test(out)) {
    if (child.exitCode !== null) throw new Error(`server on ${port} exited (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`server on ${port} did not start:\n${out}`);
    await sleep(100);
  }
  return { port, child, out: () => out };
}

/** Requests through nginx's TLS port (self-signed certificate), from a chosen loopback address. */
const agents = new Map<string, Agent>();
function viaNginx(
  path: string,
  opts: { from?: string; method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const from = opts.from ?? '127.0.0.1';
  let agent = agents.get(from);
  if (!agent) {
    agent = new Agent({ keepAlive: true, rejectUnauthorized: false, localAddress: from, maxSockets: 16 });
    agents.set(from, agent);
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: nginxPort,
        path,
        method: opts.method ?? 'GET',
        agent,
        headers: { ...(opts.headers ?? {}), ...(opts.body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Requests straight to one server's port. */
async function direct(server: Server, path: string, init: RequestInit = {}) {
  return fetch(`http://127.0.0.1:${server.port}${path}`, init);
}

/** Stays under nginx's 20 r/s per address: load tests spread over several loopback addresses. */
const spread = (i: number) => `127.0.0.${10 + (i % 8)}`;

before(async () => {
  if (skip) return;
  t = await startTestApp();
  w = await world(t);
  redis = await startRedis();
  nginxPort = await freePort();
  const httpPort = await freePort();
  const [pa, pb] = [await freePort(), await freePort()];
  servers.a = await startServer(pa);
  servers.b = await startServer(pb);
  const conf = nginxHarness(join(dir, 'nginx'), {
    site: 'bugzot.conf',
    rewrite: (text) =>
      text
        .replace(/listen 443 ssl http2;/, `listen 127.0.0.1:${nginxPort} ssl http2;`)
        .replace(/listen 80;/, `listen 127.0.0.1:${httpPort};`)
        .replace(/\s*listen \[::\]:\d+[^;]*;/g, ''),
    snippets: {
      'upstream.conf': `server 127.0.0.1:${pa} max_fails=1 fail_timeout=5s;\nserver 127.0.0.1:${pb} max_fails=1 fail_timeout=5s;\n`,
    },
  });
  nginx = await startNginx(join(dir, 'nginx'), conf, nginxPort);
});

after(async () => {
  for (const a of agents.values()) a.destroy();
  await nginx?.stop();
  for (const s of Object.values(servers)) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      const exited = once(s.child, 'exit');
      s.child.kill('SIGTERM');
      await exited;
    }
  }
  await redis?.stop();
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a session made through one server works through the other, and through nginx', { skip }, async () => {
  const { dev } = w.users;
  const signIn = await direct(servers.a, '/api/v1/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: dev.email, password: 'correct horse battery' }),
  });
  assert.equal(signIn.status, 200);
  const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  assert.match(cookie, /^bugzot_session=/);
  const me = await direct(servers.b, '/api/v1/me', { headers: { cookie } });
  assert.equal(me.status, 200);
  assert.equal(((await me.json()) as { id: number }).id, dev.id);
  for (let i = 0; i < 4; i++) {
    const res = await viaNginx('/api/v1/me', { headers: { cookie }, from: spread(i) });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains');
  }
});

test('a change made through one server is never served stale by the other', { skip }, async () => {
  const { dev } = w.users;
  const id = w.bugs.public.id;
  const auth = { authorization: `Bearer ${dev.key}`, 'content-type': 'application/json' };
  for (let round = 1; round <= 5; round++) {
    // Both servers (and Redis) hold the bug in their caches before each change.
    for (const s of [servers.a, servers.b])
      assert.equal((await direct(s, `/api/v1/bugs/${id}`, { headers: auth })).status, 200);
    const [writer, reader] = round % 2 ? [servers.a, servers.b] : [servers.b, servers.a];
    const summary = `Round ${round} summary`;
    const patch = await direct(writer, `/api/v1/bugs/${id}`, {
      method: 'PATCH',
      headers: auth,
      body: JSON.stringify({ summary }),
    });
    assert.equal(patch.status, 200);
    const read = (await (await direct(reader, `/api/v1/bugs/${id}`, { headers: auth })).json()) as {
      summary: string;
    };
    assert.equal(read.summary, summary, `round ${round}: the other server served the old bug`);
  }
});

test('nginx limits one address to 20 r/s (429 past the burst) while another address is served', {
  skip,
}, async () => {
  const results = await Promise.all(
    Array.from({ length: 120 }, () => viaNginx('/healthz', { from: '127.0.0.2' }).then((r) => r.status)),
  );
  const limited = results.filter((s) => s === 429).length;
  assert.ok(limited >= 40, `expected many 429s from one address, got ${limited} of ${results.length}`);
  assert.ok(results.filter((s) => s === 200).length >= 40, 'the burst is served');
  const other = await viaNginx('/healthz', { from: '127.0.0.3' });
  assert.equal(other.status, 200, 'another address is not limited');
});

test('/metrics through nginx, from an internal address, is Prometheus text', { skip }, async (tt) => {
  const res = await viaNginx('/metrics', { from: '127.0.0.4' });
  assert.equal(res.status, 200);
  assert.match(res.body, /^# HELP http_request_duration_seconds /m);
  const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
  if (!promtool) return tt.skip('promtool is not installed');
  const check = spawnSync(promtool, ['check', 'metrics'], { input: res.body, encoding: 'utf8' });
  assert.doesNotMatch(`${check.stdout}${check.stderr}`, /parsing error/);
});

/** Peak resident memory (VmHWM) of a process, in MB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
}

/** The worker processes of a server (children of its primary). */
function workersOf(server: Server): number[] {
  return spawnSync('pgrep', ['-P', String(server.child.pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
}

test('a large upload streams through nginx to the app with flat memory', { skip }, async () => {
  const mb = Number(process.env['BUGZOT_TEST_BIG_UPLOAD_MB'] ?? 1024);
  const size = mb * 1024 * 1024;
  const line = Buffer.from(
    '2026-11-23T12:00:00.000Z INFO worker[42] processed request id=0123456789 in 12 ms\n',
  );
  const hash = createHash('sha256');
  let sent = 0;
  const body = new Readable({
    read() {
      if (sent >= size) return this.push(null);
      const n = Math.min(size - sent, 1024 * 1024);
      const chunk = Buffer.alloc(n);
      for (let o = 0; o < n; o += line.length) line.copy(chunk, o, 0, Math.min(line.length, n - o));
      sent += n;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: nginxPort,
        path: `/api/v1/bugs/${w.bugs.public.id}/attachments/big-server.log`,
        method: 'PUT',
        rejectUnauthorized: false,
        localAddress: '127.0.0.6',
        headers: {
          authorization: `Bearer ${w.users.dev.key}`,
          'content-type': 'application/octet-stream',
          'content-length': String(size),
        },
      },
      (r) => {
        let text = '';
        r.on('data', (d: Buffer) => {
          text += d.toString();
        });
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    body.pipe(req);
  });
  assert.equal(res.status, 201, res.body);
  const attachment = JSON.parse(res.body) as { size: number; sha256: string };
  assert.equal(attachment.size, size);
  assert.equal(attachment.sha256, hash.digest('hex'));
  // Neither nginx (no request buffering: nothing in its temp folder) nor the app held the file in memory.
  const temp = join(dir, 'nginx', 'client_body_temp');
  assert.ok(!existsSync(temp) || readdirSync(temp).length === 0, 'nginx buffered the upload on disk');
  for (const s of [servers.a, servers.b]) {
    for (const pid of workersOf(s))
      assert.ok(peakRssMb(pid) < 300, `worker ${pid} peaked at ${peakRssMb(pid)} MB`);
  }
});

test('tus chunks through nginx land on both servers and the upload completes', { skip }, async () => {
  const data = Buffer.from(randomBytes(6 * 1024 * 1024).toString('base64'));
  const before = { a: servers.a.out().length, b: servers.b.out().length };
  const tls = process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
  process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0'; // nginx's throwaway certificate, for tus-js-client
  try {
    const id = await new Promise<number>((resolve, reject) => {
      let attachmentId: number | undefined;
      const upload = new Upload(data, {
        endpoint: `https://127.0.0.1:${nginxPort}/api/v1/uploads`,
        headers: { authorization: `Bearer ${w.users.dev.key}` },
        metadata: { filename: 'alternating.log', bug_id: String(w.bugs.public.id) },
        chunkSize: 512 * 1024,
        retryDelays: [200, 500, 1000],
        storeFingerprintForResuming: false,
        onAfterResponse(_req, r) {
          const a = r.getHeader('Bugzot-Attachment-Id');
          if (a) attachmentId = Number(a);
        },
        onSuccess: () => (attachmentId ? resolve(attachmentId) : reject(new Error('no attachment id'))),
        onError: reject,
      });
      upload.start();
    });
    const got = await viaNginx(`/api/v1/attachments/${id}`, {
      headers: { authorization: `Bearer ${w.users.dev.key}` },
      from: '127.0.0.7',
    });
    assert.equal(JSON.parse(got.body).sha256, createHash('sha256').update(data).digest('hex'));
  } finally {
    if (tls === undefined) delete process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
    else process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = tls;
  }
  const patches = (out: string) => (out.match(/"method":"PATCH","url":"\/api\/v1\/uploads\//g) ?? []).length;
  const onA = patches(servers.a.out().slice(before.a));
  const onB = patches(servers.b.out().slice(before.b));
  assert.ok(onA > 0 && onB > 0, `chunks on A: ${onA}, on B: ${onB}`);
});

test('SIGHUP restarts a server under load through nginx with no failed request', { skip }, async () => {
  let ok = 0;
  const failures: string[] = [];
  let running = true;
  const client = async (i: number) => {
    while (running) {
      try {
        const r = await viaNginx('/version', { from: spread(i) });
        if (r.status === 200) ok++;
        else if (r.status !== 429) failures.push(`status ${r.status}`);
        await sleep(60); // ~16 r/s per address: under nginx's limit
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  const clients = Array.from({ length: 8 }, (_, i) => client(i));
  await sleep(500);
  servers.b.child.kill('SIGHUP');
  const deadline = Date.now() + 120_000;
  while (!/rolling restart done/.test(servers.b.out())) {
    if (Date.now() > deadline) assert.fail(`no rolling restart:\n${servers.b.out()}`);
    await sleep(200);
  }
  await sleep(500);
  running = false;
  await Promise.all(clients);
  assert.deepEqual(failures, [], `${failures.length} of ${ok + failures.length} failed`);
  assert.ok(ok > 50);
});

test('Redis stopped: still serving through nginx, readiness degraded, then recovered', { skip }, async () => {
  const { dev } = w.users;
  await redis.stop();
  const auth = { authorization: `Bearer ${dev.key}` };
  for (let i = 0; i < 6; i++) {
    const r = await viaNginx(`/api/v1/bugs/${w.bugs.onBeta.id}`, { headers: auth, from: spread(i) });
    assert.equal(r.status, 200, r.body);
  }
  const ready = JSON.parse((await viaNginx('/readyz', { from: '127.0.0.5' })).body) as { status: string };
  assert.equal(ready.status, 'degraded');
  await redis.start();
  const deadline = Date.now() + 20_000;
  for (;;) {
    const statuses = await Promise.all(
      [servers.a, servers.b].map(
        async (s) => ((await (await direct(s, '/readyz')).json()) as { status: string }).status,
      ),
    );
    if (statuses.every((s) => s === 'ready')) break;
    if (Date.now() > deadline) assert.fail(`not ready again: ${statuses.join(', ')}`);
    await sleep(200);
  }
});

test('one server killed outright: nginx fails over and no GET is lost', { skip }, async () => {
  const auth = { authorization: `Bearer ${w.users.dev.key}` };
  const pids = spawnSync('pgrep', ['-P', String(servers.a.child.pid)], { encoding: 'utf8' }).stdout.split(
    '\n',
  );
  // The whole server goes: its primary and its workers, as when a host dies.
  for (const pid of pids.filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
  servers.a.child.kill('SIGKILL');
  const statuses = [];
  for (let i = 0; i < 40; i++) {
    const r = await viaNginx(`/api/v1/bugs/${w.bugs.public.id}`, { headers: auth, from: spread(i) });
    statuses.push(r.status);
  }
  assert.deepEqual(
    statuses.filter((s) => s !== 200),
    [],
    'every request was answered by the surviving server',
  );
});
