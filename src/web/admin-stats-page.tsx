/**
 * /admin/stats: usage (unique visitors, page views, active users per day) and bug statistics (opened and
 * resolved per day, per product; open bugs by status and severity; median time to resolve), as SVG charts with
 * the figures in tables beside them. Admins only. Page views of every HTML page are counted here too.
 */
import type { FastifyInstance } from 'fastify';
import { isAdmin } from '../access/index.ts';
import type { Db } from '../platform/db.ts';
import { forbidden } from '../platform/errors.ts';
import { type Statistics, statistics, type VisitRecorder } from '../stats/index.ts';
import { AdminNav } from './admin-products-page.tsx';
import { BarChart, LineChart } from './charts.tsx';
import { Layout, pageContext } from './layout.tsx';

const PERIODS = [7, 30, 90, 365];

function perDay(rows: Statistics['opened'], labels: string[]): number[] {
  const byDay = new Map<string, number>();
  for (const r of rows) byDay.set(r.day, (byDay.get(r.day) ?? 0) + r.count);
  return labels.map((d) => byDay.get(d) ?? 0);
}

function StatsPage(props: { s: Statistics }) {
  const { s } = props;
  const labels = s.usage.map((u) => u.day);
  const today = s.usage.at(-1);
  const byStatus = new Map<string, number>();
  const bySeverity = new Map<string, number>();
  for (const r of s.open_by_status_severity) {
    byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + r.count);
    bySeverity.set(r.severity, (bySeverity.get(r.severity) ?? 0) + r.count);
  }
  const products = [...new Set([...s.opened, ...s.resolved].map((r) => r.product))].sort();
  const sum = (rows: Statistics['opened'], product: string) =>
    rows.filter((r) => r.product === product).reduce((a, r) => a + r.count, 0);
  const median = s.median_hours_to_resolve;
  return (
    <>
      <h1>Statistics</h1>
      <AdminNav current="/admin/stats" />
      <nav aria-label="Period" class="subnav">
        {PERIODS.map((d) => (
          <a href={`/admin/stats?days=${d}`} aria-current={d === s.days ? 'page' : undefined}>
            {`${d} days`}
          </a>
        ))}
      </nav>
      <section aria-labelledby="usage-h">
        <h2 id="usage-h">Usage</h2>
        <p>
          {`Today: ${today?.visitors ?? 0} unique visitors, ${today?.page_views ?? 0} page views, ${
            today?.active_users ?? 0
          } active users. Visitors are counted by a hash of address and browser with a salt that is thrown away
          every day: no address is stored.`}
        </p>
        <LineChart
          title={`Usage per day, last ${s.days} days`}
          labels={labels}
          series={[
            { name: 'unique visitors', values: s.usage.map((u) => u.visitors) },
            { name: 'page views', values: s.usage.map((u) => u.page_views) },
            { name: 'active users', values: s.usage.map((u) => u.active_users) },
          ]}
        />
      </section>
      <section aria-labelledby="bugs-h">
        <h2 id="bugs-h">Bugs</h2>
        <p>
          {median === null
            ? 'No bug was resolved in this period.'
            : `Median time to resolve (bugs resolved in this period): ${
                median < 48 ? `${median.toFixed(1)} hours` : `${(median / 24).toFixed(1)} days`
              }.`}
        </p>
        <LineChart
          title={`Bugs opened and resolved per day, last ${s.days} days`}
          labels={labels}
          series={[
            { name: 'opened', values: perDay(s.opened, labels) },
            { name: 'resolved', values: perDay(s.resolved, labels) },
          ]}
        />
        <table>
          <caption>Opened and resolved per product, last {String(s.days)} days</caption>
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Opened</th>
              <th scope="col">Resolved</th>
            </tr>
          </thead>
          <tbody>
            {products.map((p) => (
              <tr>
                <th scope="row" safe>
                  {p}
                </th>
                <td>{String(sum(s.opened, p))}</td>
                <td>{String(sum(s.resolved, p))}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <BarChart
          title="Open bugs by status"
          rows={[...byStatus].map(([label, value]) => ({ label, value }))}
        />
        <BarChart
          title="Open bugs by severity"
          rows={[...bySeverity].sort((a, b) => b[1] - a[1]).map(([label, value]) => ({ label, value }))}
        />
      </section>
    </>
  );
}

/** Counts every HTML page answered 200 (call on the root app, before the routes). */
export function installVisitCounting(app: FastifyInstance, recorder: VisitRecorder): void {
  app.addHook('onResponse', async (request, reply) => {
    if (request.method !== 'GET' || reply.statusCode !== 200) return;
    if (!String(reply.getHeader('content-type') ?? '').startsWith('text/html')) return;
    const userId = request.viewer?.kind === 'user' ? request.viewer.id : undefined;
    await recorder.pageView(request.ip, request.headers['user-agent'] ?? '', userId).catch(() => {});
  });
  app.addHook('onClose', () => recorder.close());
}

/** Registers /admin/stats. */
export async function adminStatsPages(
  app: FastifyInstance,
  { db, recorder }: { db: Db; recorder: VisitRecorder },
) {
  app.get<{ Querystring: { days?: string } }>('/admin/stats', async (request, reply) => {
    if (!isAdmin(request.viewer)) throw forbidden('Only administrators may see the statistics.');
    const days = Number(request.query.days ?? 30);
    const period = PERIODS.includes(days) ? days : 30;
    // What was counted so far is on the page at once.
    await recorder.flush();
    const s = await statistics(db, period);
    return reply.type('text/html; charset=utf-8').send(
      <Layout title="Statistics" ctx={pageContext(request)}>
        <StatsPage s={s} />
      </Layout>,
    );
  });
}
