/**
 * The durable job queue on its own: idempotency and group keys, SKIP LOCKED claiming, leases taken over
 * from a dead worker, retries with exponential backoff, give-up into `failed` and retry, and two workers
 * sharing one queue running each job exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  enqueue,
  getJob,
  type Job,
  type JobHandler,
  PermanentJobError,
  retryJob,
  Worker,
} from '../src/jobs/index.ts';
import { claimJobs, completeJob, failJob } from '../src/jobs/queue.ts';
import { sql } from '../src/platform/db.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';

/** A logger that prints nothing. */
const memoryLog = () => ({ info() {}, warn() {}, error() {} });

/** Waits until `check` holds, or fails naming `what`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const options = (over: Partial<ConstructorParameters<typeof Worker>[2]> = {}) => ({
  concurrency: 4,
  pollMs: 20,
  leaseMs: 60_000,
  retryBaseMs: 100,
  retryCapMs: 10_000,
  giveUpAfterMs: 60_000,
  log: memoryLog(),
  ...over,
});

describe('job queue', () => {
  let tdb: TestDb;
  before(async () => {
    tdb = await createTestDb();
  });
  after(() => tdb.close());
  const kind = (name: string) => `test.${name}.${Math.random().toString(36).slice(2, 8)}`;

  test('an idempotency key admits one job ever; a group key one pending job', async () => {
    const k = kind('idem');
    assert.ok(await enqueue(tdb.db, { kind: k, payload: { n: 1 }, idempotencyKey: 'a' }));
    assert.equal(await enqueue(tdb.db, { kind: k, payload: { n: 2 }, idempotencyKey: 'a' }), null);
    assert.ok(await enqueue(tdb.db, { kind: k, payload: { n: 3 }, idempotencyKey: 'b' }));

    const g = kind('group');
    const first = await enqueue(tdb.db, { kind: g, payload: {}, groupKey: 'x' });
    assert.ok(first);
    assert.equal(await enqueue(tdb.db, { kind: g, payload: {}, groupKey: 'x' }), null);
    const [claimed] = await claimJobs(tdb.db, 'w1', [g], 10, 60_000);
    assert.equal(claimed!.id, first);
    // Once the waiting job runs, a new change starts a new group.
    assert.ok(await enqueue(tdb.db, { kind: g, payload: {}, groupKey: 'x' }));
  });

  test('a job enqueued in a transaction that rolls back does not exist', async () => {
    const k = kind('tx');
    await assert.rejects(
      tdb.db.transaction(async (tx) => {
        await enqueue(tx, { kind: k, payload: {} });
        throw new Error('rolled back');
      }),
    );
    const rows = await tdb.db.query(sql`SELECT 1 FROM jobs WHERE kind = ${k}`);
    assert.equal(rows.length, 0);
  });

  test('a claimed job is not claimed again until its lease runs out; then the late worker cannot finish it', async () => {
    const k = kind('lease');
    const id = await enqueue(tdb.db, { kind: k, payload: {} });
    const [a] = await claimJobs(tdb.db, 'worker-a', [k], 10, 300);
    assert.equal(a!.id, id);
    assert.deepEqual(await claimJobs(tdb.db, 'worker-b', [k], 10, 300), []);
    await new Promise((r) => setTimeout(r, 400));
    const [b] = await claimJobs(tdb.db, 'worker-b', [k], 10, 60_000);
    assert.equal(b!.id, id, 'worker-a died: worker-b takes the job over');
    assert.equal(b!.attempts, 2);
    assert.equal(
      await completeJob(tdb.db, { id: a!.id, attempts: a!.attempts, workerId: 'worker-a' }),
      false,
    );
    assert.equal(await completeJob(tdb.db, { id: b!.id, attempts: b!.attempts, workerId: 'worker-b' }), true);
    assert.equal((await getJob(tdb.db, id!)).state, 'done');
  });

  test('concurrent claims never share a job (FOR UPDATE SKIP LOCKED)', async () => {
    const k = kind('skip');
    for (let i = 0; i < 40; i++) await enqueue(tdb.db, { kind: k, payload: { i } });
    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, i) => claimJobs(tdb.db, `w${i}`, [k], 5, 60_000)),
    );
    const ids = claims.flat().map((j) => j.id);
    assert.equal(ids.length, 40);
    assert.equal(new Set(ids).size, 40);
  });

  test('a failing job is retried with exponential backoff, then succeeds', async () => {
    const k = kind('retry');
    const runs: number[] = [];
    const handler: JobHandler = {
      kind: k,
      async run() {
        runs.push(Date.now());
        if (runs.length <= 3) throw new Error(`failure ${runs.length}`);
        return undefined;
      },
    };
    const id = await enqueue(tdb.db, { kind: k, payload: {} });
    const worker = new Worker(tdb.db, [handler], options({ retryBaseMs: 150 }));
    await worker.start();
    await until('job done', async () => (await getJob(tdb.db, id!)).state === 'done');
    await worker.stop();
    assert.equal(runs.length, 4);
    const gaps = runs.slice(1).map((t, i) => t - runs[i]!);
    // 150, 300, 600 ms (±20 % jitter), plus polling.
    assert.ok(gaps[0]! >= 150 * 0.8, `first gap ${gaps[0]}`);
    assert.ok(gaps[1]! >= 300 * 0.8, `second gap ${gaps[1]}`);
    assert.ok(gaps[2]! >= 600 * 0.8, `third gap ${gaps[2]}`);
    assert.ok(gaps[2]! > gaps[0]!, 'delays grow');
    const job = await getJob(tdb.db, id!);
    assert.equal(job.attempts, 4);
    assert.equal(job.lastError, null);
  });

  test('a job failing past its give-up time is failed; retried, it runs again', async () => {
    const k = kind('giveup');
    let healthy = false;
    const handler: JobHandler = {
      kind: k,
      giveUpAfterMs: 300,
      async run() {
        if (!healthy) throw new Error('server said no');
        return undefined;
      },
    };
    const id = await enqueue(tdb.db, { kind: k, payload: {} });
    const worker = new Worker(tdb.db, [handler], options({ retryBaseMs: 50 }));
    await worker.start();
    await until('job failed', async () => (await getJob(tdb.db, id!)).state === 'failed');
    let job = await getJob(tdb.db, id!);
    assert.equal(job.lastError, 'server said no');
    assert.ok(job.attempts >= 2);
    healthy = true;
    job = await retryJob(tdb.db, id!);
    assert.equal(job.state, 'pending');
    assert.equal(job.attempts, 0);
    await until('job done', async () => (await getJob(tdb.db, id!)).state === 'done');
    await worker.stop();
  });

  test('a permanent error fails at once; an unknown kind is never claimed', async () => {
    const k = kind('permanent');
    const id = await enqueue(tdb.db, { kind: k, payload: {} });
    const w = new Worker(
      tdb.db,
      [{ kind: k, run: async () => Promise.reject(new PermanentJobError('bad payload')) }],
      options(),
    );
    await w.drain();
    const job = await getJob(tdb.db, id!);
    assert.equal(job.state, 'failed');
    assert.equal(job.attempts, 1);
    const stray = await enqueue(tdb.db, { kind: kind('nobody'), payload: {} });
    await w.drain();
    assert.equal((await getJob(tdb.db, stray!)).state, 'pending');
  });

  test('a job may defer itself without using up an attempt', async () => {
    const k = kind('defer');
    let calls = 0;
    const id = await enqueue(tdb.db, { kind: k, payload: {}, groupKey: 'g' });
    const w = new Worker(
      tdb.db,
      [
        {
          kind: k,
          run: async () => (++calls === 1 ? { deferUntil: new Date(Date.now() + 200) } : undefined),
        },
      ],
      options(),
    );
    await w.drain();
    let job = await getJob(tdb.db, id!);
    assert.equal(job.state, 'pending');
    assert.equal(job.attempts, 0);
    await new Promise((r) => setTimeout(r, 250));
    await w.drain();
    job = await getJob(tdb.db, id!);
    assert.equal(job.state, 'done');
    assert.equal(calls, 2);
  });

  test('two workers at once run each of 200 jobs exactly once', async () => {
    const k = kind('two');
    const seen = new Map<number, number>();
    const by = new Map<string, number>();
    const make = () => {
      const w: Worker = new Worker(
        tdb.db,
        [
          {
            kind: k,
            async run(job: Job) {
              seen.set(job.id, (seen.get(job.id) ?? 0) + 1);
              by.set(w.id, (by.get(w.id) ?? 0) + 1);
              await new Promise((r) => setTimeout(r, 1));
              return undefined;
            },
          },
        ],
        options({ concurrency: 8 }),
      );
      return w;
    };
    const a = make();
    const b = make();
    await Promise.all([a.start(), b.start()]);
    await tdb.db.transaction(async (tx) => {
      for (let i = 0; i < 200; i++) await enqueue(tx, { kind: k, payload: { i } });
    });
    await until('all done', () => seen.size === 200, 30_000);
    await new Promise((r) => setTimeout(r, 100));
    await Promise.all([a.stop(), b.stop()]);
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      'no job ran twice',
    );
    const [left] = await tdb.db.query<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM jobs WHERE kind = ${k} AND state <> 'done'`,
    );
    assert.equal(left!.n, 0);
    assert.equal(by.size, 2, 'both workers took part');
  });

  test('failJob records the error and the next run time', async () => {
    const k = kind('failjob');
    const id = await enqueue(tdb.db, { kind: k, payload: {} });
    const [j] = await claimJobs(tdb.db, 'w', [k], 1, 60_000);
    assert.equal(
      await failJob(tdb.db, { id: j!.id, attempts: 1, workerId: 'w' }, 'nope', 60_000, 3600_000),
      'retry',
    );
    const job = await getJob(tdb.db, id!);
    assert.equal(job.state, 'pending');
    assert.ok(job.runAt.getTime() > Date.now() + 50_000);
  });
});
