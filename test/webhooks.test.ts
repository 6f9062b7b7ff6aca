/**
 * Webhooks delivered to a real HTTP receiver on 127.0.0.1 by a worker built as `serve` builds it:
 * signatures, retries after the receiver comes up, disabling after repeated 500s (then re-enable and
 * redeliver), confidential bugs only for owners who may see them, and the SSRF allow-list.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type BackgroundWorker, createWorker } from '../src/notify/index.ts';
import { sql } from '../src/platform/db.ts';
import { webhookJobs } from '../src/webhooks/index.ts';
import { type Json, startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { memoryLog, until } from './helpers/notify.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: Json;
}

/** A webhook receiver: records each POST and answers `status`. */
class Receiver {
  readonly got: Received[] = [];
  status = 200;
  hits = 0;
  private server: Server | undefined;
  port = 0;

  async listen(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.hits++;
        const body = Buffer.concat(chunks).toString('utf8');
        if (this.status < 300) this.got.push({ headers: req.headers, body, json: JSON.parse(body) });
        res.writeHead(this.status, { 'content-type': 'text/plain' });
        res.end(this.status < 300 ? 'thanks' : `nope ${'x'.repeat(2000)}`);
      });
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  get url() {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  ofBug(bugId: number, type?: string) {
    return this.got.filter((g) => g.json.bug.id === bugId && (!type || g.json.type === type));
  }
}

const ENV = {
  WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
  WEBHOOK_DISABLE_AFTER_FAILURES: '3',
  JOB_RETRY_BASE_MS: '50',
  WORKER_POLL_MS: '20',
  NOTIFY_BATCH_SECONDS: '0',
};

