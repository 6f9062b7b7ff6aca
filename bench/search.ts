/**
 * Search benchmark (issue 5): real PostgreSQL seeded with BENCH_SEARCH_BUGS bugs (default 100,000, about
 * 3 comments each), `bugzot serve` in its own process, and from this one a fixed set of typical queries
 * sent one after another through the HTTP API, as an internal and as an external user:
 *   text alone; text + product + status; filters only; "my bugs"; sort by last changed; with facets.
 * Prints p50/p95/p99 per query and user, then EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of
 * the slowest query (run in-process through the same search code). Bounded: BENCH_SEARCH_REQUESTS
 * requests per query and user (default 60).
 *
 * Run: node --import tsx bench/search.ts
 * Environment: BENCH_SEARCH_BUGS, BENCH_SEARCH_REQUESTS, BENCH_DATABASE_URL (a superuser maintenance
 * URL; default: a throwaway cluster), BENCH_SEARCH_URL (a database seeded before, e.g. by an earlier
 * run: no seeding, the queries only).
 */
import { loadavg } from 'node:os';
import postgres from 'postgres';
import type { UserViewer } from '../src/access/index.ts';
import { type Db, openPostgres, type Queryable, type Sql, sql } from '../src/platform/db.ts';
import { search } from '../src/search/index.ts';
import { apiKey, benchDatabase, bugzot, startServer } from './lib.ts';

const bugs = Number(process.env['BENCH_SEARCH_BUGS'] ?? 100_000);
const requests = Number(process.env['BENCH_SEARCH_REQUESTS'] ?? 60);
const PASSWORD = 'bench-password-123';

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

interface Row {
  query: string;
  user: string;
  p50: number;
  p95: number;
  p99: number;
  total: number;
}

/** A Queryable that records each statement and its duration. */
function recording(db: Db, log: { q: Sql; ms: number }[]): Queryable {
  const parallel = db.parallel;
  return {
    async query<T>(q: Sql) {
      const started = performance.now();
      const rows = await db.query<T>(q);
      log.push({ q, ms: performance.now() - started });
      return rows;
    },
    // Statements run at once are each recorded with the time of the whole group.
    parallel: parallel && {
      width: parallel.width,
      async run<T>(qs: Sql[]) {
        const started = performance.now();
        const rows = await parallel.run<T>(qs);
        for (const q of qs) log.push({ q, ms: performance.now() - started });
        return rows;
      },
    },
  };
}

const seeded = process.env['BENCH_SEARCH_URL'];
const dbInfo = seeded ? { url: seeded, stop: async () => {} } : await benchDatabase();
const stops: (() => Promise<void>)[] = [dbInfo.stop];
const load = () =>
  loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');
