/**
 * The bulk part of the demo data: one INSERT statement per batch that makes bugs with their comments,
 * history and CC rows entirely inside PostgreSQL (generate_series + random()), so a million bugs
 * need about twenty round trips instead of millions.
 */
import { join, raw, type Sql, sql } from '../platform/db.ts';
import type { CatalogueProduct } from './catalogue.ts';
import { WORDS, type WordList } from './words.ts';

/** Everything a batch needs to know about the catalogue and the run. */
export interface BugBatchContext {
  now: Date;
  spanDays: number;
  products: CatalogueProduct[];
  internalUserIds: number[];
  externalUserIds: number[];
  /** Average number of comments per bug. */
  commentsPerBug: number;
}

/** One slice of the run: bugs number `offset + 1` to `offset + count` of `total`. */
export interface BugBatch {
  offset: number;
  count: number;
  total: number;
  /**
   * The first ids of a range reserved for this batch (see idsNeeded), when batches run side by side:
   * the rows then get the same ids whichever batch commits first. Without: the tables' sequences.
   */
  firstIds?: { bug: number; comment: number; change: number } | undefined;
}

/** At most this many history rows per bug (6 status steps of up to 3 fields, and a priority change). */
const MAX_CHANGES_PER_BUG = 20;

/** How many ids of each table a batch of `count` bugs may use at most (the range to reserve for it). */
export function idsNeeded(
  count: number,
  commentsPerBug: number,
): { bug: number; comment: number; change: number } {
  return {
    bug: count,
    comment: count * Math.max(0, commentShape(commentsPerBug).max),
    change: count * MAX_CHANGES_PER_BUG,
  };
}

/** Rows one batch created. */
export interface BugBatchResult {
  bugs: number;
  comments: number;
  changes: number;
  cc: number;
}

/**
 * Summary templates, by number, with their weight in the mix:
 * 0 crash, 1 memory leak, 2 fails after upgrade, 3 wrong value, 4 error message, 5 documentation,
 * 6 feature request (severity enhancement), 7 slow, 8 layout.
 */
const TEMPLATE_WEIGHTS = [16, 6, 12, 12, 14, 6, 10, 10, 10];

/** Comment counts follow floor(r^skew * (max + 1)): mostly few comments, sometimes up to `max`. */
function commentShape(average: number): { max: number; skew: number } {
  if (average <= 0) return { max: -1, skew: 1 };
  const max = Math.max(8, Math.ceil(average * 2));
  // E[floor(r^a * (max+1))] is close to (max+1)/(a+1) - 1/2.
  return { max, skew: Math.max(0.05, (max + 1) / (average + 0.5) - 1) };
}

/** The catalogue as arrays, so a bug can pick a product, then a version and component of it, in O(1). */
function catalogueArrays(ctx: BugBatchContext) {
  const pIds: number[] = [];
  const pickAny: number[] = [];
  const pickExternal: number[] = [];
  const vOff: number[] = [];
  const vCount: number[] = [];
  const vReleased: number[] = [];
  const vIds: number[] = [];
  const vNames: string[] = [];
  const cOff: number[] = [];
  const cCount: number[] = [];
  const cIds: number[] = [];
  ctx.products.forEach((p, i) => {
    const index = i + 1;
    pIds.push(p.id);
    const released = p.versions.filter((v) => v.isReleased);
    // Released versions first: an external reporter draws only from the first vReleased of them.
    const ordered = [...released, ...p.versions.filter((v) => !v.isReleased)];
    vOff.push(vIds.length);
    vCount.push(ordered.length);
    vReleased.push(released.length);
    for (const v of ordered) {
      vIds.push(v.id);
      vNames.push(v.name);
    }
    cOff.push(cIds.length);
    cCount.push(p.componentIds.length);
    cIds.push(...p.componentIds);
    const tickets = Math.max(1, Math.round(p.weight * 10));
    for (let t = 0; t < tickets; t++) {
      pickAny.push(index);
      if (p.isReleased && released.length > 0) pickExternal.push(index);
    }
  });
  const templates = TEMPLATE_WEIGHTS.flatMap((w, t) => Array.from({ length: w }, () => t));
  return {
    pIds,
    pickAny,
    pickExternal,
    vOff,
    vCount,
    vReleased,
    vIds,
    vNames,
    cOff,
    cCount,
    cIds,
    templates,
  };
}

