/**
 * The email preferences page: the matrix of (my role on the bug) x (kind of change), whether to be
 * mailed about my own changes, and the products and components I watch. Plain forms: works without
 * JavaScript. Mails link here in their footer and List-Unsubscribe header.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signedIn, type UserViewer } from '../access/index.ts';
import {
  addWatch,
  EVENT_LABELS,
  EVENTS,
  listWatches,
  loadPreferences,
  type Preferences,
  ROLE_LABELS,
  ROLES,
  removeWatch,
  savePreferences,
  type Watch,
} from '../notify/preferences.ts';
import type { Db } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import { listProducts } from '../products/index.ts';
import { formBodies } from './forms.ts';
import { Alert, Layout, pageContext } from './layout.tsx';

type Form = Record<string, string | undefined>;

interface PageState {
  prefs: Preferences;
  watches: Watch[];
  products: { id: number; name: string; components: { id: number; name: string }[] }[];
  notice?: string | undefined;
  error?: string | undefined;
}

function PreferencesPage(props: { request: FastifyRequest; state: PageState }) {
  const ctx = pageContext(props.request);
  const { prefs, watches, products, notice, error } = props.state;
  return (
    <Layout title="Email preferences" ctx={ctx}>
      <h1>Email preferences</h1>
      {notice ? (
        <p role="status" safe>
          {notice}
        </p>
      ) : (
        ''
      )}
      <Alert message={error} />
      <section aria-labelledby="matrix">
        <h2 id="matrix">When to mail me</h2>
        <form method="post" action="/preferences/email" class="card">
          <input type="hidden" name="_csrf" value={ctx.csrf} />
          <table>
            <caption>Mail me when, on a bug where…</caption>
            <thead>
              <tr>
                <th scope="col">Change</th>
                {ROLES.map((r) => (
                  <th scope="col" safe>
                    {ROLE_LABELS[r]}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {EVENTS.map((e) => (
                <tr>
                  <th scope="row" safe>
                    {EVENT_LABELS[e]}
                  </th>
                  {ROLES.map((r) => (
                    <td>
                      <input
                        type="checkbox"
                        name={`m.${r}.${e}`}
                        value="on"
                        checked={prefs.matrix[r][e]}
                        aria-label={`${EVENT_LABELS[e]} — ${ROLE_LABELS[r]}`}
                      />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          <label>
            <input type="checkbox" name="mail_own_changes" value="on" checked={prefs.mailOwnChanges} /> Also
            mail me about changes I make myself
          </label>
          <button type="submit">Save preferences</button>
        </form>
      </section>
      <section aria-labelledby="watching">
        <h2 id="watching">Products and components I watch</h2>
        <p>You hear of every bug filed or changed in what you watch (as far as you may see it).</p>
        {watches.length ? (
          <ul>
            {watches.map((w) => (
              <li>
                <span safe>
                  {w.componentName
                    ? `${w.productName} / ${w.componentName}`
                    : `${w.productName} (all components)`}
                </span>{' '}
                <form method="post" action={`/preferences/email/watches/${w.id}/delete`} class="inline">
                  <input type="hidden" name="_csrf" value={ctx.csrf} />
                  <button
                    type="submit"
                    class="link"
                    aria-label={`Stop watching ${w.productName}${w.componentName ? ` / ${w.componentName}` : ''}`}
                  >
                    Stop watching
                  </button>
                </form>
              </li>
            ))}
          </ul>
        ) : (
          <p>You watch nothing yet.</p>
        )}
        <form method="post" action="/preferences/email/watches" class="card">
          <input type="hidden" name="_csrf" value={ctx.csrf} />
          <label for="f-target">Watch</label>
          <select id="f-target" name="target" required>
            {products.map((p) => (
              <optgroup label={p.name}>
                <option value={`p:${p.id}`} safe>{`${p.name} (all components)`}</option>
                {p.components.map((c) => (
                  <option value={`c:${p.id}:${c.id}`} safe>{`${p.name} / ${c.name}`}</option>
                ))}
              </optgroup>
            ))}
          </select>
          <button type="submit">Watch</button>
        </form>
      </section>
    </Layout>
  );
}

/** Registers /preferences/email and its forms. */
export async function preferencesPages(app: FastifyInstance, { db }: { db: Db }) {
  await formBodies(app, 64 * 1024);

  const render = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    extra: { notice?: string; error?: string } = {},
  ) => {
    const viewer = signedIn(request.viewer);
    const state: PageState = {
      prefs: (await loadPreferences(db, [viewer.id])).get(viewer.id)!,
      watches: await listWatches(db, viewer),
      products: (await listProducts(db, viewer)).map((p) => ({
        id: p.id,
        name: p.name,
        components: p.components.map((c) => ({ id: c.id, name: c.name })),
      })),
      ...extra,
    };
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(<PreferencesPage request={request} state={state} />);
  };

  app.get('/preferences/email', async (request, reply) => render(request, reply, 200));

  app.post<{ Body: Form }>('/preferences/email', async (request, reply) => {
    const viewer: UserViewer = signedIn(request.viewer);
    const body = request.body ?? {};
    // An unticked checkbox is simply absent from the form: every cell is set from what was sent.
    const matrix: Record<string, Record<string, boolean>> = {};
    for (const r of ROLES) {
      matrix[r] = {};
      for (const e of EVENTS) matrix[r]![e] = body[`m.${r}.${e}`] === 'on';
    }
    await savePreferences(db, viewer, { matrix, mailOwnChanges: body['mail_own_changes'] === 'on' });
    return render(request, reply, 200, { notice: 'Preferences saved.' });
  });

  app.post<{ Body: Form }>('/preferences/email/watches', async (request, reply) => {
    const viewer = signedIn(request.viewer);
    const m = /^(?:p:(\d{1,10})|c:(\d{1,10}):(\d{1,10}))$/.exec(request.body?.['target'] ?? '');
    if (!m) return render(request, reply, 400, { error: 'Choose a product or component to watch.' });
    try {
      await addWatch(db, viewer, {
        productId: Number(m[1] ?? m[2]),
        componentId: m[3] === undefined ? null : Number(m[3]),
      });
    } catch (err) {
      if (err instanceof AppError && err.status < 500)
        return render(request, reply, err.status, { error: err.message });
      throw err;
    }
    return reply.redirect('/preferences/email', 303);
  });

  app.post<{ Params: { id: string } }>('/preferences/email/watches/:id/delete', async (request, reply) => {
    const id = Number(request.params.id);
    if (!Number.isInteger(id) || id < 1 || id > 2147483647) {
      return render(request, reply, 404, { error: 'No such watch.' });
    }
    await removeWatch(db, signedIn(request.viewer), id);
    return reply.redirect('/preferences/email', 303);
  });
}
