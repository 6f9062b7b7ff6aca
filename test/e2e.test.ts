// bugzot-test: once
/**
 * End to end in a real browser: Debian's Chromium (playwright-core) against a real `bugzot serve`
 * process on the embedded database. A visitor signs up and signs in (also with the keyboard only),
 * files a bug choosing a product and one of its versions, comments; staff take it NEW -> ASSIGNED ->
 * RESOLVED FIXED and the history shows interleaved with the comments; a second browser context runs
 * into a mid-air collision and re-applies its edit; `<script>` in a summary and a comment stays text;
 * an external user gets the 404 page for a confidential bug; axe-core finds no serious or critical
 * accessibility violation on the main pages (light and dark), each of which is saved as a screenshot
 * under test-output/.
 *
 * Runs once (PGlite pass): the database engine is covered by the HTTP tests; this file covers the browser.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  changeBug,
  choices,
  chooseProduct,
  FOCUSED,
  formatViolations,
  launchBrowser,
  pageWeight,
  screenshot,
  seriousAxeViolations,
  shownStatus,
  signIn as signInAs,
  tabTo,
  timeline,
} from './helpers/browser.ts';
import { apiAs, type E2eServer, PASSWORD, startServer } from './helpers/server.ts';

const ADMIN = { email: 'admin@e2e.test', name: 'Ada Admin', kind: 'admin' as const };
const DEV = { email: 'dev@e2e.test', name: 'Dana Developer', kind: 'internal' as const };
const VISITOR = { email: 'vic.visitor@example.test', name: 'Vic Visitor' };

let server: E2eServer;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** Every dialog, page error and console error or warning of every page (none is expected). */
const incidents: string[] = [];
/** The messages of every dialog any page opened (alert, confirm, prompt). */
const dialogs: string[] = [];
let confidentialBugId = 0;
/** Omega's ids, for bugs made over the API. */
const omegaIds = { product: 0, version: 0, component: 0 };
/** The JSON API signed in as the admin. */
let adminApi: Awaited<ReturnType<typeof apiAs>>;
/** What each main page weighs (measured by the accessibility test). */
const weights: ({ path: string } & Awaited<ReturnType<typeof pageWeight>>)[] = [];
/** The bug the visitor files (set by the filing test). */
let filedBugId = 0;

before(async () => {
  server = await startServer([ADMIN, DEV]);
  type Created = { id: number };
  const admin = await apiAs(server.url, ADMIN.email);
  adminApi = admin;
  const omega = await admin<Created>('POST', '/products', { name: 'Omega', is_released: true });
  const omega10 = await admin<Created>('POST', `/products/${omega.id}/versions`, {
    name: '1.0',
    is_released: true,
  });
  await admin('POST', `/products/${omega.id}/versions`, { name: '1.1', is_released: true });
  await admin('POST', `/products/${omega.id}/versions`, { name: '2.0-beta', is_released: false });
  const omegaCore = await admin<Created>('POST', `/products/${omega.id}/components`, { name: 'Core' });
  Object.assign(omegaIds, { product: omega.id, version: omega10.id, component: omegaCore.id });
  await admin('POST', `/products/${omega.id}/components`, { name: 'Reports' });
  const zeta = await admin<Created>('POST', '/products', { name: 'Zeta', is_released: true });
  const zeta7 = await admin<Created>('POST', `/products/${zeta.id}/versions`, {
    name: '7.3',
    is_released: true,
  });
  const zetaEngine = await admin<Created>('POST', `/products/${zeta.id}/components`, { name: 'Engine' });
  const dev = await apiAs(server.url, DEV.email);
  const secret = await dev<Created>('POST', '/bugs', {
    product_id: zeta.id,
    version_id: zeta7.id,
    component_id: zetaEngine.id,
    summary: 'Confidential zebra leak',
    confidential: true,
  });
  confidentialBugId = secret.id;
  browser = await launchBrowser();
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await server?.stop();
});

