/**
 * Operations surface: /version, /healthz and /readyz; the X-Request-Id every answer carries; the
 * security headers; the 404 answers for unknown routes; the public home and API pages; and the rule
 * that a 500 names only a request id, never the error or its stack.
 *
 * One test app (with BUILD_NUMBER and GIT_COMMIT set). The 500 cases use a second Fastify instance
 * built by buildApp over the same database (no second PGlite), with one extra route that throws, and
 * a bare Fastify instance around `errorHandler` alone.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import type { Db } from '../src/platform/db.ts';
import { AppError } from '../src/platform/errors.ts';
import { errorHandler } from '../src/platform/http.ts';
import { startTestApp, type TestApp, type TestUser } from './helpers/app.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  name: string;
  version: string;
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TestApp;
let alice: TestUser;

before(async () => {
  t = await startTestApp({ BUILD_NUMBER: '4711', GIT_COMMIT: '0123456789abcdef0123456789abcdef01234567' });
  alice = await t.user({ name: 'Alice' });
});
after(() => t.close());

test('GET /version names the app, its package.json version and the build and commit it was given', async () => {
  const res = await t.request({ method: 'GET', url: '/version' });
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(res.data, {
    name: 'bugzot',
    version: pkg.version,
    build: '4711',
    commit: '0123456789abcdef0123456789abcdef01234567',
  });
});

test('every page footer shows the version, build number and commit', async () => {
  const res = await t.app.inject({ url: '/signin', headers: { accept: 'text/html' } });
  assert.equal(res.statusCode, 200);
  const footer = /<footer[^>]*>([\s\S]*?)<\/footer>/.exec(res.body)?.[1] ?? '';
  assert.match(footer, new RegExp(`${pkg.version.replaceAll('.', '\\.')} · build 4711 · 0123456789ab`));
});

test('GET /healthz answers 200 without credentials and is not cached', async () => {
  const res = await t.request({ method: 'GET', url: '/healthz' });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.data.status, 'ok');
  assert.equal(res.headers['cache-control'], 'no-store');
});

test('GET /readyz answers 200 with the database check ok', async () => {
  const res = await t.request({ method: 'GET', url: '/readyz' });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.data.status, 'ready');
  assert.equal(res.data.checks.database.ok, true);
  assert.equal(typeof res.data.checks.database.ms, 'number');
});

test('GET /readyz answers 503 (and GET /healthz still 200) when the database is unreachable', async () => {
  // The test database with every query failing: no second PGlite needed.
  const down: Db = { ...t.db, query: () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.5:5432')) };
  const app = await buildApp({ config: t.config, db: down });
  try {
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503, ready.body);
    assert.deepEqual(ready.json(), { status: 'unavailable', checks: { database: { ok: false } } });
    assert.ok(!ready.body.includes('10.0.0.5'));
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  } finally {
    await app.close();
  }
});

describe('X-Request-Id', () => {
  const answers = [
    { what: 'a public JSON route', method: 'GET', url: '/healthz' },
    { what: 'the HTML home page', method: 'GET', url: '/' },
    { what: 'a 401', method: 'GET', url: '/api/v1/me' },
    { what: 'a 404 under /api/', method: 'GET', url: '/api/v1/nothing-here' },
    { what: 'an HTML 404', method: 'GET', url: '/nothing-here', headers: { accept: 'text/html' } },
    { what: 'a 400', method: 'GET', url: '/api/v1/bugs?limit=0', auth: true },
    {
      what: 'a 401 for a malformed Authorization header',
      method: 'GET',
      url: '/healthz',
      headers: { authorization: 'x' },
    },
  ] as const;
  for (const a of answers) {
    test(`is on every answer: ${a.what}`, async () => {
      const res = await t.request({
        method: a.method,
        url: a.url,
        headers: 'headers' in a ? a.headers : {},
        as: 'auth' in a ? alice : undefined,
      });
      assert.match(String(res.headers['x-request-id']), UUID);
    });
  }

  test('each request gets its own id', async () => {
    const a = await t.request({ method: 'GET', url: '/healthz' });
    const b = await t.request({ method: 'GET', url: '/healthz' });
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  });

  test('a well-formed incoming X-Request-Id is kept and echoed', async () => {
    for (const id of ['req-12345678', 'lb:2f1c.9a_77-AB', 'a'.repeat(128)]) {
      const res = await t.request({ method: 'GET', url: '/healthz', headers: { 'x-request-id': id } });
      assert.equal(res.headers['x-request-id'], id);
    }
  });

  test('a malformed incoming X-Request-Id is replaced by a fresh one', async () => {
    for (const id of [
      'short',
      'has space 1234',
      'new\\nline-123456',
      '<script>alert(1)</script>',
      'a'.repeat(129),
    ]) {
      const res = await t.request({ method: 'GET', url: '/healthz', headers: { 'x-request-id': id } });
      assert.match(String(res.headers['x-request-id']), UUID, `kept ${JSON.stringify(id)}`);
    }
  });
});

describe('security headers', () => {
  for (const url of ['/', '/healthz', '/api/v1/me', '/api/docs']) {
    test(`are set on ${url}`, async () => {
      const res = await t.request({ method: 'GET', url });
      const csp = String(res.headers['content-security-policy'] ?? '');
      // Pages get our own origin; JSON answers may lock everything down ('none'): both are fine.
      assert.match(csp, /(^|;\s*)default-src '(self|none)'(;|$)/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-eval|(^|\s)\*(\s|;|$)/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      // Pages (documents) also carry the legacy framing header and a referrer policy; JSON answers rely
      // on CSP frame-ancestors, and a referrer policy means nothing for them.
      if (!url.startsWith('/api/v1/')) {
        assert.ok(res.headers['x-frame-options'], 'no X-Frame-Options');
        assert.ok(res.headers['referrer-policy'], 'no Referrer-Policy');
      }
    });
  }

  test('HSTS is not sent outside production (it would pin plain-http development hosts)', async () => {
    const res = await t.request({ method: 'GET', url: '/' });
    assert.equal(res.headers['strict-transport-security'], undefined);
  });
});

test('an unknown /api/ route answers 404 with the JSON error envelope, even to a browser', async () => {
  for (const headers of [{}, { accept: 'text/html' }]) {
    const res = await t.request({ method: 'GET', url: '/api/v1/no-such-thing?x=1', headers });
    assert.equal(res.statusCode, 404, res.body);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.data.error.code, 'not_found');
    assert.equal(res.data.error.message, 'No route GET /api/v1/no-such-thing.');
  }
});

test('an unknown /api/ route answers 404, not 401, without credentials', async () => {
  const res = await t.request({ method: 'POST', url: '/api/v2/bugs', payload: {} });
  assert.equal(res.statusCode, 404, res.body);
  assert.equal(res.data.error.code, 'not_found');
});

test('a URL with broken percent-encoding answers 400 with the JSON error envelope and a request id', {}, async () => {
  const res = await t.request({ method: 'GET', url: '/api/v1/bugs/%E0%A4%A' });
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(typeof res.data.error?.code, 'string', res.body);
  assert.equal(typeof res.data.error?.message, 'string', res.body);
  assert.match(String(res.headers['x-request-id']), UUID);
});

test('an unknown page asked for by a browser answers an HTML 404', async () => {
  const res = await t.request({ method: 'GET', url: '/no/such/page', headers: { accept: 'text/html' } });
  assert.equal(res.statusCode, 404);
  assert.match(String(res.headers['content-type']), /^text\/html/);
  assert.match(res.body, /Not found/);
});

test('the home page / is public HTML', async () => {
  const res = await t.request({ method: 'GET', url: '/' });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
  assert.match(res.body, /^<!doctype html>/i);
  assert.match(res.body, /href="\/api\/docs"/);
});

test('/api/docs is public HTML (the interactive reference) and its OpenAPI document lists /api/v1/bugs', async () => {
  const res = await t.request({ method: 'GET', url: '/api/docs' });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /^text\/html/);
  const doc = await t.request({ method: 'GET', url: '/api/openapi.json' });
  assert.equal(doc.statusCode, 200);
  assert.ok(doc.data.paths['/api/v1/bugs'].get);
  assert.ok(doc.data.paths['/api/v1/bugs'].post);
  assert.ok(doc.data.paths['/api/v1/bugs/{id}'].patch);
});

describe('a 500 never leaks the error', () => {
  const SECRET = 'password=hunter2 at SELECT * FROM secret_table';
  let app: FastifyInstance;

  before(async () => {
    // The real app over the test database, plus one route that fails the way a bug in a handler would.
    app = await buildApp({ config: t.config, db: t.db });
    app.get('/boom', { config: { public: true } }, async () => {
      throw new Error(SECRET);
    });
    app.get('/boom-typed', { config: { public: true } }, async () => {
      throw new TypeError(`Cannot read properties of undefined (reading '${SECRET}')`);
    });
    await app.ready();
  });
  after(() => app.close());

  for (const url of ['/boom', '/boom-typed']) {
    test(`in the full app (${url}): 500 internal_error naming only the request id`, async () => {
      const res = await app.inject({ method: 'GET', url, headers: { 'x-request-id': 'trace-500-abcdef' } });
      assert.equal(res.statusCode, 500);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const body = res.json() as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'request_id']);
      assert.equal(body.error['code'], 'internal_error');
      assert.equal(body.error['request_id'], 'trace-500-abcdef');
      assert.equal(res.headers['x-request-id'], 'trace-500-abcdef');
      assert.match(String(body.error['message']), /trace-500-abcdef/);
      assert.ok(!res.body.includes('hunter2') && !res.body.includes('secret_table'), res.body);
      assert.doesNotMatch(res.body, /\bat .*\.ts:\d+|node:internal|stack/i);
    });
  }
});

describe('errorHandler on its own', () => {
  let bare: FastifyInstance;

  before(async () => {
    bare = Fastify({ logger: false });
    bare.setErrorHandler(errorHandler);
    bare.get('/crash', async () => {
      const err = new Error('connection to db-internal.example:5432 refused');
      throw Object.assign(err, { statusCode: 503 });
    });
    bare.get('/app-error', async () => {
      throw new AppError(422, 'invalid_value', 'version 9 is not a version of Omega', 'version_id', {
        allowed: [1],
      });
    });
    bare.get('/client-error', async () => {
      throw Object.assign(new Error('Request body is too large'), { statusCode: 413 });
    });
    await bare.ready();
  });
  after(() => bare.close());

  test('turns an unexpected error (even one carrying a 5xx status) into a bare 500', async () => {
    const res = await bare.inject({ method: 'GET', url: '/crash' });
    assert.equal(res.statusCode, 500);
    const { error } = res.json() as { error: { code: string; message: string; request_id: string } };
    assert.equal(error.code, 'internal_error');
    assert.ok(error.request_id);
    assert.ok(error.message.includes(error.request_id));
    assert.ok(!res.body.includes('db-internal') && !res.body.includes('5432'), res.body);
  });

  test('passes an AppError on with its status, code, field and details', async () => {
    const res = await bare.inject({ method: 'GET', url: '/app-error' });
    assert.equal(res.statusCode, 422);
    assert.deepEqual(res.json(), {
      error: {
        code: 'invalid_value',
        message: 'version 9 is not a version of Omega',
        field: 'version_id',
        allowed: [1],
      },
    });
  });

  test('keeps the message of a 4xx, since it tells the client what to fix', async () => {
    const res = await bare.inject({ method: 'GET', url: '/client-error' });
    assert.equal(res.statusCode, 413);
    assert.deepEqual(res.json(), {
      error: { code: 'payload_too_large', message: 'Request body is too large' },
    });
  });
});
