/**
 * The fan-out job makes the first attempt of every delivery itself: a delivered one needs no job of its
 * own, a failed one gets a `webhook.deliver` job (retried with backoff); running the fan-out again (as
 * after a crash) sends nothing twice and creates no second delivery row.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WEBHOOK_FANOUT_JOB } from '../src/events/index.ts';
import type { Job } from '../src/jobs/index.ts';
import { type BackgroundWorker, createWorker } from '../src/notify/index.ts';
import { sql } from '../src/platform/db.ts';
import { DELIVER_JOB, webhookHandlers, webhookJobs } from '../src/webhooks/index.ts';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { memoryLog, until } from './helpers/notify.ts';

/** A receiver answering `status` (changeable) and counting hits per bug id. */
async function receiver() {
  const r = {
    status: 200,
    hits: [] as number[],
    server: undefined as Server | undefined,
    url: '',
  };
  r.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.hits.push(JSON.parse(Buffer.concat(chunks).toString('utf8')).bug.id);
      res.writeHead(r.status).end();
    });
  });
  await new Promise<void>((ok) => r.server!.listen(0, '127.0.0.1', ok));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}/hook`;
  return r;
}

describe('webhook fan-out', () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  let bg: BackgroundWorker;
  const log = memoryLog();
  const servers: Server[] = [];

  before(async () => {
    t = await startTestApp({
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      WEBHOOK_DISABLE_AFTER_FAILURES: '5',
      JOB_RETRY_BASE_MS: '100',
      WORKER_POLL_MS: '20',
      NOTIFY_BATCH_SECONDS: '0',
    });
    w = await world(t);
    bg = createWorker(t.config, t.db, log, webhookJobs(t.config, t.db, log));
  });
  after(async () => {
    await bg?.stop();
    for (const s of servers) s.close();
    await t?.close();
  });

  const subscribe = async (url: string) => {
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/webhooks',
      payload: { url, events: ['bug.created'] },
      as: w.users.admin,
    });
    assert.equal(res.statusCode, 201, res.body);
    return res.data.id as number;
  };
  const deliverJobs = async (deliveryIds: number[]) =>
    t.db.query<{ n: number }>(sql`
      SELECT count(*)::int AS n FROM jobs WHERE kind = ${DELIVER_JOB}
        AND (payload->>'deliveryId')::bigint = ANY(${deliveryIds}::bigint[])`);

  test('first attempts in the fan-out; only the failed delivery gets a retry job, then arrives', async () => {
    const good = await receiver();
    const flaky = await receiver();
    servers.push(good.server!, flaky.server!);
    flaky.status = 503;
    const goodHooks = [await subscribe(good.url), await subscribe(good.url)];
    const flakyHook = await subscribe(flaky.url);
    await bg.worker.start();
    const bug = await w.bug('Fan-out to three');
    await until('good receiver got both', () => good.hits.filter((id) => id === bug.id).length === 2);
    await until('flaky attempted', () => flaky.hits.includes(bug.id));
    const load = () =>
      t.db.query<{ id: number; webhook_id: number; state: string; attempt: number }>(sql`
        SELECT d.id::int AS id, d.webhook_id, d.state, d.attempt FROM webhook_deliveries d
        JOIN bug_events e ON e.id = d.event_id WHERE e.bug_id = ${bug.id} ORDER BY d.id`);
    // The receivers hear of it before the fan-out logs the outcomes.
    await until('outcomes logged', async () => (await load()).every((r) => r.attempt > 0));
    const rows = await load();
    assert.equal(rows.length, 3, 'one delivery row per webhook');
    const goodRows = rows.filter((r) => goodHooks.includes(r.webhook_id));
    assert.deepEqual(
      goodRows.map((r) => [r.state, r.attempt]),
      [
        ['delivered', 1],
        ['delivered', 1],
      ],
    );
    assert.equal((await deliverJobs(goodRows.map((r) => r.id)))[0]!.n, 0, 'no job for a delivered one');
    const flakyRow = rows.find((r) => r.webhook_id === flakyHook)!;
    await until('retry job', async () => (await deliverJobs([flakyRow.id]))[0]!.n === 1);
    flaky.status = 200;
    await until('flaky delivered on retry', async () => {
      const [d] = await t.db.query<{ state: string }>(
        sql`SELECT state FROM webhook_deliveries WHERE id = ${flakyRow.id}`,
      );
      return d?.state === 'delivered';
    });
    const [d] = await t.db.query<{ attempt: number }>(
      sql`SELECT attempt FROM webhook_deliveries WHERE id = ${flakyRow.id}`,
    );
    assert.ok(d!.attempt >= 2, 'first attempt in the fan-out, then the retry');
    const [hook] = await t.db.query<{ failure_count: number; active: boolean }>(
      sql`SELECT failure_count, active FROM webhooks WHERE id = ${flakyHook}`,
    );
    assert.deepEqual({ ...hook }, { failure_count: 0, active: true }, 'success resets the failure count');
    assert.equal(good.hits.filter((id) => id === bug.id).length, 2, 'nothing sent twice');
  });

  test('running a fan-out again (after a crash) sends nothing twice', async () => {
    await bg.worker.stop();
    const r = await receiver();
    servers.push(r.server!);
    await subscribe(r.url);
    const bug = await w.bug('Fan-out run twice');
    const [event] = await t.db.query<{ id: number }>(
      sql`SELECT id::int AS id FROM bug_events WHERE bug_id = ${bug.id} ORDER BY id LIMIT 1`,
    );
    const fanout = webhookHandlers({
      db: t.db,
      allowedHosts: ['127.0.0.1'],
      disableAfterFailures: 5,
      log,
    }).find((h) => h.kind === WEBHOOK_FANOUT_JOB)!;
    const job = { id: 0, kind: WEBHOOK_FANOUT_JOB, payload: { eventId: event!.id } } as unknown as Job;
    await fanout.run(job);
    await fanout.run(job);
    assert.equal(r.hits.filter((id) => id === bug.id).length, 1);
    const [n] = await t.db.query<{ n: number }>(sql`
      SELECT count(*)::int AS n FROM webhook_deliveries WHERE event_id = ${event!.id}`);
    assert.ok(n!.n >= 1);
    const [mine] = await t.db.query<{ n: number }>(sql`
      SELECT count(*)::int AS n FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
      WHERE d.event_id = ${event!.id} AND w.url = ${r.url}`);
    assert.equal(mine!.n, 1, 'one delivery row, not two');
  });
});
