/**
 * Webhook fan-out benchmark (issue 7): BENCH_EVENTS bug events (default 10,000) made through the API
 * (bug updates and comments, alternately) on real PostgreSQL, each delivered to 10 webhooks whose receivers
 * are node:http servers on 127.0.0.1 in this process. `bugzot serve` takes the API calls; separate
 * `bugzot worker` processes deliver (WORKER_IN_PROCESS=false), as in production. Each receiver verifies
 * the signature (HMAC-SHA256 of "<t>.<body>" with its webhook's secret) and records the arrival time.
 *
 * Prints deliveries per second, the delay from the event (its created_at) to the arrival (p50/p99/max),
 * and checks that every (webhook, event) arrived exactly once with a valid signature.
 *
 * Run: npm run bench:webhooks. Environment: BENCH_EVENTS (default 10,000), BENCH_RECEIVERS (10),
 * BENCH_BUGS (bugs the events are spread over, 200), BENCH_PRODUCERS (concurrent API clients, 8),
 * BENCH_RATE (events per second to pace at; default unpaced), BENCH_WORKERS (`bugzot worker` processes, 1),
 * BENCH_CONCURRENCY (WORKER_CONCURRENCY of each, default 16 as in production), BENCH_TIMEOUT_S (300),
 * BENCH_DATABASE_URL (a superuser maintenance URL; default: a throwaway PostgreSQL cluster).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { benchDatabase, bugzot, startServer } from './lib.ts';

const events = Number(process.env['BENCH_EVENTS'] ?? 10_000);
const receiverCount = Number(process.env['BENCH_RECEIVERS'] ?? 10);
const bugCount = Number(process.env['BENCH_BUGS'] ?? 200);
const producers = Number(process.env['BENCH_PRODUCERS'] ?? 8);
const rate = Number(process.env['BENCH_RATE'] ?? 0);
const workers = Number(process.env['BENCH_WORKERS'] ?? 1);
const concurrency = Number(process.env['BENCH_CONCURRENCY'] ?? 16);
const timeoutS = Number(process.env['BENCH_TIMEOUT_S'] ?? 300);
const PASSWORD = 'bench-password-123';
const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;

/** One webhook receiver: checks each delivery's signature and notes what arrived when. */
class Receiver {
  secret = '';
  port = 0;
  /** `${eventId}:${type}` -> arrivals (more than one is a duplicate). */
  readonly seen = new Map<string, number>();
  readonly delays: number[] = [];
  badSignatures = 0;
  connections = 0;
  received = 0;
  lastArrival = 0;
  private server: Server | undefined;

  async listen(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = Date.now();
        const body = Buffer.concat(chunks).toString('utf8');
        if (!this.verify(String(req.headers['bugzot-signature'] ?? ''), body)) {
          this.badSignatures++;
          res.writeHead(400).end('bad signature');
          return;
        }
        const p = JSON.parse(body) as { id: number; type: string; created_at: string };
        const key = `${p.id}:${p.type}`;
        this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
        this.delays.push(at - Date.parse(p.created_at));
        this.received++;
        this.lastArrival = at;
        res.writeHead(204).end();
      });
    });
    this.server.on('connection', () => this.connections++);
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The documented verification, written here independently of Bugzot's own signing code. */
  private verify(header: string, body: string): boolean {
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    if (!m || Math.abs(Date.now() / 1000 - Number(m[1])) > 300) return false;
    const expected = createHmac('sha256', this.secret).update(`${m[1]}.${body}`).digest();
    return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
  }

  close() {
    this.server?.closeAllConnections();
    this.server?.close();
  }
}