try {
  const env = { DATABASE_URL: dbInfo.url };
  const loadBefore = load();
  let seedSeconds = Number.NaN;
  if (!seeded) {
    process.stderr.write(
      `seeding ${bugs} bugs (with comments, history, search text), load ${loadBefore}...\n`,
    );
    const started = performance.now();
    await bugzot(['seed', '--bugs', String(bugs), '--password', PASSWORD], env);
    seedSeconds = (performance.now() - started) / 1000;
  }
  const loadAfterSeed = load();
  {
    // As autovacuum would after a bulk load (index-only scans need the visibility map), and JIT off:
    // compiling costs more than these short statements run (docs/search.md recommends it for production).
    const admin = postgres(dbInfo.url, { max: 1, onnotice: () => {} });
    await admin.unsafe('VACUUM ANALYZE');
    await admin.unsafe(`ALTER DATABASE ${new URL(dbInfo.url).pathname.slice(1)} SET jit = off`);
    await admin.end();
  }

  const server = await startServer(env, ['--no-migrate']);
  stops.unshift(server.stop);
  const users = {
    internal: { email: 'dev@bugzot.example', key: await apiKey(server.url, 'dev@bugzot.example', PASSWORD) },
    external: {
      email: 'customer@example.com',
      key: await apiKey(server.url, 'customer@example.com', PASSWORD),
    },
  };

  const pg = postgres(dbInfo.url, { max: 1, onnotice: () => {} });
  const [busiest] = await pg`
    SELECT p.name FROM bugs b JOIN products p ON p.id = b.product_id WHERE p.is_released
    GROUP BY p.name ORDER BY count(*) DESC LIMIT 1`;
  const [sizes] = await pg`
    SELECT (SELECT count(*) FROM bugs)::int AS bugs, (SELECT count(*) FROM comments)::int AS comments,
           pg_size_pretty(pg_total_relation_size('bug_text')) AS bug_text,
           pg_size_pretty(pg_relation_size('bug_text_match_idx')) AS gin,
           pg_size_pretty(pg_relation_size('bugs_summary_trgm_idx')) AS trgm,
           current_setting('shared_buffers') AS shared_buffers, current_setting('huge_pages') AS huge_pages`;
  await pg.end();
  const product = String(busiest!['name']);
  const quoted = /\s/.test(product) ? `"${product}"` : product;

  const queries: { name: string; q: (who: 'internal' | 'external') => string; facets: boolean }[] = [
    { name: 'text alone', q: () => 'crash', facets: false },
    {
      name: 'text + product + status',
      q: () => `crash product:${quoted} status:NEW,ASSIGNED`,
      facets: false,
    },
    { name: 'filters only', q: () => 'status:NEW,ASSIGNED severity:critical,major', facets: false },
    {
      name: 'my bugs',
      q: (who) => (who === 'internal' ? 'assignee:me status:open' : 'reporter:me status:open'),
      facets: false,
    },
    { name: 'sort by last changed', q: () => 'sort:changed', facets: false },
    { name: 'with facets', q: () => 'hang status:open', facets: true },
  ];

  const rows: Row[] = [];
  for (const query of queries) {
    for (const who of ['internal', 'external'] as const) {
      const q = query.q(who);
      const url = `${server.url}/api/v1/search?q=${encodeURIComponent(q)}&facets=${query.facets}&limit=50`;
      const headers = { authorization: `Bearer ${users[who].key}` };
      let total = 0;
      for (let i = 0; i < 5; i++) await (await fetch(url, { headers })).arrayBuffer(); // warm-up
      const times: number[] = [];
      for (let i = 0; i < requests; i++) {
        const t0 = performance.now();
        const res = await fetch(url, { headers });
        const body = (await res.json()) as { total?: number };
        times.push(performance.now() - t0);
        if (!res.ok) throw new Error(`${q}: ${res.status} ${JSON.stringify(body)}`);
        total = body.total ?? 0;
      }
      times.sort((a, b) => a - b);
      rows.push({
        query: query.name,
        user: who,
        p50: pct(times, 50),
        p95: pct(times, 95),
        p99: pct(times, 99),
        total,
      });
      process.stderr.write(`  ${query.name} (${who}): p95 ${pct(times, 95).toFixed(1)} ms\n`);
    }
  }

  const f = (n: number) => n.toFixed(1).padStart(7);
  console.log(
    `\nSearch on PostgreSQL, ${sizes!['bugs']} bugs, ${sizes!['comments']} comments; ` +
      `${seeded ? 'seeded before' : `seeded in ${seedSeconds.toFixed(0)} s (load average ${loadBefore} before, ${loadAfterSeed} after)`}` +
      ` (bug_text ${sizes!['bug_text']}, GIN ${sizes!['gin']}, trigram ${sizes!['trgm']}); ${requests} sequential requests each;` +
      ` jit off; shared_buffers ${sizes!['shared_buffers']}, huge_pages ${sizes!['huge_pages']}; load average ${load()} after the queries\n`,
  );
  console.log('| query                    | user     |  p50 ms |  p95 ms |  p99 ms |   total |');
  console.log('| ------------------------ | -------- | ------: | ------: | ------: | ------: |');
  for (const r of rows) {
    console.log(
      `| ${r.query.padEnd(24)} | ${r.user.padEnd(8)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${String(r.total).padStart(7)} |`,
    );
  }

  // EXPLAIN of the slowest: the same search run in-process, its statements recorded and the slowest explained.
  const slowest = rows.reduce((a, b) => (b.p95 > a.p95 ? b : a));
  // The server's defaults: a pool of 10, word searches in two statements at once (SEARCH_PARALLEL).
  const db = await openPostgres(dbInfo.url, 10, { parallel: 2 });
  stops.unshift(() => db.close());
  const [u] = await db.query<{ id: number; name: string; email: string; kind: string; is_admin: boolean }>(
    sql`SELECT id, name, email, kind, is_admin FROM users WHERE email = ${users[slowest.user as 'internal'].email}`,
  );
  const viewer: UserViewer = {
    kind: 'user',
    id: u!.id,
    name: u!.name,
    email: u!.email,
    isInternal: u!.kind === 'internal',
    isAdmin: u!.is_admin,
  };
  const query = queries.find((q) => q.name === slowest.query)!;
  const log: { q: Sql; ms: number }[] = [];
  await search(recording(db, log), viewer, {
    q: query.q(slowest.user as 'internal'),
    limit: 50,
    facets: query.facets,
  });
  const worst = log.reduce((a, b) => (b.ms > a.ms ? b : a));
  const plan = await db.query<{ 'QUERY PLAN': string }>(sql`EXPLAIN (ANALYZE, BUFFERS) ${worst.q}`);
  console.log(
    `\nSlowest: "${slowest.query}" as ${slowest.user} (p95 ${slowest.p95.toFixed(1)} ms); its slowest statement:\n`,
  );
  console.log(worst.q.text.replace(/\s+/g, ' ').trim());
  console.log('');
  console.log(plan.map((r) => r['QUERY PLAN']).join('\n'));
} finally {
  for (const stop of stops) await stop().catch(() => {});
}
