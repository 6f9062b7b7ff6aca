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
 *
 * `t.request` also holds every JSON answer of an /api/v1 route to the response schema /api/openapi.json
 * publishes for that route and status (ResponseContract), and throws, naming both, when it does not match.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { UserViewer } from '../../src/access/index.ts';
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
  /** The user as the access module sees them, for calling services directly. */
  viewer: UserViewer;
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

/** The parts of an OpenAPI 3.1 document the response contract reads. */
interface OpenApiDoc {
  paths: Record<
    string,
    Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>
  >;
}

/**
 * The response schemas of /api/openapi.json as a contract: every JSON answer of an /api/v1 route must
 * match the schema the document publishes for that route and status (exact status, else `4XX`-style
 * range, else `default`). Integration tests run every answer through it (t.request, apiAs), so a
 * schema and the code behind it cannot drift apart unnoticed.
 */
export class ResponseContract {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  private readonly routes: { method: string; template: string; pattern: RegExp; params: number }[] = [];
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly doc: OpenApiDoc) {
    (addFormats as unknown as (a: Ajv2020) => void)(this.ajv);
    // The whole document is one schema resource, so that a $ref inside a response resolves in it.
    this.ajv.addSchema(doc as object, 'openapi.json');
    for (const [template, operations] of Object.entries(doc.paths)) {
      const source = template
        .split(/\{[^}]+\}/)
        .map((part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))
        .join('[^/]+');
      for (const method of Object.keys(operations)) {
        this.routes.push({
          method: method.toUpperCase(),
          template,
          pattern: new RegExp(`^${source}$`),
          params: template.split('{').length - 1,
        });
      }
    }
    // A literal segment wins over a parameter (/me/watches before /users/{id}-like templates).
    this.routes.sort((a, b) => a.params - b.params);
  }

  /** Why an answer breaks the contract, or undefined when it keeps it (or is not a JSON API answer). */
  check(method: string, url: string, status: number, contentType: unknown, body: string): string | undefined {
    const path = url.split('?')[0]!;
    if (!path.startsWith('/api/v1/') || body === '' || status === 204 || status === 304) return undefined;
    if (typeof contentType !== 'string' || !/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)) {
      return undefined;
    }
    const route = this.routes.find((r) => r.method === method.toUpperCase() && r.pattern.test(path));
    if (!route) return undefined; // not a route: the not-found answer
    const where = `${method.toUpperCase()} ${route.template}`;
    const responses = this.doc.paths[route.template]![route.method.toLowerCase()]!.responses ?? {};
    const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
    if (!key) return `${where} answered ${status}, a status its schema does not declare`;
    const media = Object.keys(responses[key]!.content ?? {}).find((m) => /json/.test(m));
    if (!media) return `${where} answered ${status} with a JSON body, but declares no JSON body for ${key}`;
    const id = `${route.template} ${route.method} ${key} ${media}`;
    let validate = this.validators.get(id);
    if (!validate) {
      const pointer = [
        'paths',
        route.template,
        route.method.toLowerCase(),
        'responses',
        key,
        'content',
        media,
        'schema',
      ]
        .map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1')))
        .join('/');
      validate = this.ajv.compile({ $ref: `openapi.json#/${pointer}` });
      this.validators.set(id, validate);
    }
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch {
      return `${where} answered ${status} with a body that is not JSON: ${body.slice(0, 200)}`;
    }
    if (validate(data)) return undefined;
    const errors = (validate.errors ?? [])
      .slice(0, 5)
      .map((e: ErrorObject) => `${e.instancePath || '(body)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
      .join('; ');
    return `${where} answered ${status} with a body that does not match its response schema (${key}): ${errors}; body: ${body.slice(0, 600)}`;
  }
}

/** One contract per distinct document (apps built with the same routes share the compiled schemas). */
const contracts = new Map<string, ResponseContract>();

/** The contract of an OpenAPI document given as its JSON text. */
export function contractOf(docText: string): ResponseContract {
  let contract = contracts.get(docText);
  if (!contract) {
    contract = new ResponseContract(JSON.parse(docText) as OpenApiDoc);
    contracts.set(docText, contract);
  }
  return contract;
}

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
  let contract: ResponseContract | undefined;
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
      // Every JSON answer of the API must match the schema /api/openapi.json publishes for it.
      const url = String(rest.url ?? (rest as { path?: unknown }).path ?? '');
      if (url.startsWith('/api/v1/')) {
        contract ??= contractOf((await app.inject({ method: 'GET', url: '/api/openapi.json' })).body);
        const broken = contract.check(
          rest.method ?? 'GET',
          url,
          res.statusCode,
          res.headers['content-type'],
          res.body,
        );
        if (broken) throw new Error(`Response contract: ${broken}`);
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
      const viewer = toViewer(row);
      return { id: row.id, email, name, key, auth: { authorization: `Bearer ${key}` }, viewer };
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
