// bugzot-test: once
/**
 * Attachments in the web UI: the support view and bundle pages (server-rendered, visibility, escaping),
 * and in real Chromium the upload from the bug page (progress, a dropped connection resumed) and a file
 * chosen while filing a bug.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { Browser, BrowserContext } from 'playwright-core';
import { type Json, startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { launchBrowser } from './helpers/browser.ts';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'bugzot-att-web-'));
let t: TestApp;
let w: Awaited<ReturnType<typeof world>>;
let origin: string;
let browser: Browser | undefined;

before(async () => {
  t = await startTestApp({ DATA_DIR: dir });
  w = await world(t);
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  origin = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
});
after(async () => {
  await browser?.close();
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function put(as: TestUser, bugId: number, name: string, data: Buffer): Promise<Json> {
  const res = await fetch(`${origin}/api/v1/bugs/${bugId}/attachments/${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: as.auth,
    body: new Uint8Array(data),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

async function page(as: TestUser, url: string) {
  const s = await t.session(as);
  return t.request({ method: 'GET', url, headers: { cookie: s.cookie, accept: 'text/html' } });
}

test('the support view lists what the viewer may see, with filters; bundle and member pages escape what they show', async () => {
  const src = join(dir, 'bundle-src');
  mkdirSync(join(src, 'logs'), { recursive: true });
  writeFileSync(join(src, 'logs/<script>x.log'), '<script>alert(1)</script>\nboot ok\n');
  const tgz = join(dir, 'web.tgz');
  await run('tar', ['czf', tgz, '-C', src, 'logs']);
  const bundle = await put(w.users.dev, w.bugs.public.id, 'web.tgz', readFileSync(tgz));
  const secret = await put(w.users.dev, w.bugs.confidential.id, 'zebra-secret.log', Buffer.from('secret\n'));

  const staff = await page(w.users.dev, '/attachments');
  assert.equal(staff.statusCode, 200);
  assert.match(staff.body, /web\.tgz/);
  assert.match(staff.body, /zebra-secret\.log/);
  const customer = await page(w.users.alice, '/attachments');
  assert.match(customer.body, /web\.tgz/);
  assert.doesNotMatch(customer.body, /zebra-secret/);
  const filtered = await page(
    w.users.dev,
    `/attachments?kind=bundle&sort=largest&bug_id=${w.bugs.public.id}`,
  );
  assert.match(filtered.body, /web\.tgz/);
  assert.doesNotMatch(filtered.body, /zebra-secret/);
  const bad = await page(w.users.dev, '/attachments?min_mb=lots');
  assert.equal(bad.statusCode, 400);
  assert.match(bad.body, /min mb must be a number/);

  const detail = await page(w.users.alice, `/attachments/${bundle.id}`);
  assert.equal(detail.statusCode, 200);
  assert.match(detail.body, /logs\/&lt;script(&gt;|>)x\.log/);
  assert.doesNotMatch(detail.body, /<script>x/);
  const members = await t.request({
    method: 'GET',
    url: `/api/v1/attachments/${bundle.id}/members`,
    as: w.users.alice,
  });
  const log = (members.data.members as Json[]).find((m: Json) => m.type === 'file');
  const text = await page(w.users.alice, `/attachments/${bundle.id}/members/${log.index}`);
  assert.equal(text.statusCode, 200);
  assert.match(text.body, /&lt;script(&gt;|>)alert\(1\)/);
  assert.doesNotMatch(text.body, /<script>alert/);
  assert.match(text.body, /boot ok/);
  const hidden = await page(w.users.alice, `/attachments/${secret.id}`);
  assert.equal(hidden.statusCode, 404);
  assert.doesNotMatch(hidden.body, /zebra/);
});

async function signedInContext(as: TestUser): Promise<BrowserContext> {
  browser ??= await launchBrowser();
  const context = await browser.newContext();
  const s = await t.session(as);
  await context.addCookies([{ name: 'bugzot_session', value: s.cookie.split('=')[1]!, url: origin }]);
  return context;
}

test('in Chromium: upload from the bug page with a progress bar; a dropped connection is resumed', async () => {
  const context = await signedInContext(w.users.alice);
  const p = await context.newPage();
  const data = Buffer.from(`first line\n${randomBytes(3 * 1024 * 1024).toString('hex')}\n`);
  const path = join(dir, 'browser.log');
  writeFileSync(path, data);
  // The first chunk's connection is cut: tus-js-client must retry and resume.
  let cut = 0;
  await p.route('**/api/v1/uploads/*', async (route) => {
    if (route.request().method() === 'PATCH' && cut === 0) {
      cut++;
      return route.abort('connectionreset');
    }
    return route.continue();
  });
  await p.route('**/api/v1/uploads', (route) => route.continue());
  const progress: number[] = [];
  await p.exposeFunction('reportProgress', (v: number) => progress.push(v));
  await p.goto(`${origin}/bugs/${w.bugs.aliceOwn.id}`);
  await p.evaluate(() => {
    const bar = document.querySelector('progress.upload-progress')!;
    new MutationObserver(() =>
      (window as unknown as { reportProgress(v: number): void }).reportProgress(
        Number(bar.getAttribute('value') ?? (bar as HTMLProgressElement).value),
      ),
    ).observe(bar, { attributes: true });
    setInterval(
      () =>
        (window as unknown as { reportProgress(v: number): void }).reportProgress(
          (bar as HTMLProgressElement).value,
        ),
      20,
    );
  });
  await p.setInputFiles('#attachment-file', path);
  await p.fill('#attachment-comment', 'Log from the browser');
  await Promise.all([p.waitForEvent('load'), p.getByRole('button', { name: 'Upload' }).click()]);
  await p.locator('#attachment-list a', { hasText: 'browser.log' }).waitFor();
  assert.equal(cut, 1, 'one connection was cut');
  assert.ok(
    progress.some((v) => v > 0),
    `progress shown: ${progress.slice(-5)}`,
  );
  const list = await t.request({
    method: 'GET',
    url: `/api/v1/bugs/${w.bugs.aliceOwn.id}/attachments`,
    as: w.users.alice,
  });
  const a = (list.data.attachments as Json[]).find((x: Json) => x.file_name === 'browser.log');
  assert.equal(a.sha256, sha(data));
  assert.ok(a.comment_id, 'the comment went with it');
  await context.close();
});

