/**
 * API keys beyond the basics of test/users.test.ts: last-used time, per-key rate limits (in process and
 * shared through a real Redis), the admin API for keys, and keys acting on behalf of other users
 * (X-Bugzot-On-Behalf-Of): whose visibility and permissions apply, who may use the header, and that
 * every change records the real actor.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { EVENT_COLUMNS, type EventRow, type StoredBugEvent, toEvent } from '../src/events/index.ts';
import type { Job } from '../src/jobs/index.ts';
import { createTransport, MAIL_JOB, notifyHandlers } from '../src/notify/index.ts';
import { sql } from '../src/platform/db.ts';
import { findUserById } from '../src/users/repository.ts';
import { toViewer } from '../src/users/service.ts';
import { buildPayload } from '../src/webhooks/payload.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { redisServerPath, startRedis, type TestRedis } from './helpers/redis.ts';

const ON_BEHALF = 'x-bugzot-on-behalf-of';
const redisAvailable = redisServerPath() !== undefined;
if (!redisAvailable && process.env['CI'] === 'true') {
  throw new Error('redis-server is not installed (.ci/run installs it)');
}

let t: TestApp;
let w: Awaited<ReturnType<typeof world>>;
/** An internal, non-admin account whose key an admin allowed to act on behalf of others. */
let bot: TestUser & { keyId: number };
const others: FastifyInstance[] = [];
let redis: TestRedis | undefined;

/** Another app instance on the same database (another process, as far as limits are concerned). */
async function another(env: Record<string, string>): Promise<FastifyInstance> {
  const app = await buildApp({
    config: loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATA_DIR: '/tmp/bugzot-test-unused',
      RATE_LIMIT_PER_MINUTE: '0',
      ...env,
    }),
    db: t.db,
  });
  await app.ready();
  others.push(app);
  return app;
}

/** Creates a key through the API; answers the whole response. */
function createKey(as: TestUser, payload: Record<string, unknown>) {
  return t.request({ method: 'POST', url: '/api/v1/api-keys', as, payload: { name: 'k', ...payload } });
}

async function keyOf(as: TestUser, payload: Record<string, unknown> = {}) {
  const res = await createKey(as, payload);
  assert.equal(res.statusCode, 201, res.body);
  return { id: res.data.id as number, auth: { authorization: `Bearer ${res.data.key as string}` } };
}

function markOnBehalf(keyId: number, allowed: boolean, as: TestUser = w.users.admin) {
  return t.request({
    method: 'PATCH',
    url: `/api/v1/admin/api-keys/${keyId}`,
    as,
    payload: { on_behalf_of: allowed },
  });
}

/** A request with the bot's key acting for `target`. */
function asBotFor(target: string | number, opts: Parameters<TestApp['request']>[0]) {
  return t.request({
    ...opts,
    headers: { ...bot.auth, [ON_BEHALF]: String(target), ...(opts.headers ?? {}) },
  });
}

before(async () => {
  t = await startTestApp();
  w = await world(t);
  const user = await t.user({ kind: 'internal', name: 'SupportBot' });
  const key = await keyOf(user);
  const marked = await markOnBehalf(key.id, true);
  assert.equal(marked.statusCode, 200, marked.body);
  bot = { ...user, key: key.auth.authorization.slice(7), auth: key.auth, keyId: key.id };
});

after(async () => {
  for (const app of others) await app.close();
  await t.close();
  await redis?.stop();
});

test('last_used_at is empty for a new key and set once the key is used', async () => {
  const who = await t.user();
  const key = await keyOf(who, { name: 'fresh' });
  const listed = async () =>
    (await t.request({ url: '/api/v1/api-keys', as: who })).data.api_keys.find(
      (k: { id: number }) => k.id === key.id,
    );
  assert.equal((await listed()).last_used_at, null);
  const before = Date.now();
  assert.equal((await t.request({ url: '/api/v1/me', headers: key.auth })).statusCode, 200);
  const used = await listed();
  assert.ok(used.last_used_at, 'last_used_at was not set');
  assert.ok(Date.parse(used.last_used_at) >= before - 5_000, `last_used_at ${used.last_used_at} is stale`);
});

