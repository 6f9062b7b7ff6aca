/**
 * Bad input on every write route is answered with a 4xx JSON envelope `{ error: { code, message,
 * field? } }` that names the field at fault, and nothing is written: every case compares a fingerprint
 * of all tables before and after. Covers malformed JSON, wrong types, missing and unknown properties,
 * bodies over the size limit, wrong content types, empty bodies, bad and unknown ids in the path,
 * unknown ids in the body, and bad query strings of the list routes.
 *
 * Table-driven: `routes` describes each write route once (a valid body, its wrong types, its required
 * fields), and the generic cases run against every route. A control test per route checks that the
 * valid body is really accepted, so each refusal is down to the one thing the case broke.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { raw, sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';

let t: TestApp;
let w: Awaited<ReturnType<typeof world>>;

const UNKNOWN_ID = 999999;

/** Columns fingerprinted per table; timestamps a read may bump (last use of a key or session) are left out. */
const TABLES: Record<string, string> = {
  users: 'id, email, name, password_hash, kind, is_admin, disabled',
  api_keys: 'id, user_id, name, prefix, key_hash, scope, expires_at, revoked_at',
  sessions: 'token_hash, user_id, csrf_token',
  products: '*',
  versions: '*',
  components: '*',
  bugs: '*',
  bug_cc: '*',
  comments: '*',
  bug_changes: '*',
};

/** Row count and a hash of the contents of every table: equal before and after means nothing was written. */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [table, columns] of Object.entries(TABLES)) {
    const rows = await t.db.query<{ n: number; h: string }>(sql`
      SELECT count(*)::int AS n, coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS h
      FROM (SELECT ${raw(columns)} FROM ${raw(table)}) x`);
    out[table] = `${rows[0]!.n}:${rows[0]!.h}`;
  }
  return out;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface Refusal {
  method: Method;
  url: string;
  as: TestUser | undefined;
  /** A JSON body (serialised by inject) ... */
  payload?: unknown;
  /** ... or a raw body with its own content type. */
  body?: string;
  contentType?: string;
  status: number | ((status: number) => boolean);
  code?: string;
  field?: string;
}

