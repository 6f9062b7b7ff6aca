/**
 * Search never tells a viewer about a bug they may not see: for each channel — results, counts, facets,
 * snippets, similar-bug suggestions and CSV — an external user searching for a word only a hidden bug
 * (or a private comment) contains finds nothing and sees nothing counted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { type Json, startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`search visibility (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;

  const get = async (as: TestUser, url: string) => {
    const res = await t.request({ method: 'GET', url, as });
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    return res;
  };
  const search = async (as: TestUser, q: string): Promise<Json> =>
    (await get(as, `/api/v1/search?q=${encodeURIComponent(q)}`)).data;

  before(async () => {
    t = await startTestApp();
    w = await world(t);
    // A private comment on the public bug: its words are staff-only.
    const res = await t.request({
      method: 'POST',
      url: `/api/v1/bugs/${w.bugs.public.id}/comments`,
      payload: { body: 'Customer platypus database dump attached for crash analysis', is_private: true },
      as: w.users.dev,
    });
    assert.equal(res.statusCode, 201);
    // Words shared by hidden and visible bugs, to compare counts.
    await w.bug('Visible crash report from a customer');
  });
  after(() => t.close());

  test('results and counts: a word only the confidential bug has finds nothing for an outsider', async () => {
    const staff = await search(w.users.dev, 'zebra');
    assert.deepEqual(
      staff.bugs.map((b: Json) => b.id),
      [w.bugs.confidential.id],
    );
    assert.equal(staff.total, 1);
    for (const u of [w.users.alice, w.users.bob]) {
      const r = await search(u, 'zebra');
      assert.deepEqual(r.bugs, []);
      assert.equal(r.total, 0);
      assert.deepEqual(r.facets, { status: [], product: [] });
    }
  });

  test('words of unreleased versions and internal products are as hidden', async () => {
    for (const word of ['Orion', 'secret', 'Beta-only', 'regression']) {
      const r = await search(w.users.alice, word);
      assert.equal(r.total, 0, word);
      assert.equal((await search(w.users.dev, word)).total, 1, word);
    }
  });

  test('facets count only visible bugs: the hidden ones are in no status and no product', async () => {
    const alice = await search(w.users.alice, '');
    const staff = await search(w.users.dev, '');
    const sum = (f: Json[]) => f.reduce((s, x) => s + x.count, 0);
    assert.equal(sum(alice.facets.status), alice.total);
    assert.equal(sum(alice.facets.product), alice.total);
    assert.ok(!alice.facets.product.some((p: Json) => p.name === 'Orion'));
    assert.ok(staff.facets.product.some((p: Json) => p.name === 'Orion'));
    // public, the visible crash report, and alice's own confidential report.
    assert.deepEqual(
      alice.bugs.map((b: Json) => b.id).sort((x: number, y: number) => x - y),
      [w.bugs.public.id, w.bugs.aliceOwn.id, alice.bugs[0].id].sort((x, y) => x - y),
    );
    assert.equal(alice.total, 3);
    assert.equal(staff.total, 7);
  });

  test('private comments: not searchable, not in snippets, not counted for outsiders', async () => {
    const outsider = await search(w.users.alice, 'platypus');
    assert.equal(outsider.total, 0);
    assert.deepEqual(outsider.bugs, []);
    const staff = await search(w.users.dev, 'platypus');
    assert.equal(staff.total, 1);
    assert.match(staff.bugs[0].snippet, /<mark>platypus<\/mark>/);
    // A visible bug matched by a public word: its snippet never quotes the private comment.
    const crash = await search(w.users.alice, 'crash');
    const pub = crash.bugs.find((b: Json) => b.id === w.bugs.public.id);
    assert.ok(pub, 'the public bug is found');
    assert.ok(!/platypus|dump/i.test(pub.snippet), pub.snippet);
    // Nor does a phrase spanning public and private text match for an outsider.
    assert.equal((await search(w.users.alice, 'crash platypus')).total, 0);
    assert.equal((await search(w.users.dev, 'crash platypus')).total, 1);
    // Negation reads the same documents: staff exclude the bug by its private word, outsiders cannot.
    const staffNot = await search(w.users.dev, 'crash -platypus');
    assert.ok(!staffNot.bugs.some((b: Json) => b.id === w.bugs.public.id));
    const outsiderNot = await search(w.users.alice, 'crash -platypus');
    assert.ok(outsiderNot.bugs.some((b: Json) => b.id === w.bugs.public.id));
  });

  test('history and commenter filters do not reveal hidden bugs or private comments', async () => {
    assert.equal((await search(w.users.alice, 'commenter:Dev')).total, 0);
    assert.equal((await search(w.users.dev, 'commenter:Dev')).total, 1);
    assert.equal((await search(w.users.alice, 'confidential:yes')).total, 1); // her own only
  });

  test('an attachment added with a private comment does not count for has:attachment outsiders', async () => {
    const [c] = await t.db.query<{ id: number }>(
      sql`SELECT id FROM comments WHERE bug_id = ${w.bugs.public.id} AND is_private`,
    );
    await t.db.query(sql`INSERT INTO attachments (bug_id, uploader_id, file_name, kind, content_type, size, sha256,
        storage_key, comment_id)
      VALUES (${w.bugs.public.id}, ${w.users.dev.id}, 'dump.tgz', 'bundle', 'application/gzip', 1, ${'b'.repeat(64)},
        'k-search-access-1', ${c!.id})`);
    assert.equal((await search(w.users.alice, 'has:attachment')).total, 0);
    assert.equal((await search(w.users.alice, 'has:bundle')).total, 0);
    assert.equal((await search(w.users.dev, 'has:bundle')).total, 1);
  });

  test('a reporter and a CC finds their own confidential bug by its words', async () => {
    assert.equal((await search(w.users.alice, 'Alice private report')).total, 1);
    assert.equal((await search(w.users.bob, '"Bob on CC"')).total, 1);
    assert.equal((await search(w.users.alice, '"Bob on CC"')).total, 0);
  });

  test('suggestions: similar bugs never include a bug the viewer may not see', async () => {
    const url = (s: string) =>
      `/api/v1/search/similar?product_id=${w.products.omega.id}&summary=${encodeURIComponent(s)}`;
    const staff = (await get(w.users.dev, url('Confidential zebra leaks'))).data;
    assert.equal(staff.bugs[0].id, w.bugs.confidential.id);
    const alice = (await get(w.users.alice, url('Confidential zebra leaks'))).data;
    assert.ok(!alice.bugs.some((b: Json) => b.id === w.bugs.confidential.id), JSON.stringify(alice));
    const beta = (await get(w.users.alice, url('Beta-only regression'))).data;
    assert.deepEqual(beta.bugs, []);
    const orion = (
      await get(
        w.users.alice,
        `/api/v1/search/similar?product_id=${w.products.orion.id}&summary=${encodeURIComponent('Orion secret project bug')}`,
      )
    ).data;
    assert.deepEqual(orion.bugs, []);
  });

  test('CSV: rows only of visible bugs', async () => {
    const staff = await get(w.users.dev, '/api/v1/search/csv?q=zebra');
    assert.equal(staff.body.trim().split('\r\n').length, 2);
    const alice = await get(w.users.alice, '/api/v1/search/csv?q=zebra');
    assert.equal(
      alice.body,
      `${'id,summary,product,version,component,status,resolution,severity,priority,reporter,assignee,confidential,created,changed'}\r\n`,
    );
    const all = await get(w.users.alice, '/api/v1/search/csv');
    assert.ok(!all.body.includes('zebra') && !all.body.includes('Orion') && !all.body.includes('Beta-only'));
    assert.equal(all.body.trim().split('\r\n').length, 4);
  });

  test('the bug list page: no hidden bug in rows, counts or facets', async () => {
    const { cookie } = await t.session(w.users.alice);
    const res = await t.request({ method: 'GET', url: '/bugs?q=zebra', headers: { cookie } });
    assert.equal(res.statusCode, 200);
    assert.ok(!res.body.includes('Confidential zebra leak'));
    assert.match(res.body, /No bugs match/);
    const all = await t.request({ method: 'GET', url: '/bugs', headers: { cookie } });
    assert.ok(!all.body.includes('Orion') && !all.body.includes('zebra leak'));
    assert.match(all.body, /3 bugs/);
  });

  test('search needs a signed-in viewer', async () => {
    const res = await t.request({ method: 'GET', url: '/api/v1/search?q=zebra' });
    assert.equal(res.statusCode, 401);
    const csv = await t.request({ method: 'GET', url: '/api/v1/search/csv?q=zebra' });
    assert.equal(csv.statusCode, 401);
  });
});
