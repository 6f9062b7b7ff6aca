/**
 * The dashboard on the home page: my open bugs (reported, assigned, CC'd), recently changed bugs, and
 * counts per status — all counting only what the viewer may see.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

describe(`dashboard (${testDbKind()})`, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  async function home(u: TestUser) {
    const { cookie } = await t.session(u);
    const res = await t.request({ method: 'GET', url: '/', headers: { cookie } });
    assert.equal(res.statusCode, 200);
    return res.body;
  }
  const section = (html: string, caption: string) => {
    const start = html.indexOf(`<caption>${caption}</caption>`);
    assert.ok(start >= 0, caption);
    return html.slice(start, html.indexOf('</table>', start));
  };
  const newCount = (html: string) => Number(/>NEW<\/a><\/th><td>(\d+)</.exec(html)?.[1]);

  test('each user sees their own reported, assigned and CC-ed open bugs', async () => {
    await t.request({
      method: 'PATCH',
      url: `/api/v1/bugs/${w.bugs.public.id}`,
      as: w.users.dev,
      payload: { assignee_id: w.users.dev.id },
    });
    const alice = await home(w.users.alice);
    assert.match(section(alice, 'Reported by me'), /Alice private report/);
    const bob = await home(w.users.bob);
    assert.match(section(bob, 'I am on the CC list'), /Confidential with Bob on CC/);
    const dev = await home(w.users.dev);
    assert.match(section(dev, 'Assigned to me'), /Public crash on start/);
  });

  test('recent changes and status counts include only bugs the viewer may see', async () => {
    const alice = await home(w.users.alice);
    assert.ok(!alice.includes('zebra'));
    assert.ok(!alice.includes('Orion'));
    const dev = await home(w.users.dev);
    // Alice may see 2 of the world's NEW bugs; staff see all 6.
    assert.equal(newCount(alice), 2);
    assert.equal(newCount(dev), 6);
  });
});
