/**
 * Redis, when REDIS_URL is set: a second-level cache shared by every process on every host, the rate limiter's and
 * the sign-in throttle's counters. Redis is never needed to answer correctly:
 *
 * - Every call fails fast (no offline queue, one retry, short timeouts) and callers fall back to the database or to
 *   per-process counters, so a Redis outage makes Bugzot slower, not broken; readiness reports "degraded".
 * - Cached values are data (a bug's row, never a page rendered for one viewer), tagged with the generation of their
 *   key. A change bumps the generation (after its commit, before its answer), so a value read before the change is
 *   never served after it, even when a slow reader stores it late.
 * - A bump that could not reach Redis leaves values that look current; so after any failed bump, this process leaves
 *   the shared cache unused until it has bumped the global generation (which retires every stored value), and every
 *   other process, hearing of the change through PostgreSQL's notification, bumps the key as well.
 */
import { Redis } from 'ioredis';
import { withSpan } from './tracing.ts';

const REDIS_ATTRS = { 'db.system.name': 'redis' };

/** How the module reports trouble. */
interface Log {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const PREFIX = 'bugzot:';
/** Values live this long (like the in-process caches); generations outlive them. */
const VALUE_TTL_S = 300;
const GEN_TTL_S = 3 * VALUE_TTL_S;

/** The Redis connection of one process, with its health. */
export class RedisLink {
  readonly client: Redis;
  /** False after a failed invalidation, until the shared cache has been emptied. */
  private trusted = true;
  private flushing: Promise<void> | undefined;

  constructor(
    url: string,
    private readonly log: Log,
  ) {
    this.client = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: 1_000,
      // Keep trying to reconnect, backing off to 2 s.
      retryStrategy: (times) => Math.min(times * 100, 2_000),
      keyPrefix: PREFIX,
    });
    this.client.on('error', (err: Error) => this.log.warn({ err: err.message }, 'redis: error'));
    this.client.on('ready', () => {
      this.log.info({}, 'redis: connected');
      if (!this.trusted) void this.flush();
    });
  }

  /** Whether commands can be sent now. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /**
   * Whether the shared cache may be read: connected, and no invalidation of ours missed it (else it is emptied
   * first, in the background, and the database answers meanwhile).
   */
  get cacheUsable(): boolean {
    if (!this.ready) return false;
    if (!this.trusted && !this.flushing) void this.flush();
    return this.trusted && !this.flushing;
  }

  /** A ping with a deadline, for /readyz. */
  async ping(): Promise<boolean> {
    try {
      return (await this.client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /**
   * Values of some keys with the generation each was read at; a value is returned only when its generation is
   * the key's current one. Undefined when the shared cache cannot be used (the caller reads the database).
   */
  async getMany(keys: string[]): Promise<Array<{ value: string | undefined; gen: string }> | undefined> {
    if (!this.cacheUsable || keys.length === 0) return undefined;
    try {
      // A value's generation is the global one (bumped by `all`: renames, releases) and its key's own.
      const names = ['g:all', ...keys.flatMap((k) => [`v:${k}`, `g:${k}`])];
      const raw = await withSpan('redis MGET', REDIS_ATTRS, () => this.client.mget(...names));
      const global = raw[0] ?? '0';
      return keys.map((_, i) => {
        const gen = `${global}.${raw[2 * i + 2] ?? '0'}`;
        const stored = raw[2 * i + 1];
        // Stored as "<gen>|<value>".
        if (!stored) return { value: undefined, gen };
        const bar = stored.indexOf('|');
        return { value: stored.slice(0, bar) === gen ? stored.slice(bar + 1) : undefined, gen };
      });
    } catch {
      return undefined;
    }
  }

  /** The current generations of keys (as getMany reports them); undefined when the cache cannot be used. */
  async gens(keys: string[]): Promise<string[] | undefined> {
    if (!this.cacheUsable || keys.length === 0) return undefined;
    try {
      const raw = await withSpan('redis MGET', REDIS_ATTRS, () =>
        this.client.mget('g:all', ...keys.map((k) => `g:${k}`)),
      );
      const global = raw[0] ?? '0';
      return keys.map((_, i) => `${global}.${raw[i + 1] ?? '0'}`);
    } catch {
      return undefined;
    }
  }

  /** Stores values read from the database, each tagged with the generation seen before reading it. */
  async setMany(entries: Array<{ key: string; gen: string; value: string }>): Promise<void> {
    if (!this.cacheUsable || entries.length === 0) return;
    try {
      const multi = this.client.multi();
      for (const e of entries) multi.set(`v:${e.key}`, `${e.gen}|${e.value}`, 'EX', VALUE_TTL_S);
      await multi.exec();
    } catch {
      // A cache fill that fails is only a missed optimisation.
    }
  }

  /**
   * After a change commits: every value stored for these keys (invalidation topics: `bug:12`, or `all` for every
   * value) is stale from now on, in every process.
   */
  async invalidate(topics: string[]): Promise<void> {
    // Only bugs (and `all`) are cached here; sessions, users and keys are cached per process only.
    const keys = topics.filter((t) => t === 'all' || t.startsWith('bug:'));
    if (keys.length === 0) return;
    try {
      if (!this.ready) throw new Error('not connected');
      const multi = this.client.multi();
      // The global generation never expires (a reset could revive old values); a bug's outlives its values.
      for (const k of keys)
        k === 'all' ? multi.incr('g:all') : multi.incr(`g:${k}`).expire(`g:${k}`, GEN_TTL_S);
      const results = await withSpan('redis INCR', REDIS_ATTRS, () => multi.exec());
      if (!results || results.some(([err]) => err)) throw new Error('invalidation failed');
    } catch (err) {
      if (this.trusted)
        this.log.warn(
          { err: (err as Error).message },
          'redis: invalidation missed; cache unused until emptied',
        );
      this.trusted = false;
    }
  }

  /**
   * Makes every stored value stale at once (bumps the global generation), then trusts the cache again. Cheaper
   * and safer than deleting keys: a slow reader that stores an old value afterwards tags it with the old
   * generation, so it is never used either.
   */
  private flush(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        await this.client.incr('g:all');
        this.trusted = true;
        this.log.info({}, 'redis: shared cache reset after a missed invalidation; in use again');
      } catch (err) {
        this.log.warn(
          { err: (err as Error).message },
          'redis: could not reset the shared cache; still unused',
        );
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Counts one event under `key` in a window, returning the count (undefined when Redis cannot answer). */
  async hit(key: string, windowS: number): Promise<number | undefined> {
    if (!this.ready) return undefined;
    try {
      const results = await this.client.multi().incr(`n:${key}`).expire(`n:${key}`, windowS, 'NX').exec();
      const count = results?.[0]?.[1];
      return typeof count === 'number' ? count : undefined;
    } catch {
      return undefined;
    }
  }

  /** The current count under `key` (0 when absent; undefined when Redis cannot answer). */
  async count(key: string): Promise<number | undefined> {
    if (!this.ready) return undefined;
    try {
      return Number((await this.client.get(`n:${key}`)) ?? 0);
    } catch {
      return undefined;
    }
  }

  /** Sets a count (or removes it at 0), keeping its expiry. */
  async setCount(key: string, n: number): Promise<void> {
    if (!this.ready) return;
    try {
      if (n <= 0) await this.client.del(`n:${key}`);
      else await this.client.set(`n:${key}`, String(n), 'KEEPTTL');
    } catch {
      // Best effort: the count expires with its window anyway.
    }
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
