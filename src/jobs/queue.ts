/**
 * The durable job queue in PostgreSQL: enqueue inside any transaction, claim due jobs with
 * FOR UPDATE SKIP LOCKED under a lease, then finish, retry with exponential backoff, or give up into
 * the `failed` state where admins see and retry them. Safe with any number of workers at once.
 */
import { isUniqueViolation, type Queryable, type Sql, sql } from '../platform/db.ts';
import { notFound } from '../platform/errors.ts';

/** The channel a worker listens on to hear of new jobs without waiting for its next poll. */
export const JOBS_CHANNEL = 'bugzot_jobs';

/** What to enqueue. */
export interface NewJob {
  kind: string;
  /** Ids, not data: the handler loads what it needs when it runs. */
  payload: Record<string, unknown>;
  /** Earliest run time (default now). */
  runAt?: Date | undefined;
  /** At most one job of this kind with this key, ever: enqueueing it again does nothing. */
  idempotencyKey?: string | undefined;
  /** At most one pending job of this kind with this key: a second enqueue joins the waiting one. */
  groupKey?: string | undefined;
}

/** A job as stored. */
export interface Job<P = Record<string, unknown>> {
  id: number;
  kind: string;
  payload: P;
  state: 'pending' | 'running' | 'done' | 'failed';
  runAt: Date;
  attempts: number;
  lastError: string | null;
  lockedBy: string | null;
  idempotencyKey: string | null;
  createdAt: Date;
  windowStart: Date;
  finishedAt: Date | null;
}

interface JobRow {
  id: number | string;
  kind: string;
  payload: Record<string, unknown> | string;
  state: Job['state'];
  run_at: Date;
  attempts: number;
  last_error: string | null;
  locked_by: string | null;
  idempotency_key: string | null;
  created_at: Date;
  window_start: Date;
  finished_at: Date | null;
}

function toJob(r: JobRow): Job {
  return {
    id: Number(r.id),
    kind: r.kind,
    payload: typeof r.payload === 'string' ? (JSON.parse(r.payload) as Record<string, unknown>) : r.payload,
    state: r.state,
    runAt: r.run_at,
    attempts: r.attempts,
    lastError: r.last_error,
    lockedBy: r.locked_by,
    idempotencyKey: r.idempotency_key,
    createdAt: r.created_at,
    windowStart: r.window_start,
    finishedAt: r.finished_at,
  };
}

const COLUMNS = sql`id, kind, payload, state, run_at, attempts, last_error, locked_by, idempotency_key,
  created_at, window_start, finished_at`;

/**
 * Enqueues a job in the caller's transaction (it exists only if that commits). Returns its id, or null
 * when a job with the same idempotency key exists or a pending job with the same group key waits.
 */
export async function enqueue(tx: Queryable, job: NewJob): Promise<number | null> {
  const runAt = job.runAt ?? null;
  const payload = JSON.stringify(job.payload);
  const rows = job.groupKey
    ? await tx.query<{ id: number | string }>(sql`
        INSERT INTO jobs (kind, payload, run_at, idempotency_key, group_key)
        VALUES (${job.kind}, ${payload}::text::jsonb, COALESCE(${runAt}::timestamptz, now()),
                ${job.idempotencyKey ?? null}, ${job.groupKey})
        ON CONFLICT (kind, group_key) WHERE group_key IS NOT NULL AND state = 'pending' DO NOTHING
        RETURNING id`)
    : job.idempotencyKey
      ? await tx.query<{ id: number | string }>(sql`
        INSERT INTO jobs (kind, payload, run_at, idempotency_key)
        VALUES (${job.kind}, ${payload}::text::jsonb, COALESCE(${runAt}::timestamptz, now()), ${job.idempotencyKey})
        ON CONFLICT (kind, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id`)
      : await tx.query<{ id: number | string }>(sql`
        INSERT INTO jobs (kind, payload, run_at)
        VALUES (${job.kind}, ${payload}::text::jsonb, COALESCE(${runAt}::timestamptz, now()))
        RETURNING id`);
  if (rows.length === 0) return null;
  // Delivered on commit: idle workers wake up instead of waiting for their next poll.
  await tx.query(sql`SELECT pg_notify(${JOBS_CHANNEL}, ${job.kind})`);
  return Number(rows[0]!.id);
}

