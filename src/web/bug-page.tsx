/**
 * The bug page: every field, the steps this viewer may take (only the allowed transitions, a resolution
 * picker when resolving, duplicate-of), comments and the change history interleaved in time order, the
 * CC list with "add me / remove me", and the mid-air collision screen when someone changed the bug
 * meanwhile (their change shown, your edit kept, re-apply with one click).
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signedIn, type Viewer } from '../access/index.ts';
import {
  addComment,
  allowedActions,
  type BugsContext,
  bugHistory,
  getBug,
  listComments,
  updateBug,
} from '../bugs/index.ts';
import { AppError } from '../platform/errors.ts';
import { Alert, Layout, type PageContext, pageContext } from './layout.tsx';

type Form = Record<string, string | undefined>;
type Bug = Awaited<ReturnType<typeof getBug>>;
type Comment = Awaited<ReturnType<typeof listComments>>[number];
type Change = Awaited<ReturnType<typeof bugHistory>>[number];

interface Collision {
  changes: { field: string; removed: string | null; added: string | null; who: { name: string } }[];
  comments: { author: { name: string }; body: string }[];
}

interface PageState {
  error?: string | undefined;
  collision?: Collision | undefined;
  /** What the user submitted, kept through an error or a collision. */
  values?: Form | undefined;
}

const time = (d: Date) => d.toISOString().slice(0, 16).replace('T', ' ');

/** Comments and changes in one list, oldest first; changes made together are one entry. */
function timeline(comments: Comment[], changes: Change[]) {
  const groups = new Map<string, { at: Date; who: string; changes: Change[] }>();
  for (const c of changes) {
    const key = `${c.bug_version}`;
    const g = groups.get(key) ?? { at: c.changed_at, who: c.actor_name, changes: [] };
    g.changes.push(c);
    groups.set(key, g);
  }
  const items: (
    | { kind: 'comment'; at: Date; comment: Comment }
    | { kind: 'change'; at: Date; who: string; changes: Change[] }
  )[] = [
    ...comments.map((comment) => ({ kind: 'comment' as const, at: comment.created_at, comment })),
    ...[...groups.values()].map((g) => ({ kind: 'change' as const, ...g })),
  ];
  // Changes first when a comment came with them (same moment), as Bugzilla shows it.
  return items.sort((a, b) => a.at.getTime() - b.at.getTime() || (a.kind === 'change' ? -1 : 1));
}

