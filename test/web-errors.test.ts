/**
 * Error pages for browsers: the 403 page, a generic 500 page naming only the request id (the database
 * is broken for real to cause it), the 404 page in the layout, a 401 page for a form posted after the
 * session ended; the API answers the same failures with its JSON envelope.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`error pages (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  test('a staff member on an admin page gets the friendly 403 page; the API answers 403 in JSON', async () => {
    const { cookie } = await t.session(w.users.dev);
    const page = await t.request({
      method: 'GET',
      url: '/admin/users',
      headers: { cookie, accept: 'text/html' },
    });
    assert.equal(page.statusCode, 403);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /<h1>Not allowed<\/h1>/);
    assert.match(page.body, /<main id="main">/, 'inside the layout');
    assert.match(page.body, />Dev</, 'the header still names the viewer');
    const api = await t.request({
      method: 'POST',
      url: '/api/v1/products',
      payload: { name: 'x' },
      as: w.users.dev,
      headers: { accept: 'text/html' },
    });
    assert.equal(api.statusCode, 403);
    assert.equal(api.data.error.code, 'forbidden');
  });

  test('a broken database gives the 500 page with the request id and nothing more', async () => {
    const { cookie } = await t.session(w.users.dev);
    const bug = await w.bug('Never read before the break');
    await t.db.query(sql`ALTER TABLE comments RENAME TO comments_broken`);
    try {
      const page = await t.request({
        method: 'GET',
        url: `/bugs/${bug.id}`,
        headers: { cookie, accept: 'text/html', 'x-request-id': 'req-page-500-check' },
      });
      assert.equal(page.statusCode, 500);
      assert.match(String(page.headers['content-type']), /^text\/html/);
      assert.equal(page.headers['x-request-id'], 'req-page-500-check');
      assert.match(page.body, /<h1>Something went wrong<\/h1>/);
      assert.match(page.body, /<code class="request-id">req-page-500-check<\/code>/);
      const text = page.body.replace(/<[^>]+>/g, ' ');
      for (const leak of [/comments/, /relation/, /Error/, /\.ts:\d+/, /\bat \S+ \(/]) {
        assert.doesNotMatch(text, leak, 'no detail of the failure is shown');
      }
      const api = await t.request({ method: 'GET', url: `/api/v1/bugs/${bug.id}/comments`, as: w.users.dev });
      assert.equal(api.statusCode, 500);
      assert.equal(api.data.error.code, 'internal_error');
      assert.equal(api.data.error.request_id, api.headers['x-request-id']);
    } finally {
      await t.db.query(sql`ALTER TABLE comments_broken RENAME TO comments`);
    }
    const healed = await t.request({
      method: 'GET',
      url: `/bugs/${bug.id}`,
      headers: { cookie, accept: 'text/html' },
    });
    assert.equal(healed.statusCode, 200);
  });

  test('an unknown page gets the 404 page in the layout; an unknown API route JSON', async () => {
    const { cookie } = await t.session(w.users.alice);
    const page = await t.request({
      method: 'GET',
      url: '/no/such/page',
      headers: { cookie, accept: 'text/html' },
    });
    assert.equal(page.statusCode, 404);
    assert.match(page.body, /<h1>Not found<\/h1>/);
    assert.match(page.body, />Alice</);
    const api = await t.request({ method: 'GET', url: '/api/v1/nothing', as: w.users.alice });
    assert.equal(api.statusCode, 404);
    assert.equal(api.data.error.code, 'not_found');
  });

  test('a form posted after the session ended gets a page saying to sign in again', async () => {
    const res = await t.request({
      method: 'POST',
      url: `/bugs/${w.bugs.public.id}/change`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      payload: 'comment=hello',
    });
    assert.equal(res.statusCode, 401);
    assert.match(res.body, /Please sign in again/);
    assert.match(res.body, /href="\/signin"/);
  });
});