/** Signs in through the form on this test's server. */
const signIn = (page: Page, email: string) => signInAs(page, server.url, email);

/** A fresh browser context (its own cookies: one person) and a page that records every incident. */
async function person(opts: { javaScript?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width: 1200, height: 900 },
    javaScriptEnabled: opts.javaScript ?? true,
  });
  contexts.push(context);
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.on('dialog', (d) => {
    incidents.push(`dialog (${d.type()}) on ${page.url()}: ${d.message()}`);
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (err) => incidents.push(`page error on ${page.url()}: ${err.message}`));
  // A failed stylesheet, script or image is an incident; a 401/404/409 document is an expected answer
  // (Chrome logs both as "Failed to load resource", so those lines are judged here by the response).
  page.on('response', (r) => {
    if (r.status() >= 400 && r.request().resourceType() !== 'document')
      incidents.push(`${r.status()} for ${r.request().resourceType()} ${r.url()} on ${page.url()}`);
  });
  page.on('requestfailed', (r) => {
    // A page's own lookup (similar bugs while typing) is cancelled when superseded or when the form is
    // sent: that is by design. A stylesheet or script that fails is not.
    const aborted = r.failure()?.errorText === 'net::ERR_ABORTED';
    if (aborted && ['fetch', 'xhr'].includes(r.resourceType())) return;
    incidents.push(`request failed: ${r.url()} on ${page.url()}: ${r.failure()?.errorText}`);
  });
  page.on('console', (m) => {
    if (m.text().startsWith('Failed to load resource')) return;
    if (m.type() === 'error' || m.type() === 'warning')
      incidents.push(`console ${m.type()} on ${page.url()}: ${m.text()}`);
  });
  return page;
}

test('a visitor signs up: an external account is created and signed in', async () => {
  const page = await person();
  await page.goto(`${server.url}/`);
  await page.getByRole('banner').getByRole('link', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'Sign up' }).click();
  assert.equal(new URL(page.url()).pathname, '/signup');
  await page.getByLabel('Your name').fill(VISITOR.name);
  await page.getByLabel('E-mail address').fill(VISITOR.email);
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(`${server.url}/`);
  assert.ok(await page.getByRole('link', { name: VISITOR.name }).isVisible(), 'header shows the new user');
  assert.ok(await page.getByRole('button', { name: 'Sign out' }).isVisible());
  // Self sign-up makes an external, non-admin account.
  const { users } = await adminApi<{ users: { email: string; kind: string; is_admin: boolean }[] }>(
    'GET',
    `/users?q=${encodeURIComponent(VISITOR.email)}`,
  );
  assert.deepEqual(
    users.map((u) => [u.email, u.kind, u.is_admin]),
    [[VISITOR.email, 'external', false]],
  );
  // External: the confidential bug filed by staff is not among what the dashboard counts or lists.
  assert.doesNotMatch(await page.locator('main').innerText(), /zebra/i);
});

test('sign-in works from the keyboard alone: Tab to the link and fields, Enter to follow and submit', async () => {
  const page = await person();
  await page.goto(`${server.url}/`);
  // The first stop is the skip link; it moves to the content.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(FOCUSED), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal(new URL(page.url()).hash, '#main');
  await page.keyboard.press('Shift+Tab');
  await tabTo(page, 'Sign in');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/signin/);
  await tabTo(page, 'E-mail address');
  await page.keyboard.type(VISITOR.email);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(FOCUSED), 'Password', 'Tab goes on to the password');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.waitForURL(`${server.url}/`);
  assert.ok(await page.getByRole('link', { name: VISITOR.name }).isVisible(), 'signed in');
});

test('a wrong password is refused on the page, with the address kept', async () => {
  const page = await person();
  await page.goto(`${server.url}/signin`);
  await page.getByLabel('E-mail address').fill(VISITOR.email);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  assert.equal(new URL(page.url()).pathname, '/signin');
  assert.equal(await page.getByLabel('E-mail address').inputValue(), VISITOR.email);
  assert.equal(await page.getByLabel('Password').inputValue(), '', 'the password is never sent back');
});

