/**
 * The demo-data generator: the counts it reports are the rows it wrote, every bug is consistent with
 * the schema's rules and with its own history, and the same seed gives the same data.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Db, sql } from '../src/platform/db.ts';
import { type SeedSummary, seed } from '../src/seed/index.ts';
import { createTestDb, type TestDb, testDbKind } from './helpers/db.ts';

const kind = testDbKind();
const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNhbHQ$ZGVtb2hhc2g';

/** Runs a query that returns one row and gives back that row. */
async function one<T>(db: Db, q: ReturnType<typeof sql>): Promise<T> {
  const rows = await db.query<T>(q);
  assert.equal(rows.length, 1);
  return rows[0]!;
}

/** A digest of everything seed decides, except timestamps (they are relative to the moment it ran). */
async function fingerprint(db: Db): Promise<Record<string, string>> {
  return one(
    db,
    sql`SELECT
      (SELECT md5(string_agg(concat_ws('|', email, name, kind, is_admin), ',' ORDER BY id)) FROM users) AS users,
      (SELECT md5(string_agg(concat_ws('|', p.name, p.is_released), ',' ORDER BY p.id)) FROM products p) AS products,
      (SELECT md5(string_agg(concat_ws('|', product_id, name, is_released), ',' ORDER BY id)) FROM versions)
        AS versions,
      (SELECT md5(string_agg(concat_ws('|', product_id, name, default_assignee_id), ',' ORDER BY id)) FROM components)
        AS components,
      (SELECT md5(string_agg(concat_ws('|', id, product_id, version_id, component_id, summary, description, status,
                                       resolution, severity, priority, reporter_id, assignee_id, confidential,
                                       duplicate_of, row_version), ',' ORDER BY id)) FROM bugs) AS bugs,
      (SELECT md5(string_agg(concat_ws('|', bug_id, author_id, body, is_private, bug_version), ',' ORDER BY id))
         FROM comments) AS comments,
      (SELECT md5(string_agg(concat_ws('|', bug_id, actor_id, field, old_value, new_value, bug_version), ','
                             ORDER BY id)) FROM bug_changes) AS changes,
      (SELECT md5(string_agg(concat_ws('|', bug_id, user_id), ',' ORDER BY bug_id, user_id)) FROM bug_cc) AS cc`,
  );
}

