/**
 * Browser benchmark (web UI issue): time to first byte and full load of the bug page and of a 50-bug
 * list page, measured by Debian's Chromium (Navigation Timing: responseStart and loadEventEnd, both
 * from the start of the navigation) on a database of BENCH_BUGS bugs (default 100,000).
 *
 * 1. a throwaway PostgreSQL 15 cluster (or BENCH_DATABASE_URL, a superuser URL), `bugzot seed`;
 * 2. `bugzot serve` in its own process (NODE_ENV=production, LOG_LEVEL=warn);
 * 3. headless Chromium signs in through the form as the external demo customer (the visibility rule is
 *    evaluated on every page) and as the internal demo developer, then loads each page BENCH_RUNS times
 *    (default 30) after a few warm-up loads: "warm" in one browser context (stylesheet and script
 *    cached, as when someone clicks around), "cold" in a new context per load (nothing cached).
 *
 * Prints median and p95 of TTFB and load per scenario, plus the page weight. Run: `npm run bench:browser`.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import postgres from 'postgres';
import { launchBrowser, pageWeight } from '../test/helpers/browser.ts';
import { benchDatabase, bugzot, startServer } from './lib.ts';

const bugs = Number(process.env['BENCH_BUGS'] ?? 100_000);
const runs = Number(process.env['BENCH_RUNS'] ?? 30);
const WARM_UP = 3;
const PASSWORD = 'bench-password-123';

/** One navigation's timings, in ms from the start of the navigation. */
interface Timing {
  ttfb: number;
  load: number;
}

const NAVIGATION_TIMING = `(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return { ttfb: nav.responseStart - nav.startTime, load: nav.loadEventEnd - nav.startTime };
})()`;

/** Loads the URL and reads its Navigation Timing once the load event has finished. */
async function navigate(page: Page, url: string): Promise<Timing> {
  const res = await page.goto(url, { waitUntil: 'load' });
  if (res?.status() !== 200) throw new Error(`GET ${url} -> ${res?.status()}`);
  // loadEventEnd is set just after the load event's handlers return. (Polled with evaluate: a string
  // given to waitForFunction is compiled in the page, which the CSP's script-src 'self' forbids.)
  for (;;) {
    const t = (await page.evaluate(NAVIGATION_TIMING)) as Timing;
    if (t.load > 0) return t;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A browser context signed in through the sign-in form. */
async function signedIn(browser: Browser, base: string, email: string): Promise<BrowserContext> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/signin`);
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await Promise.all([page.waitForURL(`${base}/`), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.close();
  return context;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** Runs one scenario: warm-up loads, then `runs` measured loads, each of the next URL. */
async function scenario(
  name: string,
  urls: () => string,
  page: (i: number) => Promise<{ page: Page; done(): Promise<void> }>,
): Promise<string> {
  const timings: Timing[] = [];
  let weight = { html: 0, total: 0 };
  for (let i = 0; i < WARM_UP + runs; i++) {
    const p = await page(i);
    try {
      const t = await navigate(p.page, urls());
      if (i >= WARM_UP) timings.push(t);
      if (i === WARM_UP + runs - 1) weight = await pageWeight(p.page);
    } finally {
      await p.done();
    }
  }
  const ttfb = timings.map((t) => t.ttfb).sort((a, b) => a - b);
  const load = timings.map((t) => t.load).sort((a, b) => a - b);
  const kb = (n: number) => (n / 1024).toFixed(1);
  const row = [
    name,
    percentile(ttfb, 50).toFixed(1),
    percentile(ttfb, 95).toFixed(1),
    percentile(load, 50).toFixed(1),
    percentile(load, 95).toFixed(1),
    kb(weight.html),
    kb(weight.total),
  ];
  process.stderr.write(`${row.join('  ')}\n`);
  return `| ${row.join(' | ')} |`;
}

const db = await benchDatabase();
const stops: (() => Promise<void>)[] = [db.stop];
try {
  const env = { DATABASE_URL: db.url };
  process.stderr.write(`seeding ${bugs} bugs...\n`);
  const started = performance.now();
  await bugzot(['seed', '--bugs', String(bugs), '--password', PASSWORD], env);
  const seedSeconds = (performance.now() - started) / 1000;

  // Bugs the external customer may see (random, a new one per load), and the busiest released product.
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const visible = (
    await sql`SELECT b.id FROM bugs b JOIN versions v ON v.id = b.version_id JOIN products p ON p.id = b.product_id
              WHERE NOT b.confidential AND v.is_released AND p.is_released ORDER BY random() LIMIT 500`
  ).map((r) => r['id'] as number);
  const [busiest] = await sql`
    SELECT b.product_id FROM bugs b JOIN products p ON p.id = b.product_id WHERE p.is_released
    GROUP BY b.product_id ORDER BY count(*) DESC LIMIT 1`;
  await sql.end();

  const server = await startServer(env, ['--no-migrate']);
  stops.unshift(server.stop);
  const browser = await launchBrowser();
  stops.unshift(() => browser.close());
  const base = server.url;

  let n = 0;
  const bugUrl = () => `${base}/bugs/${visible[n++ % visible.length]}`;
  const listUrl = () => `${base}/bugs`;
  const filteredUrl = () => `${base}/bugs?product=${busiest!['product_id']}&status=NEW&status=ASSIGNED`;

  // The list pages must really show 50 bugs.
  const customer = await signedIn(browser, base, 'customer@example.com');
  const staff = await signedIn(browser, base, 'dev@bugzot.example');
  const check = await customer.newPage();
  for (const url of [listUrl(), filteredUrl()]) {
    await check.goto(url);
    const rows = await check
      .locator('a[href^="/bugs/"]')
      .evaluateAll(
        (links) =>
          new Set(links.map((a) => a.getAttribute('href')).filter((h) => /^\/bugs\/\d+$/.test(h ?? ''))).size,
      );
    if (rows < 50) throw new Error(`${url} shows ${rows} bugs, expected 50`);
  }
  await check.close();

  const warm = (context: BrowserContext) => {
    let page: Page | undefined;
    return async () => {
      page ??= await context.newPage();
      return { page, done: async () => {} };
    };
  };
  const cold = (email: string) => async () => {
    const context = await signedIn(browser, base, email);
    const page = await context.newPage();
    return { page, done: () => context.close() };
  };

  const rows = [
    await scenario('bug page, external, warm', bugUrl, warm(customer)),
    await scenario('bug page, external, cold', bugUrl, cold('customer@example.com')),
    await scenario('bug page, staff, warm', bugUrl, warm(staff)),
    await scenario('list of 50 (newest), external, warm', listUrl, warm(customer)),
    await scenario('list of 50 (newest), external, cold', listUrl, cold('customer@example.com')),
    await scenario('list of 50 by product+status, external, warm', filteredUrl, warm(customer)),
    await scenario('list of 50 (newest), staff, warm', listUrl, warm(staff)),
  ];
  const version = browser.version();
  process.stdout.write(
    `\nBugzot browser benchmark: ${bugs} bugs on PostgreSQL (seeded in ${seedSeconds.toFixed(1)} s), ` +
      `1 server process, Chromium ${version} headless, ${runs} loads per scenario after ${WARM_UP} warm-up loads\n\n` +
      '| page | TTFB p50 ms | TTFB p95 ms | load p50 ms | load p95 ms | HTML KB | HTML+CSS+JS KB |\n' +
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n' +
      `${rows.join('\n')}\n`,
  );
} finally {
  for (const stop of stops) await stop().catch((err) => process.stderr.write(`cleanup: ${err}\n`));
}
