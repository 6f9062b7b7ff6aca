// bugzot-test: once
/**
 * Search in a real browser (Debian's Chromium through playwright-core) against a real `bugzot serve`:
 * typing a summary on the file-a-bug page lists similar bugs of the chosen product (never a confidential
 * one to an outsider), under the page's CSP, without a console error; the search box marks a mistake
 * and sorts by a column heading.
 *
 * Runs once (PGlite pass): the database engine is covered by the HTTP tests; this file covers the browser.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from './helpers/browser.ts';
import { apiAs, type E2eServer, PASSWORD, startServer } from './helpers/server.ts';

const ADMIN = { email: 'admin@search.test', name: 'Ada Admin', kind: 'admin' as const };
const DEV = { email: 'dev@search.test', name: 'Dana Developer', kind: 'internal' as const };
const CUSTOMER = { email: 'casey@search.test', name: 'Casey Customer', kind: 'external' as const };

let server: E2eServer;
let browser: Browser;
const incidents: string[] = [];
let productId = 0;

before(async () => {
  server = await startServer([ADMIN, DEV, CUSTOMER]);
  type Created = { id: number };
  const admin = await apiAs(server.url, ADMIN.email);
  const omega = await admin<Created>('POST', '/products', { name: 'Omega', is_released: true });
  productId = omega.id;
  const v = await admin<Created>('POST', `/products/${omega.id}/versions`, {
    name: '1.0',
    is_released: true,
  });
  const c = await admin<Created>('POST', `/products/${omega.id}/components`, { name: 'Core' });
  const dev = await apiAs(server.url, DEV.email);
  const file = (summary: string, confidential = false) =>
    dev('POST', '/bugs', {
      product_id: omega.id,
      version_id: v.id,
      component_id: c.id,
      summary,
      confidential,
    });
  await file('Crash when opening the preferences dialog');
  await file('Crash when opening preferences of the secret module', true);
  await file('Printing is slow');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function signedIn(email: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => {
    // A 400 page for a mistyped query and a missing favicon are expected; failing assets are caught below.
    if (m.text().startsWith('Failed to load resource')) return;
    if (m.type() === 'error' || m.type() === 'warning') incidents.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/assets/') && r.status() >= 400)
      incidents.push(`asset ${r.url()}: ${r.status()}`);
  });
  page.on('pageerror', (e) => incidents.push(`page error: ${e.message}`));
  await page.goto(`${server.url}/signin`);
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname !== '/signin');
  return page;
}

test('typing a summary lists similar bugs of the product, only those the viewer may see', async () => {
  const page = await signedIn(CUSTOMER.email);
  await page.goto(`${server.url}/bugs/new?product=${productId}`);
  await page.getByLabel('Summary').pressSequentially('crash when opening prefer', { delay: 20 });
  const items = page.locator('#similar-bugs li');
  await items.first().waitFor({ timeout: 15_000 });
  const texts = await items.allTextContents();
  assert.ok(
    texts.some((t) => t.includes('Crash when opening the preferences dialog')),
    texts.join('|'),
  );
  assert.ok(!texts.some((t) => t.includes('secret')), texts.join('|'));
  assert.ok(texts.length <= 5);
  // Cleared: the list goes away.
  await page.getByLabel('Summary').fill('');
  await page.waitForFunction(() => !document.querySelector('#similar-bugs li'));

  const staff = await signedIn(DEV.email);
  await staff.goto(`${server.url}/bugs/new?product=${productId}`);
  await staff.getByLabel('Summary').pressSequentially('crash when opening prefer', { delay: 20 });
  await staff.locator('#similar-bugs li', { hasText: 'secret' }).waitFor({ timeout: 15_000 });
  assert.deepEqual(incidents, []);
});

test('the search box marks a mistake and column headings sort', async () => {
  const page = await signedIn(DEV.email);
  await page.goto(`${server.url}/bugs`);
  await page.getByLabel('Search', { exact: true }).fill('crash stauts:NEW');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('alert').filter({ hasText: 'did you mean status?' }).waitFor();
  assert.equal(await page.locator('code mark').textContent(), 'stauts');
  await page.getByLabel('Search', { exact: true }).fill('crash');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('2 bugs match').waitFor();
  await page.getByRole('link', { name: 'Summary' }).click();
  const first = await page.locator('tbody tr td:nth-child(2) a').first().textContent();
  assert.equal(first, 'Crash when opening preferences of the secret module');
  assert.deepEqual(incidents, []);
});