describe(`seed (${kind})`, () => {
  let testDb: TestDb;
  let db: Db;
  let summary: SeedSummary;
  const logs: string[] = [];

  before(async () => {
    testDb = await createTestDb();
    db = testDb.db;
    summary = await seed(db, {
      bugs: 1000,
      users: 80,
      seed: 7,
      passwordHash: HASH,
      log: (m) => logs.push(m),
    });
  });

  after(async () => {
    await testDb?.close();
  });

  test('reports exactly the rows it created', async () => {
    const counts = await one<Record<string, number>>(
      db,
      sql`SELECT (SELECT count(*)::int FROM products) AS products, (SELECT count(*)::int FROM versions) AS versions,
                 (SELECT count(*)::int FROM components) AS components, (SELECT count(*)::int FROM users) AS users,
                 (SELECT count(*)::int FROM bugs) AS bugs, (SELECT count(*)::int FROM comments) AS comments,
                 (SELECT count(*)::int FROM bug_changes) AS changes`,
    );
    const { ms, ...reported } = summary;
    assert.deepEqual(reported, counts);
    assert.equal(counts.bugs, 1000);
    assert.equal(counts.users, 83, '80 generated users and the 3 demo accounts');
    assert.equal(counts.products, 8);
    assert.ok(ms >= 0);
    assert.ok(
      logs.some((m) => m.includes('bugs 1000/1000')),
      logs.join('\n'),
    );
  });

  test('creates the demo accounts, staff and customers, all with the given password hash', async () => {
    const demo = await db.query<{ email: string; kind: string; is_admin: boolean }>(
      sql`SELECT email, kind, is_admin FROM users WHERE email LIKE '%@bugzot.example' OR email = 'customer@example.com'
          ORDER BY email`,
    );
    assert.deepEqual(
      [...demo],
      [
        { email: 'admin@bugzot.example', kind: 'internal', is_admin: true },
        { email: 'customer@example.com', kind: 'external', is_admin: false },
        { email: 'dev@bugzot.example', kind: 'internal', is_admin: false },
      ],
    );
    const users = await one<{
      internal: number;
      external: number;
      admins: number;
      other_hash: number;
      bad: number;
    }>(
      db,
      sql`SELECT count(*) FILTER (WHERE kind = 'internal')::int AS internal,
                 count(*) FILTER (WHERE kind = 'external')::int AS external,
                 count(*) FILTER (WHERE is_admin)::int AS admins,
                 count(*) FILTER (WHERE password_hash IS DISTINCT FROM ${HASH})::int AS other_hash,
                 count(*) FILTER (WHERE kind = 'internal' AND email NOT LIKE '%@omega.example'
                                    AND email NOT LIKE '%@bugzot.example'
                                  OR kind = 'external' AND email !~ '@customer-[0-9]+\\.example$'
                                    AND email <> 'customer@example.com')::int AS bad
          FROM users`,
    );
    assert.equal(users.other_hash, 0);
    assert.equal(users.bad, 0, 'staff at omega.example, customers at customer-N.example');
    assert.ok(users.internal >= 15 && users.external >= 50, JSON.stringify(users));
    assert.ok(users.admins >= 2 && users.admins < users.internal / 3, JSON.stringify(users));
  });

  test('gives every product versions (newest unreleased) and components; Project Orion is unreleased', async () => {
    const rows = await db.query<{
      name: string;
      is_released: boolean;
      released: number;
      unreleased: number;
      c: number;
    }>(
      sql`SELECT p.name, p.is_released,
                 (SELECT count(*)::int FROM versions v WHERE v.product_id = p.id AND v.is_released) AS released,
                 (SELECT count(*)::int FROM versions v WHERE v.product_id = p.id AND NOT v.is_released) AS unreleased,
                 (SELECT count(*)::int FROM components c WHERE c.product_id = p.id) AS c
          FROM products p ORDER BY p.id`,
    );
    for (const p of rows) {
      assert.ok(p.unreleased >= 1 && p.c >= 5, JSON.stringify(p));
      assert.equal(p.released > 0, p.is_released, JSON.stringify(p));
    }
    assert.equal(rows.find((p) => p.name === 'Project Orion')?.is_released, false);
    const newestReleased = await one<{ n: number }>(
      db,
      sql`SELECT count(*)::int AS n FROM versions v
          WHERE v.is_released AND EXISTS (SELECT 1 FROM versions w WHERE w.product_id = v.product_id
                                           AND NOT w.is_released AND w.sort_key < v.sort_key)`,
    );
    assert.equal(newestReleased.n, 0, 'no released version is newer than an unreleased one');
  });

  test('files external bugs only against released products and versions', async () => {
    const r = await one<{ external: number; bad: number; internal_unreleased: number }>(
      db,
      sql`SELECT count(*) FILTER (WHERE u.kind = 'external')::int AS external,
                 count(*) FILTER (WHERE u.kind = 'external' AND NOT (p.is_released AND v.is_released))::int AS bad,
                 count(*) FILTER (WHERE u.kind = 'internal' AND NOT (p.is_released AND v.is_released))::int
                   AS internal_unreleased
          FROM bugs b JOIN users u ON u.id = b.reporter_id JOIN products p ON p.id = b.product_id
               JOIN versions v ON v.id = b.version_id
               JOIN components c ON c.id = b.component_id AND c.product_id = b.product_id
          WHERE v.product_id = b.product_id`,
    );
    assert.equal(r.bad, 0);
    assert.ok(r.external > 300 && r.external < 600, `about 45% external, got ${r.external}`);
    assert.ok(r.internal_unreleased > 0, 'staff also file against unreleased versions');
  });

  test('mixes statuses and resolutions the way the workflow allows', async () => {
    const rows = await db.query<{ status: string; resolution: string | null; n: number }>(
      sql`SELECT status, resolution, count(*)::int AS n FROM bugs GROUP BY 1, 2`,
    );
    const total = (f: (r: (typeof rows)[number]) => boolean) => rows.filter(f).reduce((s, r) => s + r.n, 0);
    const closed = total((r) => ['RESOLVED', 'VERIFIED', 'CLOSED'].includes(r.status));
    assert.equal(
      total((r) => r.resolution !== null),
      closed,
    );
    assert.ok(closed > 250 && closed < 700, `closed share ${closed}/1000`);
    assert.equal(new Set(rows.map((r) => r.status)).size, 8, 'every status occurs');
    assert.equal(new Set(rows.map((r) => r.resolution).filter(Boolean)).size, 5, 'every resolution occurs');
    const dup = await one<{ n: number; bad: number }>(
      db,
      sql`SELECT count(*)::int AS n,
                 count(*) FILTER (WHERE d.id IS NULL OR b.duplicate_of >= b.id OR d.product_id <> b.product_id)::int AS bad
          FROM bugs b LEFT JOIN bugs d ON d.id = b.duplicate_of WHERE b.resolution = 'DUPLICATE'`,
    );
    assert.ok(dup.n >= 5, `some duplicates, got ${dup.n}`);
    assert.equal(dup.bad, 0, 'a duplicate points at an earlier bug of the same product');
    const unassigned = await one<{ n: number }>(
      db,
      sql`SELECT count(*)::int AS n FROM bugs
          WHERE status IN ('ASSIGNED', 'IN_PROGRESS', 'REOPENED', 'VERIFIED', 'CLOSED') AND assignee_id IS NULL`,
    );
    assert.equal(unassigned.n, 0);
  });

  test('makes about 5% of bugs confidential and spreads them over the last two years', async () => {
    const r = await one<{
      confidential: number;
      oldest_days: number;
      newest_days: number;
      bad_times: number;
    }>(
      db,
      sql`SELECT count(*) FILTER (WHERE confidential)::int AS confidential,
                 extract(epoch FROM now() - min(created_at))::float8 / 86400 AS oldest_days,
                 extract(epoch FROM now() - max(created_at))::float8 / 86400 AS newest_days,
                 count(*) FILTER (WHERE changed_at < created_at OR changed_at > now())::int AS bad_times
          FROM bugs`,
    );
    assert.ok(r.confidential >= 20 && r.confidential <= 90, `confidential: ${r.confidential}/1000`);
    assert.ok(r.oldest_days > 600 && r.oldest_days <= 731, `oldest ${r.oldest_days} days`);
    assert.ok(r.newest_days < 5, `newest ${r.newest_days} days`);
    assert.equal(r.bad_times, 0);
    const order = await one<{ n: number }>(
      db,
      sql`SELECT count(*)::int AS n FROM bugs a JOIN bugs b ON b.id = a.id + 1 WHERE b.created_at < a.created_at`,
    );
    assert.equal(order.n, 0, 'ids follow filing time');
  });

  test('writes about three comments per bug, after the bug was filed, varied in count and text', async () => {
    const r = await one<{
      avg: number;
      max: number;
      zero: number;
      texts: number;
      early: number;
      private_external: number;
    }>(
      db,
      sql`SELECT (SELECT count(*)::float8 / 1000 FROM comments) AS avg,
                 (SELECT max(n)::int FROM (SELECT count(*) AS n FROM comments GROUP BY bug_id) x) AS max,
                 (SELECT count(*)::int FROM bugs b WHERE NOT EXISTS (SELECT 1 FROM comments c WHERE c.bug_id = b.id))
                   AS zero,
                 (SELECT count(DISTINCT body)::int FROM comments) AS texts,
                 (SELECT count(*)::int FROM comments c JOIN bugs b ON b.id = c.bug_id
                   WHERE c.created_at < b.created_at OR c.created_at > b.changed_at) AS early,
                 (SELECT count(*)::int FROM comments c JOIN users u ON u.id = c.author_id
                   WHERE c.is_private AND u.kind = 'external') AS private_external`,
    );
    assert.ok(r.avg > 2.4 && r.avg < 3.6, `average ${r.avg}`);
    assert.equal(r.max, 8);
    assert.ok(r.zero > 50 && r.zero < 500, `bugs without comments: ${r.zero}`);
    assert.ok(r.texts > 200, `distinct comment texts: ${r.texts}`);
    assert.equal(r.early, 0);
    assert.equal(r.private_external, 0, 'only staff write private comments');
  });

  test('numbers comments and history steps 2..row_version in time order, and history ends in the bug state', async () => {
    // Each comment and each history step is one write: together they take versions 2..row_version once.
    const versions = await one<{ bad: number; bad_time: number }>(
      db,
      sql`WITH w AS (
            SELECT bug_id, bug_version, created_at AS at FROM comments
            UNION ALL SELECT DISTINCT bug_id, bug_version, changed_at FROM bug_changes
          ), per_bug AS (
            SELECT b.id, b.row_version, b.changed_at, b.created_at, count(w.bug_version) AS n,
                   count(DISTINCT w.bug_version) AS distinct_n, min(w.bug_version) AS lo, max(w.bug_version) AS hi,
                   max(w.at) AS last_at
            FROM bugs b LEFT JOIN w ON w.bug_id = b.id GROUP BY b.id
          )
          SELECT count(*) FILTER (WHERE n <> distinct_n OR row_version <> n + 1
                                   OR (n > 0 AND (lo <> 2 OR hi <> row_version)))::int AS bad,
                 count(*) FILTER (WHERE changed_at <> coalesce(last_at, created_at))::int AS bad_time
          FROM per_bug`,
    );
    assert.deepEqual(versions, { bad: 0, bad_time: 0 });
    const monotonic = await one<{ n: number }>(
      db,
      sql`SELECT count(*)::int AS n FROM (
            SELECT bug_version, at, lag(at) OVER (PARTITION BY bug_id ORDER BY bug_version) AS prev FROM (
              SELECT bug_id, bug_version, created_at AS at FROM comments
              UNION ALL SELECT DISTINCT bug_id, bug_version, changed_at FROM bug_changes) w) x
          WHERE at < prev`,
    );
    assert.equal(monotonic.n, 0, 'a later version is never earlier in time');

    const history = await one<{ moved: number; no_history: number; last_wrong: number; res_wrong: number }>(
      db,
      sql`WITH last_status AS (
            SELECT DISTINCT ON (bug_id) bug_id, new_value FROM bug_changes WHERE field = 'status'
            ORDER BY bug_id, bug_version DESC
          ), last_res AS (
            SELECT DISTINCT ON (bug_id) bug_id, new_value FROM bug_changes WHERE field = 'resolution'
            ORDER BY bug_id, bug_version DESC
          )
          SELECT count(*) FILTER (WHERE ls.bug_id IS NOT NULL)::int AS moved,
                 count(*) FILTER (WHERE ls.bug_id IS NULL AND b.status NOT IN ('UNCONFIRMED', 'NEW', 'ASSIGNED'))::int
                   AS no_history,
                 count(*) FILTER (WHERE ls.new_value <> b.status)::int AS last_wrong,
                 count(*) FILTER (WHERE lr.new_value IS DISTINCT FROM b.resolution AND lr.bug_id IS NOT NULL)::int
                   AS res_wrong
          FROM bugs b LEFT JOIN last_status ls ON ls.bug_id = b.id LEFT JOIN last_res lr ON lr.bug_id = b.id`,
    );
    assert.ok(history.moved > 500, `bugs with status history: ${history.moved}`);
    assert.equal(history.no_history, 0);
    assert.equal(history.last_wrong, 0, 'the last status change ends in the current status');
    assert.equal(history.res_wrong, 0, 'the last resolution change ends in the current resolution');

    const chain = await one<{ n: number }>(
      db,
      sql`SELECT count(*)::int AS n FROM (
            SELECT old_value, lag(new_value) OVER (PARTITION BY bug_id ORDER BY bug_version) AS prev
            FROM bug_changes WHERE field = 'status') x
          WHERE prev IS NOT NULL AND old_value <> prev`,
    );
    assert.equal(chain.n, 0, 'each status change starts where the previous one ended');
    const illegal = await one<{ n: number }>(
      db,
      sql`SELECT count(*)::int AS n FROM bug_changes h
          WHERE h.field = 'status' AND NOT EXISTS (
            SELECT 1 FROM status_transitions t WHERE t.from_status = h.old_value AND t.to_status = h.new_value)`,
    );
    assert.equal(illegal.n, 0, 'every status change is an allowed transition');
  });

  test('adds CC rows for some bugs', async () => {
    const r = await one<{ bugs: number; rows: number }>(
      db,
      sql`SELECT count(DISTINCT bug_id)::int AS bugs, count(*)::int AS rows FROM bug_cc`,
    );
    assert.ok(r.bugs > 150 && r.bugs < 450, `bugs with CCs: ${r.bugs}`);
  });

  test('seeding again reuses products and users and adds bugs after the existing ones', async () => {
    const again = await seed(db, { bugs: 50, users: 80, seed: 7, passwordHash: HASH });
    assert.deepEqual(
      {
        products: again.products,
        versions: again.versions,
        components: again.components,
        users: again.users,
      },
      { products: 0, versions: 0, components: 0, users: 0 },
    );
    assert.equal(again.bugs, 50);
    const r = await one<{ n: number; max: number }>(
      db,
      sql`SELECT count(*)::int AS n, max(id) AS max FROM bugs`,
    );
    assert.deepEqual(r, { n: 1050, max: 1050 });
  });
});

