/**
 * Signing in, out and up in the browser's way (HTML forms, urlencoded bodies, redirects), with the CSRF
 * tokens forms need, errors beside the field, typed text kept, user text escaped, and no open redirect.
 * (End-to-end runs in a real browser come with the web UI work.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const FORM = 'application/x-www-form-urlencoded';
const PASSWORD = 'correct horse battery';
const enc = (o: Record<string, string>) => new URLSearchParams(o).toString();

describe(`sign in, out and up pages (${testDbKind()})`, () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ LOGIN_MAX_ATTEMPTS: '50' });
  });
  after(() => t.close());

  /** Opens a form page like a browser: its anonymous token cookie and the _csrf the page carries. */
  async function openForm(url: string, cookie = '') {
    const res = await t.request({ method: 'GET', url, headers: cookie ? { cookie } : {} });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const set = res.cookies.find((c) => c.name === 'bugzot_form');
    const csrf = /name="_csrf" value="([^"]*)"/.exec(res.body)?.[1] ?? '';
    return { cookie: set ? `bugzot_form=${set.value}` : cookie, csrf, body: res.body };
  }

  const post = (url: string, cookie: string, fields: Record<string, string>) =>
    t.request({ method: 'POST', url, headers: { cookie, 'content-type': FORM }, payload: enc(fields) });

  test('signing in with the form sets the session and redirects to where the user was going', async () => {
    const u = await t.user({ name: 'Formy' });
    const f = await openForm('/signin?next=/api/docs');
    const res = await post('/signin', f.cookie, {
      _csrf: f.csrf,
      email: u.email,
      password: PASSWORD,
      next: '/api/docs',
    });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/api/docs');
    const session = res.cookies.find((c) => c.name === 'bugzot_session');
    assert.ok(session?.httpOnly);
    assert.equal(session?.sameSite, 'Lax');
    const home = await t.request({
      method: 'GET',
      url: '/',
      headers: { cookie: `bugzot_session=${session!.value}` },
    });
    assert.match(home.body, /Signed in as <strong>Formy<\/strong>/);
  });

  test('a wrong password shows the error on the page and keeps the e-mail typed, never the password', async () => {
    const u = await t.user({ name: 'Typo' });
    const f = await openForm('/signin');
    const res = await post('/signin', f.cookie, { _csrf: f.csrf, email: u.email, password: 'not it at all' });
    assert.equal(res.statusCode, 401);
    assert.match(res.body, /role="alert"[^>]*>Wrong e-mail address or password\./);
    assert.ok(res.body.includes(`value="${u.email}"`));
    assert.ok(!res.body.includes('not it at all'));
  });

  test('a sign-in form without its token (or from another browser) is refused', async () => {
    const u = await t.user({ name: 'Victim' });
    const f = await openForm('/signin');
    for (const fields of <Record<string, string>[]>[
      { email: u.email, password: PASSWORD },
      { _csrf: 'x'.repeat(43), email: u.email, password: PASSWORD },
    ]) {
      const res = await post('/signin', f.cookie, fields);
      assert.equal(res.statusCode, 403);
      assert.equal(
        res.cookies.find((c) => c.name === 'bugzot_session'),
        undefined,
      );
    }
    const noCookie = await post('/signin', '', { _csrf: f.csrf, email: u.email, password: PASSWORD });
    assert.equal(noCookie.statusCode, 403);
  });

  test('after signing in, only paths on this site are followed (no open redirect)', async () => {
    const u = await t.user({ name: 'Redirected' });
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
      const f = await openForm('/signin');
      const res = await post('/signin', f.cookie, {
        _csrf: f.csrf,
        email: u.email,
        password: PASSWORD,
        next,
      });
      assert.equal(res.statusCode, 303);
      assert.equal(res.headers.location, '/');
    }
  });

  test('signing out needs the session CSRF token, then ends the session', async () => {
    const u = await t.user({ name: 'Leaving' });
    const f = await openForm('/signin');
    const signedIn = await post('/signin', f.cookie, { _csrf: f.csrf, email: u.email, password: PASSWORD });
    const cookie = `bugzot_session=${signedIn.cookies.find((c) => c.name === 'bugzot_session')!.value}`;
    const home = await openForm('/', cookie);
    assert.equal((await post('/signout', cookie, { _csrf: 'wrong' })).statusCode, 403);
    assert.equal(
      (await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie } })).statusCode,
      200,
    );
    const out = await post('/signout', cookie, { _csrf: home.csrf });
    assert.equal(out.statusCode, 303);
    assert.equal(
      (await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie } })).statusCode,
      401,
    );
  });

  test('signing up creates an external account and signs it in; user text is escaped', async () => {
    const f = await openForm('/signup');
    const email = `new.${process.pid}@example.test`;
    const name = '<script>alert(1)</script> Mallory';
    const res = await post('/signup', f.cookie, {
      _csrf: f.csrf,
      name,
      email,
      password: 'long enough password',
    });
    assert.equal(res.statusCode, 303, res.body);
    const rows = await t.db.query<{ kind: string; is_admin: boolean }>(
      sql`SELECT kind, is_admin FROM users WHERE lower(email) = lower(${email})`,
    );
    assert.deepEqual([...rows], [{ kind: 'external', is_admin: false }]);
    const cookie = `bugzot_session=${res.cookies.find((c) => c.name === 'bugzot_session')!.value}`;
    const home = await t.request({ method: 'GET', url: '/', headers: { cookie } });
    assert.ok(!home.body.includes('<script>alert(1)</script>'));
    assert.ok(home.body.includes('&lt;script>alert(1)&lt;/script> Mallory'));
  });

  test('sign-up errors stand beside their field with the typed text kept', async () => {
    const taken = await t.user({ name: 'Taken' });
    const f = await openForm('/signup');
    const short = await post('/signup', f.cookie, {
      _csrf: f.csrf,
      name: 'Sam',
      email: 'sam@example.test',
      password: 'short',
    });
    assert.equal(short.statusCode, 400);
    assert.match(short.body, /id="f-password-error"[^>]*>password must be at least 10 characters/);
    assert.ok(short.body.includes('value="sam@example.test"'));
    const dup = await post('/signup', f.cookie, {
      _csrf: f.csrf,
      name: 'Dup',
      email: taken.email.toUpperCase(),
      password: 'long enough password',
    });
    assert.equal(dup.statusCode, 409);
    assert.match(dup.body, /id="f-email-error"[^>]*>a user with e-mail .* already exists/);
    const blank = await post('/signup', f.cookie, {
      _csrf: f.csrf,
      name: '  ',
      email: 'x@example.test',
      password: 'long enough password',
    });
    assert.equal(blank.statusCode, 400);
    assert.match(blank.body, /id="f-name-error"/);
  });

  test('the API does not take form bodies (sign-in through it must be JSON)', async () => {
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/session',
      headers: { 'content-type': FORM },
      payload: 'email=a@b.c&password=whatever',
    });
    assert.equal(res.statusCode, 415);
  });
});

describe('with ALLOW_SIGNUP=false', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ALLOW_SIGNUP: 'false' });
  });
  after(() => t.close());

  test('there is no sign-up page, and the sign-in page does not offer one', async () => {
    assert.equal(
      (await t.request({ method: 'GET', url: '/signup', headers: { accept: 'text/html' } })).statusCode,
      404,
    );
    const signin = await t.request({ method: 'GET', url: '/signin' });
    assert.ok(!signin.body.includes('href="/signup"'));
  });
});