function BugPage(props: {
  ctx: PageContext;
  bug: Bug;
  comments: Comment[];
  changes: Change[];
  actions: Awaited<ReturnType<typeof allowedActions>>;
  state: PageState;
}) {
  const { bug, ctx, actions, state } = props;
  const values = state.values ?? {};
  const viewerId = ctx.viewer.kind === 'user' ? ctx.viewer.id : 0;
  const onCc = bug.cc.some((u) => u.id === viewerId);
  const fields: [string, string][] = [
    ['Status', bug.resolution ? `${bug.status} ${bug.resolution}` : bug.status],
    ['Product', bug.product],
    ['Version', bug.version],
    ['Component', bug.component],
    ['Severity', bug.severity],
    ['Priority', bug.priority],
    ['Reporter', bug.reporter_name],
    ['Assignee', bug.assignee_name ?? 'nobody'],
    ['Filed', time(bug.created_at)],
    ['Changed', time(bug.changed_at)],
  ];
  return (
    <Layout title={`Bug ${bug.id} – ${bug.summary}`} ctx={ctx}>
      <h1>
        Bug {String(bug.id)}: <span safe>{bug.summary}</span>
        {bug.confidential ? <span class="muted"> (confidential)</span> : ''}
      </h1>
      <Alert message={state.error} />
      {state.collision ? (
        <div class="alert" role="alert">
          <p>
            <strong>Mid-air collision:</strong> someone changed this bug while you were editing it. Their
            changes:
          </p>
          <ul>
            {state.collision.changes.map((c) => (
              <li safe>{`${c.who.name}: ${c.field} ${c.removed ?? '(none)'} → ${c.added ?? '(none)'}`}</li>
            ))}
            {state.collision.comments.map((c) => (
              <li safe>{`${c.author.name} commented: ${c.body}`}</li>
            ))}
          </ul>
          <p>Your edit is kept below: submit it again to apply it on top of theirs.</p>
        </div>
      ) : (
        ''
      )}
      <dl class="fields">
        {fields.map(([k, v]) => (
          <>
            <dt safe>{k}</dt>
            <dd safe>{v}</dd>
          </>
        ))}
        {bug.duplicate_of ? (
          <>
            <dt>Duplicate of</dt>
            <dd>
              <a href={`/bugs/${bug.duplicate_of}`}>Bug {String(bug.duplicate_of)}</a>
            </dd>
          </>
        ) : (
          ''
        )}
        <dt>CC</dt>
        <dd>
          <span safe>{bug.cc.map((u) => u.name).join(', ') || 'nobody'}</span>
          <form method="post" action={`/bugs/${bug.id}/cc`} class="inline">
            <input type="hidden" name="_csrf" value={ctx.csrf} />
            <input type="hidden" name="action" value={onCc ? 'remove' : 'add'} />
            <button type="submit" class="link">
              {onCc ? 'Remove me' : 'Add me'}
            </button>
          </form>
        </dd>
      </dl>
      <h2>Description</h2>
      <div class="text" safe>
        {bug.description || '(none)'}
      </div>
      <h2>Activity</h2>
      <ol class="timeline">
        {timeline(props.comments, props.changes).map((item) =>
          item.kind === 'comment' ? (
            <li id={`c${item.comment.id}`}>
              <p class="muted">
                <strong safe>{item.comment.author_name}</strong> commented {time(item.at)}
                {item.comment.is_private ? ' (private)' : ''}
              </p>
              <div class="text" safe>
                {item.comment.body}
              </div>
            </li>
          ) : (
            <li>
              <p class="muted">
                <strong safe>{item.who}</strong> changed {time(item.at)}
              </p>
              <ul>
                {item.changes.map((c) => (
                  <li safe>{`${c.field}: ${c.old_value ?? '(none)'} → ${c.new_value ?? '(none)'}`}</li>
                ))}
              </ul>
            </li>
          ),
        )}
      </ol>
      <h2>Change this bug</h2>
      <form method="post" action={`/bugs/${bug.id}/change`} class="card">
        <input type="hidden" name="_csrf" value={ctx.csrf} />
        <input type="hidden" name="row_version" value={String(bug.row_version)} />
        {actions.statuses.length ? (
          <>
            <label for="f-status">Status</label>
            <select id="f-status" name="status">
              <option value="">{`${bug.status} (no change)`}</option>
              {actions.statuses.map((s) => (
                <option value={s} selected={values['status'] === s}>
                  {s}
                </option>
              ))}
            </select>
            <label for="f-resolution">Resolution (when resolving)</label>
            <select id="f-resolution" name="resolution">
              <option value="">—</option>
              {actions.resolutions.map((r) => (
                <option value={r} selected={values['resolution'] === r}>
                  {r}
                </option>
              ))}
            </select>
            <label for="f-duplicate_of">Duplicate of bug (for DUPLICATE)</label>
            <input
              id="f-duplicate_of"
              name="duplicate_of"
              type="text"
              inputmode="numeric"
              value={values['duplicate_of'] ?? ''}
            />
          </>
        ) : (
          ''
        )}
        <label for="f-comment">Comment</label>
        <textarea id="f-comment" name="comment" rows="5" safe>
          {values['comment'] ?? ''}
        </textarea>
        <button type="submit">Save</button>
      </form>
    </Layout>
  );
}

