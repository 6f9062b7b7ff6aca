/**
 * OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, traces reach a real OTLP/HTTP receiver (a server of the
 * test's own on 127.0.0.1): a server span per request that continues the caller's `traceparent`, with the
 * database statements (parameterised text only) and Redis commands as its children. Without the variable nothing
 * is exported.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { redisServerPath, startRedis, type TestRedis } from './helpers/redis.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
}

let receiver: Server;
let endpoint = '';
const spans: OtlpSpan[] = [];
let redis: TestRedis | undefined;

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      if (req.url === '/v1/traces' && String(req.headers['content-type']).includes('json')) {
        const doc = JSON.parse(body) as {
          resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
        };
        for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  }).listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  endpoint = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  if (redisServerPath()) redis = await startRedis();
});
after(async () => {
  receiver.close();
  await redis?.stop();
});

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};

test('a request is a server span continuing the caller trace, with its database and Redis spans inside', async () => {
  const t: TestApp = await startTestApp({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_SERVICE_NAME: 'bugzot-test',
    ...(redis ? { REDIS_URL: redis.url } : {}),
  });
  const w = await world(t);
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parentId = '00f067aa0ba902b7';
  const res = await t.request({
    url: `/api/v1/bugs?product_id=${w.products.omega.id}&limit=5`,
    as: w.users.dev,
    headers: { traceparent: `00-${traceId}-${parentId}-01` },
  });
  assert.equal(res.statusCode, 200);
  await t.close(); // flushes the exporter
  const deadline = Date.now() + 10_000;
  while (!spans.some((s) => s.traceId === traceId && s.kind === 2)) {
    if (Date.now() > deadline) assert.fail(`no server span of the trace among ${spans.length} spans`);
    await sleep(50);
  }
  const inTrace = spans.filter((s) => s.traceId === traceId);
  const server = inTrace.find((s) => s.kind === 2);
  assert.ok(server);
  assert.equal(server.name, 'GET /api/v1/bugs');
  assert.equal(server.parentSpanId, parentId, "the caller's span is the parent");
  assert.equal(attr(server, 'http.route'), '/api/v1/bugs');
  assert.equal(attr(server, 'http.response.status_code'), 200);
  assert.equal(attr(server, 'enduser.id'), String(w.users.dev.id));

  const ids = new Set(inTrace.map((s) => s.spanId));
  const clients = inTrace.filter((s) => s.kind === 3);
  assert.ok(clients.length >= 1, 'client spans inside the request');
  for (const c of clients)
    assert.ok(c.parentSpanId && ids.has(c.parentSpanId), `${c.name} hangs in the trace`);
  const statements = clients
    .filter((s) => s.name === 'db.query')
    .map((s) => String(attr(s, 'db.query.text')));
  assert.ok(
    statements.some((q) => /FROM bugs/i.test(q)),
    statements.join('\n'),
  );
  // Parameterised text only: the product id travels as a $n parameter, never spliced in.
  assert.ok(statements.every((q) => !new RegExp(`= ${w.products.omega.id}\\b`).test(q)));
  assert.ok(statements.some((q) => /\$1/.test(q)));
  if (redis)
    assert.ok(
      clients.some((s) => s.name === 'redis MGET'),
      'a Redis span',
    );
});

test('a word search is traced too: statements run at once (PostgreSQL) are one span holding each', async () => {
  const t: TestApp = await startTestApp({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_SERVICE_NAME: 'bugzot-test',
  });
  const w = await world(t);
  const traceId = '5cf92f3577b34da6a3ce929d0e0e4737';
  const res = await t.request({
    url: '/api/v1/search?q=crash',
    as: w.users.dev,
    headers: { traceparent: `00-${traceId}-00f067aa0ba902b8-01` },
  });
  assert.equal(res.statusCode, 200);
  assert.ok((res.data as { total: number }).total >= 1);
  await t.close();
  const deadline = Date.now() + 10_000;
  const statements = () =>
    spans
      .filter((s) => s.traceId === traceId && s.name === 'db.query')
      .map((s) => String(attr(s, 'db.query.text')));
  while (!statements().some((q) => q.includes('bug_text'))) {
    if (Date.now() > deadline) assert.fail(`no span of the text statement among ${statements().join('\n')}`);
    await sleep(50);
  }
  const text = statements().filter((q) => q.includes('bug_text'));
  // On PostgreSQL the pool runs the halves at once (SEARCH_PARALLEL): one span with both statements.
  const perSpan = t.db.parallel ? 2 : 1;
  assert.ok(
    text.some((q) => q.split('WITH m AS MATERIALIZED').length - 1 === perSpan),
    text.join('\n'),
  );
});

test('without OTEL_EXPORTER_OTLP_ENDPOINT nothing is exported', async () => {
  const before = spans.length;
  const t = await startTestApp();
  const res = await t.request({ url: '/healthz' });
  assert.equal(res.statusCode, 200);
  await t.close();
  await sleep(300);
  assert.equal(spans.length, before);
});
