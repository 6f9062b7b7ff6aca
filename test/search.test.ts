/**
 * Search over HTTP on the shared world: every filter, the text (ranking, phrases, prefixes, snippets),
 * malformed queries, facets, exact totals, keyset paging while bugs change, and bug numbers.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { type Json, startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`search API (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  const b: Record<string, { id: number }> = {};

  const search = async (as: TestUser, q: string, extra = ''): Promise<Json> => {
    const res = await t.request({
      method: 'GET',
      url: `/api/v1/search?q=${encodeURIComponent(q)}${extra}`,
      as,
    });
    assert.equal(res.statusCode, 200, `${q}: ${res.body}`);
    return res.data;
  };
  const ids = async (as: TestUser, q: string, extra = '') =>
    ((await search(as, q, extra)).bugs as { id: number }[]).map((x) => x.id).sort((x, y) => x - y);
  const sorted = (...xs: { id: number }[]) => xs.map((x) => x.id).sort((x, y) => x - y);
  const patch = async (id: number, payload: object, as: TestUser = w.users.dev) => {
    const res = await t.request({ method: 'PATCH', url: `/api/v1/bugs/${id}`, payload, as });
    assert.equal(res.statusCode, 200, res.body);
  };
  const comment = async (id: number, body: string, isPrivate = false, as: TestUser = w.users.dev) => {
    const res = await t.request({
      method: 'POST',
      url: `/api/v1/bugs/${id}/comments`,
      payload: { body, is_private: isPrivate },
      as,
    });
    assert.equal(res.statusCode, 201, res.body);
  };

  before(async () => {
    t = await startTestApp();
    w = await world(t);
    const { dev, alice, bob, admin } = w.users;
    b['crashUi'] = await w.bug('Renderer crash when resizing window', {
      component_id: w.components.omegaUi.id,
      severity: 'critical',
      priority: 'P1',
      assignee_id: admin.id,
      description: 'The stack shows nsWindow resize handler.',
    });
    b['descOnly'] = await w.bug('Toolbar looks odd', { description: 'It may crash later on, who knows.' });
    b['commentOnly'] = await w.bug('Printing is slow', { severity: 'minor', cc: [alice.id] });
    await comment(b['commentOnly'].id, 'After a while it does crash, actually.');
    b['phrase'] = await w.bug('Memory leak in the exact phrase parser', { priority: 'P2' });
    b['aliceFiled'] = await w.bug('Keyboard shortcuts ignored', {}, alice);
    await comment(b['aliceFiled'].id, 'Same for me here', false, bob);
    b['resolved'] = await w.bug('Spelling mistake in dialog', { assignee_id: dev.id });
    await patch(b['resolved'].id, { status: 'RESOLVED', resolution: 'FIXED' });
  });
  after(() => t.close());

  test('with no query, everything the viewer may see, newest first, with the exact total', async () => {
    const all = await search(w.users.dev, '');
    const n = (await t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM bugs`))[0]!.n;
    assert.equal(all.total, n);
    const got = (all.bugs as { id: number }[]).map((x) => x.id);
    assert.deepEqual(
      got,
      [...got].sort((x, y) => y - x),
    );
    assert.deepEqual(all.sort, { column: 'id', dir: 'desc' });
  });

  test('each field filters: product, version, component, status, resolution, severity, priority', async () => {
    const dev = w.users.dev;
    assert.deepEqual(await ids(dev, 'product:Orion'), sorted(w.bugs.internal));
    assert.deepEqual(await ids(dev, 'version:2.0-beta'), sorted(w.bugs.onBeta));
    assert.deepEqual(await ids(dev, 'version:Omega/2.0-beta'), sorted(w.bugs.onBeta));
    assert.deepEqual(await ids(dev, 'component:UI'), sorted(b['crashUi']!));
    assert.deepEqual(await ids(dev, 'status:RESOLVED'), sorted(b['resolved']!));
    assert.deepEqual(await ids(dev, 'resolution:FIXED'), sorted(b['resolved']!));
    assert.deepEqual(await ids(dev, 'status:closed'), sorted(b['resolved']!));
    assert.ok(!(await ids(dev, 'status:open')).includes(b['resolved']!.id));
    assert.deepEqual(await ids(dev, 'severity:critical'), sorted(b['crashUi']!));
    assert.deepEqual(await ids(dev, 'sev:minor'), sorted(b['commentOnly']!));
    assert.deepEqual(await ids(dev, 'priority:P1,P2'), sorted(b['crashUi']!, b['phrase']!));
    assert.deepEqual(await ids(dev, 'resolution:none product:Orion'), sorted(w.bugs.internal));
  });

  test('people: reporter, assignee (and none), cc, commenter, with me, e-mail or name', async () => {
    const { dev, alice, bob, admin } = w.users;
    assert.deepEqual(await ids(alice, 'reporter:me'), sorted(w.bugs.aliceOwn, b['aliceFiled']!));
    assert.deepEqual(await ids(dev, `reporter:${alice.email}`), sorted(w.bugs.aliceOwn, b['aliceFiled']!));
    assert.deepEqual(await ids(dev, 'assignee:Admin'), sorted(b['crashUi']!));
    assert.deepEqual(await ids(dev, 'assignee:me'), sorted(b['resolved']!));
    assert.ok((await ids(dev, 'assignee:none')).includes(w.bugs.public.id));
    assert.deepEqual(await ids(bob, 'cc:me'), sorted(w.bugs.ccBob));
    assert.deepEqual(await ids(dev, `cc:${alice.id}`), sorted(b['commentOnly']!));
    assert.deepEqual(await ids(dev, 'commenter:Bob'), sorted(b['aliceFiled']!));
    assert.deepEqual(await ids(admin, 'commenter:me'), []);
  });

  test('confidential, has:attachment and has:bundle', async () => {
    const { dev } = w.users;
    assert.deepEqual(
      await ids(dev, 'confidential:yes'),
      sorted(w.bugs.confidential, w.bugs.aliceOwn, w.bugs.ccBob),
    );
    assert.ok(!(await ids(dev, 'confidential:no')).includes(w.bugs.confidential.id));
    const add = (bug: number, kind: string, n: number) =>
      t.db.query(sql`INSERT INTO attachments (bug_id, uploader_id, file_name, kind, content_type, size, sha256, storage_key)
        VALUES (${bug}, ${dev.id}, ${`f${n}`}, ${kind}, 'application/octet-stream', 1, ${'a'.repeat(64)}, ${`k-search-${n}`})`);
    await add(b['phrase']!.id, 'text', 1);
    await add(b['crashUi']!.id, 'bundle', 2);
    assert.deepEqual(await ids(dev, 'has:attachment'), sorted(b['phrase']!, b['crashUi']!));
    assert.deepEqual(await ids(dev, 'has:bundle'), sorted(b['crashUi']!));
    assert.ok(!(await ids(dev, '-has:attachments')).includes(b['phrase']!.id));
  });

  test('created and changed date ranges', async () => {
    const { dev } = w.users;
    const old = w.bugs.public.id;
    await t.db.query(
      sql`UPDATE bugs SET created_at = '2025-06-01T12:00:00Z', changed_at = '2025-07-01T12:00:00Z' WHERE id = ${old}`,
    );
    assert.deepEqual(await ids(dev, 'created<2025-12-31'), [old]);
    assert.deepEqual(await ids(dev, 'created:2025-06-01'), [old]);
    assert.deepEqual(await ids(dev, 'created:2025-05-01..2025-06-30 changed>=2025-07-01'), [old]);
    assert.ok(!(await ids(dev, 'created>-1d')).includes(old));
    assert.ok((await ids(dev, 'changed<-30d')).includes(old));
    assert.ok(!(await ids(dev, 'changed>-30d')).includes(old));
  });

  test('history: changed field X to Y between dates, and negated', async () => {
    const { dev } = w.users;
    const r = b['resolved']!.id;
    assert.deepEqual(await ids(dev, 'changed:status=RESOLVED'), [r]);
    assert.deepEqual(await ids(dev, 'changed:resolution=fixed@-1d..'), [r]);
    assert.deepEqual(await ids(dev, 'changed:status=RESOLVED@2020-01-01..2020-12-31'), []);
    assert.deepEqual(await ids(dev, 'changed:status=ASSIGNED'), []);
    const notChanged = await ids(dev, '-changed:status');
    assert.ok(!notChanged.includes(r) && notChanged.includes(w.bugs.public.id));
  });

  test('values within a field OR, fields AND, any term negated', async () => {
    const { dev } = w.users;
    assert.deepEqual(await ids(dev, 'severity:critical,minor'), sorted(b['crashUi']!, b['commentOnly']!));
    assert.deepEqual(await ids(dev, 'severity:critical,minor priority:P1'), sorted(b['crashUi']!));
    const notOmega = await ids(dev, '-product:Omega');
    assert.deepEqual(notOmega, sorted(w.bugs.internal));
    const notCritical = await ids(dev, 'crash -severity:critical');
    assert.deepEqual(notCritical, sorted(w.bugs.public, b['descOnly']!, b['commentOnly']!));
    assert.deepEqual(
      await ids(dev, 'crash -window'),
      sorted(w.bugs.public, b['descOnly']!, b['commentOnly']!),
    );
  });

  test('text is ranked summary first, then description, then comments, with snippets', async () => {
    const res = await search(w.users.dev, 'crash product:Omega');
    const order = (res.bugs as { id: number }[]).map((x) => x.id);
    assert.equal(res.sort.column, 'relevance');
    const pos = (id: number) => order.indexOf(id);
    assert.ok(pos(b['crashUi']!.id) >= 0 && pos(w.bugs.public.id) >= 0);
    assert.ok(pos(b['crashUi']!.id) < pos(b['descOnly']!.id), order.join());
    assert.ok(pos(w.bugs.public.id) < pos(b['descOnly']!.id), order.join());
    assert.ok(pos(b['descOnly']!.id) < pos(b['commentOnly']!.id), order.join());
    const hit = (res.bugs as Json[]).find((x) => x.id === b['commentOnly']!.id);
    assert.match(hit.snippet, /<mark>crash<\/mark>/);
    assert.ok(hit.rank > 0);
    // Stemming: "crashes" finds "crash".
    assert.ok((await ids(w.users.dev, 'crashes')).includes(b['crashUi']!.id));
  });

  test('phrases match words in order; prefixes match word starts', async () => {
    const { dev } = w.users;
    assert.deepEqual(await ids(dev, '"exact phrase"'), sorted(b['phrase']!));
    assert.deepEqual(await ids(dev, '"phrase exact"'), []);
    assert.deepEqual(await ids(dev, 'rend*'), sorted(b['crashUi']!));
    assert.deepEqual(await ids(dev, 'summary:resiz'), sorted(b['crashUi']!));
  });

  test('snippets escape the text around the marks', async () => {
    const x = await w.bug('Wombat title shows a < b & "c" <i>raw</i>');
    const res = await search(w.users.dev, 'wombat');
    assert.equal(res.bugs[0].id, x.id);
    const snippet: string = res.bugs[0].snippet;
    assert.match(snippet, /<mark>Wombat<\/mark>/);
    assert.match(snippet, /a &#60; b &#38; &#34;c&#34;/);
    assert.ok(!/<(?!\/?mark>)/.test(snippet), snippet);
  });

  test('a bug number jumps to the bug, only when the viewer may see it', async () => {
    const dev = await search(w.users.dev, `#${w.bugs.confidential.id}`);
    assert.equal(dev.jump_to, w.bugs.confidential.id);
    assert.deepEqual(
      dev.bugs.map((x: Json) => x.id),
      [w.bugs.confidential.id],
    );
    const alice = await search(w.users.alice, String(w.bugs.confidential.id));
    assert.equal(alice.jump_to, null);
    assert.equal(alice.total, 0);
  });

  test('malformed queries answer 400 with the position of the mistake', async () => {
    const bad = async (q: string, position: number, pattern: RegExp) => {
      const res = await t.request({
        method: 'GET',
        url: `/api/v1/search?q=${encodeURIComponent(q)}`,
        as: w.users.dev,
      });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.data.error.code, 'invalid_query');
      assert.equal(res.data.error.field, 'q');
      assert.equal(res.data.error.position, position, res.body);
      assert.match(res.data.error.message, pattern);
    };
    await bad('crash stauts:NEW', 6, /unknown field "stauts"; did you mean status/);
    await bad('status:NEW,ASIGNED', 11, /unknown status "ASIGNED"; did you mean ASSIGNED/);
    await bad('product:Omegaa', 8, /unknown product "Omegaa"; did you mean Omega/);
    await bad('severity:huge', 9, /unknown severity/);
    await bad('the and', 0, /too common/);
    await bad('-crash', 0, /at least one word that is not negated/);
    await bad('changed:status=DONE', 15, /unknown status "DONE"/);
    const cursor = await t.request({ method: 'GET', url: '/api/v1/search?cursor=garbage', as: w.users.dev });
    assert.equal(cursor.statusCode, 400);
    assert.equal(cursor.data.error.field, 'cursor');
    // A cursor forged with the right fingerprint but a key of the wrong shape: 400, never a SQL error.
    const sig = createHash('sha256')
      .update(JSON.stringify(['', {}, { column: 'changed', dir: 'desc' }]))
      .digest('base64url')
      .slice(0, 12);
    const forged = Buffer.from(JSON.stringify({ k: 'not a time', i: 5, s: sig })).toString('base64url');
    const forgedRes = await t.request({
      method: 'GET',
      url: `/api/v1/search?sort=changed&cursor=${forged}`,
      as: w.users.dev,
    });
    assert.equal(forgedRes.statusCode, 400, forgedRes.body);
    assert.equal(forgedRes.data.error.field, 'cursor');
    const status = await t.request({ method: 'GET', url: '/api/v1/search?status=NEWISH', as: w.users.dev });
    assert.equal(status.statusCode, 400);
    assert.equal(status.data.error.field, 'status');
    const sort = await t.request({ method: 'GET', url: '/api/v1/search?sort=colour', as: w.users.dev });
    assert.equal(sort.statusCode, 400);
    assert.equal(sort.data.error.field, 'sort');
  });

  test('an external user cannot name an internal product: same answer as one that does not exist', async () => {
    const res = await t.request({ method: 'GET', url: '/api/v1/search?q=product:Orion', as: w.users.alice });
    const none = await t.request({
      method: 'GET',
      url: '/api/v1/search?q=product:Nothing',
      as: w.users.alice,
    });
    assert.equal(res.statusCode, 400);
    assert.equal(none.statusCode, 400);
    assert.equal(
      res.data.error.message.replace('Orion', 'X'),
      none.data.error.message.replace('Nothing', 'X'),
    );
  });

  test('facets count per status and per product over the whole result, not the page', async () => {
    const res = await search(w.users.dev, '', '&limit=2');
    assert.equal(res.bugs.length, 2);
    const byStatus = Object.fromEntries(res.facets.status.map((f: Json) => [f.name, f.count]));
    const rows = await t.db.query<{ status: string; n: number }>(
      sql`SELECT status, count(*)::int AS n FROM bugs GROUP BY status`,
    );
    assert.deepEqual(byStatus, Object.fromEntries(rows.map((r) => [r.status, r.n])));
    const orion = res.facets.product.find((f: Json) => f.name === 'Orion');
    assert.equal(orion.count, 1);
    const sum = res.facets.product.reduce((s: number, f: Json) => s + f.count, 0);
    assert.equal(sum, res.total);
    const noFacets = await search(w.users.dev, '', '&facets=false');
    assert.equal(noFacets.facets, undefined);
    assert.equal(noFacets.total, res.total);
  });

  test('sorting by any column, both ways, pages through everything exactly once', async () => {
    const dev = w.users.dev;
    const everything = (await search(dev, '', '&limit=200')).bugs.length;
    for (const column of ['summary', 'product', 'severity', 'priority', 'assignee', 'changed', 'status']) {
      for (const dir of ['asc', 'desc']) {
        const seen: number[] = [];
        let cursor = '';
        let pages = 0;
        do {
          const res = await search(dev, '', `&sort=${column}&dir=${dir}&limit=4${cursor}`);
          seen.push(...res.bugs.map((x: Json) => x.id));
          cursor = res.next_cursor ? `&cursor=${res.next_cursor}` : '';
          pages++;
        } while (cursor && pages < 50);
        assert.equal(new Set(seen).size, everything, `${column} ${dir}`);
        assert.equal(seen.length, everything, `${column} ${dir}`);
      }
    }
    const bySeverity = await search(dev, 'sort:severity');
    assert.equal(bySeverity.bugs[0].severity, 'critical');
    const byRelevance = await search(dev, 'crash', '&sort=relevance&limit=1');
    const next = await search(dev, 'crash', `&sort=relevance&limit=50&cursor=${byRelevance.next_cursor}`);
    assert.ok(!next.bugs.some((x: Json) => x.id === byRelevance.bugs[0].id));
    assert.equal(next.bugs.length + 1, byRelevance.total);
  });

  test('a cursor of another query is refused', async () => {
    const first = await search(w.users.dev, '', '&limit=1');
    const res = await t.request({
      method: 'GET',
      url: `/api/v1/search?q=crash&limit=1&cursor=${first.next_cursor}`,
      as: w.users.dev,
    });
    assert.equal(res.statusCode, 400);
    assert.match(res.data.error.message, /another query/);
  });

  test('paging stays stable while bugs are filed and changed between pages', async () => {
    const dev = w.users.dev;
    for (let i = 0; i < 6; i++) await w.bug(`Stable paging item ${i}`);
    const before = await ids(dev, 'stable paging');
    for (const sort of ['', '&sort=changed', '&sort=summary']) {
      const seen: number[] = [];
      const touched = new Set<number>();
      let res = await search(dev, 'stable paging', `${sort}&limit=2`);
      seen.push(...res.bugs.map((x: Json) => x.id));
      let round = 0;
      while (res.next_cursor) {
        // Between pages: a new matching bug, and a change to one already seen and one not yet seen.
        await w.bug(`Stable paging newcomer ${sort} ${round++}`);
        const notSeen = before.find((id) => !seen.includes(id));
        if (notSeen) {
          await comment(notSeen, 'touched meanwhile');
          touched.add(notSeen);
        }
        await comment(seen[0]!, 'touched again');
        res = await search(dev, 'stable paging', `${sort}&limit=2&cursor=${res.next_cursor}`);
        seen.push(...res.bugs.map((x: Json) => x.id));
      }
      assert.equal(new Set(seen).size, seen.length, `no bug twice (${sort})`);
      if (sort === '&sort=changed') {
        // Sorting by last change: a bug changed before its page was read moves behind the reader;
        // every other bug is seen, none twice.
        assert.ok(before.every((id) => seen.includes(id) || touched.has(id)));
        assert.ok(touched.size > 0);
      } else {
        assert.ok(
          before.every((id) => seen.includes(id)),
          `every bug that existed is seen (${sort})`,
        );
      }
    }
  });

  test('two transactions commenting on one bug at once: the text keeps both comments', {
    skip: testDbKind() === 'pglite' ? 'PGlite runs one transaction at a time' : false,
  }, async () => {
    const x = await w.bug('Concurrent comments');
    const insert = (body: string) =>
      sql`INSERT INTO comments (bug_id, author_id, body, bug_version) VALUES (${x.id}, ${w.users.dev.id}, ${body}, 1)`;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const first = t.db.transaction(async (tx) => {
      await tx.query(insert('aardvark arrives first'));
      await gate;
    });
    await new Promise((r) => setTimeout(r, 300));
    const second = t.db.transaction((tx) => tx.query(insert('axolotl arrives second')));
    await new Promise((r) => setTimeout(r, 300));
    release();
    await Promise.all([first, second]);
    assert.deepEqual(await ids(w.users.dev, 'aardvark'), [x.id]);
    assert.deepEqual(await ids(w.users.dev, 'axolotl'), [x.id]);
  });

  test('text kept current in the transaction: new comments and edits are found at once', async () => {
    const dev = w.users.dev;
    const x = await w.bug('Quokka misbehaves');
    await comment(x.id, 'The narwhal module is at fault');
    assert.deepEqual(await ids(dev, 'narwhal'), [x.id]);
    await patch(x.id, { summary: 'Capybara misbehaves' });
    assert.deepEqual(await ids(dev, 'quokka'), []);
    assert.deepEqual(await ids(dev, 'capybara'), [x.id]);
  });
});