test("a key's own rate limit applies to that key only, with 429, Retry-After and RateLimit headers", async () => {
  const who = await t.user();
  const res = await createKey(who, { rate_limit_per_minute: 3 });
  assert.equal(res.statusCode, 201, res.body);
  assert.equal(res.data.rate_limit_per_minute, 3);
  const limited = { authorization: `Bearer ${res.data.key}` };
  // The fixture runs without a global limit (RATE_LIMIT_PER_MINUTE=0): the key's own still counts.
  for (const remaining of [2, 1, 0]) {
    const ok = await t.request({ url: '/api/v1/me', headers: limited });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.headers['x-ratelimit-limit'], '3');
    assert.equal(ok.headers['x-ratelimit-remaining'], String(remaining));
  }
  const refused = await t.request({ url: '/api/v1/me', headers: limited });
  assert.equal(refused.statusCode, 429);
  assert.equal(refused.data.error.code, 'rate_limited');
  assert.match(refused.data.error.message, /limit is 3 a minute/);
  assert.ok(Number(refused.headers['retry-after']) > 0);
  assert.equal(refused.headers['x-ratelimit-remaining'], '0');
  // The same owner's other key, and other people, are not counted against it.
  const other = await t.request({ url: '/api/v1/me', as: who });
  assert.equal(other.statusCode, 200);
  assert.equal(other.headers['x-ratelimit-limit'], undefined, 'keys without a limit are not counted');
});

