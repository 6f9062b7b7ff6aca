/**
 * Word searches split among statements run at once (SEARCH_PARALLEL, migration 010): on PostgreSQL the
 * pool runs them on separate connections in one snapshot, and the page, total and facets are exactly
 * those of one statement, for staff, outsiders and a CC of a confidential bug, page after page. Also the
 * parallel runner itself: one snapshot, separate connections, a failing statement leaves no connection
 * in a transaction, and many searches at once on a small pool never wait on each other forever.
 * PGlite has one connection and no parallel runner: this file runs in the PostgreSQL pass.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { UserViewer } from '../src/access/index.ts';
import { openPostgres, type Queryable, type Sql, sql } from '../src/platform/db.ts';
import { type SearchResult, search } from '../src/search/index.ts';
import { shardGroups } from '../src/search/repository.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const skip = testDbKind() === 'pglite' ? 'PGlite has one connection: no statements run at once' : false;

const QUERIES = [
  'crash',
  'crash status:open',
  'crash -product:Omega',
  'crash confidential:yes',
  'crash report',
  '"crash report"',
  'cras*',
  'crash sort:id',
  'crash sort:id:asc',
  'seen -status:closed',
  'render*',
];

describe(`word searches in parallel statements (${testDbKind()})`, { skip }, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  let carol: TestUser;

  before(async () => {
    t = await startTestApp();
    w = await world(t);
    carol = await t.user({ kind: 'external', name: 'Carol' });
    const { alice, bob, dev } = w.users;
    // Bugs in every shard, (id >> 16) & 3: the bug numbers jump a stripe of 65,536 between batches,
    // and the second lap puts bugs of shard 0 and 1 far from the first ones.
    for (const [stripe, start] of [1, 2, 3, 4, 5].entries()) {
      await t.db.query(sql`SELECT setval('bugs_id_seq', ${start * 65536 + stripe * 7})`);
      await w.bug(`Crash report number ${stripe} in the summary`, { severity: 'critical' });
      await w.bug(
        `Hang on start ${stripe}`,
        { description: `A crash report follows the hang ${stripe}` },
        dev,
      );
      await w.bug(`Slow export ${stripe}`, { description: 'Nothing about it here' }, dev);
      await w.bug(`Alice's own crash ${stripe}`, { confidential: true, severity: 'major' }, alice);
      await w.bug(`Confidential crash CCing Bob ${stripe}`, { confidential: true, cc: [bob.id] });
      await w.bug(`Orion crash ${stripe}`, {
        product_id: w.products.orion.id,
        version_id: w.versions.orion01.id,
        component_id: w.components.orionCore.id,
        cc: [alice.id],
      });
      const leak = await w.bug(`A leak ${stripe}`, {}, bob);
      const res = await t.request({
        method: 'POST',
        url: `/api/v1/bugs/${leak.id}/comments`,
        payload: { body: `Seen after the crash of ${stripe}`, is_private: stripe % 2 === 0 },
        as: dev,
      });
      assert.equal(res.statusCode, 201, res.body);
    }
    const [spread] = await t.db.query<{ shards: number }>(
      sql`SELECT count(DISTINCT (id >> 16) & 3)::int AS shards FROM bugs`,
    );
    assert.equal(spread!.shards, 4);
  });
  after(() => t?.close());

  /** Every page of a query (3 rows each), following the cursors. */
  async function pages(db: Queryable, v: UserViewer, q: string): Promise<SearchResult[]> {
    const out: SearchResult[] = [];
    let cursor: string | undefined;
    do {
      const r = await search(db, v, { q, limit: 3, facets: true, cursor });
      out.push(r);
      cursor = r.nextCursor ?? undefined;
    } while (cursor && out.length < 50);
    return out;
  }

  test('the page, total and facets equal those of one statement, on every page', async () => {
    assert.equal(t.db.parallel?.width, 2);
    let runs = 0;
    const parallel = t.db.parallel!;
    const counting: Queryable = {
      query: (q) => t.db.query(q),
      parallel: {
        width: parallel.width,
        run<T>(qs: Sql[]) {
          runs++;
          return parallel.run<T>(qs);
        },
      },
    };
    const single: Queryable = { query: (q) => t.db.query(q) };
    const users = [w.users.admin, w.users.dev, w.users.alice, w.users.bob, carol];
    let matched = 0;
    for (const u of users) {
      const v = u.viewer;
      for (const q of QUERIES) {
        const split = await pages(counting, v, q);
        const one = await pages(single, v, q);
        const label = `${u.name} "${q}"`;
        const shape = (rs: SearchResult[]) =>
          rs.map((r) => ({
            rows: r.rows.map((row) => [row.id, row.rank, row.snippet]),
            total: r.total,
            facets: r.facets,
            more: r.nextCursor !== null,
          }));
        assert.deepEqual(shape(split), shape(one), label);
        matched += one[0]!.total;
      }
    }
    assert.ok(runs > 0, 'the searches ran through the parallel runner');
    assert.ok(matched > 100, `the queries match bugs (${matched})`);
  });

  test('an outsider finds and counts no confidential bug of another shard', async () => {
    const v = carol.viewer;
    const r = await search(t.db, v, { q: 'crash', limit: 100, facets: true });
    assert.ok(r.total > 0);
    assert.equal(r.total, r.rows.length);
    assert.ok(r.rows.every((row) => !row.confidential && row.product !== 'Orion'));
    const alice = await search(t.db, w.users.alice.viewer, { q: 'crash', limit: 100, facets: true });
    // Her own confidential bugs and the Orion bugs she is CCed on, in all four shards.
    const own = alice.rows.filter((row) => row.confidential || row.product === 'Orion');
    assert.equal(new Set(own.map((row) => (row.id >> 16) & 3)).size, 4);
    assert.equal(alice.facets?.product.find((p) => p.name === 'Orion')?.count, 5);
  });

  test('the shards are split evenly among two or four statements', () => {
    assert.deepEqual(shardGroups(2), [
      [0, 2],
      [1, 3],
    ]);
    assert.deepEqual(shardGroups(3), shardGroups(2));
    assert.deepEqual(shardGroups(4), [[0], [1], [2], [3]]);
  });

  test('the statements run on separate connections in one snapshot', async () => {
    const q = sql`SELECT pg_current_snapshot()::text AS snapshot, pg_backend_pid() AS pid,
                         current_setting('transaction_isolation') AS isolation,
                         current_setting('transaction_read_only') AS read_only`;
    type Row = { snapshot: string; pid: number; isolation: string; read_only: string };
    // Writers commit all along, so that separately taken snapshots would differ.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await t.db.query(
          sql`UPDATE bugs SET priority = ${i % 2 ? 'P2' : 'P3'} WHERE id = ${w.bugs.public.id}`,
        );
      }
    })();
    try {
      for (let i = 0; i < 20; i++) {
        const [ra, rb] = await t.db.parallel!.run<Row>([q, q]);
        const a = ra?.[0];
        const b = rb?.[0];
        assert.equal(a!.snapshot, b!.snapshot);
        assert.notEqual(a!.pid, b!.pid);
        assert.equal(a!.isolation, 'repeatable read');
        assert.equal(a!.read_only, 'on');
      }
    } finally {
      writing = false;
      await writer;
    }
  });

  test('a failing statement fails the whole and leaves no connection in a transaction', async () => {
    await assert.rejects(
      t.db.parallel!.run([sql`SELECT pg_sleep(0.05)`, sql`SELECT 1 / ${0}::int`]),
      (err: { code?: string }) => err.code === '22012',
    );
    await assert.rejects(t.db.parallel!.run([sql`SELECT 1`, sql`SELECT 2`, sql`SELECT 3`]), /at most 2/);
    const [row] = await t.db.query<{ n: number }>(sql`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND state LIKE 'idle in transaction%'`);
    assert.equal(row!.n, 0);
    const both = await t.db.parallel!.run<{ n: number }>([sql`SELECT 1 AS n`, sql`SELECT 2 AS n`]);
    assert.deepEqual(
      both.map((rows) => rows[0]?.n),
      [1, 2],
    );
  });

  test('many at once on a pool of four all finish', async () => {
    const db = await openPostgres(t.testDb.url!, 4, { parallel: 8 });
    try {
      assert.equal(db.parallel?.width, 2, 'at most half the pool');
      const v = w.users.dev.viewer;
      const results = await Promise.all([
        ...Array.from({ length: 12 }, () => search(db, v, { q: 'crash', limit: 5, facets: true })),
        ...Array.from({ length: 12 }, () =>
          db.parallel!.run([sql`SELECT pg_sleep(0.01)`, sql`SELECT pg_sleep(0.01)`]),
        ),
        ...Array.from({ length: 12 }, () => db.query(sql`SELECT pg_sleep(0.01)`)),
      ]);
      assert.equal(results.length, 36);
      const totals = new Set(results.slice(0, 12).map((r) => (r as SearchResult).total));
      assert.equal(totals.size, 1);
    } finally {
      await db.close();
    }
  });
});
