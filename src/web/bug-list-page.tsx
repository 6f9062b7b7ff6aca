/**
 * The bug list and search page: the search box (the query language, see /search/help), the filters for
 * product, version, component and status, results sortable by any column (and by relevance), an exact
 * total, counts per status and per product, keyset paging, a CSV link and the saved searches — all held
 * in the URL, so a link reproduces the list. Rows, counts and facets come from the search service, which
 * filters through the visibility predicate in its SQL.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signedIn, type UserViewer, type Viewer } from '../access/index.ts';
import { type BugsContext, workflow } from '../bugs/index.ts';
import { AppError } from '../platform/errors.ts';
import type { Db } from '../platform/db.ts';
import { listProducts } from '../products/index.ts';
import {
  deleteSavedSearch,
  exportCsv,
  listSavedSearches,
  quoteValue,
  SORT_COLUMNS,
  type Sort,
  type SortColumn,
  saveSearch,
  type SearchResult,
  search,
  defaultDir,
} from '../search/index.ts';
import { formBodies } from './forms.ts';
import { Layout, pageContext, statusText } from './layout.tsx';
import { searchHelpPage } from './search-help-page.tsx';

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
function withParams(query: Query, changes: Record<string, string | undefined>, path = '/bugs'): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query))
    for (const x of [v ?? []].flat()) if (x !== '') params.append(k, x);
  for (const [k, v] of Object.entries(changes)) {
    params.delete(k);
    if (v !== undefined) params.set(k, v);
  }
  const s = params.toString();
  return s ? `${path}?${s}` : path;
}

/** What the page's URL asks for. */
interface ListRequest {
  q: string;
  productIds: number[];
  versionIds: number[];
  componentIds: number[];
  statuses: string[];
  sort: Sort | undefined;
  cursor: string | undefined;
}

async function readRequest(db: Db, q: Query): Promise<ListRequest> {
  const w = await workflow(db);
  const known = new Set(w.statuses.map((s) => s.name));
  const sortParam = one(q['sort']);
  const dirParam = one(q['dir']);
  const dir = dirParam === 'asc' || dirParam === 'desc' ? dirParam : undefined;
  let sort: Sort | undefined;
  if (sortParam && (SORT_COLUMNS as readonly string[]).includes(sortParam)) {
    const column = sortParam as SortColumn;
    sort = { column, dir: dir ?? defaultDir(column) };
  } else if (one(q['order']) === 'asc' || one(q['order']) === 'desc') {
    // The list's older parameter: newest or oldest first.
    sort = { column: 'id', dir: one(q['order']) as 'asc' | 'desc' };
  }
  return {
    q: (one(q['q']) ?? '').slice(0, 2000),
    productIds: ids(q['product']),
    versionIds: ids(q['version']),
    componentIds: ids(q['component']),
    statuses: many(q['status']).filter((s) => known.has(s)),
    sort,
    cursor: one(q['after']) || undefined,
  };
}

/** The page's filters written in the query language, for saving the search. */
async function asQueryText(db: Db, viewer: Viewer, r: ListRequest): Promise<string> {
  const products = await listProducts(db, viewer);
  const parts = [r.q.trim()];
  const name = (list: { id: number; name: string; product?: string }[], id: number) => {
    const x = list.find((y) => y.id === id);
    return x ? quoteValue(x.product ? `${x.product}/${x.name}` : x.name) : undefined;
  };
  const field = (f: string, values: (string | undefined)[]) => {
    const vs = values.filter((v): v is string => v !== undefined);
    if (vs.length) parts.push(`${f}:${vs.join(',')}`);
  };
  field(
    'product',
    r.productIds.map((id) => name(products, id)),
  );
  const versions = products.flatMap((p) => p.versions.map((v) => ({ ...v, product: p.name })));
  const components = products.flatMap((p) => p.components.map((c) => ({ ...c, product: p.name })));
  field(
    'version',
    r.versionIds.map((id) => name(versions, id)),
  );
  field(
    'component',
    r.componentIds.map((id) => name(components, id)),
  );
  field('status', r.statuses);
  if (r.sort) parts.push(`sort:${r.sort.column}:${r.sort.dir}`);
  return parts.filter(Boolean).join(' ');
}

