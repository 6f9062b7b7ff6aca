/**
 * Usage statistics (unique visitors per day without storing addresses, page views, active users) and bug
 * statistics (opened and resolved per day per product, open bugs by status and severity, median time to
 * resolve), through the admin API and the admin page; admins only.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { utcDay } from '../src/stats/index.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';

let t: TestApp;
let w: Awaited<ReturnType<typeof world>>;
before(async () => {
  t = await startTestApp();
  w = await world(t);
});
after(() => t.close());

const yesterday = () => utcDay(new Date(Date.now() - 86_400_000));

async function page(url: string, opts: { as?: TestUser; ip: string; ua: string }) {
  const cookie = opts.as ? (await t.session(opts.as)).cookie : undefined;
  const res = await t.app.inject({
    url,
    remoteAddress: opts.ip,
    headers: { accept: 'text/html', 'user-agent': opts.ua, ...(cookie ? { cookie } : {}) },
  });
  assert.equal(res.statusCode, 200, `${url}: ${res.statusCode}`);
  assert.match(String(res.headers['content-type']), /^text\/html/);
}

async function stats(days = 1) {
  // The admin page writes what was counted so far before it reads.
  const pageRes = await t.app.inject({
    url: `/admin/stats?days=7`,
    headers: { accept: 'text/html', cookie: (await t.session(w.users.admin)).cookie },
  });
  assert.equal(pageRes.statusCode, 200);
  const res = await t.request({ url: `/api/v1/admin/stats?days=${days}`, as: w.users.admin });
  assert.equal(res.statusCode, 200, res.body);
  return res.data;
}

test('unique visitors, page views and active users are counted, without storing any address', async () => {
  // A salt left from yesterday must be gone once today's is made: yesterday's hashes can no longer be linked.
  await t.db.query(sql`INSERT INTO stats_salts (day, salt) VALUES (${yesterday()}::date, '\\x00'::bytea)`);
  const before = (await stats()).usage.at(-1);
  await page('/', { as: w.users.alice, ip: '203.0.113.7', ua: 'Firefox/140' });
  await page('/bugs', { as: w.users.alice, ip: '203.0.113.7', ua: 'Firefox/140' });
  await page('/', { as: w.users.bob, ip: '198.51.100.23', ua: 'Chrome/150' });
  await page('/signin', { ip: '192.0.2.99', ua: 'Safari/20' });
  // API calls and assets are not page views.
  assert.equal((await t.request({ url: '/api/v1/bugs', as: w.users.alice })).statusCode, 200);

  const today = (await stats()).usage.at(-1);
  assert.equal(today.day, utcDay());
  // The admin's own page view (by stats()) comes in too: one more visitor, view and active user per call.
  assert.equal(today.page_views - before.page_views, 4 + 1);
  assert.equal(today.visitors - before.visitors, 3 + (before.visitors === 0 ? 1 : 0));
  assert.equal(today.active_users - before.active_users, 2 + (before.active_users === 0 ? 1 : 0));

  const salts = await t.db.query<{ day: string }>(
    sql`SELECT to_char(day, 'YYYY-MM-DD') AS day FROM stats_salts`,
  );
  assert.deepEqual(
    salts.map((s) => s.day),
    [utcDay()],
    "only today's salt exists",
  );
  const rows = await t.db.query<{ len: number; text: string }>(
    sql`SELECT length(visitor) AS len, encode(visitor, 'escape') AS text FROM stats_visitors`,
  );
  assert.ok(rows.length >= 3);
  for (const r of rows) {
    assert.equal(Number(r.len), 16, 'a visitor is a 16-byte hash');
    assert.doesNotMatch(r.text, /203\.0\.113|198\.51\.100|192\.0\.2|Firefox|Chrome/);
  }
});

test('bug statistics: opened and resolved per product, open by status and severity, median to resolve', async () => {
  const id = w.bugs.public.id;
  const res = await t.request({
    method: 'PATCH',
    url: `/api/v1/bugs/${id}`,
    as: w.users.dev,
    payload: { status: 'RESOLVED', resolution: 'FIXED' },
  });
  assert.equal(res.statusCode, 200, res.body);
  const s = await stats(7);
  const todayOpened = s.opened.filter((r: { day: string }) => r.day === utcDay());
  const count = (rows: Array<{ product: string; count: number }>, product: string) =>
    rows.filter((r) => r.product === product).reduce((a, r) => a + r.count, 0);
  assert.equal(count(todayOpened, 'Omega'), 5, 'five of the world bugs were filed against Omega today');
  assert.equal(count(todayOpened, 'Orion'), 1);
  assert.equal(count(s.resolved, 'Omega'), 1);
  const [openRow] = await t.db.query<{ n: number }>(
    sql`SELECT count(*)::int AS n FROM bugs b JOIN bug_statuses s ON s.name = b.status AND s.is_open`,
  );
  const listed = s.open_by_status_severity.reduce((a: number, r: { count: number }) => a + r.count, 0);
  assert.equal(listed, openRow?.n);
  assert.ok(!s.open_by_status_severity.some((r: { status: string }) => r.status === 'RESOLVED'));
  assert.equal(typeof s.median_hours_to_resolve, 'number');
  assert.ok(s.median_hours_to_resolve >= 0 && s.median_hours_to_resolve < 1);
});

test('the statistics page draws SVG charts with text alternatives; admins only', async () => {
  const admin = await t.app.inject({
    url: '/admin/stats?days=30',
    headers: { accept: 'text/html', cookie: (await t.session(w.users.admin)).cookie },
  });
  assert.equal(admin.statusCode, 200);
  assert.match(admin.body, /<svg[^>]*role="img"/);
  assert.match(admin.body, /<title>Usage per day, last 30 days<\/title>/);
  assert.match(admin.body, /<title>Open bugs by status<\/title>/);
  assert.match(admin.body, /<caption>Opened and resolved per product/);
  const dev = await t.app.inject({
    url: '/admin/stats',
    headers: { accept: 'text/html', cookie: (await t.session(w.users.dev)).cookie },
  });
  assert.equal(dev.statusCode, 403);
  assert.equal((await t.request({ url: '/api/v1/admin/stats', as: w.users.dev })).statusCode, 403);
  const bad = await t.request({ url: '/api/v1/admin/stats?days=0', as: w.users.admin });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.data.error.field, 'days');
});
