/** HTTP routes of notifications under /api/v1: the viewer's email preferences and watches; admin job view. */
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';
import { signedIn } from '../access/index.ts';
import type { Db } from '../platform/db.ts';
import { Id, IdParams, Nullable } from '../platform/http.ts';
import { type AdminJob, adminListJobs, adminRetryJob } from './admin.ts';
import {
  addWatch,
  EVENTS,
  listWatches,
  loadPreferences,
  type Preferences,
  ROLES,
  removeWatch,
  savePreferences,
  type Watch,
} from './preferences.ts';

const Row = Type.Object(Object.fromEntries(EVENTS.map((e) => [e, Type.Optional(Type.Boolean())])), {
  additionalProperties: false,
});
const PreferencesBody = Type.Object(
  {
    mail_own_changes: Type.Optional(Type.Boolean()),
    matrix: Type.Optional(
      Type.Object(Object.fromEntries(ROLES.map((r) => [r, Type.Optional(Row)])), {
        additionalProperties: false,
      }),
    ),
  },
  { additionalProperties: false },
);
type PreferencesBody = Static<typeof PreferencesBody>;
const FullRow = Type.Object(Object.fromEntries(EVENTS.map((e) => [e, Type.Boolean()])));
const WatchOut = Type.Object({
  id: Type.Integer(),
  product_id: Type.Integer(),
  product_name: Type.String(),
  component_id: Nullable(Type.Integer()),
  component_name: Nullable(Type.String()),
});
const PreferencesOut = Type.Object({
  mail_own_changes: Type.Boolean(),
  matrix: Type.Object(Object.fromEntries(ROLES.map((r) => [r, FullRow]))),
  watches: Type.Array(WatchOut),
});
const NewWatch = Type.Object(
  { product_id: Id, component_id: Type.Optional(Nullable(Id)) },
  { additionalProperties: false },
);
type NewWatch = Static<typeof NewWatch>;
const JobState = Type.Union(['pending', 'running', 'done', 'failed', 'retrying'].map((s) => Type.Literal(s)));
const JobsQuery = Type.Object(
  {
    state: Type.Optional(JobState),
    kind: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  },
  { additionalProperties: false },
);
type JobsQuery = Static<typeof JobsQuery>;
const JobOut = Type.Object({
  id: Type.Integer(),
  kind: Type.String(),
  state: Type.String(),
  summary: Type.String(),
  payload: Type.Record(Type.String(), Type.Unknown()),
  attempts: Type.Integer(),
  last_error: Nullable(Type.String()),
  run_at: Type.String({ format: 'date-time' }),
  created_at: Type.String({ format: 'date-time' }),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
});

const presentWatch = (w: Watch) => ({
  id: w.id,
  product_id: w.productId,
  product_name: w.productName,
  component_id: w.componentId,
  component_name: w.componentName,
});
const presentPrefs = (p: Preferences, watches: Watch[]) => ({
  mail_own_changes: p.mailOwnChanges,
  matrix: p.matrix,
  watches: watches.map(presentWatch),
});
const presentJob = (j: AdminJob) => ({
  id: j.id,
  kind: j.kind,
  state: j.state,
  summary: j.summary,
  payload: j.payload,
  attempts: j.attempts,
  last_error: j.lastError,
  run_at: j.runAt.toISOString(),
  created_at: j.createdAt.toISOString(),
  finished_at: j.finishedAt ? j.finishedAt.toISOString() : null,
});

/** Registers the notification routes. */
export async function notifyRoutes(app: FastifyInstance, { db }: { db: Db }) {
  app.get(
    '/me/email-preferences',
    { schema: { tags: ['notifications'], response: { 200: PreferencesOut } } },
    async (request) => {
      const v = signedIn(request.viewer);
      const prefs = (await loadPreferences(db, [v.id])).get(v.id)!;
      return presentPrefs(prefs, await listWatches(db, v));
    },
  );

  app.put<{ Body: PreferencesBody }>(
    '/me/email-preferences',
    { schema: { tags: ['notifications'], body: PreferencesBody, response: { 200: PreferencesOut } } },
    async (request) => {
      const v = signedIn(request.viewer);
      const prefs = await savePreferences(db, v, {
        mailOwnChanges: request.body.mail_own_changes,
        matrix: request.body.matrix,
      });
      return presentPrefs(prefs, await listWatches(db, v));
    },
  );

  app.get(
    '/me/watches',
    {
      schema: { tags: ['notifications'], response: { 200: Type.Object({ watches: Type.Array(WatchOut) }) } },
    },
    async (request) => ({ watches: (await listWatches(db, signedIn(request.viewer))).map(presentWatch) }),
  );

  app.post<{ Body: NewWatch }>(
    '/me/watches',
    { schema: { tags: ['notifications'], body: NewWatch, response: { 201: WatchOut } } },
    async (request, reply) => {
      const w = await addWatch(db, signedIn(request.viewer), {
        productId: request.body.product_id,
        componentId: request.body.component_id,
      });
      return reply.code(201).send(presentWatch(w));
    },
  );

  app.delete<{ Params: IdParams }>(
    '/me/watches/:id',
    { schema: { tags: ['notifications'], params: IdParams, response: { 204: Type.Null() } } },
    async (request, reply) => {
      await removeWatch(db, signedIn(request.viewer), request.params.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: JobsQuery }>(
    '/admin/jobs',
    {
      schema: {
        tags: ['admin'],
        querystring: JobsQuery,
        response: {
          200: Type.Object({
            jobs: Type.Array(JobOut),
            counts: Type.Record(Type.String(), Type.Integer()),
          }),
        },
      },
    },
    async (request) => {
      const { jobs, counts } = await adminListJobs(db, request.viewer, {
        state: request.query.state as 'failed' | undefined,
        kind: request.query.kind,
        limit: request.query.limit,
      });
      return { jobs: jobs.map(presentJob), counts };
    },
  );

  app.post<{ Params: IdParams }>(
    '/admin/jobs/:id/retry',
    { schema: { tags: ['admin'], params: IdParams, response: { 200: JobOut } } },
    async (request) => presentJob(await adminRetryJob(db, request.viewer, request.params.id)),
  );
}
