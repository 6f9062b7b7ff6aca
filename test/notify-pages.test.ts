/**
 * The email preferences page (matrix, own changes, watches) and the admin mail page (failed mails and
 * their retry), driven as a browser would: session cookie, CSRF field, form posts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { enqueue } from '../src/jobs/index.ts';
import { sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';

describe('email preferences and admin mail pages', () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp({ NOTIFY_BATCH_SECONDS: '0' });
    w = await world(t);
  });
  after(() => t.close());

  async function page(as: TestUser, method: 'GET' | 'POST', url: string, form?: Record<string, string>) {
    const s = await t.session(as);
    const body = form ? new URLSearchParams({ _csrf: s.csrf, ...form }).toString() : undefined;
    return t.app.inject({
      method,
      url,
      headers: {
        cookie: s.cookie,
        accept: 'text/html',
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(body ? { payload: body } : {}),
    });
  }

  test('the preferences page shows the matrix and saves it (an unticked box turns a cell off)', async () => {
    const bob = w.users.bob;
    const res = await page(bob, 'GET', '/preferences/email');
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /name="m\.cc\.comment" value="on" checked/);
    assert.match(res.body, /href="\/preferences\/email"/, 'the navigation links here');
    const form: Record<string, string> = {};
    for (const r of ['reporter', 'assignee', 'cc', 'watcher']) {
      for (const e of ['filed', 'status', 'resolved', 'comment', 'assignee', 'attachment', 'cc', 'other']) {
        if (!(r === 'cc' && e === 'comment')) form[`m.${r}.${e}`] = 'on';
      }
    }
    form['mail_own_changes'] = 'on';
    const saved = await page(bob, 'POST', '/preferences/email', form);
    assert.equal(saved.statusCode, 200, saved.body);
    assert.match(saved.body, /Preferences saved/);
    const api = await t.request({ method: 'GET', url: '/api/v1/me/email-preferences', as: bob });
    assert.equal(api.data.matrix.cc.comment, false);
    assert.equal(api.data.matrix.cc.status, true);
    assert.equal(api.data.mail_own_changes, true);
  });

  test('a form without the CSRF token is refused and changes nothing', async () => {
    const s = await t.session(w.users.alice);
    const res = await t.app.inject({
      method: 'POST',
      url: '/preferences/email',
      headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      payload: 'mail_own_changes=on',
    });
    assert.equal(res.statusCode, 403);
    const api = await t.request({ method: 'GET', url: '/api/v1/me/email-preferences', as: w.users.alice });
    assert.equal(api.data.mail_own_changes, false);
  });

  test('watching: products and components the viewer may see; others refused with a form error', async () => {
    const alice = w.users.alice;
    const form = await page(alice, 'GET', '/preferences/email');
    assert.match(form.body, /Omega \/ Core/);
    assert.doesNotMatch(form.body, /Orion/, 'an unreleased product is not offered to a customer');
    const add = await page(alice, 'POST', '/preferences/email/watches', {
      target: `c:${w.products.omega.id}:${w.components.omegaUi.id}`,
    });
    assert.equal(add.statusCode, 303);
    const shown = await page(alice, 'GET', '/preferences/email');
    assert.match(shown.body, /Omega \/ UI/);
    const hidden = await page(alice, 'POST', '/preferences/email/watches', {
      target: `p:${w.products.orion.id}`,
    });
    assert.equal(hidden.statusCode, 422);
    assert.match(hidden.body, /product \d+ not found/);
    const wrongPair = await page(alice, 'POST', '/preferences/email/watches', {
      target: `c:${w.products.omega.id}:${w.components.orionCore.id}`,
    });
    assert.equal(wrongPair.statusCode, 422);
    const junk = await page(alice, 'POST', '/preferences/email/watches', { target: 'x' });
    assert.equal(junk.statusCode, 400);
    const api = await t.request({ method: 'GET', url: '/api/v1/me/watches', as: alice });
    assert.equal(api.data.watches.length, 1);
    const del = await page(alice, 'POST', `/preferences/email/watches/${api.data.watches[0].id}/delete`, {});
    assert.equal(del.statusCode, 303);
    const others = await page(
      w.users.bob,
      'POST',
      `/preferences/email/watches/${api.data.watches[0].id}/delete`,
      {},
    );
    assert.equal(others.statusCode, 404, 'someone else’s watch is not found');
  });

  test('the preferences API validates its input', async () => {
    const bad = await t.request({
      method: 'PUT',
      url: '/api/v1/me/email-preferences',
      payload: { matrix: { boss: { comment: false } } },
      as: w.users.dev,
    });
    assert.equal(bad.statusCode, 400);
    const badType = await t.request({
      method: 'PUT',
      url: '/api/v1/me/email-preferences',
      payload: { mail_own_changes: 'yes' },
      as: w.users.dev,
    });
    assert.equal(badType.statusCode, 400);
    const anon = await t.request({ method: 'GET', url: '/api/v1/me/email-preferences' });
    assert.equal(anon.statusCode, 401);
    const dup = await t.request({
      method: 'POST',
      url: '/api/v1/me/watches',
      payload: { product_id: w.products.omega.id },
      as: w.users.dev,
    });
    assert.equal(dup.statusCode, 201);
    const again = await t.request({
      method: 'POST',
      url: '/api/v1/me/watches',
      payload: { product_id: w.products.omega.id },
      as: w.users.dev,
    });
    assert.equal(again.statusCode, 422);
    assert.equal(again.data.error.code, 'already_watching');
  });

  test('admins see failed mails on /admin/mail and retry them; others may not', async () => {
    const id = await enqueue(t.db, {
      kind: 'mail.send',
      payload: { userId: w.users.bob.id, bugId: w.bugs.public.id },
    });
    await t.db.query(
      sql`UPDATE jobs SET state = 'failed', attempts = 7, last_error = '451 Try again later' WHERE id = ${id}`,
    );
    const denied = await page(w.users.dev, 'GET', '/admin/mail');
    assert.equal(denied.statusCode, 403);
    const res = await page(w.users.admin, 'GET', '/admin/mail');
    assert.equal(res.statusCode, 200);
    assert.match(
      res.body,
      new RegExp(`mail to ${w.users.bob.email.replace(/\./g, '\\.')} about bug ${w.bugs.public.id}`),
    );
    assert.match(res.body, /451 Try again later/);
    const deniedRetry = await page(w.users.dev, 'POST', `/admin/mail/jobs/${id}/retry`, {});
    assert.equal(deniedRetry.statusCode, 403);
    const retry = await page(w.users.admin, 'POST', `/admin/mail/jobs/${id}/retry`, {});
    assert.equal(retry.statusCode, 303);
    assert.equal(retry.headers.location, `/admin/mail?retried=${id}`);
    const [job] = await t.db.query<{ state: string; attempts: number }>(
      sql`SELECT state, attempts FROM jobs WHERE id = ${id}`,
    );
    assert.deepEqual({ ...job }, { state: 'pending', attempts: 0 });
  });
});