test('an owner may set a key limit up to API_KEY_RATE_LIMIT_MAX; admins may set more', async () => {
  const who = await t.user();
  const count = async () =>
    (
      await t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM api_keys WHERE user_id = ${who.id}`)
    )[0]!.n;
  const keysBefore = await count();
  const tooHigh = await createKey(who, { rate_limit_per_minute: t.config.apiKeyRateLimitMax + 1 });
  assert.equal(tooHigh.statusCode, 422, tooHigh.body);
  assert.equal(tooHigh.data.error.field, 'rate_limit_per_minute');
  assert.match(tooHigh.data.error.message, /at most 1200/);
  for (const bad of [0, -5, 1.5, 2_000_000, 'ten']) {
    const res = await createKey(who, { rate_limit_per_minute: bad });
    assert.equal(res.statusCode, 400, `${bad}: ${res.body}`);
  }
  assert.equal(await count(), keysBefore, 'a refused key was stored');
  assert.equal((await createKey(who, { rate_limit_per_minute: 1200 })).statusCode, 201);
  const admins = await createKey(w.users.admin, { rate_limit_per_minute: 50_000 });
  assert.equal(admins.statusCode, 201, admins.body);
  assert.equal(admins.data.rate_limit_per_minute, 50_000);
});

test('the global limit counts keys without their own limit; a key with its own uses that instead', async () => {
  const app = await another({ RATE_LIMIT_PER_MINUTE: '2' });
  const who = await t.user();
  const roomy = await keyOf(who, { rate_limit_per_minute: 4 });
  const statuses = async (headers: Record<string, string>, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await app.inject({ url: '/api/v1/me', headers })).statusCode);
    return out;
  };
  assert.deepEqual(await statuses(who.auth, 3), [200, 200, 429]);
  assert.deepEqual(await statuses(roomy.auth, 5), [200, 200, 200, 200, 429]);
});

test('an admin changes a key limit through the admin API, effective at once; others may not', async () => {
  const who = await t.user();
  const key = await keyOf(who);
  for (let i = 0; i < 3; i++) {
    assert.equal((await t.request({ url: '/api/v1/me', headers: key.auth })).statusCode, 200);
  }
  const byOwner = await t.request({
    method: 'PATCH',
    url: `/api/v1/admin/api-keys/${key.id}`,
    as: who,
    payload: { rate_limit_per_minute: 5000 },
  });
  assert.equal(byOwner.statusCode, 403);
  const patched = await t.request({
    method: 'PATCH',
    url: `/api/v1/admin/api-keys/${key.id}`,
    as: w.users.admin,
    payload: { rate_limit_per_minute: 2 },
  });
  assert.equal(patched.statusCode, 200, patched.body);
  assert.equal(patched.data.rate_limit_per_minute, 2);
  assert.deepEqual(patched.data.owner, { id: who.id, email: who.email, name: who.name });
  assert.equal((await t.request({ url: '/api/v1/me', headers: key.auth })).statusCode, 200);
  assert.equal((await t.request({ url: '/api/v1/me', headers: key.auth })).statusCode, 200);
  assert.equal((await t.request({ url: '/api/v1/me', headers: key.auth })).statusCode, 429);
  // Back to the global limit (none in this app).
  const cleared = await t.request({
    method: 'PATCH',
    url: `/api/v1/admin/api-keys/${key.id}`,
    as: w.users.admin,
    payload: { rate_limit_per_minute: null },
  });
  assert.equal(cleared.data.rate_limit_per_minute, null);
  assert.equal((await t.request({ url: '/api/v1/me', headers: key.auth })).statusCode, 200);
  const empty = await t.request({
    method: 'PATCH',
    url: `/api/v1/admin/api-keys/${key.id}`,
    as: w.users.admin,
    payload: {},
  });
  assert.equal(empty.statusCode, 400);
  const missing = await markOnBehalf(2147483000, true);
  assert.equal(missing.statusCode, 404);
});

test('admins list every key with its owner and settings; others get 403', async () => {
  const listed = await t.request({ url: `/api/v1/admin/api-keys?user_id=${bot.id}`, as: w.users.admin });
  assert.equal(listed.statusCode, 200, listed.body);
  const row = listed.data.api_keys.find((k: { id: number }) => k.id === bot.keyId);
  assert.equal(row.on_behalf_of, true);
  assert.equal(row.owner.id, bot.id);
  assert.ok(!('key' in row) && !('key_hash' in row), 'a secret was listed');
  const all = await t.request({ url: '/api/v1/admin/api-keys?limit=2', as: w.users.admin });
  assert.equal(all.data.api_keys.length, 2);
  assert.ok(all.data.api_keys[0].id > all.data.api_keys[1].id, 'newest first');
  const next = await t.request({
    url: `/api/v1/admin/api-keys?limit=2&before=${all.data.api_keys[1].id}`,
    as: w.users.admin,
  });
  assert.ok(next.data.api_keys.every((k: { id: number }) => k.id < all.data.api_keys[1].id));
  for (const who of [w.users.dev, w.users.alice]) {
    assert.equal((await t.request({ url: '/api/v1/admin/api-keys', as: who })).statusCode, 403);
  }
});

test('only admins may allow a key to act on behalf of others, at creation or later', async () => {
  const dev = w.users.dev;
  const created = await createKey(dev, { on_behalf_of: true });
  assert.equal(created.statusCode, 403, created.body);
  const keys = (await t.request({ url: '/api/v1/api-keys', as: dev })).data.api_keys;
  assert.ok(keys.every((k: { on_behalf_of: boolean }) => !k.on_behalf_of));
  assert.equal((await markOnBehalf(keys[0].id, true, dev)).statusCode, 403);
  const byAdmin = await createKey(w.users.admin, { on_behalf_of: true });
  assert.equal(byAdmin.statusCode, 201, byAdmin.body);
  assert.equal(byAdmin.data.on_behalf_of, true);
});

test('acting for a customer: their identity, visibility and permissions, never the bot’s', async () => {
  const { alice } = w.users;
  const me = await asBotFor(alice.email.toUpperCase(), { url: '/api/v1/me' });
  assert.equal(me.statusCode, 200, me.body);
  assert.equal(me.data.id, alice.id);
  assert.equal(me.data.kind, 'external');
  assert.deepEqual(me.data.via, { id: bot.id, email: bot.email, name: 'SupportBot', key_id: bot.keyId });
  // The bot itself (internal) sees the confidential bug; acting for Alice it does not exist.
  assert.equal((await t.request({ url: `/api/v1/bugs/${w.bugs.confidential.id}`, as: bot })).statusCode, 200);
  assert.equal((await asBotFor(alice.id, { url: `/api/v1/bugs/${w.bugs.confidential.id}` })).statusCode, 404);
  assert.equal((await asBotFor(alice.id, { url: `/api/v1/bugs/${w.bugs.internal.id}` })).statusCode, 404);
  assert.equal((await asBotFor(alice.id, { url: `/api/v1/bugs/${w.bugs.aliceOwn.id}` })).statusCode, 200);
  const listed = await asBotFor(alice.id, { url: '/api/v1/bugs?limit=100' });
  const ids = listed.data.bugs.map((b: { id: number }) => b.id);
  assert.ok(ids.includes(w.bugs.aliceOwn.id) && !ids.includes(w.bugs.confidential.id));
  // Staff-only changes stay refused, and nothing changes.
  const before = (await t.request({ url: `/api/v1/bugs/${w.bugs.public.id}`, as: w.users.dev })).data;
  const change = await asBotFor(alice.id, {
    method: 'PATCH',
    url: `/api/v1/bugs/${w.bugs.public.id}`,
    payload: { priority: 'P1' },
  });
  assert.ok(change.statusCode === 403 || change.statusCode === 422, `${change.statusCode} ${change.body}`);
  const afterwards = (await t.request({ url: `/api/v1/bugs/${w.bugs.public.id}`, as: w.users.dev })).data;
  assert.equal(afterwards.priority, before.priority);
  assert.equal(afterwards.row_version, before.row_version);
});

test('a bug filed, commented and attached on behalf of a customer records the bot as the real actor', async () => {
  const { alice } = w.users;
  const filed = await asBotFor(alice.email, {
    method: 'POST',
    url: '/api/v1/bugs',
    payload: {
      product_id: w.products.omega.id,
      version_id: w.versions.omega10.id,
      component_id: w.components.omegaCore.id,
      summary: 'Filed by the support desk for Alice',
    },
  });
  assert.equal(filed.statusCode, 201, filed.body);
  const id = filed.data.id as number;
  assert.equal(filed.data.reporter.id, alice.id);
  const commented = await asBotFor(alice.id, {
    method: 'POST',
    url: `/api/v1/bugs/${id}/comments`,
    payload: { body: 'More details from the customer' },
  });
  assert.equal(commented.statusCode, 201, commented.body);
  assert.equal(commented.data.author.id, alice.id);
  assert.deepEqual(commented.data.via, { id: bot.id, name: 'SupportBot' });
  // A raw-body upload: the body is streamed before the handler runs, and the actor still follows.
  const attached = await asBotFor(alice.id, {
    method: 'PUT',
    url: `/api/v1/bugs/${id}/attachments/console.log?comment=log%20attached`,
    headers: { 'content-type': 'application/octet-stream' },
    payload: 'line one\nline two\n',
  });
  assert.equal(attached.statusCode, 201, attached.body);
  // Alice's own comment, without the bot, names no one else.
  const own = await t.request({
    method: 'POST',
    url: `/api/v1/bugs/${id}/comments`,
    as: alice,
    payload: { body: 'Written by Alice herself' },
  });
  assert.equal(own.statusCode, 201, own.body);
  assert.equal(own.data.via, undefined);

  const comments = (await t.request({ url: `/api/v1/bugs/${id}/comments`, as: w.users.dev })).data
    .comments as {
    body: string;
    via?: { id: number };
  }[];
  assert.equal(comments.find((c) => c.body === 'More details from the customer')?.via?.id, bot.id);
  assert.equal(comments.find((c) => c.body === 'Written by Alice herself')?.via, undefined);
  const history = (await t.request({ url: `/api/v1/bugs/${id}/history`, as: w.users.dev })).data;
  const changes = (history.history ?? history.changes ?? history) as {
    who: { id: number };
    via?: { id: number };
  }[];
  assert.ok(changes.length > 0, `no history: ${JSON.stringify(history)}`);
  for (const c of changes) {
    assert.equal(c.who.id, alice.id);
    assert.deepEqual(c.via, { id: bot.id, name: 'SupportBot' });
  }
  // In the database: every row this bot wrote for Alice names the key and its owner.
  const events = await t.db.query<{
    kind: string;
    actor_id: number;
    via_user_id: number;
    via_key_id: number;
  }>(sql`SELECT kind, actor_id, via_user_id, via_key_id FROM bug_events WHERE bug_id = ${id} ORDER BY id`);
  const mine = events.filter((e) => e.via_user_id !== null);
  assert.deepEqual(
    mine.map((e) => e.kind),
    ['bug.created', 'comment.created', 'attachment.created'],
  );
  for (const e of mine) {
    assert.equal(e.actor_id, alice.id);
    assert.equal(e.via_user_id, bot.id);
    assert.equal(e.via_key_id, bot.keyId);
  }
  assert.equal(events.filter((e) => e.via_user_id === null).length, 1, 'Alice’s own comment event');
  const [attachment] = await t.db.query<{ uploader_id: number; via_user_id: number; via_key_id: number }>(
    sql`SELECT uploader_id, via_user_id, via_key_id FROM attachments WHERE bug_id = ${id}`,
  );
  assert.deepEqual(attachment, { uploader_id: alice.id, via_user_id: bot.id, via_key_id: bot.keyId });
  // The bug's page names the bot beside Alice's comment and the change it made for her.
  const session = await t.session(w.users.dev);
  const page = await t.request({
    url: `/bugs/${id}`,
    headers: { cookie: session.cookie, accept: 'text/html' },
  });
  assert.equal(page.statusCode, 200);
  assert.equal(page.body.split('(via SupportBot)').length - 1, 3, 'comment, attachment comment and change');
  assert.match(page.body, /<strong>Alice<\/strong> commented/);
  // A write without the header afterwards is the bot's own, with nothing recorded beside it.
  const plain = await t.request({
    method: 'POST',
    url: `/api/v1/bugs/${id}/comments`,
    as: bot,
    payload: { body: 'The bot speaking for itself' },
  });
  assert.equal(plain.data.author.id, bot.id);
  assert.equal(plain.data.via, undefined);
});

test('webhook payloads and notification mails name the bot that acted for the customer', async () => {
  const { alice } = w.users;
  const filed = await asBotFor(alice.id, {
    method: 'POST',
    url: '/api/v1/bugs',
    payload: {
      product_id: w.products.omega.id,
      version_id: w.versions.omega10.id,
      component_id: w.components.omegaCore.id,
      summary: 'Filed for Alice, watched by hooks and mail',
    },
  });
  assert.equal(filed.statusCode, 201, filed.body);
  const id = filed.data.id as number;
  const commented = await asBotFor(alice.id, {
    method: 'POST',
    url: `/api/v1/bugs/${id}/comments`,
    payload: { body: 'Relayed from the support desk' },
  });
  assert.equal(commented.statusCode, 201, commented.body);
  const own = await t.request({
    method: 'POST',
    url: `/api/v1/bugs/${id}/comments`,
    as: alice,
    payload: { body: 'Alice adds this herself' },
  });
  assert.equal(own.statusCode, 201, own.body);
  const rows = await t.db.query<EventRow>(
    sql`SELECT ${EVENT_COLUMNS} FROM bug_events WHERE bug_id = ${id} ORDER BY id`,
  );
  const events = rows.map(toEvent);
  assert.equal(events.length, 3);
  const [created, relayed, herself] = events as [StoredBugEvent, StoredBugEvent, StoredBugEvent];
  assert.equal(relayed.viaUserId, bot.id);
  assert.equal(herself.viaUserId, null);

  // Webhook payloads (built as the owner sees them) carry `via` beside actor_id, only where a bot acted.
  const adminRow = await findUserById(t.db, w.users.admin.id);
  assert.ok(adminRow);
  const owner = toViewer(adminRow);
  const hook = await buildPayload(t.db, owner, relayed, 'comment.created');
  assert.equal(hook?.['actor_id'], alice.id);
  assert.deepEqual(hook?.['via'], { id: bot.id, name: 'SupportBot' });
  const filedHook = await buildPayload(t.db, owner, created, 'bug.created');
  assert.deepEqual(filedHook?.['via'], { id: bot.id, name: 'SupportBot' });
  const plain = await buildPayload(t.db, owner, herself, 'comment.created');
  assert.equal(plain?.['actor_id'], alice.id);
  assert.equal(plain?.['via'], undefined);

  // The mail to the reporter (written by the outbox transport) says who acted and through whom.
  const dir = mkdtempSync(join(tmpdir(), 'bugzot-via-mail-'));
  const transport = createTransport({
    smtpUrl: undefined,
    smtpPassword: undefined,
    smtpCaFile: undefined,
    dataDir: dir,
    log: { info() {} },
  });
  const handlers = notifyHandlers({
    db: t.db,
    transport,
    baseUrl: 'http://bugzot.test',
    from: 'bugzot@example.test',
    batchSeconds: 0,
    giveUpAfterMs: 60_000,
    log: { info() {}, warn() {} },
  });
  const mailJob = handlers.find((h) => h.kind === MAIL_JOB);
  assert.ok(mailJob);
  const run = async (eventIds: number[]) => {
    const before = new Set(readdirSync(dir, { recursive: true }).map(String));
    await mailJob.run({
      id: 1,
      kind: MAIL_JOB,
      payload: { bugId: id, userId: w.users.dev.id, actorId: alice.id, eventIds, roles: ['watcher'] },
      attempts: 1,
    } as unknown as Job);
    const added = readdirSync(dir, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.eml') && !before.has(f));
    assert.equal(added.length, 1);
    return readFileSync(join(dir, added[0]!), 'utf8');
  };
  try {
    const relayedMail = await run([relayed.id]);
    assert.match(relayedMail, /Alice \(via SupportBot\)/);
    assert.match(relayedMail, /X-Bugzot-Who: Alice \(via SupportBot\)/);
    const ownMail = await run([herself.id]);
    assert.doesNotMatch(ownMail, /via SupportBot/);
    assert.match(ownMail, /X-Bugzot-Who: Alice\r?\n/);
  } finally {
    transport.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the Bugzilla API acts for the named user too when the marked key comes as a bearer key', async () => {
  const res = await asBotFor(w.users.alice.email, { url: '/rest/whoami' });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.data.id, w.users.alice.id);
  const hidden = await asBotFor(w.users.alice.id, { url: `/rest/bug/${w.bugs.confidential.id}` });
  assert.equal(hidden.data.code, 101, hidden.body);
});

test('acting for someone does not reach their API keys, sessions or account', async () => {
  const { alice } = w.users;
  const keysBefore = await t.db.query(sql`SELECT id FROM api_keys WHERE user_id = ${alice.id}`);
  const attempts = [
    { method: 'GET' as const, url: '/api/v1/api-keys' },
    { method: 'POST' as const, url: '/api/v1/api-keys', payload: { name: 'stolen' } },
    { method: 'DELETE' as const, url: `/api/v1/api-keys/${keysBefore[0]!['id']}` },
    { method: 'PATCH' as const, url: `/api/v1/users/${alice.id}`, payload: { name: 'Renamed' } },
  ];
  for (const attempt of attempts) {
    const res = await asBotFor(alice.id, attempt);
    assert.equal(res.statusCode, 403, `${attempt.method} ${attempt.url}: ${res.body}`);
    assert.equal(res.data.error.code, 'on_behalf_refused');
  }
  const keysAfter = await t.db.query(
    sql`SELECT id FROM api_keys WHERE user_id = ${alice.id} AND revoked_at IS NULL`,
  );
  assert.deepEqual(keysAfter, keysBefore);
  assert.equal((await t.request({ url: '/api/v1/me', as: alice })).data.name, 'Alice');
});

test('other credentials sending the header are refused: 403 for keys and sessions, 401 for none', async () => {
  const { alice, dev } = w.users;
  const withKey = await t.request({ url: '/api/v1/me', as: dev, headers: { [ON_BEHALF]: String(alice.id) } });
  assert.equal(withKey.statusCode, 403);
  assert.equal(withKey.data.error.code, 'on_behalf_refused');
  const session = await t.session(dev);
  const withSession = await t.request({
    url: '/api/v1/me',
    headers: { cookie: session.cookie, [ON_BEHALF]: String(alice.id) },
  });
  assert.equal(withSession.statusCode, 403);
  const anonymous = await t.request({ url: '/api/v1/me', headers: { [ON_BEHALF]: String(alice.id) } });
  assert.equal(anonymous.statusCode, 401);
  // A write is refused before anything is stored.
  const write = await t.request({
    method: 'POST',
    url: `/api/v1/bugs/${w.bugs.public.id}/comments`,
    as: dev,
    headers: { [ON_BEHALF]: alice.email },
    payload: { body: 'should never be stored' },
  });
  assert.equal(write.statusCode, 403);
  const stored = await t.db.query(sql`SELECT 1 FROM comments WHERE body = 'should never be stored'`);
  assert.equal(stored.length, 0);
});

test('admins, disabled and unknown users cannot be acted for; a malformed value is a 400', async () => {
  const gone = await t.user({ name: 'Gone' });
  const disabled = await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${gone.id}`,
    as: w.users.admin,
    payload: { disabled: true },
  });
  assert.equal(disabled.statusCode, 200, disabled.body);
  for (const target of [
    w.users.admin.id,
    w.users.admin.email,
    gone.id,
    gone.email,
    2147483000,
    'nobody@x.test',
  ]) {
    const res = await asBotFor(target, { url: '/api/v1/me' });
    assert.equal(res.statusCode, 403, `${target}: ${res.body}`);
    assert.equal(res.data.error.code, 'on_behalf_refused');
  }
  for (const target of ['not a user', '0', '99999999999']) {
    const res = await asBotFor(target, { url: '/api/v1/me' });
    assert.ok([400, 403].includes(res.statusCode), `${target}: ${res.statusCode} ${res.body}`);
  }
  assert.equal((await asBotFor('not a user', { url: '/api/v1/me' })).statusCode, 400);
});

