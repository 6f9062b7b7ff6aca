/**
 * The shared fixture of the HTTP tests: a fresh database, the app built on it (driven with `inject`),
 * and factories for users (each with an API key), products, versions, components and bugs.
 *
 * `world()` builds the one set of users and bugs every visibility test uses:
 * - admin (internal, admin), dev (internal), alice and bob (external customers);
 * - product Omega (released) with 1.0 (released) and 2.0-beta (unreleased), components Core and UI;
 * - product Orion (internal-only, unreleased) with 0.1 (unreleased) and component Core;
 * - bugs: public (Omega 1.0), confidential (Omega 1.0), onBeta (Omega 2.0-beta), internal (Orion),
 *   aliceOwn (filed by alice, confidential), ccBob (confidential, bob on CC).
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import type { Db } from '../../src/platform/db.ts';
import { createApiKey, createUser, toViewer } from '../../src/users/index.ts';
import { createTestDb, type TestDb } from './db.ts';

/** A parsed JSON answer; the tests check it field by field. */
// biome-ignore lint/suspicious/noExplicitAny: JSON answers are untyped by nature; assertions do the checking.
export type Json = any;

/** A user made by the fixture, with an API key for requests. */
export interface TestUser {
  id: number;
  email: string;
  name: string;
  key: string;
  /** Headers that authenticate as this user. */
  auth: { authorization: string };
}

/** A running test app over its own database. */
export interface TestApp {
  app: FastifyInstance;
  db: Db;
  config: Config;
  testDb: TestDb;
  /** `app.inject` with JSON parsing of the answer. */
  request(
    opts: InjectOptions & { as?: TestUser | undefined },
  ): Promise<LightMyRequestResponse & { body: string; data: Json }>;
  user(opts?: { kind?: 'internal' | 'external'; admin?: boolean; name?: string }): Promise<TestUser>;
  /** Signs a fixture user in through the API: the Cookie header and the session's CSRF token. */
  session(user: TestUser): Promise<{ cookie: string; csrf: string }>;
  close(): Promise<void>;
}

let counter = 0;

/** Builds the app on a fresh migrated database. */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const testDb = await createTestDb();
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: '/tmp/bugzot-test-unused',
    // Tests make many requests as one user; the rate limit has its own tests (test/redis.test.ts).
    RATE_LIMIT_PER_MINUTE: '0',
    ...env,
  });
  const app = await buildApp({ config, db: testDb.db });
  await app.ready();
  const t: TestApp = {
    app,
    db: testDb.db,
    config,
    testDb,
    async request(opts) {
      const { as, ...rest } = opts;
      const headers = { ...(as ? as.auth : {}), ...(rest.headers ?? {}) };
      const res = await app.inject({ ...rest, headers });
      let data: unknown;
      try {
        data = res.body ? JSON.parse(res.body) : undefined;
      } catch {
        data = undefined;
      }
      return Object.assign(res, { data });
    },
    async user(opts = {}) {
      counter += 1;
      const name = opts.name ?? `user${counter}`;
      const email = `${name.toLowerCase()}.${counter}.${process.pid}@example.test`;
      const row = await createUser(testDb.db, {
        email,
        name,
        password: 'correct horse battery',
        kind: opts.kind ?? (opts.admin ? 'internal' : 'external'),
        isAdmin: opts.admin ?? false,
      });
      const { key } = await createApiKey(testDb.db, toViewer(row), {
        name: 'test',
        scope: 'read-write',
        expiresAt: null,
      });
      return { id: row.id, email, name, key, auth: { authorization: `Bearer ${key}` } };
    },
    async session(user) {
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/session',
        payload: { email: user.email, password: 'correct horse battery' },
      });
      const token = res.cookies.find((c) => c.name === 'bugzot_session')?.value;
      if (res.statusCode !== 200 || !token) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`);
      return { cookie: `bugzot_session=${token}`, csrf: res.data.csrf_token as string };
    },
    async close() {
      await app.close();
      await testDb.close();
    },
  };
  return t;
}

/** The shared world of users, products and bugs (see the file comment). */
export async function world(t: TestApp) {
  const admin = await t.user({ admin: true, name: 'Admin' });
  const dev = await t.user({ kind: 'internal', name: 'Dev' });
  const alice = await t.user({ kind: 'external', name: 'Alice' });
  const bob = await t.user({ kind: 'external', name: 'Bob' });

  const post = async (url: string, payload: object, as: TestUser = admin) => {
    const res = await t.request({ method: 'POST', url, payload, as });
    if (res.statusCode !== 201) throw new Error(`POST ${url} -> ${res.statusCode} ${res.body}`);
    return res.data as { id: number };
  };
  const omega = await post('/api/v1/products', { name: 'Omega', is_released: true });
  const omega10 = await post(`/api/v1/products/${omega.id}/versions`, { name: '1.0', is_released: true });
  const omegaBeta = await post(`/api/v1/products/${omega.id}/versions`, { name: '2.0-beta' });
  const omegaCore = await post(`/api/v1/products/${omega.id}/components`, { name: 'Core' });
  const omegaUi = await post(`/api/v1/products/${omega.id}/components`, { name: 'UI' });
  const orion = await post('/api/v1/products', { name: 'Orion' });
  const orion01 = await post(`/api/v1/products/${orion.id}/versions`, { name: '0.1' });
  const orionCore = await post(`/api/v1/products/${orion.id}/components`, { name: 'Core' });

  const bug = (summary: string, extra: object = {}, as: TestUser = dev) =>
    post(
      '/api/v1/bugs',
      { product_id: omega.id, version_id: omega10.id, component_id: omegaCore.id, summary, ...extra },
      as,
    );
  const bugs = {
    public: await bug('Public crash on start'),
    confidential: await bug('Confidential zebra leak', { confidential: true }),
    onBeta: await bug('Beta-only regression', { version_id: omegaBeta.id }),
    internal: await bug('Orion secret project bug', {
      product_id: orion.id,
      version_id: orion01.id,
      component_id: orionCore.id,
    }),
    aliceOwn: await bug('Alice private report', { confidential: true }, alice),
    ccBob: await bug('Confidential with Bob on CC', { confidential: true, cc: [bob.id] }),
  };
  return {
    users: { admin, dev, alice, bob },
    products: { omega, orion },
    versions: { omega10, omegaBeta, orion01 },
    components: { omegaCore, omegaUi, orionCore },
    bugs,
    bug,
  };
}