const COLUMNS: { column: SortColumn; label: string }[] = [
  { column: 'id', label: '#' },
  { column: 'summary', label: 'Summary' },
  { column: 'product', label: 'Product' },
  { column: 'status', label: 'Status' },
  { column: 'severity', label: 'Severity' },
  { column: 'priority', label: 'Priority' },
  { column: 'assignee', label: 'Assignee' },
  { column: 'changed', label: 'Changed' },
];

/** The query with the mistake's characters marked, so the eye finds it. */
function QueryMistake(props: { q: string; position: number; length: number }) {
  const { q, position, length } = props;
  return (
    <p class="muted">
      <code>
        <span safe>{q.slice(0, position)}</span>
        <mark safe>{q.slice(position, position + length) || ' '}</mark>
        <span safe>{q.slice(position + length)}</span>
      </code>
    </p>
  );
}

/** The viewer's saved searches and the shared ones, as links that run them (used on the dashboard too). */
export async function SavedSearchList(props: {
  db: Db;
  viewer: UserViewer;
  csrf?: string;
  manage?: boolean;
}) {
  const saved = await listSavedSearches(props.db, props.viewer);
  if (!saved.length) return <p class="muted">No saved searches yet: search, then save it by name.</p>;
  return (
    <ul class="rows">
      {saved.map((s) => (
        <li>
          <a href={`/bugs?q=${encodeURIComponent(s.query)}`} safe>
            {s.name}
          </a>{' '}
          <span class="muted" safe>
            {s.mine ? (s.shared ? '(shared by you)' : '(private)') : `(shared by ${s.owner_name})`}
          </span>
          {props.manage && s.mine ? (
            <form method="post" action={`/bugs/saved-searches/${s.id}/delete`} class="inline">
              <input type="hidden" name="_csrf" value={props.csrf ?? ''} />
              <button type="submit" class="link" aria-label={`Delete saved search ${s.name}`}>
                Delete
              </button>
            </form>
          ) : (
            ''
          )}
        </li>
      ))}
    </ul>
  );
}

