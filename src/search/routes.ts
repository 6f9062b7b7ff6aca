/** HTTP routes of the search module under /api/v1: search, CSV export, similar bugs, saved searches. */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { signedIn } from '../access/index.ts';
import { type BugsContext, workflow } from '../bugs/index.ts';
import type { Queryable } from '../platform/db.ts';
import { invalid } from '../platform/errors.ts';
import { ErrorBody, IdParams } from '../platform/http.ts';
import type { IdFilters } from './filter.ts';
import { defaultDir, type Sort, type SortColumn } from './query.ts';
import {
  ExportQuery,
  NewSavedSearchBody,
  SavedSearchPatchBody,
  SavedSearchResponse,
  SearchQuery,
  SearchResponse,
  SimilarQuery,
  SimilarResponse,
} from './schemas.ts';
import { exportCsv } from './csv.ts';
import * as saved from './saved.ts';
import * as search from './service.ts';

const MAX_ID = 2147483647;

function ids(v: string[] | undefined, field: string): number[] | undefined {
  const out = v?.flatMap((s) => s.split(',').map(Number));
  if (out?.some((n) => n < 1 || n > MAX_ID))
    throw invalid(`${field} must hold ids from 1 to ${MAX_ID}`, field);
  return out;
}

/** The id filters of a request; a status the workflow does not know is a 400, not an empty list. */
async function filters(db: Queryable, q: ExportQuery): Promise<IdFilters> {
  const statuses = q.status?.flatMap((s) => s.split(','));
  if (statuses) {
    const known = (await workflow(db)).statuses.map((s) => s.name);
    const unknown = statuses.find((n) => !known.includes(n));
    if (unknown) throw invalid(`unknown status ${unknown}; one of ${known.join(', ')}`, 'status');
  }
  return {
    productIds: ids(q.product_id, 'product_id'),
    versionIds: ids(q.version_id, 'version_id'),
    componentIds: ids(q.component_id, 'component_id'),
    statuses,
    reporterIds: ids(q.reporter_id, 'reporter_id'),
    assigneeIds: ids(q.assignee_id, 'assignee_id'),
  };
}

function sortOf(q: { sort?: SortColumn | undefined; dir?: 'asc' | 'desc' | undefined }): Sort | undefined {
  if (!q.sort) {
    if (q.dir) throw invalid('dir needs sort', 'dir');
    return undefined;
  }
  return { column: q.sort, dir: q.dir ?? defaultDir(q.sort) };
}

/** A search result row as the API shows it. */
export function presentHit(r: search.SearchRow) {
  return {
    id: r.id,
    summary: r.summary,
    product: { id: r.product_id, name: r.product },
    version: { id: r.version_id, name: r.version },
    component: { id: r.component_id, name: r.component },
    status: r.status,
    resolution: r.resolution,
    severity: r.severity,
    priority: r.priority,
    reporter: { id: r.reporter_id, name: r.reporter_name },
    assignee: r.assignee_id === null ? null : { id: r.assignee_id, name: r.assignee_name ?? '' },
    confidential: r.confidential,
    duplicate_of: r.duplicate_of,
    created_at: r.created_at.toISOString(),
    changed_at: r.changed_at.toISOString(),
    row_version: r.row_version,
    rank: r.rank,
    snippet: r.snippet,
  };
}

function presentSaved(s: saved.SavedSearch) {
  return {
    id: s.id,
    name: s.name,
    query: s.query,
    shared: s.shared,
    owner: { id: s.owner_id, name: s.owner_name },
    mine: s.mine,
    created_at: s.created_at.toISOString(),
    updated_at: s.updated_at.toISOString(),
  };
}

