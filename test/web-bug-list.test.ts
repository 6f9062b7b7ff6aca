/**
 * The bug list page: filters in the URL, only visible bugs, paging by a link that reproduces the list.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`bug list page (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  async function get(url: string, u: TestUser) {
    const { cookie } = await t.session(u);
    return t.request({ method: 'GET', url, headers: { cookie } });
  }

  test('an external user lists only what they may see; the internal product is not offered as a filter', async () => {
    const res = await get('/bugs', w.users.alice);
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /Public crash on start/);
    assert.match(res.body, /Alice private report/);
    assert.ok(!res.body.includes('zebra'));
    assert.ok(!res.body.includes('Orion'));
  });

  test('filters come from the URL, are shown selected, and pages link onwards', async () => {
    for (let i = 0; i < 52; i++) await w.bug(`Paged bug ${i}`, { severity: 'minor' });
    const url = `/bugs?product=${w.products.omega.id}&status=NEW`;
    const first = await get(url, w.users.dev);
    assert.match(first.body, new RegExp(`<option value="${w.products.omega.id}" selected`));
    assert.match(first.body, /<option value="NEW" selected/);
    assert.match(first.body, /50 bugs on this page/);
    const next = /href="([^"]+)" rel="next"/.exec(first.body)?.[1]?.replace(/&amp;/g, '&');
    assert.ok(next, 'a next-page link');
    assert.ok(
      next.includes(`product=${w.products.omega.id}`) &&
        next.includes('status=NEW') &&
        next.includes('after='),
    );
    const second = await get(next, w.users.dev);
    assert.equal(second.statusCode, 200);
    assert.match(second.body, /Paged bug 0/);
    const asc = await get(`${url}&order=asc`, w.users.dev);
    assert.ok(asc.body.indexOf('Public crash on start') < asc.body.indexOf('Paged bug 0'));
  });
});