test('a signed-up visitor files a bug, choosing a product and then one of its released versions', async () => {
  const page = await person();
  await signIn(page, VISITOR.email);
  await page.getByRole('link', { name: 'File a bug' }).first().click();
  await chooseProduct(page, 'Zeta', '7.3');
  await chooseProduct(page, 'Omega', '1.1');
  // Only Omega's versions an external user may file against: released ones, not 2.0-beta nor Zeta's 7.3.
  assert.deepEqual(await choices(page, /^Version/), ['1.0', '1.1']);
  assert.deepEqual(await choices(page, 'Component'), ['Core', 'Reports']);
  const version = page.getByLabel(/^Version/);
  await version.selectOption({ label: '1.1' });
  await page.getByLabel('Component').selectOption({ label: 'Reports' });
  await page.getByLabel('Severity').selectOption('major');
  await page.getByLabel('Summary').fill('Export to CSV drops the last row');
  await page.getByLabel(/^Description/).fill('Export any report with 3 rows: the file has 2.');
  await screenshot(page, 'file-bug-filled');
  await Promise.all([
    page.waitForURL(/\/bugs\/\d+$/),
    page.getByRole('button', { name: 'File bug' }).click(),
  ]);

  filedBugId = Number(new URL(page.url()).pathname.split('/').pop());
  assert.ok(filedBugId > 0);
  assert.equal(
    (await page.locator('h1').innerText()).trim(),
    `Bug ${filedBugId}: Export to CSV drops the last row`,
  );
  const fields = await page.locator('dl').first().innerText();
  for (const expected of [/Omega/, /\b1\.1\b/, /Reports/, /major/, new RegExp(VISITOR.name)]) {
    assert.match(fields, expected);
  }
  assert.equal(await shownStatus(page), 'NEW');
  assert.match(await page.locator('main').innerText(), /Export any report with 3 rows: the file has 2\./);

  // The bug is in the list, and the list's link leads to it.
  await page.getByRole('link', { name: 'Bugs', exact: true }).click();
  await page.getByRole('link', { name: 'Export to CSV drops the last row' }).click();
  await page.waitForURL(`${server.url}/bugs/${filedBugId}`);
});

test('a product chosen before the page’s script has run still gets its versions and components', async () => {
  const page = await person();
  await signIn(page, VISITOR.email);
  // Hold the page's script back until the product is chosen: on a slow connection or a busy machine a
  // person can pick a product before the script is wired, and no change handler sees that choice.
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  await page.route('**/assets/file-bug.*.js', async (route) => {
    await held;
    await route.continue();
  });
  await page.goto(`${server.url}/bugs/new`, { waitUntil: 'commit' });
  await page.getByLabel('Product', { exact: true }).selectOption({ label: 'Omega' });
  assert.deepEqual(await choices(page, /^Version/), [], 'no versions before the script has run');
  release();
  await page
    .locator('select[name=version_id] option', { hasText: /^\s*1\.1\s*$/ })
    .waitFor({ state: 'attached' });
  assert.deepEqual(await choices(page, /^Version/), ['1.0', '1.1']);
  assert.deepEqual(await choices(page, 'Component'), ['Core', 'Reports']);
  assert.equal(await page.getByRole('button', { name: /show its versions/i }).count(), 0);
  await page.unroute('**/assets/file-bug.*.js');
});

