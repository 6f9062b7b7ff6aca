/**
 * Filing a bug in the browser. The product is chosen first; the form then offers only that product's
 * versions (releases the viewer may file against) and components. It works without JavaScript (choosing
 * a product reloads the form with `?product=`); errors stand beside their field and the typed text stays.
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signedIn } from '../access/index.ts';
import { type BugsContext, fileBug } from '../bugs/index.ts';
import { AppError } from '../platform/errors.ts';
import { listProducts } from '../products/index.ts';
import { Field, Layout, type PageContext, pageContext } from './layout.tsx';

type Form = Record<string, string | undefined>;
type Product = Awaited<ReturnType<typeof listProducts>>[number];

const SEVERITIES = ['blocker', 'critical', 'major', 'normal', 'minor', 'trivial', 'enhancement'];

function Select(props: {
  name: string;
  label: string;
  options: { value: string; label: string }[];
  value?: string | undefined;
  error?: string | undefined;
}) {
  const id = `f-${props.name}`;
  return (
    <>
      <label for={id} safe>
        {props.label}
      </label>
      <select
        id={id}
        name={props.name}
        aria-invalid={props.error ? 'true' : undefined}
        aria-describedby={props.error ? `${id}-error` : undefined}
      >
        {props.options.map((o) => (
          <option value={o.value} selected={o.value === props.value} safe>
            {o.label}
          </option>
        ))}
      </select>
      {props.error ? (
        <p id={`${id}-error`} class="field-error" safe>
          {props.error}
        </p>
      ) : (
        ''
      )}
    </>
  );
}

function FileBugPage(props: {
  ctx: PageContext;
  products: Product[];
  product?: Product;
  values: Form;
  errors: Form;
}) {
  const { ctx, products, product, values, errors } = props;
  return (
    <Layout title="File a bug" ctx={ctx}>
      <h1>File a bug</h1>
      <form method="get" action="/bugs/new" class="card">
        <Select
          name="product"
          label="Product"
          value={product ? String(product.id) : undefined}
          options={[
            { value: '', label: 'Choose a product…' },
            ...products.map((p) => ({ value: String(p.id), label: p.name })),
          ]}
          error={errors['product_id']}
        />
        <button type="submit">{product ? 'Change product' : 'Next'}</button>
      </form>
      {product ? (
        <form method="post" action="/bugs/new" class="card">
          <input type="hidden" name="_csrf" value={ctx.csrf} />
          <input type="hidden" name="product_id" value={String(product.id)} />
          <Select
            name="version_id"
            label="Version you run"
            value={values['version_id']}
            options={product.versions.map((v) => ({ value: String(v.id), label: v.name }))}
            error={errors['version_id']}
          />
          <Select
            name="component_id"
            label="Component"
            value={values['component_id']}
            options={product.components.map((c) => ({ value: String(c.id), label: c.name }))}
            error={errors['component_id']}
          />
          <Select
            name="severity"
            label="Severity"
            value={values['severity'] ?? 'normal'}
            options={SEVERITIES.map((s) => ({ value: s, label: s }))}
            error={errors['severity']}
          />
          <Field name="summary" label="Summary" value={values['summary']} error={errors['summary']} />
          <label for="f-description">
            Description (steps to reproduce, what you expected, what happened)
          </label>
          <textarea id="f-description" name="description" rows="8" safe>
            {values['description'] ?? ''}
          </textarea>
          <label>
            <input type="checkbox" name="confidential" value="1" checked={values['confidential'] === '1'} />{' '}
            Confidential: only staff and the people on the CC list may see it
          </label>
          <button type="submit">File bug</button>
        </form>
      ) : (
        ''
      )}
    </Layout>
  );
}

/** Registers /bugs/new. */
export async function fileBugPages(app: FastifyInstance, { ctx: bugs }: { ctx: BugsContext }) {
  await app.register(formbody, { bodyLimit: 256 * 1024 });

  const render = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    productId: number | undefined,
    values: Form,
    errors: Form,
  ) => {
    const products = (await listProducts(bugs.db, request.viewer)).filter(
      (p) => p.versions.length && p.components.length,
    );
    const product = products.find((p) => p.id === productId);
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(
        <FileBugPage
          ctx={pageContext(request)}
          products={products}
          {...(product ? { product } : {})}
          values={values}
          errors={
            productId && !product ? { ...errors, product_id: 'Choose a product from the list.' } : errors
          }
        />,
      );
  };

  app.get<{ Querystring: { product?: string } }>('/bugs/new', async (request, reply) => {
    const productId = Number(request.query.product) || undefined;
    return render(request, reply, 200, productId, {}, {});
  });

  app.post<{ Body: Form }>('/bugs/new', async (request, reply) => {
    const body = request.body ?? {};
    const num = (k: string) => Number(body[k]) || 0;
    const values: Form = { ...body, _csrf: undefined };
    if ((body['summary'] ?? '').length > 255) {
      return render(request, reply, 400, num('product_id') || undefined, values, {
        summary: 'A summary has at most 255 characters; put the rest in the description.',
      });
    }
    try {
      const bug = await fileBug(bugs, signedIn(request.viewer), {
        productId: num('product_id'),
        versionId: num('version_id'),
        componentId: num('component_id'),
        summary: body['summary'] ?? '',
        description: body['description'] ?? '',
        severity: SEVERITIES.includes(body['severity'] ?? '') ? body['severity'] : 'normal',
        confidential: body['confidential'] === '1',
      });
      return reply.redirect(`/bugs/${bug.id}`, 303);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      const field = err.field ?? 'summary';
      return render(request, reply, err.status, num('product_id') || undefined, values, {
        [field]: err.message,
      });
    }
  });
}
