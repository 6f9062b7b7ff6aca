/**
 * The bug list: filters for product, version, component, status, reporter and assignee, newest or oldest
 * first, and paging — all held in the URL, so a link reproduces the list. Rows are chosen by the same
 * service as the API (the visibility predicate in SQL). Full search arrives with the search work.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type BugsContext, listBugs, workflow } from '../bugs/index.ts';
import { listProducts } from '../products/index.ts';
import { BugCells, Layout, pageContext, statusText } from './layout.tsx';

const PAGE = 50;
type Query = Record<string, string | string[] | undefined>;

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
const many = (v: string | string[] | undefined) =>
  v === undefined ? [] : [v].flat().flatMap((s) => s.split(','));
const ids = (v: string | string[] | undefined) =>
  many(v)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n < 2 ** 31);

/** The list's URL with some parameters changed (the others kept). */
function withParams(query: Query, changes: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query))
    for (const x of [v ?? []].flat()) if (x !== '') params.append(k, x);
  for (const [k, v] of Object.entries(changes)) {
    params.delete(k);
    if (v !== undefined) params.set(k, v);
  }
  const s = params.toString();
  return s ? `/bugs?${s}` : '/bugs';
}

/** Registers /bugs. */
export async function bugListPages(app: FastifyInstance, { ctx: bugs }: { ctx: BugsContext }) {
  app.get<{ Querystring: Query }>('/bugs', async (request: FastifyRequest<{ Querystring: Query }>, reply) => {
    const q = request.query;
    const viewer = request.viewer;
    const [products, w] = await Promise.all([listProducts(bugs.db, viewer), workflow(bugs.db)]);
    const known = new Set(w.statuses.map((s) => s.name));
    const statuses = many(q['status']).filter((s) => known.has(s));
    const order = one(q['order']) === 'asc' ? 'asc' : 'desc';
    const after = Number(one(q['after'])) || undefined;
    const rows = await listBugs(
      bugs,
      viewer,
      {
        productIds: ids(q['product']),
        versionIds: ids(q['version']),
        componentIds: ids(q['component']),
        statuses,
        reporterIds: ids(q['reporter']),
        assigneeIds: ids(q['assignee']),
      },
      { after: after && after < 2 ** 31 ? after : undefined, limit: PAGE + 1, order },
    );
    const page = rows.slice(0, PAGE);
    const next = rows.length > PAGE ? page.at(-1)?.id : undefined;
    const selectedProducts = new Set(ids(q['product']));
    const versions = products
      .filter((p) => selectedProducts.has(p.id))
      .flatMap((p) => p.versions.map((v) => ({ ...v, product: p.name })));
    const components = products
      .filter((p) => selectedProducts.has(p.id))
      .flatMap((p) => p.components.map((c) => ({ ...c, product: p.name })));
    const ctx = pageContext(request);
    const chosen = (name: string, value: string) => many(q[name]).includes(value);
    return reply.type('text/html; charset=utf-8').send(
      <Layout title="Bugs" ctx={ctx}>
        <h1>Bugs</h1>
        <form method="get" action="/bugs" class="filters" aria-label="Filter the list">
          <label for="f-product">Product</label>
          <select id="f-product" name="product" multiple="multiple" size="4">
            {products.map((p) => (
              <option value={String(p.id)} selected={chosen('product', String(p.id))} safe>
                {p.name}
              </option>
            ))}
          </select>
          {versions.length ? (
            <>
              <label for="f-version">Version</label>
              <select id="f-version" name="version" multiple="multiple" size="4">
                {versions.map((v) => (
                  <option value={String(v.id)} selected={chosen('version', String(v.id))} safe>
                    {`${v.product} ${v.name}`}
                  </option>
                ))}
              </select>
              <label for="f-component">Component</label>
              <select id="f-component" name="component" multiple="multiple" size="4">
                {components.map((c) => (
                  <option value={String(c.id)} selected={chosen('component', String(c.id))} safe>
                    {`${c.product}: ${c.name}`}
                  </option>
                ))}
              </select>
            </>
          ) : (
            ''
          )}
          <label for="f-status">Status</label>
          <select id="f-status" name="status" multiple="multiple" size="4">
            {w.statuses.map((s) => (
              <option value={s.name} selected={statuses.includes(s.name)}>
                {s.name}
              </option>
            ))}
          </select>
          <button type="submit">Show</button>
        </form>
        <p>
          <a href={withParams(q, { after: undefined })}>Link to this list</a>
        </p>
        <table>
          <caption class="muted">
            {page.length ? `${page.length} bugs on this page` : 'No bugs match.'}
          </caption>
          <thead>
            <tr>
              <th scope="col" aria-sort={order === 'asc' ? 'ascending' : 'descending'}>
                <a href={withParams(q, { order: order === 'asc' ? 'desc' : 'asc', after: undefined })}>
                  # {order === 'asc' ? '▲' : '▼'}
                </a>
              </th>
              <th scope="col">Summary</th>
              <th scope="col">Product</th>
              <th scope="col">Status</th>
              <th scope="col">Severity</th>
              <th scope="col">Assignee</th>
              <th scope="col">Changed</th>
            </tr>
          </thead>
          <tbody>
            {page.map((b) => (
              <tr>
                <BugCells id={b.id} summary={b.summary} />
                <td safe>{`${b.product} ${b.version}`}</td>
                <td safe>{statusText(b)}</td>
                <td safe>{b.severity}</td>
                <td safe>{b.assignee_name ?? ''}</td>
                <td safe>{b.changed_at.toISOString().slice(0, 10)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {next ? (
          <p>
            <a href={withParams(q, { after: String(next) })} rel="next">
              Next page
            </a>
          </p>
        ) : (
          ''
        )}
      </Layout>,
    );
  });
}
