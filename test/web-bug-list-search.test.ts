/**
 * The bug list page as a search page: the box, mistakes marked in place, bug numbers that jump, sortable
 * columns, counts, paging, the CSV link, saving and deleting searches, and the help page.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`bug list search page (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
    await w.bug('Alpha crash in renderer', { severity: 'critical' });
    await w.bug('Beta crash in printer', { severity: 'minor', description: 'crash crash' });
  });
  after(() => t.close());

  async function page(url: string, u: TestUser = w.users.dev) {
    const { cookie, csrf } = await t.session(u);
    const res = await t.request({ method: 'GET', url, headers: { cookie } });
    return Object.assign(res, { cookie, csrf });
  }
  const decodeAmp = (s: string) => s.replace(/&amp;/g, '&');

  test('the search box keeps the query; results show the total, snippets and counts', async () => {
    const res = await page('/bugs?q=crash');
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /<input id="f-q" name="q" type="search" value="crash"/);
    assert.match(res.body, /3 bugs match/);
    assert.match(res.body, /<mark>crash<\/mark>/i);
    assert.match(res.body, /NEW \(3\)/);
    assert.match(res.body, /Omega \(3\)/);
    // Another column chosen: a link back to relevance is offered.
    const bySummary = await page('/bugs?q=crash&sort=summary');
    assert.ok(bySummary.body.indexOf('Alpha crash') < bySummary.body.indexOf('Beta crash'));
    assert.ok(bySummary.body.indexOf('Beta crash') < bySummary.body.indexOf('Public crash'));
    assert.match(bySummary.body, /Sort by relevance/);
    assert.match(bySummary.body, /<th scope="col" aria-sort="ascending"><a href="[^"]*sort=summary&dir=desc/);
  });

  test('a malformed query is a 400 page naming the mistake and marking where it is', async () => {
    const res = await page(`/bugs?q=${encodeURIComponent('crash stauts:NEW')}`);
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /role="alert"[^>]*>unknown field &#34;stauts&#34;; did you mean status\?/);
    assert.match(res.body, /<span>crash <\/span><mark>stauts<\/mark><span>:NEW<\/span>/);
    assert.match(res.body, /aria-invalid="true"/);
    assert.match(res.body, /0 bugs match/);
  });

  test('a bug number in the box opens the bug; an invisible one is just not found', async () => {
    const res = await page(`/bugs?q=${w.bugs.confidential.id}`);
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, `/bugs/${w.bugs.confidential.id}`);
    const alice = await page(`/bugs?q=%23${w.bugs.confidential.id}`, w.users.alice);
    assert.equal(alice.statusCode, 200);
    assert.match(alice.body, /No bugs match/);
  });

  test('column headings sort both ways and paging keeps the sort and the query', async () => {
    for (let i = 0; i < 55; i++) await w.bug(`Sorted item ${String(i).padStart(2, '0')}`);
    const first = await page('/bugs?q=sorted&sort=summary&dir=desc');
    assert.match(first.body, /50 bugs on this page/);
    assert.ok(first.body.indexOf('Sorted item 54') < first.body.indexOf('Sorted item 53'));
    const next = decodeAmp(/href="([^"]+)" rel="next"/.exec(first.body)![1]!);
    assert.ok(next.includes('sort=summary') && next.includes('dir=desc') && next.includes('q=sorted'));
    const second = await page(next);
    assert.match(second.body, /5 bugs on this page/);
    assert.match(second.body, /Sorted item 00/);
    assert.ok(!second.body.includes('Sorted item 05<'));
  });

  test('the CSV link exports the current list', async () => {
    const res = await page('/bugs?q=crash&status=NEW');
    const href = decodeAmp(/href="([^"]+)" download="bugs.csv"/.exec(res.body)![1]!);
    assert.ok(href.startsWith('/bugs.csv?') && href.includes('q=crash') && href.includes('status=NEW'));
    const csv = await page(href);
    assert.equal(csv.statusCode, 200);
    assert.match(csv.headers['content-type'] as string, /text\/csv/);
    assert.equal(csv.body.trim().split('\r\n').length, 4);
  });

  test('saving the search (filters written in the query language), running it, deleting it', async () => {
    const list = await page(`/bugs?q=crash&product=${w.products.omega.id}&status=NEW`, w.users.alice);
    const query = /name="query" value="([^"]*)"/.exec(list.body)![1]!.replace(/&#34;/g, '"');
    assert.equal(query, 'crash product:Omega status:NEW');
    const save = (name: string, extra: Record<string, string> = {}) =>
      t.request({
        method: 'POST',
        url: '/bugs/saved-searches',
        headers: { cookie: list.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ _csrf: list.csrf, name, query, ...extra }).toString(),
      });
    const saved = await save('Omega crashes');
    assert.equal(saved.statusCode, 303, saved.body);
    assert.equal(saved.headers.location, `/bugs?q=${encodeURIComponent(query)}`);
    const again = await save('omega crashes');
    assert.equal(again.statusCode, 409);
    assert.match(again.body, /already have a saved search named/);
    const noCsrf = await t.request({
      method: 'POST',
      url: '/bugs/saved-searches',
      headers: { cookie: list.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ name: 'x', query }).toString(),
    });
    assert.equal(noCsrf.statusCode, 403);
    await save('Shared one', { shared: '1' });

    const mine = await page('/bugs', w.users.alice);
    assert.match(mine.body, /Omega crashes<\/a> <span class="muted">\(private\)/);
    const others = await page('/bugs', w.users.bob);
    assert.ok(!others.body.includes('Omega crashes'));
    assert.match(others.body, /Shared one<\/a> <span class="muted">\(shared by Alice\)/);
    assert.ok(!/saved-searches\/\d+\/delete/.test(others.body), 'no delete button on others’ searches');

    const del = /action="(\/bugs\/saved-searches\/\d+\/delete)"/.exec(mine.body)![1]!;
    const bobDel = await t.request({
      method: 'POST',
      url: del,
      headers: { cookie: others.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: others.csrf }).toString(),
    });
    assert.ok(bobDel.statusCode === 403 || bobDel.statusCode === 404, String(bobDel.statusCode));
    const gone = await t.request({
      method: 'POST',
      url: del,
      headers: { cookie: list.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: list.csrf }).toString(),
    });
    assert.equal(gone.statusCode, 303);
    assert.equal((await page('/bugs', w.users.alice)).body.split('(private)').length, 1);
  });

  test('the help page documents the language, signed in or not', async () => {
    const res = await t.request({ method: 'GET', url: '/search/help' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /changed:status=RESOLVED@-7d\.\./);
    assert.match(res.body, /sort:COLUMN/);
    assert.match(res.body, /href="\/bugs\?q=crash%20-window"/);
  });
});
