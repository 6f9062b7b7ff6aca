/**
 * The bug cache never outlives a change: a bug read (and so cached) answers the new truth right after a
 * change made through the same process — including changes of who may see it (confidential flag, a
 * product or version taken back from release) — and a second app on the same database learns of the
 * change through the invalidation bus (LISTEN/NOTIFY).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildApp } from '../src/app.ts';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`bug cache invalidation (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  const get = (id: number, as = w.users.alice) => t.request({ method: 'GET', url: `/api/v1/bugs/${id}`, as });

  test('making a cached bug confidential hides it at once', async () => {
    const b = await w.bug('Soon confidential');
    assert.equal((await get(b.id)).statusCode, 200);
    const res = await t.request({
      method: 'PATCH',
      url: `/api/v1/bugs/${b.id}`,
      as: w.users.dev,
      payload: { confidential: true },
    });
    assert.equal(res.statusCode, 200);
    assert.equal((await get(b.id)).statusCode, 404);
  });

  test('taking a version or product back from release hides its cached bugs at once', async () => {
    const b = await w.bug('On a release that gets pulled');
    assert.equal((await get(b.id)).statusCode, 200);
    const patchVersion = (is_released: boolean) =>
      t.request({
        method: 'PATCH',
        url: `/api/v1/versions/${w.versions.omega10.id}`,
        as: w.users.admin,
        payload: { is_released },
      });
    assert.equal((await patchVersion(false)).statusCode, 200);
    assert.equal((await get(b.id)).statusCode, 404);
    assert.equal((await patchVersion(true)).statusCode, 200);
    assert.equal((await get(b.id)).statusCode, 200);
    const patchProduct = (is_released: boolean) =>
      t.request({
        method: 'PATCH',
        url: `/api/v1/products/${w.products.omega.id}`,
        as: w.users.admin,
        payload: { is_released },
      });
    assert.equal((await patchProduct(false)).statusCode, 200);
    assert.equal((await get(b.id)).statusCode, 404);
    assert.equal((await patchProduct(true)).statusCode, 200);
  });

  test('a renamed user shows under the new name on cached bugs', async () => {
    const b = await w.bug('Reporter renames themself');
    assert.equal((await get(b.id)).data.reporter.name, 'Dev');
    await t.request({
      method: 'PATCH',
      url: `/api/v1/users/${w.users.dev.id}`,
      as: w.users.dev,
      payload: { name: 'Devon' },
    });
    assert.equal((await get(b.id)).data.reporter.name, 'Devon');
  });

  test('a second app on the same database drops its cached copy when the first changes the bug', async () => {
    const other = await buildApp({ config: t.config, db: t.db });
    await other.ready();
    try {
      const b = await w.bug('Seen by two processes');
      const read = async () =>
        (
          await other.inject({ method: 'GET', url: `/api/v1/bugs/${b.id}`, headers: w.users.alice.auth })
        ).json() as {
          summary: string;
        };
      assert.equal((await read()).summary, 'Seen by two processes');
      await t.request({
        method: 'PATCH',
        url: `/api/v1/bugs/${b.id}`,
        as: w.users.dev,
        payload: { summary: 'Changed by app one' },
      });
      let summary = '';
      for (let i = 0; i < 100 && summary !== 'Changed by app one'; i++) {
        summary = (await read()).summary;
        if (summary !== 'Changed by app one') await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(summary, 'Changed by app one');
    } finally {
      await other.close();
    }
  });
});
