/**
 * Bugzilla's Bug reads (search, get, comments, history) on top of Bugzot's bugs service: parameters
 * are translated here, and every read goes through the same service commands and visibility rule as
 * the API and the pages. Changes are in bug-changes.ts.
 */
import type { Viewer } from '../access/index.ts';
import { type BugsContext, bugHistory, getBug, listComments, workflow } from '../bugs/index.ts';
import { search } from '../search/index.ts';
import { AUTH_PARAMS } from './auth.ts';
import { bz, CODE } from './errors.ts';
import {
  applySelection,
  flag,
  list,
  one,
  type Params,
  parseBzDate,
  selection,
  textList,
  toId,
  toPriority,
  wants,
} from './fields.ts';
import { type BugCriteria, countBugs, searchBugIds } from './repository.ts';
import {
  BUG_EXTRA_FIELDS,
  type BugData,
  People,
  peopleOf,
  presentBug,
  presentComments,
  presentHistory,
} from './present.ts';

type FullBug = Awaited<ReturnType<typeof getBug>>;

/** Bugzilla's default and largest page of search results. */
export const DEFAULT_SEARCH_LIMIT = 500;
export const MAX_SEARCH_LIMIT = 10_000;

/** Parameters that only shape the answer or carry credentials. */
const SHAPING = new Set([
  'include_fields',
  'exclude_fields',
  'extra_fields',
  'permissive',
  'query_format',
  'order',
]);

/** Search parameters Bugzot understands (Bugzilla's API names and the old internal names). */
const SEARCH_PARAMS = new Set([
  'id',
  'bug_id',
  'alias',
  'product',
  'component',
  'version',
  'status',
  'bug_status',
  'resolution',
  'severity',
  'bug_severity',
  'priority',
  'creator',
  'reporter',
  'assigned_to',
  'cc',
  'summary',
  'short_desc',
  'creation_time',
  'creation_ts',
  'last_change_time',
  'delta_ts',
  'quicksearch',
  'limit',
  'offset',
  'count_only',
]);

/** Refuses a parameter Bugzot does not model: ignoring it would widen a search or drop a change. */
export function refuseUnknown(p: Params, known: ReadonlySet<string>, what: string) {
  for (const k of Object.keys(p)) {
    if (known.has(k) || SHAPING.has(k) || AUTH_PARAMS.has(k)) continue;
    throw bz(CODE.invalidFieldName, `Bugzot does not support '${k}' in ${what} (see docs/bugzilla.md).`);
  }
}

/** Bugzilla search parameters -> Bugzot criteria. */
export function searchCriteria(p: Params): BugCriteria {
  refuseUnknown(p, SEARCH_PARAMS, 'a bug search');
  const resolutions = list(p, 'resolution')?.map((r) => (r === '---' || r === '' ? null : r));
  const created = one(p, 'creation_time') ?? one(p, 'creation_ts');
  const changed = one(p, 'last_change_time') ?? one(p, 'delta_ts');
  return {
    ids: list(p, 'id', 'bug_id')?.map((v) => toId('id', v)),
    nothing: (list(p, 'alias')?.length ?? 0) > 0,
    products: list(p, 'product'),
    components: list(p, 'component'),
    versions: list(p, 'version'),
    statuses: list(p, 'status', 'bug_status')?.map((s) => s.toUpperCase()),
    resolutions,
    severities: list(p, 'severity', 'bug_severity')?.map((s) => s.toLowerCase()),
    priorities: list(p, 'priority')?.map((s) => {
      try {
        return toPriority(s) ?? s;
      } catch {
        return s;
      }
    }),
    creators: list(p, 'creator', 'reporter'),
    assignees: list(p, 'assigned_to'),
    ccs: list(p, 'cc'),
    summaries: textList(p, 'summary', 'short_desc'),
    createdSince: created === undefined ? undefined : parseBzDate('creation_time', created),
    changedSince: changed === undefined ? undefined : parseBzDate('last_change_time', changed),
  };
}

/** Several visible bugs in Bugzilla's shape, in the order given; ids gone meanwhile are skipped. */
async function presentBugs(ctx: BugsContext, viewer: Viewer, ids: number[], p: Params) {
  await ctx.cache.getMany(ctx.db, ids);
  const bugs: FullBug[] = [];
  for (const id of ids) {
    try {
      bugs.push(await getBug(ctx, viewer, id));
    } catch (err) {
      // Deleted or hidden between the search and now: left out, like any bug the viewer may not see.
      if ((err as { status?: number }).status !== 404) throw err;
    }
  }
  return presentLoaded(ctx, viewer, bugs, p);
}

async function presentLoaded(ctx: BugsContext, viewer: Viewer, bugs: BugData[], p: Params) {
  const sel = selection(p);
  const w = await workflow(ctx.db);
  const open = new Set(w.statuses.filter((s) => s.isOpen).map((s) => s.name));
  const withComments = wants(sel, 'comments', true);
  const comments = new Map<number, Awaited<ReturnType<typeof listComments>>>();
  if (withComments) for (const b of bugs) comments.set(b.id, await listComments(ctx, viewer, b.id));
  const ids = bugs.flatMap((b) => [...peopleOf(b), ...(comments.get(b.id) ?? []).map((c) => c.author_id)]);
  const people = await People.load(ctx.db, viewer, ids);
  return bugs.map((b) =>
    applySelection(
      presentBug(b, people, open, {
        description: wants(sel, 'description', true),
        comments: withComments ? presentComments(b, comments.get(b.id) ?? [], people) : undefined,
      }),
      sel,
      BUG_EXTRA_FIELDS,
    ),
  );
}

