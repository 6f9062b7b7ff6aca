/**
 * Saved searches (private and shared, owner-only changes), the CSV export of a query, and similar-bug
 * suggestions while filing, over the API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Json, startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`saved searches, CSV, similar bugs (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;

  const call = (as: TestUser, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    t.request({ method, url, as, ...(payload ? { payload } : {}) });

  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  test('a private saved search is its owner’s alone; a shared one is listed for everyone, read-only', async () => {
    const { dev, alice, bob } = w.users;
    const mine = await call(dev, 'POST', '/api/v1/saved-searches', {
      name: 'My crashes',
      query: 'crash reporter:me',
    });
    assert.equal(mine.statusCode, 201, mine.body);
    assert.equal(mine.data.shared, false);
    assert.equal(mine.data.mine, true);
    const shared = await call(dev, 'POST', '/api/v1/saved-searches', {
      name: 'Open criticals',
      query: 'status:open severity:critical',
      shared: true,
    });
    assert.equal(shared.statusCode, 201);

    const aliceList = (await call(alice, 'GET', '/api/v1/saved-searches')).data.saved_searches;
    assert.deepEqual(
      aliceList.map((s: Json) => [s.name, s.mine, s.owner.name]),
      [['Open criticals', false, 'Dev']],
    );
    assert.equal((await call(alice, 'GET', `/api/v1/saved-searches/${mine.data.id}`)).statusCode, 404);
    assert.equal((await call(alice, 'GET', `/api/v1/saved-searches/${shared.data.id}`)).statusCode, 200);
    const steal = await call(alice, 'PATCH', `/api/v1/saved-searches/${shared.data.id}`, {
      name: 'Mine now',
    });
    assert.equal(steal.statusCode, 403);
    assert.equal((await call(alice, 'DELETE', `/api/v1/saved-searches/${shared.data.id}`)).statusCode, 403);
    assert.equal(
      (await call(bob, 'PATCH', `/api/v1/saved-searches/${mine.data.id}`, { shared: true })).statusCode,
      404,
    );

    const devList = (await call(dev, 'GET', '/api/v1/saved-searches')).data.saved_searches;
    assert.deepEqual(
      devList.map((s: Json) => s.name),
      ['My crashes', 'Open criticals'],
    );
    const renamed = await call(dev, 'PATCH', `/api/v1/saved-searches/${mine.data.id}`, {
      name: 'Crashes',
      shared: true,
    });
    assert.equal(renamed.statusCode, 200);
    assert.equal(renamed.data.name, 'Crashes');
    assert.equal(renamed.data.shared, true);
    assert.equal((await call(dev, 'DELETE', `/api/v1/saved-searches/${mine.data.id}`)).statusCode, 204);
    assert.equal((await call(dev, 'GET', `/api/v1/saved-searches/${mine.data.id}`)).statusCode, 404);
  });

  test('saving refuses a malformed query (with its position), a blank or duplicate name', async () => {
    const { bob } = w.users;
    const bad = await call(bob, 'POST', '/api/v1/saved-searches', {
      name: 'Typo',
      query: 'crash stauts:NEW',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.data.error.field, 'query');
    assert.equal(bad.data.error.position, 6);
    const blank = await call(bob, 'POST', '/api/v1/saved-searches', { name: '   ', query: 'crash' });
    assert.equal(blank.statusCode, 400);
    assert.equal(blank.data.error.field, 'name');
    assert.equal(
      (await call(bob, 'POST', '/api/v1/saved-searches', { name: 'Dup', query: 'crash' })).statusCode,
      201,
    );
    const dup = await call(bob, 'POST', '/api/v1/saved-searches', { name: 'dup', query: 'leak' });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.data.error.field, 'name');
    const extra = await call(bob, 'POST', '/api/v1/saved-searches', { name: 'X', query: 'a', owner_id: 1 });
    assert.equal(extra.statusCode, 400);
    const list = (await call(bob, 'GET', '/api/v1/saved-searches')).data.saved_searches;
    assert.deepEqual(
      list.filter((s: Json) => s.mine).map((s: Json) => s.name),
      ['Dup'],
    );
  });

  test('a shared saved search runs with the runner’s own visibility', async () => {
    const { dev, alice } = w.users;
    const s = await call(dev, 'POST', '/api/v1/saved-searches', {
      name: 'Zebras',
      query: 'zebra',
      shared: true,
    });
    const q = encodeURIComponent(s.data.query);
    assert.equal((await call(dev, 'GET', `/api/v1/search?q=${q}`)).data.total, 1);
    assert.equal((await call(alice, 'GET', `/api/v1/search?q=${q}`)).data.total, 0);
  });

  test('the dashboard lists the viewer’s saved searches and the shared ones, as links that run them', async () => {
    const { bob, alice } = w.users;
    await call(bob, 'POST', '/api/v1/saved-searches', { name: 'Bob private list', query: 'reporter:me' });
    await call(bob, 'POST', '/api/v1/saved-searches', {
      name: 'Bob shares',
      query: 'status:open',
      shared: true,
    });
    const home = async (u: TestUser) => {
      const { cookie } = await t.session(u);
      return (await t.request({ method: 'GET', url: '/', headers: { cookie } })).body;
    };
    const bobs = await home(bob);
    assert.match(bobs, /<h2>Saved searches<\/h2>/);
    assert.match(bobs, /<a href="\/bugs\?q=reporter%3Ame">Bob private list<\/a>/);
    const alices = await home(alice);
    assert.ok(!alices.includes('Bob private list'));
    assert.match(
      alices,
      /<a href="\/bugs\?q=status%3Aopen">Bob shares<\/a> <span class="muted">\(shared by Bob\)/,
    );
  });

  test('CSV export: a header, one line per bug in the sort order, quoting and formula guard', async () => {
    const { dev } = w.users;
    const odd = await w.bug('=HYPERLINK("x"), with "quotes", commas');
    const res = await call(
      dev,
      'GET',
      `/api/v1/search/csv?q=${encodeURIComponent('product:Omega sort:id:asc')}`,
    );
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/csv/);
    assert.match(res.headers['content-disposition'] as string, /attachment; filename="bugs.csv"/);
    const lines = res.body.split('\r\n').filter(Boolean);
    assert.equal(
      lines[0],
      'id,summary,product,version,component,status,resolution,severity,priority,reporter,assignee,confidential,created,changed',
    );
    const ids = lines.slice(1).map((l) => Number(l.split(',')[0]));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    assert.equal(ids.length, 6);
    const oddLine = lines.find((l) => l.startsWith(`${odd.id},`))!;
    assert.ok(
      oddLine.startsWith(
        `${odd.id},"'=HYPERLINK(""x""), with ""quotes"", commas",Omega,1.0,Core,NEW,,normal,P3,Dev,,false,`,
      ),
      oddLine,
    );
    const bad = await call(dev, 'GET', '/api/v1/search/csv?q=stauts:NEW');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.data.error.code, 'invalid_query');
  });

  test('similar bugs: up to five of the chosen product, most similar first', async () => {
    const { dev, alice } = w.users;
    const made = [];
    for (const s of [
      'Crash when opening preferences dialog',
      'Crash when opening the preferences window',
      'Preferences dialog crashes on open',
      'Crash opening prefs',
      'Crash when opening preferences dialog twice',
      'Crash when opening preferences dialog from menu',
      'Unrelated printing problem',
    ])
      made.push(await w.bug(s));
    const url = (as: TestUser, product: number, summary: string) =>
      call(as, 'GET', `/api/v1/search/similar?product_id=${product}&summary=${encodeURIComponent(summary)}`);
    const res = await url(alice, w.products.omega.id, 'crash when opening preferences dialog');
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.bugs.length, 5);
    assert.equal(res.data.bugs[0].id, made[0]!.id);
    assert.ok(!res.data.bugs.some((b: Json) => b.summary.includes('printing')));
    const scores = res.data.bugs.map((b: Json) => b.score);
    assert.deepEqual(
      scores,
      [...scores].sort((a: number, b: number) => b - a),
    );
    // Another product: none of these.
    assert.deepEqual(
      (await url(dev, w.products.orion.id, 'crash when opening preferences dialog')).data.bugs,
      [],
    );
    assert.deepEqual((await url(dev, w.products.omega.id, 'cr')).data.bugs, []);
    assert.equal((await url(dev, w.products.omega.id, 'x'.repeat(300))).statusCode, 400);
  });
});
