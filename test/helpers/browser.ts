/**
 * Debian's Chromium driven through playwright-core, for the end-to-end tests and the browser benchmark:
 * launching it headless with a throwaway profile, an accessibility check with axe-core run inside the
 * page, page weight, screenshots saved under test-output/ (not committed), and the actions a person
 * takes on Bugzot's pages (sign in, change a bug, Tab through a page), found by labels and roles.
 */

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { PASSWORD } from './server.ts';

/** Where Debian's `chromium` package puts the browser (CHROMIUM_PATH overrides it). */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] || '/usr/bin/chromium';

/** Folder of the screenshots the tests save (ignored by git). */
export const OUTPUT_DIR = fileURLToPath(new URL('../../test-output/', import.meta.url));

/**
 * Launches headless Chromium. Playwright gives each launch its own temporary profile (removed on
 * close); the flags keep the browser from calling home, updating itself or syncing while tests run.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `No Chromium at ${CHROMIUM_PATH}: install Debian's package (apt-get install chromium) or set ` +
        'CHROMIUM_PATH to a Chromium or Chrome binary. Never `npx playwright install`.',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
}

/** One axe-core violation, reduced to what a reader needs to find and fix it. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: string[]; html: string; failureSummary?: string }[];
}

const require = createRequire(import.meta.url);
let axeSource: string | undefined;

/**
 * Runs axe-core (WCAG 2.x A and AA rules plus best practices) on the page as it is now and returns
 * the violations of impact "serious" or "critical". The script is evaluated through the DevTools
 * protocol, so the page's Content-Security-Policy (script-src 'self') does not have to be relaxed.
 */
export async function seriousAxeViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  const loaded = await page.evaluate('typeof axe !== "undefined"');
  if (!loaded) await page.evaluate(axeSource);
  const violations = (await page.evaluate(`axe
    .run(document, { resultTypes: ['violations'] })
    .then((r) => r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.map(String), html: n.html, failureSummary: n.failureSummary })),
    })))`)) as AxeViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A readable list of violations for an assertion message: rule, impact, help, and each element. */
export function formatViolations(where: string, violations: AxeViolation[]): string {
  const lines = [`${violations.length} serious/critical accessibility violation(s) on ${where}:`];
  for (const v of violations) {
    lines.push(`- [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`);
    for (const n of v.nodes.slice(0, 5)) {
      lines.push(`    at ${n.target.join(' ')}: ${n.html.slice(0, 160)}`);
      if (n.failureSummary) lines.push(`      ${n.failureSummary.replace(/\n/g, '\n      ')}`);
    }
    if (v.nodes.length > 5) lines.push(`    ... and ${v.nodes.length - 5} more element(s)`);
  }
  return lines.join('\n');
}

/** Saves a full-page screenshot as test-output/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const path = join(OUTPUT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * What the current document weighs, decoded, in bytes: its HTML, and the HTML plus every stylesheet and
 * script it links to (the budget of a page is 50 KB of these). Assets are fetched again here, since one
 * already in the browser's cache has no size in the page's Resource Timing.
 */
export async function pageWeight(page: Page): Promise<{ html: number; total: number; assets: string[] }> {
  const { html, urls } = (await page.evaluate(`({
    html: performance.getEntriesByType('navigation')[0].decodedBodySize,
    urls: Array.from(document.querySelectorAll('link[rel=stylesheet][href], script[src]'), (e) => e.href || e.src),
  })`)) as { html: number; urls: string[] };
  let total = html;
  const assets: string[] = [];
  for (const url of new Set(urls)) {
    const size = (await (await page.request.get(url)).body()).length;
    total += size;
    assets.push(`${new URL(url).pathname} ${size}`);
  }
  return { html, total, assets };
}

// Bugzot's pages, as a person uses them: by labels, roles and visible text.

/** Signs in through the form. */
export async function signIn(page: Page, base: string, email: string): Promise<void> {
  await page.goto(`${base}/signin`);
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname !== '/signin');
}

/** The bug page's status, as shown in its fields ("RESOLVED FIXED"). */
export async function shownStatus(page: Page): Promise<string> {
  return (
    await page
      .locator('dt', { hasText: /^Status$/ })
      .locator('xpath=following-sibling::dd[1]')
      .innerText()
  ).trim();
}

/** Chooses a value in the bug page's change form and saves it. */
export async function changeBug(
  page: Page,
  change: { status?: string; resolution?: string; comment?: string },
) {
  if (change.status) await page.getByLabel('Status', { exact: true }).selectOption(change.status);
  if (change.resolution) await page.getByLabel(/^Resolution/).selectOption(change.resolution);
  if (change.comment) await page.getByLabel('Comment', { exact: true }).fill(change.comment);
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Save' }).click()]);
}

/** The activity entries of a bug page, oldest first, as their visible text. */
export async function timeline(page: Page): Promise<string[]> {
  return (await page.locator('ol.timeline > li').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
}

/** The focused element's name as a person hears it: its label, else its text (or its value). */
export const FOCUSED = `(() => {
  const e = document.activeElement;
  const label = e && e.labels && e.labels[0];
  return ((label ? label.textContent : e && (e.getAttribute('aria-label') || e.textContent || e.value)) || '').trim();
})()`;

/** Presses Tab until the focused element's name matches; fails after 40 presses. */
export async function tabTo(page: Page, name: string | RegExp): Promise<void> {
  const seen: string[] = [];
  for (let i = 0; i < 40; i++) {
    const focused = (await page.evaluate(FOCUSED)) as string;
    if (typeof name === 'string' ? focused === name : name.test(focused)) return;
    seen.push(focused);
    await page.keyboard.press('Tab');
  }
  assert.fail(`Tab never reached ${name}; focus went through: ${seen.join(' | ')}`);
}

/** Chooses the product on the file-a-bug page, with or without the page's script, and waits for its versions. */
export async function chooseProduct(page: Page, product: string, expectVersion?: string): Promise<void> {
  await page.getByLabel('Product', { exact: true }).selectOption({ label: product });
  // With the page's script, choosing a product fetches its versions and then removes this button; without
  // script the button stays and sends the form back for the chosen product. Give the script time to act before
  // deciding which case this is (clicking a button the script is about to remove races with it).
  const show = page.getByRole('button', { name: /show its versions/i });
  await show.waitFor({ state: 'detached', timeout: 5000 }).catch(() => undefined);
  if ((await show.count()) > 0 && (await show.isVisible())) {
    await Promise.all([page.waitForEvent('load'), show.click()]);
  }
  const options = page.locator('select[name=version_id] option');
  const wanted = expectVersion
    ? options.filter({ hasText: new RegExp(`^\\s*${expectVersion.replace(/[.]/g, '\\.')}\\s*$`) })
    : page.locator('select[name=version_id] option:not([value=""])');
  await wanted.first().waitFor({ state: 'attached' });
}

/** The choices a select offers, placeholders left out. */
export async function choices(page: Page, label: string | RegExp): Promise<string[]> {
  const options = page.getByLabel(label).locator('option');
  const values = await options.evaluateAll((all) => all.map((o) => o.getAttribute('value') ?? ''));
  const texts = (await options.allInnerTexts()).map((t) => t.trim());
  return texts.filter((_, i) => values[i] !== '').sort();
}