/** `GET /rest/bug`: Bugzilla's search, always within what the viewer may see. */
export async function searchBugs(ctx: BugsContext, viewer: Viewer, p: Params) {
  const criteria = searchCriteria(p);
  const countOnly = flag(p, 'count_only') ?? false;
  const limitText = one(p, 'limit');
  const limit = limitText === undefined || limitText === '0' ? undefined : toId('limit', limitText);
  const offsetText = one(p, 'offset');
  const offset = offsetText === undefined || offsetText === '0' ? 0 : toId('offset', offsetText);
  const pageSize = Math.min(
    limit ?? (limitText === '0' ? MAX_SEARCH_LIMIT : DEFAULT_SEARCH_LIMIT),
    MAX_SEARCH_LIMIT,
  );
  const quick = one(p, 'quicksearch')?.trim();
  if (quick) {
    // Quicksearch is Bugzot's search language (src/search), run for the same viewer; its hits narrow
    // the other criteria. Alone, it needs only the page asked for (or just its exact total).
    const alone = Object.values(criteria).every((v) => v === undefined || v === false);
    const hits = await search(ctx.db, viewer, {
      q: quick,
      limit: alone ? (countOnly ? 1 : Math.min(offset + pageSize, MAX_SEARCH_LIMIT)) : MAX_SEARCH_LIMIT,
      facets: false,
      sort: { column: 'id', dir: 'asc' },
    });
    if (alone && countOnly) return { bug_count: hits.total };
    const found = hits.rows.map((r) => r.id);
    criteria.ids = criteria.ids ? criteria.ids.filter((id) => found.includes(id)) : found;
  }
  if (countOnly) return { bug_count: await countBugs(ctx.db, viewer, criteria) };
  const ids = await searchBugIds(ctx.db, viewer, criteria, { limit: pageSize, offset });
  return { bugs: await presentBugs(ctx, viewer, ids, p), faults: [] };
}

/** A path's `id_or_alias` as a bug id (Bugzot has no aliases). */
export function bugIdOf(idOrAlias: string): number {
  if (/^[1-9][0-9]{0,9}$/.test(idOrAlias) && Number(idOrAlias) <= 2147483647) return Number(idOrAlias);
  throw bz(CODE.improperBugId, `'${idOrAlias}' is not a valid bug number (Bugzot has no bug aliases).`);
}

/** `GET /rest/bug/{id}`: one bug (101 when it does not exist or may not be seen), or faults with `permissive`. */
export async function getBugs(ctx: BugsContext, viewer: Viewer, ids: number[], p: Params) {
  const permissive = flag(p, 'permissive') ?? false;
  const bugs: FullBug[] = [];
  const faults: { id: number; faultString: string; faultCode: number }[] = [];
  for (const id of ids) {
    try {
      bugs.push(await getBug(ctx, viewer, id));
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
      if (!permissive) throw bz(CODE.bugDoesNotExist, `Bug #${id} does not exist.`);
      faults.push({ id, faultString: `Bug #${id} does not exist.`, faultCode: CODE.bugDoesNotExist });
    }
  }
  return { bugs: await presentLoaded(ctx, viewer, bugs, p), faults };
}

/** `GET /rest/bug/{id}/comment`: `{bugs: {id: {comments}}, comments: {}}`; `new_since` filters by time. */
export async function bugComments(ctx: BugsContext, viewer: Viewer, id: number, p: Params) {
  const bug = await getBug(ctx, viewer, id);
  const comments = await listComments(ctx, viewer, id);
  const since = one(p, 'new_since');
  const sinceDate = since === undefined ? undefined : parseBzDate('new_since', since);
  const people = await People.load(ctx.db, viewer, [bug.reporter_id, ...comments.map((c) => c.author_id)]);
  const sel = selection(p);
  const shown = presentComments(bug, comments, people)
    .filter((c) => !sinceDate || new Date(c.creation_time) > sinceDate)
    .map((c) => applySelection(c, sel));
  return { bugs: { [String(id)]: { comments: shown } }, comments: {} };
}

/** `GET /rest/bug/{id}/history`: change sets, oldest first; `new_since` filters by time. */
export async function bugHistoryOf(ctx: BugsContext, viewer: Viewer, id: number, p: Params) {
  const rows = await bugHistory(ctx, viewer, id);
  const since = one(p, 'new_since');
  const sinceDate = since === undefined ? undefined : parseBzDate('new_since', since);
  const shown = sinceDate ? rows.filter((r) => r.changed_at > sinceDate) : rows;
  const people = await People.load(
    ctx.db,
    viewer,
    shown.map((r) => r.actor_id),
  );
  return { bugs: [{ id, alias: [], history: presentHistory(shown, people) }] };
}