describe('webhooks', () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  let bg: BackgroundWorker;
  const log = memoryLog();
  const receivers: Receiver[] = [];
  const receiver = async (port?: number) => {
    const r = await new Receiver().listen(port);
    receivers.push(r);
    return r;
  };

  before(async () => {
    t = await startTestApp(ENV);
    w = await world(t);
    bg = createWorker(t.config, t.db, log, webhookJobs(t.config, t.db, log));
    await bg.worker.start();
  });
  after(async () => {
    await bg?.stop();
    for (const r of receivers) await r.close();
    await t?.close();
  });

  const subscribe = async (as: TestUser, body: object) => {
    const res = await t.request({ method: 'POST', url: '/api/v1/webhooks', payload: body, as });
    assert.equal(res.statusCode, 201, res.body);
    return res.data as Json;
  };
  const webhook = async (id: number) =>
    (await t.request({ url: `/api/v1/webhooks/${id}`, as: w.users.admin })).data;
  const deliveries = async (id: number) =>
    (await t.request({ url: `/api/v1/webhooks/${id}/deliveries`, as: w.users.admin })).data
      .deliveries as Json[];

  test('events arrive signed, with the documented payload and headers', async () => {
    const r = await receiver();
    const hook = await subscribe(w.users.admin, {
      url: r.url,
      events: ['bug.created', 'bug.updated', 'bug.status_changed', 'comment.created'],
      product_ids: [w.products.omega.id],
    });
    assert.match(hook.secret, /^whsec_/);
    assert.equal((await webhook(hook.id)).secret, undefined, 'the secret is shown only once');

    const bug = await w.bug('Webhook signed crash');
    await until('bug.created', () => r.ofBug(bug.id, 'bug.created').length === 1);
    const got = r.ofBug(bug.id, 'bug.created')[0]!;
    assert.equal(got.headers['bugzot-event'], 'bug.created');
    assert.match(String(got.headers['bugzot-delivery']), /^\d+$/);
    const sig = String(got.headers['bugzot-signature']);
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
    assert.ok(m, sig);
    const expected = createHmac('sha256', hook.secret).update(`${m[1]}.${got.body}`).digest('hex');
    assert.equal(m[2], expected, 'the signature verifies with the secret');
    assert.ok(Math.abs(Number(m[1]) - Date.now() / 1000) < 60);
    assert.equal(got.json.type, 'bug.created');
    assert.equal(typeof got.json.id, 'number');
    assert.equal(got.json.bug.summary, 'Webhook signed crash');
    assert.equal(got.json.bug.product.id, w.products.omega.id);
    assert.ok(Date.parse(got.json.created_at));

    const patch = await t.request({
      method: 'PATCH',
      url: `/api/v1/bugs/${bug.id}`,
      payload: { status: 'ASSIGNED', assignee_id: w.users.admin.id, comment: { body: 'On it' } },
      as: w.users.admin,
    });
    assert.equal(patch.statusCode, 200, patch.body);
    await until('update events', () => r.ofBug(bug.id).length === 4);
    const updated = r.ofBug(bug.id, 'bug.updated')[0]!.json;
    assert.deepEqual(
      updated.changes.find((c: Json) => c.field === 'status'),
      { field: 'status', old: 'NEW', new: 'ASSIGNED' },
    );
    assert.equal(updated.comment.body, 'On it');
    const status = r.ofBug(bug.id, 'bug.status_changed')[0]!.json;
    assert.deepEqual(
      status.changes.map((c: Json) => c.field),
      ['status'],
    );
    assert.equal(status.id, updated.id, 'one event, two types: same event id');
    assert.equal(r.ofBug(bug.id, 'comment.created')[0]!.json.comment.body, 'On it');

    // A bug of another product does not match the product filter.
    const other = await t.request({
      method: 'POST',
      url: '/api/v1/bugs',
      payload: {
        product_id: w.products.orion.id,
        version_id: w.versions.orion01.id,
        component_id: w.components.orionCore.id,
        summary: 'Orion, not subscribed',
      },
      as: w.users.admin,
    });
    assert.equal(other.statusCode, 201);
    const log2 = await deliveries(hook.id);
    assert.equal(log2.length, 4);
    const first = log2.find((d) => d.event_type === 'bug.created')!;
    assert.equal(first.state, 'delivered');
    assert.equal(first.status_code, 200);
    assert.equal(first.response_excerpt, 'thanks');
    assert.equal(typeof first.duration_ms, 'number');
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(r.ofBug(other.data.id).length, 0);
  });

  test('receiver down, then up: delivered after retries', async () => {
    const probe = await new Receiver().listen();
    const port = probe.port;
    await probe.close();
    const hook = await subscribe(w.users.admin, {
      url: `http://127.0.0.1:${port}/hook`,
      events: ['bug.created'],
    });
    const bug = await w.bug('Delivered late');
    await until('failed attempts', async () => (await deliveries(hook.id))[0]?.attempt >= 2);
    const failed = (await deliveries(hook.id))[0]!;
    assert.equal(failed.state, 'failed');
    assert.ok(failed.error, 'the connection error is logged');
    const r = await receiver(port);
    await until('delivery after retry', () => r.ofBug(bug.id).length === 1);
    await until('logged as delivered', async () => (await deliveries(hook.id))[0]?.state === 'delivered');
    assert.equal((await webhook(hook.id)).failure_count, 0);
    assert.equal((await webhook(hook.id)).active, true);
  });

  test('receiver answering 500: retried, then disabled; re-enable and redeliver', async () => {
    const r = await receiver();
    r.status = 500;
    const hook = await subscribe(w.users.admin, { url: r.url, events: ['bug.created'] });
    const bug = await w.bug('Always 500');
    await until('disabled', async () => (await webhook(hook.id)).active === false);
    const h = await webhook(hook.id);
    assert.equal(r.hits, 3, 'three attempts, then no more');
    assert.equal(h.failure_count, 3);
    assert.match(h.disabled_reason, /HTTP 500/);
    assert.ok(h.disabled_at);
    const [d] = await deliveries(hook.id);
    assert.equal(d.status_code, 500);
    assert.equal(d.attempt, 3);
    assert.equal(Buffer.byteLength(d.response_excerpt), 1024, 'first 1 KB of the response');
    assert.ok(log.lines.some((l) => l.msg.includes('webhook disabled')));
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(r.hits, 3);

    r.status = 200;
    const on = await t.request({
      method: 'POST',
      url: `/api/v1/webhooks/${hook.id}/enable`,
      as: w.users.admin,
    });
    assert.equal(on.statusCode, 200, on.body);
    assert.equal(on.data.active, true);
    assert.equal(on.data.failure_count, 0);
    const again = await t.request({
      method: 'POST',
      url: `/api/v1/webhooks/${hook.id}/deliveries/${d.id}/redeliver`,
      as: w.users.admin,
    });
    assert.equal(again.statusCode, 202, again.body);
    assert.equal(again.data.redelivery_of, d.id);
    await until('redelivered', () => r.ofBug(bug.id).length === 1);
    const missing = await t.request({
      method: 'POST',
      url: `/api/v1/webhooks/${hook.id}/deliveries/999999/redeliver`,
      as: w.users.admin,
    });
    assert.equal(missing.statusCode, 404);
  });

  test("a confidential bug's event reaches only owners who may see it (checked at send time)", async () => {
    const staffR = await receiver();
    const extR = await receiver();
    const staffHook = await subscribe(w.users.dev, { url: staffR.url, events: ['bug.created'] });
    const former = await t.user({ kind: 'internal', name: 'Former' });
    const extHook = await subscribe(former, { url: extR.url, events: ['bug.created'] });
    // The owner left the staff: their webhook stays, but now sees only what an external user sees.
    await t.db.query(sql`UPDATE users SET kind = 'external' WHERE id = ${former.id}`);
    const secret = await w.bug('Confidential for webhooks', { confidential: true }, w.users.admin);
    const open = await w.bug('Public for webhooks', {}, w.users.admin);
    await until('staff got both', () => staffR.ofBug(secret.id).length + staffR.ofBug(open.id).length === 2);
    await until('external got the public one', () => extR.ofBug(open.id).length === 1);
    await until('confidential skipped', async () =>
      (await deliveries(extHook.id)).some((d) => d.state === 'skipped'),
    );
    assert.equal(extR.ofBug(secret.id).length, 0);
    assert.ok(!extR.got.some((g) => g.body.includes('Confidential for webhooks')));
    const skipped = (await deliveries(extHook.id)).find((d) => d.state === 'skipped')!;
    assert.match(skipped.error, /may not see/);
    assert.equal(staffR.ofBug(secret.id)[0]!.json.bug.confidential, true);
    assert.ok(staffHook.id);
  });

  test('bad input and who may subscribe: 4xx, nothing stored', async () => {
    const before = await t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM webhooks`);
    const post = (payload: object, as: TestUser | null = w.users.admin) =>
      t.request({ method: 'POST', url: '/api/v1/webhooks', payload, as: as ?? undefined });
    const url = 'http://127.0.0.1:9/hook';
    for (const [body, status] of [
      [{ events: ['bug.created'] }, 400],
      [{ url, events: [] }, 400],
      [{ url, events: ['bug.deleted'] }, 400],
      [{ url, events: ['bug.created'], extra: 1 }, 400],
      [{ url: 'ftp://127.0.0.1/x', events: ['bug.created'] }, 400],
      [{ url: 'not a url at all', events: ['bug.created'] }, 400],
      [{ url: 'http://169.254.169.254/latest/meta-data', events: ['bug.created'] }, 400],
      [{ url: 'http://[::1]:8080/', events: ['bug.created'] }, 400],
      [{ url, events: ['bug.created'], product_ids: [987654] }, 404],
    ] as const) {
      const res = await post(body);
      assert.equal(res.statusCode, status, `${JSON.stringify(body)}: ${res.body}`);
      assert.ok(res.data.error.message);
    }
    assert.equal((await post({ url, events: ['bug.created'] }, w.users.alice)).statusCode, 403);
    assert.equal((await post({ url, events: ['bug.created'] }, null)).statusCode, 401);
    const after = await t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM webhooks`);
    assert.equal(after[0]!.n, before[0]!.n);
    // Others' webhooks are invisible to non-admins.
    const mine = await subscribe(w.users.dev, { url, events: ['bug.created'] });
    const other = await t.request({ url: `/api/v1/webhooks/${mine.id}`, as: w.users.alice });
    assert.equal(other.statusCode, 403);
    const admins = await t.request({ url: '/api/v1/webhooks', as: w.users.admin });
    assert.ok(admins.data.webhooks.some((h: Json) => h.id === mine.id));
    const del = await t.request({ method: 'DELETE', url: `/api/v1/webhooks/${mine.id}`, as: w.users.dev });
    assert.equal(del.statusCode, 204);
  });
});

