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
  /**
   * Present on a PostgreSQL pool with connections to spare (not on PGlite, which has one connection, nor
   * inside a transaction): runs up to `width` read-only statements at once, each on its own connection,
   * all in one snapshot, so that their answers add up as one statement's would.
   */
  readonly parallel?: Parallel | undefined;
}

/** Statements run at once on separate connections that share one snapshot. */
export interface Parallel {
  /** How many statements may run at once (2 or more). */
  readonly width: number;
  /** Runs `qs` (at most `width`) concurrently; the rows of each, in order. */
  run<T = Record<string, unknown>>(qs: Sql[]): Promise<T[][]>;
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

/**
 * Connects to a PostgreSQL server through a postgres.js connection pool. `parallel` (default 1: none) is how many statements one search may run at once on
 * separate connections; it is capped at half the pool so that searches alone never hold every connection.
 */
export async function openPostgres(url: string, max: number, opts: { parallel?: number } = {}): Promise<Db> {
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
  const width = Math.min(opts.parallel ?? 1, Math.floor(max / 2));
  return {
    kind: 'postgres',
    query: (q) => run(client, q),
    parallel: width >= 2 ? parallelRunner(client, width, run) : undefined,
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

/**
 * Statements worth running in parallel read many rows: planning each for its own values costs far less
 * than a generic plan that cannot see them (one that left a word out of the text index's condition
 * because it could not tell how many bugs a status list matches read 27,000 pages instead of 600).
 */
const CUSTOM_PLANS = 'SET LOCAL plan_cache_mode = force_custom_plan';

/**
 * Runs statements at once on reserved connections in one snapshot: the first connection opens a
 * REPEATABLE READ READ ONLY transaction and exports its snapshot, the others import it
 * (`SET TRANSACTION SNAPSHOT`), so rows changed meanwhile are seen by all or by none.
 */
function parallelRunner(
  client: postgres.Sql,
  width: number,
  run: <T>(conn: postgres.Sql | postgres.TransactionSql, q: Sql) => Promise<T[]>,
): Parallel {
  // Connections are reserved one request at a time: two searches each holding one connection while
  // waiting for a second could otherwise wait for each other forever once the pool is exhausted.
  let reserving: Promise<unknown> = Promise.resolve();
  const reserve = (n: number): Promise<postgres.ReservedSql[]> => {
    const next = reserving.then(async () => {
      const conns: postgres.ReservedSql[] = [];
      try {
        for (let i = 0; i < n; i++) conns.push(await client.reserve());
      } catch (err) {
        for (const c of conns) c.release();
        throw err;
      }
      return conns;
    });
    reserving = next.catch(() => {});
    return next;
  };
  return {
    width,
    async run<T>(qs: Sql[]): Promise<T[][]> {
      if (qs.length > width) throw new Error(`at most ${width} statements at once, not ${qs.length}`);
      if (qs.length < 2) return Promise.all(qs.map((q) => run<T>(client, q)));
      const conns = await reserve(qs.length);
      try {
        const first = conns[0]!;
        const results = (await first
          .unsafe(
            `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${CUSTOM_PLANS}; SELECT pg_export_snapshot() AS id`,
          )
          .simple()) as unknown as { id?: string }[][];
        // The rows of the last statement (postgres.js leaves out some commands' empty results).
        const id = String(results.at(-1)?.[0]?.id);
        // The identifier comes from the server (hex digits and dashes); checked before it is spliced in,
        // since SET TRANSACTION SNAPSHOT takes no parameters.
        if (!/^[0-9A-F-]+$/i.test(id)) throw new Error(`unexpected snapshot identifier ${id}`);
        await Promise.all(
          conns
            .slice(1)
            .map((c) =>
              c
                .unsafe(
                  `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '${id}'; ${CUSTOM_PLANS}`,
                )
                .simple(),
            ),
        );
        return await Promise.all(qs.map((q, i) => run<T>(conns[i]!, q)));
      } finally {
        await Promise.all(
          conns.map(async (c) => {
            // Every connection goes back to the pool outside a transaction (read only: nothing to keep;
            // ROLLBACK where none was begun only warns).
            try {
              await c.unsafe('ROLLBACK');
            } catch {
              // A connection that cannot roll back is broken; postgres.js replaces it.
            }
            c.release();
          }),
        );
      }
    },
  };
}

/** Opens the database the configuration names: PostgreSQL when a URL is given, else PGlite in `dataDir`. */
export function openDatabase(opts: {
  databaseUrl?: string | undefined;
  dataDir: string;
  poolMax: number;
  searchParallel?: number;
}) {
  return opts.databaseUrl
    ? openPostgres(opts.databaseUrl, opts.poolMax, { parallel: opts.searchParallel ?? 1 })
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
