/**
 * The bug page lists the bug's attachments itself (no JavaScript needed): name, size, kind, uploader, a download
 * link, and for bundles a link to their files; user-chosen file names are escaped.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp, world } from './helpers/app.ts';

let t: TestApp;
let w: Awaited<ReturnType<typeof world>>;
before(async () => {
  t = await startTestApp();
  w = await world(t);
});
after(() => t.close());

async function bugPage(id: number) {
  const { cookie } = await t.session(w.users.dev);
  const res = await t.app.inject({ url: `/bugs/${id}`, headers: { accept: 'text/html', cookie } });
  assert.equal(res.statusCode, 200);
  return res.body;
}

test('a bug without attachments says so', async () => {
  assert.match(await bugPage(w.bugs.onBeta.id), /No attachments yet\./);
});

test('attachments are listed on the bug page, escaped, with their download links', async () => {
  const name = 'crash <img src=x onerror=alert(1)>.log';
  const res = await t.request({
    method: 'PUT',
    url: `/api/v1/bugs/${w.bugs.public.id}/attachments/${encodeURIComponent(name)}`,
    as: w.users.dev,
    headers: { 'content-type': 'application/octet-stream' },
    payload: Buffer.from('12:00:01 FATAL segfault in render()\n'),
  });
  assert.equal(res.statusCode, 201, res.body);
  const id = res.data.id as number;
  const html = await bugPage(w.bugs.public.id);
  const list = /<div id="attachment-list"[\s\S]*?<\/div>/.exec(html)?.[0] ?? '';
  assert.ok(list.includes(`href="/api/v1/attachments/${id}/content"`), list);
  assert.ok(list.includes(`href="/attachments/${id}"`));
  assert.ok(!list.includes('<img'), 'the file name is escaped');
  assert.match(list, /crash &lt;img src=x onerror=alert\(1\)>\.log/);
  assert.match(list, /36 bytes, text, by Dev/);
});
