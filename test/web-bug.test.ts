/**
 * The bug page over HTTP as a browser uses it: fields escaped, only allowed steps offered, comments and
 * changes interleaved, status changes through the form, the mid-air collision screen keeping the edit,
 * CC add/remove me, and the same friendly 404 for a bug the viewer may not see as for a missing one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const FORM = 'application/x-www-form-urlencoded';
const PASSWORD = 'correct horse battery';

describe(`bug page (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  const sessions = new Map<number, { cookie: string; csrf: string }>();
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  async function as(u: TestUser) {
    const known = sessions.get(u.id);
    if (known) return known;
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/session',
      payload: { email: u.email, password: PASSWORD },
    });
    const s = {
      cookie: `bugzot_session=${res.cookies.find((c) => c.name === 'bugzot_session')!.value}`,
      csrf: res.data.csrf_token as string,
    };
    sessions.set(u.id, s);
    return s;
  }
  const page = async (id: number, u: TestUser) =>
    t.request({ method: 'GET', url: `/bugs/${id}`, headers: { cookie: (await as(u)).cookie } });
  const submit = async (url: string, u: TestUser, fields: Record<string, string>) => {
    const s = await as(u);
    return t.request({
      method: 'POST',
      url,
      headers: { cookie: s.cookie, 'content-type': FORM },
      payload: new URLSearchParams({ _csrf: s.csrf, ...fields }).toString(),
    });
  };
  const rowVersion = (html: string) => /name="row_version" value="(\d+)"/.exec(html)![1]!;

  test('shows the fields with user text escaped, and only the steps this viewer may take', async () => {
    const b = await w.bug('<script>alert("x")</script> in summary', {
      description: 'Line 1\n<img src=x onerror=alert(1)>',
    });
    const res = await page(b.id, w.users.dev);
    assert.equal(res.statusCode, 200);
    assert.ok(!res.body.includes('<script>alert("x")</script>'));
    assert.ok(!res.body.includes('<img src=x'));
    assert.ok(res.body.includes('&lt;script'));
    for (const s of ['ASSIGNED', 'IN_PROGRESS', 'RESOLVED'])
      assert.ok(res.body.includes(`<option value="${s}"`), s);
    assert.ok(!res.body.includes('<option value="VERIFIED"'));
    // A customer who is not the reporter may comment but is offered no workflow step.
    const ext = await page(w.bugs.public.id, w.users.bob);
    assert.equal(ext.statusCode, 200);
    assert.ok(!ext.body.includes('name="status"'));
  });

  test('a bug the viewer may not see gets the same friendly 404 page as a missing bug', async () => {
    const hidden = await page(w.bugs.confidential.id, w.users.alice);
    const missing = await page(987654, w.users.alice);
    for (const res of [hidden, missing]) {
      assert.equal(res.statusCode, 404);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.match(res.body, /or you may not see it/);
    }
    assert.ok(!hidden.body.includes('zebra'), 'nothing of the confidential bug leaks');
  });

  test('NEW -> ASSIGNED -> RESOLVED FIXED through the form, with a comment, shown in one timeline', async () => {
    const b = await w.bug('Walk through the workflow');
    let res = await page(b.id, w.users.dev);
    res = await submit(`/bugs/${b.id}/change`, w.users.dev, {
      row_version: rowVersion(res.body),
      status: 'ASSIGNED',
      comment: 'Taking this one.',
    });
    assert.equal(res.statusCode, 303, res.body);
    res = await page(b.id, w.users.dev);
    const missing = await submit(`/bugs/${b.id}/change`, w.users.dev, {
      row_version: rowVersion(res.body),
      status: 'RESOLVED',
    });
    assert.equal(missing.statusCode, 422);
    assert.match(missing.body, /resolving needs a resolution/);
    res = await submit(`/bugs/${b.id}/change`, w.users.dev, {
      row_version: rowVersion(res.body),
      status: 'RESOLVED',
      resolution: 'FIXED',
    });
    assert.equal(res.statusCode, 303);
    res = await page(b.id, w.users.dev);
    assert.match(res.body, /RESOLVED FIXED/);
    const assigned = res.body.indexOf('status: NEW → ASSIGNED');
    const comment = res.body.indexOf('Taking this one.');
    const resolved = res.body.indexOf('status: ASSIGNED → RESOLVED');
    assert.ok(assigned > 0 && comment > assigned && resolved > comment, 'changes and comments in time order');
  });

  test('a mid-air collision shows their change, keeps my edit, and lets me apply it again', async () => {
    const b = await w.bug('Two people at once');
    const mine = await page(b.id, w.users.dev);
    const stale = rowVersion(mine.body);
    await t.request({
      method: 'PATCH',
      url: `/api/v1/bugs/${b.id}`,
      as: w.users.admin,
      payload: { summary: 'Renamed meanwhile', comment: { body: 'I got here first' } },
    });
    const clash = await submit(`/bugs/${b.id}/change`, w.users.dev, {
      row_version: stale,
      status: 'ASSIGNED',
      comment: 'My careful analysis',
    });
    assert.equal(clash.statusCode, 409);
    assert.match(clash.body, /Mid-air collision/);
    assert.match(clash.body, /summary Two people at once → Renamed meanwhile/);
    assert.match(clash.body, /I got here first/);
    assert.match(clash.body, /My careful analysis<\/textarea>/);
    assert.match(clash.body, /<option value="ASSIGNED" selected/);
    const again = await submit(`/bugs/${b.id}/change`, w.users.dev, {
      row_version: rowVersion(clash.body),
      status: 'ASSIGNED',
      comment: 'My careful analysis',
    });
    assert.equal(again.statusCode, 303);
    const after = await page(b.id, w.users.dev);
    assert.match(after.body, /ASSIGNED/);
    assert.match(after.body, /My careful analysis/);
  });

  test('add me / remove me on the CC list, and a form without the CSRF token is refused', async () => {
    const id = w.bugs.public.id;
    const s = await as(w.users.bob);
    const forged = await t.request({
      method: 'POST',
      url: `/bugs/${id}/cc`,
      headers: { cookie: s.cookie, 'content-type': FORM },
      payload: 'action=add',
    });
    assert.equal(forged.statusCode, 403);
    assert.equal((await submit(`/bugs/${id}/cc`, w.users.bob, { action: 'add' })).statusCode, 303);
    assert.match((await page(id, w.users.bob)).body, /Remove me/);
    assert.equal((await submit(`/bugs/${id}/cc`, w.users.bob, { action: 'remove' })).statusCode, 303);
    assert.match((await page(id, w.users.bob)).body, /Add me/);
  });
});
