/**
 * Demo data for Bugzot: products, users, and as many bugs (with comments, history and CCs) as asked
 * for. The bulk is generated inside PostgreSQL in batches, fast enough for a million bugs in minutes.
 */
import { availableParallelism } from 'node:os';
import { type Db, type Queryable, sql } from '../platform/db.ts';
import { type BugBatch, type BugBatchResult, bugBatchStatement, idsNeeded } from './bugs.ts';
import { prng, seedProducts, seedUsers } from './catalogue.ts';

/** What to generate. */
export interface SeedOptions {
  /** How many bugs to create. */
  bugs: number;
  /** How many users to generate besides the fixed demo accounts (default: bugs / 50, 40 to 20,000). */
  users?: number;
  /** Average number of comments per bug (default 3). */
  comments?: number;
  /** Makes the run reproducible: the same seed on the same empty database gives the same data. */
  seed?: number;
  /** Password hash every created user gets (hash one demo password once). */
  passwordHash: string;
  /** Bugs per statement (default 50,000 on PostgreSQL, 10,000 on PGlite); tests make it small. */
  batch?: number;
  /** Receives one progress line per step and per batch. */
  log?: (msg: string) => void;
}

/** Rows created by one call (rows that already existed are not counted), and how long it took. */
export interface SeedSummary {
  products: number;
  versions: number;
  components: number;
  users: number;
  bugs: number;
  comments: number;
  changes: number;
  ms: number;
}

/** Bugs per statement: big enough that round trips do not matter, small enough to keep memory modest. */
const BATCH = { postgres: 50_000, pglite: 10_000 } as const;

/** Batches run at once on PostgreSQL: one per core, at least two, at most four. */
const SEED_WORKERS = Math.max(2, Math.min(4, availableParallelism()));

/**
 * Reserves, in batch order, the ids every batch may use (bugs, comments, history), by moving the
 * tables' sequences past them. The lock keeps other writers from drawing ids meanwhile; ids a batch
 * reserved but did not use stay unused.
 */
async function reserveIds(db: Db, batches: BugBatch[], commentsPerBug: number): Promise<void> {
  const need = { bug: 0, comment: 0, change: 0 };
  const starts = batches.map((b) => {
    const start = { ...need };
    const n = idsNeeded(b.count, commentsPerBug);
    need.bug += n.bug;
    need.comment += n.comment;
    need.change += n.change;
    return start;
  });
  const [first] = await db.transaction(async (tx) => {
    await tx.query(sql`LOCK TABLE bugs, comments, bug_changes IN SHARE ROW EXCLUSIVE MODE`);
    // setval(s, nextval(s) + n - 1): the next n values are ours; the first of them is returned.
    const take = (table: string, n: number) =>
      sql`(SELECT (setval(q.s, nextval(q.s) + ${n}::bigint - 1) - ${n}::bigint + 1)::int
           FROM (SELECT pg_get_serial_sequence(${table}, 'id')::regclass AS s) q)`;
    return tx.query<{ bug: number; comment: number; change: number }>(sql`
      SELECT ${take('bugs', Math.max(1, need.bug))} AS bug, ${take('comments', Math.max(1, need.comment))} AS comment,
             ${take('bug_changes', Math.max(1, need.change))} AS change`);
  });
  batches.forEach((b, i) => {
    b.firstIds = {
      bug: first!.bug + starts[i]!.bug,
      comment: first!.comment + starts[i]!.comment,
      change: first!.change + starts[i]!.change,
    };
  });
}

/** Bugs are spread over this many days before now. */
const SPAN_DAYS = 730;

/** The setseed() value for step `n` of a run: each transaction reseeds, so a pooled connection is fine. */
function stepSeed(seed: number, n: number): number {
  return prng((seed * 1_000_003 + n * 7_919) >>> 0)() * 2 - 1;
}

async function reseed(tx: Queryable, seed: number, n: number): Promise<void> {
  await tx.query(sql`SELECT setseed(${stepSeed(seed, n)}::float8)`);
}

