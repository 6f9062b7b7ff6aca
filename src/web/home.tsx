/**
 * The home page: for a signed-in user, the dashboard (my open bugs — reported, assigned, CC'd — the bugs
 * changed most recently that they may see, and counts per status); for others, what Bugzot is.
 */
import type { FastifyInstance } from 'fastify';
import type { UserViewer } from '../access/index.ts';
import { type BugsContext, listBugs, statusCounts } from '../bugs/index.ts';
import { SavedSearchList } from './bug-list-page.tsx';
import { BugCells, Layout, pageContext, statusText } from './layout.tsx';

type Row = Awaited<ReturnType<typeof listBugs>>[number];

function BugTable(props: { caption: string; rows: Row[]; empty: string }) {
  return (
    <table>
      <caption safe>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Summary</th>
          <th scope="col">Status</th>
          <th scope="col">Changed</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.length ? (
          props.rows.map((b) => (
            <tr>
              <BugCells id={b.id} summary={b.summary} />
              <td safe>{statusText(b)}</td>
              <td safe>{b.changed_at.toISOString().slice(0, 10)}</td>
            </tr>
          ))
        ) : (
          <tr>
            <td colspan="4" class="muted" safe>
              {props.empty}
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

async function dashboard(bugs: BugsContext, viewer: UserViewer) {
  const mine = (filter: Parameters<typeof listBugs>[2]) =>
    listBugs(bugs, viewer, { ...filter, openOnly: true }, { limit: 10, order: 'changed' });
  const [reported, assigned, cc, recent, counts] = await Promise.all([
    mine({ reporterIds: [viewer.id] }),
    mine({ assigneeIds: [viewer.id] }),
    mine({ ccUserIds: [viewer.id] }),
    listBugs(bugs, viewer, {}, { limit: 10, order: 'changed' }),
    statusCounts(bugs, viewer),
  ]);
  return (
    <>
      <h2>My open bugs</h2>
      <BugTable caption="Assigned to me" rows={assigned} empty="Nothing assigned to you." />
      <BugTable caption="Reported by me" rows={reported} empty="You have no open reports." />
      <BugTable caption="I am on the CC list" rows={cc} empty="You follow no open bugs." />
      <h2>Saved searches</h2>
      {await SavedSearchList({ db: bugs.db, viewer })}
      <h2>Recently changed</h2>
      <BugTable caption="The latest changes to bugs you may see" rows={recent} empty="No bugs yet." />
      <h2>Bugs by status</h2>
      <table>
        <tbody>
          {counts.map((c) => (
            <tr>
              <th scope="row">
                <a href={`/bugs?status=${c.status}`}>{c.status}</a>
              </th>
              <td>{String(c.count)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** Registers the home page (the stylesheet and scripts are served by assets.ts). */
export async function homePages(app: FastifyInstance, { ctx: bugs }: { ctx: BugsContext }) {
  app.get('/', { config: { public: true } }, async (request, reply) => {
    const viewer = request.viewer;
    const ctx = pageContext(request);
    const page = (
      <Layout title="Home" ctx={ctx}>
        <h1>Bugzot</h1>
        <p>
          A self-hosted bug tracker: file bugs against a product and the release you run, follow them, and
          integrate through the REST API.
        </p>
        {viewer.kind === 'user' ? (
          <>
            <p>
              Signed in as <strong safe>{viewer.name}</strong>. <a href="/bugs/new">File a bug</a> ·{' '}
              <a href="/bugs">All bugs</a>
            </p>
            {await dashboard(bugs, viewer)}
          </>
        ) : (
          <p>
            <a href="/signin">Sign in</a> to file and follow bugs.
          </p>
        )}
        <ul>
          <li>
            <a href="/api/docs">API reference</a> (<a href="/api/openapi.json">OpenAPI</a>)
          </li>
          <li>
            <a href="/version">Version</a> · <a href="/healthz">Health</a> · <a href="/readyz">Readiness</a>
          </li>
        </ul>
      </Layout>
    );
    return reply.type('text/html; charset=utf-8').send(page);
  });
}
