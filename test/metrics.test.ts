/**
 * GET /metrics: Prometheus text format that a real parser reads, with request latency by route pattern and status,
 * in-flight requests, the database pool, cache hit/miss counters and the process metrics; internal clients only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format';
import { loadConfig } from '../src/config.ts';
import { startTestApp, type TestApp, world } from './helpers/app.ts';

let t: TestApp;
let w: Awaited<ReturnType<typeof world>>;
before(async () => {
  t = await startTestApp();
  w = await world(t);
});
after(() => t.close());

/** The text of the latest scrape. */
let lastScrape = '';

async function scrape(): Promise<Map<string, MetricFamily>> {
  const res = await t.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  lastScrape = res.body;
  const families = parsePrometheusTextFormat(res.body);
  return new Map(families.map((f) => [f.name, f]));
}

test('metrics parse as Prometheus text and count requests by route pattern, never by raw URL', async () => {
  for (let i = 0; i < 3; i++) {
    assert.equal(
      (await t.request({ url: `/api/v1/bugs/${w.bugs.public.id}`, as: w.users.dev })).statusCode,
      200,
    );
  }
  assert.equal((await t.request({ url: '/api/v1/bugs/999999', as: w.users.dev })).statusCode, 404);
  const m = await scrape();
  assert.equal(m.get('http_request_duration_seconds')?.type, 'HISTOGRAM');
  // (The JS parser folds a histogram's labelled series together, so the series are read from the text itself.)
  const count = (route: string, status: string) =>
    new RegExp(
      `^http_request_duration_seconds_count\\{method="GET",route="${route}",status_code="${status}"\\} (\\d+)$`,
      'm',
    ).exec(lastScrape)?.[1];
  assert.equal(count('/api/v1/bugs/:id', '200'), '3');
  assert.equal(count('/api/v1/bugs/:id', '404'), '1');
  assert.doesNotMatch(lastScrape, /route="[^"]*\/\d+/, 'no raw ids in route labels');
  assert.equal(m.get('http_requests_in_flight')?.type, 'GAUGE');
  // The scrape itself is in flight while it is answered.
  assert.equal(m.get('http_requests_in_flight')?.metrics[0]?.value, '1');
});

test('database pool, cache lookups and process metrics are reported', async () => {
  await t.request({ url: `/api/v1/bugs/${w.bugs.public.id}`, as: w.users.dev });
  const m = await scrape();
  const pool = m.get('bugzot_db_pool_connections');
  assert.ok(pool?.metrics.some((s) => s.labels?.['state'] === 'total' && Number(s.value) >= 1));
  const cache = m.get('bugzot_cache_lookups');
  const hits = cache?.metrics.find((s) => s.labels?.['cache'] === 'bug' && s.labels?.['result'] === 'hit');
  assert.ok(Number(hits?.value) >= 1, 'a repeated read of one bug is a cache hit');
  for (const name of [
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_seconds',
  ]) {
    assert.ok(m.has(name), `${name} missing`);
  }
});

test('uploads, mails and the job queue are reported', async () => {
  const res = await t.request({
    method: 'PUT',
    url: `/api/v1/bugs/${w.bugs.public.id}/attachments/metrics.log`,
    as: w.users.dev,
    headers: { 'content-type': 'application/octet-stream' },
    payload: Buffer.from('a log line\n'.repeat(100)),
  });
  assert.equal(res.statusCode, 201, res.body);
  const m = await scrape();
  assert.ok(Number(m.get('bugzot_upload_bytes_total')?.metrics[0]?.value) >= 1100, 'upload bytes counted');
  assert.equal(m.get('bugzot_uploads_active')?.metrics[0]?.value, '0');
  assert.equal(m.get('bugzot_mails_sent_total')?.type, 'COUNTER');
  assert.equal(m.get('bugzot_mails_failed_total')?.type, 'COUNTER');
  // Filing and changing bugs queued mail jobs (no worker runs in this test app).
  const jobs = m.get('bugzot_jobs');
  assert.equal(jobs?.type, 'GAUGE');
  assert.ok(jobs?.metrics.some((s) => s.labels?.['state'] === 'pending' && Number(s.value) >= 1));
});

test('metrics are refused to addresses outside METRICS_ALLOW', async () => {
  const res = await t.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.9' });
  assert.equal(res.statusCode, 403);
  assert.doesNotMatch(res.body, /http_request/);
  const mapped = await t.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '::ffff:10.1.2.3' });
  assert.equal(mapped.statusCode, 200, 'an IPv4-mapped private address is internal');
});

test('a METRICS_ALLOW that is not a list of addresses stops the start, naming the variable', () => {
  assert.throws(() => loadConfig({ METRICS_ALLOW: '10.0.0.0/8,intranet' }), /METRICS_ALLOW/);
  assert.deepEqual(loadConfig({ METRICS_ALLOW: ' 10.0.0.0/8, ::1 ' }).metricsAllow, ['10.0.0.0/8', '::1']);
});

test("Prometheus's own promtool parses the scrape, and our metrics pass its lint", async (t) => {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (found.status !== 0) {
    if (process.env['CI'] === 'true')
      assert.fail('promtool is not installed (prometheus in .ci/run APT_PACKAGES)');
    return t.skip('promtool is not installed');
  }
  await t.test('scrape', async () => {
    await scrape();
    const r = spawnSync(found.stdout.trim(), ['check', 'metrics'], { input: lastScrape, encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    assert.doesNotMatch(out, /parsing error/);
    assert.notEqual(r.status, 1, out);
    // Lint findings are allowed only for prom-client's own Node.js gauges named *_total.
    const findings = out.split('\n').filter(Boolean);
    for (const line of findings) assert.match(line, /^nodejs_active_\w+_total non-counter metrics/, line);
  });
});
