/**
 * Shared pieces of the benchmarks: a PostgreSQL to run against (BENCH_DATABASE_URL or a throwaway
 * cluster), starting `bugzot` processes, the raw node:http baseline, and autocannon runs printed as
 * req/s, p50, p99 and errors.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import autocannon from 'autocannon';
import postgres from 'postgres';
import { startPgCluster } from '../test/helpers/pg-cluster.ts';

const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  return port;
}

/** A fresh database for the run, and how to drop it (and the cluster, when we started one). */
export async function benchDatabase(): Promise<{ url: string; stop(): Promise<void> }> {
  const cluster = process.env['BENCH_DATABASE_URL'] ? undefined : await startPgCluster();
  const maintenance = process.env['BENCH_DATABASE_URL'] ?? cluster!.url;
  const admin = postgres(maintenance, { max: 1, onnotice: () => {} });
  const name = `bugzot_bench_${process.pid}`;
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name}`);
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(maintenance);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async stop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await admin.end();
      await cluster?.stop();
    },
  };
}

/** Signs in through the API as `email` and makes an API key for the bench (shown once, returned). */
export async function apiKey(base: string, email: string, password: string): Promise<string> {
  const login = await fetch(`${base}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (!login.ok) throw new Error(`sign-in as ${email}: ${login.status} ${await login.text()}`);
  const cookie = login.headers.get('set-cookie')?.split(';')[0] ?? '';
  const res = await fetch(`${base}/api/v1/api-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ name: 'bench' }),
  });
  if (!res.ok) throw new Error(`API key for ${email}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { key: string }).key;
}

/** Runs a `bugzot` command to completion, streaming its stderr (progress) through. */
export async function bugzot(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const [code] = await once(child, 'close');
  if (code !== 0) throw new Error(`bugzot ${args.join(' ')} exited with ${code}`);
  return out;
}

/** Starts `bugzot serve` and waits until /readyz answers. */
export async function startServer(
  env: Record<string, string>,
  args: string[] = [],
  nodeArgs: string[] = [],
): Promise<{
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, bin, 'serve', '--port', String(port), ...args], {
    // The app's own rate limit would cap a load test at a few requests a second: off, unless the bench sets it.
    env: { ...process.env, LOG_LEVEL: 'warn', NODE_ENV: 'production', RATE_LIMIT_PER_MINUTE: '0', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`bugzot serve exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'close');
    },
  };
}

/** Starts the raw baseline: node:http answering a fixed 1 KB JSON document, in its own process. */
export async function startRawBaseline(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const code = `
    const body = JSON.stringify({ id: 1, summary: 'x'.repeat(1000) }).slice(0, 1024);
    require('node:http').createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }).listen(${port}, '127.0.0.1', () => process.stdout.write('ready\\n'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'close');
    },
  };
}

/** One measured scenario. */
export interface Measurement {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

/** Runs autocannon against `url` with the given requests; returns req/s and latency percentiles. */
export async function measure(
  name: string,
  opts: {
    url: string;
    duration: number;
    connections: number;
    headers?: Record<string, string>;
    requests?: autocannon.Request[];
    method?: 'GET' | 'POST';
    body?: string;
  },
): Promise<Measurement> {
  const result = await autocannon({
    url: opts.url,
    duration: opts.duration,
    connections: opts.connections,
    headers: opts.headers ?? {},
    ...(opts.requests ? { requests: opts.requests } : {}),
    ...(opts.method ? { method: opts.method } : {}),
    ...(opts.body ? { body: opts.body } : {}),
  });
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    total: result.requests.total,
  };
}

/** Prints measurements as a table with the ratio of each to the baseline's req/s. */
export function report(baseline: Measurement, rows: Measurement[]): string {
  const lines = [
    '| scenario | req/s | p50 ms | p99 ms | errors | non-2xx | vs raw node:http |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const m of [baseline, ...rows]) {
    const ratio = m === baseline ? '100%' : `${((m.rps / baseline.rps) * 100).toFixed(1)}%`;
    lines.push(
      `| ${m.name} | ${m.rps.toFixed(0)} | ${m.p50} | ${m.p99} | ${m.errors} | ${m.non2xx} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}
