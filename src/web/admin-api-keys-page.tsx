/**
 * The admin page for API keys: every account's keys, newest first (or one owner's), where an admin allows
 * a key to act on behalf of other users and sets its own rate limit (above API_KEY_RATE_LIMIT_MAX if need
 * be). The same command as PATCH /api/v1/admin/api-keys/:id.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../platform/errors.ts';
import { type ApiKeyWithOwner, listAllApiKeys, updateApiKeyAsAdmin, type UsersDeps } from '../users/index.ts';
import { AdminNav, requireAdminHook, Saved } from './admin-products-page.tsx';
import { attr, Csrf, type Form } from './form-fields.tsx';
import { formBodies } from './forms.ts';
import { Alert, Layout, type PageContext, pageContext } from './layout.tsx';

const PAGE = 50;

function when(d: Date | null) {
  return d ? d.toISOString().slice(0, 16).replace('T', ' ') : '—';
}

function ApiKeysPage(props: {
  ctx: PageContext;
  keys: ApiKeyWithOwner[];
  userId: number | undefined;
  error?: string | undefined;
  saved?: boolean | undefined;
}) {
  const { ctx, keys, userId } = props;
  const back = `/admin/api-keys${userId ? `?user_id=${userId}` : ''}`;
  const last = keys.at(-1);
  return (
    <Layout title="API keys · Admin" ctx={ctx}>
      <h1>API keys</h1>
      <AdminNav current="/admin/api-keys" />
      <Saved what={props.saved ? 'the key' : undefined} />
      <Alert message={props.error} />
      <p>
        A key allowed to act on behalf of others may send <code>X-Bugzot-On-Behalf-Of</code> and then acts as
        that user (never an admin). An empty rate limit means the global one.
      </p>
      <table>
        <caption>{userId ? "One user's keys" : 'All keys, newest first'}</caption>
        <thead>
          <tr>
            <th scope="col">Owner</th>
            <th scope="col">Key</th>
            <th scope="col">Scope</th>
            <th scope="col">Last used</th>
            <th scope="col">Status</th>
            <th scope="col">Settings</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr id={`key-${k.id}`}>
              <td>
                <a href={`/admin/api-keys?user_id=${k.user_id}`} safe>
                  {k.owner_email}
                </a>
              </td>
              <td>
                <span safe>{k.name}</span> <code safe>{`${k.prefix}…`}</code>
              </td>
              <td safe>{k.scope}</td>
              <td safe>{when(k.last_used_at)}</td>
              <td safe>{k.revoked_at ? `revoked ${when(k.revoked_at)}` : 'live'}</td>
              <td>
                {k.revoked_at ? (
                  <span
                    safe
                  >{`${k.on_behalf_of ? 'on behalf of others; ' : ''}${k.rate_limit_per_minute ?? 'default'}/min`}</span>
                ) : (
                  <form method="post" action={`/admin/api-keys/${k.id}`} class="row">
                    <Csrf token={ctx.csrf} />
                    <input type="hidden" name="back" value={attr(back)} />
                    <label for={`obo-${k.id}`} class="check">
                      <input
                        type="checkbox"
                        id={`obo-${k.id}`}
                        name="on_behalf_of"
                        value="1"
                        checked={k.on_behalf_of}
                      />{' '}
                      may act on behalf of others
                    </label>
                    <label for={`rl-${k.id}`}>Requests a minute</label>
                    <input
                      id={`rl-${k.id}`}
                      name="rate_limit_per_minute"
                      type="number"
                      min="1"
                      max="1000000"
                      value={attr(k.rate_limit_per_minute === null ? '' : String(k.rate_limit_per_minute))}
                    />
                    <button type="submit" aria-label={`Save key ${k.name} of ${k.owner_email}`}>
                      Save
                    </button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {keys.length === PAGE && last ? (
        <p>
          <a href={`/admin/api-keys?before=${last.id}${userId ? `&user_id=${userId}` : ''}`}>Older keys</a>
        </p>
      ) : (
        ''
      )}
    </Layout>
  );
}

/** A positive id from a query or form value, or undefined. */
function idOf(v: string | undefined): number | undefined {
  return v && /^[1-9][0-9]{0,9}$/.test(v) && Number(v) <= 2147483647 ? Number(v) : undefined;
}

/** Registers /admin/api-keys and its form. */
export async function adminApiKeyPages(app: FastifyInstance, { deps }: { deps: UsersDeps }) {
  await formBodies(app, 16 * 1024);
  requireAdminHook(app);

  const render = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    query: { user_id?: string; before?: string; saved?: string },
    error?: string,
  ) => {
    const userId = idOf(query.user_id);
    const keys = await listAllApiKeys(deps, request.viewer, {
      userId,
      limit: PAGE,
      beforeId: idOf(query.before),
    });
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(
        <ApiKeysPage
          ctx={pageContext(request)}
          keys={keys}
          userId={userId}
          error={error}
          saved={query.saved === '1'}
        />,
      );
  };

  app.get<{ Querystring: { user_id?: string; before?: string; saved?: string } }>(
    '/admin/api-keys',
    (request, reply) => render(request, reply, 200, request.query),
  );

  app.post<{ Params: { id: string }; Body: Form }>('/admin/api-keys/:id', async (request, reply) => {
    const b = request.body ?? {};
    const back = /^\/admin\/api-keys(\?user_id=\d+)?$/.test(b['back'] ?? '') ? b['back']! : '/admin/api-keys';
    const query = Object.fromEntries(new URL(back, 'http://localhost').searchParams);
    const id = idOf(request.params.id);
    if (!id) return render(request, reply, 404, query, 'No such API key.');
    const limitText = (b['rate_limit_per_minute'] ?? '').trim();
    try {
      await updateApiKeyAsAdmin(deps, request.viewer, id, {
        onBehalfOf: b['on_behalf_of'] === '1',
        rateLimitPerMinute: limitText === '' ? null : Number(limitText),
      });
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      return render(request, reply, err.status, query, err.message);
    }
    return reply.redirect(`${back}${back.includes('?') ? '&' : '?'}saved=1`, 303);
  });
}
