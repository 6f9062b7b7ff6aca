/**
 * Filing a bug in the browser: products first, then only that product's releases (the ones this viewer
 * may file against) and components; the bug is filed and shown; errors keep the typed text.
 */
import assert from 'node:assert/strict';
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
});
