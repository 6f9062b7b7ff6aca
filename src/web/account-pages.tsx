/**
 * The account page: change your password, and create and revoke API keys (a new key is shown once,
 * on the page that created it, and never again).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signedIn } from '../access/index.ts';
import { versionLabel } from '../ops/routes.ts';
import { AppError } from '../platform/errors.ts';
import {
  type ApiKeyRow,
  createApiKey,
  listApiKeys,
  revokeApiKey,
  SESSION_COOKIE,
  type UsersDeps,
  updateUser,
} from '../users/index.ts';
import { formBodies } from './forms.ts';
import { Field, Layout } from './layout.tsx';

type Form = Record<string, string | undefined>;

interface AccountState {
  keys: ApiKeyRow[];
  newKey?: string;
  passwordErrors?: Form;
  notice?: string;
  keyError?: string;
  rateLimitError?: string;
}

function when(d: Date | null) {
  return d ? d.toISOString().slice(0, 16).replace('T', ' ') : '—';
}

function AccountPage(props: { request: FastifyRequest; state: AccountState }) {
  const viewer = signedIn(props.request.viewer);
  const csrf = props.request.credential?.csrfToken ?? '';
  const ctx = { viewer, csrf, version: versionLabel };
  const { keys, newKey, passwordErrors = {}, notice, keyError, rateLimitError } = props.state;
  return (
    <Layout title="Your account" ctx={ctx}>
      <h1>Your account</h1>
      {notice ? (
        <p role="status" safe>
          {notice}
        </p>
      ) : (
        ''
      )}
      <section aria-labelledby="pw">
        <h2 id="pw">Change password</h2>
        <form method="post" action="/account/password" class="card">
          <input type="hidden" name="_csrf" value={csrf} />
          <Field
            name="current_password"
            label="Current password"
            type="password"
            autocomplete="current-password"
            error={passwordErrors['current_password']}
          />
          <Field
            name="password"
            label="New password (10 characters or more)"
            type="password"
            autocomplete="new-password"
            error={passwordErrors['password']}
          />
          <button type="submit">Change password</button>
        </form>
      </section>
      <section aria-labelledby="keys">
        <h2 id="keys">API keys</h2>
        {newKey ? (
          <p class="alert" role="status">
            Your new key — copy it now, it is not shown again: <code safe>{newKey}</code>
          </p>
        ) : (
          ''
        )}
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Key</th>
              <th scope="col">Scope</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">Rate limit</th>
              <th scope="col">On behalf of others</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr>
                <td safe>{k.name}</td>
                <td>
                  <code safe>{`${k.prefix}…`}</code>
                </td>
                <td safe>{k.scope}</td>
                <td safe>{when(k.created_at)}</td>
                <td safe>{when(k.last_used_at)}</td>
                <td safe>{k.rate_limit_per_minute ? `${k.rate_limit_per_minute}/min` : 'default'}</td>
                <td>{k.on_behalf_of ? 'allowed' : 'no'}</td>
                <td>
                  {k.revoked_at ? (
                    'revoked'
                  ) : (
                    <form method="post" action={`/account/api-keys/${k.id}/revoke`}>
                      <input type="hidden" name="_csrf" value={csrf} />
                      <button type="submit" class="link" aria-label={`Revoke key ${k.name}`}>
                        Revoke
                      </button>
                    </form>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <form method="post" action="/account/api-keys" class="card">
          <input type="hidden" name="_csrf" value={csrf} />
          <Field name="name" label="New key's name" error={keyError} />
          <label for="f-scope">Scope</label>
          <select id="f-scope" name="scope">
            <option value="read-write">read and write</option>
            <option value="read-only">read only</option>
          </select>
          <Field
            name="rate_limit_per_minute"
            label="Own rate limit, requests a minute (empty: the default)"
            type="number"
            required={false}
            error={rateLimitError}
          />
          <button type="submit">Create key</button>
        </form>
      </section>
    </Layout>
  );
}

/** Registers /account and its forms. */
export async function accountPages(app: FastifyInstance, { deps }: { deps: UsersDeps }) {
  await formBodies(app, 64 * 1024);

  const render = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    state: Partial<AccountState>,
  ) => {
    const keys = await listApiKeys(deps, signedIn(request.viewer));
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(<AccountPage request={request} state={{ keys, ...state }} />);
  };

  app.get('/account', async (request, reply) => render(request, reply, 200, {}));

  app.post<{ Body: Form }>('/account/password', async (request, reply) => {
    const viewer = signedIn(request.viewer);
    const body = request.body ?? {};
    try {
      await updateUser(
        deps,
        viewer,
        viewer.id,
        { password: body['password'] ?? '' },
        {
          currentPassword: body['current_password'] ?? '',
          keepSessionToken: request.cookies[SESSION_COOKIE],
        },
      );
      return render(request, reply, 200, {
        notice: 'Password changed. Your other sessions were signed out.',
      });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return render(request, reply, err.status, {
        passwordErrors: { [err.field ?? 'password']: err.message },
      });
    }
  });

  app.post<{ Body: Form }>('/account/api-keys', async (request, reply) => {
    const name = (request.body?.['name'] ?? '').trim();
    const scope = request.body?.['scope'] === 'read-only' ? 'read-only' : 'read-write';
    if (!name || name.length > 100) {
      return render(request, reply, 400, { keyError: 'Give the key a name of at most 100 characters.' });
    }
    const limitText = (request.body?.['rate_limit_per_minute'] ?? '').trim();
    const rateLimitPerMinute = limitText === '' ? null : Number(limitText);
    try {
      const { key } = await createApiKey(
        deps.db,
        signedIn(request.viewer),
        { name, scope, expiresAt: null, rateLimitPerMinute },
        { maxRateLimitPerMinute: deps.apiKeyRateLimitMax },
      );
      return render(request, reply, 201, { newKey: key });
    } catch (err) {
      if (!(err instanceof AppError) || err.field !== 'rate_limit_per_minute') throw err;
      return render(request, reply, err.status, { rateLimitError: err.message });
    }
  });

  app.post<{ Params: { id: string } }>('/account/api-keys/:id/revoke', async (request, reply) => {
    await revokeApiKey(deps, signedIn(request.viewer), Number(request.params.id));
    return reply.redirect('/account', 303);
  });
}