/** Registers the search routes. */
export async function searchRoutes(app: FastifyInstance, { ctx }: { ctx: BugsContext }) {
  const { db } = ctx;
  const tags = ['search'];
  app.get<{ Querystring: SearchQuery }>(
    '/search',
    {
      schema: {
        tags,
        description:
          'Bugs you may see matching a query of the search language (see /search/help), a page at a time, ' +
          'with the exact total and counts per status and product. A malformed query answers 400 ' +
          '`invalid_query` with `position` (0-based offset) and `length` of the mistake.',
        querystring: SearchQuery,
        response: { 200: SearchResponse },
      },
    },
    async (request) => {
      const q = request.query;
      const r = await search.search(
        db,
        request.viewer,
        {
          q: q.q,
          ids: await filters(db, q),
          sort: sortOf(q),
          cursor: q.cursor,
          limit: q.limit,
          facets: q.facets,
        },
        ctx.cache,
      );
      return {
        bugs: r.rows.map(presentHit),
        total: r.total,
        ...(r.facets ? { facets: r.facets } : {}),
        next_cursor: r.nextCursor,
        sort: r.sort,
        jump_to: r.jumpTo ?? null,
      };
    },
  );

  app.get<{ Querystring: ExportQuery }>(
    '/search/csv',
    {
      schema: {
        tags,
        description: 'Every matching bug you may see, as CSV (at most 100,000 rows), in the sort order.',
        querystring: ExportQuery,
        response: {
          200: { description: 'CSV with a header line.', content: { 'text/csv': { schema: Type.String() } } },
          // A bad query is refused before the first line, as JSON like every API error.
          '4xx': {
            description: 'The query cannot be run: the envelope says why (`code`, `message`, `field`).',
            content: { 'application/json': { schema: ErrorBody } },
          },
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const lines = await exportCsv(db, request.viewer, {
        q: q.q,
        ids: await filters(db, q),
        sort: sortOf(q),
      });
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="bugs.csv"')
        .header('cache-control', 'private, no-store')
        .send(Readable.from(lines));
    },
  );

  app.get<{ Querystring: SimilarQuery }>(
    '/search/similar',
    {
      schema: {
        tags,
        description:
          'Up to five bugs of the product whose summaries are like the given one (to avoid duplicates).',
        querystring: SimilarQuery,
        response: { 200: SimilarResponse },
      },
    },
    async (request) => ({
      bugs: await search.similarBugs(db, request.viewer, request.query.product_id, request.query.summary),
    }),
  );

  app.get(
    '/saved-searches',
    {
      schema: {
        tags: ['saved searches'],
        response: { 200: Type.Object({ saved_searches: Type.Array(SavedSearchResponse) }) },
      },
    },
    async (request) => ({
      saved_searches: (await saved.listSavedSearches(db, signedIn(request.viewer))).map(presentSaved),
    }),
  );

  app.post<{ Body: NewSavedSearchBody }>(
    '/saved-searches',
    {
      schema: { tags: ['saved searches'], body: NewSavedSearchBody, response: { 201: SavedSearchResponse } },
    },
    async (request, reply) => {
      const s = await saved.saveSearch(db, signedIn(request.viewer), request.body);
      return reply.code(201).header('location', `/api/v1/saved-searches/${s.id}`).send(presentSaved(s));
    },
  );

  app.get<{ Params: IdParams }>(
    '/saved-searches/:id',
    { schema: { tags: ['saved searches'], params: IdParams, response: { 200: SavedSearchResponse } } },
    async (request) =>
      presentSaved(await saved.getSavedSearch(db, signedIn(request.viewer), request.params.id)),
  );

  app.patch<{ Params: IdParams; Body: SavedSearchPatchBody }>(
    '/saved-searches/:id',
    {
      schema: {
        tags: ['saved searches'],
        params: IdParams,
        body: SavedSearchPatchBody,
        response: { 200: SavedSearchResponse },
      },
    },
    async (request) =>
      presentSaved(
        await saved.updateSavedSearch(db, signedIn(request.viewer), request.params.id, request.body),
      ),
  );

  app.delete<{ Params: IdParams }>(
    '/saved-searches/:id',
    { schema: { tags: ['saved searches'], params: IdParams, response: { 204: Type.Null() } } },
    async (request, reply) => {
      await saved.deleteSavedSearch(db, signedIn(request.viewer), request.params.id);
      return reply.code(204).send();
    },
  );
}
