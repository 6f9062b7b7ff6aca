/**
 * A fresh, migrated database for one test (or one test file). Which engine is chosen by the test runner
 * (scripts/test.ts) through the environment:
 *
 * - BUGZOT_TEST_DB=pglite (default): an in-memory PGlite, gone when closed.
 * - BUGZOT_TEST_DB=postgres: a new database `bugzot_t_<random>` on the server named by
 *   BUGZOT_TEST_DATABASE_URL (a superuser URL of a maintenance database such as `postgres`), dropped
 *   again when closed.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { type Db, openPglite, openPostgres } from '../../src/platform/db.ts';
import { migrate } from '../../src/platform/migrate.ts';

/** Which engine the tests of this process run against. */
export type TestDbKind = 'pglite' | 'postgres';

/** A migrated database owned by one test; call `close()` when done (e.g. in `after`). */
export interface TestDb {
  db: Db;
  /** Connection URL of the test database (postgres only), for code that opens its own pool. */
  url?: string;
  /** Closes the connections and throws the database away; safe to call more than once. */
  close(): Promise<void>;
}

/** Pool size per test database: small, since many test processes share one server. */
const POOL_MAX = 5;

/** The engine chosen by BUGZOT_TEST_DB (default 'pglite'); use it in test names to tell the passes apart. */
export function testDbKind(): TestDbKind {
  const kind = process.env['BUGZOT_TEST_DB'] || 'pglite';
  if (kind !== 'pglite' && kind !== 'postgres') {
    throw new Error(`BUGZOT_TEST_DB must be 'pglite' or 'postgres', not '${kind}'`);
  }
  return kind;
}

/** Creates a fresh database of the chosen engine and applies every migration to it. */
export async function createTestDb(): Promise<TestDb> {
  return testDbKind() === 'postgres' ? createPostgresDb() : createPgliteDb();
}

/** An in-memory PGlite: nothing to clean up but the instance itself. */
async function createPgliteDb(): Promise<TestDb> {
  const db = await openPglite(undefined);
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return { db, close: () => db.close() };
}

/** A new database on the test server, dropped on close. */
async function createPostgresDb(): Promise<TestDb> {
  const maintenanceUrl = process.env['BUGZOT_TEST_DATABASE_URL'];
  if (!maintenanceUrl) {
    throw new Error(
      'BUGZOT_TEST_DB=postgres needs BUGZOT_TEST_DATABASE_URL (a superuser URL such as ' +
        'postgres://postgres@127.0.0.1:5432/postgres); `npm test` sets both for you',
    );
  }
  // Only [a-z0-9_], so the name is safe to splice into the statement (identifiers cannot be bound).
  const name = `bugzot_t_${randomBytes(6).toString('hex')}`;
  const url = new URL(maintenanceUrl);
  url.pathname = `/${name}`;

  await maintenance(maintenanceUrl, `CREATE DATABASE ${name}`);
  let db: Db | undefined;
  try {
    // As served (SEARCH_PARALLEL's default): word searches run as two statements at once.
    db = await openPostgres(url.toString(), POOL_MAX, { parallel: 2 });
    await migrate(db);
  } catch (err) {
    await db?.close();
    await maintenance(maintenanceUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    throw err;
  }

  const opened = db;
  let closing: Promise<void> | undefined;
  return {
    db: opened,
    url: url.toString(),
    close() {
      closing ??= (async () => {
        try {
          await opened.close();
        } finally {
          // FORCE ends connections a test leaked (its own pools, say), so the drop never waits on them.
          await maintenance(maintenanceUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        }
      })();
      return closing;
    },
  };
}

/**
 * Runs one statement on the maintenance database over a short-lived connection. Nothing is kept open
 * between calls, so a test process never stays alive on an idle maintenance connection.
 */
async function maintenance(url: string, statement: string): Promise<void> {
  const client = postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: 'bugzot-test' },
  });
  try {
    await client.unsafe(statement);
  } finally {
    await client.end({ timeout: 5 });
  }
}
