// bugzot-test: once
/**
 * Bugzilla clients put secrets in URLs (`/rest/login?password=`, `?Bugzilla_api_key=`): a real
 * `bugzot serve` logging at info writes those requests with the values redacted, never in clear.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { redactUrl } from '../src/bugzilla/index.ts';
import { freePort } from './helpers/server.ts';

const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'bugzot-bzlogs-'));
let child: ChildProcess | undefined;
after(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('redactUrl hides the values of secret parameters and keeps the rest', () => {
  assert.equal(
    redactUrl('/rest/login?login=a%40b.c&password=s3cret&x=1'),
    '/rest/login?login=a%40b.c&password=[redacted]&x=1',
  );
  assert.equal(
    redactUrl('/rest/bug?Bugzilla_api_key=bzk_abc&product=Omega&token=1-xyz'),
    '/rest/bug?Bugzilla_api_key=[redacted]&product=Omega&token=[redacted]',
  );
  assert.equal(redactUrl('/rest/bug/1'), '/rest/bug/1');
});

test('serve logs /rest/ requests without the password or API key they carried', async () => {
  const { NODE_TEST_CONTEXT: _ctx, DATABASE_URL: _url, ...env } = process.env;
  const port = await freePort();
  child = spawn(process.execPath, [bin, 'serve', '--port', String(port)], {
    env: { ...env, DATA_DIR: dir, LOG_LEVEL: 'info', NODE_ENV: 'development' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  // A first start creates and migrates the embedded database: slow on a busy machine.
  const deadline = Date.now() + 180_000;
  for (let ready = false; !ready; ) {
    if (child.exitCode !== null) throw new Error(`serve exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`serve did not get ready: ${out}`);
    ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }
  const login = await fetch(`${url}/rest/login?login=nobody%40example.test&password=hunter2-very-secret`);
  assert.equal(login.status, 401);
  assert.equal(((await login.json()) as { code: number }).code, 300);
  const key = await fetch(`${url}/rest/bug?Bugzilla_api_key=bzk_leaky-key-value&product=Omega`);
  assert.equal(((await key.json()) as { code: number }).code, 306);
  for (let i = 0; i < 50 && !out.includes('Bugzilla_api_key=[redacted]'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(out.includes('password=[redacted]'), out);
  assert.ok(out.includes('Bugzilla_api_key=[redacted]'), out);
  assert.equal(out.includes('hunter2-very-secret'), false);
  assert.equal(out.includes('leaky-key-value'), false);
  child.kill('SIGTERM');
  await new Promise((r) => child!.once('exit', r));
});