test('in Chromium: a file chosen while filing a bug is uploaded to the new bug, then the bug page opens', async () => {
  const context = await signedInContext(w.users.dev);
  const p = await context.newPage();
  await p.goto(`${origin}/bugs/new`);
  await p.getByLabel('Summary').fill('Crash with a bundle attached');
  await p.getByLabel('Product', { exact: true }).selectOption({ label: 'Omega' });
  await p.locator('select[name=version_id] option:not([value=""])').first().waitFor({ state: 'attached' });
  await p.locator('select[name=version_id]').selectOption({ index: 1 });
  const component = p.locator('select[name=component_id]');
  if ((await component.locator('option').count()) > 1) await component.selectOption({ index: 1 });
  const data = Buffer.from('filed with the bug\n'.repeat(1000));
  const path = join(dir, 'filed.txt');
  writeFileSync(path, data);
  await p.setInputFiles('#attachment', path);
  await Promise.all([p.waitForURL(/\/bugs\/\d+$/), p.getByRole('button', { name: 'File bug' }).click()]);
  const id = Number(new URL(p.url()).pathname.split('/').pop());
  const list = await t.request({ method: 'GET', url: `/api/v1/bugs/${id}/attachments`, as: w.users.dev });
  assert.equal(list.data.attachments[0]?.file_name, 'filed.txt');
  assert.equal(list.data.attachments[0]?.sha256, sha(data));
  await context.close();
});