test("an external owner's key may act only for external users; the key's scope still applies", async () => {
  const externalBot = await t.user({ kind: 'external', name: 'PartnerBot' });
  const key = await keyOf(externalBot, { scope: 'read-only' });
  assert.equal((await markOnBehalf(key.id, true)).statusCode, 200);
  const forDev = await t.request({
    url: '/api/v1/me',
    headers: { ...key.auth, [ON_BEHALF]: String(w.users.dev.id) },
  });
  assert.equal(forDev.statusCode, 403);
  const forBob = await t.request({
    url: '/api/v1/me',
    headers: { ...key.auth, [ON_BEHALF]: String(w.users.bob.id) },
  });
  assert.equal(forBob.statusCode, 200);
  assert.equal(forBob.data.id, w.users.bob.id);
  const write = await t.request({
    method: 'POST',
    url: `/api/v1/bugs/${w.bugs.ccBob.id}/comments`,
    headers: { ...key.auth, [ON_BEHALF]: String(w.users.bob.id) },
    payload: { body: 'read-only key writing' },
  });
  assert.equal(write.statusCode, 403);
  // The internal bot may act for internal, non-admin staff.
  const forDevByBot = await asBotFor(w.users.dev.id, { url: '/api/v1/me' });
  assert.equal(forDevByBot.data.id, w.users.dev.id);
});

