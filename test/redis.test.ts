/**
 * REDIS_URL against a real redis-server: several app instances on one database share the bug cache, the rate
 * limit and the sign-in throttle; a change made through one is never served stale by another; with Redis stopped
 * or stalled, everything keeps working on the database and /readyz says "degraded"; once Redis is back the cache is
 * used again without serving anything from before the outage.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { redisServerPath, startRedis, type TestRedis } from './helpers/redis.ts';

const available = redisServerPath() !== undefined;
if (!available && process.env['CI'] === 'true')
  throw new Error('redis-server is not installed (.ci/run installs it)');

let redis: TestRedis;
let probe: Redis;
let t: TestApp;
let w: Awaited<ReturnType<typeof world>>;
/** More app instances on the same database and Redis: other processes, as far as caches are concerned. */
const others: FastifyInstance[] = [];

const env = (url: string, extra: Record<string, string> = {}) => ({
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  DATA_DIR: '/tmp/bugzot-test-unused',
  RATE_LIMIT_PER_MINUTE: '0',
  REDIS_URL: url,
  ...extra,
});

async function another(extra: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildApp({ config: loadConfig(env(redis.url, extra)), db: t.db });
  await app.ready();
  others.push(app);
  return app;
}

async function getBug(app: FastifyInstance, id: number, as: TestUser) {
  const res = await app.inject({ url: `/api/v1/bugs/${id}`, headers: as.auth });
  assert.equal(res.statusCode, 200, res.body);
  return JSON.parse(res.body) as { summary: string; row_version: number };
}

async function rename(app: FastifyInstance, id: number, as: TestUser, summary: string) {
  const res = await app.inject({
    method: 'PATCH',
    url: `/api/v1/bugs/${id}`,
    headers: as.auth,
    payload: { summary },
  });
  assert.equal(res.statusCode, 200, res.body);
}

/** Waits until the app's Redis link is connected (it connects in the background). */
async function connected(app: FastifyInstance): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await app.inject({ url: '/readyz' });
    if (JSON.parse(res.body).status === 'ready') return;
    if (Date.now() > deadline) throw new Error(`Redis never became ready: ${res.body}`);
    await sleep(50);
  }
}

before(async () => {
  if (!available) return;
  redis = await startRedis();
  probe = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
  probe.on('error', () => {}); // The outage tests stop the server under it.
  await probe.connect();
  t = await startTestApp({ REDIS_URL: redis.url });
  w = await world(t);
  await connected(t.app);
});

after(async () => {
  if (!available) return;
  for (const app of others) await app.close();
  await t.close();
  probe.disconnect();
  await redis.stop();
});

test('a bug read by one instance is served to another from Redis, and never after a change', async (tt) => {
  if (!available) return tt.skip('redis-server is not installed');
  const { dev } = w.users;
  const id = w.bugs.public.id;
  const a = await another();
  await connected(a);
  const original = (await getBug(a, id, dev)).summary;
  assert.ok(await probe.exists(`bugzot:v:bug:${id}`), 'the bug was stored in the shared cache');

  // Proof that a second instance reads Redis and not the database: change the row behind the app's back.
  await t.db.query(sql`UPDATE bugs SET summary = 'changed behind the back' WHERE id = ${id}`);
  const b = await another();
  await connected(b);
  assert.equal((await getBug(b, id, dev)).summary, original, 'served from the shared cache');
  await t.db.query(sql`UPDATE bugs SET summary = ${original} WHERE id = ${id}`);

  // A change through one instance: no other instance, even one with nothing in memory, serves the old bug.
  await rename(b, id, dev, 'Renamed through instance B');
  const c = await another();
  await connected(c);
  assert.equal((await getBug(c, id, dev)).summary, 'Renamed through instance B');
  assert.equal((await getBug(t.app, id, dev)).summary, 'Renamed through instance B');
});

test('visibility is checked per viewer on what comes from Redis', async (tt) => {
  if (!available) return tt.skip('redis-server is not installed');
  const id = w.bugs.confidential.id;
  const a = await another();
  await connected(a);
  await getBug(a, id, w.users.dev);
  assert.ok(await probe.exists(`bugzot:v:bug:${id}`));
  const b = await another();
  await connected(b);
  const res = await b.inject({ url: `/api/v1/bugs/${id}`, headers: w.users.alice.auth });
  assert.equal(res.statusCode, 404, 'an external user gets 404 for a confidential bug, cached or not');
});

