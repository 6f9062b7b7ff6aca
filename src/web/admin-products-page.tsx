/**
 * Admin pages for the catalogue: products (create, rename, describe, released or internal-only), their
 * versions (create, rename, released or not, order) and components (create, rename, default assignee).
 * Every form goes through the products service (which checks the admin right again and tells every
 * process to drop cached bugs after a change); a refused form is shown again with its error beside the
 * field and what was typed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAdmin, type Viewer } from '../access/index.ts';
import { AppError, forbidden, invalid } from '../platform/errors.ts';
import {
  createComponent,
  createProduct,
  createVersion,
  getComponent,
  getProduct,
  getVersion,
  listProducts,
  type ProductsContext,
  updateComponent,
  updateProduct,
  updateVersion,
} from '../products/index.ts';
import { findActiveUserByEmail, getUser } from '../users/index.ts';
import { attr, Checkbox, Csrf, ErrorSummary, FieldError, type Form, TextArea } from './form-fields.tsx';
import { Script } from './assets.ts';
import { formBodies } from './forms.ts';
import { Field, Layout, type PageContext, pageContext } from './layout.tsx';

type Product = Awaited<ReturnType<typeof getProduct>>;

/** Which form of the page was refused, with what was typed and what was wrong. */
export interface Refused {
  form: string;
  values: Form;
  errors: Form;
}

/** Refuses every admin page to anybody but admins (403 page; sign-in first for nobody). */
export function requireAdminHook(app: FastifyInstance) {
  app.addHook('preHandler', async (request) => {
    if (!isAdmin(request.viewer)) throw forbidden('Only administrators may use the admin pages.');
  });
}

/** A text input with its label (hidden from sight when the row says what it is) and its error. */
export function Input(props: {
  id: string;
  name: string;
  label: string;
  value: string;
  error?: string | undefined;
  type?: string;
  hideLabel?: boolean;
  required?: boolean;
  /** The id of a <datalist> offering values (the people suggested as a default assignee). */
  list?: string;
}) {
  return (
    <span class="inline-field">
      <label for={props.id} class={props.hideLabel ? 'sr-only' : undefined} safe>
        {props.label}
      </label>
      <input
        id={props.id}
        name={props.name}
        type={props.type ?? 'text'}
        list={props.list}
        autocomplete={props.list ? 'off' : undefined}
        value={attr(props.value)}
        required={props.required}
        aria-invalid={props.error ? 'true' : undefined}
        aria-describedby={props.error ? `${props.id}-error` : undefined}
      />
      <FieldError id={props.id} error={props.error} />
    </span>
  );
}

/** The values and errors of one form: what was typed if it was refused, else the stored values. */
function formState(refused: Refused | undefined, form: string, stored: Form) {
  return refused?.form === form
    ? { values: refused.values, errors: refused.errors }
    : { values: stored, errors: {} as Form };
}

/** The admin area's own navigation. */
export function AdminNav(props: { current: string }) {
  const links: [string, string][] = [
    ['/admin/products', 'Products'],
    ['/admin/users', 'Users'],
    ['/admin/api-keys', 'API keys'],
    ['/admin/mail', 'Mail delivery'],
    ['/admin/stats', 'Statistics'],
  ];
  return (
    <nav aria-label="Administration" class="subnav">
      {links.map(([href, label]) => (
        <a href={href} aria-current={href === props.current ? 'page' : undefined}>
          {label}
        </a>
      ))}
    </nav>
  );
}

/** A note that a change was saved, announced politely. */
export function Saved(props: { what?: string | undefined }) {
  return props.what ? (
    <p class="notice" role="status" safe>
      {`Saved: ${props.what}.`}
    </p>
  ) : (
    ''
  );
}