/** Sends the request, checks the status and the error envelope, and checks that no table changed. */
async function assertRefused(r: Refusal) {
  const before = await snapshot();
  const headers: Record<string, string> = r.contentType ? { 'content-type': r.contentType } : {};
  const res = await t.request({
    method: r.method,
    url: r.url,
    as: r.as,
    headers,
    ...(r.body !== undefined
      ? { payload: r.body }
      : r.payload !== undefined
        ? { payload: r.payload as object }
        : {}),
  });
  const statusOk = typeof r.status === 'number' ? res.statusCode === r.status : r.status(res.statusCode);
  assert.ok(statusOk, `${r.method} ${r.url} -> ${res.statusCode} ${res.body.slice(0, 500)}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, res.body.slice(0, 200));
  const error = res.data?.error;
  assert.equal(typeof error?.code, 'string', `no error envelope: ${res.body.slice(0, 500)}`);
  assert.equal(typeof error.message, 'string');
  assert.ok(error.message.length > 0);
  if (r.code !== undefined) assert.equal(error.code, r.code, res.body.slice(0, 500));
  if (r.field !== undefined) assert.equal(error.field, r.field, res.body.slice(0, 500));
  assert.deepEqual(await snapshot(), before, `${r.method} ${r.url} wrote to the database`);
  return res;
}

let unique = 0;
const next = () => ++unique;

/** One write route: how to reach it and what a valid body looks like. */
interface WriteRoute {
  method: 'POST' | 'PATCH';
  /** The route with `:id` where its path has one. */
  path: string;
  /** Who sends it (undefined: nobody, for sign-in). */
  as: () => TestUser | undefined;
  /** The id put in the path for valid requests. */
  id?: () => number;
  /** A body the route accepts (fresh names each call, so it can be sent twice). */
  valid: () => Record<string, unknown>;
  /** Bodies with one wrong part: a label, the change merged into the valid body, the field expected. */
  wrong: [label: string, change: Record<string, unknown>, field: string][];
  /** Properties whose absence is a 400. */
  required: string[];
  /** References in the body to rows that do not exist (or do not fit): 422 naming the field. */
  unknownRefs?: [label: string, change: () => Record<string, unknown>, field: string][];
  /** The status a valid request answers. */
  ok: number;
}

const big = (n: number) => 'x'.repeat(n);

const routes: WriteRoute[] = [
  {
    method: 'POST',
    path: '/api/v1/bugs',
    as: () => w.users.dev,
    valid: () => ({
      product_id: w.products.omega.id,
      version_id: w.versions.omega10.id,
      component_id: w.components.omegaCore.id,
      summary: `Valid bug ${next()}`,
    }),
    wrong: [
      ['summary: 123', { summary: 123 }, 'summary'],
      ['summary: ""', { summary: '' }, 'summary'],
      ['summary of 256 characters', { summary: big(256) }, 'summary'],
      ['product_id: "1"', { product_id: '1' }, 'product_id'],
      ['version_id: 1.5', { version_id: 1.5 }, 'version_id'],
      ['component_id: null', { component_id: null }, 'component_id'],
      ['product_id: 0', { product_id: 0 }, 'product_id'],
      ['product_id: -1', { product_id: -1 }, 'product_id'],
      ['product_id: 2^31', { product_id: 2 ** 31 }, 'product_id'],
      ['confidential: "yes"', { confidential: 'yes' }, 'confidential'],
      ['severity: "urgent"', { severity: 'urgent' }, 'severity'],
      ['priority: 1', { priority: 1 }, 'priority'],
      ['status: "new"', { status: 'new' }, 'status'],
      ['description: 5', { description: 5 }, 'description'],
      ['description over 65535 characters', { description: big(65536) }, 'description'],
      ['assignee_id: "me"', { assignee_id: 'me' }, 'assignee_id'],
      ['cc: "1"', { cc: '1' }, 'cc'],
      ['cc: ["2"]', { cc: ['2'] }, 'cc.0'],
    ],
    required: ['product_id', 'version_id', 'component_id', 'summary'],
    unknownRefs: [
      ['an unknown product_id', () => ({ product_id: UNKNOWN_ID }), 'product_id'],
      ['an unknown version_id', () => ({ version_id: UNKNOWN_ID }), 'version_id'],
      ['an unknown component_id', () => ({ component_id: UNKNOWN_ID }), 'component_id'],
      ['a version of another product', () => ({ version_id: w.versions.orion01.id }), 'version_id'],
      ['a component of another product', () => ({ component_id: w.components.orionCore.id }), 'component_id'],
      ['an unknown assignee_id', () => ({ assignee_id: UNKNOWN_ID }), 'assignee_id'],
      ['an unknown user in cc', () => ({ cc: [UNKNOWN_ID] }), 'cc'],
    ],
    ok: 201,
  },
  {
    method: 'PATCH',
    path: '/api/v1/bugs/:id',
    as: () => w.users.dev,
    id: () => w.bugs.public.id,
    valid: () => ({ severity: 'normal' }),
    wrong: [
      ['summary: 123', { summary: 123 }, 'summary'],
      ['summary of 256 characters', { summary: big(256) }, 'summary'],
      ['confidential: "yes"', { confidential: 'yes' }, 'confidential'],
      ['assignee_id: "2"', { assignee_id: '2' }, 'assignee_id'],
      ['status: "resolved"', { status: 'resolved' }, 'status'],
      ['row_version: 0', { row_version: 0 }, 'row_version'],
      ['cc: [1]', { cc: [1] }, 'cc'],
      ['cc: { add: "x" }', { cc: { add: 'x' } }, 'cc.add'],
      ['cc: { bogus: [] }', { cc: { bogus: [] } }, 'cc.bogus'],
      ['comment: "hi"', { comment: 'hi' }, 'comment'],
      ['comment: { body: 5 }', { comment: { body: 5 } }, 'comment.body'],
      ['comment: {}', { comment: {} }, 'comment.body'],
      ['comment with an unknown property', { comment: { body: 'x', bogus: 1 } }, 'comment.bogus'],
    ],
    required: [],
    unknownRefs: [
      ['an unknown assignee_id', () => ({ assignee_id: UNKNOWN_ID }), 'assignee_id'],
      [
        'an unknown product_id',
        () => ({
          product_id: UNKNOWN_ID,
          version_id: w.versions.omega10.id,
          component_id: w.components.omegaCore.id,
        }),
        'product_id',
      ],
      ['an unknown version_id', () => ({ version_id: UNKNOWN_ID }), 'version_id'],
      ['an unknown component_id', () => ({ component_id: UNKNOWN_ID }), 'component_id'],
      ['a version of another product', () => ({ version_id: w.versions.orion01.id }), 'version_id'],
      ['an unknown user in cc.add', () => ({ cc: { add: [UNKNOWN_ID] } }), 'cc.add'],
      [
        'an unknown duplicate_of',
        () => ({ status: 'RESOLVED', resolution: 'DUPLICATE', duplicate_of: UNKNOWN_ID }),
        'duplicate_of',
      ],
    ],
    ok: 200,
  },
  {
    method: 'POST',
    path: '/api/v1/bugs/:id/comments',
    as: () => w.users.dev,
    id: () => w.bugs.public.id,
    valid: () => ({ body: `A comment ${next()}` }),
    wrong: [
      ['body: 123', { body: 123 }, 'body'],
      ['body: ""', { body: '' }, 'body'],
      ['body over 65535 characters', { body: big(65536) }, 'body'],
      ['is_private: "yes"', { is_private: 'yes' }, 'is_private'],
    ],
    required: ['body'],
    ok: 201,
  },
  {
    method: 'POST',
    path: '/api/v1/products',
    as: () => w.users.admin,
    valid: () => ({ name: `Product ${next()}` }),
    wrong: [
      ['name: 5', { name: 5 }, 'name'],
      ['name: ""', { name: '' }, 'name'],
      ['name of blanks only', { name: '   ' }, 'name'],
      ['name of 65 characters', { name: big(65) }, 'name'],
      ['is_released: "true"', { is_released: 'true' }, 'is_released'],
      ['description: 5', { description: 5 }, 'description'],
      ['description over 10000 characters', { description: big(10001) }, 'description'],
    ],
    required: ['name'],
    ok: 201,
  },
  {
    method: 'POST',
    path: '/api/v1/products/:id/versions',
    as: () => w.users.admin,
    id: () => w.products.omega.id,
    valid: () => ({ name: `3.${next()}` }),
    wrong: [
      ['name: 1', { name: 1 }, 'name'],
      ['is_released: "no"', { is_released: 'no' }, 'is_released'],
      ['sort_key: "x"', { sort_key: 'x' }, 'sort_key'],
      ['sort_key: 1.5', { sort_key: 1.5 }, 'sort_key'],
      ['sort_key: 10^7', { sort_key: 10_000_000 }, 'sort_key'],
    ],
    required: ['name'],
    ok: 201,
  },
  {
    method: 'POST',
    path: '/api/v1/products/:id/components',
    as: () => w.users.admin,
    id: () => w.products.omega.id,
    valid: () => ({ name: `Component ${next()}` }),
    wrong: [
      ['name: 1', { name: 1 }, 'name'],
      ['description: []', { description: [] }, 'description'],
      ['default_assignee_id: "2"', { default_assignee_id: '2' }, 'default_assignee_id'],
      ['default_assignee_id: 0', { default_assignee_id: 0 }, 'default_assignee_id'],
    ],
    required: ['name'],
    unknownRefs: [
      ['an unknown default_assignee_id', () => ({ default_assignee_id: UNKNOWN_ID }), 'default_assignee_id'],
    ],
    ok: 201,
  },
  {
    method: 'PATCH',
    path: '/api/v1/products/:id',
    as: () => w.users.admin,
    id: () => w.products.omega.id,
    valid: () => ({ description: 'The flagship.' }),
    wrong: [
      ['name: 1', { name: 1 }, 'name'],
      ['name: ""', { name: '' }, 'name'],
      ['is_released: "false"', { is_released: 'false' }, 'is_released'],
      ['description: null', { description: null }, 'description'],
    ],
    required: [],
    ok: 200,
  },
  {
    method: 'PATCH',
    path: '/api/v1/versions/:id',
    as: () => w.users.admin,
    id: () => w.versions.omega10.id,
    valid: () => ({ sort_key: 10 }),
    wrong: [
      ['name: 1', { name: 1 }, 'name'],
      ['is_released: "no"', { is_released: 'no' }, 'is_released'],
      ['sort_key: "3"', { sort_key: '3' }, 'sort_key'],
    ],
    required: [],
    ok: 200,
  },
  {
    method: 'PATCH',
    path: '/api/v1/components/:id',
    as: () => w.users.admin,
    id: () => w.components.omegaUi.id,
    valid: () => ({ description: 'Everything on screen.' }),
    wrong: [
      ['name: 1', { name: 1 }, 'name'],
      ['default_assignee_id: "x"', { default_assignee_id: 'x' }, 'default_assignee_id'],
    ],
    required: [],
    unknownRefs: [
      ['an unknown default_assignee_id', () => ({ default_assignee_id: UNKNOWN_ID }), 'default_assignee_id'],
    ],
    ok: 200,
  },
  {
    method: 'POST',
    path: '/api/v1/users',
    as: () => w.users.admin,
    valid: () => ({
      email: `new${next()}@example.test`,
      name: 'New',
      password: 'long enough password',
      kind: 'external',
    }),
    wrong: [
      ['email: 1', { email: 1 }, 'email'],
      ['email that is not an address', { email: 'not-an-address' }, 'email'],
      ['name: 1', { name: 1 }, 'name'],
      ['password: a number', { password: 12345678901 }, 'password'],
      ['password of 9 characters', { password: '123456789' }, 'password'],
      ['kind: "root"', { kind: 'root' }, 'kind'],
      ['is_admin: "yes"', { is_admin: 'yes' }, 'is_admin'],
    ],
    required: ['email', 'name', 'password', 'kind'],
    ok: 201,
  },
  {
    method: 'PATCH',
    path: '/api/v1/users/:id',
    as: () => w.users.admin,
    id: () => w.users.alice.id,
    valid: () => ({ name: 'Alice' }),
    wrong: [
      ['name: 5', { name: 5 }, 'name'],
      ['name: ""', { name: '' }, 'name'],
      ['disabled: "no"', { disabled: 'no' }, 'disabled'],
      ['kind: "root"', { kind: 'root' }, 'kind'],
      ['password: 5', { password: 5 }, 'password'],
    ],
    required: [],
    ok: 200,
  },
  {
    method: 'POST',
    path: '/api/v1/api-keys',
    as: () => w.users.alice,
    valid: () => ({ name: `key ${next()}` }),
    wrong: [
      ['name: 5', { name: 5 }, 'name'],
      ['scope: "admin"', { scope: 'admin' }, 'scope'],
      ['expires_at: "tomorrow"', { expires_at: 'tomorrow' }, 'expires_at'],
    ],
    required: ['name'],
    ok: 201,
  },
  {
    method: 'POST',
    path: '/api/v1/session',
    as: () => undefined,
    valid: () => ({ email: w.users.alice.email, password: 'correct horse battery' }),
    wrong: [
      ['email: 5', { email: 5 }, 'email'],
      ['email: null', { email: null }, 'email'],
      ['password: 5', { password: 5 }, 'password'],
      ['password: ""', { password: '' }, 'password'],
    ],
    required: ['email', 'password'],
    ok: 200,
  },
];

const urlOf = (route: WriteRoute, id?: string) => route.path.replace(':id', id ?? String(route.id?.() ?? ''));

// One suite around everything, so the app exists before any case runs (a file-level before() does not
// hold back top-level describe blocks on Node 20).
describe('bad input', () => {
  before(async () => {
    t = await startTestApp();
    w = await world(t);
  });
  after(() => t.close());

  test('the no-write check notices an update that keeps the row count', async () => {
    const before = await snapshot();
    const res = await t.request({
      method: 'PATCH',
      url: `/api/v1/products/${w.products.orion.id}`,
      payload: { description: `changed ${next()}` },
      as: w.users.admin,
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.notDeepEqual(await snapshot(), before);
  });

  for (const route of routes) {
    describe(`${route.method} ${route.path}`, () => {
      const refuse = (extra: Partial<Refusal> & Pick<Refusal, 'status'>) =>
        assertRefused({ method: route.method, url: urlOf(route), as: route.as(), ...extra });

      test('accepts the valid body the cases below start from', async () => {
        const res = await t.request({
          method: route.method,
          url: urlOf(route),
          as: route.as(),
          payload: route.valid(),
        });
        assert.equal(res.statusCode, route.ok, res.body);
      });

      test('malformed JSON is 400 malformed_json', async () => {
        await refuse({
          body: '{"name": "x",',
          contentType: 'application/json',
          status: 400,
          code: 'malformed_json',
        });
      });

      test('an empty body with a JSON content type is 400', async () => {
        await refuse({ body: '', contentType: 'application/json', status: 400 });
      });

      test('no body at all is 400', async () => {
        await refuse({ status: 400 });
      });

      for (const json of ['null', '[]', '"text"', '42']) {
        test(`a JSON body that is not an object (${json}) is 400`, async () => {
          await refuse({ body: json, contentType: 'application/json', status: 400, code: 'invalid_request' });
        });
      }

      for (const contentType of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
      ]) {
        test(`content type ${contentType.split(';')[0]} is 415`, async () => {
          await refuse({
            body: JSON.stringify(route.valid()),
            contentType,
            status: 415,
            code: 'unsupported_media_type',
          });
        });
      }

      test('a body over the 1 MB limit is refused (413)', async () => {
        const [field] = Object.keys(route.valid());
        await refuse({
          payload: { ...route.valid(), [field!]: big(1024 * 1024 + 1) },
          status: 413,
          code: 'payload_too_large',
        });
      });

      for (const [label, change, field] of route.wrong) {
        test(`${label} is 400 naming ${field}`, async () => {
          await refuse({
            payload: { ...route.valid(), ...change },
            status: 400,
            code: 'invalid_request',
            field,
          });
        });
      }

      for (const name of route.required) {
        test(`a missing ${name} is 400 naming it`, async () => {
          const body = route.valid();
          delete body[name];
          const res = await refuse({ payload: body, status: 400, code: 'invalid_request', field: name });
          assert.match(res.data.error.message, new RegExp(name));
        });
      }

      test('an unknown property is 400 naming it', async () => {
        const res = await refuse({ payload: { ...route.valid(), bogus: true }, status: 400, field: 'bogus' });
        assert.match(res.data.error.message, /bogus/);
      });

      for (const [label, change, field] of route.unknownRefs ?? []) {
        test(`${label} in the body is 422 naming ${field}`, async () => {
          await refuse({ payload: { ...route.valid(), ...change() }, status: 422, field });
        });
      }

      if (route.id) {
        for (const bad of [
          '0',
          '-1',
          '2147483648',
          '99999999999999999999',
          'abc',
          '1.5',
          '1e0',
          '0x1',
          '01',
        ]) {
          test(`a path id of ${bad} is 400 naming id`, async () => {
            await refuse({ url: urlOf(route, bad), payload: route.valid(), status: 400, field: 'id' });
          });
        }

        test('an id in the path that names nothing is 404', async () => {
          await refuse({
            url: urlOf(route, String(UNKNOWN_ID)),
            payload: route.valid(),
            status: 404,
            code: 'not_found',
          });
        });
      }
    });
  }

  describe('path ids of the read and delete routes', () => {
    const paths = [
      ['GET', '/api/v1/bugs/:id'],
      ['GET', '/api/v1/bugs/:id/comments'],
      ['GET', '/api/v1/bugs/:id/history'],
      ['GET', '/api/v1/products/:id'],
      ['GET', '/api/v1/users/:id'],
      ['DELETE', '/api/v1/api-keys/:id'],
    ] as const;
    for (const [method, path] of paths) {
      test(`${method} ${path}: zero, negative, huge and non-numeric ids are 400, unknown ones 404`, async () => {
        for (const bad of [
          '0',
          '-1',
          '2147483648',
          '99999999999999999999',
          'abc',
          '1.5',
          '1e0',
          '0x1',
          '01',
        ]) {
          await assertRefused({
            method,
            url: path.replace(':id', bad),
            as: w.users.dev,
            status: 400,
            field: 'id',
          });
        }
        await assertRefused({
          method,
          url: path.replace(':id', String(UNKNOWN_ID)),
          as: w.users.dev,
          status: 404,
          code: 'not_found',
        });
      });
    }
  });

  describe('query strings of GET /api/v1/bugs', () => {
    const cursor = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const bad = (label: string, query: string, field: string | RegExp, opts: { todo?: string } = {}) =>
      test(`${label} is 400 naming ${field}`, opts, async () => {
        const res = await assertRefused({
          method: 'GET',
          url: `/api/v1/bugs?${query}`,
          as: w.users.dev,
          status: 400,
          code: 'invalid_request',
        });
        if (typeof field === 'string') assert.equal(res.data.error.field, field);
        else assert.match(String(res.data.error.field), field);
      });

    bad('a lower-case status', 'status=open', /^status/);
    bad('a status with other characters', 'status=NEW;DROP', /^status/);
    bad('an unknown status name', 'status=NOPE', /^status/);
    bad('a garbage cursor', 'cursor=garbage!!', 'cursor');
    bad('a cursor that is base64 but not ours', `cursor=${cursor({ after: 'x' })}`, 'cursor');
    bad('a cursor with a negative position', `cursor=${cursor({ after: -1 })}`, 'cursor');
    bad('a cursor past the largest id', `cursor=${cursor({ after: 2 ** 31 })}`, 'cursor');
    bad('a cursor over 200 characters', `cursor=${'a'.repeat(201)}`, 'cursor');
    bad('limit=0', 'limit=0', 'limit');
    bad('limit=100000', 'limit=100000', 'limit');
    bad('limit=-5', 'limit=-5', 'limit');
    bad('limit=abc', 'limit=abc', 'limit');
    bad('limit=1.5', 'limit=1.5', 'limit');
    bad('order=sideways', 'order=sideways', 'order');
    bad('a non-numeric product_id', 'product_id=abc', /^product_id/);
    bad('a product_id list with a gap', 'product_id=1,,2', /^product_id/);
    bad('a product_id past the 32-bit range', 'product_id=9999999999', /^product_id/);
    bad('an unknown parameter', 'colour=red', 'colour');

    test('good filters are accepted', async () => {
      const res = await t.request({
        method: 'GET',
        url: `/api/v1/bugs?status=NEW,ASSIGNED&product_id=${w.products.omega.id}&limit=2&order=asc`,
        as: w.users.dev,
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.data.bugs.length, 2);
    });
  });

  describe('query strings of GET /api/v1/users', () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=100000', 'limit'],
      [`q=${'x'.repeat(101)}`, 'q'],
      ['sort=name', 'sort'],
    ] as const) {
      test(`${query.slice(0, 20)} is 400 naming ${field}`, async () => {
        await assertRefused({
          method: 'GET',
          url: `/api/v1/users?${query}`,
          as: w.users.dev,
          status: 400,
          code: 'invalid_request',
          field,
        });
      });
    }
  });
});