test('taking the permission back, or revoking the key, stops acting on behalf at once', async () => {
  const user = await t.user({ kind: 'internal', name: 'TempBot' });
  const key = await keyOf(user);
  assert.equal((await markOnBehalf(key.id, true)).statusCode, 200);
  const as = (h: Record<string, string>) => t.request({ url: '/api/v1/me', headers: { ...key.auth, ...h } });
  assert.equal((await as({ [ON_BEHALF]: String(w.users.alice.id) })).data.id, w.users.alice.id);
  const off = await markOnBehalf(key.id, false);
  assert.equal(off.statusCode, 200);
  assert.equal(off.data.on_behalf_of, false);
  assert.equal((await as({ [ON_BEHALF]: String(w.users.alice.id) })).statusCode, 403);
  assert.equal((await markOnBehalf(key.id, true)).statusCode, 200);
  assert.equal((await as({ [ON_BEHALF]: String(w.users.alice.id) })).statusCode, 200);
  const revoked = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, headers: key.auth });
  assert.equal(revoked.statusCode, 204);
  assert.equal((await as({ [ON_BEHALF]: String(w.users.alice.id) })).statusCode, 401);
  assert.equal((await markOnBehalf(key.id, true)).statusCode, 409, 'a revoked key cannot be marked');
});

