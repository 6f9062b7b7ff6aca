/**
 * The kept counts (bug_counts) and bug_text's copies of the bugs' columns (migration 007) answer totals
 * and facets exactly as counting the bugs through the visibility predicate would: for staff, outsiders,
 * a reporter and a CC of confidential bugs, and a user with no bugs, over queries with and without words,
 * after bugs are filed, changed (product, version, status, severity, confidential, reporter), released,
 * and deleted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { compile } from '../src/search/filter.ts';
import { parseQuery } from '../src/search/query.ts';
import { aggregate } from '../src/search/repository.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const QUERIES = [
  '',
  'status:NEW',
  'status:open severity:critical,major',
  '-status:NEW -severity:normal',
  'product:Omega',
  '-product:Omega',
  'confidential:yes',
  '-confidential:yes status:closed',
  'version:1.0',
  'crash',
  'crash status:open',
  'crash -product:Omega',
  'leak confidential:yes',
  'report -status:NEW',
];

describe(`kept counts equal counting the bugs (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  let carol: TestUser;

  before(async () => {
    t = await startTestApp();
    w = await world(t);
    carol = await t.user({ kind: 'external', name: 'Carol' });
    const { alice, bob, dev } = w.users;
    // More bugs of every kind: statuses, severities, confidential ones reported by or CCing outsiders.
    await w.bug('Crash when saving a report', { severity: 'critical' });
    await w.bug('Crash on the beta', { version_id: w.versions.omegaBeta.id, severity: 'major' }, dev);
    await w.bug('Alice sees her own crash', { confidential: true, severity: 'major' }, alice);
    await w.bug('Bob is CCed on this leak', { confidential: true, cc: [bob.id, alice.id] });
    await w.bug('A public report about a leak', { severity: 'minor' }, bob);
    await w.bug('Orion crash', {
      product_id: w.products.orion.id,
      version_id: w.versions.orion01.id,
      component_id: w.components.orionCore.id,
      cc: [alice.id],
    });
  });
  after(() => t.close());

  /** Totals and facets through the kept counts, and by counting the bugs, for every viewer and query. */
  async function compareAll(when: string) {
    const users = [w.users.admin, w.users.dev, w.users.alice, w.users.bob, carol];
    let kept = 0;
    for (const u of users) {
      const v = u.viewer;
      for (const q of QUERIES) {
        const c = await compile(t.db, v, parseQuery(q));
        if (c.counted) kept++;
        const fast = await aggregate(t.db, v, c, true);
        const direct = await aggregate(t.db, v, { ...c, counted: false }, true);
        const total = await aggregate(t.db, v, c, false);
        const label = `${when}: ${u.name} "${q}"`;
        assert.equal(fast.total, direct.total, label);
        assert.equal(total.total, direct.total, label);
        assert.deepEqual(sorted(fast.status), sorted(direct.status), label);
        assert.deepEqual(sorted(fast.product), sorted(direct.product), label);
      }
    }
    // Nearly every query above is one the kept counts answer (the rest compare two ways of counting).
    assert.equal(kept, users.length * QUERIES.length);
  }
  const sorted = <K>(m: Map<K, number>) => [...m].sort((a, b) => String(a[0]).localeCompare(String(b[0])));

  /** bug_counts and bug_text's copies hold exactly what the bugs table says. */
  async function checkCopies(when: string) {
    const counts = await t.db.query(sql`
      (SELECT product_id, version_id, status, severity, confidential, count(*)::int AS n FROM bugs
       GROUP BY 1, 2, 3, 4, 5
       EXCEPT SELECT product_id, version_id, status, severity, confidential, n FROM bug_counts)
      UNION ALL
      (SELECT product_id, version_id, status, severity, confidential, n FROM bug_counts WHERE n <> 0
       EXCEPT SELECT product_id, version_id, status, severity, confidential, count(*)::int FROM bugs
       GROUP BY 1, 2, 3, 4, 5)`);
    assert.equal(counts.length, 0, `${when}: bug_counts differ: ${JSON.stringify(counts)}`);
    const copies = await t.db.query(sql`
      SELECT b.id FROM bugs b LEFT JOIN bug_text t ON t.bug_id = b.id
      WHERE t.bug_id IS NULL
         OR (b.product_id, b.version_id, b.status, b.severity, b.confidential, b.reporter_id)
            IS DISTINCT FROM (t.product_id, t.version_id, t.status, t.severity, t.confidential, t.reporter_id)`);
    assert.equal(copies.length, 0, `${when}: bug_text copies differ: ${JSON.stringify(copies)}`);
  }

  test('after filing', async () => {
    await checkCopies('filed');
    await compareAll('filed');
  });

  test('an outsider sees a confidential bug only as reporter or CC, and it is counted for them only', async () => {
    const alice = w.users.alice.viewer;
    const carolV = carol.viewer;
    const q = await compile(t.db, alice, parseQuery('confidential:yes'));
    // alice: her two confidential reports, and the confidential bug she is on the CC list of.
    assert.equal((await aggregate(t.db, alice, q, false)).total, 3);
    // And the Orion bug she is on the CC list of, in a product she cannot otherwise see.
    const orion = await aggregate(t.db, alice, await compile(t.db, alice, parseQuery('crash')), true);
    assert.equal(orion.product.get(w.products.orion.id), 1);
    assert.equal((await aggregate(t.db, carolV, q, false)).total, 0);
    const facets = await aggregate(t.db, carolV, await compile(t.db, carolV, parseQuery('')), true);
    assert.ok(![...facets.product.keys()].includes(w.products.orion.id));
  });

  test('after changes of status, severity, confidential, product, version and reporter', async () => {
    const { alice, bob } = w.users;
    const { omega10, omegaBeta, orion01 } = w.versions;
    const b = w.bugs;
    // Through the API (the service's own statements) and through plain SQL (any other writer).
    const patch = async (id: number, payload: object) => {
      const res = await t.request({ method: 'PATCH', url: `/api/v1/bugs/${id}`, payload, as: w.users.dev });
      assert.equal(res.statusCode, 200, res.body);
    };
    await patch(b.public.id, { status: 'ASSIGNED', severity: 'critical' });
    await patch(b.confidential.id, { confidential: false });
    await t.db.query(sql`UPDATE bugs SET confidential = true WHERE id = ${b.public.id}`);
    await t.db.query(
      sql`UPDATE bugs SET product_id = ${w.products.orion.id}, version_id = ${orion01.id},
                          component_id = ${w.components.orionCore.id} WHERE id = ${b.onBeta.id}`,
    );
    await t.db.query(sql`UPDATE bugs SET version_id = ${omegaBeta.id} WHERE id = ${b.ccBob.id}`);
    await t.db.query(sql`UPDATE bugs SET version_id = ${omega10.id}, reporter_id = ${bob.id}
                         WHERE id = ${b.aliceOwn.id}`);
    // Several bugs in one statement, some moving between the same groups in both directions.
    await t.db.query(sql`UPDATE bugs SET status = CASE WHEN status = 'NEW' THEN 'ASSIGNED' ELSE 'NEW' END,
                         assignee_id = ${w.users.dev.id} WHERE status IN ('NEW', 'UNCONFIRMED', 'ASSIGNED')`);
    await t.db.query(sql`INSERT INTO bug_cc (bug_id, user_id) VALUES (${b.internal.id}, ${alice.id})`);
    await checkCopies('changed');
    await compareAll('changed');
  });

  test('after releases and deletes', async () => {
    await t.db.query(sql`UPDATE versions SET is_released = true WHERE id = ${w.versions.omegaBeta.id}`);
    await compareAll('released');
    const doomed = await w.bug('A bug to delete about a crash', { confidential: true }, w.users.alice);
    await t.db.query(sql`DELETE FROM bugs WHERE id = ${doomed.id}`);
    await t.db.query(sql`DELETE FROM bug_cc WHERE user_id = ${w.users.bob.id}`);
    await checkCopies('deleted');
    await compareAll('deleted');
  });

  test('the counts stay exact when transactions write concurrently', async () => {
    const before = await t.db.query<{ n: number }>(sql`SELECT sum(n)::int AS n FROM bug_counts`);
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        w.bug(`Concurrent crash number ${i}`, { severity: i % 2 ? 'major' : 'minor' }),
      ),
    );
    const afterRows = await t.db.query<{ n: number }>(sql`SELECT sum(n)::int AS n FROM bug_counts`);
    assert.equal(afterRows[0]!.n, before[0]!.n + 8);
    await checkCopies('concurrent');
    await compareAll('concurrent');
  });
});
