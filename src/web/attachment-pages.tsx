/**
 * Attachment pages: the support view (every attachment and bundle the viewer may see, across bugs,
 * with filters and sorting), one attachment with the member list of a bundle, and one member's text
 * read out of the archive. Everything goes through the attachments module, hence the visibility rule.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  type AttachmentRow,
  type AttachmentsContext,
  decodeCursor,
  encodeCursor,
  getAttachment,
  getMember,
  listAttachments,
  listFilter,
  listMembers,
  MEMBER_TEXT_CAP,
  memberText,
} from '../attachments/index.ts';
import { invalid } from '../platform/errors.ts';
import { listProducts } from '../products/index.ts';
import { Alert, Layout, type PageContext, pageContext } from './layout.tsx';

const KIND_NAMES: Record<string, string> = {
  bundle: 'Diagnostic bundle',
  gzip: 'Gzip file',
  text: 'Text / log',
  image: 'Image',
  pdf: 'PDF',
  zip: 'Zip archive',
  binary: 'Binary',
};

/** Sizes for people. */
export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

const day = (d: Date) => d.toISOString().slice(0, 16).replace('T', ' ');

type Query = Record<string, string | undefined>;

const MiB = 1024 * 1024;

/** Reads the support view's query string into filters; bad values are form errors. */
function readFilters(q: Query) {
  const int = (name: string) => {
    const v = q[name]?.trim();
    if (!v) return undefined;
    if (!/^\d{1,10}$/.test(v)) throw invalid(`${name.replace('_', ' ')} must be a whole number`, name);
    return Number(v);
  };
  const date = (name: string) => {
    const v = q[name]?.trim();
    if (!v) return undefined;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(v) || Number.isNaN(Date.parse(v)))
      throw invalid(`${name} must be a date (YYYY-MM-DD)`, name);
    return `${v}T00:00:00Z`;
  };
  const mb = (name: string) => {
    const v = q[name]?.trim();
    if (!v) return undefined;
    if (!/^\d{1,7}(\.\d+)?$/.test(v)) throw invalid(`${name.replace('_', ' ')} must be a number of MB`, name);
    return Math.round(Number(v) * MiB);
  };
  const kind = q['kind'] || undefined;
  const until = date('until');
  const filter = listFilter({
    product_id: int('product_id'),
    bug_id: int('bug_id'),
    uploader_id: int('uploader_id'),
    kind: kind ? [kind] : undefined,
    since: date('since'),
    // "until" is inclusive of that day.
    until: until ? new Date(Date.parse(until) + 86_400_000).toISOString() : undefined,
    min_size: mb('min_mb'),
    max_size: mb('max_mb'),
  } as Parameters<typeof listFilter>[0]);
  const sort = q['sort'] === 'largest' ? ('largest' as const) : ('newest' as const);
  return { filter, sort, after: decodeCursor(q['cursor'] || undefined) };
}

