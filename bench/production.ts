/**
 * Production benchmark (production issue): GET one bug and list 50 bugs through nginx (the shipped compose.conf,
 * its per-address rate limit raised so that one load generator is not throttled), for
 *   A. `bugzot serve` with WORKERS=2 and REDIS_URL, and
 *   B. `bugzot serve` with one worker and no Redis,
 * beside the raw node:http baseline, all in the same run on the same seeded PostgreSQL. Prints req/s, p50, p99
 * and errors over BENCH_DURATION seconds each (default 60). Run with `npm run bench:production`.
 *
 * Environment: BENCH_BUGS (default 100,000), BENCH_DURATION (s, default 60), BENCH_CONNECTIONS (default 32),
 * BENCH_DATABASE_URL (a superuser maintenance URL; default: a throwaway cluster).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { nginxHarness, startNginx } from '../test/helpers/nginx.ts';
import { startRedis } from '../test/helpers/redis.ts';
import {
  apiKey,
  benchDatabase,
  bugzot,
  freePort,
  measure,
  report,
  startRawBaseline,
  startServer,
} from './lib.ts';

const bugs = Number(process.env['BENCH_BUGS'] ?? 100_000);
const duration = Number(process.env['BENCH_DURATION'] ?? 60);
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const PASSWORD = 'bench-password-123';

const dir = mkdtempSync(join(tmpdir(), 'bugzot-bench-prod-'));
const db = await benchDatabase();
const stops: (() => Promise<void>)[] = [db.stop, async () => rmSync(dir, { recursive: true, force: true })];

/** nginx (compose.conf) in front of one app port, on a port of its own. */
async function nginxFor(appPort: number, name: string): Promise<string> {
  const port = await freePort();
  const conf = nginxHarness(join(dir, name), {
    site: 'compose.conf',
    rewrite: (text) =>
      text
        .replace('server app:3000', `server 127.0.0.1:${appPort}`)
        .replace('listen 80;', `listen 127.0.0.1:${port};`)
        // One load generator is one address: the 20 r/s limit would measure nginx's limiter, not Bugzot.
        .replace(/rate=20r\/s/, 'rate=1000000r/s'),
  });
  const nginx = await startNginx(join(dir, name), conf, port);
  stops.unshift(nginx.stop);
  return `http://127.0.0.1:${port}`;
}

try {
  const env = { DATABASE_URL: db.url };
  process.stderr.write(`seeding ${bugs} bugs...\n`);
  await bugzot(['seed', '--bugs', String(bugs), '--password', PASSWORD], env);
  const redis = await startRedis();
  stops.unshift(redis.stop);

  const a = await startServer({ ...env, WORKERS: '2', REDIS_URL: redis.url, TRUST_PROXY: '127.0.0.1' }, [
    '--no-migrate',
  ]);
  stops.unshift(a.stop);
  const b = await startServer({ ...env, WORKERS: '1', TRUST_PROXY: '127.0.0.1' }, ['--no-migrate']);
  stops.unshift(b.stop);
  const raw = await startRawBaseline();
  stops.unshift(raw.stop);
  const viaA = await nginxFor(Number(new URL(a.url).port), 'a');
  const viaB = await nginxFor(Number(new URL(b.url).port), 'b');

  // An external customer's key, and what they may see.
  const headers = { authorization: `Bearer ${await apiKey(a.url, 'customer@example.com', PASSWORD)}` };
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const visible = (
    await sql`SELECT b.id FROM bugs b JOIN versions v ON v.id = b.version_id JOIN products p ON p.id = b.product_id
              WHERE NOT b.confidential AND v.is_released AND p.is_released ORDER BY random() LIMIT 2000`
  ).map((r) => r['id'] as number);
  const [busiest] = await sql`
    SELECT b.product_id FROM bugs b JOIN products p ON p.id = b.product_id WHERE p.is_released
    GROUP BY b.product_id ORDER BY count(*) DESC LIMIT 1`;
  await sql.end();
  let i = 0;
  const randomBug = [
    {
      method: 'GET' as const,
      setupRequest: (req: object) => ({ ...req, path: `/api/v1/bugs/${visible[i++ % visible.length]}` }),
    },
  ];
  const listPath = `/api/v1/bugs?product_id=${busiest?.['product_id']}&status=NEW,ASSIGNED&limit=50`;

  for (const url of [viaA, viaB, raw.url])
    await measure('warm-up', { url, duration: 3, connections, headers });
  const baseline = await measure('raw node:http, 1 KB JSON (direct)', {
    url: raw.url,
    duration,
    connections,
    headers,
    requests: randomBug,
  });
  const rows = [];
  for (const [label, url] of [
    ['nginx -> 2 workers + Redis', viaA],
    ['nginx -> 1 worker, no Redis', viaB],
  ] as const) {
    rows.push(
      await measure(`GET one bug: ${label}`, { url, duration, connections, headers, requests: randomBug }),
    );
    rows.push(
      await measure(`list 50 bugs: ${label}`, { url: `${url}${listPath}`, duration, connections, headers }),
    );
  }
  process.stdout.write(
    `\n${bugs} bugs, ${duration} s per scenario, ${connections} connections, on this machine (2 cores shared by ` +
      'the load generator, nginx, PostgreSQL, Redis and Bugzot)\n\n',
  );
  process.stdout.write(`${report(baseline, rows)}\n`);
} finally {
  for (const stop of stops) await stop().catch(() => {});
}