describe(`seed reproducibility (${kind})`, () => {
  const run = async (options: { seed: number; users?: number; batch?: number }) => {
    const t = await createTestDb();
    try {
      // An existing user whose address differs from a demo account only in case is kept, not duplicated.
      await t.db.query(
        sql`INSERT INTO users (email, name, kind, password_hash) VALUES ('Dev@Bugzot.example', 'Existing Dev', 'internal', 'x')`,
      );
      const summary = await seed(t.db, { bugs: 300, passwordHash: HASH, ...options });
      return { summary, print: await fingerprint(t.db) };
    } finally {
      await t.close();
    }
  };

  test('gives the same data for the same seed and different data for another seed', async () => {
    const a = await run({ seed: 42 });
    const b = await run({ seed: 42 });
    const c = await run({ seed: 43 });
    assert.equal(a.summary.users, 2 + 40, 'the existing dev@bugzot.example is skipped; 40 users by default');
    assert.deepEqual(b.print, a.print);
    assert.notEqual(c.print.bugs, a.print.bugs);
    assert.notEqual(c.print.comments, a.print.comments);
  });

  test('batches run side by side (PostgreSQL) give the same data whichever finishes first', async () => {
    const a = await run({ seed: 42, batch: 60 });
    const b = await run({ seed: 42, batch: 60 });
    assert.equal(a.summary.bugs, 300);
    assert.deepEqual(b.print, a.print);
  });
});
