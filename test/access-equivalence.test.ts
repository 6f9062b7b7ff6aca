/**
 * The visibility rule exists once as SQL (`visibleBugs`) and once for bugs held in memory (`canSeeBug`,
 * used by the bug cache). This test builds every combination of the facts the rule depends on — product
 * released or not, version released or not, confidential or not, the viewer reporter / on CC / neither —
 * and requires the two to give the same answer for every kind of viewer.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { canSeeBug, type Viewer, visibleBugs } from '../src/access/index.ts';
import { loadBug } from '../src/bugs/repository.ts';
import { sql } from '../src/platform/db.ts';
import { createTestDb, type TestDb, testDbKind } from './helpers/db.ts';

let t: TestDb;
before(async () => {
  t = await createTestDb();
});
after(() => t.close());

test(`canSeeBug agrees with the visibleBugs SQL on every combination (${testDbKind()})`, async () => {
  const q = t.db.query.bind(t.db);
  const user = async (email: string, kind: string, admin = false) =>
    (
      await q<{ id: number }>(
        sql`INSERT INTO users (email, name, kind, is_admin) VALUES (${email}, ${email}, ${kind}, ${admin}) RETURNING id`,
      )
    )[0]!.id;
  const ext = await user('ext@x.test', 'external');
  const other = await user('other@x.test', 'external');
  const staff = await user('staff@x.test', 'internal');
  const admin = await user('admin@x.test', 'external', true);
  const viewers: Viewer[] = [
    { kind: 'anonymous' },
    { kind: 'user', id: ext, name: 'e', email: 'e', isInternal: false, isAdmin: false },
    { kind: 'user', id: other, name: 'o', email: 'o', isInternal: false, isAdmin: false },
    { kind: 'user', id: staff, name: 's', email: 's', isInternal: true, isAdmin: false },
    { kind: 'user', id: admin, name: 'a', email: 'a', isInternal: false, isAdmin: true },
  ];
  const ids: number[] = [];
  for (const productReleased of [true, false]) {
    const [p] = await q<{ id: number }>(
      sql`INSERT INTO products (name, is_released) VALUES (${`P${productReleased}`}, ${productReleased}) RETURNING id`,
    );
    const [c] = await q<{ id: number }>(
      sql`INSERT INTO components (product_id, name) VALUES (${p!.id}, 'C') RETURNING id`,
    );
    for (const versionReleased of [true, false]) {
      const [v] = await q<{ id: number }>(
        sql`INSERT INTO versions (product_id, name, is_released) VALUES (${p!.id}, ${`V${versionReleased}`}, ${versionReleased}) RETURNING id`,
      );
      for (const confidential of [true, false]) {
        for (const relation of ['reporter', 'cc', 'none']) {
          const [b] = await q<{ id: number }>(sql`
            INSERT INTO bugs (product_id, version_id, component_id, summary, status, reporter_id, confidential)
            VALUES (${p!.id}, ${v!.id}, ${c!.id}, 'x', 'NEW', ${relation === 'reporter' ? ext : staff}, ${confidential})
            RETURNING id`);
          if (relation === 'cc') await q(sql`INSERT INTO bug_cc (bug_id, user_id) VALUES (${b!.id}, ${ext})`);
          ids.push(b!.id);
        }
      }
    }
  }
  assert.equal(ids.length, 24);
  let compared = 0;
  for (const viewer of viewers) {
    const bySql = new Set(
      (await q<{ id: number }>(sql`SELECT b.id FROM bugs b WHERE ${visibleBugs(viewer, 'b')}`)).map(
        (r) => r.id,
      ),
    );
    for (const id of ids) {
      const bug = (await loadBug(t.db, id))!;
      const byCheck = canSeeBug(viewer, {
        confidential: bug.confidential,
        reporterId: bug.reporter_id,
        ccIds: bug.cc.map((u) => u.id),
        productReleased: bug.product_released,
        versionReleased: bug.version_released,
      });
      assert.equal(byCheck, bySql.has(id), `viewer ${JSON.stringify(viewer)} bug ${JSON.stringify(bug)}`);
      compared++;
    }
  }
  assert.equal(compared, 120);
  // The external user sees exactly: the 3 bugs on released product+version that are not confidential
  // (reporter, cc, none), plus the 8 (reporter) + 8 (cc) of all the others: 3 + 2*7 = 17.
  const e = viewers[1]!;
  assert.equal((await q(sql`SELECT b.id FROM bugs b WHERE ${visibleBugs(e, 'b')}`)).length, 17);
});
