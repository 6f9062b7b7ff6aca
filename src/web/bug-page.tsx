/**
 * The bug page: every field, one form to edit the fields this viewer may change (bug-edit.tsx) and take
 * the steps they may take (only the allowed transitions, a resolution picker when resolving,
 * duplicate-of), comments and the change history interleaved in time order, the
 * CC list with "add me / remove me", and the mid-air collision screen when someone changed the bug
 * meanwhile (their change shown, your edit kept, re-apply with one click).
 */
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
import { listProducts } from '../products/index.ts';
import { findActiveUserByEmail, getUser } from '../users/index.ts';
import { Script } from './assets.ts';
import { type AttachmentRow, type AttachmentsContext, listBugAttachments } from '../attachments/index.ts';
import { AttachmentsSection } from './attachments-section.tsx';
import { ChangeForm, type ProductChoice } from './bug-edit.tsx';
import { changedFields, EDIT_FIELDS, type EditField, readEditPatch, submitted } from './bug-edit-patch.ts';
import { notFoundHtml } from './error-pages.tsx';
import { PRIORITIES, SEVERITIES } from './file-bug-page.tsx';
import { ErrorSummary, type Form } from './form-fields.tsx';
import { formBodies } from './forms.ts';
import { Alert, Layout, type PageContext, pageContext } from './layout.tsx';

type Bug = Awaited<ReturnType<typeof getBug>>;
type Comment = Awaited<ReturnType<typeof listComments>>[number];
type Change = Awaited<ReturnType<typeof bugHistory>>[number];

interface Collision {
  changes: { field: string; removed: string | null; added: string | null; who: { name: string } }[];
  comments: { author: { name: string }; body: string }[];
}

interface PageState {
  error?: string | undefined;
  /** Errors beside the fields of the change form. */
  errors?: Form | undefined;
  collision?: Collision | undefined;
  /** What the user submitted, kept through an error or a collision. */
  values?: Form | undefined;
  /** Of the submitted field values, keep only these (after a collision: the ones the user changed). */
  keep?: EditField[] | undefined;
  /** The form's `was_` values and row version to keep (after an error); else the bug's current ones. */
  was?: Form | undefined;
  rowVersion?: number | undefined;
}

/** What the change form needs besides the bug: who may edit what, and the products to move it to. */
interface EditContext {
  editable: EditField[];
  current: Form;
  products: ProductChoice[];
}

/** The form fields the service's error fields stand beside. */
const FORM_FIELDS = new Set([...EDIT_FIELDS, 'status', 'resolution', 'duplicate_of', 'comment']);
const formField = (field: string | undefined) => (field === 'assignee_id' ? 'assignee' : field);

const time = (d: Date) => d.toISOString().slice(0, 16).replace('T', ' ');

/** Comments and changes in one list, oldest first; changes made together are one entry. */
function timeline(comments: Comment[], changes: Change[]) {
  const groups = new Map<string, { at: Date; who: string; changes: Change[] }>();
  for (const c of changes) {
    const key = `${c.bug_version}`;
    const who = c.via_name ? `${c.actor_name} (via ${c.via_name})` : c.actor_name;
    const g = groups.get(key) ?? { at: c.changed_at, who, changes: [] };
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
  edit: EditContext;
  state: PageState;
  attachments?: AttachmentRow[] | undefined;
}) {
  const { bug, ctx, actions, state, edit } = props;
  const values: Form = { ...edit.current };
  for (const f of EDIT_FIELDS) {
    const typed =
      state.values && (!state.keep || state.keep.includes(f)) ? submitted(state.values, f) : undefined;
    if (typed !== undefined) values[f] = typed;
  }
  for (const k of ['status', 'resolution', 'duplicate_of', 'comment']) values[k] = state.values?.[k];
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
      <ErrorSummary errors={state.errors ?? {}} what="Your change was not saved" />
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
                <strong safe>{item.comment.author_name}</strong>
                {item.comment.via_name ? <span safe>{` (via ${item.comment.via_name})`}</span> : ''} commented{' '}
                {time(item.at)}
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
      <AttachmentsSection bugId={bug.id} ctx={ctx} items={props.attachments} />
      <h2>Change this bug</h2>
      <ChangeForm
        bugId={bug.id}
        csrf={ctx.csrf}
        rowVersion={state.rowVersion ?? bug.row_version}
        status={bug.status}
        statuses={actions.statuses}
        resolutions={actions.resolutions}
        editable={edit.editable}
        was={state.was ?? edit.current}
        values={values}
        errors={state.errors ?? {}}
        products={edit.products}
        severities={SEVERITIES}
        priorities={PRIORITIES}
      />
      <Script name="bug-page" />
    </Layout>
  );
}

