/**
 * The admin page for accounts: list and search users, make them internal or external, give or take the
 * admin right, disable (which ends their sessions and revokes their API keys at once) or enable them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signedIn } from '../access/index.ts';
import { AppError } from '../platform/errors.ts';
import { createUser, listUsers, type UserRow, type UsersDeps, updateUser } from '../users/index.ts';
import { AdminNav, requireAdminHook, Saved } from './admin-products-page.tsx';
import { attr, Checkbox, Csrf, ErrorSummary, type Form, Select } from './form-fields.tsx';
import { formBodies } from './forms.ts';
import { Alert, Field, Layout, type PageContext, pageContext } from './layout.tsx';

const PAGE = 50;

function UsersPage(props: {
  ctx: PageContext;
  users: UserRow[];
  q: string;
  after: number;
  error?: string | undefined;
  saved?: string | undefined;
  /** The new-user form as typed, when it was refused (never with the password). */
  newUser?: { values: Form; errors: Form } | undefined;
}) {
  const nu = props.newUser ?? { values: { kind: 'internal' }, errors: {} };
  const { ctx, users, q } = props;
  const me = signedIn(ctx.viewer).id;
  const back = `/admin/users?q=${encodeURIComponent(q)}${props.after ? `&after=${props.after}` : ''}`;
  const last = users.at(-1);
  return (
    <Layout title="Users · Admin" ctx={ctx}>
      <h1>Users</h1>
      <AdminNav current="/admin/users" />
      <Saved what={props.saved} />
      <Alert message={props.error} />
      <form method="get" action="/admin/users" class="row" aria-label="Search users">
        <label for="user-q">Search by name or e-mail</label>
        <input id="user-q" name="q" type="search" value={attr(q)} />
        <button type="submit">Search</button>
      </form>
      <table>
        <caption>{q ? 'Users matching the search' : 'All users'}</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">E-mail</th>
            <th scope="col">Kind and admin right</th>
            <th scope="col">Account</th>
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr id={`user-${u.id}`}>
              <td safe>{u.name}</td>
              <td safe>{u.email}</td>
              <td>
                <form method="post" action={`/admin/users/${u.id}`} class="row">
                  <Csrf token={ctx.csrf} />
                  <input type="hidden" name="back" value={attr(back)} />
                  <input type="hidden" name="action" value="save" />
                  <label for={`u${u.id}-kind`} class="sr-only" safe>
                    {`Kind of ${u.name}`}
                  </label>
                  <select id={`u${u.id}-kind`} name="kind">
                    <option value="internal" selected={u.kind === 'internal'}>
                      internal (staff)
                    </option>
                    <option value="external" selected={u.kind === 'external'}>
                      external (customer)
                    </option>
                  </select>
                  <label for={`u${u.id}-admin`} class="check">
                    <input
                      type="checkbox"
                      id={`u${u.id}-admin`}
                      name="is_admin"
                      value="1"
                      checked={u.is_admin}
                      disabled={u.id === me}
                    />{' '}
                    admin
                  </label>
                  <button type="submit" aria-label={`Save ${u.name}`}>
                    Save
                  </button>
                </form>
              </td>
              <td>
                {u.disabled ? 'disabled ' : 'active '}
                {u.id === me ? (
                  <span class="muted">(you)</span>
                ) : (
                  <form method="post" action={`/admin/users/${u.id}`} class="inline">
                    <Csrf token={ctx.csrf} />
                    <input type="hidden" name="back" value={attr(back)} />
                    <input type="hidden" name="action" value={u.disabled ? 'enable' : 'disable'} />
                    <button
                      type="submit"
                      class="link"
                      aria-label={`${u.disabled ? 'Enable' : 'Disable'} ${u.name}`}
                    >
                      {u.disabled ? 'Enable' : 'Disable'}
                    </button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {users.length === 0 ? <p class="muted">No users match.</p> : ''}
      {last && users.length === PAGE ? (
        <p>
          <a href={`/admin/users?q=${encodeURIComponent(q)}&after=${last.id}`}>Next page</a>
        </p>
      ) : (
        ''
      )}
      <section aria-labelledby="new-user">
        <h2 id="new-user">New user</h2>
        <ErrorSummary errors={nu.errors} what="The account was not created" />
        <form method="post" action="/admin/users" class="card" id="new-user-form">
          <Csrf token={ctx.csrf} />
          <Field name="name" label="Name" value={nu.values['name']} error={nu.errors['name']} />
          <Field
            name="email"
            label="E-mail address"
            type="email"
            autocomplete="off"
            value={nu.values['email']}
            error={nu.errors['email']}
          />
          <Select
            name="kind"
            label="Kind"
            value={nu.values['kind']}
            options={[
              { value: 'internal', label: 'internal (staff)' },
              { value: 'external', label: 'external (customer)' },
            ]}
            error={nu.errors['kind']}
          />
          <Checkbox name="is_admin" label="Administrator" checked={nu.values['is_admin'] === '1'} />
          <Field
            name="password"
            label="Initial password (10 characters or more; tell it to them privately)"
            type="password"
            autocomplete="new-password"
            error={nu.errors['password']}
          />
          <button type="submit">Create user</button>
        </form>
      </section>
    </Layout>
  );
}

/** A same-site path to go back to after a change (never another site). */
function backTo(text: string | undefined): string {
  return text && /^\/admin\/users(\?[\w%=&.-]*)?$/.test(text) ? text : '/admin/users';
}

/** Registers /admin/users and its forms (admins only). */
export async function adminUserPages(app: FastifyInstance, { deps }: { deps: UsersDeps }) {
  await formBodies(app, 64 * 1024);
  requireAdminHook(app);

  const render = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    query: { q?: string | undefined; after?: string | undefined; saved?: string | undefined },
    error?: string,
    newUser?: { values: Form; errors: Form },
  ) => {
    const q = (query.q ?? '').slice(0, 100);
    const after = /^\d{1,10}$/.test(query.after ?? '') ? Number(query.after) : 0;
    const users = await listUsers(deps.db, request.viewer, {
      limit: PAGE,
      ...(q ? { query: q } : {}),
      ...(after ? { afterId: after } : {}),
    });
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'private, no-store')
      .send(
        <UsersPage
          ctx={pageContext(request)}
          users={users}
          q={q}
          after={after}
          error={error}
          saved={query.saved === '1' ? 'the account' : undefined}
          newUser={newUser}
        />,
      );
  };

  app.get<{ Querystring: { q?: string; after?: string; saved?: string } }>('/admin/users', (request, reply) =>
    render(request, reply, 200, request.query),
  );

  app.post<{ Body: Form }>('/admin/users', async (request, reply) => {
    const b = request.body ?? {};
    const values: Form = { name: b['name'], email: b['email'], kind: b['kind'], is_admin: b['is_admin'] };
    const kind = b['kind'] === 'internal' || b['kind'] === 'external' ? b['kind'] : undefined;
    if (!kind)
      return render(request, reply, 400, {}, undefined, { values, errors: { kind: 'Choose a kind.' } });
    try {
      const user = await createUser(deps.db, {
        email: b['email'] ?? '',
        name: b['name'] ?? '',
        password: b['password'] ?? '',
        kind,
        isAdmin: b['is_admin'] === '1',
      });
      return reply.redirect(`/admin/users?q=${encodeURIComponent(user.email)}&saved=1`, 303);
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      return render(request, reply, err.status, {}, undefined, {
        values,
        errors: { [err.field ?? 'email']: err.message },
      });
    }
  });

  app.post<{ Params: { id: string }; Body: Record<string, string | undefined> }>(
    '/admin/users/:id',
    async (request, reply) => {
      const b = request.body ?? {};
      const id = Number(request.params.id);
      const action = b['action'];
      const back = backTo(b['back']);
      const kind = b['kind'] === 'internal' || b['kind'] === 'external' ? b['kind'] : undefined;
      const patch: { disabled?: boolean; kind?: 'internal' | 'external'; isAdmin?: boolean } | undefined =
        action === 'disable'
          ? { disabled: true }
          : action === 'enable'
            ? { disabled: false }
            : action === 'save' && kind
              ? {
                  kind,
                  // The own admin box is shown disabled (not sent): leave the own right as it is.
                  ...(id === signedIn(request.viewer).id ? {} : { isAdmin: b['is_admin'] === '1' }),
                }
              : undefined;
      const query = Object.fromEntries(new URL(back, 'http://localhost').searchParams);
      if (!patch) return render(request, reply, 400, query, 'Choose internal or external, then save.');
      try {
        await updateUser(deps, request.viewer, id, patch);
      } catch (err) {
        if (!(err instanceof AppError) || err.status === 404 || err.status >= 500) throw err;
        return render(request, reply, err.status, query, err.message);
      }
      return reply.redirect(`${back}${back.includes('?') ? '&' : '?'}saved=1`, 303);
    },
  );
}
