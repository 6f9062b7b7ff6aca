/**
 * Page weight: the bug page (with comments and history), a 50-bug list and the file-a-bug page each stay
 * under 50 KB of HTML + CSS + JavaScript, counted as a browser fetches them (every stylesheet and script
 * the page links), both as sent to a browser that accepts brotli and uncompressed, for a staff member
 * (who gets the biggest forms).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const LIMIT = 50 * 1024;

describe(`page sizes (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  let cookie: string;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
    cookie = (await t.session(w.users.dev)).cookie;
  });
  after(() => t.close());

  /** The bytes of a page and of every stylesheet and script it links. */
  async function weight(url: string) {
    const res = await t.request({ method: 'GET', url, headers: { cookie, accept: 'text/html' } });
    assert.equal(res.statusCode, 200, `${url}: ${res.statusCode}`);
    const links = [
      ...[...res.body.matchAll(/<link rel="stylesheet" href="([^"]+)"/g)].map((m) => m[1]!),
      ...[...res.body.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!),
    ];
    let total = res.rawPayload.length;
    let uncompressed = total;
    const parts: string[] = [`html ${res.rawPayload.length}`];
    for (const href of new Set(links)) {
      const a = await t.request({
        method: 'GET',
        url: href,
        headers: { 'accept-encoding': 'gzip, deflate, br' },
      });
      assert.equal(a.statusCode, 200, href);
      const plain = await t.request({ method: 'GET', url: href });
      total += a.rawPayload.length;
      uncompressed += plain.rawPayload.length;
      parts.push(`${href} ${a.rawPayload.length} (${plain.rawPayload.length} uncompressed)`);
    }
    return { total, uncompressed, parts, html: res.body };
  }

  test('the bug page with 20 comments and 10 changes is under 50 KB', async (ctx) => {
    const b = await w.bug('A bug people talk about', { description: 'Steps to reproduce:\n'.repeat(20) });
    const severities = ['major', 'minor'];
    for (let i = 0; i < 20; i++) {
      const payload =
        i < 10
          ? {
              severity: severities[i % 2],
              comment: { body: `Comment ${i}: ${'It still crashes. '.repeat(12)}` },
            }
          : { comment: { body: `Comment ${i}: ${'Looked at it again. '.repeat(12)}` } };
      const res = await t.request({ method: 'PATCH', url: `/api/v1/bugs/${b.id}`, payload, as: w.users.dev });
      assert.equal(res.statusCode, 200);
    }
    const { total, uncompressed, parts, html } = await weight(`/bugs/${b.id}`);
    assert.match(html, /Comment 19/);
    ctx.diagnostic(`bug page: ${total} bytes sent, ${uncompressed} uncompressed (${parts.join(', ')})`);
    assert.ok(total < LIMIT && uncompressed < LIMIT, `bug page weighs ${total} bytes: ${parts.join(', ')}`);
  });

  test('a list of 50 bugs is under 50 KB', async (ctx) => {
    for (let i = 0; i < 50; i++) await w.bug(`Listed bug number ${i} with a summary of ordinary length`);
    const { total, uncompressed, parts, html } = await weight('/bugs?limit=50');
    const rows = html.match(/<tr/g)?.length ?? 0;
    assert.ok(rows >= 50, `50 rows shown (${rows})`);
    ctx.diagnostic(`50-bug list: ${total} bytes sent, ${uncompressed} uncompressed (${parts.join(', ')})`);
    assert.ok(total < LIMIT && uncompressed < LIMIT, `bug list weighs ${total} bytes: ${parts.join(', ')}`);
  });

  test('the file-a-bug page is under 50 KB', async (ctx) => {
    const { total, uncompressed, parts } = await weight(`/bugs/new?product=${w.products.omega.id}`);
    ctx.diagnostic(
      `file-a-bug page: ${total} bytes sent, ${uncompressed} uncompressed (${parts.join(', ')})`,
    );
    assert.ok(
      total < LIMIT && uncompressed < LIMIT,
      `file-a-bug page weighs ${total} bytes: ${parts.join(', ')}`,
    );
  });
});
