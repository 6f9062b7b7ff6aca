/**
 * Filing a bug in the browser: products first, then only that product's releases (the ones this viewer
 * may file against) and components; the bug is filed and shown; errors keep the typed text.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const FORM = 'application/x-www-form-urlencoded';

describe(`file a bug page (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  test('an external user is offered released products, then only that product’s released versions', async () => {
    const s = await t.session(w.users.alice);
    const first = await t.request({ method: 'GET', url: '/bugs/new', headers: { cookie: s.cookie } });
    assert.equal(first.statusCode, 200);
    assert.match(first.body, />Omega</);
    assert.ok(!first.body.includes('Orion'), 'internal product not offered');
    const second = await t.request({
      method: 'GET',
      url: `/bugs/new?product=${w.products.omega.id}`,
      headers: { cookie: s.cookie },
    });
    assert.match(second.body, new RegExp(`<option value="${w.versions.omega10.id}"[^>]*>1.0<`));
    assert.ok(!second.body.includes('2.0-beta'), 'unreleased version not offered');
    assert.match(second.body, />Core</);
    const orion = await t.request({
      method: 'GET',
      url: `/bugs/new?product=${w.products.orion.id}`,
      headers: { cookie: s.cookie },
    });
    assert.match(orion.body, /Choose a product from the list/);
    assert.doesNotMatch(orion.body, />0\.1</, 'nothing of the internal product is offered');
  });

  test('the form files the bug and shows it; errors keep what was typed', async () => {
    const s = await t.session(w.users.alice);
    const fields = {
      _csrf: s.csrf,
      product_id: String(w.products.omega.id),
      version_id: String(w.versions.omega10.id),
      component_id: String(w.components.omegaUi.id),
      severity: 'major',
      summary: '   ',
      description: 'Steps: click <b>Save</b>',
      confidential: '1',
    };
    const post = (f: Record<string, string>) =>
      t.request({
        method: 'POST',
        url: '/bugs/new',
        headers: { cookie: s.cookie, 'content-type': FORM },
        payload: new URLSearchParams(f).toString(),
      });
    const blank = await post(fields);
    assert.equal(blank.statusCode, 422);
    assert.match(blank.body, /id="f-summary-error"[^>]*>summary must not be blank/);
    assert.match(blank.body, /Steps: click &lt;b>Save&lt;\/b><\/textarea>/);
    const wrongVersion = await post({
      ...fields,
      summary: 'Crash',
      version_id: String(w.versions.orion01.id),
    });
    assert.equal(wrongVersion.statusCode, 422);
    assert.match(wrongVersion.body, /id="f-version_id-error"/);
    const ok = await post({ ...fields, summary: 'Crash when saving' });
    assert.equal(ok.statusCode, 303, ok.body);
    const shown = await t.request({
      method: 'GET',
      url: String(ok.headers.location),
      headers: { cookie: s.cookie },
    });
    assert.equal(shown.statusCode, 200);
    assert.match(shown.body, /Crash when saving/);
    assert.match(shown.body, /\(confidential\)/);
    // Confidential: Bob, another customer, gets the not-found page.
    const bob = await t.session(w.users.bob);
    const hidden = await t.request({
      method: 'GET',
      url: String(ok.headers.location),
      headers: { cookie: bob.cookie },
    });
    assert.equal(hidden.statusCode, 404);
  });

  const postForm = async (cookie: string, f: Record<string, string>) =>
    t.request({
      method: 'POST',
      url: '/bugs/new',
      headers: { cookie, 'content-type': FORM, accept: 'text/html' },
      payload: new URLSearchParams(f).toString(),
    });

  test('one form: product, versions, attachment input, and the scripts that enhance it', async () => {
    const s = await t.session(w.users.alice);
    const res = await t.request({ method: 'GET', url: '/bugs/new', headers: { cookie: s.cookie } });
    assert.match(res.body, /<form method="post" action="\/bugs\/new" id="file-bug-form"/);
    assert.match(
      res.body,
      /<label for="attachment">[^<]+<\/label><input type="file" id="attachment" name="attachment"\/>/,
    );
    assert.match(res.body, /<noscript>[\s\S]*add attachments on the bug's page[\s\S]*<\/noscript>/);
    assert.match(res.body, /<script src="\/assets\/file-bug\.[0-9a-f]{16}\.js" defer><\/script>/);
    // The attachments' upload script is linked once its entry exists (a page never links a missing script).
    const upload = existsSync(new URL('../src/web/client/upload.entry.ts', import.meta.url));
    assert.equal(/<script src="\/assets\/upload\.[0-9a-f]{16}\.js" defer><\/script>/.test(res.body), upload);
    assert.match(res.body, /data-nojs/, 'the no-JS product step is there');
    // Every control has a label.
    for (const m of res.body.matchAll(/<(?:input|select|textarea)[^>]*\sid="([^"]+)"/g)) {
      assert.match(res.body, new RegExp(`<label for="${m[1]}"`), m[1]);
    }
    assert.ok(!res.body.includes('name="priority"'), 'customers do not set the priority');
    const staff = await t.session(w.users.dev);
    const dev = await t.request({ method: 'GET', url: '/bugs/new', headers: { cookie: staff.cookie } });
    assert.match(dev.body, /name="priority"/);
  });

  test('without JavaScript, choosing a product keeps what was typed and files nothing', async () => {
    const s = await t.session(w.users.alice);
    const before = (await t.request({ method: 'GET', url: '/api/v1/bugs?limit=200', as: w.users.admin })).data
      .bugs.length;
    const res = await postForm(s.cookie, {
      _csrf: s.csrf,
      product_id: String(w.products.omega.id),
      summary: 'Typed <script>x</script> before choosing',
      description: 'Long text',
      step: 'product',
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, new RegExp(`<option value="${w.versions.omega10.id}"[^>]*>1.0<`));
    assert.match(res.body, /value="Typed &lt;script&gt;x&lt;\/script&gt; before choosing"/);
    assert.match(res.body, /Long text<\/textarea>/);
    const after = (await t.request({ method: 'GET', url: '/api/v1/bugs?limit=200', as: w.users.admin })).data
      .bugs.length;
    assert.equal(after, before);
  });

  test('staff set the priority; bad severity or priority is refused beside the field; no CSRF token, no bug', async () => {
    const s = await t.session(w.users.dev);
    const fields = {
      _csrf: s.csrf,
      product_id: String(w.products.omega.id),
      version_id: String(w.versions.omegaBeta.id),
      component_id: String(w.components.omegaCore.id),
      summary: 'Filed with a priority',
      priority: 'P1',
      severity: 'minor',
    };
    const bad = await postForm(s.cookie, { ...fields, severity: 'doom', priority: 'P0' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /id="f-severity-error"/);
    assert.match(bad.body, /id="f-priority-error"/);
    assert.match(bad.body, /role="alert"/);
    const noToken = await postForm(s.cookie, { ...fields, _csrf: '' });
    assert.equal(noToken.statusCode, 403);
    const ok = await postForm(s.cookie, fields);
    assert.equal(ok.statusCode, 303, ok.body);
    const id = Number(String(ok.headers.location).split('/').pop());
    const bug = (await t.request({ method: 'GET', url: `/api/v1/bugs/${id}`, as: w.users.admin })).data;
    assert.equal(bug.priority, 'P1');
    assert.equal(bug.severity, 'minor');
    assert.equal(bug.version.id, w.versions.omegaBeta.id, 'staff may file against unreleased versions');
    // A customer's priority is ignored, not an error.
    const alice = await t.session(w.users.alice);
    const cust = await postForm(alice.cookie, {
      ...fields,
      _csrf: alice.csrf,
      version_id: String(w.versions.omega10.id),
      summary: 'Customer bug',
    });
    assert.equal(cust.statusCode, 303, cust.body);
    const cid = Number(String(cust.headers.location).split('/').pop());
    assert.equal(
      (await t.request({ method: 'GET', url: `/api/v1/bugs/${cid}`, as: w.users.admin })).data.priority,
      'P3',
    );
  });
});
