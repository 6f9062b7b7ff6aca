// bugzot-test: once
/**
 * `bugzot serve` as a user runs it on the embedded default: first start creates the data folder,
 * migrates, creates an admin and prints its password once; logs are JSON with a request id; SIGTERM
 * drains and exits 0, releasing the data folder; a restart keeps the data and creates no second admin.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'bugzot-serve-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The environment without the test runner's own variables (a child that sees them acts as a test). */
function cleanEnv(): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
  return env;
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  return port;
}

async function start(): Promise<{ child: ChildProcess; url: string; out: () => string; err: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [bin, 'serve', '--port', String(port)], {
    env: { ...cleanEnv(), DATA_DIR: dir, DATABASE_URL: '', LOG_LEVEL: 'info', NODE_ENV: 'development' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${err}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { child, url, out: () => out, err: () => err };
}

test('first start creates the data folder and an admin whose password is printed once; SIGTERM exits cleanly', async () => {
  const s = await start();
  assert.ok(existsSync(join(dir, 'pglite')), `data folder created: ${s.err()} ${s.out()}`);
  assert.ok(existsSync(join(dir, 'pglite.lock')), 'data folder locked while serving');
  const m = /created the admin account (\S+) with password (\S+)/.exec(s.err());
  assert.ok(m, s.err());
  const login = await fetch(`${s.url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'test-request-0001' },
    body: JSON.stringify({ email: m[1], password: m[2] }),
  });
  assert.equal(login.status, 200);
  assert.equal(login.headers.get('x-request-id'), 'test-request-0001');
  // Logs are JSON lines; the request's lines carry its id (written just after the answer: wait for it).
  for (let i = 0; i < 50 && !s.out().includes('"reqId":"test-request-0001","res"'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const lines = s
    .out()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { reqId?: string; msg: string });
  assert.ok(
    lines.some((l) => l.reqId === 'test-request-0001' && l.msg === 'request completed'),
    s.out(),
  );

  s.child.kill('SIGTERM');
  const [code] = await once(s.child, 'close');
  assert.equal(code, 0);
  assert.ok(!existsSync(join(dir, 'pglite.lock')), 'lock released on shutdown');
  await assert.rejects(fetch(`${s.url}/healthz`));
});

test('a restart keeps the data and creates no second admin', async () => {
  const s = await start();
  try {
    assert.doesNotMatch(s.err(), /created the admin account/);
    const version = (await (await fetch(`${s.url}/version`)).json()) as { name: string };
    assert.equal(version.name, 'bugzot');
  } finally {
    s.child.kill('SIGTERM');
    await once(s.child, 'close');
  }
});