function ProductsPage(props: { ctx: PageContext; products: Product[]; refused?: Refused | undefined }) {
  const { values, errors } = formState(props.refused, 'new-product', {});
  return (
    <Layout title="Products · Admin" ctx={props.ctx}>
      <h1>Products</h1>
      <AdminNav current="/admin/products" />
      <table>
        <caption>Every product, with its versions and components</caption>
        <thead>
          <tr>
            <th scope="col">Product</th>
            <th scope="col">Visibility</th>
            <th scope="col">Versions</th>
            <th scope="col">Components</th>
          </tr>
        </thead>
        <tbody>
          {props.products.map((p) => (
            <tr>
              <td>
                <a href={`/admin/products/${p.id}`} safe>
                  {p.name}
                </a>
              </td>
              <td>{p.is_released ? 'released' : 'internal-only'}</td>
              <td>{String(p.versions.length)}</td>
              <td>{String(p.components.length)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <section aria-labelledby="new-product">
        <h2 id="new-product">New product</h2>
        <ErrorSummary errors={errors} what="The product was not created" />
        <form method="post" action="/admin/products" class="card" id="new-product-form">
          <Csrf token={props.ctx.csrf} />
          <Field name="name" label="Name" value={values['name']} error={errors['name']} />
          <TextArea
            name="description"
            label="Description"
            value={values['description']}
            error={errors['description']}
            rows={3}
          />
          <Checkbox
            name="is_released"
            label="Released: external users may see it and file bugs against it"
            checked={values['is_released'] === '1'}
          />
          <button type="submit">Create product</button>
        </form>
      </section>
    </Layout>
  );
}

function ProductPage(props: {
  ctx: PageContext;
  product: Product;
  assignees: Map<number, string>;
  refused?: Refused | undefined;
  saved?: string | undefined;
}) {
  const { ctx, product: p, refused } = props;
  const main = formState(refused, 'product', {
    name: p.name,
    description: p.description,
    is_released: p.is_released ? '1' : '',
  });
  const newVersion = formState(refused, 'new-version', { is_released: '' });
  const newComponent = formState(refused, 'new-component', {});
  const all = refused?.errors ?? {};
  return (
    <Layout title={`${p.name} · Admin`} ctx={ctx}>
      <h1>
        Product <span safe>{p.name}</span>
      </h1>
      <AdminNav current="/admin/products" />
      <Saved what={props.saved} />
      <ErrorSummary errors={all} what="Your change was not saved" />
      <section aria-labelledby="product-h">
        <h2 id="product-h">Product</h2>
        <form method="post" action={`/admin/products/${p.id}`} class="card" id="product-form">
          <Csrf token={ctx.csrf} />
          <Field name="name" label="Name" value={main.values['name']} error={main.errors['name']} />
          <TextArea
            name="description"
            label="Description"
            value={main.values['description']}
            error={main.errors['description']}
            rows={3}
          />
          <Checkbox
            name="is_released"
            label="Released (unchecked: internal-only, seen by staff alone)"
            checked={main.values['is_released'] === '1'}
          />
          <button type="submit">Save product</button>
        </form>
      </section>
      <section aria-labelledby="versions-h">
        <h2 id="versions-h">Versions</h2>
        <ul class="rows">
          {p.versions.map((v) => {
            const s = formState(refused, `version-${v.id}`, {
              name: v.name,
              is_released: v.is_released ? '1' : '',
              sort_key: String(v.sort_key),
            });
            return (
              <li>
                <form method="post" action={`/admin/versions/${v.id}`} class="row">
                  <Csrf token={ctx.csrf} />
                  <Input
                    id={`v${v.id}-name`}
                    name="name"
                    label={`Name of version ${v.name}`}
                    hideLabel
                    value={s.values['name'] ?? ''}
                    error={s.errors['name']}
                    required
                  />
                  <Input
                    id={`v${v.id}-sort_key`}
                    name="sort_key"
                    type="number"
                    label="Order"
                    value={s.values['sort_key'] ?? '0'}
                    error={s.errors['sort_key']}
                  />
                  <Checkbox
                    id={`v${v.id}-released`}
                    name="is_released"
                    label="Released"
                    checked={s.values['is_released'] === '1'}
                  />
                  <button type="submit" aria-label={`Save version ${v.name}`}>
                    Save
                  </button>
                </form>
              </li>
            );
          })}
        </ul>
        <h3>New version</h3>
        <form method="post" action={`/admin/products/${p.id}/versions`} class="card" id="new-version-form">
          <Csrf token={ctx.csrf} />
          <Input
            id="nv-name"
            name="name"
            label="Name (e.g. 2.1.0)"
            value={newVersion.values['name'] ?? ''}
            error={newVersion.errors['name']}
            required
          />
          <Checkbox
            id="nv-released"
            name="is_released"
            label="Released: external users may file bugs against it"
            checked={newVersion.values['is_released'] === '1'}
          />
          <button type="submit">Add version</button>
        </form>
      </section>
      <section aria-labelledby="components-h">
        <h2 id="components-h">Components</h2>
        <ul class="rows">
          {p.components.map((c) => {
            const s = formState(refused, `component-${c.id}`, {
              name: c.name,
              description: c.description,
              default_assignee: c.default_assignee_id
                ? (props.assignees.get(c.default_assignee_id) ?? '')
                : '',
            });
            return (
              <li>
                <form method="post" action={`/admin/components/${c.id}`} class="row">
                  <Csrf token={ctx.csrf} />
                  <Input
                    id={`c${c.id}-name`}
                    name="name"
                    label={`Name of component ${c.name}`}
                    hideLabel
                    value={s.values['name'] ?? ''}
                    error={s.errors['name']}
                    required
                  />
                  <Input
                    id={`c${c.id}-description`}
                    name="description"
                    label="Description"
                    value={s.values['description'] ?? ''}
                    error={s.errors['description']}
                  />
                  <Input
                    id={`c${c.id}-default_assignee`}
                    name="default_assignee"
                    type="email"
                    label="Default assignee (e-mail)"
                    list="user-suggestions"
                    value={s.values['default_assignee'] ?? ''}
                    error={s.errors['default_assignee']}
                  />
                  <button type="submit" aria-label={`Save component ${c.name}`}>
                    Save
                  </button>
                </form>
              </li>
            );
          })}
        </ul>
        <h3>New component</h3>
        <form
          method="post"
          action={`/admin/products/${p.id}/components`}
          class="card"
          id="new-component-form"
        >
          <Csrf token={ctx.csrf} />
          <Input
            id="nc-name"
            name="name"
            label="Name"
            value={newComponent.values['name'] ?? ''}
            error={newComponent.errors['name']}
            required
          />
          <Input
            id="nc-description"
            name="description"
            label="Description"
            value={newComponent.values['description'] ?? ''}
            error={newComponent.errors['description']}
          />
          <Input
            id="nc-default_assignee"
            name="default_assignee"
            type="email"
            label="Default assignee (e-mail, optional)"
            list="user-suggestions"
            value={newComponent.values['default_assignee'] ?? ''}
            error={newComponent.errors['default_assignee']}
          />
          <button type="submit">Add component</button>
        </form>
        {/* Filled with matching people as an admin types a default assignee (src/web/client/user-suggest.ts). */}
        <datalist id="user-suggestions"></datalist>
      </section>
      <Script name="admin-products" />
    </Layout>
  );
}

const html = (reply: FastifyReply, status: number) =>
  reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'private, no-store');

/** The error of a refused form, by field (a service error without a field goes under `name`). */
function refusedBy(err: unknown, form: string, values: Form, fields: Record<string, string> = {}): Refused {
  if (!(err instanceof AppError) || err.status >= 500 || err.status === 404 || err.status === 403) throw err;
  const field = err.field ? (fields[err.field] ?? err.field) : 'name';
  return { form, values, errors: { [field]: err.message } };
}

/** `sort_key` as typed: a whole number within the range the API takes. */
function sortKey(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || Math.abs(n) > 1_000_000)
    throw invalid('Order must be a whole number between -1000000 and 1000000.', 'sort_key');
  return n;
}

/** The user id of a default assignee typed as an e-mail address; null when left empty. */
async function assigneeId(ctx: ProductsContext, email: string | undefined): Promise<number | null> {
  const e = (email ?? '').trim();
  if (!e) return null;
  const u = e.length <= 254 ? await findActiveUserByEmail(ctx.db, e) : undefined;
  if (!u) throw invalid(`No active user has the e-mail address ${e}.`, 'default_assignee');
  return u.id;
}

/** Registers /admin/products and the forms of the product pages (admins only). */
export async function adminProductPages(app: FastifyInstance, { ctx }: { ctx: ProductsContext }) {
  await formBodies(app);
  requireAdminHook(app);
  const { db } = ctx;

  const renderList = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    refused?: Refused,
  ) =>
    html(reply, status).send(
      <ProductsPage
        ctx={pageContext(request)}
        products={await listProducts(db, request.viewer)}
        refused={refused}
      />,
    );

  const renderProduct = async (
    request: FastifyRequest,
    reply: FastifyReply,
    id: number,
    status: number,
    opts: { refused?: Refused | undefined; saved?: string | undefined } = {},
  ) => {
    const viewer: Viewer = request.viewer;
    const product = await getProduct(db, viewer, id);
    const ids = [...new Set(product.components.map((c) => c.default_assignee_id).filter((x) => x !== null))];
    const users = await Promise.all(ids.map((u) => getUser(db, viewer, u)));
    const assignees = new Map(users.map((u) => [u.id, u.email]));
    return html(reply, status).send(
      <ProductPage
        ctx={pageContext(request)}
        product={product}
        assignees={assignees}
        refused={opts.refused}
        saved={opts.saved}
      />,
    );
  };

  app.get('/admin', async (_request, reply) => reply.redirect('/admin/products', 303));

  app.get('/admin/products', async (request, reply) => renderList(request, reply, 200));

  app.post<{ Body: Form }>('/admin/products', async (request, reply) => {
    const b = request.body ?? {};
    const values: Form = { name: b['name'], description: b['description'], is_released: b['is_released'] };
    try {
      const p = await createProduct(db, request.viewer, {
        name: b['name'] ?? '',
        description: b['description'] ?? '',
        isReleased: b['is_released'] === '1',
      });
      return reply.redirect(`/admin/products/${p.id}?saved=product`, 303);
    } catch (err) {
      const r = refusedBy(err, 'new-product', values);
      return renderList(request, reply, (err as AppError).status, r);
    }
  });

  const SAVED: Record<string, string> = {
    product: 'the product',
    version: 'the version',
    component: 'the component',
  };
  app.get<{ Params: { id: string }; Querystring: { saved?: string } }>(
    '/admin/products/:id',
    async (request, reply) =>
      renderProduct(request, reply, Number(request.params.id), 200, {
        saved: SAVED[request.query.saved ?? ''],
      }),
  );

  app.post<{ Params: { id: string }; Body: Form }>('/admin/products/:id', async (request, reply) => {
    const id = Number(request.params.id);
    const b = request.body ?? {};
    const values: Form = { name: b['name'], description: b['description'], is_released: b['is_released'] };
    try {
      await updateProduct(ctx, request.viewer, id, {
        name: b['name'] ?? '',
        description: b['description'] ?? '',
        isReleased: b['is_released'] === '1',
      });
      return reply.redirect(`/admin/products/${id}?saved=product`, 303);
    } catch (err) {
      const r = refusedBy(err, 'product', values);
      return renderProduct(request, reply, id, (err as AppError).status, { refused: r });
    }
  });

  app.post<{ Params: { id: string }; Body: Form }>('/admin/products/:id/versions', async (request, reply) => {
    const id = Number(request.params.id);
    const b = request.body ?? {};
    const values: Form = { name: b['name'], is_released: b['is_released'] };
    try {
      await createVersion(db, request.viewer, id, {
        name: b['name'] ?? '',
        isReleased: b['is_released'] === '1',
      });
      return reply.redirect(`/admin/products/${id}?saved=version`, 303);
    } catch (err) {
      const r = refusedBy(err, 'new-version', values);
      return renderProduct(request, reply, id, (err as AppError).status, { refused: r });
    }
  });

  app.post<{ Params: { id: string }; Body: Form }>('/admin/versions/:id', async (request, reply) => {
    const id = Number(request.params.id);
    const version = await getVersion(db, request.viewer, id);
    const b = request.body ?? {};
    const values: Form = { name: b['name'], is_released: b['is_released'], sort_key: b['sort_key'] };
    try {
      await updateVersion(ctx, request.viewer, id, {
        name: b['name'] ?? '',
        isReleased: b['is_released'] === '1',
        sortKey: sortKey(b['sort_key']),
      });
      return reply.redirect(`/admin/products/${version.product_id}?saved=version`, 303);
    } catch (err) {
      const r = refusedBy(err, `version-${id}`, values);
      return renderProduct(request, reply, version.product_id, (err as AppError).status, { refused: r });
    }
  });

  app.post<{ Params: { id: string }; Body: Form }>(
    '/admin/products/:id/components',
    async (request, reply) => {
      const id = Number(request.params.id);
      const b = request.body ?? {};
      const values: Form = {
        name: b['name'],
        description: b['description'],
        default_assignee: b['default_assignee'],
      };
      try {
        await createComponent(db, request.viewer, id, {
          name: b['name'] ?? '',
          description: b['description'] ?? '',
          defaultAssigneeId: await assigneeId(ctx, b['default_assignee']),
        });
        return reply.redirect(`/admin/products/${id}?saved=component`, 303);
      } catch (err) {
        const r = refusedBy(err, 'new-component', values, { default_assignee_id: 'default_assignee' });
        return renderProduct(request, reply, id, (err as AppError).status, { refused: r });
      }
    },
  );

  app.post<{ Params: { id: string }; Body: Form }>('/admin/components/:id', async (request, reply) => {
    const id = Number(request.params.id);
    const component = await getComponent(db, request.viewer, id);
    const b = request.body ?? {};
    const values: Form = {
      name: b['name'],
      description: b['description'],
      default_assignee: b['default_assignee'],
    };
    try {
      await updateComponent(ctx, request.viewer, id, {
        name: b['name'] ?? '',
        description: b['description'] ?? '',
        defaultAssigneeId: await assigneeId(ctx, b['default_assignee']),
      });
      return reply.redirect(`/admin/products/${component.product_id}?saved=component`, 303);
    } catch (err) {
      const r = refusedBy(err, `component-${id}`, values, { default_assignee_id: 'default_assignee' });
      return renderProduct(request, reply, component.product_id, (err as AppError).status, { refused: r });
    }
  });
}