/**
 * Claims up to `limit` due jobs of the given kinds for `workerId`, leased for `leaseMs`. A job whose
 * worker died (lease run out while running) is due again. SKIP LOCKED: two workers never claim one job.
 */
export async function claimJobs(
  q: Queryable,
  workerId: string,
  kinds: readonly string[],
  limit: number,
  leaseMs: number,
): Promise<Job[]> {
  // Two statements, each served by its own partial index (an OR of both would scan the whole table):
  // first jobs whose worker died (rare), then due pending jobs.
  const claim = async (due: Sql, n: number) =>
    (
      await q.query<JobRow>(sql`
        UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = ${workerId},
          locked_until = now() + make_interval(secs => ${leaseMs / 1000})
        WHERE id IN (
          SELECT id FROM jobs WHERE kind = ANY(${[...kinds]}::text[]) AND ${due}
          ORDER BY run_at, id LIMIT ${n}
          FOR UPDATE SKIP LOCKED)
        RETURNING ${COLUMNS}`)
    ).map(toJob);
  const orphans = await claim(sql`state = 'running' AND locked_until < now()`, limit);
  if (orphans.length >= limit) return orphans;
  const due = await claim(sql`state = 'pending' AND run_at <= now()`, limit - orphans.length);
  return [...orphans, ...due];
}

/** The claim a worker holds on a job: only the holder of the current attempt may finish it. */
export interface Claim {
  id: number;
  attempts: number;
  workerId: string;
}

const held = (c: Claim) =>
  sql`id = ${c.id} AND state = 'running' AND locked_by = ${c.workerId} AND attempts = ${c.attempts}`;

/** Marks a claimed job done. Returns false when the claim was lost (lease ran out and another took it). */
export async function completeJob(q: Queryable, c: Claim): Promise<boolean> {
  const rows = await q.query(sql`
    UPDATE jobs SET state = 'done', finished_at = now(), locked_by = NULL, locked_until = NULL, last_error = NULL
    WHERE ${held(c)} RETURNING id`);
  return rows.length > 0;
}

/**
 * Puts a claimed job back to wait until `runAt` without counting the attempt (a batch still gathering).
 * When another job of the same group is already waiting (enqueued while this one ran), this one is done
 * instead: the waiting one takes over its work.
 */
export async function deferJob(q: Queryable, c: Claim, runAt: Date): Promise<boolean> {
  try {
    const rows = await q.query(sql`
      UPDATE jobs j SET
        state = CASE WHEN j.group_key IS NOT NULL AND EXISTS (
                  SELECT 1 FROM jobs o WHERE o.kind = j.kind AND o.group_key = j.group_key
                    AND o.state = 'pending' AND o.id <> j.id) THEN 'done' ELSE 'pending' END,
        run_at = ${runAt}, attempts = j.attempts - 1, locked_by = NULL, locked_until = NULL
      WHERE ${held(c)} RETURNING j.id`);
    return rows.length > 0;
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    return completeJob(q, c);
  }
}

/** Exponential backoff with jitter: base · 2^(attempt-1), capped, ±20 %. */
export function backoffMs(attempt: number, baseMs: number, capMs: number): number {
  const plain = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(plain * (0.8 + Math.random() * 0.4));
}

/**
 * Records a failed attempt: the job waits `retryInMs` and runs again, unless its give-up time (counted
 * from window_start) has passed or `permanent` is set: then it is `failed` until an admin retries it.
 */
