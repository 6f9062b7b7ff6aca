/**
 * Cache invalidation across every process on every host, through PostgreSQL's LISTEN/NOTIFY: a change
 * publishes a topic inside its own transaction (delivered only if it commits), every process drops what
 * it cached under that topic. The process that made the change drops it locally right after commit, so
 * it never serves its own change stale; others follow within the notification latency.
 *
 * Topics: `bug:<id>`, `user:<id>`, `key:<id>`, and `all` (products, versions, components, renames).
 */
import { type Db, type Queryable, sql } from './db.ts';

const CHANNEL = 'bugzot_invalidate';

/** A subscriber: told each topic that was invalidated (or 'all'). */
export type InvalidationHandler = (topic: string) => void;

/** The invalidation bus of one process. */
export class Invalidation {
  private readonly handlers: InvalidationHandler[] = [];
  private stop: (() => Promise<void>) | undefined;
  /**
   * Bumped by every invalidation this process learns of. A cache fill that started before a bump must
   * not be stored: it may hold data from before the change.
   */
  epoch = 0;

  /** Registers a handler for invalidated topics. */
  on(handler: InvalidationHandler): void {
    this.handlers.push(handler);
  }

  /** The shared (Redis) cache, when there is one: our own changes invalidate it too. */
  private shared: { invalidate(topics: string[]): Promise<void> } | undefined;

  /** Makes our own changes invalidate a shared cache as well (see platform/redis.ts). */
  attachShared(shared: { invalidate(topics: string[]): Promise<void> }): void {
    this.shared = shared;
  }

  /**
   * After our own commit: drops the topic here at once, and in the shared cache before the promise resolves
   * (await it before answering, so no process can serve the old value afterwards).
   */
  apply(topic: string): Promise<void> {
    this.applyLocal(topic);
    return this.shared ? this.shared.invalidate([topic]) : Promise.resolve();
  }

  /** Drops a topic in this process only (a notification of another process's change). */
  private applyLocal(topic: string): void {
    this.epoch++;
    for (const h of this.handlers) h(topic);
  }

  /** Starts listening for other processes' invalidations. */
  async start(db: Db): Promise<void> {
    this.stop = await db.listen(
      CHANNEL,
      (payload) => {
        for (const topic of payload.split(',')) {
          this.applyLocal(topic);
          // Every process that hears of a change bumps the shared cache too (cheap, idempotent in effect): if
          // the writer could not reach Redis, whoever can does it.
          void this.shared?.invalidate([topic]);
        }
      },
      () => this.applyLocal('all'),
    );
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await this.stop?.();
    this.stop = undefined;
  }

  /** Publishes topics from inside a transaction: other processes hear of them when it commits. */
  async publish(tx: Queryable, ...topics: string[]): Promise<void> {
    if (topics.length) await tx.query(sql`SELECT pg_notify(${CHANNEL}, ${topics.join(',')})`);
  }
}
