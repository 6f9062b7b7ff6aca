/**
 * The account page: signing in is required (pages redirect to sign-in and come back), the password
 * change needs the current password and keeps this session, API keys are created (shown once) and
 * revoked through forms carrying the session's CSRF token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const FORM = 'application/x-www-form-urlencoded';
const PASSWORD = 'correct horse battery';

describe(`account page (${testDbKind()})`, () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(() => t.close());

  async function session(name: string) {
    const u = await t.user({ name });
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/session',
      payload: { email: u.email, password: PASSWORD },
    });
    const cookie = `bugzot_session=${res.cookies.find((c) => c.name === 'bugzot_session')!.value}`;
    return { u, cookie, csrf: res.data.csrf_token as string };
  }
  const post = (url: string, cookie: string, fields: Record<string, string>) =>
    t.request({
      method: 'POST',
      url,
      headers: { cookie, 'content-type': FORM },
      payload: new URLSearchParams(fields).toString(),
    });

  test('without signing in, the page sends you to sign in and back', async () => {
    const res = await t.request({ method: 'GET', url: '/account', headers: { accept: 'text/html' } });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/signin?next=%2Faccount');
  });

  test('a new API key is shown once, listed by prefix afterwards, works, and can be revoked', async () => {
    const s = await session('Keyholder');
    const created = await post('/account/api-keys', s.cookie, {
      _csrf: s.csrf,
      name: 'ci <bot>',
      scope: 'read-only',
    });
    assert.equal(created.statusCode, 201, created.body);
    const key = /<code>(bzk_[\w-]+)<\/code>/.exec(created.body)?.[1];
    assert.ok(key, 'the new key is on the page');
    assert.ok(created.body.includes('ci &lt;bot>'), 'the name is escaped');
    const again = await t.request({ method: 'GET', url: '/account', headers: { cookie: s.cookie } });
    assert.ok(!again.body.includes(key!), 'the key is not shown a second time');
    assert.ok(again.body.includes(`${key!.slice(0, 10)}…`));
    const me = await t.request({
      method: 'GET',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(me.statusCode, 200);
    const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', headers: { cookie: s.cookie } });
    const id = String(list.data.api_keys.find((k: { name: string }) => k.name === 'ci <bot>').id);
    assert.ok(again.body.includes(`action="/account/api-keys/${id}/revoke"`));
    assert.equal((await post(`/account/api-keys/${id}/revoke`, s.cookie, { _csrf: 'nope' })).statusCode, 403);
    const revoked = await post(`/account/api-keys/${id}/revoke`, s.cookie, { _csrf: s.csrf });
    assert.equal(revoked.statusCode, 303);
    assert.equal(
      (await t.request({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${key}` } }))
        .statusCode,
      401,
    );
  });

  test('changing the password needs the current one; this session stays signed in', async () => {
    const s = await session('Changer');
    const wrong = await post('/account/password', s.cookie, {
      _csrf: s.csrf,
      current_password: 'not the password',
      password: 'a brand new password',
    });
    assert.equal(wrong.statusCode, 400);
    assert.match(wrong.body, /id="f-current_password-error"/);
    const ok = await post('/account/password', s.cookie, {
      _csrf: s.csrf,
      current_password: PASSWORD,
      password: 'a brand new password',
    });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.match(ok.body, /Password changed/);
    assert.equal(
      (await t.request({ method: 'GET', url: '/account', headers: { cookie: s.cookie } })).statusCode,
      200,
    );
    const signIn = await t.request({
      method: 'POST',
      url: '/api/v1/session',
      payload: { email: s.u.email, password: 'a brand new password' },
    });
    assert.equal(signIn.statusCode, 200);
  });

  test('a key with no name is refused beside the field', async () => {
    const s = await session('Nameless');
    const res = await post('/account/api-keys', s.cookie, { _csrf: s.csrf, name: '  ' });
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /id="f-name-error"/);
  });
});