export async function failJob(
  q: Queryable,
  c: Claim,
  error: string,
  retryInMs: number,
  giveUpAfterMs: number,
  permanent = false,
): Promise<'retry' | 'failed' | 'lost'> {
  const rows = await q.query<{ state: string }>(sql`
    UPDATE jobs SET
      state = CASE WHEN ${permanent} OR now() + make_interval(secs => ${retryInMs / 1000})
                        > window_start + make_interval(secs => ${giveUpAfterMs / 1000})
                   THEN 'failed' ELSE 'pending' END,
      run_at = now() + make_interval(secs => ${retryInMs / 1000}),
      finished_at = CASE WHEN ${permanent} OR now() + make_interval(secs => ${retryInMs / 1000})
                        > window_start + make_interval(secs => ${giveUpAfterMs / 1000})
                   THEN now() END,
      last_error = ${error.slice(0, 2000)}, locked_by = NULL, locked_until = NULL
    WHERE ${held(c)} RETURNING state`);
  if (rows.length === 0) return 'lost';
  return rows[0]!.state === 'failed' ? 'failed' : 'retry';
}

/** Filters for listing jobs (the admin view). */
export interface JobFilter {
  state?: Job['state'] | 'retrying' | undefined;
  kind?: string | undefined;
  limit?: number | undefined;
  beforeId?: number | undefined;
}

/** Jobs matching the filter, newest first. `retrying`: pending jobs that have failed at least once. */
export async function listJobs(q: Queryable, f: JobFilter = {}): Promise<Job[]> {
  const state =
    f.state === 'retrying'
      ? sql`state = 'pending' AND attempts > 0 AND last_error IS NOT NULL`
      : f.state
        ? sql`state = ${f.state}`
        : sql`TRUE`;
  const rows = await q.query<JobRow>(sql`
    SELECT ${COLUMNS} FROM jobs
    WHERE ${state} AND (${f.kind ?? null}::text IS NULL OR kind = ${f.kind ?? null})
      AND (${f.beforeId ?? null}::bigint IS NULL OR id < ${f.beforeId ?? null})
    ORDER BY id DESC LIMIT ${f.limit ?? 50}`);
  return rows.map(toJob);
}

/** One job by id (404 when absent). */
export async function getJob(q: Queryable, id: number): Promise<Job> {
  const [row] = await q.query<JobRow>(sql`SELECT ${COLUMNS} FROM jobs WHERE id = ${id}`);
  if (!row) throw notFound('Job', id);
  return toJob(row);
}

/**
 * Sends a failed (or retrying) job round again now, with a fresh give-up window. Jobs that are done or
 * running are left alone (a done job must not run twice). Returns the job as it now is.
 */
export async function retryJob(q: Queryable, id: number): Promise<Job> {
  const rows = await q.query<JobRow>(sql`
    UPDATE jobs SET state = 'pending', run_at = now(), window_start = now(), attempts = 0, finished_at = NULL,
      group_key = NULL
    WHERE id = ${id} AND state IN ('failed', 'pending') RETURNING ${COLUMNS}`);
  if (rows.length) await q.query(sql`SELECT pg_notify(${JOBS_CHANNEL}, 'retry')`);
  return rows[0] ? toJob(rows[0]) : getJob(q, id);
}

/** Counts per state (for the admin view and metrics). */
export async function jobCounts(q: Queryable): Promise<Record<string, number>> {
  const rows = await q.query<{ state: string; n: number | string }>(
    sql`SELECT state, count(*) AS n FROM jobs GROUP BY state`,
  );
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

/** Deletes jobs done longer ago than `olderThanMs` (failed ones stay until an admin acts). */
export async function purgeDoneJobs(q: Queryable, olderThanMs: number): Promise<number> {
  const rows = await q.query(sql`
    DELETE FROM jobs WHERE state = 'done' AND finished_at < now() - make_interval(secs => ${olderThanMs / 1000})
    RETURNING id`);
  return rows.length;
}