/** Registers /bugs, /bugs.csv, the saved-search forms and /search/help. */
export async function bugListPages(app: FastifyInstance, { ctx: bugs }: { ctx: BugsContext }) {
  await formBodies(app);
  await app.register(searchHelpPage);
  const db = bugs.db;

  const render = async (
    request: FastifyRequest,
    reply: FastifyReply,
    q: Query,
    messages: { saveError?: string | undefined; saveName?: string | undefined; status?: number } = {},
  ) => {
    const viewer = request.viewer;
    const r = await readRequest(db, q);
    const [products, w] = await Promise.all([listProducts(db, viewer), workflow(db)]);
    let result: SearchResult | undefined;
    let mistake: { message: string; position?: number; length?: number; field?: string } | undefined;
    try {
      result = await search(
        db,
        viewer,
        {
          q: r.q,
          ids: {
            productIds: r.productIds,
            versionIds: r.versionIds,
            componentIds: r.componentIds,
            statuses: r.statuses,
          },
          sort: r.sort,
          cursor: r.cursor,
          limit: PAGE,
          facets: true,
        },
        bugs.cache,
      );
    } catch (err) {
      if (!(err instanceof AppError) || err.status !== 400) throw err;
      mistake = {
        message: err.message,
        position: err.details?.['position'] as number | undefined,
        length: err.details?.['length'] as number | undefined,
        field: err.field,
      };
    }
    if (result?.jumpTo !== undefined && !r.cursor) return reply.redirect(`/bugs/${result.jumpTo}`, 303);

    const rows = result?.rows ?? [];
    const next = result?.nextCursor ?? undefined;
    const sort = result?.sort ?? r.sort ?? { column: 'id', dir: 'desc' };
    const selectedProducts = new Set(r.productIds);
    const versions = products
      .filter((p) => selectedProducts.has(p.id))
      .flatMap((p) => p.versions.map((v) => ({ ...v, product: p.name })));
    const components = products
      .filter((p) => selectedProducts.has(p.id))
      .flatMap((p) => p.components.map((c) => ({ ...c, product: p.name })));
    const ctx = pageContext(request);
    const chosen = (name: string, value: string) => many(q[name]).includes(value);
    const hasText = (result?.rows.some((x) => x.rank !== null) ?? false) || sort.column === 'relevance';
    const sortLink = (column: SortColumn) => {
      const dir = sort.column === column ? (sort.dir === 'asc' ? 'desc' : 'asc') : defaultDir(column);
      return withParams(q, { sort: column, dir, after: undefined, order: undefined });
    };
    const ariaSort = (column: SortColumn) =>
      sort.column === column ? (sort.dir === 'asc' ? 'ascending' : 'descending') : undefined;
    const arrow = (column: SortColumn) => (sort.column === column ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : '');
    const total = result?.total ?? 0;
    const savedQuery = result ? await asQueryText(db, viewer, r) : r.q;
    const status = mistake ? 400 : (messages.status ?? 200);

    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(
        <Layout title={r.q ? `${r.q} · Bugs` : 'Bugs'} ctx={ctx}>
          <h1>Bugs</h1>
          <form method="get" action="/bugs" class="filters" aria-label="Search and filter bugs">
            <label for="f-q">Search</label>
            <input
              id="f-q"
              name="q"
              type="search"
              value={r.q}
              placeholder='crash status:NEW,ASSIGNED product:Omega "exact phrase" created>-30d'
              aria-invalid={mistake?.field === 'q' ? 'true' : undefined}
              aria-describedby={mistake ? 'f-q-error f-q-help' : 'f-q-help'}
            />
            <p id="f-q-help" class="muted">
              Words, "phrases", prefix*, field:value and more: <a href="/search/help">the query language</a>.
              A bug number opens that bug.
            </p>
            {mistake ? (
              <>
                <p id="f-q-error" class="field-error" role="alert" safe>
                  {mistake.message}
                </p>
                {mistake.position !== undefined && mistake.field === 'q' ? (
                  <QueryMistake q={r.q} position={mistake.position} length={mistake.length ?? 1} />
                ) : (
                  ''
                )}
              </>
            ) : (
              ''
            )}
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
                <option value={s.name} selected={r.statuses.includes(s.name)}>
                  {s.name}
                </option>
              ))}
            </select>
            {r.sort ? (
              <>
                <input type="hidden" name="sort" value={r.sort.column} />
                <input type="hidden" name="dir" value={r.sort.dir} />
              </>
            ) : (
              ''
            )}
            <button type="submit">Search</button>
          </form>
          <p>
            <strong>{`${total} ${total === 1 ? 'bug matches' : 'bugs match'}`}</strong> ·{' '}
            <a href={withParams(q, { after: undefined })}>Link to this list</a> ·{' '}
            <a href={withParams(q, { after: undefined }, '/bugs.csv')} download="bugs.csv">
              Download CSV
            </a>
            {hasText && sort.column !== 'relevance' ? (
              <>
                {' · '}
                <a
                  href={withParams(q, { sort: 'relevance', dir: 'desc', after: undefined, order: undefined })}
                >
                  Sort by relevance
                </a>
              </>
            ) : (
              ''
            )}
          </p>
          {result?.facets ? (
            <nav aria-label="Counts" class="subnav">
              <span class="muted">By status:</span>
              {result.facets.status.map((f) => (
                <a href={withParams(q, { status: f.name, after: undefined })} safe>
                  {`${f.name} (${f.count})`}
                </a>
              ))}
              <span class="muted">By product:</span>
              {result.facets.product.map((f) => (
                <a href={withParams(q, { product: String(f.id), after: undefined })} safe>
                  {`${f.name} (${f.count})`}
                </a>
              ))}
            </nav>
          ) : (
            ''
          )}
          <table>
            <caption class="muted">
              {rows.length ? `${rows.length} bugs on this page` : 'No bugs match.'}
            </caption>
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th scope="col" aria-sort={ariaSort(c.column)}>
                    <a href={sortLink(c.column)}>{`${c.label}${arrow(c.column)}`}</a>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((b) => (
                <tr>
                  <td>
                    <a href={`/bugs/${b.id}`}>{String(b.id)}</a>
                  </td>
                  <td>
                    <a href={`/bugs/${b.id}`} safe>
                      {b.summary}
                    </a>
                    {b.snippet ? (
                      <>
                        <br />
                        {/* Escaped by the search service; only its <mark> elements are markup. */}
                        <small class="muted">{b.snippet}</small>
                      </>
                    ) : (
                      ''
                    )}
                  </td>
                  <td safe>{`${b.product} ${b.version}`}</td>
                  <td safe>{statusText(b)}</td>
                  <td safe>{b.severity}</td>
                  <td safe>{b.priority}</td>
                  <td safe>{b.assignee_name ?? ''}</td>
                  <td class="nowrap" safe>
                    {b.changed_at.toISOString().slice(0, 10)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {next ? (
            <p>
              <a href={withParams(q, { after: next })} rel="next">
                Next page
              </a>
            </p>
          ) : (
            ''
          )}
          {viewer.kind === 'user' ? (
            <section aria-labelledby="saved-h">
              <h2 id="saved-h">Saved searches</h2>
              {await SavedSearchList({ db, viewer, csrf: ctx.csrf, manage: true })}
              {result ? (
                <form method="post" action="/bugs/saved-searches" class="row" aria-label="Save this search">
                  <input type="hidden" name="_csrf" value={ctx.csrf} />
                  <input type="hidden" name="query" value={savedQuery} />
                  <label for="f-save-name">Save this search as</label>
                  <input
                    id="f-save-name"
                    name="name"
                    type="text"
                    maxlength="100"
                    required
                    value={messages.saveName ?? ''}
                    aria-invalid={messages.saveError ? 'true' : undefined}
                    aria-describedby={messages.saveError ? 'f-save-name-error' : undefined}
                  />
                  <label class="check">
                    <input type="checkbox" name="shared" value="1" /> shared with everyone
                  </label>
                  <button type="submit" disabled={savedQuery ? undefined : true}>
                    Save
                  </button>
                  {messages.saveError ? (
                    <p id="f-save-name-error" class="field-error" safe>
                      {messages.saveError}
                    </p>
                  ) : (
                    ''
                  )}
                </form>
              ) : (
                ''
              )}
            </section>
          ) : (
            ''
          )}
        </Layout>,
      );
  };

  app.get<{ Querystring: Query }>('/bugs', (request, reply) => render(request, reply, request.query));

  app.get<{ Querystring: Query }>('/bugs.csv', async (request, reply) => {
    const r = await readRequest(db, request.query);
    let lines: AsyncGenerator<string>;
    try {
      lines = await exportCsv(db, request.viewer, {
        q: r.q,
        ids: {
          productIds: r.productIds,
          versionIds: r.versionIds,
          componentIds: r.componentIds,
          statuses: r.statuses,
        },
        sort: r.sort,
      });
    } catch (err) {
      // A query the list page would refuse: show the page with the mistake marked.
      if (err instanceof AppError && err.status === 400) return render(request, reply, request.query);
      throw err;
    }
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', 'attachment; filename="bugs.csv"')
      .header('cache-control', 'private, no-store')
      .send(Readable.from(lines));
  });

  app.post<{ Body: Record<string, string | undefined> }>('/bugs/saved-searches', async (request, reply) => {
    const body = request.body ?? {};
    const viewer = signedIn(request.viewer);
    const query = body['query'] ?? '';
    try {
      await saveSearch(db, viewer, { name: body['name'] ?? '', query, shared: body['shared'] === '1' });
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      return render(
        request,
        reply,
        { q: query },
        {
          saveError: err.message,
          saveName: body['name'],
          status: err.status,
        },
      );
    }
    return reply.redirect(`/bugs?q=${encodeURIComponent(query)}`, 303);
  });

  app.post<{ Params: { id: string } }>('/bugs/saved-searches/:id/delete', async (request, reply) => {
    const id = Number(request.params.id);
    await deleteSavedSearch(db, signedIn(request.viewer), id);
    return reply.redirect('/bugs', 303);
  });
}