test('without JavaScript, filing still works: the form comes back with the chosen product’s versions', async () => {
  const page = await person({ javaScript: false });
  await signIn(page, VISITOR.email);
  await page.goto(`${server.url}/bugs/new`);
  // The summary first: the product button submits the form, and the browser holds it back while a
  // required field is empty (the button lacks formnovalidate; reported).
  await page.getByLabel('Summary').fill('Engine stalls without JavaScript');
  await chooseProduct(page, 'Zeta', '7.3');
  assert.deepEqual(await choices(page, /^Version/), ['7.3']);
  await chooseProduct(page, 'Omega', '1.1');
  assert.deepEqual(await choices(page, /^Version/), ['1.0', '1.1']);
  assert.equal(
    await page.getByLabel('Summary').inputValue(),
    'Engine stalls without JavaScript',
    'typed text kept',
  );
  await page.getByLabel(/^Version/).selectOption({ label: '1.0' });
  await Promise.all([
    page.waitForURL(/\/bugs\/\d+$/),
    page.getByRole('button', { name: 'File bug' }).click(),
  ]);
  assert.match(await page.locator('h1').innerText(), /Engine stalls without JavaScript/);
  assert.match(await page.locator('dl').first().innerText(), /Omega[\s\S]*1\.0/);
});

test('the reporter comments; staff take the bug NEW -> ASSIGNED -> RESOLVED FIXED; the history interleaves', async () => {
  assert.ok(filedBugId, 'needs the bug filed by the previous test');
  const visitor = await person();
  await signIn(visitor, VISITOR.email);
  await visitor.goto(`${server.url}/bugs/${filedBugId}`);
  // The external reporter may not take staff steps: no ASSIGNED among their choices.
  const reporterChoices = await visitor.locator('select[name=status] option').allInnerTexts();
  assert.ok(!reporterChoices.includes('ASSIGNED'), `reporter offered: ${reporterChoices.join(', ')}`);
  await changeBug(visitor, { comment: 'It happens with every report, not just large ones.' });
  assert.match(
    await visitor.locator('main').innerText(),
    /It happens with every report, not just large ones\./,
  );

  const dev = await person();
  await signIn(dev, DEV.email);
  await dev.goto(`${server.url}/bugs/${filedBugId}`);
  await changeBug(dev, { status: 'ASSIGNED', comment: 'Taking this one.' });
  assert.equal(await shownStatus(dev), 'ASSIGNED');
  await changeBug(dev, {
    status: 'RESOLVED',
    resolution: 'FIXED',
    comment: 'Fixed in 1.2: the loop stopped one short.',
  });
  assert.equal(await shownStatus(dev), 'RESOLVED FIXED');

  // The reporter sees the whole history, comments and changes in time order.
  await visitor.goto(`${server.url}/bugs/${filedBugId}`);
  assert.equal(await shownStatus(visitor), 'RESOLVED FIXED');
  const items = await timeline(visitor);
  const find = (re: RegExp) => {
    const at = items.findIndex((t) => re.test(t));
    assert.ok(at >= 0, `no activity entry matches ${re}:\n${items.join('\n')}`);
    return at;
  };
  const order = [
    find(/Vic Visitor commented.*every report/),
    find(/status: NEW → ASSIGNED/),
    find(/Dana Developer commented.*Taking this one/),
    find(/status: ASSIGNED → RESOLVED/),
    find(/Dana Developer commented.*Fixed in 1\.2/),
  ];
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    order,
    `activity out of order:\n${items.join('\n')}`,
  );
  assert.match(items[find(/status: ASSIGNED → RESOLVED/)]!, /resolution: \(none\) → FIXED/);
  assert.match(items[find(/status: NEW → ASSIGNED/)]!, /Dana Developer changed/);
  await screenshot(visitor, 'bug-history');
});

test('commenting on a bug works from the keyboard alone', async () => {
  assert.ok(filedBugId, 'needs the bug filed earlier');
  const page = await person();
  await signIn(page, VISITOR.email);
  await page.goto(`${server.url}/bugs/${filedBugId}`);
  await tabTo(page, 'Comment');
  await page.keyboard.type('Confirmed fixed here, thanks (typed without a mouse).');
  await tabTo(page, /^Save/);
  await Promise.all([page.waitForEvent('load'), page.keyboard.press('Enter')]);
  const items = await timeline(page);
  assert.match(items.at(-1) ?? '', /Vic Visitor commented.*typed without a mouse/);
});