/** `k."list"[random index]`: one random entry of a word list (list names are constants, not input). */
const pick = (list: WordList): Sql => raw(`k."${list}"[1 + floor(random() * cardinality(k."${list}"))::int]`);

/** A random internal user, favouring the first ones (a few people do most of the work). */
const someInternal = raw(`k.u_int[1 + floor(power(random(), 1.5) * cardinality(k.u_int))::int]`);

/** Builds the statement that inserts one batch of bugs with comments, history and CCs. */
export function bugBatchStatement(ctx: BugBatchContext, batch: BugBatch): Sql {
  const a = catalogueArrays(ctx);
  const extShare = ctx.externalUserIds.length > 0 && a.pickExternal.length > 0 ? 0.45 : 0;
  const spanSec = ctx.spanDays * 86_400;
  const from = new Date(ctx.now.getTime() - spanSec * 1000);
  const shape = commentShape(ctx.commentsPerBug);
  const wordColumns = join(
    (Object.keys(WORDS) as WordList[]).map((name) => sql`${[...WORDS[name]]}::text[] AS ${raw(`"${name}"`)}`),
  );
  const repro = raw(`k."reproSteps"`);
  const ids = batch.firstIds;

  return sql`
WITH k AS MATERIALIZED (
  SELECT pg_get_serial_sequence('bugs', 'id')::regclass AS seq,
         ${a.pIds}::int[] AS p_ids, ${a.pickAny}::int[] AS pick_any, ${a.pickExternal}::int[] AS pick_ext,
         ${a.vOff}::int[] AS v_off, ${a.vCount}::int[] AS v_cnt, ${a.vReleased}::int[] AS v_rel,
         ${a.vIds}::int[] AS v_ids, ${a.vNames}::text[] AS v_names,
         ${a.cOff}::int[] AS c_off, ${a.cCount}::int[] AS c_cnt, ${a.cIds}::int[] AS c_ids,
         ${ctx.internalUserIds}::int[] AS u_int, ${ctx.externalUserIds}::int[] AS u_ext,
         ${a.templates}::int[] AS tpl_pick,
         ${wordColumns}
),
-- x: where in the time span the bug was filed; bugs get denser towards today, ids follow time.
b0 AS MATERIALIZED (
  SELECT ${batch.firstIds ? sql`${batch.firstIds.bug}::int + g.i - 1` : sql`nextval(k.seq)::int`} AS id,
         power((${batch.offset}::float8 + g.i - 1 + 0.9 * random()) / ${batch.total}::float8, 0.8) AS x,
         random() < ${extShare}::float8 AS ext,
         random() AS r_closed, random() AS r_kind
  FROM k, generate_series(1, ${batch.count}::int) AS g(i)
),
-- Older bugs are more often closed. Externals report against released products only.
b1 AS MATERIALIZED (
  SELECT b0.id, b0.x, b0.ext, ${spanSec}::float8 * (1 - b0.x) AS age,
         CASE WHEN b0.ext THEN k.pick_ext[1 + floor(random() * cardinality(k.pick_ext))::int]
              ELSE k.pick_any[1 + floor(random() * cardinality(k.pick_any))::int] END AS p,
         CASE WHEN b0.r_closed < 0.15 + 0.7 * (1 - b0.x) THEN
                CASE WHEN b0.r_kind < 0.45 THEN 'RESOLVED' WHEN b0.r_kind < 0.65 THEN 'VERIFIED' ELSE 'CLOSED' END
              ELSE
                CASE WHEN b0.r_kind < 0.15 THEN 'UNCONFIRMED' WHEN b0.r_kind < 0.5 THEN 'NEW'
                     WHEN b0.r_kind < 0.75 THEN 'ASSIGNED' WHEN b0.r_kind < 0.9 THEN 'IN_PROGRESS'
                     ELSE 'REOPENED' END
         END AS status,
         k.tpl_pick[1 + floor(random() * cardinality(k.tpl_pick))::int] AS tpl,
         random() < 0.05 AS confidential,
         floor(power(random(), ${shape.skew}::float8) * ${shape.max + 1}::int)::int AS ncomm,
         CASE WHEN random() < 0.3 THEN 1 + floor(random() * 3)::int ELSE 0 END AS ncc,
         random() < 0.12 AS pri_change,
         random() < 0.6 AS java_trace,
         floor(random() * cardinality(${repro}))::int AS step0,
         random() AS r_init, random() AS r_path, random() AS r_res, random() AS r_life, random() AS r_sev,
         1 + floor(random() * 8)::int AS dup_k
  FROM b0, k
),
b2 AS MATERIALIZED (
  SELECT b1.*,
         k.p_ids[b1.p] AS product_id,
         -- Older bugs tend to be against older versions.
         k.v_off[b1.p] + 1 + least(
           CASE WHEN b1.ext THEN k.v_rel[b1.p] ELSE k.v_cnt[b1.p] END - 1,
           floor(CASE WHEN b1.ext THEN k.v_rel[b1.p] ELSE k.v_cnt[b1.p] END * (0.6 * b1.x + 0.5 * random()))::int
         ) AS vi,
         k.c_ids[k.c_off[b1.p] + 1 + floor(random() * k.c_cnt[b1.p])::int] AS component_id,
         CASE WHEN b1.ext THEN k.u_ext[1 + floor(power(random(), 2) * cardinality(k.u_ext))::int]
              ELSE k.u_int[1 + floor(power(random(), 2) * cardinality(k.u_int))::int] END AS reporter_id,
         CASE WHEN b1.status = 'UNCONFIRMED' THEN 'UNCONFIRMED'
              WHEN b1.status = 'ASSIGNED' AND NOT b1.ext AND b1.r_init < 0.3 THEN 'ASSIGNED'
              WHEN b1.r_init < CASE WHEN b1.ext THEN 0.6 ELSE 0.08 END THEN 'UNCONFIRMED'
              ELSE 'NEW' END AS init,
         b1.age * (0.02 + 0.98 * power(b1.r_life, 2)) AS life,
         CASE WHEN b1.tpl = 6 THEN 'enhancement'
              WHEN b1.tpl = 5 THEN CASE WHEN b1.r_sev < 0.6 THEN 'minor' ELSE 'trivial' END
              ELSE CASE WHEN b1.r_sev * CASE WHEN b1.tpl IN (0, 1) THEN 0.4 ELSE 1 END < 0.03 THEN 'blocker'
                        WHEN b1.r_sev * CASE WHEN b1.tpl IN (0, 1) THEN 0.4 ELSE 1 END < 0.10 THEN 'critical'
                        WHEN b1.r_sev < 0.30 THEN 'major' WHEN b1.r_sev < 0.82 THEN 'normal'
                        WHEN b1.r_sev < 0.94 THEN 'minor' ELSE 'trivial' END
         END AS severity
  FROM b1, k
),
-- The path of status changes from the initial status to the final one; each step is one change.
b3 AS MATERIALIZED (
  SELECT b2.*, k.v_ids[b2.vi] AS version_id, k.v_names[b2.vi] AS vname,
         (CASE b2.status
            WHEN 'UNCONFIRMED' THEN '{}'
            WHEN 'NEW' THEN CASE WHEN b2.init = 'UNCONFIRMED' THEN '{NEW}' ELSE '{}' END
            WHEN 'ASSIGNED' THEN CASE WHEN b2.init = 'ASSIGNED' THEN '{}' ELSE '{ASSIGNED}' END
            WHEN 'IN_PROGRESS' THEN '{ASSIGNED,IN_PROGRESS}'
            WHEN 'REOPENED' THEN '{ASSIGNED,RESOLVED,REOPENED}'
            WHEN 'RESOLVED' THEN CASE WHEN b2.r_path < 0.3 THEN '{RESOLVED}'
                                      WHEN b2.r_path < 0.36 THEN '{ASSIGNED,RESOLVED,REOPENED,ASSIGNED,RESOLVED}'
                                      ELSE '{ASSIGNED,RESOLVED}' END
            WHEN 'VERIFIED' THEN CASE WHEN b2.r_path < 0.08 THEN '{ASSIGNED,RESOLVED,REOPENED,ASSIGNED,RESOLVED,VERIFIED}'
                                      ELSE '{ASSIGNED,RESOLVED,VERIFIED}' END
            ELSE CASE WHEN b2.r_path < 0.5 THEN '{ASSIGNED,RESOLVED,VERIFIED,CLOSED}'
                      ELSE '{ASSIGNED,RESOLVED,CLOSED}' END
          END)::text[] AS steps,
         CASE b2.severity
           WHEN 'blocker' THEN 1 WHEN 'critical' THEN 1 + floor(random() * 2)::int
           WHEN 'major' THEN 2 + floor(random() * 2)::int
           WHEN 'normal' THEN CASE WHEN random() < 0.7 THEN 3 ELSE 2 + floor(random() * 3)::int END
           WHEN 'minor' THEN 3 + floor(random() * 3)::int
           ELSE 4 + floor(random() * 2)::int
         END AS prio
  FROM b2, k
),
-- A duplicate points at a recent earlier bug of the same product. (No k here: the window's sort
-- would carry it along with every row.)
b3w AS MATERIALIZED (
  SELECT b3.*, lag(b3.id, b3.dup_k) OVER (PARTITION BY b3.product_id ORDER BY b3.id) AS dup_target
  FROM b3
),
b4 AS MATERIALIZED (
  SELECT b3.*,
         CASE WHEN b3.init = 'ASSIGNED' OR 'ASSIGNED' = ANY (b3.steps) THEN ${someInternal}
              WHEN b3.status = 'NEW' AND random() < 0.25 THEN ${someInternal}
              WHEN b3.status = 'RESOLVED' AND random() < 0.5 THEN ${someInternal}
         END AS assignee_id,
         CASE WHEN b3.status NOT IN ('RESOLVED', 'VERIFIED', 'CLOSED') THEN NULL
              WHEN b3.steps = '{RESOLVED}' THEN
                CASE WHEN b3.r_res < 0.35 THEN 'DUPLICATE' WHEN b3.r_res < 0.6 THEN 'INVALID'
                     WHEN b3.r_res < 0.85 THEN 'WORKSFORME' ELSE 'WONTFIX' END
              ELSE CASE WHEN b3.r_res < 0.05 THEN 'DUPLICATE' WHEN b3.r_res < 0.82 THEN 'FIXED'
                        WHEN b3.r_res < 0.9 THEN 'WONTFIX' WHEN b3.r_res < 0.95 THEN 'WORKSFORME'
                        ELSE 'INVALID' END
         END AS res0,
         CASE WHEN b3.pri_change THEN 'P' || (1 + (b3.prio + floor(random() * 4)::int) % 5) END AS old_priority
  FROM b3w AS b3, k
),
b AS MATERIALIZED (
  SELECT b4.*,
         ${from}::timestamptz + make_interval(secs => ${spanSec}::float8 * b4.x) AS created_at,
         CASE WHEN b4.res0 = 'DUPLICATE' AND b4.dup_target IS NULL THEN 'INVALID' ELSE b4.res0 END AS resolution,
         CASE WHEN b4.res0 = 'DUPLICATE' THEN b4.dup_target END AS duplicate_of,
         coalesce(array_position(b4.steps, 'ASSIGNED'), 0) AS assign_step,
         coalesce((array_positions(b4.steps, 'RESOLVED'))[cardinality(array_positions(b4.steps, 'RESOLVED'))], 0)
           AS res_step,
         CASE WHEN b4.res0 IS NOT NULL THEN least(b4.age, b4.life * 1.15) ELSE b4.age END AS comment_span
  FROM b4
  ORDER BY b4.id
),
-- Every later write to a bug is an event: a comment (0), a status step (1) or a priority change (2).
-- Numbered in time order, they give each comment and change its bug_version.
ev AS (
  SELECT b.id AS bug_id, 0 AS kind, s.n AS k,
         b.created_at + make_interval(secs => b.comment_span * power(random(), 1.3)) AS t
  FROM b, generate_series(1, b.ncomm) AS s(n)
  UNION ALL
  SELECT b.id, 1, s.n,
         b.created_at + make_interval(secs => b.life * (s.n - 1 + 0.05 + 0.9 * random()) / cardinality(b.steps))
  FROM b, generate_series(1, cardinality(b.steps)) AS s(n)
  UNION ALL
  SELECT b.id, 2, 0, b.created_at + make_interval(secs => b.life * random())
  FROM b WHERE b.pri_change
),
evn AS MATERIALIZED (
  SELECT ev.*, (1 + row_number() OVER (PARTITION BY ev.bug_id ORDER BY ev.t, ev.kind, ev.k))::int AS v
  FROM ev
),
latest AS (
  SELECT bug_id, max(v) AS row_version, max(t) AS changed_at FROM evn GROUP BY bug_id
),
-- Rows are put in order here, while they are narrow: PostgreSQL evaluates random() after a sort, so
-- a sort next to the text generation would carry every word list along with each row.
bl AS (
  SELECT b.*, coalesce(l.changed_at, b.created_at) AS changed_at, coalesce(l.row_version, 1) AS row_version
  FROM b LEFT JOIN latest l ON l.bug_id = b.id
  ORDER BY b.id
),
ins_bugs AS (
  INSERT INTO bugs (id, product_id, version_id, component_id, summary, description, status, resolution,
                    severity, priority, reporter_id, assignee_id, confidential, duplicate_of,
                    created_at, changed_at, row_version)
  SELECT b.id, b.product_id, b.version_id, b.component_id,
         CASE b.tpl
           WHEN 0 THEN ${pick('failures')} || ' ' || ${pick('moments')} || ' when ' || ${pick('conditions')}
           WHEN 1 THEN 'Memory leak in ' || ${pick('modules')} || ' after ' || (2 + floor(random() * 12))::int
                       || CASE WHEN random() < 0.5 THEN ' days' ELSE ' hours' END
           WHEN 2 THEN ${pick('features')} || ' fails with ' || ${pick('authThings')} || ' after upgrade to ' || b.vname
           WHEN 3 THEN ${pick('areas')} || ' shows wrong ' || ${pick('wrongValues')} || ' in ' || ${pick('places')}
           WHEN 4 THEN 'Error "' || ${pick('errors')} || '" when ' || ${pick('actions')}
           WHEN 5 THEN ${pick('docIssues')} || ' ' || ${pick('docPlaces')}
           WHEN 6 THEN 'Add option to ' || ${pick('requests')}
           WHEN 7 THEN 'Slow ' || ${pick('operations')} || ' with ' || ${pick('loads')}
           ELSE ${pick('uiElements')} || ' ' || ${pick('uiDefects')} || ' on ' || ${pick('platforms')}
         END,
         CASE
           WHEN b.tpl = 6 THEN ${pick('featureRationales')} || ' ' || ${pick('featureDetails')}
           WHEN b.tpl = 5 THEN ${pick('docDescriptions')}
           ELSE replace(${pick('openers')}, '{version}', b.vname)
             || E'\n\nSteps to reproduce:\n1. ' || ${repro}[1 + b.step0]
             || E'\n2. ' || ${repro}[1 + (b.step0 + 1 + floor(random() * 6)::int) % cardinality(${repro})]
             || E'\n3. ' || ${repro}[1 + (b.step0 + 7 + floor(random() * 6)::int) % cardinality(${repro})]
             || E'\n\nExpected result:\n' || ${pick('expected')}
             || E'\n\nActual result:\n' || ${pick('actual')}
             || E'\n\nEnvironment: ' || ${pick('systems')} || ', ' || b.vname
             || ' build ' || (1000 + floor(random() * 9000))::int
             || CASE WHEN random() < CASE WHEN b.tpl IN (0, 4) THEN 0.6 ELSE 0.04 END THEN
                  E'\n\nStack trace:\n'
                  || CASE WHEN b.java_trace
                       THEN 'java.lang.' || ${pick('exceptions')} || ': ' || ${pick('exceptionMessages')}
                       ELSE 'Program received signal SIGSEGV, Segmentation fault.' END
                  || (SELECT string_agg(
                        CASE WHEN b.java_trace
                          THEN E'\n\tat com.omega.' || f.pkg || '.' || f.cls || '.' || f.meth
                               || '(' || f.cls || '.java:' || f.line || ')'
                          ELSE E'\n#' || (f.n - 1) || ' 0x00007f' || lpad(to_hex(f.addr), 6, '0') || ' in omega::'
                               || f.pkg || '::' || f.cls || '::' || f.meth || '() at ' || lower(f.cls) || '.cpp:' || f.line
                        END, '' ORDER BY f.n)
                      FROM (SELECT s.n, ${pick('packages')} AS pkg, ${pick('classes')} AS cls,
                                   ${pick('methods')} AS meth, (10 + floor(random() * 900))::int AS line,
                                   floor(random() * 16777216)::int AS addr
                            FROM generate_series(1, 3 + b.step0 % 6) AS s(n)) f)
                ELSE '' END
         END,
         b.status, b.resolution, b.severity, 'P' || b.prio, b.reporter_id, b.assignee_id, b.confidential,
         b.duplicate_of, b.created_at, b.changed_at, b.row_version
  FROM bl AS b CROSS JOIN k
  RETURNING 1
),
-- Comment authors: the reporter, the assignee or another staff member; only staff write private ones.
ins_comments AS (
  INSERT INTO comments (${ids ? sql`id, ` : sql``}bug_id, author_id, body, is_private, bug_version, created_at)
  SELECT ${ids ? sql`${ids.comment}::int + c.rn::int - 1, ` : sql``}c.bug_id,
         CASE c.who WHEN 0 THEN c.reporter_id WHEN 1 THEN coalesce(c.assignee_id, c.someone) ELSE c.someone END,
         replace(replace(replace(replace(
           CASE WHEN (c.who <> 0 OR NOT c.ext) AND c.r_private < 0.06 THEN ${pick('privateComments')}
                ELSE ${pick('comments')} || CASE WHEN random() < 0.3 THEN ' ' || ${pick('followUps')} ELSE '' END
           END,
           '{version}', c.vname), '{module}', ${pick('modules')}), '{system}', ${pick('systems')}),
           '{commit}', lpad(to_hex(floor(random() * 268435456)::int), 7, '0')),
         (c.who <> 0 OR NOT c.ext) AND c.r_private < 0.06, c.v, c.t
  FROM (
    SELECT o.*, CASE WHEN random() < 0.35 THEN 0 WHEN random() < 0.55 THEN 1 ELSE 2 END AS who,
           ${someInternal} AS someone, random() AS r_private
    FROM (
      SELECT e.bug_id, e.v, e.t, b.vname, b.reporter_id, b.assignee_id, b.ext,
             row_number() OVER (ORDER BY e.bug_id, e.v) AS rn
      FROM evn e JOIN b ON b.id = e.bug_id
      WHERE e.kind = 0
      ORDER BY e.bug_id, e.v
    ) o CROSS JOIN k
  ) c CROSS JOIN k
  RETURNING 1
),
-- History: one row per changed field; the fields of one step share its bug_version and time. Field
-- names and values follow the bugs service: column values, but the assignee by name.
ins_changes AS (
  INSERT INTO bug_changes (${ids ? sql`id, ` : sql``}bug_id, actor_id, field, old_value, new_value, bug_version, changed_at)
  SELECT ${ids ? sql`${ids.change}::int + (row_number() OVER (ORDER BY s.bug_id, s.v, f.ord))::int - 1, ` : sql``}s.bug_id,
         CASE WHEN s.kind = 2 THEN s.someone
              WHEN s.new_status IN ('IN_PROGRESS', 'RESOLVED') THEN coalesce(s.assignee_id, s.someone)
              WHEN s.new_status = 'ASSIGNED' AND s.r_actor < 0.5 THEN coalesce(s.assignee_id, s.someone)
              WHEN s.new_status IN ('VERIFIED', 'REOPENED') AND s.r_actor < 0.5 THEN s.reporter_id
              ELSE s.someone END,
         f.field, f.old_value, f.new_value, s.v, s.t
  FROM (
    SELECT o.*, ${someInternal} AS someone, random() AS r_actor
    FROM (
      SELECT e.bug_id, e.kind, e.k, e.v, e.t, b.reporter_id, b.assignee_id, b.resolution, b.duplicate_of,
             b.assign_step, b.res_step, b.prio, b.old_priority, au.name AS assignee_name,
             CASE WHEN e.k = 1 THEN b.init ELSE b.steps[e.k - 1] END AS old_status, b.steps[e.k] AS new_status
      FROM evn e JOIN b ON b.id = e.bug_id LEFT JOIN users au ON au.id = b.assignee_id
      WHERE e.kind > 0
      ORDER BY e.bug_id, e.v
    ) o CROSS JOIN k
  ) s
  CROSS JOIN LATERAL (VALUES
    (1, 'status', s.old_status, s.new_status, s.kind = 1),
    (2, 'resolution', CASE WHEN s.new_status = 'REOPENED' THEN 'FIXED' END,
        CASE WHEN s.new_status = 'RESOLVED' THEN
          CASE WHEN s.k = s.res_step THEN coalesce(s.resolution, 'FIXED') ELSE 'FIXED' END END,
        s.kind = 1 AND s.new_status IN ('RESOLVED', 'REOPENED')),
    (3, 'assignee', NULL, s.assignee_name, s.kind = 1 AND s.k = s.assign_step),
    (4, 'duplicate_of', NULL, s.duplicate_of::text, s.kind = 1 AND s.k = s.res_step AND s.duplicate_of IS NOT NULL),
    (5, 'priority', s.old_priority, 'P' || s.prio, s.kind = 2)
  ) AS f(ord, field, old_value, new_value, keep)
  WHERE f.keep
  RETURNING 1
),
ins_cc AS (
  INSERT INTO bug_cc (bug_id, user_id)
  SELECT b.id, k.u_int[1 + floor(random() * cardinality(k.u_int))::int]
  FROM b CROSS JOIN k CROSS JOIN generate_series(1, b.ncc)
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins_bugs)::int AS bugs, (SELECT count(*) FROM ins_comments)::int AS comments,
       (SELECT count(*) FROM ins_changes)::int AS changes, (SELECT count(*) FROM ins_cc)::int AS cc`;
}