/** Creates demo products, users and `opts.bugs` bugs with comments and history; see SeedOptions. */
export async function seed(db: Db, opts: SeedOptions): Promise<SeedSummary> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const seedValue = opts.seed ?? 1;
  const userCount = opts.users ?? Math.min(20_000, Math.max(40, Math.round(opts.bugs / 50)));
  const commentsPerBug = opts.comments ?? 3;
  if (!Number.isInteger(opts.bugs) || opts.bugs < 0)
    throw new RangeError('seed: bugs must be a whole number >= 0');
  if (!Number.isInteger(userCount) || userCount < 0)
    throw new RangeError('seed: users must be a whole number >= 0');
  if (opts.batch !== undefined && !(Number.isInteger(opts.batch) && opts.batch >= 1))
    throw new RangeError('seed: batch must be a whole number >= 1');
  if (!(commentsPerBug >= 0 && commentsPerBug <= 100))
    throw new RangeError('seed: comments must be 0 to 100');
  const now = new Date();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;

  const users = await db.transaction(async (tx) => {
    await reseed(tx, seedValue, 0);
    return seedUsers(tx, { count: userCount, passwordHash: opts.passwordHash, now });
  });
  const pool = await db.query<{ id: number; kind: string }>(
    sql`SELECT id, kind FROM users WHERE NOT disabled ORDER BY id`,
  );
  const internalUserIds = pool.filter((u) => u.kind === 'internal').map((u) => u.id);
  const externalUserIds = pool.filter((u) => u.kind === 'external').map((u) => u.id);
  if (internalUserIds.length === 0) throw new Error('seed: no enabled internal user to assign bugs to');
  log(
    `seed: ${users} users created (${internalUserIds.length} internal, ${externalUserIds.length} external) ${elapsed()}`,
  );

  const catalogue = await db.transaction(async (tx) => {
    await reseed(tx, seedValue, 1);
    return seedProducts(tx, { bugs: opts.bugs, seed: seedValue, now, internalUserIds });
  });
  if (catalogue.products.length === 0) throw new Error('seed: no product with versions and components');
  log(
    `seed: ${catalogue.products.length} products (${catalogue.counts.products} new), ` +
      `${catalogue.counts.versions} versions, ${catalogue.counts.components} components created ${elapsed()}`,
  );

  const totals: BugBatchResult = { bugs: 0, comments: 0, changes: 0, cc: 0 };
  const context = {
    now,
    spanDays: SPAN_DAYS,
    products: catalogue.products,
    internalUserIds,
    externalUserIds,
    commentsPerBug,
  };
  const batchSize = opts.batch ?? BATCH[db.kind];
  const batches: (BugBatch & { n: number })[] = [];
  for (let offset = 0, n = 0; offset < opts.bugs; offset += batchSize, n++) {
    batches.push({ n, offset, count: Math.min(batchSize, opts.bugs - offset), total: opts.bugs });
  }
  // On PostgreSQL, batches run side by side, one per core: each has its own transaction and random
  // seed, and the ids of its rows come from ranges reserved up front in batch order, so the data is the
  // same whichever batch finishes first. (PGlite has a single connection: one after another.)
  const workers = db.kind === 'postgres' && batches.length > 1 ? SEED_WORKERS : 1;
  if (workers > 1) await reserveIds(db, batches, commentsPerBug);
  let done = 0;
  const runBatch = async (batch: BugBatch & { n: number }) => {
    const result = await db.transaction(async (tx) => {
      await reseed(tx, seedValue, 100 + batch.n);
      // Local to the transaction: a batch's sorts fit in memory, and JIT would spend seconds compiling
      // for the planner's (wildly high) row estimates of the lateral generate_series calls.
      await tx.query(sql`SELECT set_config('work_mem', '256MB', true), set_config('jit', 'off', true)`);
      const rows = await tx.query<BugBatchResult>(bugBatchStatement(context, batch));
      return rows[0]!;
    });
    totals.bugs += result.bugs;
    totals.comments += result.comments;
    totals.changes += result.changes;
    totals.cc += result.cc;
    done += batch.count;
    log(
      `seed: bugs ${done}/${opts.bugs} (+${result.comments} comments, +${result.changes} changes, ` +
        `+${result.cc} cc) ${elapsed()}`,
    );
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < batches.length) await runBatch(batches[next++]!);
    }),
  );

  await db.query(sql`ANALYZE users, products, versions, components, bugs, bug_cc, comments, bug_changes`);
  log(`seed: done, ${totals.bugs} bugs, ${totals.comments} comments, ${totals.changes} changes ${elapsed()}`);
  return {
    products: catalogue.counts.products,
    versions: catalogue.counts.versions,
    components: catalogue.counts.components,
    users,
    bugs: totals.bugs,
    comments: totals.comments,
    changes: totals.changes,
    ms: Math.round(performance.now() - started),
  };
}
