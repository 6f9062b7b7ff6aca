/** HTTP routes of the bugs module under /api/v1. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { signedIn } from '../access/index.ts';
import type { Queryable } from '../platform/db.ts';
import { ifNoneMatchMatches } from '../platform/conditional.ts';
import { AppError, invalid } from '../platform/errors.ts';
import { IdParams } from '../platform/http.ts';
import {
  bugEtag,
  bugJsonHead,
  parseIfMatch,
  presentBug,
  presentBugSummary,
  presentChange,
  presentComment,
} from './present.ts';
import {
  BugListQuery,
  BugListResponse,
  BugPatchBody,
  BugResponse,
  ChangeResponse,
  CommentResponse,
  NewBugBody,
  NewCommentBody,
} from './schemas.ts';
import * as bugs from './service.ts';
import { type Expected, updateBug } from './update.ts';
import { workflow } from './workflow.ts';

const MAX_ID = 2147483647;

/** Comma-separated or repeated ids of a filter; ids past the database's range are refused, not cast. */
function ids(v: string[] | undefined, field: string): number[] | undefined {
  const out = v?.flatMap((s) => s.split(',').map(Number));
  if (out?.some((n) => n < 1 || n > MAX_ID))
    throw invalid(`${field} must hold ids from 1 to ${MAX_ID}`, field);
  return out;
}

function decodeCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (
      typeof parsed.after === 'number' &&
      Number.isInteger(parsed.after) &&
      parsed.after > 0 &&
      parsed.after <= MAX_ID
    )
      return parsed.after;
  } catch {
    // fall through to the 400 below
  }
  throw invalid('cursor is not one this server handed out', 'cursor');
}
/** Status names of a filter, each checked against the workflow so that a typo is a 400, not an empty list. */
async function knownStatuses(db: Queryable, v: string[] | undefined): Promise<string[] | undefined> {
  if (!v) return undefined;
  const names = v.flatMap((s) => s.split(','));
  const known = new Set((await workflow(db)).statuses.map((s) => s.name));
  const unknown = names.find((n) => !known.has(n));
  if (unknown) throw invalid(`unknown status ${unknown}; one of ${[...known].join(', ')}`, 'status');
  return names;
}

const encodeCursor = (after: number) => Buffer.from(JSON.stringify({ after })).toString('base64url');

/** Registers the bug routes. */
export async function bugsRoutes(app: FastifyInstance, { ctx }: { ctx: bugs.BugsContext }) {
  const { db } = ctx;
  app.post<{ Body: NewBugBody }>(
    '/bugs',
    { schema: { body: NewBugBody, response: { 201: BugResponse } } },
    async (request, reply) => {
      const b = request.body;
      const bug = await bugs.fileBug(ctx, signedIn(request.viewer), {
        productId: b.product_id,
        versionId: b.version_id,
        componentId: b.component_id,
        summary: b.summary,
        description: b.description,
        severity: b.severity,
        priority: b.priority,
        status: b.status,
        assigneeId: b.assignee_id,
        cc: b.cc,
        confidential: b.confidential,
      });
      reply.header('etag', bugEtag(bug)).header('location', `/api/v1/bugs/${bug.id}`);
      return reply.code(201).send(presentBug(bug));
    },
  );

  app.get<{ Querystring: BugListQuery }>(
    '/bugs',
    { schema: { querystring: BugListQuery, response: { 200: BugListResponse } } },
    async (request) => {
      const q = request.query;
      const rows = await bugs.listBugs(
        ctx,
        request.viewer,
        {
          productIds: ids(q.product_id, 'product_id'),
          versionIds: ids(q.version_id, 'version_id'),
          componentIds: ids(q.component_id, 'component_id'),
          statuses: await knownStatuses(db, q.status),
          reporterIds: ids(q.reporter_id, 'reporter_id'),
          assigneeIds: ids(q.assignee_id, 'assignee_id'),
        },
        { after: decodeCursor(q.cursor), limit: q.limit + 1, order: q.order },
      );
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      return {
        bugs: page.map(presentBugSummary),
        next_cursor: rows.length > q.limit && last ? encodeCursor(last.id) : null,
      };
    },
  );

  app.get<{ Params: IdParams }>(
    '/bugs/:id',
    { schema: { params: IdParams, response: { 200: BugResponse } } },
    async (request, reply) => {
      // The hottest read: the shared part of the JSON is serialised once per version of the bug and
      // kept with it in the cache; only the viewer's own parts are added here.
      const { entry, duplicateOf } = await bugs.readBug(ctx, request.viewer, request.params.id);
      const etag = bugEtag(entry.bug);
      reply.header('etag', etag).header('cache-control', 'private, no-cache');
      if (ifNoneMatchMatches(request.headers['if-none-match'], etag)) return reply.code(304).send();
      entry.jsonHead ??= bugJsonHead(entry.bug);
      const actions = await bugs.allowedActions(db, request.viewer, entry.bug);
      return reply
        .type('application/json; charset=utf-8')
        .send(`${entry.jsonHead},"duplicate_of":${duplicateOf},"actions":${JSON.stringify(actions)}}`);
    },
  );

  app.patch<{ Params: IdParams; Body: BugPatchBody }>(
    '/bugs/:id',
    { schema: { params: IdParams, body: BugPatchBody, response: { 200: BugResponse } } },
    async (request, reply) => {
      const id = request.params.id;
      const b = request.body;
      const ifMatch = parseIfMatch(request.headers['if-match'], id);
      if (ifMatch === 'invalid') {
        throw new AppError(412, 'precondition_failed', 'If-Match does not name a version of this bug.');
      }
      const expected: Expected | undefined =
        ifMatch !== undefined
          ? { rowVersion: ifMatch, via: 'if-match' }
          : b.row_version !== undefined
            ? { rowVersion: b.row_version, via: 'field' }
            : undefined;
      const bug = await updateBug(
        ctx,
        signedIn(request.viewer),
        id,
        {
          summary: b.summary,
          description: b.description,
          productId: b.product_id,
          versionId: b.version_id,
          componentId: b.component_id,
          severity: b.severity,
          priority: b.priority,
          assigneeId: b.assignee_id,
          status: b.status,
          resolution: b.resolution,
          duplicateOf: b.duplicate_of,
          confidential: b.confidential,
          cc: b.cc,
          comment: b.comment ? { body: b.comment.body, isPrivate: b.comment.is_private } : undefined,
        },
        expected,
      );
      reply.header('etag', bugEtag(bug));
      return presentBug(bug);
    },
  );

  app.get<{ Params: IdParams }>(
    '/bugs/:id/comments',
    {
      schema: { params: IdParams, response: { 200: Type.Object({ comments: Type.Array(CommentResponse) }) } },
    },
    async (request) => ({
      comments: (await bugs.listComments(ctx, request.viewer, request.params.id)).map(presentComment),
    }),
  );

  app.post<{ Params: IdParams; Body: NewCommentBody }>(
    '/bugs/:id/comments',
    { schema: { params: IdParams, body: NewCommentBody, response: { 201: CommentResponse } } },
    async (request, reply) => {
      const c = await bugs.addComment(ctx, signedIn(request.viewer), request.params.id, {
        body: request.body.body,
        isPrivate: request.body.is_private,
      });
      return reply.code(201).send(presentComment(c));
    },
  );

  app.get<{ Params: IdParams }>(
    '/bugs/:id/history',
    { schema: { params: IdParams, response: { 200: Type.Object({ history: Type.Array(ChangeResponse) }) } } },
    async (request) => ({
      history: (await bugs.bugHistory(ctx, request.viewer, request.params.id)).map(presentChange),
    }),
  );
}
