/**
 * The admin pages over HTTP as a browser uses them: products (create, rename, release), versions,
 * components (default assignee), users (search, kind, admin flag, disable/enable); everyone but admins
 * gets the 403 page; refused forms keep what was typed with the error beside the field; every form
 * needs its CSRF token; names are escaped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const FORM = 'application/x-www-form-urlencoded';

describe(`admin pages (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  const sessions = new Map<number, { cookie: string; csrf: string }>();
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  const as = async (u: TestUser) => {
    const known = sessions.get(u.id);
    if (known) return known;
    const s = await t.session(u);
    sessions.set(u.id, s);
    return s;
  };
  const get = async (url: string, u: TestUser) =>
    t.request({ method: 'GET', url, headers: { cookie: (await as(u)).cookie, accept: 'text/html' } });
  const post = async (url: string, u: TestUser, fields: Record<string, string>, csrf = true) => {
    const s = await as(u);
    return t.request({
      method: 'POST',
      url,
      headers: { cookie: s.cookie, 'content-type': FORM, accept: 'text/html' },
      payload: new URLSearchParams({ ...(csrf ? { _csrf: s.csrf } : {}), ...fields }).toString(),
    });
  };
  const product = async (id: number) =>
    (await t.request({ method: 'GET', url: `/api/v1/products/${id}`, as: w.users.admin })).data;

  test('only admins: staff and customers get the 403 page, nobody is sent to sign in', async () => {
    for (const u of [w.users.dev, w.users.alice]) {
      for (const url of ['/admin/products', `/admin/products/${w.products.omega.id}`, '/admin/users']) {
        const res = await get(url, u);
        assert.equal(res.statusCode, 403, url);
        assert.match(String(res.headers['content-type']), /^text\/html/);
        assert.match(res.body, /<h1>Not allowed<\/h1>/);
        assert.match(res.body, /Only administrators/);
      }
      const write = await post('/admin/products', u, { name: 'Sneaky' });
      assert.equal(write.statusCode, 403);
      const flip = await post(`/admin/users/${u.id}`, u, { action: 'save', kind: 'internal', is_admin: '1' });
      assert.equal(flip.statusCode, 403);
    }
    const anon = await t.request({ method: 'GET', url: '/admin/users', headers: { accept: 'text/html' } });
    assert.equal(anon.statusCode, 303);
    assert.match(String(anon.headers.location), /^\/signin\?next=/);
    const names = (await t.request({ method: 'GET', url: '/api/v1/products', as: w.users.admin })).data;
    assert.ok(!names.products.some((p: { name: string }) => p.name === 'Sneaky'));
    assert.ok(!(await get('/', w.users.dev)).body.includes('href="/admin"'), 'no admin link for staff');
    assert.match((await get('/', w.users.admin)).body, /href="\/admin"/);
  });

  test('create a product (escaped), rename it, release it; a duplicate name is refused beside the field', async () => {
    const created = await post('/admin/products', w.users.admin, {
      name: '<script>alert(1)</script> Nova',
      description: 'New & shiny',
    });
    assert.equal(created.statusCode, 303, created.body);
    const url = String(created.headers.location).split('?')[0]!;
    const id = Number(url.split('/').pop());
    let p = await product(id);
    assert.equal(p.is_released, false, 'internal-only until released');
    const pageRes = await get(url, w.users.admin);
    assert.equal(pageRes.statusCode, 200);
    assert.ok(!pageRes.body.includes('<script>alert(1)'), 'the name is escaped everywhere');
    assert.match(pageRes.body, /&lt;script/);
    const list = await get('/admin/products', w.users.admin);
    assert.ok(!list.body.includes('<script>alert(1)'));
    assert.match(list.body, /internal-only/);

    const renamed = await post(url, w.users.admin, { name: 'Nova', description: 'Shiny', is_released: '1' });
    assert.equal(renamed.statusCode, 303);
    p = await product(id);
    assert.equal(p.name, 'Nova');
    assert.equal(p.is_released, true);
    assert.match(
      (await get(String(renamed.headers.location), w.users.admin)).body,
      /role="status"[^>]*>Saved/,
    );
    // An external user now sees it.
    const seen = await t.request({ method: 'GET', url: `/api/v1/products/${id}`, as: w.users.alice });
    assert.equal(seen.statusCode, 200);

    const dup = await post('/admin/products', w.users.admin, { name: 'omega', description: 'typed text' });
    assert.equal(dup.statusCode, 409);
    assert.match(dup.body, /id="f-name-error"[^>]*>a product named &#34;omega&#34; already exists/);
    assert.match(dup.body, /typed text<\/textarea>/);
    const blank = await post(url, w.users.admin, { name: '   ', description: 'kept' });
    assert.equal(blank.statusCode, 400);
    assert.match(blank.body, /id="f-name-error"[^>]*>name must not be blank/);
    const long = await post('/admin/products', w.users.admin, { name: 'x'.repeat(65) });
    assert.equal(long.statusCode, 400);
    assert.match(long.body, /at most 64 characters/);
    assert.equal((await product(id)).name, 'Nova', 'nothing changed by refused forms');
  });

  test('versions: add one unreleased, release it, rename to a taken name is refused', async () => {
    const base = `/admin/products/${w.products.omega.id}`;
    const add = await post(`${base}/versions`, w.users.admin, { name: '3.0' });
    assert.equal(add.statusCode, 303, add.body);
    let v = (await product(w.products.omega.id)).versions.find((x: { name: string }) => x.name === '3.0');
    assert.equal(v.is_released, false);
    const alice = await t.request({
      method: 'GET',
      url: `/api/v1/products/${w.products.omega.id}`,
      as: w.users.alice,
    });
    assert.ok(!alice.data.versions.some((x: { name: string }) => x.name === '3.0'), 'unreleased: hidden');
    const rel = await post(`/admin/versions/${v.id}`, w.users.admin, {
      name: '3.0',
      is_released: '1',
      sort_key: '30',
    });
    assert.equal(rel.statusCode, 303);
    assert.equal(rel.headers.location, `${base}?saved=version`);
    v = (await product(w.products.omega.id)).versions.find((x: { name: string }) => x.name === '3.0');
    assert.equal(v.is_released, true);
    assert.equal(v.sort_key, 30);
    const taken = await post(`/admin/versions/${v.id}`, w.users.admin, { name: '1.0', is_released: '1' });
    assert.equal(taken.statusCode, 409);
    assert.match(taken.body, new RegExp(`id="v${v.id}-name-error"`));
    assert.match(taken.body, new RegExp(`id="v${v.id}-name"[^>]*value="1.0"`), 'typed name kept');
    const badOrder = await post(`/admin/versions/${v.id}`, w.users.admin, { name: '3.0', sort_key: 'soon' });
    assert.equal(badOrder.statusCode, 400);
    assert.match(badOrder.body, new RegExp(`id="v${v.id}-sort_key-error"`));
    const missing = await post('/admin/versions/999999', w.users.admin, { name: 'x' });
    assert.equal(missing.statusCode, 404);
  });

  test('components: add with a default assignee by e-mail, unknown e-mail refused, change it', async () => {
    const base = `/admin/products/${w.products.omega.id}`;
    const bad = await post(`${base}/components`, w.users.admin, {
      name: 'Docs',
      default_assignee: 'ghost@x.test',
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /id="nc-default_assignee-error"[^>]*>No active user/);
    assert.match(bad.body, /id="nc-name"[^>]*value="Docs"/);
    const ok = await post(`${base}/components`, w.users.admin, {
      name: 'Docs',
      default_assignee: w.users.dev.email,
    });
    assert.equal(ok.statusCode, 303, ok.body);
    const c = (await product(w.products.omega.id)).components.find(
      (x: { name: string }) => x.name === 'Docs',
    );
    assert.equal(c.default_assignee_id, w.users.dev.id);
    const shown = await get(base, w.users.admin);
    assert.match(shown.body, new RegExp(`id="c${c.id}-default_assignee"[^>]*value="${w.users.dev.email}"`));
    const cleared = await post(`/admin/components/${c.id}`, w.users.admin, {
      name: 'Documentation',
      description: 'Manuals',
      default_assignee: '',
    });
    assert.equal(cleared.statusCode, 303);
    const after = (await product(w.products.omega.id)).components.find((x: { id: number }) => x.id === c.id);
    assert.equal(after.name, 'Documentation');
    assert.equal(after.default_assignee_id, null);
  });

  test('users: search, make internal and admin, disable (ends sessions, revokes keys) and enable', async () => {
    const carol = await t.user({ kind: 'external', name: 'Carol' });
    const renamed = await t.request({
      method: 'PATCH',
      url: `/api/v1/users/${carol.id}`,
      as: w.users.admin,
      payload: { name: 'Carol <b>Customer</b>' },
    });
    assert.equal(renamed.statusCode, 200);
    const carolSession = await t.session(carol);
    const list = await get(`/admin/users?q=${encodeURIComponent('carol')}`, w.users.admin);
    assert.equal(list.statusCode, 200);
    assert.match(list.body, /Carol &lt;b>Customer&lt;\/b>/);
    assert.ok(!list.body.includes('Alice'), 'the search narrows the list');
    const save = await post(`/admin/users/${carol.id}`, w.users.admin, {
      action: 'save',
      kind: 'internal',
      is_admin: '1',
      back: '/admin/users?q=carol',
    });
    assert.equal(save.statusCode, 303);
    assert.equal(save.headers.location, '/admin/users?q=carol&saved=1');
    let me = await t.request({ method: 'GET', url: '/api/v1/me', as: carol });
    assert.equal(me.data.kind, 'internal');
    assert.equal(me.data.is_admin, true);

    const off = await post(`/admin/users/${carol.id}`, w.users.admin, {
      action: 'disable',
      back: 'https://evil.test/',
    });
    assert.equal(off.statusCode, 303);
    assert.equal(off.headers.location, '/admin/users?saved=1', 'never redirected off-site');
    me = await t.request({ method: 'GET', url: '/api/v1/me', as: carol });
    assert.equal(me.statusCode, 401, 'the API key stops working');
    const cookieMe = await t.request({
      method: 'GET',
      url: '/api/v1/me',
      headers: { cookie: carolSession.cookie },
    });
    assert.equal(cookieMe.statusCode, 401, 'the session ended');
    assert.match((await get('/admin/users?q=carol', w.users.admin)).body, /disabled/);

    const on = await post(`/admin/users/${carol.id}`, w.users.admin, { action: 'enable' });
    assert.equal(on.statusCode, 303);
    me = await t.request({ method: 'GET', url: '/api/v1/me', as: carol });
    assert.equal(me.statusCode, 401, 'keys stay revoked after re-enabling');
    const again = await t.session(carol);
    assert.ok(again.cookie, 'but the user may sign in again');
  });

  test('create a user: refused input keeps what was typed (never the password); the account can sign in', async () => {
    const short = await post('/admin/users', w.users.admin, {
      name: 'Erin <i>Eng</i>',
      email: 'erin@example.test',
      kind: 'internal',
      password: 'short',
    });
    assert.equal(short.statusCode, 400);
    assert.match(short.body, /id="f-password-error"[^>]*>password must be at least 10 characters/);
    assert.match(short.body, /id="f-name"[^>]*value="Erin &lt;i&gt;Eng&lt;\/i&gt;"/);
    assert.ok(!short.body.includes('value="short"'), 'the password is not sent back');
    const taken = await post('/admin/users', w.users.admin, {
      name: 'Alice again',
      email: w.users.alice.email.toUpperCase(),
      kind: 'external',
      password: 'long enough password',
    });
    assert.equal(taken.statusCode, 409);
    assert.match(taken.body, /id="f-email-error"/);
    const longName = await post('/admin/users', w.users.admin, {
      name: 'n'.repeat(121),
      email: 'long@example.test',
      kind: 'external',
      password: 'long enough password',
    });
    assert.equal(longName.statusCode, 400);
    assert.match(longName.body, /id="f-name-error"/);
    const ok = await post('/admin/users', w.users.admin, {
      name: 'Erin',
      email: 'erin@example.test',
      kind: 'internal',
      is_admin: '1',
      password: 'long enough password',
    });
    assert.equal(ok.statusCode, 303, ok.body);
    assert.equal(ok.headers.location, '/admin/users?q=erin%40example.test&saved=1');
    const signin = await t.request({
      method: 'POST',
      url: '/api/v1/session',
      payload: { email: 'erin@example.test', password: 'long enough password' },
    });
    assert.equal(signin.statusCode, 200);
    assert.equal(signin.data.user.kind, 'internal');
    assert.equal(signin.data.user.is_admin, true);
    const noToken = await post('/admin/users', w.users.admin, { name: 'X', email: 'x@example.test' }, false);
    assert.equal(noToken.statusCode, 403);
    const notAdmin = await post('/admin/users', w.users.dev, {
      name: 'Mallory',
      email: 'mallory@example.test',
      kind: 'internal',
      is_admin: '1',
      password: 'long enough password',
    });
    assert.equal(notAdmin.statusCode, 403);
  });

  test('an admin cannot disable themselves; bad actions are refused; every form needs the CSRF token', async () => {
    const self = await post(`/admin/users/${w.users.admin.id}`, w.users.admin, { action: 'disable' });
    assert.equal(self.statusCode, 403);
    assert.match(self.body, /may not disable your own account/);
    const bad = await post(`/admin/users/${w.users.bob.id}`, w.users.admin, {
      action: 'save',
      kind: 'martian',
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /role="alert"/);
    const forms: [string, Record<string, string>][] = [
      ['/admin/products', { name: 'No token' }],
      [`/admin/products/${w.products.omega.id}`, { name: 'No token' }],
      [`/admin/products/${w.products.omega.id}/versions`, { name: 'No token' }],
      [`/admin/versions/${w.versions.omega10.id}`, { name: 'No token' }],
      [`/admin/products/${w.products.omega.id}/components`, { name: 'No token' }],
      [`/admin/components/${w.components.omegaCore.id}`, { name: 'No token' }],
      [`/admin/users/${w.users.bob.id}`, { action: 'disable' }],
    ];
    for (const [url, fields] of forms) {
      const res = await post(url, w.users.admin, fields, false);
      assert.equal(res.statusCode, 403, url);
      assert.match(res.body, /CSRF token/, url);
    }
    const p = await product(w.products.omega.id);
    assert.equal(p.name, 'Omega');
    const bob = await t.request({ method: 'GET', url: '/api/v1/me', as: w.users.bob });
    assert.equal(bob.statusCode, 200, 'Bob was not disabled');
  });
});
