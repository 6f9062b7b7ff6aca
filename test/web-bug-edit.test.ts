/**
 * Editing a bug's fields on its page: summary, product / version / component (kept consistent),
 * severity, priority, assignee, confidential — through the same update service and its mid-air
 * collision check; errors beside the field with the typed values kept; only what the user changed is
 * applied, so re-applying after a collision never undoes somebody else's change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const FORM = 'application/x-www-form-urlencoded';

describe(`bug page field edits (${testDbKind()})`, () => {
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
  const page = async (id: number, u: TestUser) =>
    t.request({
      method: 'GET',
      url: `/bugs/${id}`,
      headers: { cookie: (await as(u)).cookie, accept: 'text/html' },
    });
  /** The change form's fields as the page rendered them (hidden, text and selected values). */
  const formOf = (html: string): Record<string, string> => {
    const form = /<form[^>]*id="bug-change-form"[\s\S]*?<\/form>/.exec(html)![0];
    const out: Record<string, string> = {};
    for (const m of form.matchAll(/<input([^>]*)>/g)) {
      const attrs = m[1]!;
      const name = /name="([^"]+)"/.exec(attrs)?.[1];
      if (!name || name === '_csrf') continue;
      if (/type="checkbox"/.test(attrs)) {
        if (/ checked/.test(attrs)) out[name] = '1';
        continue;
      }
      out[name] = (/value="([^"]*)"/.exec(attrs)?.[1] ?? '')
        .replace(/&#34;/g, '"')
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&amp;/g, '&');
    }
    for (const m of form.matchAll(/<select[^>]*name="([^"]+)"[^>]*>([\s\S]*?)<\/select>/g)) {
      out[m[1]!] =
        /<option value="([^"]*)" selected/.exec(m[2]!)?.[1] ?? /<option value="([^"]*)"/.exec(m[2]!)![1]!;
    }
    return out;
  };
  const submit = async (id: number, u: TestUser, fields: Record<string, string>) => {
    const s = await as(u);
    return t.request({
      method: 'POST',
      url: `/bugs/${id}/change`,
      headers: { cookie: s.cookie, 'content-type': FORM, accept: 'text/html' },
      payload: new URLSearchParams({ _csrf: s.csrf, ...fields }).toString(),
    });
  };
  const api = async (id: number) =>
    (await t.request({ method: 'GET', url: `/api/v1/bugs/${id}`, as: w.users.admin })).data;

  test('staff edit summary, severity, priority, assignee and confidential in one save, recorded in the history', async () => {
    const b = await w.bug('Edit me');
    const form = formOf((await page(b.id, w.users.dev)).body);
    assert.equal(form['was_summary'], 'Edit me');
    const res = await submit(b.id, w.users.dev, {
      ...form,
      summary: 'Edited <script>alert(1)</script>',
      severity: 'critical',
      priority: 'P1',
      assignee: w.users.dev.email.toUpperCase(),
      confidential: '1',
    });
    assert.equal(res.statusCode, 303, res.body);
    const bug = await api(b.id);
    assert.equal(bug.summary, 'Edited <script>alert(1)</script>');
    assert.equal(bug.severity, 'critical');
    assert.equal(bug.priority, 'P1');
    assert.equal(bug.assignee.id, w.users.dev.id);
    assert.equal(bug.confidential, true);
    const shown = await page(b.id, w.users.dev);
    assert.ok(!shown.body.includes('<script>alert(1)'), 'the summary is escaped');
    assert.match(shown.body, /severity: normal → critical/);
    assert.match(shown.body, /priority: P3 → P1/);
    // The assignee is shown for editing as an e-mail address; emptying it unassigns.
    const again = formOf(shown.body);
    assert.equal(again['assignee'], w.users.dev.email);
    assert.equal((await submit(b.id, w.users.dev, { ...again, assignee: '' })).statusCode, 303);
    assert.equal((await api(b.id)).assignee, null);
  });

  test('text that looks like markup or an entity survives the form unchanged', async () => {
    const b = await w.bug('Tom &amp; Jerry <b>"quoted"</b>');
    const shown = await page(b.id, w.users.dev);
    assert.match(shown.body, /value="Tom &amp;amp; Jerry &lt;b&gt;&#34;quoted&#34;&lt;\/b&gt;"/);
    const form = formOf(shown.body);
    assert.equal(form['summary'], 'Tom &amp; Jerry <b>"quoted"</b>');
    // Saving the untouched form changes nothing.
    assert.equal((await submit(b.id, w.users.dev, form)).statusCode, 303);
    const bug = await api(b.id);
    assert.equal(bug.summary, 'Tom &amp; Jerry <b>"quoted"</b>');
    assert.equal(bug.row_version, 1);
  });

  test('moving to another product needs its version and component: errors beside the fields, typed values kept', async () => {
    const b = await w.bug('Move me');
    const form = formOf((await page(b.id, w.users.dev)).body);
    // Without JavaScript: the product changes, the old product's version is still selected.
    const wrong = await submit(b.id, w.users.dev, {
      ...form,
      product_id: String(w.products.orion.id),
      summary: 'Move me (typed)',
    });
    assert.equal(wrong.statusCode, 422);
    assert.match(wrong.body, /id="f-version_id-error"[^>]*>version &#34;1.0&#34; is not a version of Orion/);
    assert.match(wrong.body, /role="alert"/);
    assert.match(wrong.body, /value="Move me \(typed\)"/, 'the typed summary is kept');
    // The form now offers the chosen product's versions and components.
    const offered = formOf(wrong.body);
    assert.equal(offered['product_id'], String(w.products.orion.id));
    assert.equal(offered['version_id'], String(w.versions.orion01.id));
    assert.equal(offered['component_id'], String(w.components.orionCore.id));
    assert.equal((await api(b.id)).product.id, w.products.omega.id, 'nothing was saved');
    const ok = await submit(b.id, w.users.dev, offered);
    assert.equal(ok.statusCode, 303, ok.body);
    const moved = await api(b.id);
    assert.equal(moved.product.id, w.products.orion.id);
    assert.equal(moved.version.id, w.versions.orion01.id);
    assert.equal(moved.summary, 'Move me (typed)');
  });

  test('without JavaScript, "show its versions" re-renders for the chosen product and saves nothing', async () => {
    const b = await w.bug('Step through products');
    const form = formOf((await page(b.id, w.users.dev)).body);
    const res = await submit(b.id, w.users.dev, {
      ...form,
      product_id: String(w.products.orion.id),
      comment: 'typed comment',
      step: 'product',
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, new RegExp(`<option value="${w.versions.orion01.id}"[^>]*>0.1<`));
    assert.match(res.body, /typed comment<\/textarea>/);
    assert.equal((await api(b.id)).product.id, w.products.omega.id);
  });

  test('bad values are refused beside their field and store nothing', async () => {
    const b = await w.bug('Refuse bad values');
    const form = formOf((await page(b.id, w.users.dev)).body);
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ severity: 'apocalyptic' }, 'severity', /Choose a severity/],
      [{ priority: 'P9' }, 'priority', /Choose a priority/],
      [{ assignee: 'nobody@nowhere.test' }, 'assignee', /No active user has the e-mail address/],
      [{ summary: 'x'.repeat(256) }, 'summary', /at most 255 characters/],
      [{ summary: '   ' }, 'summary', /must not be blank/],
      [{ version_id: String(w.versions.orion01.id) }, 'version_id', /not a version of Omega/],
      [{ component_id: 'abc' }, 'component_id', /Choose a component/],
      [{ duplicate_of: 'twelve' }, 'duplicate_of', /bug number/],
    ];
    for (const [change, field, message] of cases) {
      const res = await submit(b.id, w.users.dev, { ...form, ...change });
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${field}: ${res.statusCode}`);
      assert.match(res.body, new RegExp(`id="f-${field}-error"`), field);
      assert.match(res.body, message, field);
      assert.match(res.body, new RegExp(`id="f-${field}"[^>]*aria-invalid="true"`), field);
    }
    const bug = await api(b.id);
    assert.equal(bug.severity, 'normal');
    assert.equal(bug.summary, 'Refuse bad values');
    assert.equal(bug.row_version, 1);
  });

  test('a field sent twice is read once, and an oversized comment is refused, not a server error', async () => {
    const b = await w.bug('Odd forms');
    const s = await as(w.users.dev);
    const form = formOf((await page(b.id, w.users.dev)).body);
    const twice = new URLSearchParams({ _csrf: s.csrf, ...form });
    twice.append('summary', 'Second value wins');
    twice.set('summary', 'First value');
    twice.append('summary', 'Second value wins');
    const res = await t.request({
      method: 'POST',
      url: `/bugs/${b.id}/change`,
      headers: { cookie: s.cookie, 'content-type': FORM, accept: 'text/html' },
      payload: twice.toString(),
    });
    assert.equal(res.statusCode, 303, res.body);
    assert.equal((await api(b.id)).summary, 'Second value wins');
    const huge = 'x'.repeat(65536);
    for (const url of [`/bugs/${b.id}/change`, `/bugs/${b.id}/comments`]) {
      const fields = url.endsWith('change')
        ? { ...formOf((await page(b.id, w.users.dev)).body), comment: huge }
        : { comment: huge };
      const big = await t.request({
        method: 'POST',
        url,
        headers: { cookie: s.cookie, 'content-type': FORM, accept: 'text/html' },
        payload: new URLSearchParams({ _csrf: s.csrf, ...fields }).toString(),
      });
      assert.equal(big.statusCode, 400, url);
      assert.match(big.body, /id="f-comment-error"[^>]*>A comment has at most 65,535 characters/, url);
    }
  });

  test('a collision keeps my changed fields, shows theirs, and re-applying does not undo their change', async () => {
    const b = await w.bug('Collide on fields');
    const mine = formOf((await page(b.id, w.users.dev)).body);
    const theirs = await t.request({
      method: 'PATCH',
      url: `/api/v1/bugs/${b.id}`,
      as: w.users.admin,
      payload: { severity: 'blocker' },
    });
    assert.equal(theirs.statusCode, 200);
    const clash = await submit(b.id, w.users.dev, { ...mine, summary: 'My new summary' });
    assert.equal(clash.statusCode, 409);
    assert.match(clash.body, /Mid-air collision/);
    assert.match(clash.body, /severity normal → blocker/);
    const kept = formOf(clash.body);
    assert.equal(kept['summary'], 'My new summary', 'my edit is kept');
    assert.equal(kept['severity'], 'blocker', 'their change is shown, not my stale value');
    const again = await submit(b.id, w.users.dev, kept);
    assert.equal(again.statusCode, 303);
    const bug = await api(b.id);
    assert.equal(bug.summary, 'My new summary');
    assert.equal(bug.severity, 'blocker', 'their change survives');
  });

  test('a reporter may edit only the summary and mark the bug confidential; others get no field form', async () => {
    const own = await w.bug('Alice public report', {}, w.users.alice);
    const alicePage = await page(own.id, w.users.alice);
    const form = formOf(alicePage.body);
    assert.deepEqual(
      Object.keys(form)
        .filter((k) => k.startsWith('was_'))
        .sort(),
      ['was_confidential', 'was_summary'],
    );
    assert.ok(!alicePage.body.includes('name="severity"'));
    const res = await submit(own.id, w.users.alice, { ...form, summary: 'Alice renamed', confidential: '1' });
    assert.equal(res.statusCode, 303, res.body);
    const bug = await api(own.id);
    assert.equal(bug.summary, 'Alice renamed');
    assert.equal(bug.confidential, true);
    // Forging a field the form does not offer her is refused by the service.
    const forged = await submit(own.id, w.users.alice, {
      ...formOf((await page(own.id, w.users.alice)).body),
      was_severity: 'normal',
      severity: 'blocker',
    });
    assert.equal(forged.statusCode, 403);
    assert.match(forged.body, /You may not change severity/);
    assert.equal((await api(own.id)).severity, 'normal');
    // Bob, another customer, sees a public bug but gets no field form.
    const bobPage = await page(w.bugs.public.id, w.users.bob);
    assert.ok(!bobPage.body.includes('name="was_'));
  });

  test('the change form without its CSRF token is refused with the 403 page', async () => {
    const b = await w.bug('CSRF on the change form');
    const s = await as(w.users.dev);
    const res = await t.request({
      method: 'POST',
      url: `/bugs/${b.id}/change`,
      headers: { cookie: s.cookie, 'content-type': FORM, accept: 'text/html' },
      payload: new URLSearchParams({ was_summary: 'CSRF on the change form', summary: 'forged' }).toString(),
    });
    assert.equal(res.statusCode, 403);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /CSRF token/);
    assert.equal((await api(b.id)).summary, 'CSRF on the change form');
  });
});
