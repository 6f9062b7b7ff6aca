/**
 * API load benchmark (foundation issue): real PostgreSQL seeded with BENCH_BUGS bugs (default 100,000),
 * `bugzot serve` in its own process, autocannon from this one. Measures, beside a raw node:http server
 * answering a fixed 1 KB JSON in the same run:
 *   - GET one bug as an external user (the visibility predicate is evaluated on every request);
 *   - list 50 bugs filtered by product and status, as an external user;
 *   - create a bug, as an external user.
 * Prints req/s, p50, p99, errors and the ratio to the baseline. Run with `npm run bench`.
 *
 * Environment: BENCH_BUGS, BENCH_DURATION (s, default 15), BENCH_CONNECTIONS (default 20),
 * BENCH_DATABASE_URL (a superuser maintenance URL; default: a throwaway cluster).
 */
import postgres from 'postgres';
import { apiKey, benchDatabase, bugzot, measure, report, startRawBaseline, startServer } from './lib.ts';

const bugs = Number(process.env['BENCH_BUGS'] ?? 100_000);
const duration = Number(process.env['BENCH_DURATION'] ?? 15);
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 20);
const PASSWORD = 'bench-password-123';

const db = await benchDatabase();
const stops: (() => Promise<void>)[] = [db.stop];
try {
  const env = { DATABASE_URL: db.url };
  process.stderr.write(`seeding ${bugs} bugs...\n`);
  const started = performance.now();
  await bugzot(['seed', '--bugs', String(bugs), '--password', PASSWORD], env);
  const seedSeconds = (performance.now() - started) / 1000;

  const server = await startServer(env, ['--no-migrate']);
  stops.unshift(server.stop);
  const raw = await startRawBaseline();
  stops.unshift(raw.stop);

  const key = await apiKey(server.url, 'customer@example.com', PASSWORD);
  const headers = { authorization: `Bearer ${key}` };

  // Ids of bugs the external user may see, and a released product/version/component to file against.
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const visible = (
    await sql`SELECT b.id FROM bugs b JOIN versions v ON v.id = b.version_id JOIN products p ON p.id = b.product_id
              WHERE NOT b.confidential AND v.is_released AND p.is_released ORDER BY random() LIMIT 2000`
  ).map((r) => r['id'] as number);
  const [target] = await sql`
    SELECT p.id AS product_id, v.id AS version_id, c.id AS component_id FROM products p
    JOIN versions v ON v.product_id = p.id AND v.is_released JOIN components c ON c.product_id = p.id
    WHERE p.is_released ORDER BY p.id, v.id, c.id LIMIT 1`;
  const [busiest] = await sql`
    SELECT b.product_id FROM bugs b JOIN products p ON p.id = b.product_id WHERE p.is_released
    GROUP BY b.product_id ORDER BY count(*) DESC LIMIT 1`;
  await sql.end();

  let i = 0;
  const nextBug = () => visible[i++ % visible.length]!;

  // Warm up the JIT and connection pools before measuring.
  await measure('warm-up', {
    url: `${server.url}/api/v1/bugs/${visible[0]}`,
    duration: 3,
    connections,
    headers,
  });
  await measure('warm-up', { url: raw.url, duration: 3, connections });

  // Two baselines. The plain one: one fixed URL, no headers, the cheapest the client can do. The matched
  // one: exactly the client work of the bug read (same headers, a new path per request from the same
  // callback), so that the ratio compares servers rather than two client setups — with one client core
  // on a 2-core machine, autocannon's per-request callback alone halves what it can drive.
  const randomBug = [
    {
      method: 'GET' as const,
      setupRequest: (req: object) => ({ ...req, path: `/api/v1/bugs/${nextBug()}` }),
    },
  ];
  const plain = await measure('raw node:http, 1 KB JSON, fixed URL', {
    url: `${raw.url}/api/v1/bugs/${visible[0]}`,
    duration,
    connections,
    headers,
  });
  const getSame = await measure('GET one bug, fixed URL (external user)', {
    url: `${server.url}/api/v1/bugs/${visible[0]}`,
    duration,
    connections,
    headers,
  });
  const baseline = await measure('raw node:http, 1 KB JSON, matched client', {
    url: raw.url,
    duration,
    connections,
    headers,
    requests: randomBug,
  });
  const getOne = await measure('GET one bug (external user)', {
    url: server.url,
    duration,
    connections,
    headers,
    requests: randomBug,
  });
  const list = await measure('list 50 bugs by product+status (external)', {
    url: `${server.url}/api/v1/bugs?product_id=${busiest!['product_id']}&status=NEW,ASSIGNED&limit=50`,
    duration,
    connections,
    headers,
  });
  let n = 0;
  const create = await measure('create a bug (external user)', {
    url: server.url,
    duration,
    connections,
    headers: { ...headers, 'content-type': 'application/json' },
    requests: [
      {
        method: 'POST',
        path: '/api/v1/bugs',
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify({
            product_id: target!['product_id'],
            version_id: target!['version_id'],
            component_id: target!['component_id'],
            summary: `Benchmark bug ${++n}: crash when saving a large report`,
            description: 'Steps to reproduce: open a report with 10,000 rows and press save.',
            severity: 'major',
          }),
        }),
      },
    ],
  });

  const table = report(baseline, [plain, getOne, getSame, list, create]);
  process.stdout.write(
    `\nBugzot API benchmark: ${bugs} bugs on PostgreSQL, ${connections} connections, ${duration} s each, ` +
      `1 server process, node ${process.version}\nseed: ${seedSeconds.toFixed(1)} s\n\n${table}\n\n` +
      `GET one bug: ${((getOne.rps / baseline.rps) * 100).toFixed(1)}% of the raw baseline with the same client ` +
      `work (random ids); ${((getSame.rps / plain.rps) * 100).toFixed(1)}% with one fixed URL on both sides; ` +
      `${((getOne.rps / plain.rps) * 100).toFixed(1)}% random ids against the fixed-URL baseline (target >= 40%)\n`,
  );
} finally {
  for (const stop of stops) await stop().catch((err) => process.stderr.write(`cleanup: ${err}\n`));
}