test('the rate limit is one budget across instances, per API key, with 429 and Retry-After', async (tt) => {
  if (!available) return tt.skip('redis-server is not installed');
  const a = await another({ RATE_LIMIT_PER_MINUTE: '5' });
  const b = await another({ RATE_LIMIT_PER_MINUTE: '5' });
  await connected(a);
  await connected(b);
  const who = await t.user({ kind: 'internal' });
  const url = `/api/v1/bugs/${w.bugs.public.id}`;
  for (const app of [a, a, a, b, b]) {
    assert.equal((await app.inject({ url, headers: who.auth })).statusCode, 200);
  }
  const refused = await a.inject({ url, headers: who.auth });
  assert.equal(refused.statusCode, 429);
  assert.equal(JSON.parse(refused.body).error.code, 'rate_limited');
  assert.ok(Number(refused.headers['retry-after']) > 0);
  // Someone else's budget is untouched, and probes are never limited.
  assert.equal((await b.inject({ url, headers: w.users.dev.auth })).statusCode, 200);
  assert.equal((await b.inject({ url: '/healthz' })).statusCode, 200);
});

test('sign-in throttling counts failures across instances', async (tt) => {
  if (!available) return tt.skip('redis-server is not installed');
  const a = await another({ LOGIN_MAX_ATTEMPTS: '3' });
  const b = await another({ LOGIN_MAX_ATTEMPTS: '3' });
  await connected(a);
  await connected(b);
  const who = await t.user();
  const attempt = (app: FastifyInstance, password: string) =>
    app.inject({ method: 'POST', url: '/api/v1/session', payload: { email: who.email, password } });
  assert.equal((await attempt(a, 'wrong one')).statusCode, 401);
  assert.equal((await attempt(b, 'wrong two')).statusCode, 401);
  assert.equal((await attempt(a, 'wrong three')).statusCode, 401);
  assert.equal(
    (await attempt(b, 'correct horse battery')).statusCode,
    429,
    'the fourth try is refused anywhere',
  );
});

test('Redis stalled: changes still land, readiness says degraded, and nothing stale is served after', async (tt) => {
  if (!available) return tt.skip('redis-server is not installed');
  const { dev } = w.users;
  const id = w.bugs.ccBob.id;
  const a = await another();
  await connected(a);
  await getBug(a, id, dev);
  assert.ok(await probe.exists(`bugzot:v:bug:${id}`));
  // Writes stall for 1.5 s (longer than the app's command timeout): the invalidation of this change is missed.
  await probe.client('PAUSE', 1500, 'WRITE');
  await rename(t.app, id, dev, 'Changed while Redis stalled');
  await sleep(1600);
  // The old value is still in Redis with a generation that looks current; no instance may use it.
  const fresh = await another();
  await connected(fresh);
  assert.equal((await getBug(fresh, id, dev)).summary, 'Changed while Redis stalled');
  assert.equal((await getBug(t.app, id, dev)).summary, 'Changed while Redis stalled');
});

test('Redis stopped: still serving and changing from the database, degraded; then back in use', async (tt) => {
  if (!available) return tt.skip('redis-server is not installed');
  const { dev } = w.users;
  const id = w.bugs.onBeta.id;
  await redis.stop();
  const ready = await t.app.inject({ url: '/readyz' });
  assert.equal(ready.statusCode, 200, 'Redis down does not take the instance out of the load balancer');
  const body = JSON.parse(ready.body);
  assert.equal(body.status, 'degraded');
  assert.equal(body.checks.redis.ok, false);
  assert.equal(body.checks.database.ok, true);
  await rename(t.app, id, dev, 'Changed while Redis was down');
  assert.equal((await getBug(t.app, id, dev)).summary, 'Changed while Redis was down');
  const signIn = await t.app.inject({
    method: 'POST',
    url: '/api/v1/session',
    payload: { email: dev.email, password: 'correct horse battery' },
  });
  assert.equal(signIn.statusCode, 200, 'sign-in works without Redis');

  await redis.start();
  await connected(t.app);
  assert.equal((await getBug(t.app, id, dev)).summary, 'Changed while Redis was down');
  // A new instance's reads fill the shared cache again.
  const b = await another();
  await connected(b);
  const deadline = Date.now() + 5_000;
  for (;;) {
    await getBug(b, w.bugs.aliceOwn.id, dev);
    if (await probe.exists(`bugzot:v:bug:${w.bugs.aliceOwn.id}`).catch(() => 0)) break;
    if (Date.now() > deadline) assert.fail('the shared cache was not used again after Redis came back');
    await sleep(50);
  }
});
