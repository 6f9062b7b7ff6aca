/**
 * Email notifications end to end: changes made over HTTP, the worker built as `serve` builds it, mail
 * read back from a real SMTP server on 127.0.0.1. Recipients per role and preference, visibility at send
 * time, threading and filter headers, batching, and the outbox committing with the change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { recordEvent } from '../src/events/index.ts';
import { enqueue } from '../src/jobs/index.ts';
import { sql } from '../src/platform/db.ts';
import { type TestUser, world } from './helpers/app.ts';
import { count, type MailApp, startMailApp } from './helpers/notify.ts';
import type { ReceivedMail } from './helpers/smtp.ts';

const to = (mails: ReceivedMail[]) => mails.flatMap((m) => m.to).sort();

describe('email notifications', () => {
  let m: MailApp;
  let w: Awaited<ReturnType<typeof world>>;
  let u: Record<'admin' | 'dev' | 'alice' | 'bob', TestUser>;

  before(async () => {
    m = await startMailApp();
    w = await world(m.t);
    u = w.users;
    await m.drain();
  });
  after(() => m.close());

  /** Runs the jobs, returns what arrived since the last call. */
  async function delivered(): Promise<ReceivedMail[]> {
    await m.drain();
    return m.smtp.mails.splice(0);
  }

  test('a new bug mails its assignee and CC, not the reporter; the mail starts the thread', async () => {
    m.smtp.mails.length = 0;
    const bug = await w.bug('Crash on start', { assignee_id: u.admin.id, cc: [u.bob.id] });
    const mails = await delivered();
    assert.deepEqual(to(mails), [u.admin.email, u.bob.email].sort());
    const mail = mails.find((x) => x.to[0] === u.admin.email)!;
    assert.equal(mail.parsed.subject, `[Bug ${bug.id}] [Omega 1.0] New: Crash on start - NEW`);
    assert.equal(mail.parsed.messageId, `<bug-${bug.id}-${u.admin.id}@bugs.example.test>`);
    assert.equal(mail.parsed.inReplyTo, undefined);
    assert.equal(mail.header('x-bugzot-reason'), 'AssignedTo');
    assert.match(mail.raw, /^List-Unsubscribe: <http:\/\/bugs\.example\.test\/preferences\/email>$/m);
    assert.equal(mail.from, 'bugzot@example.test');
    assert.match(mail.parsed.text ?? '', /Dev filed this bug/);
    assert.match(mail.parsed.text ?? '', new RegExp(`http://bugs.example.test/bugs/${bug.id}`));
    assert.match(String(mail.parsed.html), /<a href="http:\/\/bugs.example.test\/bugs\/\d+">Bug \d+<\/a>/);
    assert.equal(mails.find((x) => x.to[0] === u.bob.email)!.header('x-bugzot-reason'), 'CC');
  });

  test('a change mails reporter and CC with what changed and the comment, threaded under the bug', async () => {
    const bug = await w.bug('Freezes on resume', { cc: [u.bob.id] });
    await delivered();
    await m.patch(
      bug.id,
      { status: 'ASSIGNED', assignee_id: u.admin.id, comment: { body: 'Looking <now>' } },
      u.admin,
    );
    const mails = await delivered();
    assert.deepEqual(to(mails), [u.bob.email, u.dev.email].sort(), 'admin made the change: not mailed');
    const mail = mails.find((x) => x.to[0] === u.dev.email)!;
    assert.equal(mail.parsed.subject, `[Bug ${bug.id}] [Omega 1.0] Freezes on resume - ASSIGNED`);
    assert.equal(mail.parsed.inReplyTo, `<bug-${bug.id}-${u.dev.id}@bugs.example.test>`);
    assert.deepEqual(mail.parsed.references, `<bug-${bug.id}-${u.dev.id}@bugs.example.test>`);
    assert.match(
      mail.parsed.messageId ?? '',
      new RegExp(`^<bug-${bug.id}-${u.dev.id}-\\d+@bugs.example.test>$`),
    );
    assert.equal(mail.header('x-bugzot-reason'), 'Reporter');
    assert.equal(mail.header('x-bugzot-changed-fields'), 'assignee status');
    const text = mail.parsed.text ?? '';
    assert.match(text, /status\s*: NEW -> ASSIGNED/);
    assert.match(text, /assignee: \(none\) -> Admin/);
    assert.match(text, /Looking <now>/);
    assert.match(String(mail.parsed.html), /Looking &lt;now/, 'HTML part escapes user text');
    assert.doesNotMatch(String(mail.parsed.html), /<now>/);
  });

  test('a confidential bug says so in the subject', async () => {
    const bug = await w.bug('Leaks keys', { confidential: true, cc: [u.bob.id] });
    const mails = await delivered();
    assert.deepEqual(to(mails), [u.bob.email]);
    assert.equal(
      mails[0]!.parsed.subject,
      `[Bug ${bug.id}] [CONFIDENTIAL] [Omega 1.0] New: Leaks keys - NEW`,
    );
    assert.equal(mails[0]!.header('x-bugzot-confidential'), 'yes');
  });

  test('watchers of a product hear of its bugs; made confidential before sending, they hear nothing', async () => {
    const watch = await m.t.request({
      method: 'POST',
      url: '/api/v1/me/watches',
      payload: { product_id: w.products.omega.id },
      as: u.alice,
    });
    assert.equal(watch.statusCode, 201, watch.body);
    // A bug on an unreleased version: alice may not see it, so watching does not tell her of it.
    await w.bug('Beta crash', { version_id: w.versions.omegaBeta.id });
    assert.deepEqual(to(await delivered()), []);
    const bug = await w.bug('Watched crash', { cc: [u.bob.id] });
    let mails = await delivered();
    assert.deepEqual(to(mails), [u.alice.email, u.bob.email].sort());
    assert.equal(mails.find((x) => x.to[0] === u.alice.email)!.header('x-bugzot-reason'), 'Watcher');

    // The comment is made while alice may see the bug; it becomes confidential before the worker runs.
    await m.comment(bug.id, 'a detail', u.dev);
    await m.patch(bug.id, { confidential: true }, u.admin);
    mails = await delivered();
    assert.ok(mails.length > 0);
    assert.ok(!to(mails).includes(u.alice.email), 'alice may no longer see the bug: no mail');
    assert.ok(mails.every((x) => x.parsed.subject?.includes('[CONFIDENTIAL]')));
    await m.t.request({ method: 'DELETE', url: `/api/v1/me/watches/${watch.data.id}`, as: u.alice });
  });

  test('someone removed from the CC of a confidential bug before sending gets nothing', async () => {
    const bug = w.bugs.ccBob;
    await m.comment(bug.id, 'secret detail', u.dev);
    await m.patch(bug.id, { cc: { remove: [u.bob.id] } }, u.admin);
    const mails = await delivered();
    assert.ok(!to(mails).includes(u.bob.email));
  });

  test('a disabled account gets nothing', async () => {
    const carol = await m.t.user({ kind: 'external', name: 'Carol' });
    const bug = await w.bug('Carol follows this', { cc: [carol.id] });
    await delivered();
    await m.comment(bug.id, 'news', u.dev);
    const off = await m.t.request({
      method: 'PATCH',
      url: `/api/v1/users/${carol.id}`,
      payload: { disabled: true },
      as: u.admin,
    });
    assert.equal(off.statusCode, 200, off.body);
    assert.ok(!to(await delivered()).includes(carol.email));
  });

  test('visibility is checked again when the mail itself is sent (after SMTP refusals)', async () => {
    const dora = await m.t.user({ kind: 'external', name: 'Dora' });
    const bug = await w.bug('Dora on CC', { confidential: true, cc: [dora.id] });
    await delivered();
    m.smtp.refuse();
    await m.comment(bug.id, 'first try fails', u.dev);
    await m.drain();
    assert.ok(m.smtp.refused > 0);
    await m.patch(bug.id, { cc: { remove: [dora.id] } }, u.admin);
    m.smtp.accept();
    const mails: ReceivedMail[] = [];
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50)); // past the retry delay
      mails.push(...(await delivered()));
      const [left] = await m.t.db.query<{ n: number }>(
        sql`SELECT count(*)::int AS n FROM jobs WHERE kind = 'mail.send' AND state <> 'done'`,
      );
      if (left!.n === 0) break;
    }
    // Only the reporter hears of the CC change; dora's waiting mail was dropped when it was retried.
    assert.deepEqual(to(mails), [u.dev.email]);
    assert.ok(!to(mails).includes(dora.email), 'dora lost access while the mail waited');
    assert.ok(
      m.log.lines.some(
        (l) => l.msg.startsWith('mail skipped') && (l.obj as { user?: number }).user === dora.id,
      ),
    );
  });

  test('own changes are not mailed by default, and are when asked for', async () => {
    const bug = await w.bug('Own changes');
    await delivered();
    await m.comment(bug.id, 'note to self', u.dev);
    assert.deepEqual(to(await delivered()), []);
    const put = await m.t.request({
      method: 'PUT',
      url: '/api/v1/me/email-preferences',
      payload: { mail_own_changes: true },
      as: u.dev,
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.data.mail_own_changes, true);
    await m.comment(bug.id, 'another note', u.dev);
    assert.deepEqual(to(await delivered()), [u.dev.email]);
    await m.t.request({
      method: 'PUT',
      url: '/api/v1/me/email-preferences',
      payload: { mail_own_changes: false },
      as: u.dev,
    });
  });

  test('preferences per role and event are respected', async () => {
    const bug = await w.bug('Prefs', { cc: [u.bob.id] });
    await delivered();
    const put = await m.t.request({
      method: 'PUT',
      url: '/api/v1/me/email-preferences',
      payload: { matrix: { cc: { comment: false } } },
      as: u.bob,
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.data.matrix.cc.comment, false);
    assert.equal(put.data.matrix.cc.status, true);
    assert.equal(put.data.matrix.reporter.comment, true);
    await m.comment(bug.id, 'bob does not want this', u.admin);
    assert.deepEqual(to(await delivered()), [u.dev.email]);
    await m.patch(bug.id, { status: 'ASSIGNED' }, u.admin);
    assert.deepEqual(to(await delivered()), [u.bob.email, u.dev.email].sort());
    await m.t.request({
      method: 'PUT',
      url: '/api/v1/me/email-preferences',
      payload: { matrix: { cc: { comment: true } } },
      as: u.bob,
    });
  });

  test('private comments are not mailed to external users', async () => {
    const bug = await w.bug('Private note', { cc: [u.bob.id], assignee_id: u.admin.id });
    await delivered();
    await m.comment(bug.id, 'staff only', u.dev);
    await m.t.request({
      method: 'POST',
      url: `/api/v1/bugs/${bug.id}/comments`,
      payload: { body: 'internal musing', is_private: true },
      as: u.dev,
    });
    const mails = await delivered();
    const bobs = mails.filter((x) => x.to[0] === u.bob.email);
    assert.ok(bobs.every((x) => !(x.parsed.text ?? '').includes('internal musing')));
    const admins = mails.filter((x) => x.to[0] === u.admin.email);
    assert.ok(admins.some((x) => (x.parsed.text ?? '').includes('internal musing')));
  });

  test('the outbox row commits with the change, and a refused change leaves no event and no job', async () => {
    const bug = w.bugs.public;
    const events = await count(m.t, 'bug_events');
    const jobs = await count(m.t, 'jobs');
    const bad = await m.t.request({
      method: 'PATCH',
      url: `/api/v1/bugs/${bug.id}`,
      payload: { status: 'VERIFIED', comment: { body: 'x' } },
      as: u.admin,
    });
    assert.equal(bad.statusCode, 422);
    assert.equal(await count(m.t, 'bug_events'), events);
    assert.equal(await count(m.t, 'jobs'), jobs);
    // A transaction that records an event and then fails leaves neither.
    await assert.rejects(
      m.t.db.transaction(async (tx) => {
        await recordEvent(tx, { kind: 'comment.created', bugId: bug.id, actorId: u.dev.id });
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await count(m.t, 'bug_events'), events);
    assert.equal(await count(m.t, 'jobs'), jobs);
    await m.comment(bug.id, 'this one counts', u.admin);
    assert.equal(await count(m.t, 'bug_events'), events + 1);
    const [ev] = await m.t.db.query<{ kind: string }>(
      sql`SELECT kind FROM bug_events ORDER BY id DESC LIMIT 1`,
    );
    assert.equal(ev!.kind, 'comment.created');
    await delivered();
  });

  test('jobs run again after a crash (completion lost) send nothing twice', async () => {
    const bug = await w.bug('Crash between commit and done', { cc: [u.bob.id] });
    await delivered();
    await m.comment(bug.id, 'once only', u.admin);
    assert.deepEqual(to(await delivered()), [u.bob.email, u.dev.email].sort());
    // As if the workers died after their work committed but before the jobs were marked done.
    await m.t.db.query(sql`UPDATE jobs SET state = 'pending', run_at = now()
      WHERE kind = 'notify.batch' AND payload->>'bugId' = ${String(bug.id)}`);
    assert.deepEqual(await delivered(), [], 'the batch found its events taken: no new mail jobs');
    const [mailJobs] = await m.t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM jobs
      WHERE kind = 'mail.send' AND payload->>'bugId' = ${String(bug.id)}`);
    const again = await m.t.db.transaction(async (tx) => {
      const [j] = await tx.query<{
        idempotency_key: string;
        payload: object;
      }>(sql`SELECT idempotency_key, payload
        FROM jobs WHERE kind = 'mail.send' AND payload->>'bugId' = ${String(bug.id)} LIMIT 1`);
      return enqueue(tx, {
        kind: 'mail.send',
        payload: { ...j!.payload },
        idempotencyKey: j!.idempotency_key,
      });
    });
    assert.equal(again, null, 'a mail job with the same recipient and change is refused');
    const [after] = await m.t.db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM jobs
      WHERE kind = 'mail.send' AND payload->>'bugId' = ${String(bug.id)}`);
    assert.equal(after!.n, mailJobs!.n);
  });

  test('attachment events are mailed too', async () => {
    const bug = await w.bug('With attachment', { cc: [u.bob.id] });
    await delivered();
    await m.t.db.transaction((tx) =>
      recordEvent(tx, {
        kind: 'attachment.created',
        bugId: bug.id,
        actorId: u.admin.id,
        attachmentId: 987654,
      }),
    );
    const mails = await delivered();
    assert.deepEqual(to(mails), [u.bob.email, u.dev.email].sort());
    assert.match(mails[0]!.parsed.text ?? '', /added attachment 987654/);
  });
});

describe('batching', () => {
  let m: MailApp;
  before(async () => {
    m = await startMailApp({ NOTIFY_BATCH_SECONDS: '4' });
  });
  after(() => m.close());

  test("one person's changes to one bug within the window go out as one mail", async () => {
    const w = await world(m.t);
    const { admin, dev, bob } = w.users;
    const bug = await w.bug('Batch me', { cc: [bob.id] });
    const first = Date.now();
    await m.comment(bug.id, 'first', admin);
    await m.patch(bug.id, { severity: 'major' }, admin);
    await m.patch(bug.id, { status: 'ASSIGNED', comment: { body: 'second' } }, admin);
    await m.drain();
    const fromAdmin = () =>
      m.smtp.mails.filter(
        (x) => x.header('x-bugzot-bug-id') === String(bug.id) && x.header('x-bugzot-who') === 'Admin',
      );
    if (Date.now() - first < 3500)
      assert.equal(fromAdmin().length, 0, 'still inside the window: nothing sent yet');
    await new Promise((r) => setTimeout(r, Math.max(0, first + 4300 - Date.now())));
    await m.drain();
    const batch = fromAdmin();
    // dev (reporter) and bob (CC): one mail each for admin's three changes.
    assert.deepEqual(to(batch), [bob.email, dev.email].sort());
    const text = batch[0]!.parsed.text ?? '';
    assert.match(text, /first/);
    assert.match(text, /second/);
    assert.match(text, /severity\s*: normal -> major/);
    assert.match(text, /status\s*: NEW -> ASSIGNED/);
    assert.equal(batch[0]!.header('x-bugzot-changed-fields'), 'severity status');
  });
});
