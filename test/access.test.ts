/**
 * The visibility rules, through every bug-data route of the foundation (bug, list, comments, history,
 * products), on the shared world. Invisible and missing answer the same 404. The rendered predicate SQL
 * is compared with the committed snapshot src/access/visibility.sql (UPDATE_SNAPSHOTS=1 rewrites it).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { visibleBugs, visibleComments, visibleProducts, visibleVersions } from '../src/access/index.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const kind = testDbKind();

describe(`visibility (${kind})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  const visibleIds = async (as: TestUser) => {
    const res = await t.request({ method: 'GET', url: '/api/v1/bugs?limit=500', as });
    assert.equal(res.statusCode, 200);
    return new Set<number>(res.data.bugs.map((b: { id: number }) => b.id));
  };

  test('staff see every bug in lists and by id', async () => {
    for (const u of [w.users.admin, w.users.dev]) {
      const ids = await visibleIds(u);
      for (const b of Object.values(w.bugs)) {
        assert.ok(ids.has(b.id), `bug ${b.id} missing from list`);
        assert.equal(
          (await t.request({ method: 'GET', url: `/api/v1/bugs/${b.id}`, as: u })).statusCode,
          200,
        );
      }
    }
  });

  test('an external user sees public bugs, their own and those they are CC-ed on — nothing else', async () => {
    const alice = await visibleIds(w.users.alice);
    assert.deepEqual([...alice].sort(), [w.bugs.public.id, w.bugs.aliceOwn.id].sort());
    const bob = await visibleIds(w.users.bob);
    assert.deepEqual([...bob].sort(), [w.bugs.public.id, w.bugs.ccBob.id].sort());
  });

  test('a bug an external user may not see answers exactly like one that does not exist', async () => {
    const missing = await t.request({ method: 'GET', url: '/api/v1/bugs/999999', as: w.users.alice });
    assert.equal(missing.statusCode, 404);
    for (const b of [w.bugs.confidential, w.bugs.onBeta, w.bugs.internal, w.bugs.ccBob]) {
      for (const suffix of ['', '/comments', '/history']) {
        const res = await t.request({
          method: 'GET',
          url: `/api/v1/bugs/${b.id}${suffix}`,
          as: w.users.alice,
        });
        assert.equal(res.statusCode, 404, `GET /bugs/${b.id}${suffix}`);
        assert.equal(res.data.error.code, 'not_found');
        assert.equal(res.data.error.message, `Bug ${b.id} not found.`);
      }
      const patch = await t.request({
        method: 'PATCH',
        url: `/api/v1/bugs/${b.id}`,
        as: w.users.alice,
        payload: { comment: { body: 'hello?' } },
      });
      assert.equal(patch.statusCode, 404);
      const comment = await t.request({
        method: 'POST',
        url: `/api/v1/bugs/${b.id}/comments`,
        as: w.users.alice,
        payload: { body: 'hello?' },
      });
      assert.equal(comment.statusCode, 404);
    }
  });

  test('filters cannot reveal invisible bugs: filtering by the internal product returns nothing', async () => {
    const res = await t.request({
      method: 'GET',
      url: `/api/v1/bugs?product_id=${w.products.orion.id}`,
      as: w.users.alice,
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.data.bugs, []);
  });

  test('external users see released products and versions only', async () => {
    const res = await t.request({ method: 'GET', url: '/api/v1/products', as: w.users.alice });
    assert.deepEqual(
      res.data.products.map((p: { name: string }) => p.name),
      ['Omega'],
    );
    assert.deepEqual(
      res.data.products[0].versions.map((v: { name: string }) => v.name),
      ['1.0'],
    );
    const orion = await t.request({
      method: 'GET',
      url: `/api/v1/products/${w.products.orion.id}`,
      as: w.users.alice,
    });
    assert.equal(orion.statusCode, 404);
    const staff = await t.request({ method: 'GET', url: '/api/v1/products', as: w.users.dev });
    assert.equal(staff.data.products.length, 2);
  });

  test('an external user cannot file against an internal product or an unreleased version', async () => {
    const before = await t.request({ method: 'GET', url: '/api/v1/bugs?limit=500', as: w.users.admin });
    const internal = await t.request({
      method: 'POST',
      url: '/api/v1/bugs',
      as: w.users.alice,
      payload: {
        product_id: w.products.orion.id,
        version_id: w.versions.orion01.id,
        component_id: w.components.orionCore.id,
        summary: 'try',
      },
    });
    assert.equal(internal.statusCode, 422);
    assert.equal(internal.data.error.field, 'product_id');
    const beta = await t.request({
      method: 'POST',
      url: '/api/v1/bugs',
      as: w.users.alice,
      payload: {
        product_id: w.products.omega.id,
        version_id: w.versions.omegaBeta.id,
        component_id: w.components.omegaCore.id,
        summary: 'try',
      },
    });
    assert.equal(beta.statusCode, 422);
    assert.equal(beta.data.error.field, 'version_id');
    const afterList = await t.request({ method: 'GET', url: '/api/v1/bugs?limit=500', as: w.users.admin });
    assert.equal(afterList.data.bugs.length, before.data.bugs.length);
  });

  test('private comments are hidden from external users', async () => {
    const id = w.bugs.public.id;
    await t.request({
      method: 'POST',
      url: `/api/v1/bugs/${id}/comments`,
      as: w.users.dev,
      payload: { body: 'public note' },
    });
    await t.request({
      method: 'POST',
      url: `/api/v1/bugs/${id}/comments`,
      as: w.users.dev,
      payload: { body: 'staff only: customer is on an old build', is_private: true },
    });
    const ext = await t.request({ method: 'GET', url: `/api/v1/bugs/${id}/comments`, as: w.users.alice });
    assert.deepEqual(
      ext.data.comments.map((c: { body: string }) => c.body),
      ['public note'],
    );
    const staff = await t.request({ method: 'GET', url: `/api/v1/bugs/${id}/comments`, as: w.users.dev });
    assert.equal(staff.data.comments.length, 2);
    const denied = await t.request({
      method: 'POST',
      url: `/api/v1/bugs/${id}/comments`,
      as: w.users.alice,
      payload: { body: 'x', is_private: true },
    });
    assert.equal(denied.statusCode, 403);
  });

  test('duplicate_of pointing at a bug the viewer cannot see is not shown', async () => {
    const dup = await w.bug('Dup of a confidential bug');
    const res = await t.request({
      method: 'PATCH',
      url: `/api/v1/bugs/${dup.id}`,
      as: w.users.dev,
      payload: { status: 'RESOLVED', resolution: 'DUPLICATE', duplicate_of: w.bugs.confidential.id },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.duplicate_of, w.bugs.confidential.id);
    const ext = await t.request({ method: 'GET', url: `/api/v1/bugs/${dup.id}`, as: w.users.alice });
    assert.equal(ext.statusCode, 200);
    assert.equal(ext.data.duplicate_of, null);
    // Nor in its history, where the change to duplicate_of is recorded.
    const history = await t.request({
      method: 'GET',
      url: `/api/v1/bugs/${dup.id}/history`,
      as: w.users.alice,
    });
    const row = history.data.history.find((h: { field: string }) => h.field === 'duplicate_of');
    assert.deepEqual([row.removed, row.added], [null, null]);
    const staff = await t.request({ method: 'GET', url: `/api/v1/bugs/${dup.id}/history`, as: w.users.dev });
    const staffRow = staff.data.history.find((h: { field: string }) => h.field === 'duplicate_of');
    assert.equal(staffRow.added, String(w.bugs.confidential.id));
  });

  test('removing an external user from the CC list takes the confidential bug away from them', async () => {
    const b = await w.bug('Temporarily shared', { confidential: true, cc: [w.users.alice.id] });
    assert.equal(
      (await t.request({ method: 'GET', url: `/api/v1/bugs/${b.id}`, as: w.users.alice })).statusCode,
      200,
    );
    const res = await t.request({
      method: 'PATCH',
      url: `/api/v1/bugs/${b.id}`,
      as: w.users.dev,
      payload: { cc: { remove: [w.users.alice.id] } },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(
      (await t.request({ method: 'GET', url: `/api/v1/bugs/${b.id}`, as: w.users.alice })).statusCode,
      404,
    );
  });

  test('anonymous requests get 401, never data', async () => {
    const res = await t.request({ method: 'GET', url: `/api/v1/bugs/${w.bugs.public.id}` });
    assert.equal(res.statusCode, 401);
  });
});

// bugzot-snapshot: the predicate SQL is the same on both engines; comparing it in each pass is cheap.
describe('visibility SQL snapshot', () => {
  test('matches src/access/visibility.sql', () => {
    const internal = {
      kind: 'user',
      id: 1,
      name: 'i',
      email: 'i@x',
      isInternal: true,
      isAdmin: false,
    } as const;
    const external = {
      kind: 'user',
      id: 42,
      name: 'e',
      email: 'e@x',
      isInternal: false,
      isAdmin: false,
    } as const;
    const anon = { kind: 'anonymous' } as const;
    const sections: string[] = [
      '-- The visibility predicates as rendered for each kind of viewer ($n are bound parameters).',
      '-- Generated by test/access.test.ts; regenerate with UPDATE_SNAPSHOTS=1 npm test -- access',
    ];
    for (const [name, fn] of [
      ['visibleBugs', visibleBugs],
      ['visibleProducts', visibleProducts],
      ['visibleVersions', visibleVersions],
      ['visibleComments', visibleComments],
    ] as const) {
      for (const [who, v] of [
        ['staff', internal],
        ['external user 42', external],
        ['anonymous', anon],
      ] as const) {
        const q = fn(v);
        sections.push(
          `\n-- ${name}, ${who}; params ${JSON.stringify(q.values)}\n${q.text.replace(/\n\s*/g, '\n  ').trim()}`,
        );
      }
    }
    const text = `${sections.join('\n')}\n`;
    const path = new URL('../src/access/visibility.sql', import.meta.url);
    if (process.env['UPDATE_SNAPSHOTS'] === '1') writeFileSync(path, text);
    assert.equal(
      text,
      readFileSync(path, 'utf8'),
      'visibility SQL changed: review it, then UPDATE_SNAPSHOTS=1',
    );
  });
});
