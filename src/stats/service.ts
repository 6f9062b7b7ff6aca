/**
 * Usage and bug statistics for admins: unique visitors, page views and active users per day; bugs opened and
 * resolved per day per product; open bugs by status and severity; median time to resolve. Admins see every bug,
 * so no visibility predicate narrows these figures; the routes and pages are admin-only.
 */
import { type Queryable, sql } from '../platform/db.ts';

export interface DailyUsage {
  day: string;
  visitors: number;
  page_views: number;
  active_users: number;
}

export interface Statistics {
  days: number;
  usage: DailyUsage[];
  opened: Array<{ day: string; product: string; count: number }>;
  resolved: Array<{ day: string; product: string; count: number }>;
  open_by_status_severity: Array<{ status: string; severity: string; count: number }>;
  median_hours_to_resolve: number | null;
}

/** The statistics of the last `days` days (UTC), today included. */
export async function statistics(db: Queryable, days: number): Promise<Statistics> {
  const since = sql`(current_date - ${days - 1}::int)`;
  const usage = await db.query<DailyUsage>(sql`
    SELECT to_char(d.day, 'YYYY-MM-DD') AS day,
      COALESCE((SELECT count(*) FROM stats_visitors v WHERE v.day = d.day), 0)::int AS visitors,
      COALESCE((SELECT page_views FROM stats_days s WHERE s.day = d.day), 0)::int AS page_views,
      COALESCE((SELECT count(*) FROM stats_active_users a WHERE a.day = d.day), 0)::int AS active_users
    FROM generate_series(${since}, current_date, interval '1 day') AS d(day)
    ORDER BY d.day`);
  const opened = await db.query<{ day: string; product: string; count: number }>(sql`
    SELECT to_char(date_trunc('day', b.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, p.name AS product,
      count(*)::int AS count
    FROM bugs b JOIN products p ON p.id = b.product_id
    WHERE b.created_at >= ${since}
    GROUP BY 1, 2 ORDER BY 1, 2`);
  // Resolved: a change of status into a closed state (RESOLVED, VERIFIED, CLOSED) from an open one.
  const resolved = await db.query<{ day: string; product: string; count: number }>(sql`
    SELECT to_char(date_trunc('day', c.changed_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, p.name AS product,
      count(*)::int AS count
    FROM bug_changes c
      JOIN bug_statuses s_new ON s_new.name = c.new_value AND NOT s_new.is_open
      JOIN bug_statuses s_old ON s_old.name = c.old_value AND s_old.is_open
      JOIN bugs b ON b.id = c.bug_id JOIN products p ON p.id = b.product_id
    WHERE c.field = 'status' AND c.changed_at >= ${since}
    GROUP BY 1, 2 ORDER BY 1, 2`);
  const open = await db.query<{ status: string; severity: string; count: number }>(sql`
    SELECT b.status, b.severity, count(*)::int AS count
    FROM bugs b JOIN bug_statuses s ON s.name = b.status AND s.is_open
    GROUP BY b.status, b.severity, s.sort_order ORDER BY s.sort_order, b.severity`);
  // Time to resolve: from filing to the first change into a closed state, for bugs resolved in the window.
  const [median] = await db.query<{ hours: number | null }>(sql`
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first.at - b.created_at) / 3600)
      AS hours
    FROM (
      SELECT c.bug_id, min(c.changed_at) AS at
      FROM bug_changes c JOIN bug_statuses s ON s.name = c.new_value AND NOT s.is_open
      WHERE c.field = 'status'
      GROUP BY c.bug_id
    ) first JOIN bugs b ON b.id = first.bug_id
    WHERE first.at >= ${since}`);
  return {
    days,
    usage,
    opened,
    resolved,
    open_by_status_severity: open,
    median_hours_to_resolve:
      median?.hours === null || median?.hours === undefined ? null : Number(median.hours),
  };
}
