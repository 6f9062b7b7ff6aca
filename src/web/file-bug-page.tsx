/**
 * Filing a bug in the browser. One form: the product first, then only that product's versions (the
 * releases this viewer may file against) and components. With JavaScript (client/file-bug.entry.ts) the
 * choices follow the product at once; without it, the "Show its versions" button re-renders the form
 * for the chosen product, keeping what was typed. Errors stand beside their field and the text stays.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isStaff, signedIn } from '../access/index.ts';
import { type BugsContext, fileBug } from '../bugs/index.ts';
import { AppError } from '../platform/errors.ts';
import { listProducts } from '../products/index.ts';
import { Script } from './assets.ts';
import { Checkbox, Csrf, ErrorSummary, type Form, Select, TextArea } from './form-fields.tsx';
import { formBodies } from './forms.ts';
import { Field, Layout, type PageContext, pageContext } from './layout.tsx';

type Product = Awaited<ReturnType<typeof listProducts>>[number];

/** Severities, most severe first (the values the bugs table accepts). */
export const SEVERITIES = ['blocker', 'critical', 'major', 'normal', 'minor', 'trivial', 'enhancement'];
/** Priorities, most urgent first. */
export const PRIORITIES = ['P1', 'P2', 'P3', 'P4', 'P5'];

const options = (xs: string[]) => xs.map((x) => ({ value: x, label: x }));

function FileBugPage(props: {
  ctx: PageContext;
  products: Product[];
  product?: Product | undefined;
  values: Form;
  errors: Form;
}) {
  const { ctx, products, product, values, errors } = props;
  const staff = isStaff(ctx.viewer);
  const none = [{ value: '', label: 'Choose a product first' }];
  return (
    <Layout title="File a bug" ctx={ctx}>
      <h1>File a bug</h1>
      <ErrorSummary errors={errors} what="The bug was not filed" />
      <form method="post" action="/bugs/new" id="file-bug-form" class="card wide">
        <Csrf token={ctx.csrf} />
        <Select
          name="product_id"
          label="Product"
          value={product ? String(product.id) : undefined}
          options={[
            { value: '', label: 'Choose a product…' },
            ...products.map((p) => ({ value: String(p.id), label: p.name })),
          ]}
          error={errors['product_id']}
        />
        <button type="submit" name="step" value="product" class="secondary" formnovalidate data-nojs>
          Show its versions and components
        </button>
        <p class="muted" aria-live="polite" data-product-status></p>
        <Select
          name="version_id"
          label="Version you run"
          value={values['version_id']}
          options={product ? product.versions.map((v) => ({ value: String(v.id), label: v.name })) : none}
          error={errors['version_id']}
        />
        <Select
          name="component_id"
          label="Component"
          value={values['component_id']}
          options={product ? product.components.map((c) => ({ value: String(c.id), label: c.name })) : none}
          error={errors['component_id']}
        />
        <Select
          name="severity"
          label="Severity"
          value={values['severity'] ?? 'normal'}
          options={options(SEVERITIES)}
          error={errors['severity']}
        />
        {staff ? (
          <Select
            name="priority"
            label="Priority"
            value={values['priority'] ?? 'P3'}
            options={options(PRIORITIES)}
            error={errors['priority']}
          />
        ) : (
          ''
        )}
        <Field name="summary" label="Summary" value={values['summary']} error={errors['summary']} />
        {/* Similar bugs of the chosen product appear here as the summary is typed (client/similar.entry.ts). */}
        <div id="similar-bugs" class="muted" aria-live="polite"></div>
        <Script name="similar" />
        <TextArea
          name="description"
          label="Description (steps to reproduce, what you expected, what happened)"
          value={values['description']}
          error={errors['description']}
          rows={8}
        />
        <label for="attachment">Attachment (optional: a log, a screenshot, a diagnostic bundle)</label>
        <input type="file" id="attachment" name="attachment" />
        <noscript>
          <p class="muted">
            Without JavaScript the file is not sent with the form: add attachments on the bug's page once it
            is filed.
          </p>
        </noscript>
        <Checkbox
          name="confidential"
          label="Confidential: only staff and the people on the CC list may see it"
          checked={values['confidential'] === '1'}
        />
        <button type="submit">File bug</button>
      </form>
      <Script name="file-bug" />
      <Script name="upload" />
    </Layout>
  );
}

/** Registers /bugs/new. */
export async function fileBugPages(app: FastifyInstance, { ctx: bugs }: { ctx: BugsContext }) {
  await formBodies(app, 256 * 1024);

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
    // With a single product there is nothing to choose.
    const product = productId
      ? products.find((p) => p.id === productId)
      : products.length === 1
        ? products[0]
        : undefined;
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'private, no-store')
      .send(
        <FileBugPage
          ctx={pageContext(request)}
          products={products}
          product={product}
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
    const num = (k: string) => (/^\d{1,10}$/.test(body[k] ?? '') ? Number(body[k]) : 0);
    const values: Form = { ...body, _csrf: undefined, attachment: undefined };
    const productId = num('product_id') || undefined;
    // Without JavaScript: the product was chosen, show its versions and components; nothing is filed.
    if (body['step'] === 'product') return render(request, reply, 200, productId, values, {});
    const errors: Form = {};
    if ((body['summary'] ?? '').length > 255)
      errors['summary'] = 'A summary has at most 255 characters; put the rest in the description.';
    if ((body['description'] ?? '').length > 65535)
      errors['description'] = 'A description has at most 65,535 characters; attach longer text as a file.';
    if (body['severity'] !== undefined && !SEVERITIES.includes(body['severity']))
      errors['severity'] = 'Choose a severity from the list.';
    const staff = isStaff(request.viewer);
    if (staff && body['priority'] !== undefined && !PRIORITIES.includes(body['priority']))
      errors['priority'] = 'Choose a priority from the list.';
    if (Object.keys(errors).length) return render(request, reply, 400, productId, values, errors);
    try {
      const bug = await fileBug(bugs, signedIn(request.viewer), {
        productId: productId ?? 0,
        versionId: num('version_id'),
        componentId: num('component_id'),
        summary: body['summary'] ?? '',
        description: body['description'] ?? '',
        severity: body['severity'] ?? 'normal',
        // Only staff set the priority; everyone else's bugs start at the default.
        priority: staff ? body['priority'] : undefined,
        confidential: body['confidential'] === '1',
      });
      return reply.redirect(`/bugs/${bug.id}`, 303);
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      const field = err.field ?? 'summary';
      return render(request, reply, err.status, productId, values, { [field]: err.message });
    }
  });
}
