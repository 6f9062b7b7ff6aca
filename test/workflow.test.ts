/**
 * The bug workflow and bug changes over the API: every transition of the table allowed for staff and
 * every other one refused naming the allowed steps; resolution and duplicate rules; what an external
 * reporter may do; history rows written with each change and never by a refused one; mid-air collisions
 * (If-Match -> 412, row_version field -> 409) and concurrent edits; filing rules; list filters and paging.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const STATUSES = [
  'UNCONFIRMED',
  'NEW',
  'ASSIGNED',
  'IN_PROGRESS',
  'REOPENED',
  'RESOLVED',
  'VERIFIED',
  'CLOSED',
];

describe(`bug workflow (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  let transitions: Set<string>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
    const rows = await t.db.query<{ from_status: string; to_status: string }>(
      sql`SELECT from_status, to_status FROM status_transitions WHERE from_status IS NOT NULL`,
    );
    transitions = new Set(rows.map((r) => `${r.from_status}>${r.to_status}`));
  });
  after(() => t.close());

  const patch = (
    id: number,
    payload: object,
    as: TestUser = w.users.dev,
    headers: Record<string, string> = {},
  ) => t.request({ method: 'PATCH', url: `/api/v1/bugs/${id}`, payload, as, headers });

  const historyCount = async (id: number) =>
    (
      await t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM bug_changes WHERE bug_id = ${id}`)
    )[0]!.n;

  /** Files a bug and walks it to `status` along allowed steps. */
  async function bugIn(status: string, as: TestUser = w.users.dev) {
    const bug = await w.bug(
      `bug in ${status}`,
      status === 'UNCONFIRMED' ? { status: 'UNCONFIRMED' } : {},
      as,
    );
    const steps: Record<string, object[]> = {
      UNCONFIRMED: [],
      NEW: [],
      ASSIGNED: [{ status: 'ASSIGNED' }],
      IN_PROGRESS: [{ status: 'IN_PROGRESS' }],
      RESOLVED: [{ status: 'RESOLVED', resolution: 'FIXED' }],
      REOPENED: [{ status: 'RESOLVED', resolution: 'FIXED' }, { status: 'REOPENED' }],
      VERIFIED: [{ status: 'RESOLVED', resolution: 'FIXED' }, { status: 'VERIFIED' }],
      CLOSED: [{ status: 'RESOLVED', resolution: 'FIXED' }, { status: 'CLOSED' }],
    };
    for (const step of steps[status]!) {
      const res = await patch(bug.id, step);
      assert.equal(res.statusCode, 200, res.body);
    }
    return bug;
  }

  test('every transition in the table is allowed for staff and writes a history row', async () => {
    let checked = 0;
    for (const from of STATUSES) {
      for (const to of STATUSES) {
        if (!transitions.has(`${from}>${to}`)) continue;
        const bug = await bugIn(from);
        const before = await historyCount(bug.id);
        const res = await patch(
          bug.id,
          to === 'RESOLVED' ? { status: to, resolution: 'WORKSFORME' } : { status: to },
        );
        assert.equal(res.statusCode, 200, `${from} -> ${to}: ${res.body}`);
        assert.equal(res.data.status, to);
        const rows = await t.db.query<{ field: string; old_value: string; new_value: string }>(
          sql`SELECT field, old_value, new_value FROM bug_changes WHERE bug_id = ${bug.id} ORDER BY id`,
        );
        assert.ok(rows.length > before);
        assert.ok(rows.some((r) => r.field === 'status' && r.old_value === from && r.new_value === to));
        checked++;
      }
    }
    assert.ok(checked >= 20, `only ${checked} transitions checked`);
  });

  test('every transition not in the table is refused with 422 naming the allowed ones', async () => {
    let checked = 0;
    for (const from of STATUSES) {
      const bug = await bugIn(from);
      const allowed = STATUSES.filter((s) => transitions.has(`${from}>${s}`));
      for (const to of STATUSES) {
        if (to === from || transitions.has(`${from}>${to}`)) continue;
        const before = await historyCount(bug.id);
        const res = await patch(
          bug.id,
          to === 'RESOLVED' ? { status: to, resolution: 'FIXED' } : { status: to },
        );
        assert.equal(res.statusCode, 422, `${from} -> ${to}: ${res.body}`);
        assert.equal(res.data.error.code, 'invalid_transition');
        assert.equal(res.data.error.field, 'status');
        assert.deepEqual(res.data.error.allowed, allowed);
        for (const a of allowed) assert.match(res.data.error.message, new RegExp(`\\b${a}\\b`));
        assert.equal(await historyCount(bug.id), before, 'a refused change wrote history');
        checked++;
      }
    }
    assert.ok(checked >= 20);
  });

  test('resolving needs a resolution, and only resolving takes one', async () => {
    const bug = await bugIn('NEW');
    const none = await patch(bug.id, { status: 'RESOLVED' });
    assert.equal(none.statusCode, 422);
    assert.equal(none.data.error.code, 'resolution_required');
    assert.equal(none.data.error.field, 'resolution');
    const unknown = await patch(bug.id, { status: 'RESOLVED', resolution: 'MAYBE' });
    assert.equal(unknown.statusCode, 422);
    const notResolving = await patch(bug.id, { status: 'ASSIGNED', resolution: 'FIXED' });
    assert.equal(notResolving.statusCode, 422);
    assert.equal(notResolving.data.error.code, 'resolution_not_allowed');
    const got = await t.request({ method: 'GET', url: `/api/v1/bugs/${bug.id}`, as: w.users.dev });
    assert.equal(got.data.status, 'NEW');
    assert.equal(got.data.resolution, null);
  });

  test('DUPLICATE needs duplicate_of a bug the actor can see; reopening clears both', async () => {
    const bug = await bugIn('NEW');
    const missing = await patch(bug.id, { status: 'RESOLVED', resolution: 'DUPLICATE' });
    assert.equal(missing.statusCode, 422);
    assert.equal(missing.data.error.code, 'duplicate_of_required');
    const unknownBug = await patch(bug.id, {
      status: 'RESOLVED',
      resolution: 'DUPLICATE',
      duplicate_of: 987654,
    });
    assert.equal(unknownBug.statusCode, 422);
    assert.equal(unknownBug.data.error.field, 'duplicate_of');
    const self = await patch(bug.id, { status: 'RESOLVED', resolution: 'DUPLICATE', duplicate_of: bug.id });
    assert.equal(self.statusCode, 422);
    const withoutDup = await patch(bug.id, {
      status: 'RESOLVED',
      resolution: 'FIXED',
      duplicate_of: w.bugs.public.id,
    });
    assert.equal(withoutDup.statusCode, 422);
    const ok = await patch(bug.id, {
      status: 'RESOLVED',
      resolution: 'DUPLICATE',
      duplicate_of: w.bugs.public.id,
    });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.data.duplicate_of, w.bugs.public.id);
    // The target cannot in turn be marked a duplicate of this one.
    const loop = await patch(w.bugs.public.id, {
      status: 'RESOLVED',
      resolution: 'DUPLICATE',
      duplicate_of: bug.id,
    });
    assert.equal(loop.statusCode, 422);
    const reopened = await patch(bug.id, { status: 'REOPENED' });
    assert.equal(reopened.statusCode, 200);
    assert.equal(reopened.data.resolution, null);
    assert.equal(reopened.data.duplicate_of, null);
    const h = await t.request({ method: 'GET', url: `/api/v1/bugs/${bug.id}/history`, as: w.users.dev });
    const fields = h.data.history.map(
      (r: { field: string; removed: string; added: string }) => `${r.field}:${r.removed}>${r.added}`,
    );
    assert.ok(fields.includes('resolution:DUPLICATE>null'));
    assert.ok(fields.includes(`duplicate_of:${w.bugs.public.id}>null`));
    assert.ok(fields.includes('status:RESOLVED>REOPENED'));
  });

  test('an external reporter may reopen and verify their own bug but not triage it', async () => {
    const bug = await w.bug('Customer-filed', {}, w.users.alice);
    const assign = await patch(bug.id, { status: 'ASSIGNED' }, w.users.alice);
    assert.equal(assign.statusCode, 403);
    const priority = await patch(bug.id, { priority: 'P1' }, w.users.alice);
    assert.equal(priority.statusCode, 403);
    const summary = await patch(bug.id, { summary: 'Customer-filed, clarified' }, w.users.alice);
    assert.equal(summary.statusCode, 200);
    assert.equal((await patch(bug.id, { status: 'RESOLVED', resolution: 'FIXED' })).statusCode, 200);
    const reopen = await patch(
      bug.id,
      { status: 'REOPENED', comment: { body: 'still broken in 1.0' } },
      w.users.alice,
    );
    assert.equal(reopen.statusCode, 200, reopen.body);
    // Bob sees the public bug but is not its reporter: comment yes, reopen no.
    assert.equal((await patch(bug.id, { status: 'RESOLVED', resolution: 'FIXED' })).statusCode, 200);
    const bobReopen = await patch(bug.id, { status: 'REOPENED' }, w.users.bob);
    assert.equal(bobReopen.statusCode, 403);
    const bobComment = await patch(bug.id, { comment: { body: 'me too' } }, w.users.bob);
    assert.equal(bobComment.statusCode, 200);
  });

  test('external users may add and remove only themselves on the CC list', async () => {
    const id = w.bugs.public.id;
    const other = await patch(id, { cc: { add: [w.users.alice.id] } }, w.users.bob);
    assert.equal(other.statusCode, 403);
    const self = await patch(id, { cc: { add: [w.users.bob.id] } }, w.users.bob);
    assert.equal(self.statusCode, 200);
    assert.ok(self.data.cc.some((u: { id: number }) => u.id === w.users.bob.id));
    const off = await patch(id, { cc: { remove: [w.users.bob.id] } }, w.users.bob);
    assert.ok(!off.data.cc.some((u: { id: number }) => u.id === w.users.bob.id));
  });

  test('a refused change leaves the bug, its row version and its history untouched', async () => {
    const bug = await bugIn('NEW');
    const before = await t.request({ method: 'GET', url: `/api/v1/bugs/${bug.id}`, as: w.users.dev });
    const res = await patch(bug.id, { summary: 'changed', assignee_id: 99999 });
    assert.equal(res.statusCode, 422);
    const afterGet = await t.request({ method: 'GET', url: `/api/v1/bugs/${bug.id}`, as: w.users.dev });
    assert.equal(afterGet.data.summary, before.data.summary);
    assert.equal(afterGet.data.row_version, before.data.row_version);
    assert.equal(await historyCount(bug.id), 0);
  });

  test('a stale If-Match gets 412 listing what changed meanwhile; nothing is overwritten', async () => {
    const bug = await bugIn('NEW');
    const first = await t.request({ method: 'GET', url: `/api/v1/bugs/${bug.id}`, as: w.users.dev });
    const etag = first.headers.etag as string;
    assert.match(etag, /^"bug-\d+-v1"$/);
    const theirs = await patch(
      bug.id,
      { summary: 'Their summary', comment: { body: 'I changed it' } },
      w.users.admin,
      {
        'if-match': etag,
      },
    );
    assert.equal(theirs.statusCode, 200);
    assert.notEqual(theirs.headers.etag, etag);
    const mine = await patch(bug.id, { summary: 'My summary' }, w.users.dev, { 'if-match': etag });
    assert.equal(mine.statusCode, 412);
    assert.equal(mine.data.error.code, 'mid_air_collision');
    assert.equal(mine.data.error.current_row_version, 2);
    assert.deepEqual(
      mine.data.error.changes.map((c: { field: string; added: string }) => [c.field, c.added]),
      [['summary', 'Their summary']],
    );
    assert.equal(mine.data.error.comments[0].body, 'I changed it');
    const now = await t.request({ method: 'GET', url: `/api/v1/bugs/${bug.id}`, as: w.users.dev });
    assert.equal(now.data.summary, 'Their summary');
    // Re-applying on top of the current version works.
    const again = await patch(bug.id, { summary: 'My summary' }, w.users.dev, {
      'if-match': now.headers.etag as string,
    });
    assert.equal(again.statusCode, 200);
  });

  test('a stale row_version form field gets 409; an If-Match for another bug gets 412', async () => {
    const bug = await bugIn('NEW');
    await patch(bug.id, { severity: 'major' });
    const stale = await patch(bug.id, { severity: 'minor', row_version: 1 });
    assert.equal(stale.statusCode, 409);
    assert.equal(stale.data.error.code, 'mid_air_collision');
    const wrong = await patch(bug.id, { severity: 'minor' }, w.users.dev, { 'if-match': '"bug-1-v1"' });
    assert.equal(wrong.statusCode, bug.id === 1 ? 412 : 412);
  });

  test('two concurrent edits of the same version: exactly one wins, the other gets 412', async () => {
    const bug = await bugIn('NEW');
    const etag = `"bug-${bug.id}-v1"`;
    const results = await Promise.all(
      ['Edit A', 'Edit B', 'Edit C'].map((summary) =>
        patch(bug.id, { summary }, w.users.dev, { 'if-match': etag }),
      ),
    );
    const codes = results.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [200, 412, 412]);
    assert.equal(await historyCount(bug.id), 1);
  });

  test('GET with a matching If-None-Match answers 304', async () => {
    const first = await t.request({
      method: 'GET',
      url: `/api/v1/bugs/${w.bugs.public.id}`,
      as: w.users.dev,
    });
    const second = await t.request({
      method: 'GET',
      url: `/api/v1/bugs/${w.bugs.public.id}`,
      as: w.users.dev,
      headers: { 'if-none-match': first.headers.etag as string },
    });
    assert.equal(second.statusCode, 304);
  });

  test('a bug cannot be filed against a version or component of another product', async () => {
    const count = async () =>
      (await t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM bugs`))[0]!.n;
    const before = await count();
    const version = await t.request({
      method: 'POST',
      url: '/api/v1/bugs',
      as: w.users.dev,
      payload: {
        product_id: w.products.omega.id,
        version_id: w.versions.orion01.id,
        component_id: w.components.omegaCore.id,
        summary: 'wrong version',
      },
    });
    assert.equal(version.statusCode, 422);
    assert.equal(version.data.error.code, 'version_of_other_product');
    const component = await t.request({
      method: 'POST',
      url: '/api/v1/bugs',
      as: w.users.dev,
      payload: {
        product_id: w.products.omega.id,
        version_id: w.versions.omega10.id,
        component_id: w.components.orionCore.id,
        summary: 'wrong component',
      },
    });
    assert.equal(component.statusCode, 422);
    assert.equal(component.data.error.field, 'component_id');
    assert.equal(await count(), before);
  });

  test('moving a bug to another product needs that product’s version and component', async () => {
    const bug = await bugIn('NEW');
    const half = await patch(bug.id, { product_id: w.products.orion.id });
    assert.equal(half.statusCode, 422);
    const mixed = await patch(bug.id, {
      product_id: w.products.orion.id,
      version_id: w.versions.omega10.id,
      component_id: w.components.orionCore.id,
    });
    assert.equal(mixed.statusCode, 422);
    const ok = await patch(bug.id, {
      product_id: w.products.orion.id,
      version_id: w.versions.orion01.id,
      component_id: w.components.orionCore.id,
    });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.data.product.name, 'Orion');
    const h = await t.request({ method: 'GET', url: `/api/v1/bugs/${bug.id}/history`, as: w.users.dev });
    assert.deepEqual(
      h.data.history.map((r: { field: string; removed: string; added: string }) => [
        r.field,
        r.removed,
        r.added,
      ]),
      [
        ['product', 'Omega', 'Orion'],
        ['version', '1.0', '0.1'],
        ['component', 'Core', 'Core'],
      ],
    );
  });

  test('new bugs start as NEW by default; externals may not start them ASSIGNED', async () => {
    const payload = {
      product_id: w.products.omega.id,
      version_id: w.versions.omega10.id,
      component_id: w.components.omegaUi.id,
      summary: '  Spaces   collapse  ',
    };
    const ok = await t.request({ method: 'POST', url: '/api/v1/bugs', as: w.users.alice, payload });
    assert.equal(ok.statusCode, 201);
    assert.equal(ok.data.status, 'NEW');
    assert.equal(ok.data.summary, 'Spaces collapse');
    assert.equal(ok.headers.location, `/api/v1/bugs/${ok.data.id}`);
    const assigned = await t.request({
      method: 'POST',
      url: '/api/v1/bugs',
      as: w.users.alice,
      payload: { ...payload, status: 'ASSIGNED' },
    });
    assert.equal(assigned.statusCode, 422);
    assert.equal(assigned.data.error.code, 'invalid_transition');
  });

  test('the list filters by every field and pages with a stable cursor', async () => {
    const mine = await t.user({ kind: 'internal', name: 'Pager' });
    const ids: number[] = [];
    for (let i = 0; i < 7; i++) ids.push((await w.bug(`paged ${i}`, { assignee_id: mine.id }, mine)).id);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/v1/bugs?reporter_id=${mine.id}&limit=3${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await t.request({ method: 'GET', url, as: mine });
      assert.equal(res.statusCode, 200);
      seen.push(...res.data.bugs.map((b: { id: number }) => b.id));
      cursor = res.data.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, [...ids].reverse());
    const asc = await t.request({
      method: 'GET',
      url: `/api/v1/bugs?assignee_id=${mine.id}&order=asc&limit=100`,
      as: mine,
    });
    assert.deepEqual(
      asc.data.bugs.map((b: { id: number }) => b.id),
      ids,
    );
    await patch(ids[0]!, { status: 'ASSIGNED' }, mine);
    const byStatus = await t.request({
      method: 'GET',
      url: `/api/v1/bugs?reporter_id=${mine.id}&status=ASSIGNED,IN_PROGRESS&product_id=${w.products.omega.id}&version_id=${w.versions.omega10.id}&component_id=${w.components.omegaCore.id}`,
      as: mine,
    });
    assert.deepEqual(
      byStatus.data.bugs.map((b: { id: number }) => b.id),
      [ids[0]],
    );
  });
});
