// bugzot-test: once
/**
 * The API key pages in a real Chromium: the account page (own keys, with their limit and permission)
 * and the admin page (every key; allow acting on behalf of others, set a limit) pass axe's serious and
 * critical rules in light and dark mode, and the admin form works as a person uses it.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { sql } from '../src/platform/db.ts';
import { formatViolations, launchBrowser, seriousAxeViolations, signIn } from './helpers/browser.ts';
import { startTestApp, type TestApp, type TestUser } from './helpers/app.ts';

let t: TestApp;
let browser: Browser;
let base: string;
let admin: TestUser;
let botKeyId: number;

before(async () => {
  t = await startTestApp();
  admin = await t.user({ admin: true, name: 'Admin' });
  const bot = await t.user({ kind: 'internal', name: 'DeskBot' });
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    as: bot,
    payload: { name: 'support desk', rate_limit_per_minute: 120 },
  });
  assert.equal(res.statusCode, 201, res.body);
  botKeyId = res.data.id;
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await t.close();
});

test('the account and admin API key pages have no serious accessibility problems, light or dark', async () => {
  const page = await browser.newPage();
  await signIn(page, base, admin.email);
  const problems: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const path of ['/account', '/admin/api-keys']) {
      const res = await page.goto(`${base}${path}`);
      assert.equal(res?.status(), 200, path);
      const violations = await seriousAxeViolations(page);
      if (violations.length) problems.push(formatViolations(`${path} (${scheme})`, violations));
    }
  }
  assert.deepEqual(problems, [], problems.join('\n\n'));
  await page.close();
});

test('an admin allows a key to act on behalf of others and raises its limit with the form', async () => {
  const page = await browser.newPage();
  await signIn(page, base, admin.email);
  await page.goto(`${base}/admin/api-keys`);
  const row = page.locator(`#key-${botKeyId}`);
  await row.getByLabel('may act on behalf of others').check();
  await row.getByLabel('Requests a minute').fill('6000');
  await row.getByRole('button', { name: /^Save key support desk/ }).click();
  await page.waitForURL((u) => u.searchParams.get('saved') === '1');
  assert.match(await page.getByRole('status').innerText(), /Saved: the key/);
  const [key] = await t.db.query<{ on_behalf_of: boolean; rate_limit_per_minute: number }>(
    sql`SELECT on_behalf_of, rate_limit_per_minute FROM api_keys WHERE id = ${botKeyId}`,
  );
  assert.deepEqual(key, { on_behalf_of: true, rate_limit_per_minute: 6000 });
  assert.equal(
    await page.locator(`#key-${botKeyId}`).getByLabel('may act on behalf of others').isChecked(),
    true,
  );
  await page.close();
});
