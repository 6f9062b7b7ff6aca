/**
 * Delivery through a real SMTP server: refusals then acceptance (retries, exactly once), give-up then an
 * admin's retry, bad credentials visible to admins, STARTTLS and smtps with a self-signed certificate the
 * config trusts, two workers at once, a worker that dies mid-delivery (a real process killed on
 * PostgreSQL), and the .eml outbox without SMTP_URL.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { claimJobs } from '../src/jobs/queue.ts';
import { createWorker } from '../src/notify/index.ts';
import { sql } from '../src/platform/db.ts';
import { startTestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';
import { memoryLog, startMailApp, until } from './helpers/notify.ts';
import type { ReceivedMail } from './helpers/smtp.ts';

/** Each (recipient, Message-ID) once: no duplicates. */
function assertNoDuplicates(mails: ReceivedMail[]) {
  const keys = mails.map((m) => `${m.to.join(',')} ${m.parsed.messageId}`);
  assert.equal(new Set(keys).size, keys.length, 'a mail arrived twice');
}

describe('delivery', () => {
  test('the SMTP server refusing for a while: every mail arrives once it accepts, exactly once', async () => {
    const m = await startMailApp({ JOB_RETRY_BASE_MS: '50' });
    try {
      const w = await world(m.t);
      await m.drain();
      m.smtp.mails.length = 0;
      m.smtp.refuse();
      const bg = m.worker();
      await bg.worker.start();
      for (let i = 0; i < 5; i++)
        await w.bug(`Refused ${i}`, { cc: [w.users.bob.id], assignee_id: w.users.admin.id });
      await until('refusals', () => m.smtp.refused >= 10);
      // Refused mails are pending until their retry, or running while it is tried (at 50 ms apart on a
      // loaded machine, all of them may be in a retry at the moment of this query).
      const [retrying] = await m.t.db.query<{ n: number }>(
        sql`SELECT count(*)::int AS n FROM jobs
            WHERE kind = 'mail.send' AND state IN ('pending', 'running') AND attempts > 0`,
      );
      assert.ok(retrying!.n > 0, 'mails wait for their retry');
      m.smtp.accept();
      await m.smtp.waitFor(10);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(m.smtp.mails.length, 10);
      assertNoDuplicates(m.smtp.mails);
    } finally {
      await m.close();
    }
  });

  test('a mail that keeps failing gives up into failed; admins see it and retry it', async () => {
    const m = await startMailApp({ MAIL_GIVE_UP_HOURS: '0.0002', JOB_RETRY_BASE_MS: '50' });
    try {
      const w = await world(m.t);
      await m.drain();
      m.smtp.mails.length = 0;
      m.smtp.refuse();
      const bg = m.worker();
      await bg.worker.start();
      const bug = await w.bug('Gives up', { cc: [w.users.bob.id] });
      await until('failed', async () => {
        const rows = await m.t.db.query(
          sql`SELECT 1 FROM jobs WHERE kind = 'mail.send' AND state = 'failed'`,
        );
        return rows.length > 0;
      });
      const denied = await m.t.request({
        method: 'GET',
        url: '/api/v1/admin/jobs?state=failed',
        as: w.users.dev,
      });
      assert.equal(denied.statusCode, 403);
      const list = await m.t.request({
        method: 'GET',
        url: '/api/v1/admin/jobs?state=failed',
        as: w.users.admin,
      });
      assert.equal(list.statusCode, 200, list.body);
      const failed = list.data.jobs.find((j: { summary: string }) => j.summary.includes(w.users.bob.email));
      assert.ok(failed, 'the failed mail is listed');
      assert.equal(failed.summary, `mail to ${w.users.bob.email} about bug ${bug.id}`);
      assert.match(failed.last_error, /451/);
      assert.ok(list.data.counts.failed >= 1);

      m.smtp.accept();
      const retried = await m.t.request({
        method: 'POST',
        url: `/api/v1/admin/jobs/${failed.id}/retry`,
        as: w.users.admin,
      });
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal(retried.data.state, 'pending');
      const mails = await m.smtp.waitFor(1);
      assert.equal(mails.filter((x) => x.to[0] === w.users.bob.email).length, 1);
      await until('done', async () => {
        const [job] = await m.t.db.query<{ state: string }>(
          sql`SELECT state FROM jobs WHERE id = ${failed.id}`,
        );
        return job!.state === 'done';
      });
      const again = await m.t.request({
        method: 'POST',
        url: `/api/v1/admin/jobs/${failed.id}/retry`,
        as: w.users.admin,
      });
      assert.equal(again.statusCode, 409, 'a delivered mail is not sent again');
      const missing = await m.t.request({
        method: 'POST',
        url: '/api/v1/admin/jobs/99999999/retry',
        as: w.users.admin,
      });
      assert.equal(missing.statusCode, 404);
    } finally {
      await m.close();
    }
  });

  test('bad SMTP credentials surface in the admin view', async () => {
    const m = await startMailApp({}, { auth: { user: 'bugzot', pass: 'right' } });
    try {
      const wrong = m.smtp.url.replace('bugzot:right@', 'bugzot:wrong@');
      const t2 = await startTestApp({
        SMTP_URL: wrong,
        NOTIFY_BATCH_SECONDS: '0',
        JOB_RETRY_BASE_MS: '60000',
      });
      try {
        const w = await world(t2);
        const bg = createWorker(t2.config, t2.db, memoryLog());
        await bg.worker.drain();
        await bg.stop();
        assert.ok(m.smtp.authFailures > 0);
        const list = await t2.request({
          method: 'GET',
          url: '/api/v1/admin/jobs?state=retrying&kind=mail.send',
          as: w.users.admin,
        });
        assert.equal(list.statusCode, 200, list.body);
        assert.ok(list.data.jobs.length > 0);
        assert.match(list.data.jobs[0].last_error, /Invalid login|535|Invalid username/i);
      } finally {
        await t2.close();
      }
    } finally {
      await m.close();
    }
  });

  test('STARTTLS with a self-signed certificate the config trusts, and AUTH', async () => {
    const m = await startMailApp({}, { tls: 'starttls', auth: { user: 'bugzot', pass: 's3cret' } });
    try {
      const t2 = await startTestApp({
        SMTP_URL: `${m.smtp.url}?requireTLS=true`,
        SMTP_TLS_CA_FILE: m.smtp.caFile!,
        NOTIFY_BATCH_SECONDS: '0',
      });
      try {
        const w = await world(t2);
        const bg = createWorker(t2.config, t2.db, memoryLog());
        await bg.worker.drain();
        await bg.stop();
        const mails = await m.smtp.waitFor(1);
        assert.ok(
          mails.every((x) => x.secure),
          'delivered over TLS',
        );
        assert.ok(mails.some((x) => x.to[0] === w.users.bob.email));
      } finally {
        await t2.close();
      }
      // Without trusting the certificate, delivery fails (and says why).
      const t3 = await startTestApp({
        SMTP_URL: m.smtp.url,
        NOTIFY_BATCH_SECONDS: '0',
        JOB_RETRY_BASE_MS: '60000',
      });
      try {
        await world(t3);
        const bg = createWorker(t3.config, t3.db, memoryLog());
        await bg.worker.drain();
        await bg.stop();
        const [job] = await t3.db.query<{ last_error: string }>(
          sql`SELECT last_error FROM jobs WHERE kind = 'mail.send' AND last_error IS NOT NULL LIMIT 1`,
        );
        assert.match(job!.last_error, /certificate/i);
      } finally {
        await t3.close();
      }
    } finally {
      await m.close();
    }
  });

  test('smtps:// with the password in SMTP_PASSWORD_FILE', async () => {
    const m = await startMailApp({}, { tls: 'smtps', auth: { user: 'bugzot', pass: 'from-file' } });
    const dir = mkdtempSync(join(tmpdir(), 'bugzot-pw-'));
    try {
      writeFileSync(join(dir, 'pw'), 'from-file\n');
      const t2 = await startTestApp({
        SMTP_URL: m.smtp.url.replace(':from-file@', '@'),
        SMTP_PASSWORD_FILE: join(dir, 'pw'),
        SMTP_TLS_CA_FILE: m.smtp.caFile!,
        NOTIFY_BATCH_SECONDS: '0',
      });
      try {
        await world(t2);
        const bg = createWorker(t2.config, t2.db, memoryLog());
        await bg.worker.drain();
        await bg.stop();
        const mails = await m.smtp.waitFor(1);
        assert.ok(mails.every((x) => x.secure));
        assert.equal(m.smtp.authFailures, 0);
      } finally {
        await t2.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await m.close();
    }
  });

  test('two workers at once deliver each mail exactly once', async () => {
    const m = await startMailApp({ WORKER_CONCURRENCY: '3' });
    try {
      const w = await world(m.t);
      await m.drain();
      m.smtp.mails.length = 0;
      const a = m.worker();
      const b = m.worker();
      await Promise.all([a.worker.start(), b.worker.start()]);
      for (let i = 0; i < 15; i++) {
        await w.bug(`Twice ${i}`, { cc: [w.users.bob.id], assignee_id: w.users.admin.id });
      }
      await m.smtp.waitFor(30);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(m.smtp.mails.length, 30);
      assertNoDuplicates(m.smtp.mails);
    } finally {
      await m.close();
    }
  });

  test('a worker that died holding jobs: another takes them over when the lease runs out, no loss', async () => {
    const m = await startMailApp({ JOB_LEASE_SECONDS: '1' });
    try {
      const w = await world(m.t);
      await m.drain();
      m.smtp.mails.length = 0;
      for (let i = 0; i < 3; i++) await w.bug(`Orphan ${i}`, { cc: [w.users.bob.id] });
      // A worker claims the batch jobs, then dies without a word.
      const dead = await claimJobs(m.t.db, 'dead-worker', ['notify.batch'], 100, 1000);
      assert.equal(dead.length, 3);
      const bg = m.worker();
      await bg.worker.start();
      await m.smtp.waitFor(3, 10_000);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(m.smtp.mails.length, 3);
      assertNoDuplicates(m.smtp.mails);
    } finally {
      await m.close();
    }
  });

  test('bugzot worker killed mid-delivery and started again: no loss, no duplicate', async (t) => {
    if (testDbKind() !== 'postgres') {
      t.skip('a second process needs PostgreSQL (the PostgreSQL pass runs this)');
      return;
    }
    const m = await startMailApp();
    const dataDir = mkdtempSync(join(tmpdir(), 'bugzot-worker-'));
    const children: ChildProcess[] = [];
    const startWorker = () => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DATABASE_URL: m.t.testDb.url!,
        SMTP_URL: m.smtp.url,
        NOTIFY_BATCH_SECONDS: '0',
        JOB_LEASE_SECONDS: '1',
        WORKER_POLL_MS: '50',
        WORKER_CONCURRENCY: '2',
        LOG_LEVEL: 'silent',
        DATA_DIR: dataDir,
      };
      delete env['NODE_TEST_CONTEXT'];
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'worker'], {
        env,
        stdio: 'ignore',
      });
      children.push(child);
      return child;
    };
    try {
      const w = await world(m.t);
      await m.drain();
      m.smtp.mails.length = 0;
      for (let i = 0; i < 10; i++) {
        await w.bug(`Killed ${i}`, { cc: [w.users.bob.id], assignee_id: w.users.admin.id });
      }
      let held = false;
      m.smtp.hold(() => {
        held = true;
      });
      const first = startWorker();
      await until('a mail in flight', () => held, 30_000);
      const exited = new Promise((r) => first.once('exit', r));
      first.kill('SIGKILL');
      await exited;
      await new Promise((r) => setTimeout(r, 200));
      m.smtp.release();
      assert.equal(m.smtp.mails.length, 0, 'the mail in flight was not accepted');
      const second = startWorker();
      await m.smtp.waitFor(20, 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(m.smtp.mails.length, 20);
      assertNoDuplicates(m.smtp.mails);
      const stopped = new Promise<number | null>((r) => second.once('exit', (code) => r(code)));
      second.kill('SIGTERM');
      assert.equal(await stopped, 0, 'SIGTERM stops the worker cleanly');
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      await m.close();
    }
  });
});