test('staff typing part of a name get matching people offered as assignee, and the pick is saved', async () => {
  assert.ok(filedBugId, 'needs the bug filed by an earlier test');
  const dev = await person();
  await signIn(dev, DEV.email);
  await dev.goto(`${server.url}/bugs/${filedBugId}`);
  const field = dev.getByLabel(/^Assignee/);
  await field.fill('');
  await field.pressSequentially('dana', { delay: 30 });
  // Only matching, active people: Dana by her name, nobody else.
  const offered = dev.locator('#assignee-suggestions option');
  await dev.locator('#assignee-suggestions option[value="dev@e2e.test"]').waitFor({ state: 'attached' });
  assert.deepEqual(await offered.evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).label)), [
    'Dana Developer',
  ]);
  await field.fill('dev@e2e.test');
  await Promise.all([dev.waitForEvent('load'), dev.getByRole('button', { name: 'Save' }).click()]);
  assert.match((await timeline(dev)).at(-1) ?? '', /assignee: .*→ Dana Developer|assignee: .*dev@e2e\.test/);
});

test('an admin typing a component’s default assignee gets matching people offered, and the pick is saved', async () => {
  const admin = await person();
  await signIn(admin, ADMIN.email);
  await admin.goto(`${server.url}/admin/products/${omegaIds.product}`);
  await admin.locator('#nc-name').fill('Exports');
  const field = admin.locator('#nc-default_assignee');
  await field.pressSequentially('dana', { delay: 30 });
  await admin.locator('#user-suggestions option[value="dev@e2e.test"]').waitFor({ state: 'attached' });
  assert.deepEqual(
    await admin
      .locator('#user-suggestions option')
      .evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).label)),
    ['Dana Developer'],
  );
  await field.fill('dev@e2e.test');
  await Promise.all([
    admin.waitForEvent('load'),
    admin.getByRole('button', { name: 'Add component' }).click(),
  ]);
  // The new component's own form shows its default assignee.
  const saved = admin.locator('input[name="default_assignee"]');
  const values = await saved.evaluateAll((is) => is.map((i) => (i as HTMLInputElement).value));
  assert.ok(values.includes('dev@e2e.test'), `default assignees shown: ${values.join(', ')}`);
});

test('mid-air collision: the second editor sees the first one’s change, keeps their edit, and re-applies it', async () => {
  const dev = await apiAs(server.url, DEV.email);
  const bug = await dev<{ id: number }>('POST', '/bugs', {
    product_id: omegaIds.product,
    version_id: omegaIds.version,
    component_id: omegaIds.component,
    summary: 'Two people edit me at once',
  });

  const first = await person();
  await signIn(first, ADMIN.email);
  const second = await person();
  await signIn(second, DEV.email);
  await first.goto(`${server.url}/bugs/${bug.id}`);
  await second.goto(`${server.url}/bugs/${bug.id}`);

  // The first editor takes the bug; the second, still on the old page, resolves it with a comment.
  await changeBug(first, { status: 'ASSIGNED', comment: 'I am on it.' });
  await second.getByLabel('Status', { exact: true }).selectOption('RESOLVED');
  await second.getByLabel(/^Resolution/).selectOption('WONTFIX');
  await second.getByLabel('Comment', { exact: true }).fill('Not worth fixing: the feature goes away in 2.0.');
  const [answer] = await Promise.all([
    second.waitForResponse((r) => r.url().endsWith(`/bugs/${bug.id}/change`)),
    second.waitForEvent('load'),
    second.getByRole('button', { name: 'Save' }).click(),
  ]);
  assert.equal(answer.status(), 409);
  const alert = second.getByRole('alert').filter({ hasText: /collision/i });
  await alert.waitFor();
  const told = await alert.innerText();
  assert.match(told, /Ada Admin: status NEW → ASSIGNED/);
  assert.match(told, /Ada Admin commented: I am on it\./);
  // Nothing of the second edit was applied; it is all still in the form.
  assert.equal(await shownStatus(second), 'ASSIGNED');
  assert.equal(
    await second.getByLabel('Comment', { exact: true }).inputValue(),
    'Not worth fixing: the feature goes away in 2.0.',
  );
  assert.equal(await second.getByLabel('Status', { exact: true }).inputValue(), 'RESOLVED');
  assert.equal(await second.getByLabel(/^Resolution/).inputValue(), 'WONTFIX');
  await screenshot(second, 'mid-air-collision');
  const axe = await seriousAxeViolations(second);
  assert.deepEqual(axe, [], formatViolations('the mid-air collision screen', axe));

  // Re-apply: one more Save puts it on top of the first editor's change.
  await Promise.all([second.waitForEvent('load'), second.getByRole('button', { name: 'Save' }).click()]);
  assert.equal(await shownStatus(second), 'RESOLVED WONTFIX');
  const items = await timeline(second);
  assert.ok(
    items.some((t) => /Not worth fixing/.test(t)),
    items.join('\n'),
  );
  assert.ok(
    items.some((t) => /I am on it\./.test(t)),
    items.join('\n'),
  );
});

