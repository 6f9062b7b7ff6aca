/**
 * The bug cache: whole bugs by id, held as data (never as an answer rendered for one viewer) and checked
 * against each viewer with the access module's `canSeeBug` on every read. Dropped on every change
 * through the invalidation bus (this process at once, others on the commit's notification), with a
 * minute's expiry as a safety net.
 */
import { LRUCache } from 'lru-cache';
import type { BugVisibilityFacts } from '../access/index.ts';
import type { Queryable } from '../platform/db.ts';
import type { Invalidation } from '../platform/invalidation.ts';
import { type LoadedBug, loadBug, loadBugs } from './repository.ts';

/** The shared second-level cache (platform/redis.ts's RedisLink), as the bug cache uses it. */
export interface SharedCache {
  getMany(keys: string[]): Promise<Array<{ value: string | undefined; gen: string }> | undefined>;
  setMany(entries: Array<{ key: string; gen: string; value: string }>): Promise<void>;
  /** The current generations of keys; undefined when Redis cannot be asked. */
  gens(keys: string[]): Promise<string[] | undefined>;
}

/** A bug as JSON.stringify wrote it, with its timestamps made Dates again. */
function reviveBug(json: string): LoadedBug {
  const bug = JSON.parse(json) as LoadedBug & { created_at: string | Date; changed_at: string | Date };
  bug.created_at = new Date(bug.created_at);
  bug.changed_at = new Date(bug.changed_at);
  return bug;
}

/** A cached bug and the facts its visibility depends on. */
export interface CachedBug {
  bug: LoadedBug;
  facts: BugVisibilityFacts;
  /**
   * The bug's JSON as every viewer who may see it gets it, less the viewer-dependent parts
   * (duplicate_of, actions) and the closing brace: serialised once per change, not per read.
   */
  jsonHead?: string;
  /** With Redis: the shared generation this entry is current for (see platform/redis.ts). */
  gen?: string;
}

/** Bugs by id for single-bug reads. */
export class BugCache {
  private readonly entries: LRUCache<number, CachedBug>;

  constructor(
    private readonly bus: Invalidation,
    max = 20_000,
    /** The Redis cache shared by every process (REDIS_URL), consulted on a miss here before the database. */
    private readonly shared?: SharedCache,
  ) {
    this.entries = new LRUCache({ max, ttl: 60_000 });
    bus.on((topic) => {
      if (topic === 'all') this.entries.clear();
      else if (topic.startsWith('bug:')) this.entries.delete(Number(topic.slice(4)));
    });
  }

  /** Lookups answered from memory and from the database, since start (for the metrics). */
  hits = 0;
  misses = 0;
  /** Of the misses, those the shared cache answered. */
  sharedHits = 0;

  /** The bug with that id, from the cache or the database; undefined when it does not exist. */
  async get(db: Queryable, id: number): Promise<CachedBug | undefined> {
    if (!this.shared) {
      const hit = this.entries.get(id);
      if (hit) {
        this.hits++;
        return hit;
      }
      this.misses++;
      const epoch = this.bus.epoch;
      const bug = await loadBug(db, id);
      return bug && this.keep(bug, epoch);
    }
    return (await this.getMany(db, [id]))[0];
  }

  /** Several bugs by id, in the order asked, loading the missing ones in one query; absent ones skipped. */
  async getMany(db: Queryable, ids: number[]): Promise<CachedBug[]> {
    const found = new Map<number, CachedBug>();
    let missing: number[] = [];
    for (const id of ids) {
      const hit = this.entries.get(id);
      if (hit) found.set(id, hit);
      else missing.push(id);
    }
    // With Redis, memory is checked against the shared generations, so a change made by another process is
    // never served from here even before its notification arrives (one round trip for all the ids).
    if (this.shared && found.size) {
      const current = await this.shared.gens([...found.keys()].map((id) => `bug:${id}`));
      if (current) {
        [...found.keys()].forEach((id, i) => {
          if (found.get(id)?.gen !== current[i]) {
            found.delete(id);
            this.entries.delete(id);
            missing.push(id);
          }
        });
        missing = ids.filter((id) => !found.has(id));
      }
    }
    this.hits += ids.length - missing.length;
    this.misses += missing.length;
    if (missing.length) {
      const epoch = this.bus.epoch;
      for (const { bug, gen } of await this.load(db, missing)) found.set(bug.id, this.keep(bug, epoch, gen));
    }
    return ids.flatMap((id) => found.get(id) ?? []);
  }

  /**
   * Bugs missing here: from the shared cache when it has them current, else from the database (then shared),
   * each with the generation it is current for.
   */
  private async load(db: Queryable, ids: number[]): Promise<Array<{ bug: LoadedBug; gen?: string }>> {
    const keys = ids.map((id) => `bug:${id}`);
    const shared = await this.shared?.getMany(keys);
    if (!shared) return (await loadBugs(db, ids)).map((bug) => ({ bug }));
    const found: Array<{ bug: LoadedBug; gen?: string }> = [];
    const missing: number[] = [];
    const gens = new Map<number, string>();
    ids.forEach((id, i) => {
      const entry = shared[i];
      gens.set(id, entry?.gen ?? '0.0');
      if (entry?.value) found.push({ bug: reviveBug(entry.value), gen: entry.gen });
      else missing.push(id);
    });
    this.sharedHits += found.length;
    if (missing.length) {
      const rows = await loadBugs(db, missing);
      // Tagged with the generation seen before the read: if a change came in between, nobody will use it.
      for (const bug of rows) found.push({ bug, gen: gens.get(bug.id) ?? '0.0' });
      void this.shared?.setMany(
        rows.map((bug) => ({
          key: `bug:${bug.id}`,
          gen: gens.get(bug.id) ?? '0.0',
          value: JSON.stringify(bug),
        })),
      );
    }
    return found;
  }

  private keep(bug: LoadedBug, epoch: number, gen?: string): CachedBug {
    const entry: CachedBug = {
      bug,
      ...(gen === undefined ? {} : { gen }),
      facts: {
        confidential: bug.confidential,
        reporterId: bug.reporter_id,
        ccIds: bug.cc.map((u) => u.id),
        productReleased: bug.product_released,
        versionReleased: bug.version_released,
      },
    };
    // A change may have committed while we read: then what we read may be old; do not keep it.
    if (this.bus.epoch === epoch) this.entries.set(bug.id, entry);
    return entry;
  }
}