describe('webhook allow-list (WEBHOOK_ALLOWED_HOSTS unset: public addresses only)', () => {
  test('loopback, metadata and names resolving to loopback are refused at creation', async () => {
    const t = await startTestApp({});
    try {
      const admin = await t.user({ admin: true });
      for (const url of [
        'http://127.0.0.1:8080/hook',
        'http://169.254.169.254/latest/meta-data',
        'http://localhost:8080/hook',
        'http://10.1.2.3/hook',
        'http://[::ffff:127.0.0.1]/hook',
      ]) {
        const res = await t.request({
          method: 'POST',
          url: '/api/v1/webhooks',
          payload: { url, events: ['bug.created'] },
          as: admin,
        });
        assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
        assert.equal(res.data.error.field, 'url');
      }
      const [row] = await t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM webhooks`);
      assert.equal(row!.n, 0);
    } finally {
      await t.close();
    }
  });

  test('a stored URL that now points at a refused address is re-checked at send time: nothing sent', async () => {
    const t = await startTestApp({
      JOB_RETRY_BASE_MS: '50',
      WORKER_POLL_MS: '20',
      NOTIFY_BATCH_SECONDS: '0',
    });
    const r = await new Receiver().listen();
    const log = memoryLog();
    const bg = createWorker(t.config, t.db, log, webhookJobs(t.config, t.db, log));
    try {
      const w = await world(t);
      // As if saved while an allow-list permitted it (or before its name was re-pointed at loopback).
      const [hook] = await t.db.query<{ id: number }>(sql`
        INSERT INTO webhooks (owner_id, url, secret, events) VALUES (${w.users.admin.id}, ${r.url}, 'whsec_x',
          ARRAY['bug.created']) RETURNING id`);
      await w.bug('Never sent to loopback');
      await bg.worker.start();
      await until('refused delivery', async () => {
        const [d] = await t.db.query<{ error: string | null }>(
          sql`SELECT error FROM webhook_deliveries WHERE webhook_id = ${hook!.id} AND error IS NOT NULL`,
        );
        return d !== undefined;
      });
      const [d] = await t.db.query<{ error: string; state: string }>(
        sql`SELECT error, state FROM webhook_deliveries WHERE webhook_id = ${hook!.id}`,
      );
      assert.match(d!.error, /loopback|not allowed/);
      assert.equal(d!.state, 'failed');
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(r.hits, 0);
    } finally {
      await bg.stop();
      await r.close();
      await t.close();
    }
  });
});
