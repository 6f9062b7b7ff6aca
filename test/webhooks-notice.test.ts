/**
 * The notice to a webhook's owner when Bugzot disables the webhook after repeated failures: one mail per
 * disabling, through the job queue and the notify module's SMTP transport, to a real SMTP server; read
 * with mailparser. Also: the API shows why, a moot notice (re-enabled meanwhile) is not sent.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type BackgroundWorker, createWorker } from '../src/notify/index.ts';
import { sql } from '../src/platform/db.ts';
import { DISABLED_NOTICE_JOB, webhookJobs } from '../src/webhooks/index.ts';
import { enqueueDisabledNotice } from '../src/webhooks/notice.ts';
import { type Json, startTestApp, type TestApp, type TestUser, world } from './helpers/app.ts';
import { memoryLog, until } from './helpers/notify.ts';
import { type ReceivedMail, startSmtp, type TestSmtp } from './helpers/smtp.ts';

describe('webhook disabled: the owner is told by mail', () => {
  let t: TestApp;
  let smtp: TestSmtp;
  let w: Awaited<ReturnType<typeof world>>;
  let bg: BackgroundWorker;
  let receiver: Server;
  let status = 500;
  let hits = 0;
  let url = '';
  const log = memoryLog();

  before(async () => {
    smtp = await startSmtp();
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hits++;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'Receiver broken');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook?token=s3cret-token`;
    t = await startTestApp({
      SMTP_URL: smtp.url,
      BASE_URL: 'http://bugs.example.test',
      MAIL_FROM: 'Bugzot <bugzot@example.test>',
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      WEBHOOK_DISABLE_AFTER_FAILURES: '2',
      JOB_RETRY_BASE_MS: '50',
      WORKER_POLL_MS: '20',
      NOTIFY_BATCH_SECONDS: '0',
    });
    w = await world(t);
    bg = createWorker(t.config, t.db, log, webhookJobs(t.config, t.db, log));
    await bg.worker.start();
  });
  after(async () => {
    await bg?.stop();
    await t?.close();
    await smtp?.close();
    receiver?.close();
  });

  const notices = (id?: number) =>
    smtp.mails.filter(
      (m) =>
        m.header('x-bugzot-webhook-id') !== undefined &&
        (id === undefined || m.header('x-bugzot-webhook-id') === String(id)),
    );
  const webhook = async (id: number, as: TestUser = w.users.dev) =>
    (await t.request({ url: `/api/v1/webhooks/${id}`, as })).data as Json;
  const noticeJobs = async (id: number) =>
    (
      await t.db.query<{ state: string; n: number }>(sql`
        SELECT state, count(*)::int AS n FROM jobs WHERE kind = ${DISABLED_NOTICE_JOB}
          AND (payload->>'webhookId')::int = ${id} GROUP BY state`)
    ).map((r) => ({ state: r.state, n: r.n }));

  test('one disabling gives one mail saying which webhook, why, and how to re-enable it', async () => {
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/webhooks',
      payload: { url, events: ['bug.created'] },
      as: w.users.dev,
    });
    assert.equal(res.statusCode, 201, res.body);
    const id = res.data.id as number;
    await w.bug('Receiver keeps failing', {}, w.users.admin);
    await until('disabled', async () => (await webhook(id)).active === false);
    await until('notice', () => notices(id).length === 1);
    const m: ReceivedMail = notices(id)[0]!;

    // The API says so too.
    const h = await webhook(id);
    assert.equal(h.failure_count, 2);
    assert.ok(Date.parse(h.disabled_at));
    assert.match(h.disabled_reason, /2 deliveries in a row failed; last: HTTP 500/);
    assert.equal(hits, 2, 'no attempt after the disabling');

    assert.deepEqual(m.to, [w.users.dev.email], 'to the owner only');
    assert.equal(
      m.parsed.to && 'value' in m.parsed.to ? m.parsed.to.value[0]?.address : '',
      w.users.dev.email,
    );
    assert.match(m.parsed.subject ?? '', new RegExp(`Webhook ${id} disabled`));
    assert.equal(m.header('auto-submitted'), 'auto-generated');
    const text = m.parsed.text ?? '';
    assert.match(
      text,
      new RegExp(`disabled your webhook ${id} \\(http://127\\.0\\.0\\.1:\\d+/hook \\(query omitted\\)\\)`),
    );
    assert.match(text, /Why: 2 deliveries in a row failed; last: HTTP 500/);
    assert.match(text, /Last attempt: delivery \d+ \(bug\.created\).*HTTP 500/);
    assert.match(text, /Its answer began: Receiver broken/);
    assert.ok(text.includes(`http://bugs.example.test/api/v1/webhooks/${id}/enable`), text);
    assert.ok(text.includes(`http://bugs.example.test/api/v1/webhooks/${id}/deliveries`), text);
    assert.ok(!m.raw.includes('s3cret-token'), 'the query string (often a token) is not mailed');
    assert.ok(!m.raw.includes(res.data.secret), 'no signing secret in the mail');
    assert.match(m.parsed.html || '', /webhook \d+/);
    assert.deepEqual(await noticeJobs(id), [{ state: 'done', n: 1 }]);

    // Enqueueing the same notice again (a re-run of the disabling transaction's work) adds nothing.
    const [row] = await t.db.query<{ disabled_at: Date }>(
      sql`SELECT disabled_at FROM webhooks WHERE id = ${id}`,
    );
    await t.db.transaction((tx) =>
      enqueueDisabledNotice(tx, { webhookId: id, deliveryId: 0, disabledAt: row!.disabled_at.toISOString() }),
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(notices(id).length, 1);
    assert.deepEqual(await noticeJobs(id), [{ state: 'done', n: 1 }]);

    // Re-enabled, failing again: a new disabling, a new mail.
    const on = await t.request({ method: 'POST', url: `/api/v1/webhooks/${id}/enable`, as: w.users.dev });
    assert.equal(on.statusCode, 200, on.body);
    assert.equal(on.data.disabled_at, null);
    assert.equal(on.data.disabled_reason, null);
    await w.bug('Still failing', {}, w.users.admin);
    await until('second notice', () => notices(id).length === 2);
    assert.notEqual(notices(id)[0]!.header('message-id'), notices(id)[1]!.header('message-id'));
    assert.ok(log.lines.some((l) => l.msg.includes('owner told')));
  });

  test('a notice that became moot is not sent: webhook re-enabled, or the owner disabled', async () => {
    status = 200;
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/webhooks',
      payload: { url, events: ['bug.created'] },
      as: w.users.dev,
    });
    const id = res.data.id as number;
    // An old disabling of a webhook that is active now.
    await t.db.transaction((tx) =>
      enqueueDisabledNotice(tx, {
        webhookId: id,
        deliveryId: 0,
        disabledAt: new Date(Date.now() - 60_000).toISOString(),
      }),
    );
    await until('notice job ran', async () => (await noticeJobs(id)).some((j) => j.state === 'done'));
    // Disabled again, but its owner's account is disabled: nobody to tell.
    const owner = await t.user({ kind: 'internal', name: 'Leaver' });
    const [hook] = await t.db.query<{ id: number; disabled_at: Date }>(sql`
      INSERT INTO webhooks (owner_id, url, secret, events, active, disabled_at, disabled_reason)
      VALUES (${owner.id}, ${url}, 'whsec_x', ARRAY['bug.created'], false, now(), 'test') RETURNING id, disabled_at`);
    await t.db.query(sql`UPDATE users SET disabled = true WHERE id = ${owner.id}`);
    await t.db.transaction((tx) =>
      enqueueDisabledNotice(tx, {
        webhookId: hook!.id,
        deliveryId: 0,
        disabledAt: hook!.disabled_at.toISOString(),
      }),
    );
    await until('second notice job ran', async () =>
      (await noticeJobs(hook!.id)).some((j) => j.state === 'done'),
    );
    assert.equal(notices(id).length, 0);
    assert.equal(notices(hook!.id).length, 0);
    assert.ok(log.lines.filter((l) => l.msg.includes('notice skipped')).length >= 2);
  });

  test("another user's webhook and its state stay hidden from non-admins", async () => {
    const [any] = await t.db.query<{ id: number }>(sql`SELECT id FROM webhooks ORDER BY id LIMIT 1`);
    const res = await t.request({ url: `/api/v1/webhooks/${any!.id}`, as: w.users.alice });
    assert.equal(res.statusCode, 403);
    const other = await t.user({ kind: 'internal', name: 'Otherstaff' });
    const res2 = await t.request({ url: `/api/v1/webhooks/${any!.id}`, as: other });
    assert.equal(res2.statusCode, 404);
    assert.ok(!res2.body.includes('disabled_reason'));
  });
});