function AttachmentTable(props: { rows: AttachmentRow[] }) {
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">File</th>
          <th scope="col">Bug</th>
          <th scope="col">Kind</th>
          <th scope="col">Size</th>
          <th scope="col">Uploaded by</th>
          <th scope="col">When</th>
          <th scope="col">Download</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((a) => (
          <tr>
            <td>
              <a href={`/attachments/${a.id}`} safe>
                {a.file_name}
              </a>
            </td>
            <td>
              <a href={`/bugs/${a.bug_id}`}>{`#${a.bug_id}`}</a>
            </td>
            <td safe>{KIND_NAMES[a.kind] ?? a.kind}</td>
            <td>{formatSize(a.size)}</td>
            <td safe>{a.uploader_name}</td>
            <td>{day(a.created_at)}</td>
            <td>
              <a href={`/api/v1/attachments/${a.id}/content`} download="">
                Download
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function SupportPage(props: {
  ctx: PageContext;
  q: Query;
  rows: AttachmentRow[];
  next: string | undefined;
  products: { id: number; name: string }[];
  error?: string | undefined;
}) {
  const { q } = props;
  const nextQuery = new URLSearchParams(
    Object.entries({ ...q, cursor: props.next ?? '' }).filter((e): e is [string, string] => !!e[1]),
  ).toString();
  const text = (name: string, label: string, type = 'text') => (
    <p>
      <label for={`f-${name}`}>{label}</label>
      <input id={`f-${name}`} name={name} type={type} value={q[name] ?? ''} />
    </p>
  );
  return (
    <Layout title="Attachments" ctx={props.ctx}>
      <h1>Attachments</h1>
      <Alert message={props.error} />
      <form method="get" action="/attachments" class="card wide filters">
        <p>
          <label for="f-product_id">Product</label>
          <select id="f-product_id" name="product_id">
            <option value="">Any</option>
            {props.products.map((p) => (
              <option value={String(p.id)} selected={q['product_id'] === String(p.id)} safe>
                {p.name}
              </option>
            ))}
          </select>
        </p>
        {text('bug_id', 'Bug number', 'number')}
        {text('uploader_id', 'Uploader (user id)', 'number')}
        <p>
          <label for="f-kind">Kind</label>
          <select id="f-kind" name="kind">
            <option value="">Any</option>
            {Object.entries(KIND_NAMES).map(([k, name]) => (
              <option value={k} selected={q['kind'] === k} safe>
                {name}
              </option>
            ))}
          </select>
        </p>
        {text('since', 'Uploaded from', 'date')}
        {text('until', 'Uploaded until', 'date')}
        {text('min_mb', 'At least (MB)')}
        {text('max_mb', 'At most (MB)')}
        <p>
          <label for="f-sort">Sort</label>
          <select id="f-sort" name="sort">
            <option value="newest" selected={q['sort'] !== 'largest'}>
              Newest first
            </option>
            <option value="largest" selected={q['sort'] === 'largest'}>
              Largest first
            </option>
          </select>
        </p>
        <button type="submit">Show</button>
      </form>
      {props.rows.length ? <AttachmentTable rows={props.rows} /> : <p>No attachments match.</p>}
      {props.next ? (
        <p>
          <a href={`/attachments?${nextQuery}`}>More</a>
        </p>
      ) : (
        ''
      )}
    </Layout>
  );
}

function AttachmentPage(props: {
  ctx: PageContext;
  a: AttachmentRow;
  members: Awaited<ReturnType<typeof listMembers>>['members'];
  nextAfter: number | undefined;
}) {
  const { a } = props;
  return (
    <Layout title={a.file_name} ctx={props.ctx}>
      <h1 safe>{a.file_name}</h1>
      <dl class="fields">
        <dt>Bug</dt>
        <dd>
          <a href={`/bugs/${a.bug_id}`}>{`#${a.bug_id}`}</a>
        </dd>
        <dt>Kind</dt>
        <dd safe>{KIND_NAMES[a.kind] ?? a.kind}</dd>
        <dt>Size</dt>
        <dd>{`${formatSize(a.size)} (${a.size} bytes)`}</dd>
        <dt>SHA-256</dt>
        <dd>
          <code>{a.sha256}</code>
        </dd>
        <dt>Uploaded</dt>
        <dd safe>{`${day(a.created_at)} by ${a.uploader_name}`}</dd>
      </dl>
      <p>
        <a href={`/api/v1/attachments/${a.id}/content`} download="">
          Download
        </a>
      </p>
      {a.kind === 'bundle' ? (
        <>
          <h2>{`Files in this bundle (${a.member_count ?? 0})`}</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Path</th>
                <th scope="col">Size</th>
                <th scope="col">Modified</th>
                <th scope="col">Download</th>
              </tr>
            </thead>
            <tbody>
              {props.members.map((m) => (
                <tr>
                  <td>
                    {m.type === 'file' ? (
                      <a href={`/attachments/${a.id}/members/${m.idx}`} safe>
                        {m.path}
                      </a>
                    ) : (
                      <span safe>{`${m.path}${m.type === 'dir' ? '' : ` (${m.type})`}`}</span>
                    )}
                  </td>
                  <td>{m.type === 'file' ? formatSize(m.size) : ''}</td>
                  <td>{m.mtime && !Number.isNaN(m.mtime.getTime()) ? day(m.mtime) : ''}</td>
                  <td>
                    {m.type === 'file' ? (
                      <a href={`/api/v1/attachments/${a.id}/members/${m.idx}/content`} download="">
                        Download
                      </a>
                    ) : (
                      ''
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {props.nextAfter !== undefined ? (
            <p>
              <a href={`/attachments/${a.id}?after=${props.nextAfter}`}>More files</a>
            </p>
          ) : (
            ''
          )}
          {a.member_count !== null && a.members_listed !== null && a.member_count > a.members_listed ? (
            <p class="muted">{`Only the first ${a.members_listed} files are listed.`}</p>
          ) : (
            ''
          )}
        </>
      ) : (
        ''
      )}
    </Layout>
  );
}

function MemberPage(props: {
  ctx: PageContext;
  a: AttachmentRow;
  member: { idx: number; path: string; size: number };
  text: string | null;
  truncated: boolean;
}) {
  const { a, member } = props;
  return (
    <Layout title={member.path} ctx={props.ctx}>
      <p>
        <a href={`/attachments/${a.id}`} safe>
          {`← ${a.file_name}`}
        </a>
      </p>
      <h1 safe>{member.path}</h1>
      <p>
        {`${formatSize(member.size)} · `}
        <a href={`/api/v1/attachments/${a.id}/members/${member.idx}/content`} download="">
          Download this file
        </a>
      </p>
      {props.truncated ? (
        <p class="muted">{`Showing the first ${formatSize(MEMBER_TEXT_CAP)}; download the file for the rest.`}</p>
      ) : (
        ''
      )}
      {props.text === null ? (
        <p>This file is not text; download it to open it.</p>
      ) : (
        <pre class="member-text" safe>
          {props.text}
        </pre>
      )}
    </Layout>
  );
}

/** Registers /attachments, /attachments/:id and /attachments/:id/members/:idx. */
export async function attachmentPages(app: FastifyInstance, { ctx }: { ctx: AttachmentsContext }) {
  const html = 'text/html; charset=utf-8';
  app.get('/attachments', async (request: FastifyRequest, reply) => {
    const q = request.query as Query;
    const products = (await listProducts(ctx.db, request.viewer)) as { id: number; name: string }[];
    let rows: AttachmentRow[] = [];
    let next: string | undefined;
    let error: string | undefined;
    let status = 200;
    try {
      const { filter, sort, after } = readFilters(q);
      rows = await listAttachments(ctx, request.viewer, filter, { sort, limit: 100, after });
      if (rows.length === 100) next = encodeCursor(sort, rows[rows.length - 1]!);
    } catch (err) {
      if (!(err instanceof Error) || (err as { status?: number }).status !== 400) throw err;
      error = err.message;
      status = 400;
    }
    return reply
      .code(status)
      .type(html)
      .header('cache-control', 'private, no-store')
      .send(
        <SupportPage
          ctx={pageContext(request)}
          q={q}
          rows={rows}
          next={next}
          products={products}
          error={error}
        />,
      );
  });

  app.get('/attachments/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const after = Number((request.query as Query)['after'] ?? -1);
    const a = await getAttachment(ctx, request.viewer, Number(id));
    const limit = 1000;
    const members =
      a.kind === 'bundle'
        ? (
            await listMembers(ctx, request.viewer, a.id, {
              after: Number.isSafeInteger(after) ? after : -1,
              limit,
            })
          ).members
        : [];
    const nextAfter = members.length === limit ? members[members.length - 1]!.idx : undefined;
    return reply
      .type(html)
      .header('cache-control', 'private, no-store')
      .send(<AttachmentPage ctx={pageContext(request)} a={a} members={members} nextAfter={nextAfter} />);
  });

  app.get('/attachments/:id/members/:idx', async (request, reply) => {
    const { id, idx } = request.params as { id: string; idx: string };
    if (!/^\d{1,9}$/.test(idx)) throw invalid('the file number must be a whole number', 'idx');
    const { attachment, member } = await getMember(ctx, request.viewer, Number(id), Number(idx));
    const t = await memberText(ctx, attachment, member);
    return reply
      .type(html)
      .header('cache-control', 'private, no-store')
      .send(
        <MemberPage
          ctx={pageContext(request)}
          a={attachment}
          member={member}
          text={t.text}
          truncated={t.truncated}
        />,
      );
  });
}
