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

/** A cached bug and the facts its visibility depends on. */
export interface CachedBug {
  bug: LoadedBug;
  facts: BugVisibilityFacts;
  /**
   * The bug's JSON as every viewer who may see it gets it, less the viewer-dependent parts
   * (duplicate_of, actions) and the closing brace: serialised once per change, not per read.
   */
  jsonHead?: string;
}

/** Bugs by id for single-bug reads. */
export class BugCache {
  private readonly entries: LRUCache<number, CachedBug>;

  constructor(
    private readonly bus: Invalidation,
    max = 20_000,
  ) {
    this.entries = new LRUCache({ max, ttl: 60_000 });
    bus.on((topic) => {
      if (topic === 'all') this.entries.clear();
      else if (topic.startsWith('bug:')) this.entries.delete(Number(topic.slice(4)));
    });
  }

  /** The bug with that id, from the cache or the database; undefined when it does not exist. */
  async get(db: Queryable, id: number): Promise<CachedBug | undefined> {
    const hit = this.entries.get(id);
    if (hit) return hit;
    const epoch = this.bus.epoch;
    const bug = await loadBug(db, id);
    return bug && this.keep(bug, epoch);
  }

  /** Several bugs by id, in the order asked, loading the missing ones in one query; absent ones skipped. */
  async getMany(db: Queryable, ids: number[]): Promise<CachedBug[]> {
    const found = new Map<number, CachedBug>();
    const missing: number[] = [];
    for (const id of ids) {
      const hit = this.entries.get(id);
      if (hit) found.set(id, hit);
      else missing.push(id);
    }
    if (missing.length) {
      const epoch = this.bus.epoch;
      for (const bug of await loadBugs(db, missing)) found.set(bug.id, this.keep(bug, epoch));
    }
    return ids.flatMap((id) => found.get(id) ?? []);
  }

  private keep(bug: LoadedBug, epoch: number): CachedBug {
    const entry: CachedBug = {
      bug,
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
