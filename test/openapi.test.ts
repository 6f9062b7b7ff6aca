// bugzot-test: once
/**
 * The API reference: /api/openapi.json is a valid OpenAPI 3.1 document generated from the routes'
 * schemas, every API route is in it, and the interactive docs at /api/docs are served to anyone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { startTestApp, type TestApp, world } from './helpers/app.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(() => t.close());

test('GET /api/openapi.json is a valid OpenAPI 3.1 document, public', async () => {
  const res = await t.request({ method: 'GET', url: '/api/openapi.json' });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.openapi, '3.1.0');
  const validator = new Validator();
  const result = await validator.validate(res.data);
  assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
});

test('every /api/v1 route is in the document, with its method', async () => {
  const doc = (await t.request({ method: 'GET', url: '/api/openapi.json' })).data as {
    paths: Record<string, Record<string, unknown>>;
  };
  const api = t.app.registeredRoutes.filter((r) => r.url.startsWith('/api/v1/'));
  assert.ok(api.length >= 20, `only ${api.length} routes seen`);
  for (const r of api) {
    const path = r.url.replace(/:(\w+)/g, '{$1}');
    assert.ok(doc.paths[path]?.[r.method.toLowerCase()], `${r.method} ${r.url} is not documented`);
  }
});

test('sign-in is documented as needing no credentials; the rest as needing a key or a session', async () => {
  const doc = (await t.request({ method: 'GET', url: '/api/openapi.json' })).data;
  assert.deepEqual(doc.paths['/api/v1/session'].post.security, []);
  assert.deepEqual(doc.security, [{ apiKey: [] }, { session: [] }]);
  assert.ok(doc.paths['/api/v1/bugs/{id}'].patch.requestBody);
});

test('the interactive docs are served without signing in', async () => {
  const res = await t.request({ method: 'GET', url: '/api/docs' });
  assert.equal(res.statusCode, 200);
  assert.match(res.body, /swagger/i);
  assert.doesNotMatch(String(res.headers['content-security-policy']), /upgrade-insecure-requests/);
});

test('answers of the API match the response schemas the document publishes', async () => {
  const w = await world(t);
  const doc = (await t.request({ method: 'GET', url: '/api/openapi.json' })).data;
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  const bug = w.bugs.public.id;
  await t.request({
    method: 'POST',
    url: `/api/v1/bugs/${bug}/comments`,
    as: w.users.dev,
    payload: { body: 'hi' },
  });
  await t.request({
    method: 'PATCH',
    url: `/api/v1/bugs/${bug}`,
    as: w.users.dev,
    payload: { status: 'ASSIGNED' },
  });
  const reads: [string, string][] = [
    ['/api/v1/me', '/api/v1/me'],
    ['/api/v1/products', '/api/v1/products'],
    [`/api/v1/products/${w.products.omega.id}`, '/api/v1/products/{id}'],
    ['/api/v1/bugs', '/api/v1/bugs'],
    [`/api/v1/bugs/${bug}`, '/api/v1/bugs/{id}'],
    [`/api/v1/bugs/${bug}/comments`, '/api/v1/bugs/{id}/comments'],
    [`/api/v1/bugs/${bug}/history`, '/api/v1/bugs/{id}/history'],
    ['/api/v1/api-keys', '/api/v1/api-keys'],
    ['/api/v1/users', '/api/v1/users'],
    [`/api/v1/users/${w.users.alice.id}`, '/api/v1/users/{id}'],
  ];
  for (const [url, path] of reads) {
    for (const as of [w.users.dev, w.users.alice]) {
      const res = await t.request({ method: 'GET', url, as });
      if (res.statusCode !== 200) continue; // e.g. the user list is staff-only
      const schema = doc.paths[path].get.responses['200'].content['application/json'].schema;
      const validate = ajv.compile(schema);
      assert.ok(validate(res.data), `${url}: ${JSON.stringify(validate.errors)}`);
    }
  }
});
