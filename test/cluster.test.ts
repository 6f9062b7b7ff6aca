/**
 * `bugzot serve` as production runs it: several workers (WORKERS, node:cluster) on PostgreSQL, a unix socket for
 * nginx, a dead worker replaced, SIGHUP restarting the workers one by one under load with no failed request,
 * /metrics adding up every worker, SIGTERM draining. The embedded database refuses more than one worker.
 * The multi-worker tests run in the PostgreSQL pass; the others in both.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDb, type TestDb, testDbKind } from './helpers/db.ts';

const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'bugzot-cluster-'));
const children: ChildProcess[] = [];
const dbs: TestDb[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const db of dbs) await db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The environment without the test runner's own variables (a child that sees them acts as a test). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
  // The app's rate limit has its own tests; here it would turn the load into 429s.
  return { ...env, LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '0', ...extra };
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  return port;
}

interface Served {
  child: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

/** Starts `bugzot serve` and waits until its log says every worker (or the single process) serves. */
async function serve(env: Record<string, string>, ready: RegExp): Promise<Served> {
  const child = spawn(process.execPath, [bin, 'serve'], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  const deadline = Date.now() + 90_000;
  while (!ready.test(out)) {
    if (child.exitCode !== null) throw new Error(`serve exited early (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`serve did not get ready:\n${out}`);
    await sleep(100);
  }
  return { child, out: () => out, exit };
}

/** The pids of a process's children. */
function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .sort();
  } catch {
    return [];
  }
}

async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** GET over a unix socket. */
function getOverSocket(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, headers: { host: 'localhost' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const onPostgres = testDbKind() === 'postgres';

test('more than one worker on the embedded database is refused, naming DATABASE_URL', async () => {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], {
    env: cleanEnv({ WORKERS: '2', DATA_DIR: join(dir, 'embedded-refused'), DATABASE_URL: '' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.match(err, /WORKERS=2 needs DATABASE_URL/);
});

test('a single process serves on a unix socket with the configured mode', async () => {
  const socket = join(dir, 'single.sock');
  const s = await serve(
    { DATA_DIR: join(dir, 'single'), SOCKET: socket, SOCKET_MODE: '660', DATABASE_URL: '' },
    /bugzot is serving/,
  );
  assert.equal(statSync(socket).mode & 0o777, 0o660);
  const res = await getOverSocket(socket, '/healthz');
  assert.equal(res.status, 200);
  s.child.kill('SIGTERM');
  assert.equal(await s.exit, 0);
});

test('WORKERS=2 on PostgreSQL: replaced when killed, rolling restart on SIGHUP loses no request', async (t) => {
  if (!onPostgres) return t.skip('runs in the PostgreSQL pass');
  const db = await createTestDb();
  dbs.push(db);
  const port = await freePort();
  const s = await serve(
    {
      WORKERS: '2',
      DATABASE_URL: db.url ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ENV: 'production',
    },
    /all workers serving/,
  );
  const primary = s.child.pid ?? 0;
  const base = `http://127.0.0.1:${port}`;
  await until('two workers', () => childPids(primary).length === 2);
  const first = childPids(primary);

  await t.test('requests are answered, and /metrics counts those of every worker', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    const count = /^http_request_duration_seconds_count\{[^}]*route="\/healthz"[^}]*\} (\d+)$/m.exec(
      text,
    )?.[1];
    assert.equal(count, '20', 'the aggregated count is the sum over both workers');
  });

  await t.test('a killed worker is replaced', async () => {
    const victim = first[0] ?? 0;
    process.kill(victim, 'SIGKILL');
    await until('a replacement worker', () => {
      const now = childPids(primary);
      return now.length === 2 && !now.includes(victim);
    });
    const replacement = childPids(primary).find((p) => !first.includes(p));
    await until('the replacement to serve', () =>
      new RegExp(`"pid":${replacement},[^\\n]*"msg":"bugzot is serving"`).test(s.out()),
    );
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });

  await t.test('SIGHUP restarts every worker one at a time, with no failed request under load', async () => {
    const before = childPids(primary);
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const client = async () => {
      while (running) {
        try {
          const res = await fetch(`${base}/version`);
          await res.arrayBuffer();
          if (res.status === 200) ok++;
          else failures.push(`status ${res.status}`);
        } catch (err) {
          failures.push(String((err as Error).cause ?? err));
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await sleep(300);
    process.kill(primary, 'SIGHUP');
    await until('the rolling restart', () => /rolling restart done/.test(s.out()), 90_000);
    await sleep(300);
    running = false;
    await Promise.all(clients);
    const afterPids = childPids(primary);
    assert.deepEqual(failures, [], `${failures.length} failed of ${ok + failures.length}`);
    assert.equal(afterPids.length, 2);
    assert.ok(
      afterPids.every((p) => !before.includes(p)),
      `every worker was replaced: before ${before}, after ${afterPids}\n${s.out()}`,
    );
    assert.ok(ok > 50, `only ${ok} requests were made`);
  });

  s.child.kill('SIGTERM');
  assert.equal(await s.exit, 0, s.out());
  assert.deepEqual(childPids(primary), []);
});