describe('without SMTP_URL', () => {
  test('mails are written as .eml files in DATA_DIR/outbox and logged', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bugzot-outbox-'));
    const t = await startTestApp({ DATA_DIR: dataDir, NOTIFY_BATCH_SECONDS: '0' });
    try {
      const w = await world(t);
      const log = memoryLog();
      const bg = createWorker(t.config, t.db, log);
      assert.equal(bg.transport.kind, 'outbox');
      await bg.worker.drain();
      await bg.stop();
      const files = readdirSync(join(dataDir, 'outbox')).filter((f) => f.endsWith('.eml'));
      assert.ok(files.length > 0);
      const mails = await Promise.all(
        files.map((f) => simpleParser(readFileSync(join(dataDir, 'outbox', f)))),
      );
      const bob = mails.find(
        (x) =>
          x.subject ===
          `[Bug ${w.bugs.ccBob.id}] [CONFIDENTIAL] [Omega 1.0] New: Confidential with Bob on CC - NEW`,
      );
      assert.ok(bob, 'the confidential bug filed with bob on CC is in the outbox');
      assert.equal((bob.to as { value: { address: string }[] }).value[0]!.address, w.users.bob.email);
      const logged = log.lines.filter((l) => l.msg.includes('outbox'));
      assert.equal(logged.length, files.length);
    } finally {
      await t.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
