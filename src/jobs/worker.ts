/**
 * The worker loop: claims due jobs of the kinds it has handlers for, runs them, and records the
 * outcome. Any number of workers (in `serve` or `bugzot worker` processes) can run against one
 * database at once: claiming uses FOR UPDATE SKIP LOCKED and a lease, and only the holder of the
 * current attempt may finish a job.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../platform/db.ts';
import {
  backoffMs,
  type Claim,
  claimJobs,
  completeJob,
  deferJob,
  failJob,
  JOBS_CHANNEL,
  type Job,
  purgeDoneJobs,
} from './queue.ts';

/** Finished jobs are kept this long (their idempotency keys guard against late duplicates), then deleted. */
const KEEP_DONE_MS = 7 * 24 * 3600_000;
const PURGE_EVERY_MS = 3600_000;

/** What a handler may ask for instead of finishing: wait until `until` and run again (no attempt counted). */
export interface Defer {
  deferUntil: Date;
}

/** An error that retrying cannot fix: the job fails at once. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

/** A kind of job and how to run it. */
export interface JobHandler {
  kind: string;
  /** Runs one job; throws to retry later. Must be safe to run twice (a lease may run out). */
  run(job: Job): Promise<undefined | Defer>;
  /** How long after its first attempt the job gives up into `failed` (default: the worker's). */
  giveUpAfterMs?: number | undefined;
}

/** Worker tuning. */
export interface WorkerOptions {
  /** Jobs run at once by this worker. */
  concurrency: number;
  /** How often to look for due jobs when nothing wakes the worker. */
  pollMs: number;
  /** How long a claimed job is ours before another worker may take it over. */
  leaseMs: number;
  /** First retry delay; doubles each attempt. */
  retryBaseMs: number;
  /** Longest retry delay. */
  retryCapMs: number;
  /** Default give-up time. */
  giveUpAfterMs: number;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
}

/** A running worker; `stop()` waits for the jobs in hand to finish. */
export class Worker {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly handlers = new Map<string, JobHandler>();
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Set when something happened while the loop was not asleep: it goes round again at once. */
  private poked = false;
  private lastPurge = Date.now();
  private unlisten: (() => Promise<void>) | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly db: Db,
    handlers: readonly JobHandler[],
    private readonly opts: WorkerOptions,
  ) {
    for (const h of handlers) this.handlers.set(h.kind, h);
  }

  /** Starts the loop (idempotent). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      this.unlisten = await this.db.listen(
        JOBS_CHANNEL,
        () => this.poke(),
        () => this.poke(),
      );
    } catch (err) {
      this.opts.log.warn({ err }, 'jobs: cannot listen for new jobs; polling only');
    }
    this.loop = this.run();
  }

  /** Stops claiming, waits for jobs in hand (their leases cover a crash instead). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.poke();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
    await this.unlisten?.().catch(() => {});
    this.unlisten = undefined;
  }

  /** Runs every due job now and returns when none is left (tests and `worker --once`). */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const jobs = await claimJobs(
        this.db,
        this.id,
        [...this.handlers.keys()],
        this.opts.concurrency,
        this.opts.leaseMs,
      );
      if (jobs.length === 0) return total;
      total += jobs.length;
      await Promise.all(jobs.map((j) => this.execute(j)));
    }
  }

  private poke(): void {
    this.poked = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.poked = false;
      if (Date.now() - this.lastPurge > PURGE_EVERY_MS) {
        this.lastPurge = Date.now();
        await purgeDoneJobs(this.db, KEEP_DONE_MS).catch((err) =>
          this.opts.log.warn({ err }, 'jobs: purging old jobs failed'),
        );
      }
      const free = this.opts.concurrency - this.inFlight.size;
      let claimed: Job[] = [];
      if (free > 0) {
        try {
          claimed = await claimJobs(this.db, this.id, [...this.handlers.keys()], free, this.opts.leaseMs);
        } catch (err) {
          if (!this.running) break;
          this.opts.log.error({ err }, 'jobs: claiming failed');
        }
      }
      for (const job of claimed) {
        const p = this.execute(job).finally(() => {
          this.inFlight.delete(p);
          this.poke();
        });
        this.inFlight.add(p);
      }
      // A full claim suggests more are due: go round at once. Otherwise sleep until woken or polled.
      if ((claimed.length > 0 && claimed.length === free) || (this.poked && free > claimed.length)) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.opts.pollMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
  }

  private async execute(job: Job): Promise<void> {
    const handler = this.handlers.get(job.kind);
    const claim: Claim = { id: job.id, attempts: job.attempts, workerId: this.id };
    try {
      if (!handler) throw new PermanentJobError(`no handler for job kind ${job.kind}`);
      const outcome = await handler.run(job);
      if (outcome && 'deferUntil' in outcome) await deferJob(this.db, claim, outcome.deferUntil);
      else if (!(await completeJob(this.db, claim))) {
        this.opts.log.warn({ job: job.id, kind: job.kind }, 'jobs: lease lost before completion');
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      try {
        const result = await failJob(
          this.db,
          claim,
          message,
          backoffMs(job.attempts, this.opts.retryBaseMs, this.opts.retryCapMs),
          handler?.giveUpAfterMs ?? this.opts.giveUpAfterMs,
          err instanceof PermanentJobError,
        );
        const log = result === 'failed' ? this.opts.log.error : this.opts.log.warn;
        log.call(
          this.opts.log,
          { job: job.id, kind: job.kind, attempt: job.attempts, err: message },
          result === 'failed' ? 'jobs: gave up' : 'jobs: attempt failed; will retry',
        );
      } catch (recordErr) {
        this.opts.log.error({ err: recordErr, job: job.id }, 'jobs: cannot record failure');
      }
    }
  }
}