test('<script> in a summary and a comment is shown as text and never runs', async () => {
  const page = await person();
  await signIn(page, VISITOR.email);
  const before = { incidents: incidents.length, dialogs: dialogs.length };
  const summary = '<script>alert("summary")</script><img src=x onerror=alert(1)>';
  const comment = '</textarea><script>alert("comment")</script><b onmouseover=alert(2)>bold?</b>';
  await page.goto(`${server.url}/bugs/new`);
  await chooseProduct(page, 'Omega');
  await page.getByLabel('Summary').fill(summary);
  await page.getByLabel(/^Description/).fill('<iframe src="javascript:alert(3)"></iframe>');
  await Promise.all([
    page.waitForURL(/\/bugs\/\d+$/),
    page.getByRole('button', { name: 'File bug' }).click(),
  ]);
  await changeBug(page, { comment });
  await page.locator('h1').hover();

  const id = new URL(page.url()).pathname.split('/').pop();
  assert.equal((await page.locator('h1').innerText()).trim(), `Bug ${id}: ${summary}`);
  const main = await page.locator('main').innerText();
  assert.ok(main.includes(comment), `comment shown literally:\n${main}`);
  assert.ok(main.includes('<iframe src="javascript:alert(3)"></iframe>'), 'description shown literally');
  // No element came out of the user's text: every script is one of ours (with a src), no img/iframe/b.
  assert.equal(await page.locator('script:not([src])').count(), 0);
  assert.equal(await page.locator('main img, main iframe, main b').count(), 0);
  assert.match(await page.title(), /<script>alert\("summary"\)<\/script>/);
  // The list and the dashboard show it as text too.
  await page.goto(`${server.url}/bugs`);
  assert.ok(await page.getByRole('link', { name: summary }).first().isVisible());
  await page.goto(`${server.url}/`);
  await page.waitForTimeout(300);
  assert.deepEqual(dialogs.slice(before.dialogs), [], 'no dialog opened');
  // Had any markup got through, the CSP would have refused its inline script or handler, and said so.
  const refused = incidents
    .slice(before.incidents)
    .filter((i) => /Content Security Policy|page error/.test(i));
  assert.deepEqual(refused, [], 'no script was refused by the CSP, no page error');
});