test('a disabled customer cannot be acted for any more, even right after a cached use', async () => {
  const carol = await t.user({ name: 'Carol' });
  assert.equal((await asBotFor(carol.id, { url: '/api/v1/me' })).statusCode, 200);
  await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${carol.id}`,
    as: w.users.admin,
    payload: { disabled: true },
  });
  assert.equal((await asBotFor(carol.id, { url: '/api/v1/me' })).statusCode, 403);
});

test('the account page shows each key’s limit and on-behalf permission, and refuses a bad limit', async () => {
  const session = await t.session(bot);
  const page = await t.request({ url: '/account', headers: { cookie: session.cookie } });
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<th scope="col">Rate limit<\/th>/);
  assert.match(page.body, /<td>allowed<\/td>/);
  const form = (limit: string) =>
    t.request({
      method: 'POST',
      url: '/account/api-keys',
      headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        _csrf: session.csrf,
        name: 'page key',
        rate_limit_per_minute: limit,
      }).toString(),
    });
  const bad = await form('999999');
  assert.equal(bad.statusCode, 422);
  assert.match(bad.body, /rate_limit_per_minute may be at most 1200/);
  const good = await form('30');
  assert.equal(good.statusCode, 201);
  assert.match(good.body, /<td>30\/min<\/td>/);
});

test('a key limit is one budget across processes when REDIS_URL is set', async (tt) => {
  if (!redisAvailable) return tt.skip('redis-server is not installed');
  redis = await startRedis();
  const a = await another({ REDIS_URL: redis.url });
  const b = await another({ REDIS_URL: redis.url });
  for (const app of [a, b]) {
    const deadline = Date.now() + 10_000;
    while (JSON.parse((await app.inject({ url: '/readyz' })).body).status !== 'ready') {
      if (Date.now() > deadline) throw new Error('Redis never became ready');
      await sleep(50);
    }
  }
  const who = await t.user();
  const key = await keyOf(who, { rate_limit_per_minute: 4 });
  const codes: number[] = [];
  for (const app of [a, b, a, b, a, b]) {
    codes.push((await app.inject({ url: '/api/v1/me', headers: key.auth })).statusCode);
  }
  assert.deepEqual(codes, [200, 200, 200, 200, 429, 429]);
  const probe = new Redis(redis.url);
  try {
    const [stored] = await probe.keys(`*rl:k:${key.id}`);
    assert.ok(stored, 'no counter in Redis under the key id');
    assert.equal(Number(await probe.get(stored)), 6);
  } finally {
    probe.disconnect();
  }
  // Acting on behalf of someone counts against the key, not the user acted for.
  const limited = await keyOf(w.users.admin, { rate_limit_per_minute: 1 });
  assert.equal((await markOnBehalf(limited.id, true)).statusCode, 200);
  const headers = { ...limited.auth, [ON_BEHALF]: String(w.users.alice.id) };
  assert.equal((await a.inject({ url: '/api/v1/me', headers })).statusCode, 200);
  assert.equal((await b.inject({ url: '/api/v1/me', headers })).statusCode, 429);
  assert.equal((await b.inject({ url: '/api/v1/me', headers: w.users.alice.auth })).statusCode, 200);
});

test('the admin page lists keys and sets a key’s permission and limit; others are refused', async () => {
  const owner = await t.user({ kind: 'internal', name: 'PageBot' });
  const key = await keyOf(owner);
  const session = await t.session(w.users.admin);
  const page = await t.request({
    url: `/admin/api-keys?user_id=${owner.id}`,
    headers: { cookie: session.cookie, accept: 'text/html' },
  });
  assert.equal(page.statusCode, 200);
  assert.match(page.body, new RegExp(`id="key-${key.id}"`));
  assert.ok(page.body.includes(owner.email));
  const post = (fields: Record<string, string>) =>
    t.request({
      method: 'POST',
      url: `/admin/api-keys/${key.id}`,
      headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        _csrf: session.csrf,
        back: `/admin/api-keys?user_id=${owner.id}`,
        ...fields,
      }).toString(),
    });
  const saved = await post({ on_behalf_of: '1', rate_limit_per_minute: '5000' });
  assert.equal(saved.statusCode, 303, saved.body);
  assert.equal(saved.headers.location, `/admin/api-keys?user_id=${owner.id}&saved=1`);
  const [row] = await t.db.query<{ on_behalf_of: boolean; rate_limit_per_minute: number }>(
    sql`SELECT on_behalf_of, rate_limit_per_minute FROM api_keys WHERE id = ${key.id}`,
  );
  assert.deepEqual(row, { on_behalf_of: true, rate_limit_per_minute: 5000 });
  const bad = await post({ rate_limit_per_minute: 'lots' });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.body, /rate_limit_per_minute must be a whole number/);
  const unchanged = await t.db.query(sql`SELECT 1 FROM api_keys WHERE id = ${key.id} AND on_behalf_of`);
  assert.equal(unchanged.length, 1, 'a refused form changed the key');
  const cleared = await post({ rate_limit_per_minute: '' });
  assert.equal(cleared.statusCode, 303);
  const [after] = await t.db.query<{ on_behalf_of: boolean; rate_limit_per_minute: number | null }>(
    sql`SELECT on_behalf_of, rate_limit_per_minute FROM api_keys WHERE id = ${key.id}`,
  );
  assert.deepEqual(after, { on_behalf_of: false, rate_limit_per_minute: null });
  const devSession = await t.session(w.users.dev);
  const refused = await t.request({
    url: '/admin/api-keys',
    headers: { cookie: devSession.cookie, accept: 'text/html' },
  });
  assert.equal(refused.statusCode, 403);
});