/** Registers /bugs/:id and its forms. */
export async function bugPages(
  app: FastifyInstance,
  { ctx: bugs, attachments }: { ctx: BugsContext; attachments?: AttachmentsContext },
) {
  await formBodies(app, 256 * 1024);

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
          .send(notFoundHtml(request, `There is no bug ${id}, or you may not see it.`));
      }
      throw err;
    }
    const [comments, changes, actions, files] = await Promise.all([
      listComments(bugs, viewer, id),
      bugHistory(bugs, viewer, id),
      allowedActions(bugs.db, viewer, bug),
      attachments ? listBugAttachments(attachments, viewer, id) : undefined,
    ]);
    const edit = await editContext(viewer, bug, actions.can_edit_fields);
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
          edit={edit}
          state={state}
          attachments={files}
        />,
      );
  };

  /** Which fields the viewer may edit, their current values, and (staff) the products to move to. */
  const editContext = async (viewer: Viewer, bug: Bug, may: string | string[]): Promise<EditContext> => {
    const editable: EditField[] =
      may === 'all'
        ? EDIT_FIELDS
        : EDIT_FIELDS.filter(
            // A reporter may make their bug confidential, but only staff may make it public again.
            (f) => Array.isArray(may) && may.includes(f) && !(f === 'confidential' && bug.confidential),
          );
    const staff = may === 'all';
    const assignee = staff && bug.assignee_id ? await getUser(bugs.db, viewer, bug.assignee_id) : undefined;
    const current: Form = {
      summary: bug.summary,
      product_id: String(bug.product_id),
      version_id: String(bug.version_id),
      component_id: String(bug.component_id),
      severity: bug.severity,
      priority: bug.priority,
      assignee: assignee?.email ?? '',
      confidential: bug.confidential ? '1' : '',
    };
    const products = staff ? await listProducts(bugs.db, viewer) : [];
    return { editable, current, products };
  };

  app.get<{ Params: { id: string } }>('/bugs/:id', async (request, reply) =>
    render(request, reply, Number(request.params.id), 200, {}),
  );

  app.post<{ Params: { id: string }; Body: Form }>('/bugs/:id/change', async (request, reply) => {
    const id = Number(request.params.id);
    const body = request.body ?? {};
    const rowVersion = Number(body['row_version']);
    const was: Form = Object.fromEntries(EDIT_FIELDS.map((f) => [f, body[`was_${f}`]]));
    const kept = { values: body, was, rowVersion: rowVersion || undefined };
    // Without JavaScript: another product was chosen; offer its versions and components, save nothing.
    if (body['step'] === 'product') return render(request, reply, id, 200, kept);
    const comment = (body['comment'] ?? '').trim();
    const duplicateOf = body['duplicate_of']?.trim();
    const { patch, errors } = await readEditPatch(body, {
      severities: SEVERITIES,
      priorities: PRIORITIES,
      userByEmail: async (email) => (await findActiveUserByEmail(bugs.db, email))?.id,
    });
    if (duplicateOf && !/^\d{1,10}$/.test(duplicateOf)) errors['duplicate_of'] = 'Give a bug number.';
    if (comment.length > 65535) errors['comment'] = 'A comment has at most 65,535 characters.';
    if (Object.keys(errors).length) return render(request, reply, id, 400, { ...kept, errors });
    try {
      await updateBug(
        bugs,
        signedIn(request.viewer),
        id,
        {
          ...patch,
          status: body['status'] || undefined,
          resolution: body['resolution'] || undefined,
          duplicateOf: duplicateOf ? Number(duplicateOf) : undefined,
          comment: comment ? { body: comment } : undefined,
        },
        Number.isInteger(rowVersion) && rowVersion > 0 ? { rowVersion, via: 'field' } : undefined,
      );
      return reply.redirect(`/bugs/${id}`, 303);
    } catch (err) {
      if (!(err instanceof AppError) || err.status === 404 || err.status >= 500) throw err;
      if (err.code === 'mid_air_collision') {
        // Their change stays; the fields I changed keep my values, to be applied on top with one click.
        return render(request, reply, id, 409, {
          collision: err.details as unknown as Collision,
          values: body,
          keep: changedFields(body),
        });
      }
      const field = formField(err.field);
      if (field && FORM_FIELDS.has(field)) {
        return render(request, reply, id, err.status, { ...kept, errors: { [field]: err.message } });
      }
      return render(request, reply, id, err.status, { ...kept, error: err.message });
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
    if (body.length > 65535) {
      return render(request, reply, id, 400, {
        values: { comment: body },
        errors: { comment: 'A comment has at most 65,535 characters.' },
      });
    }
    const c = await addComment(bugs, signedIn(request.viewer), id, { body });
    return reply.redirect(`/bugs/${id}#c${c.id}`, 303);
  });
}
