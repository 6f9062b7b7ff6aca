/**
 * The database adapter: one small interface over PGlite (embedded PostgreSQL, the default) and a real
 * PostgreSQL server through postgres.js (when DATABASE_URL is set). Every query is a parameterised
 * `Sql` value built with the `sql` tag; there is no way to run a string with values spliced in.
 */
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { type Sql, default as sql } from 'sql-template-tag';

export { empty, join, raw, type Sql } from 'sql-template-tag';
export { sql };

/** Something queries can run on: the pool, or a transaction. */
export interface Queryable {
  /** Runs one parameterised statement and returns its rows. */
  query<T = Record<string, unknown>>(q: Sql): Promise<T[]>;
}

/** The database: queries, transactions, and migration scripts. */
export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable & { execScript(text: string): Promise<void> }) => Promise<T>): Promise<T>;
  /** Runs a trusted multi-statement script (migrations only; never user input). */
  execScript(text: string): Promise<void>;
  /**
   * Subscribes to a notification channel (PostgreSQL LISTEN). `onReconnect` runs when the listening
   * connection was lost and is back: notifications may have been missed meanwhile.
   */
  listen(
    channel: string,
    onMessage: (payload: string) => void,
    onReconnect: () => void,
  ): Promise<() => Promise<void>>;
  /** Waits (up to `ms`) until no statement is running: handlers of aborted requests may still be at work. */
  drain(ms: number): Promise<void>;
  /** Pool statistics for readiness and metrics. */
  stats(): { total: number; idle: number };
  close(): Promise<void>;
}

/**
 * PGlite is one process's database: a second process opening the same folder would corrupt it. A lock
 * file holding the owner's pid keeps a second `bugzot` out (a stale lock of a dead process is taken over).
 */
function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      // Created whole (written aside, then linked into place), so a lock file never exists empty: a
      // second process must not read a half-written lock as stale.
      const aside = `${lock}.${process.pid}`;
      writeFileSync(aside, String(process.pid));
      try {
        linkSync(aside, lock);
      } finally {
        rmSync(aside, { force: true });
      }
      const release = () => rmSync(lock, { force: true });
      process.once('exit', release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lock, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new Error(
          `the embedded database in ${dir} is in use by process ${pid}; stop it first (or use DATABASE_URL for several processes)`,
        );
      }
      rmSync(lock, { force: true });
    }
  }
  throw new Error(`cannot lock ${dir}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Opens the embedded PGlite database stored in `dir` (or in memory when `dir` is undefined). */
export async function openPglite(dir: string | undefined): Promise<Db> {
  const release = dir ? lockDataDir(dir) : () => {};
  let pg: PGlite;
  try {
    // Loaded here, not at the top: a process on PostgreSQL never needs the embedded engine's code.
    const [{ PGlite }, { pg_trgm }] = await Promise.all([
      import('@electric-sql/pglite'),
      import('@electric-sql/pglite/contrib/pg_trgm'),
    ]);
    pg = await PGlite.create(dir ?? 'memory://', { extensions: { pg_trgm } });
  } catch (err) {
    release();
    throw err;
  }
  return {
    kind: 'pglite',
    async query<T>(q: Sql) {
      const res = await pg.query<T>(q.text, q.values);
      return res.rows;
    },
    transaction(fn) {
      return pg.transaction((tx) =>
        fn({
          async query<T>(q: Sql) {
            return (await tx.query<T>(q.text, q.values)).rows;
          },
          async execScript(text: string) {
            await tx.exec(text);
          },
        }),
      );
    },
    async execScript(text) {
      await pg.exec(text);
    },
    async listen(channel, onMessage) {
      return pg.listen(channel, onMessage);
    },
    drain: async () => {},
    stats: () => ({ total: 1, idle: 1 }),
    async close() {
      if (!pg.closed) await pg.close();
      release();
    },
  };
}

/** Connects to a PostgreSQL server through a postgres.js connection pool. */
export async function openPostgres(url: string, max: number): Promise<Db> {
  const client = postgres(url, {
    max,
    onnotice: () => {},
    // JIT compilation costs tens of ms on the short, frequent statements Bugzot runs and never pays back.
    connection: { application_name: 'bugzot', jit: 'off' },
    // Timestamps and numbers arrive as JS values, as they do from PGlite.
    types: {},
  });
  let running = 0;
  const run = async <T>(conn: postgres.Sql | postgres.TransactionSql, q: Sql): Promise<T[]> => {
    running++;
    try {
      const rows = await conn.unsafe(q.text, q.values as postgres.ParameterOrJSON<never>[], {
        prepare: q.values.length > 0,
      });
      return rows as unknown as T[];
    } finally {
      running--;
    }
  };
  // A cheap round trip fails fast on a wrong URL or an unreachable server.
  await client`select 1`;
  return {
    kind: 'postgres',
    query: (q) => run(client, q),
    async transaction(fn) {
      return (await client.begin((tx) =>
        fn({
          query: (q) => run(tx, q),
          async execScript(text: string) {
            await tx.unsafe(text);
          },
        }),
      )) as never;
    },
    async execScript(text) {
      await client.unsafe(text);
    },
    async listen(channel, onMessage, onReconnect) {
      let first = true;
      const sub = await client.listen(channel, onMessage, () => {
        if (!first) onReconnect();
        first = false;
      });
      return () => sub.unlisten();
    },
    drain: (ms) => waitUntil(() => running === 0, ms),
    stats: () => ({ total: max, idle: max }),
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

/** Opens the database the configuration names: PostgreSQL when a URL is given, else PGlite in `dataDir`. */
export function openDatabase(opts: { databaseUrl?: string | undefined; dataDir: string; poolMax: number }) {
  return opts.databaseUrl
    ? openPostgres(opts.databaseUrl, opts.poolMax)
    : openPglite(`${opts.dataDir}/pglite`);
}

async function waitUntil(done: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
}

/** PostgreSQL's SQLSTATE of an error from either driver, if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** True for a unique-constraint violation (23505). */
export const isUniqueViolation = (err: unknown) => sqlState(err) === '23505';
