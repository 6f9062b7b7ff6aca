/**
 * A real `bugzot serve` child process for the end-to-end tests: on 127.0.0.1, a free port, the embedded
 * database in a fresh temporary DATA_DIR, with staff accounts made beforehand by `bugzot user add`
 * (as an operator would). Products are then created over the API by `seedCatalogue`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contractOf } from './app.ts';

const bin = new URL('../../bin/bugzot.js', import.meta.url).pathname;

/** The password of every account the e2e helpers create. */
export const PASSWORD = 'correct horse battery';

/** An account created with `bugzot user add` before the server starts. */
export interface SeedUser {
  email: string;
  name: string;
  kind: 'admin' | 'internal' | 'external';
}

/** A running server and how to stop it (the data folder is removed on stop). */
export interface E2eServer {
  url: string;
  child: ChildProcess;
  /** Everything the server wrote to stderr and stdout so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * The environment without the test runner's own variables (a child that sees NODE_TEST_CONTEXT acts
 * as a test) nor the database settings of the test process.
 */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const {
    NODE_TEST_CONTEXT: _ctx,
    DATABASE_URL: _url,
    BUGZOT_TEST_DB: _db,
    BUGZOT_TEST_DATABASE_URL: _testUrl,
    ...env
  } = process.env;
  return { ...env, ...extra };
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Runs one `bugzot` command to completion; rejects with its output when it fails. */
async function runCli(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<string> {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.stdin.end(stdin ?? '');
  const [code] = await once(child, 'close');
  if (code !== 0) throw new Error(`bugzot ${args.join(' ')} exited with ${code}: ${out}`);
  return out;
}

/** Creates the users with the CLI, then starts `bugzot serve` and waits until /readyz answers. */
export async function startServer(
  users: SeedUser[],
  extraEnv: Record<string, string> = {},
): Promise<E2eServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bugzot-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = childEnv({
    DATA_DIR: dataDir,
    DATABASE_URL: '',
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    BASE_URL: url,
    ...extraEnv,
  });
  try {
    for (const u of users) {
      const flag = u.kind === 'admin' ? '--admin' : `--${u.kind}`;
      await runCli(
        ['user', 'add', '--email', u.email, '--name', u.name, flag, '--password-stdin'],
        env,
        PASSWORD,
      );
    }
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }

  const child = spawn(process.execPath, [bin, 'serve', '--port', String(port)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await once(child, 'close');
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`bugzot serve exited with ${child.exitCode}: ${output}`);
    }
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (i > 600) {
      await stop();
      throw new Error(`bugzot serve did not become ready within a minute: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, output: () => output, stop };
}

/** A client of the JSON API signed in as one user (session cookie and CSRF token). */
export async function apiAs(
  base: string,
  email: string,
): Promise<<T>(method: string, path: string, body?: object) => Promise<T>> {
  const login = await fetch(`${base}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (!login.ok) throw new Error(`sign-in as ${email}: ${login.status} ${await login.text()}`);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const { csrf_token: csrf } = (await login.json()) as { csrf_token: string };
  // Every JSON answer must match the response schema the server's own OpenAPI document publishes.
  const contract = contractOf(await (await fetch(`${base}/api/openapi.json`)).text());
  return async <T>(method: string, path: string, body?: object): Promise<T> => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: {
        cookie,
        'x-csrf-token': csrf,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const broken = contract.check(
      method,
      `/api/v1${path}`,
      res.status,
      res.headers.get('content-type'),
      text,
    );
    if (broken) throw new Error(`Response contract: ${broken}`);
    if (!res.ok) throw new Error(`${method} ${path} -> ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
}
