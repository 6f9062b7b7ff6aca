/**
 * Counts page views, unique visitors and active users without storing who anyone is: a visitor is the SHA-256 of
 * (day's salt, client address, user agent), cut to 16 bytes; the salt is random per day, shared by all processes
 * through the database, and deleted when the day is over. Counts are gathered in memory and written every few
 * seconds (and on close) in a handful of statements, never on the request path.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../platform/db.ts';
import { sql } from '../platform/db.ts';

/** The UTC day of a time, as YYYY-MM-DD. */
export function utcDay(at = new Date()): string {
  return at.toISOString().slice(0, 10);
}

interface DayCounts {
  pageViews: number;
  visitors: Set<string>;
  users: Set<number>;
}

export class VisitRecorder {
  private days = new Map<string, DayCounts>();
  private salts = new Map<string, Buffer>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly log: { warn(obj: object, msg: string): void },
    flushEveryMs = 10_000,
  ) {
    if (flushEveryMs > 0) {
      this.timer = setInterval(() => void this.flush(), flushEveryMs);
      this.timer.unref();
    }
  }

  /** Page views still waiting for their day's salt; a flush waits for them. */
  private readonly pending = new Set<Promise<void>>();

  /** One page view (an HTML page answered 200), by a client and, when signed in, a user. */
  pageView(ip: string, userAgent: string, userId: number | undefined, at = new Date()): Promise<void> {
    const p = this.count(ip, userAgent, userId, at).finally(() => this.pending.delete(p));
    this.pending.add(p);
    return p;
  }

  private async count(ip: string, userAgent: string, userId: number | undefined, at: Date): Promise<void> {
    const day = utcDay(at);
    const salt = await this.salt(day);
    const visitor = createHash('sha256').update(salt).update(ip).update('\0').update(userAgent).digest();
    let counts = this.days.get(day);
    if (!counts) {
      counts = { pageViews: 0, visitors: new Set(), users: new Set() };
      this.days.set(day, counts);
    }
    counts.pageViews++;
    counts.visitors.add(visitor.subarray(0, 16).toString('hex'));
    if (userId !== undefined) counts.users.add(userId);
  }

  /** The day's salt: the first process to need it makes it; the days before are deleted at that moment. */
  private async salt(day: string): Promise<Buffer> {
    const known = this.salts.get(day);
    if (known) return known;
    await this.db.query(
      sql`INSERT INTO stats_salts (day, salt) VALUES (${day}::date, ${randomBytes(32)}) ON CONFLICT (day) DO NOTHING`,
    );
    await this.db.query(sql`DELETE FROM stats_salts WHERE day < ${day}::date`);
    const [row] = await this.db.query<{ salt: Uint8Array }>(
      sql`SELECT salt FROM stats_salts WHERE day = ${day}::date`,
    );
    if (!row) throw new Error(`no salt for ${day}`);
    const salt = Buffer.from(row.salt);
    this.salts.clear();
    this.salts.set(day, salt);
    return salt;
  }

  /** Writes what was counted since the last flush. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      await Promise.allSettled([...this.pending]);
      const days = this.days;
      this.days = new Map();
      for (const [day, c] of days) {
        try {
          await this.db.transaction(async (tx) => {
            await tx.query(sql`
              INSERT INTO stats_days (day, page_views) VALUES (${day}::date, ${c.pageViews})
              ON CONFLICT (day) DO UPDATE SET page_views = stats_days.page_views + EXCLUDED.page_views`);
            const visitors = [...c.visitors];
            if (visitors.length) {
              await tx.query(sql`
                INSERT INTO stats_visitors (day, visitor)
                SELECT ${day}::date, decode(v, 'hex') FROM unnest(${visitors}::text[]) AS v ON CONFLICT DO NOTHING`);
            }
            const users = [...c.users];
            if (users.length) {
              await tx.query(sql`
                INSERT INTO stats_active_users (day, user_id)
                SELECT ${day}::date, u FROM unnest(${users}::int[]) AS u
                WHERE EXISTS (SELECT 1 FROM users WHERE id = u) ON CONFLICT DO NOTHING`);
            }
          });
        } catch (err) {
          this.log.warn({ err }, 'usage statistics: could not write a day; those counts are lost');
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
