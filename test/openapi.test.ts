// bugzot-test: once
/**
 * The API reference: /api/openapi.json is a valid OpenAPI 3.1 document generated from the routes'
 * schemas, every API route is in it, and the interactive docs at /api/docs are served to anyone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { contractOf, type Json, startTestApp, type TestApp, world } from './helpers/app.ts';

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

test('every operation taking credentials declares the optional X-Bugzot-On-Behalf-Of header', async () => {
  const doc = (await t.request({ method: 'GET', url: '/api/openapi.json' })).data;
  const ref = { $ref: '#/components/parameters/OnBehalfOf' };
  assert.equal(doc.components.parameters.OnBehalfOf.name, 'X-Bugzot-On-Behalf-Of');
  assert.equal(doc.components.parameters.OnBehalfOf.in, 'header');
  assert.equal(doc.components.parameters.OnBehalfOf.required, false);
  let withHeader = 0;
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
    for (const [method, op] of Object.entries(item)) {
      const isPublic = Array.isArray(op.security) && op.security.length === 0;
      const has = (op.parameters ?? []).filter((p: Json) => p.$ref === ref.$ref).length;
      assert.equal(has, isPublic ? 0 : 1, `${method.toUpperCase()} ${path}`);
      withHeader += has;
    }
  }
  assert.ok(withHeader >= 20, `only ${withHeader} operations`);
  // Generating the document twice (cached or not) never adds the header twice.
  const again = (await t.request({ method: 'GET', url: '/api/openapi.json' })).data;
  assert.equal(
    again.paths['/api/v1/bugs/{id}'].get.parameters.filter((p: Json) => p.$ref === ref.$ref).length,
    1,
  );
});

test('the interactive docs are served without signing in', async () => {
  const res = await t.request({ method: 'GET', url: '/api/docs' });
  assert.equal(res.statusCode, 200);
  assert.match(res.body, /swagger/i);
  assert.doesNotMatch(String(res.headers['content-security-policy']), /upgrade-insecure-requests/);
});

test('answers of the API match the response schemas the document publishes', async () => {
  // t.request checks every /api/v1 answer against the document (test/helpers/app.ts): these reads,
  // by a staff member and a customer, all go through that contract.
  const w = await world(t);
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
  const reads = [
    '/api/v1/me',
    '/api/v1/products',
    `/api/v1/products/${w.products.omega.id}`,
    '/api/v1/bugs',
    `/api/v1/bugs/${bug}`,
    `/api/v1/bugs/${bug}/comments`,
    `/api/v1/bugs/${bug}/history`,
    `/api/v1/bugs/${w.bugs.confidential.id}`,
    '/api/v1/api-keys',
    '/api/v1/users',
    `/api/v1/users/${w.users.alice.id}`,
    '/api/v1/bugs/0',
  ];
  const statuses = new Set<number>();
  for (const url of reads) {
    for (const as of [w.users.dev, w.users.alice]) statuses.add((await t.request({ url, as })).statusCode);
  }
  assert.deepEqual([...statuses].sort(), [200, 400, 403, 404]);
});

test('the response contract names the route, the status and what does not match', async () => {
  const contract = contractOf((await t.request({ url: '/api/openapi.json' })).body);
  const json = 'application/json; charset=utf-8';
  const ok = JSON.stringify({ products: [] });
  assert.equal(contract.check('GET', '/api/v1/products', 200, json, ok), undefined);
  assert.equal(contract.check('GET', '/api/v1/products?x=1', 304, undefined, ''), undefined);
  assert.equal(contract.check('GET', '/healthz', 200, json, '{}'), undefined, 'not the API: not checked');
  const wrong = contract.check(
    'GET',
    '/api/v1/products',
    200,
    json,
    JSON.stringify({ products: [{ id: 'x' }] }),
  );
  assert.match(String(wrong), /GET \/api\/v1\/products answered 200 .*does not match.*\/products\/0/);
  const error = JSON.stringify({ error: { code: 'not_found', message: 'No such product.' } });
  assert.equal(contract.check('GET', '/api/v1/products/7', 404, json, error), undefined);
  assert.match(String(contract.check('GET', '/api/v1/products/7', 404, json, '{"oops":1}')), /4XX/);
  assert.match(String(contract.check('GET', '/api/v1/products/7', 200, json, 'not json')), /not JSON/);
});

test('every documented operation declares the error envelope, and every read its 304', async () => {
  const doc = (await t.request({ url: '/api/openapi.json' })).data;
  for (const [path, ops] of Object.entries<Json>(doc.paths)) {
    for (const [method, op] of Object.entries<Json>(ops)) {
      if (!op.responses['200'] && !op.responses['201'] && !op.responses['204'] && !op.responses['202']) {
        continue;
      }
      if (path.startsWith('/api/v1/uploads')) continue; // the tus protocol's own answers
      assert.ok(op.responses['4XX']?.content, `${method} ${path}: 4XX`);
      // Reads answer 304 (downloads by their SHA-256 tag); an export streamed anew each time does not.
      const conditional = method === 'get' && !path.endsWith('/csv');
      assert.equal(Boolean(op.responses['304']), conditional, `${method} ${path}: 304`);
    }
  }
});

test('a query parameter with a default is optional in the document', async () => {
  const doc = (await t.request({ url: '/api/openapi.json' })).data;
  const param = (path: string, name: string) =>
    (doc.paths[path].get.parameters as Json[]).find((p) => p.in === 'query' && p.name === name);
  assert.equal(param('/api/v1/bugs', 'limit').required ?? false, false);
  assert.ok(param('/api/v1/bugs', 'limit').schema.default !== undefined);
  assert.equal(param('/api/v1/search/similar', 'summary').required, true, 'no default: still required');
  // And the server agrees: a list without ?limit= is fine.
  const dev = await t.user({ kind: 'internal' });
  assert.equal((await t.request({ url: '/api/v1/bugs', as: dev })).statusCode, 200);
});
