/**
 * The admin operations of the JSON API: products, versions, components and users. Non-admins get 403
 * and change nothing; bad input gets a 4xx naming the field; releasing or un-releasing drops cached
 * bugs in time for the next read; disabling a user ends their sessions and revokes their API keys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`admin API (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  test('non-admins get 403 on every admin write, and nothing changes', async () => {
    const omega = w.products.omega.id;
    const writes: [string, string, object][] = [
      ['POST', '/api/v1/products', { name: 'Forbidden' }],
      ['PATCH', `/api/v1/products/${omega}`, { name: 'Forbidden' }],
      ['POST', `/api/v1/products/${omega}/versions`, { name: '9.9' }],
      ['PATCH', `/api/v1/versions/${w.versions.omegaBeta.id}`, { is_released: true }],
      ['POST', `/api/v1/products/${omega}/components`, { name: 'Forbidden' }],
      ['PATCH', `/api/v1/components/${w.components.omegaCore.id}`, { name: 'Forbidden' }],
      ['PATCH', `/api/v1/users/${w.users.bob.id}`, { disabled: true }],
      ['PATCH', `/api/v1/users/${w.users.dev.id}`, { is_admin: true }],
    ];
    for (const as of [w.users.dev, w.users.alice]) {
      for (const [method, url, payload] of writes) {
        const res = await t.request({ method: method as 'POST', url, payload, as });
        // An external user may not even see the unreleased version: 404 hides it; both refuse.
        assert.ok([403, 404].includes(res.statusCode), `${method} ${url}: ${res.statusCode}`);
        if (as === w.users.dev) assert.equal(res.statusCode, 403, `${method} ${url}`);
        assert.ok(res.data.error.code, 'JSON error envelope');
      }
    }
    const p = (await t.request({ method: 'GET', url: `/api/v1/products/${omega}`, as: w.users.admin })).data;
    assert.equal(p.name, 'Omega');
    assert.equal(p.versions.length, 2);
    assert.ok(!p.versions.find((v: { name: string }) => v.name === '2.0-beta').is_released);
  });

  test('bad input is a 4xx naming the field', async () => {
    const omega = w.products.omega.id;
    const cases: [string, string, object, number, string | undefined][] = [
      ['POST', '/api/v1/products', {}, 400, 'name'],
      ['POST', '/api/v1/products', { name: '   ' }, 400, 'name'],
      ['POST', '/api/v1/products', { name: 'x'.repeat(65) }, 400, 'name'],
      ['POST', '/api/v1/products', { name: 'Ok', is_released: 'yes' }, 400, 'is_released'],
      ['POST', '/api/v1/products', { name: 'Ok', owner: 1 }, 400, 'owner'],
      ['POST', '/api/v1/products', { name: 'OMEGA' }, 409, 'name'],
      ['PATCH', '/api/v1/products/999999', { name: 'Nope' }, 404, undefined],
      ['POST', `/api/v1/products/${omega}/versions`, { name: '1.0' }, 409, 'name'],
      ['POST', `/api/v1/products/${omega}/versions`, { name: '4', sort_key: 1.5 }, 400, 'sort_key'],
      [
        'POST',
        `/api/v1/products/${omega}/components`,
        { name: 'X', default_assignee_id: 999999 },
        422,
        'default_assignee_id',
      ],
      ['PATCH', `/api/v1/users/${w.users.bob.id}`, { kind: 'martian' }, 400, 'kind'],
      ['GET', '/api/v1/users?after=-1', {}, 400, 'after'],
    ];
    for (const [method, url, payload, status, field] of cases) {
      const res = await t.request({
        method: method as 'POST',
        url,
        ...(method === 'GET' ? {} : { payload }),
        as: w.users.admin,
      });
      assert.equal(res.statusCode, status, `${method} ${url} ${JSON.stringify(payload)}: ${res.body}`);
      if (field) assert.equal(res.data.error.field, field, `${method} ${url}`);
    }
  });

  test('releasing and un-releasing a product and its version change what customers see at once', async () => {
    const bug = w.bugs.internal.id;
    const alice = () => t.request({ method: 'GET', url: `/api/v1/bugs/${bug}`, as: w.users.alice });
    // The admin's read fills the bug cache: the release must drop it, not serve a stale verdict.
    assert.equal(
      (await t.request({ method: 'GET', url: `/api/v1/bugs/${bug}`, as: w.users.admin })).statusCode,
      200,
    );
    assert.equal((await alice()).statusCode, 404);
    const patch = (url: string, payload: object) =>
      t.request({ method: 'PATCH', url, payload, as: w.users.admin });
    assert.equal(
      (await patch(`/api/v1/products/${w.products.orion.id}`, { is_released: true })).statusCode,
      200,
    );
    assert.equal((await alice()).statusCode, 404, 'its version is still unreleased');
    assert.equal(
      (await patch(`/api/v1/versions/${w.versions.orion01.id}`, { is_released: true })).statusCode,
      200,
    );
    assert.equal((await alice()).statusCode, 200);
    assert.equal(
      (await patch(`/api/v1/products/${w.products.orion.id}`, { is_released: false })).statusCode,
      200,
    );
    assert.equal((await alice()).statusCode, 404, 'internal-only again');
    await patch(`/api/v1/versions/${w.versions.orion01.id}`, { is_released: false });
  });

  test('renaming a product shows in cached bugs at once', async () => {
    const bug = w.bugs.public.id;
    const read = async () =>
      (await t.request({ method: 'GET', url: `/api/v1/bugs/${bug}`, as: w.users.alice })).data.product.name;
    assert.equal(await read(), 'Omega');
    const patch = (name: string) =>
      t.request({
        method: 'PATCH',
        url: `/api/v1/products/${w.products.omega.id}`,
        payload: { name },
        as: w.users.admin,
      });
    assert.equal((await patch('Omega Prime')).statusCode, 200);
    assert.equal(await read(), 'Omega Prime');
    await patch('Omega');
  });

  test('disabling a user ends sessions and revokes keys; admins cannot disable or demote themselves', async () => {
    const dana = await t.user({ kind: 'internal', name: 'Dana' });
    const s = await t.session(dana);
    const res = await t.request({
      method: 'PATCH',
      url: `/api/v1/users/${dana.id}`,
      payload: { disabled: true },
      as: w.users.admin,
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.disabled, true);
    const keys = await t.db.query<{ revoked_at: Date | null }>(
      sql`SELECT revoked_at FROM api_keys WHERE user_id = ${dana.id}`,
    );
    assert.ok(keys.length > 0 && keys.every((k) => k.revoked_at !== null), 'every key revoked');
    const sessions = await t.db.query(sql`SELECT 1 FROM sessions WHERE user_id = ${dana.id}`);
    assert.equal(sessions.length, 0);
    assert.equal(
      (await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie: s.cookie } })).statusCode,
      401,
    );

    for (const payload of [{ disabled: true }, { is_admin: false }]) {
      const self = await t.request({
        method: 'PATCH',
        url: `/api/v1/users/${w.users.admin.id}`,
        payload,
        as: w.users.admin,
      });
      assert.equal(self.statusCode, 403, JSON.stringify(payload));
    }
    const me = await t.request({ method: 'GET', url: '/api/v1/me', as: w.users.admin });
    assert.equal(me.data.is_admin, true);
  });

  test('the user list searches and pages on with `after`', async () => {
    const first = await t.request({ method: 'GET', url: '/api/v1/users?limit=2', as: w.users.admin });
    assert.equal(first.statusCode, 200);
    assert.equal(first.data.users.length, 2);
    const lastId = first.data.users[1].id;
    const next = await t.request({
      method: 'GET',
      url: `/api/v1/users?limit=2&after=${lastId}`,
      as: w.users.admin,
    });
    assert.ok(next.data.users.every((u: { id: number }) => u.id > lastId));
    const found = await t.request({ method: 'GET', url: '/api/v1/users?q=ali', as: w.users.admin });
    assert.deepEqual(
      found.data.users.map((u: { name: string }) => u.name),
      ['Alice'],
    );
  });
});