const receivers = await Promise.all(Array.from({ length: receiverCount }, () => new Receiver().listen()));
const db = await benchDatabase();
const dataDir = mkdtempSync(join(tmpdir(), 'bugzot-bench-webhooks-'));
const stops: (() => Promise<void> | void)[] = [
  db.stop,
  () => rmSync(dataDir, { recursive: true, force: true }),
];
try {
  const env = {
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WORKER_IN_PROCESS: 'false',
    WORKER_CONCURRENCY: String(concurrency),
    WORKERS: '1',
  };
  await bugzot(['seed', '--bugs', '0', '--users', '5', '--password', PASSWORD], env);
  const server = await startServer(env, ['--no-migrate']);
  stops.unshift(server.stop);
  const children: ChildProcess[] = [];
  for (let i = 0; i < workers; i++) {
    const child = spawn(process.execPath, [bin, 'worker'], {
      env: { ...process.env, LOG_LEVEL: 'warn', NODE_ENV: 'production', ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(child);
    stops.unshift(async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'close');
    });
  }

  // A session (cookie + CSRF header) rather than an API key: the bench needs nothing beyond signing in.
  const login = await fetch(`${server.url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@bugzot.example', password: PASSWORD }),
  });
  if (!login.ok) throw new Error(`sign-in: ${login.status} ${await login.text()}`);
  const cookie = login.headers.get('set-cookie')?.split(';')[0] ?? '';
  const csrf = ((await login.json()) as { csrf_token: string }).csrf_token;
  const api = async (method: string, path: string, body?: object) => {
    const res = await fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };

  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  stops.unshift(() => sql.end());
  const [target] = await sql`
    SELECT p.id AS product_id, v.id AS version_id, c.id AS component_id FROM products p
    JOIN versions v ON v.product_id = p.id JOIN components c ON c.product_id = p.id
    WHERE p.is_released ORDER BY p.id, v.id, c.id LIMIT 1`;
  if (!target) throw new Error('the seed made no released product');
  process.stderr.write(`filing ${bugCount} bugs...\n`);
  const bugs: number[] = [];
  for (let i = 0; i < bugCount; i++) {
    const bug = await api('POST', '/bugs', {
      product_id: target['product_id'],
      version_id: target['version_id'],
      component_id: target['component_id'],
      summary: `Webhook bench bug ${i}`,
    });
    bugs.push(Number(bug['id']));
  }
  // Subscribed after the bugs were filed: only the measured events reach them.
  for (const [k, r] of receivers.entries()) {
    const hook = await api('POST', '/webhooks', {
      url: `http://127.0.0.1:${r.port}/hook/${k}`,
      events: ['bug.updated', 'comment.created'],
    });
    r.secret = String(hook['secret']);
  }
  await new Promise((r) => setTimeout(r, 1000));

  process.stderr.write(
    `making ${events} events (updates and comments) on ${bugCount} bugs for ${receiverCount} webhooks; ` +
      `${workers} worker(s) x ${concurrency} jobs...\n`,
  );
  const expected = events * receiverCount;
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (next < events) {
        const i = next++;
        if (rate > 0) {
          const due = started + (i * 1000) / rate;
          if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        }
        // No row_version: concurrent changes to one bug queue on its row lock instead of colliding.
        const bug = bugs[i % bugs.length]!;
        if (i % 2 === 0) await api('PATCH', `/bugs/${bug}`, { summary: `Webhook bench bug ${bug} rev ${i}` });
        else await api('POST', `/bugs/${bug}/comments`, { body: `Bench comment ${i}` });
      }
    }),
  );
  const produced = Date.now();
  process.stderr.write(`events made in ${(produced - started) / 1000} s; waiting for deliveries\n`);
  const total = () => receivers.reduce((n, r) => n + r.received, 0);
  let lastReport = Date.now();
  while (total() < expected) {
    if (Date.now() - started > timeoutS * 1000) {
      process.stderr.write(`timed out after ${timeoutS} s with ${total()} of ${expected} deliveries\n`);
      break;
    }
    if (children.some((c) => c.exitCode !== null)) throw new Error('a bugzot worker exited');
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      process.stderr.write(`  ${total()} of ${expected} delivered\n`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const finished = Math.max(...receivers.map((r) => r.lastArrival));
  // Late duplicates would show up now.
  await new Promise((r) => setTimeout(r, 2000));

  const delays = receivers.flatMap((r) => r.delays).sort((a, b) => a - b);
  const pct = (q: number) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))] ?? 0;
  const duplicates = receivers.reduce((n, r) => n + [...r.seen.values()].filter((c) => c > 1).length, 0);
  const distinct = receivers.reduce((n, r) => n + r.seen.size, 0);
  const states = await sql`SELECT state, count(*)::int AS n FROM webhook_deliveries GROUP BY state`;
  const jobs = await sql`
    SELECT kind, state, count(*)::int AS n FROM jobs WHERE kind LIKE 'webhook.%' GROUP BY 1, 2 ORDER BY 1, 2`;
  const seconds = (finished - started) / 1000;
  const result = {
    events,
    webhooks: receiverCount,
    deliveries_expected: expected,
    deliveries_arrived: total(),
    distinct_arrived: distinct,
    duplicates,
    missing: expected - distinct,
    bad_signatures: receivers.reduce((n, r) => n + r.badSignatures, 0),
    receiver_connections: receivers.reduce((n, r) => n + r.connections, 0),
    events_per_s: Math.round(events / ((produced - started) / 1000)),
    deliveries_per_s: Math.round(total() / seconds),
    delay_ms: { p50: pct(0.5), p99: pct(0.99), max: delays.at(-1) ?? 0 },
    seconds,
    worker: { processes: workers, concurrency },
    delivery_log: Object.fromEntries(states.map((s) => [s['state'], s['n']])),
    jobs: jobs.map((j) => `${j['kind']} ${j['state']}: ${j['n']}`),
  };
  console.log(JSON.stringify(result, null, 2));
  const ok =
    result.duplicates === 0 && result.missing === 0 && result.bad_signatures === 0 && total() === expected;
  console.log(ok ? 'every delivery arrived exactly once, signed' : 'CHECK FAILED: see above');
  if (!ok) process.exitCode = 1;
} finally {
  for (const stop of stops) await stop();
  for (const r of receivers) r.close();
}