/** The not-found page in the layout: for bugs that do not exist and bugs the viewer may not see alike. */
function NotFound(props: { ctx: PageContext; id: string }) {
  return (
    <Layout title="Not found" ctx={props.ctx}>
      <h1>Not found</h1>
      <p safe>{`There is no bug ${props.id}, or you may not see it.`}</p>
      <p>
        <a href="/">Home</a>
      </p>
    </Layout>
  );
}

/** Registers /bugs/:id and its forms. */
export async function bugPages(app: FastifyInstance, { ctx: bugs }: { ctx: BugsContext }) {
  await app.register(formbody, { bodyLimit: 256 * 1024 });

  const render = async (
    request: FastifyRequest,
    reply: FastifyReply,
    id: number,
    status: number,
    state: PageState,
  ) => {
    const viewer: Viewer = request.viewer;
    let bug: Bug;
    try {
      bug = await getBug(bugs, viewer, id);
    } catch (err) {
      if (err instanceof AppError && err.status === 404) {
        return reply
          .code(404)
          .type('text/html; charset=utf-8')
          .send(<NotFound ctx={pageContext(request)} id={String(id)} />);
      }
      throw err;
    }
    const [comments, changes, actions] = await Promise.all([
      listComments(bugs, viewer, id),
      bugHistory(bugs, viewer, id),
      allowedActions(bugs.db, viewer, bug),
    ]);
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'private, no-store')
      .send(
        <BugPage
          ctx={pageContext(request)}
          bug={bug}
          comments={comments}
          changes={changes}
          actions={actions}
          state={state}
        />,
      );
  };

  app.get<{ Params: { id: string } }>('/bugs/:id', async (request, reply) =>
    render(request, reply, Number(request.params.id), 200, {}),
  );

  app.post<{ Params: { id: string }; Body: Form }>('/bugs/:id/change', async (request, reply) => {
    const id = Number(request.params.id);
    const body = request.body ?? {};
    const comment = (body['comment'] ?? '').trim();
    const duplicateOf = body['duplicate_of']?.trim();
    if (duplicateOf && !/^\d{1,10}$/.test(duplicateOf)) {
      return render(request, reply, id, 400, { error: 'Duplicate of: give a bug number.', values: body });
    }
    const rowVersion = Number(body['row_version']);
    try {
      await updateBug(
        bugs,
        signedIn(request.viewer),
        id,
        {
          status: body['status'] || undefined,
          resolution: body['resolution'] || undefined,
          duplicateOf: duplicateOf ? Number(duplicateOf) : undefined,
          comment: comment ? { body: comment } : undefined,
        },
        Number.isInteger(rowVersion) && rowVersion > 0 ? { rowVersion, via: 'field' } : undefined,
      );
      return reply.redirect(`/bugs/${id}`, 303);
    } catch (err) {
      if (!(err instanceof AppError) || err.status === 404) throw err;
      if (err.code === 'mid_air_collision') {
        return render(request, reply, id, 409, {
          collision: err.details as unknown as Collision,
          values: body,
        });
      }
      return render(request, reply, id, err.status, { error: err.message, values: body });
    }
  });

  app.post<{ Params: { id: string }; Body: Form }>('/bugs/:id/cc', async (request, reply) => {
    const id = Number(request.params.id);
    const me = signedIn(request.viewer).id;
    const add = request.body?.['action'] === 'add';
    await updateBug(bugs, signedIn(request.viewer), id, { cc: add ? { add: [me] } : { remove: [me] } });
    return reply.redirect(`/bugs/${id}`, 303);
  });

  app.post<{ Params: { id: string }; Body: Form }>('/bugs/:id/comments', async (request, reply) => {
    const id = Number(request.params.id);
    const body = (request.body?.['comment'] ?? '').trim();
    if (!body) return render(request, reply, id, 400, { error: 'Write a comment first.' });
    const c = await addComment(bugs, signedIn(request.viewer), id, { body });
    return reply.redirect(`/bugs/${id}#c${c.id}`, 303);
  });
}
