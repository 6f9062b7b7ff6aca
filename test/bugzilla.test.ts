/**
 * The Bugzilla 5.0 REST layer over HTTP (inject): Bugzilla's error form, codes and statuses; the
 * credentials it takes (API key parameter and header, login tokens kept hashed, logout); its shapes
 * (products, bugs with include_fields/exclude_fields, comments, history, users, fields); and the same
 * rules as Bugzot's own API — a confidential or internal bug is "does not exist" (101) to an external
 * user and is absent from searches and counts; workflow steps and mid-air collisions are enforced.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { type Json, startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`Bugzilla REST compatibility (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  const dataDir = mkdtempSync(join(tmpdir(), 'bugzot-bz-'));
  before(async () => {
    t = await startTestApp({ DATA_DIR: dataDir });
    w = await world(t);
  });
  after(async () => {
    await t.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A /rest/ call authenticated Bugzilla's way (X-BUGZILLA-API-KEY), never with the Bearer header. */
  const rest = (
    method: 'GET' | 'POST' | 'PUT',
    url: string,
    as?: TestUser,
    payload?: object,
    headers: Record<string, string> = {},
  ) =>
    t.request({
      method,
      url: `/rest${url}`,
      ...(payload ? { payload } : {}),
      headers: { ...(as ? { 'x-bugzilla-api-key': as.key } : {}), ...headers },
    });

  /** Checks Bugzilla's error form, code and HTTP status. */
  const isError = (res: { statusCode: number; data: Json }, status: number, code: number) => {
    assert.equal(res.statusCode, status, JSON.stringify(res.data));
    assert.equal(res.data.error, true);
    assert.equal(res.data.code, code);
    assert.equal(typeof res.data.message, 'string');
    assert.match(res.data.documentation, /^https:\/\//);
  };

  test('version and extensions answer without credentials; an unknown resource is 32614/404', async () => {
    const v = await rest('GET', '/version');
    assert.equal(v.statusCode, 200);
    assert.match(v.data.version, /^5\.0/);
    assert.deepEqual((await rest('GET', '/extensions')).data, { extensions: {} });
    isError(await rest('GET', '/no/such/thing'), 404, 32614);
    isError(await rest('PUT', '/version', w.users.dev, {}), 404, 32614);
  });

  test('without credentials the bug calls answer 410/401; a wrong API key is 306, a wrong token 32000', async () => {
    isError(await rest('GET', '/bug?product=Omega'), 401, 410);
    isError(await rest('GET', `/bug/${w.bugs.public.id}`), 401, 410);
    isError(await rest('GET', '/bug?Bugzilla_api_key=bzk_nope'), 400, 306);
    isError(
      await rest('GET', '/whoami', undefined, undefined, { 'x-bugzilla-api-key': 'bzk_wrong' }),
      400,
      306,
    );
    isError(await rest('GET', '/whoami?Bugzilla_token=1-AAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 400, 32000);
  });

  test('an API key works as api_key, Bugzilla_api_key and the X-BUGZILLA-API-KEY header', async () => {
    const dev = w.users.dev;
    for (const res of [
      await rest('GET', `/whoami?api_key=${encodeURIComponent(dev.key)}`),
      await rest('GET', `/whoami?Bugzilla_api_key=${encodeURIComponent(dev.key)}`),
      await rest('GET', '/whoami', dev),
    ]) {
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.data, { id: dev.id, real_name: dev.name, name: dev.email, login: dev.email });
    }
    // In a JSON body too (Bugzilla merges body and query string parameters).
    const viaBody = await rest('POST', `/bug/${w.bugs.public.id}/comment`, undefined, {
      Bugzilla_api_key: dev.key,
      comment: 'Key in the body',
    });
    assert.equal(viaBody.statusCode, 201, viaBody.body);
  });

  test('login answers {id, token}; the token works as parameter and header, is stored hashed, and dies at logout', async () => {
    const alice = w.users.alice;
    isError(
      await rest('GET', `/login?login=${encodeURIComponent(alice.email)}&password=wrong-password`),
      401,
      300,
    );
    isError(await rest('GET', '/login?password=x'), 400, 50);
    const res = await rest(
      'GET',
      `/login?login=${encodeURIComponent(alice.email)}&password=${encodeURIComponent('correct horse battery')}`,
    );
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.data.id, alice.id);
    const token: string = res.data.token;
    assert.match(token, new RegExp(`^${alice.id}-`));
    // Only the hash of the session part is at rest.
    const session = token.slice(token.indexOf('-') + 1);
    const rows = await t.db.query<{ token_hash: string }>(
      sql`SELECT token_hash FROM sessions WHERE user_id = ${alice.id}`,
    );
    const hash = createHash('sha256').update(session).digest('hex');
    assert.ok(rows.some((r) => r.token_hash === hash));
    assert.ok(rows.every((r) => !r.token_hash.includes(session)));

    const who = await rest('GET', `/whoami?Bugzilla_token=${encodeURIComponent(token)}`);
    assert.equal(who.data.id, alice.id);
    const viaHeader = await rest('GET', '/whoami', undefined, undefined, { 'x-bugzilla-token': token });
    assert.equal(viaHeader.data.id, alice.id);
    const valid = await rest(
      'GET',
      `/valid_login?login=${encodeURIComponent(alice.email)}&token=${encodeURIComponent(token)}`,
    );
    assert.deepEqual(valid.data, { result: true });
    const otherLogin = await rest(
      'GET',
      `/valid_login?login=${encodeURIComponent(w.users.bob.email)}&token=${encodeURIComponent(token)}`,
    );
    assert.deepEqual(otherLogin.data, { result: false });
    // Another user's id in front of a live session token is refused.
    isError(await rest('GET', `/whoami?token=${w.users.bob.id}-${encodeURIComponent(session)}`), 400, 32000);

    assert.deepEqual((await rest('GET', `/logout?token=${encodeURIComponent(token)}`)).data, {});
    isError(await rest('GET', `/whoami?token=${encodeURIComponent(token)}`), 400, 32000);
    assert.deepEqual(
      (
        await rest(
          'GET',
          `/valid_login?login=${encodeURIComponent(alice.email)}&token=${encodeURIComponent(token)}`,
        )
      ).data,
      { result: false },
    );
  });

  test('Bugzilla_login and Bugzilla_password on the call itself (parameters or headers) authenticate it', async () => {
    const bob = w.users.bob;
    const q = `Bugzilla_login=${encodeURIComponent(bob.email)}&Bugzilla_password=${encodeURIComponent('correct horse battery')}`;
    assert.equal((await rest('GET', `/whoami?${q}`)).data.id, bob.id);
    const viaHeaders = await rest('GET', '/whoami', undefined, undefined, {
      'x-bugzilla-login': bob.email,
      'x-bugzilla-password': 'correct horse battery',
    });
    assert.equal(viaHeaders.data.id, bob.id);
    isError(
      await rest('GET', `/whoami?Bugzilla_login=${encodeURIComponent(bob.email)}&Bugzilla_password=nope`),
      401,
      300,
    );
  });

  test('a Bugzot session cookie is not a Bugzilla credential', async () => {
    const { cookie } = await t.session(w.users.dev);
    isError(await rest('GET', '/whoami', undefined, undefined, { cookie }), 401, 410);
  });

  test('products: an external user sees released products only, in Bugzilla shapes; include_fields reaches into components', async () => {
    const ids = (await rest('GET', '/product_accessible', w.users.alice)).data.ids;
    assert.deepEqual(ids, [w.products.omega.id]);
    assert.deepEqual((await rest('GET', '/product_enterable', w.users.alice)).data.ids, [
      w.products.omega.id,
    ]);
    const staffIds = (await rest('GET', '/product_selectable', w.users.dev)).data.ids;
    assert.deepEqual([...staffIds].sort(), [w.products.omega.id, w.products.orion.id].sort());

    const omega = (await rest('GET', `/product/Omega`, w.users.alice)).data.products;
    assert.equal(omega.length, 1);
    assert.equal(omega[0].name, 'Omega');
    assert.equal(omega[0].is_active, true);
    assert.deepEqual(
      omega[0].versions.map((v: Json) => v.name),
      ['1.0'],
      'the unreleased 2.0-beta is not shown to an external user',
    );
    assert.deepEqual(omega[0].components.map((c: Json) => c.name).sort(), ['Core', 'UI']);
    assert.ok('default_assigned_to' in omega[0].components[0]);
    assert.deepEqual(omega[0].milestones, []);

    // python-bugzilla asks /product/get?ids=..&include_fields=..
    const slim = await rest(
      'GET',
      `/product/get?ids=${w.products.omega.id}&ids=${w.products.orion.id}&include_fields=name&include_fields=components.name`,
      w.users.alice,
    );
    assert.deepEqual(slim.data.products, [{ name: 'Omega', components: [{ name: 'Core' }, { name: 'UI' }] }]);
    const orionForDev = await rest(
      'GET',
      `/product?names=Orion&exclude_fields=components,versions`,
      w.users.dev,
    );
    assert.equal(orionForDev.data.products.length, 1);
    assert.equal('components' in orionForDev.data.products[0], false);
  });

  test('a confidential or internal bug does not exist (101/404) for an external user, and is absent from searches and counts', async () => {
    const alice = w.users.alice;
    for (const b of [w.bugs.confidential, w.bugs.internal, w.bugs.onBeta, w.bugs.ccBob]) {
      isError(await rest('GET', `/bug/${b.id}`, alice), 404, 101);
      isError(await rest('GET', `/bug/${b.id}/comment`, alice), 404, 101);
      isError(await rest('GET', `/bug/${b.id}/history`, alice), 404, 101);
      isError(await rest('PUT', `/bug/${b.id}`, alice, { comment: { body: 'hi' } }), 404, 101);
      isError(await rest('POST', `/bug/${b.id}/comment`, alice, { comment: 'hi' }), 404, 101);
      const byId = await rest('GET', `/bug?id=${b.id}`, alice);
      assert.deepEqual(byId.data.bugs, []);
    }
    // The same message as a bug that does not exist at all.
    const hidden = await rest('GET', `/bug/${w.bugs.confidential.id}`, alice);
    const missing = await rest('GET', '/bug/999999', alice);
    assert.equal(hidden.data.message.replace(/\d+/, 'N'), missing.data.message.replace(/\d+/, 'N'));

    const all = await rest('GET', '/bug?product=Omega&product=Orion&include_fields=id', alice);
    const seen = all.data.bugs.map((b: Json) => b.id).sort();
    assert.deepEqual(seen, [w.bugs.public.id, w.bugs.aliceOwn.id].sort());
    const count = await rest('GET', '/bug?product=Omega,Orion&count_only=1', alice);
    assert.deepEqual(count.data, { bug_count: 2 });
    assert.deepEqual((await rest('GET', '/bug?summary=zebra', alice)).data.bugs, []);
    assert.deepEqual((await rest('GET', '/bug?summary=zebra&count_only=1', alice)).data, { bug_count: 0 });
    assert.deepEqual((await rest('GET', '/bug?quicksearch=zebra&count_only=1', alice)).data, {
      bug_count: 0,
    });

    const staff = await rest('GET', '/bug?summary=ZEBRA&include_fields=id,summary', w.users.dev);
    assert.deepEqual(staff.data.bugs, [{ id: w.bugs.confidential.id, summary: 'Confidential zebra leak' }]);
    assert.deepEqual((await rest('GET', '/bug?quicksearch=zebra%20leak&count_only=true', w.users.dev)).data, {
      bug_count: 1,
    });
    // quicksearch runs Bugzot's search language for the same viewer: a hidden bug's number finds nothing.
    const quickHidden = await rest(
      'GET',
      `/bug?quicksearch=${w.bugs.confidential.id}&include_fields=id`,
      alice,
    );
    assert.deepEqual(quickHidden.data.bugs, []);
    const quickStaff = await rest(
      'GET',
      `/bug?quicksearch=${w.bugs.confidential.id}&include_fields=id`,
      w.users.dev,
    );
    assert.deepEqual(quickStaff.data.bugs, [{ id: w.bugs.confidential.id }]);
    // With permissive, a hidden bug is a fault rather than an error.
    const permissive = await rest('GET', `/bug/${w.bugs.internal.id}?permissive=1`, alice);
    assert.equal(permissive.statusCode, 200);
    assert.deepEqual(permissive.data.bugs, []);
    assert.equal(permissive.data.faults[0].faultCode, 101);
  });

  test('a bug in Bugzilla shape: field names, dates, people by login for staff and by name for externals', async () => {
    const id = w.bugs.ccBob.id;
    const dev = (await rest('GET', `/bug/${id}`, w.users.dev)).data.bugs[0];
    assert.equal(dev.id, id);
    assert.equal(dev.summary, 'Confidential with Bob on CC');
    assert.equal(dev.status, 'NEW');
    assert.equal(dev.resolution, '');
    assert.equal(dev.is_open, true);
    assert.equal(dev.product, 'Omega');
    assert.equal(dev.component, 'Core');
    assert.equal(dev.version, '1.0');
    assert.equal(dev.severity, 'normal');
    assert.equal(dev.priority, 'P3');
    assert.equal(dev.creator, w.users.dev.email);
    assert.deepEqual(dev.creator_detail, {
      id: w.users.dev.id,
      real_name: 'Dev',
      name: w.users.dev.email,
      email: w.users.dev.email,
    });
    assert.deepEqual(dev.cc, [w.users.bob.email]);
    assert.deepEqual(dev.groups, ['confidential']);
    assert.match(dev.creation_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(dev.last_change_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal('description' in dev, false, 'description is an extra field');

    // Bob (external, on the CC list) sees the bug, but other people by display name only.
    const bob = (await rest('GET', `/bug/${id}`, w.users.bob)).data.bugs[0];
    assert.equal(bob.creator, 'Dev');
    assert.equal('email' in bob.creator_detail, false);
    assert.deepEqual(bob.cc, [w.users.bob.email], 'his own address he may see');
    assert.equal(JSON.stringify(bob).includes(w.users.dev.email), false);
  });

  test('include_fields and exclude_fields: names, _default, _all, _extra; exclusion wins', async () => {
    const id = w.bugs.public.id;
    const get = async (q: string) => (await rest('GET', `/bug/${id}?${q}`, w.users.dev)).data.bugs[0];
    assert.deepEqual(Object.keys(await get('include_fields=id,status')).sort(), ['id', 'status']);
    assert.deepEqual(Object.keys(await get('include_fields=id&include_fields=summary')).sort(), [
      'id',
      'summary',
    ]);
    const defaults = await get('include_fields=_default');
    assert.ok('summary' in defaults && 'cc_detail' in defaults && !('description' in defaults));
    const everything = await get('include_fields=_all');
    assert.equal(everything.description, '');
    assert.equal(everything.comments[0].count, 0);
    assert.deepEqual(Object.keys(await get('include_fields=_extra')).sort(), ['comments', 'description']);
    const noCc = await get('exclude_fields=cc,cc_detail,creator_detail.email');
    assert.ok(!('cc' in noCc) && !('cc_detail' in noCc));
    assert.deepEqual(Object.keys(noCc.creator_detail).sort(), ['id', 'name', 'real_name']);
    assert.deepEqual(await get('include_fields=id,summary&exclude_fields=summary'), { id });
    // extra_fields (Red Hat's, sent by python-bugzilla) adds extra fields to the defaults.
    const extra = await get('extra_fields=comments');
    assert.ok('summary' in extra && Array.isArray(extra.comments) && !('description' in extra));
    const search = await rest('GET', `/bug?id=${id}&include_fields=assigned_to_detail.id,id`, w.users.dev);
    assert.deepEqual(search.data.bugs, [{ id }]);
  });

  test('search parameters: product, component, version, status, resolution, creator, assigned_to, id, limit, offset, dates', async () => {
    const dev = w.users.dev;
    const q = async (s: string) =>
      ((await rest('GET', `/bug?${s}&include_fields=id`, dev)).data.bugs as Json[]).map((b) => b.id);
    const omegaCore = await q('product=Omega&component=Core&version=1.0');
    assert.ok(omegaCore.includes(w.bugs.public.id) && !omegaCore.includes(w.bugs.onBeta.id));
    assert.deepEqual(await q(`product=Orion`), [w.bugs.internal.id]);
    assert.ok((await q('status=NEW')).includes(w.bugs.public.id));
    assert.deepEqual(await q('bug_status=CLOSED'), []);
    assert.ok((await q('resolution=---')).includes(w.bugs.public.id));
    assert.deepEqual(await q(`creator=${encodeURIComponent(w.users.alice.email)}`), [w.bugs.aliceOwn.id]);
    assert.deepEqual(await q(`reporter=${encodeURIComponent(w.users.alice.email.toUpperCase())}`), [
      w.bugs.aliceOwn.id,
    ]);
    assert.deepEqual(await q(`assigned_to=nobody%40example.test`), []);
    assert.deepEqual(
      await q(`id=${w.bugs.public.id},${w.bugs.internal.id}`),
      [w.bugs.public.id, w.bugs.internal.id].sort((a, b) => a - b),
    );
    const all = await q('product=Omega');
    assert.deepEqual(await q('product=Omega&limit=2'), all.slice(0, 2));
    assert.deepEqual(await q('product=Omega&limit=2&offset=2'), all.slice(2, 4));
    assert.deepEqual(await q('product=Omega&creation_time=2999-01-01T00:00:00Z'), []);
    assert.deepEqual(await q('product=Omega&last_change_time=2000-01-01'), all);
    // quicksearch narrows the other criteria, and pages like them.
    assert.deepEqual(await q('quicksearch=zebra&product=Omega'), [w.bugs.confidential.id]);
    assert.deepEqual(await q('quicksearch=zebra&product=Orion'), []);
    const crashes = await q('quicksearch=crash');
    assert.deepEqual(await q('quicksearch=crash&limit=1&offset=1'), crashes.slice(1, 2));
    isError(await rest('GET', '/bug?creation_time=yesterday-ish', dev), 400, 56);
    isError(await rest('GET', '/bug?limit=many', dev), 400, 52);
    // A filter Bugzot does not model is refused, never silently ignored (which would widen the search).
    isError(await rest('GET', '/bug?keywords=regression', dev), 400, 108);
    // An external user names other people by display name only: an address does not match.
    assert.deepEqual(
      (
        await rest(
          'GET',
          `/bug?creator=${encodeURIComponent(w.users.dev.email)}&include_fields=id`,
          w.users.alice,
        )
      ).data.bugs,
      [],
    );
    assert.deepEqual(
      (await rest('GET', `/bug?creator=Dev&include_fields=id`, w.users.alice)).data.bugs.map(
        (b: Json) => b.id,
      ),
      [w.bugs.public.id],
    );
  });

  test('POST /bug files a bug by names (201 {id}); bad product, component, summary and fields get their codes', async () => {
    const alice = w.users.alice;
    const res = await rest('POST', '/bug', alice, {
      product: 'Omega',
      component: 'UI',
      version: '1.0',
      summary: 'Filed through the Bugzilla API',
      description: 'Steps: open it.',
      severity: 'Major',
      op_sys: 'Linux',
      platform: 'x86_64',
    });
    assert.equal(res.statusCode, 201, res.body);
    const id = res.data.id;
    const stored = await t.request({ method: 'GET', url: `/api/v1/bugs/${id}`, as: w.users.dev });
    assert.equal(stored.data.summary, 'Filed through the Bugzilla API');
    assert.equal(stored.data.description, 'Steps: open it.');
    assert.equal(stored.data.severity, 'major');
    assert.equal(stored.data.component.name, 'UI');
    assert.equal(stored.data.reporter.id, alice.id);

    const base = { product: 'Omega', component: 'Core', version: '1.0', summary: 'x' };
    isError(await rest('POST', '/bug', alice, { ...base, product: 'Orion' }), 401, 106);
    isError(await rest('POST', '/bug', alice, { ...base, version: '2.0-beta' }), 404, 51);
    isError(await rest('POST', '/bug', alice, { ...base, component: 'Nope' }), 400, 105);
    isError(await rest('POST', '/bug', alice, { ...base, summary: '  ' }), 400, 107);
    isError(await rest('POST', '/bug', alice, { ...base, keywords: ['x'] }), 400, 108);
    isError(await rest('POST', '/bug', alice, { ...base, priority: 'P1' }), 401, 115);
    isError(await rest('POST', '/bug', alice, { ...base, assigned_to: w.users.dev.email }), 401, 115);
    isError(await rest('POST', '/bug', undefined, base), 401, 410);
    const conf = await rest('POST', '/bug', w.users.dev, {
      ...base,
      priority: 'Highest',
      groups: ['confidential'],
    });
    assert.equal(conf.statusCode, 201, conf.body);
    const confBug = (await rest('GET', `/bug/${conf.data.id}`, w.users.dev)).data.bugs[0];
    assert.deepEqual([confBug.priority, confBug.groups], ['P1', ['confidential']]);
    isError(await rest('GET', `/bug/${conf.data.id}`, alice), 404, 101);
  });

  test('PUT /bug/{id}: Bugzilla changes {added, removed}, comment, cc add/remove, dupe_of (of a bug that exists); workflow codes; mid-air', async () => {
    const dev = w.users.dev;
    const id = (await w.bug('Bugzilla update target')).id;
    const res = await rest('PUT', `/bug/${id}`, dev, {
      ids: [id],
      status: 'ASSIGNED',
      assigned_to: dev.email,
      priority: 'High',
      comment: { body: 'Taking this one.' },
      cc: { add: [w.users.bob.email] },
    });
    assert.equal(res.statusCode, 200, res.body);
    const changed = res.data.bugs[0];
    assert.equal(changed.id, id);
    assert.deepEqual(changed.changes.status, { added: 'ASSIGNED', removed: 'NEW' });
    assert.deepEqual(changed.changes.priority, { added: 'P2', removed: 'P3' });
    assert.deepEqual(changed.changes.assigned_to, { added: 'Dev', removed: '' });
    assert.deepEqual(changed.changes.cc, { added: 'Bob', removed: '' });
    const stored = await t.request({ method: 'GET', url: `/api/v1/bugs/${id}`, as: dev });
    assert.equal(stored.data.status, 'ASSIGNED');
    assert.equal(stored.data.assignee.id, dev.id);
    assert.deepEqual(
      stored.data.cc.map((u: Json) => u.id),
      [w.users.bob.id],
    );
    const comments = await t.request({ method: 'GET', url: `/api/v1/bugs/${id}/comments`, as: dev });
    assert.equal(comments.data.comments.at(-1).body, 'Taking this one.');

    // Workflow rules, in Bugzilla's codes; nothing is written by a refused change.
    isError(await rest('PUT', `/bug/${id}`, dev, { status: 'VERIFIED' }), 400, 123);
    isError(await rest('PUT', `/bug/${id}`, dev, { status: 'RESOLVED' }), 400, 121);
    isError(
      await rest('PUT', `/bug/${id}`, dev, { status: 'RESOLVED', resolution: 'FIXED', whiteboard: 'x' }),
      400,
      108,
    );
    isError(await rest('PUT', `/bug/${id}`, dev, { severity: 'apocalyptic' }), 404, 51);
    isError(await rest('PUT', `/bug/${id}`, w.users.bob, { summary: 'Bob was here' }), 401, 115);
    isError(await rest('PUT', `/bug/${id}`, w.users.bob, { cc: { add: [w.users.alice.email] } }), 401, 115);
    const bobOff = await rest('PUT', `/bug/${id}`, w.users.bob, { cc: { remove: [w.users.bob.email] } });
    assert.deepEqual(bobOff.data.bugs[0].changes.cc, { added: '', removed: 'Bob' });

    // Mid-air collision: a stale update_token is refused and changes nothing.
    const token = (await rest('GET', `/bug/${id}?include_fields=update_token`, dev)).data.bugs[0]
      .update_token;
    await rest('PUT', `/bug/${id}`, dev, { comment: { body: 'Meanwhile.' } });
    isError(await rest('PUT', `/bug/${id}`, dev, { summary: 'Stale edit', update_token: token }), 409, 32000);
    assert.equal(
      (await rest('GET', `/bug/${id}?include_fields=summary`, dev)).data.bugs[0].summary,
      'Bugzilla update target',
    );

    // dupe_of resolves the bug as a duplicate; an original the viewer cannot see does not exist.
    const dup = await rest('PUT', `/bug/${id}`, dev, { dupe_of: w.bugs.public.id });
    assert.equal(dup.statusCode, 200, dup.body);
    assert.deepEqual(dup.data.bugs[0].changes.status, { added: 'RESOLVED', removed: 'ASSIGNED' });
    assert.deepEqual(dup.data.bugs[0].changes.resolution, { added: 'DUPLICATE', removed: '' });
    assert.deepEqual(dup.data.bugs[0].changes.dupe_of, { added: String(w.bugs.public.id), removed: '' });
    const other = (await w.bug('Duplicate of nothing')).id;
    isError(await rest('PUT', `/bug/${other}`, dev, { dupe_of: 999999 }), 404, 101);

    // Bugzot's ETag as If-Match works the same way.
    isError(
      await rest('PUT', `/bug/${id}`, dev, { summary: 'Stale again' }, { 'if-match': `"bug-${id}-v1"` }),
      409,
      32000,
    );

    // Several bugs in one call (python-bugzilla's `modify 1,2`): each gets its own changes.
    const a = (await w.bug('Batch A')).id;
    const b = (await w.bug('Batch B')).id;
    const batch = await rest('PUT', `/bug/${a}`, dev, { ids: [a, b], severity: 'minor' });
    assert.deepEqual(
      batch.data.bugs.map((x: Json) => [x.id, x.changes.severity]),
      [
        [a, { added: 'minor', removed: 'normal' }],
        [b, { added: 'minor', removed: 'normal' }],
      ],
    );
    // One hidden bug among them: nothing is changed.
    const c = (await w.bug('Batch C')).id;
    isError(
      await rest('PUT', `/bug/${c}`, w.users.alice, { ids: [c, w.bugs.internal.id], comment: { body: 'x' } }),
      404,
      101,
    );
    const cComments = await t.request({ method: 'GET', url: `/api/v1/bugs/${c}/comments`, as: dev });
    assert.deepEqual(cComments.data.comments, []);

    // A no-op answers no changes.
    const same = await rest('PUT', `/bug/${id}`, dev, { summary: 'Bugzilla update target' });
    assert.deepEqual(same.data.bugs[0].changes, {});
  });

  test('comments: comment 0 is the description, private comments stay hidden from externals; add_comment answers 201 {id}', async () => {
    const id = w.bugs.public.id;
    const added = await rest('POST', `/bug/${id}/comment`, w.users.dev, {
      comment: 'Staff only note',
      is_private: true,
    });
    assert.equal(added.statusCode, 201, added.body);
    const pub = await rest('POST', `/bug/${id}/comment`, w.users.alice, { comment: 'Me too' });
    assert.equal(pub.statusCode, 201, pub.body);
    isError(
      await rest('POST', `/bug/${id}/comment`, w.users.alice, { comment: 'secret', is_private: true }),
      401,
      113,
    );
    isError(await rest('POST', `/bug/${id}/comment`, w.users.alice, {}), 400, 50);

    const staff = (await rest('GET', `/bug/${id}/comment`, w.users.dev)).data;
    const list: Json[] = staff.bugs[String(id)].comments;
    assert.equal(list[0].count, 0);
    assert.equal(list[0].creator, w.users.dev.email);
    assert.ok(list.some((c) => c.id === added.data.id && c.is_private && c.text === 'Staff only note'));
    const mine = list.find((c) => c.id === pub.data.id);
    assert.equal(mine.creator, w.users.alice.email);
    assert.match(mine.time, /Z$/);

    const external = (await rest('GET', `/bug/${id}/comment`, w.users.alice)).data.bugs[String(id)]
      .comments as Json[];
    assert.equal(
      external.some((c) => c.id === added.data.id),
      false,
    );
    assert.ok(external.some((c) => c.id === pub.data.id));
    const future = await rest('GET', `/bug/${id}/comment?new_since=2999-01-01T00:00:00Z`, w.users.dev);
    assert.deepEqual(future.data.bugs[String(id)].comments, []);
  });

  test('history: change sets with who, when and Bugzilla field names', async () => {
    const dev = w.users.dev;
    const id = (await w.bug('History target')).id;
    await rest('PUT', `/bug/${id}`, dev, { status: 'ASSIGNED', severity: 'critical' });
    await rest('PUT', `/bug/${id}`, dev, { status: 'RESOLVED', resolution: 'FIXED' });
    const h = (await rest('GET', `/bug/${id}/history`, dev)).data.bugs[0];
    assert.equal(h.id, id);
    assert.equal(h.history.length, 2);
    assert.equal(h.history[0].who, dev.email);
    assert.match(h.history[0].when, /Z$/);
    assert.deepEqual(h.history[0].changes.map((c: Json) => c.field_name).sort(), ['severity', 'status']);
    assert.deepEqual(
      h.history[1].changes.find((c: Json) => c.field_name === 'resolution'),
      { field_name: 'resolution', removed: '', added: 'FIXED' },
    );
    const forAlice = (await rest('GET', `/bug/${id}/history`, w.users.alice)).data.bugs[0];
    assert.equal(forAlice.history[0].who, 'Dev');
  });

  test('users: anonymous callers get 505; externals see names only and cannot search or look up addresses', async () => {
    const { alice, bob, admin } = w.users;
    isError(await rest('GET', '/user?ids=1'), 401, 505);
    const byId = await rest('GET', `/user?ids=${bob.id}`, alice);
    assert.deepEqual(byId.data.users, [{ id: bob.id, real_name: 'Bob', name: 'Bob' }]);
    const self = await rest('GET', `/user/${encodeURIComponent(alice.email)}`, alice);
    assert.equal(self.data.users[0].email, alice.email);
    assert.equal(self.data.users[0].can_login, true);
    isError(await rest('GET', `/user?names=${encodeURIComponent(bob.email)}`, alice), 404, 51);
    isError(await rest('GET', '/user?match=bob', alice), 401, 505);
    const staff = await rest('GET', `/user?match=Bob`, admin);
    assert.deepEqual(
      staff.data.users.map((u: Json) => u.email),
      [bob.email],
    );
    const named = await rest(
      'GET',
      `/user?names=${encodeURIComponent(bob.email)}&include_fields=id,name`,
      admin,
    );
    assert.deepEqual(named.data.users, [{ id: bob.id, name: bob.email }]);
  });

  test('fields: bug_status with can_change_to, legal values by name, per product', async () => {
    const dev = w.users.dev;
    const status = (await rest('GET', '/field/bug/bug_status', dev)).data.fields[0];
    assert.equal(status.name, 'bug_status');
    const fresh = status.values.find((v: Json) => v.name === 'NEW');
    assert.equal(fresh.is_open, true);
    assert.ok(fresh.can_change_to.some((c: Json) => c.name === 'ASSIGNED'));
    assert.deepEqual((await rest('GET', '/field/bug/priority/values', dev)).data.values, [
      'P1',
      'P2',
      'P3',
      'P4',
      'P5',
    ]);
    assert.ok((await rest('GET', '/field/bug/severity/values', dev)).data.values.includes('enhancement'));
    assert.ok((await rest('GET', '/field/bug/resolution/values', dev)).data.values.includes('DUPLICATE'));
    const versions = await rest('GET', `/field/bug/version/${w.products.omega.id}/values`, w.users.alice);
    assert.deepEqual(versions.data.values, ['1.0']);
    isError(await rest('GET', `/field/bug/version/${w.products.orion.id}/values`, w.users.alice), 401, 106);
    const products = await rest('GET', '/field/bug/product/values', w.users.alice);
    assert.deepEqual(products.data.values, ['Omega']);
    const names = (await rest('GET', '/field/bug?include_fields=name', dev)).data.fields.map(
      (f: Json) => f.name,
    );
    assert.ok(names.includes('component') && names.includes('short_desc'));
    isError(await rest('GET', '/field/bug/keywords/values', dev), 400, 108);
  });

  test('a read-only API key reads but cannot change (115)', async () => {
    const created = await t.request({
      method: 'POST',
      url: '/api/v1/api-keys',
      as: w.users.dev,
      payload: { name: 'ro', scope: 'read-only' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const key = created.data.key as string;
    const read = await rest('GET', `/bug/${w.bugs.public.id}?include_fields=id`, undefined, undefined, {
      'x-bugzilla-api-key': key,
    });
    assert.equal(read.statusCode, 200);
    isError(
      await rest(
        'PUT',
        `/bug/${w.bugs.public.id}`,
        undefined,
        { summary: 'x' },
        { 'x-bugzilla-api-key': key },
      ),
      401,
      115,
    );
  });
  test('attachments: add with base64 data (201 {ids}), read back by bug and by id; hidden bugs stay hidden', async () => {
    const text = 'line one\nline two\n';
    const added = await rest('POST', `/bug/${w.bugs.public.id}/attachment`, w.users.alice, {
      ids: [w.bugs.public.id],
      data: Buffer.from(text).toString('base64'),
      file_name: 'notes.txt',
      summary: 'My notes',
      content_type: 'text/plain',
    });
    assert.equal(added.statusCode, 201, added.body);
    const [attId] = added.data.ids;
    const stored = await t.request({ method: 'GET', url: `/api/v1/attachments/${attId}`, as: w.users.dev });
    assert.equal(stored.statusCode, 200, stored.body);
    assert.equal(stored.data.file_name, 'notes.txt');
    assert.equal(stored.data.size, Buffer.byteLength(text));
    assert.equal(stored.data.uploader.id, w.users.alice.id);

    const byBug = await rest('GET', `/bug/${w.bugs.public.id}/attachment`, w.users.dev);
    const att = byBug.data.bugs[String(w.bugs.public.id)].find((a: Json) => a.id === attId);
    assert.equal(Buffer.from(att.data, 'base64').toString(), text);
    assert.equal(att.file_name, 'notes.txt');
    assert.equal(att.creator, w.users.alice.email);
    assert.equal(att.is_private, false);
    assert.match(att.creation_time, /Z$/);
    const byId = await rest('GET', `/bug/attachment/${attId}?exclude_fields=data`, w.users.alice);
    assert.equal(byId.data.attachments[String(attId)].size, Buffer.byteLength(text));
    assert.equal('data' in byId.data.attachments[String(attId)], false);

    // An attachment on a confidential bug: the bug does not exist for Alice, the attachment is left out.
    const secret = await rest('POST', `/bug/${w.bugs.confidential.id}/attachment`, w.users.dev, {
      data: Buffer.from('secret').toString('base64'),
      file_name: 'secret.txt',
      summary: 'secret',
    });
    assert.equal(secret.statusCode, 201, secret.body);
    isError(await rest('GET', `/bug/${w.bugs.confidential.id}/attachment`, w.users.alice), 404, 101);
    const hidden = await rest('GET', `/bug/attachment/${secret.data.ids[0]}`, w.users.alice);
    assert.deepEqual(hidden.data, { bugs: {}, attachments: {} });
    isError(
      await rest('POST', `/bug/${w.bugs.confidential.id}/attachment`, w.users.alice, {
        data: Buffer.from('x').toString('base64'),
        file_name: 'x.txt',
      }),
      404,
      101,
    );
    isError(
      await rest('POST', `/bug/${w.bugs.public.id}/attachment`, w.users.alice, { file_name: 'x.txt' }),
      400,
      603,
    );
    isError(
      await rest('POST', `/bug/${w.bugs.public.id}/attachment`, w.users.alice, {
        data: 'AAAA',
        file_name: 'x.bin',
      }),
      400,
      601,
    );
  });
});