test('an external user gets the friendly 404 page for a confidential bug, the same as for a missing one', async () => {
  const page = await person();
  await signIn(page, VISITOR.email);
  const hidden = await page.goto(`${server.url}/bugs/${confidentialBugId}`);
  assert.equal(hidden?.status(), 404);
  assert.equal((await page.locator('h1').innerText()).trim(), 'Not found');
  const hiddenText = await page.locator('main').innerText();
  assert.doesNotMatch(hiddenText, /zebra/i);
  assert.doesNotMatch(await page.title(), /zebra/i);
  await screenshot(page, 'not-found');
  const axe = await seriousAxeViolations(page);
  assert.deepEqual(axe, [], formatViolations('the 404 page', axe));

  const missing = await page.goto(`${server.url}/bugs/99999`);
  assert.equal(missing?.status(), 404);
  assert.equal(
    (await page.locator('main').innerText()).replace('99999', 'N'),
    hiddenText.replace(String(confidentialBugId), 'N'),
  );

  // Admin pages are no business of theirs either: a page, not a JSON error.
  const admin = await page.goto(`${server.url}/admin/products`);
  assert.ok([403, 404].includes(admin?.status() ?? 0), `admin page answered ${admin?.status()}`);
  assert.match(admin?.headers()['content-type'] ?? '', /^text\/html/);
  assert.match(await page.locator('h1').innerText(), /not found|forbidden|not allowed|permission/i);

  // Staff do see it.
  const dev = await person();
  await signIn(dev, DEV.email);
  const shown = await dev.goto(`${server.url}/bugs/${confidentialBugId}`);
  assert.equal(shown?.status(), 200);
  assert.match(await dev.locator('h1').innerText(), /Confidential zebra leak/);
});

test('the accessibility check itself catches serious problems (a field without a label, unreadable text)', async () => {
  const page = await person();
  await page.setContent(
    '<!doctype html><html lang="en"><head><title>t</title></head><body><main>' +
      '<input type="text"><p style="color:#bbb;background:#fff">faint</p></main></body></html>',
  );
  const found = (await seriousAxeViolations(page)).map((v) => v.id).sort();
  assert.deepEqual(found, ['color-contrast', 'label']);
  assert.match(formatViolations('a broken page', await seriousAxeViolations(page)), /\[critical\] label:/);
});

test('the main pages have no serious or critical accessibility violations (light and dark); screenshots saved', async () => {
  assert.ok(filedBugId, 'needs the bug filed earlier');
  const anonymous = await person();
  const visitor = await person();
  await signIn(visitor, VISITOR.email);
  const admin = await person();
  await signIn(admin, ADMIN.email);
  const pages: { name: string; page: Page; path: string }[] = [
    { name: 'sign-in', page: anonymous, path: '/signin' },
    { name: 'sign-up', page: anonymous, path: '/signup' },
    { name: 'home', page: visitor, path: '/' },
    { name: 'bug-list', page: visitor, path: '/bugs' },
    { name: 'bug-page', page: visitor, path: `/bugs/${filedBugId}` },
    { name: 'file-bug', page: visitor, path: '/bugs/new' },
    { name: 'account', page: visitor, path: '/account' },
    { name: 'admin-products', page: admin, path: '/admin/products' },
    { name: 'admin-product', page: admin, path: `/admin/products/${omegaIds.product}` },
    { name: 'admin-users', page: admin, path: '/admin/users' },
  ];
  const problems: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    for (const { name, page, path } of pages) {
      await page.emulateMedia({ colorScheme: scheme });
      const res = await page.goto(`${server.url}${path}`);
      assert.equal(res?.status(), 200, `${path} answers 200`);
      if (scheme === 'light') weights.push({ path, ...(await pageWeight(page)) });
      if (name === 'file-bug') await chooseProduct(page, 'Omega');
      await screenshot(page, scheme === 'light' ? name : `${name}-dark`);
      const violations = await seriousAxeViolations(page);
      if (violations.length) problems.push(formatViolations(`${path} (${scheme})`, violations));
    }
  }
  assert.deepEqual(problems, [], problems.join('\n\n'));
});

test('every main page weighs under 50 KB of HTML, CSS and script', () => {
  assert.ok(weights.length >= 10, 'the accessibility test measured the pages');
  const heavy = weights
    .filter((w) => w.total >= 50 * 1024)
    .map((w) => `${w.path} weighs ${w.total} bytes: HTML ${w.html}, ${w.assets.join(', ')}`);
  assert.deepEqual(heavy, [], heavy.join('\n'));
});

test('no page opened a dialog, threw an error or logged a console error', () => {
  assert.deepEqual([...new Set(incidents)], []);
});
