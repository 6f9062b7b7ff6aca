/**
 * The visibility rules, written once, as SQL. Every read of bug data — pages, API, search, counts,
 * exports, attachments, history, mail, webhooks — filters through these predicates; nothing else decides
 * who sees what. Deny by default: a viewer kind not handled here sees nothing.
 *
 * Rules:
 * - staff (internal users, admins) see everything;
 * - external users see products that are released, versions that are released (of released products),
 *   and bugs that are not confidential and were filed against a released version of a released product,
 *   plus every bug they reported or are on the CC list of; never private comments;
 * - anonymous viewers see nothing.
 *
 * The rendered SQL is committed beside this file (visibility.sql) and checked by a test, so a change to
 * who sees what is reviewed as SQL.
 */
import { raw, type Sql, sql } from '../platform/db.ts';
import type { Viewer } from './viewer.ts';

const TRUE = raw('TRUE');
const FALSE = raw('FALSE');

/** Table aliases are code, never input: refuse anything but a plain identifier. */
function alias(name: string): Sql {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad SQL alias ${name}`);
  return raw(name);
}

/** Predicate over `bugs <b>`: true for the bugs `viewer` may see. */
export function visibleBugs(viewer: Viewer, b = 'b'): Sql {
  if (viewer.kind !== 'user') return FALSE;
  if (viewer.isInternal || viewer.isAdmin) return TRUE;
  const t = alias(b);
  return sql`(
    (NOT ${t}.confidential AND ${t}.version_id IN (
      SELECT pv.id FROM versions pv JOIN products pp ON pp.id = pv.product_id
      WHERE pv.is_released AND pp.is_released))
    OR ${t}.reporter_id = ${viewer.id}
    OR EXISTS (SELECT 1 FROM bug_cc vcc WHERE vcc.bug_id = ${t}.id AND vcc.user_id = ${viewer.id})
  )`;
}

/** The facts about one bug that the visibility rule depends on. */
export interface BugVisibilityFacts {
  confidential: boolean;
  reporterId: number;
  ccIds: readonly number[];
  productReleased: boolean;
  versionReleased: boolean;
}

/**
 * The rule of `visibleBugs`, for one bug already in memory (the bug cache serves single-bug reads
 * without a database round trip). It must say exactly what the SQL says: test/access.test.ts evaluates
 * both over every combination of viewer and facts and requires them to agree.
 */
export function canSeeBug(viewer: Viewer, f: BugVisibilityFacts): boolean {
  if (viewer.kind !== 'user') return false;
  if (viewer.isInternal || viewer.isAdmin) return true;
  return (
    (!f.confidential && f.versionReleased && f.productReleased) ||
    f.reporterId === viewer.id ||
    f.ccIds.includes(viewer.id)
  );
}

/** Predicate over `products <p>`: the products `viewer` may see and file bugs against. */
export function visibleProducts(viewer: Viewer, p = 'p'): Sql {
  if (viewer.kind !== 'user') return FALSE;
  if (viewer.isInternal || viewer.isAdmin) return TRUE;
  return sql`${alias(p)}.is_released`;
}

/** Predicate over `versions <v>`: the versions `viewer` may see and file bugs against. */
export function visibleVersions(viewer: Viewer, v = 'v'): Sql {
  if (viewer.kind !== 'user') return FALSE;
  if (viewer.isInternal || viewer.isAdmin) return TRUE;
  const t = alias(v);
  return sql`(${t}.is_released AND EXISTS (
    SELECT 1 FROM products vp WHERE vp.id = ${t}.product_id AND vp.is_released))`;
}

/** Predicate over `comments <c>` of a bug already known visible: private comments are staff-only. */
export function visibleComments(viewer: Viewer, c = 'c'): Sql {
  if (viewer.kind !== 'user') return FALSE;
  if (viewer.isInternal || viewer.isAdmin) return TRUE;
  return sql`NOT ${alias(c)}.is_private`;
}
