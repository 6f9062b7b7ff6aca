/**
 * Self-test of the test harness: createTestDb() hands out a migrated database of the engine the runner
 * chose, migrating twice is a no-op, and (on PostgreSQL) close() really drops the database.
 * Runs in both passes of `npm test`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { type Db, sql } from '../src/platform/db.ts';
import { loadMigrations, migrate } from '../src/platform/migrate.ts';
import { createTestDb, type TestDb, testDbKind } from './helpers/db.ts';

/** Thrown to roll a transaction back on purpose. */
class Rollback extends Error {}

const kind = testDbKind();

describe(`test database (${kind})`, () => {
  let testDb: TestDb;
  let db: Db;

  before(async () => {
    testDb = await createTestDb();
    db = testDb.db;
  });

  after(async () => {
    await testDb?.close();
  });

  test('is the engine BUGZOT_TEST_DB asks for', () => {
    assert.equal(db.kind, kind);
    assert.equal(testDb.url !== undefined, kind === 'postgres');
  });

  test('has every migration recorded in schema_migrations', async () => {
    const rows = await db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM schema_migrations`);
    assert.ok(rows[0]!.n > 0, 'schema_migrations is empty');
    assert.equal(rows[0]!.n, loadMigrations().length);
  });

  test('has the bugs table', async () => {
    const rows = await db.query<{ t: string | null }>(sql`SELECT to_regclass('public.bugs')::text AS t`);
    assert.equal(rows[0]!.t, 'bugs');
  });

  test('applies nothing when migrated again', async () => {
    assert.deepEqual(await migrate(db), []);
  });

  test('can create the pg_trgm extension', async () => {
    // Inside a transaction that is rolled back, so the database stays exactly as the migrations left it.
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.execScript('CREATE EXTENSION IF NOT EXISTS pg_trgm');
        const rows = await tx.query<{ s: number }>(sql`SELECT similarity('crash', 'crashes')::float8 AS s`);
        assert.ok(rows[0]!.s > 0);
        throw new Rollback();
      }),
      Rollback,
    );
  });
});

// Only PostgreSQL leaves something behind to clean up; PGlite lives in memory.
if (kind === 'postgres') {
  test('close() drops the PostgreSQL test database', async () => {
    const { url, close } = await createTestDb();
    const name = new URL(url!).pathname.slice(1);
    await close();
    const admin = postgres(process.env['BUGZOT_TEST_DATABASE_URL']!, { max: 1, onnotice: () => {} });
    try {
      const rows = await admin`SELECT 1 FROM pg_database WHERE datname = ${name}`;
      assert.equal(rows.length, 0, `${name} still exists`);
    } finally {
      await admin.end({ timeout: 5 });
    }
  });
}
