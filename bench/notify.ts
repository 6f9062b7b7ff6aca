/**
 * Mail benchmark (issue 6): BENCH_CHANGES bug changes (default 10,000), each mailed to 5 recipients
 * (reporter, assignee, 3 on CC), through the real pipeline — updateBug writes the change and its outbox
 * row, workers gather and send — into a local SMTP sink (smtp-server) on 127.0.0.1. Prints mails per
 * second and the delay from the change's commit to the sink's acceptance (p50/p99).
 *
 * Run: node --import tsx bench/notify.ts. Environment: BENCH_CHANGES, BENCH_BUGS (default 2,000),
 * BENCH_WORKERS (workers in this process, default 2), BENCH_CONCURRENCY (jobs per worker, default 8),
 * BENCH_RATE (changes per second to pace at; default unpaced),
 * BENCH_DATABASE_URL (a superuser maintenance URL; default: a throwaway PostgreSQL cluster).
 * Batching is off (NOTIFY_BATCH_SECONDS=0); changes to one bug made while its batch job waits still share
 * a mail, so the figures count (change, recipient) notifications delivered as well as mails.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { BugCache, type BugsContext, fileBug, updateBug } from '../src/bugs/index.ts';
import { loadConfig } from '../src/config.ts';
import { createWorker } from '../src/notify/index.ts';
import { openPostgres, sql } from '../src/platform/db.ts';
import { Invalidation } from '../src/platform/invalidation.ts';
import { migrate } from '../src/platform/migrate.ts';
import { createUser, toViewer } from '../src/users/index.ts';
import { benchDatabase } from './lib.ts';

const changes = Number(process.env['BENCH_CHANGES'] ?? 10_000);
const bugCount = Number(process.env['BENCH_BUGS'] ?? 2000);
const workers = Number(process.env['BENCH_WORKERS'] ?? 2);
const concurrency = Number(process.env['BENCH_CONCURRENCY'] ?? 8);
/** Changes per second to aim at (0: as fast as the producers go, which measures the backlog too). */
const rate = Number(process.env['BENCH_RATE'] ?? 0);
const RECIPIENTS = 5;

// The sink: counts mails and notes when each arrived, keyed by its batch (the first event id).
const arrivals: { event: number; at: number }[] = [];
const sink = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  logger: false,
  onData(stream, _session, callback) {
    let head = '';
    stream.on('data', (c: Buffer) => {
      if (head.length < 4096) head += c.toString('latin1');
    });
    stream.on('end', () => {
      const m = /^Message-ID: <bug-\d+-\d+-(\d+)@/im.exec(head);
      if (m) arrivals.push({ event: Number(m[1]), at: Date.now() });
      callback();
    });
  },
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const port = (sink.server.address() as AddressInfo).port;

const bench = await benchDatabase();
const db = await openPostgres(bench.url, 20);
try {
  await migrate(db);
  const config = loadConfig({
    NODE_ENV: 'production',
    DATABASE_URL: bench.url,
    SMTP_URL: `smtp://127.0.0.1:${port}?maxConnections=${concurrency}`,
    NOTIFY_BATCH_SECONDS: '0',
    WORKER_CONCURRENCY: String(concurrency),
    WORKER_POLL_MS: '200',
    LOG_LEVEL: 'silent',
  });
  const mk = (name: string, kind: 'internal' | 'external' = 'internal') =>
    createUser(db, {
      email: `${name}@bench.test`,
      name,
      password: 'bench-password-123',
      kind,
      isAdmin: name === 'admin',
    });
  const admin = toViewer(await mk('admin'));
  const reporter = toViewer(await mk('reporter'));
  const assignee = await mk('assignee');
  const cc = [await mk('cc1', 'external'), await mk('cc2', 'external'), await mk('cc3', 'external')];
  const [p] = await db.query<{ id: number }>(
    sql`INSERT INTO products (name, is_released) VALUES ('Omega', true) RETURNING id`,
  );
  const [v] = await db.query<{ id: number }>(
    sql`INSERT INTO versions (product_id, name, is_released) VALUES (${p!.id}, '3.2', true) RETURNING id`,
  );
  const [c] = await db.query<{ id: number }>(
    sql`INSERT INTO components (product_id, name) VALUES (${p!.id}, 'Core') RETURNING id`,
  );
  const bus = new Invalidation();
  await bus.start(db);
  const ctx: BugsContext = { db, bus, cache: new BugCache(bus) };
  const bugs: number[] = [];
  for (let i = 0; i < bugCount; i++) {
    const bug = await fileBug(ctx, reporter, {
      productId: p!.id,
      versionId: v!.id,
      componentId: c!.id,
      summary: `Bench bug ${i}`,
      assigneeId: assignee.id,
      cc: [],
    });
    bugs.push(bug.id);
  }
  // CC added by SQL so filing did not need staff rights for others; the filing mails are not measured.
  await db.query(sql`INSERT INTO bug_cc (bug_id, user_id)
    SELECT b, u FROM unnest(${bugs}::int[]) b, unnest(${cc.map((x) => x.id)}::int[]) u`);
  await db.query(sql`DELETE FROM jobs`);
  await db.query(sql`UPDATE bug_events SET batched_by = 0`);

  const log = { info() {}, warn() {}, error() {} };
  const running = Array.from({ length: workers }, () => createWorker(config, db, log));
  await Promise.all(running.map((w) => w.worker.start()));

  process.stderr.write(
    `making ${changes} changes on ${bugCount} bugs, ${workers}x${concurrency} workers...\n`,
  );
  const started = Date.now();
  const producers = 8;
  let next = 0;
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (next < changes) {
        const i = next++;
        if (rate > 0) {
          const due = started + (i * 1000) / rate;
          if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        }
        await updateBug(ctx, admin, bugs[i % bugs.length]!, { comment: { body: `Change ${i}` } });
      }
    }),
  );
  const produced = Date.now();
  // Done when every event was gathered into a mail batch and no mail job is left waiting or running (webhook
  // fan-out jobs, also queued per event, are not this bench's: no webhook exists and no worker here runs them).
  process.stderr.write(`changes made in ${(produced - started) / 1000} s; waiting for delivery\n`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const [left] = await db.query<{ n: number }>(sql`
      SELECT (SELECT count(*) FROM jobs WHERE state IN ('pending', 'running') AND kind NOT LIKE 'webhook.%')
           + (SELECT count(*) FROM bug_events WHERE batched_by IS NULL) AS n`);
    const [sent] = await db.query<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM jobs WHERE kind = 'mail.send' AND state = 'done'`,
    );
    if (Number(left!.n) === 0 && arrivals.length >= sent!.n) break;
    if (Date.now() - produced > 600_000) {
      const stuck = await db.query(sql`
        SELECT kind, state, count(*)::int AS n FROM jobs WHERE state <> 'done' GROUP BY 1, 2`);
      throw new Error(`not delivered within 10 minutes: ${JSON.stringify({ left, sent, stuck })}`);
    }
    if (process.env['BENCH_DEBUG'] && Date.now() % 5000 < 100)
      process.stderr.write(`left ${left!.n}, sent ${sent!.n}, arrived ${arrivals.length}\n`);
  }
  const finished = Date.now();
  await Promise.all(running.map((w) => w.stop()));
  await bus.close();

  // Each mail covers the events of its batch: the delay of every (change, recipient) pair is counted.
  const events = await db.query<{ id: number | string; batch: number | string; at: Date }>(
    sql`SELECT id, batched_by AS batch, created_at AS at FROM bug_events WHERE batched_by <> 0`,
  );
  const batchOf = new Map(events.map((e) => [Number(e.id), Number(e.batch)]));
  const inBatch = new Map<number, number[]>();
  for (const e of events) {
    const list = inBatch.get(Number(e.batch)) ?? [];
    list.push(e.at.getTime());
    inBatch.set(Number(e.batch), list);
  }
  const delays = arrivals
    .flatMap((a) => (inBatch.get(batchOf.get(a.event) ?? -1) ?? []).map((t) => a.at - t))
    .sort((a, b) => a - b);
  const pct = (q: number) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))] ?? 0;
  const [notDone] = await db.query<{ n: number }>(
    sql`SELECT count(*)::int AS n FROM jobs WHERE kind = 'mail.send' AND state <> 'done'`,
  );
  console.log(
    JSON.stringify(
      {
        changes,
        rate_aimed: rate || 'unpaced',
        recipients_per_change: RECIPIENTS,
        change_notifications_delivered: delays.length,
        change_notifications_expected: changes * RECIPIENTS,
        mails_received: arrivals.length,
        mail_jobs_not_done: notDone!.n,
        changes_per_s: Math.round(changes / ((produced - started) / 1000)),
        mails_per_s: Math.round(arrivals.length / ((finished - started) / 1000)),
        change_notifications_per_s: Math.round(delays.length / ((finished - started) / 1000)),
        delay_ms: { p50: pct(0.5), p99: pct(0.99), max: delays.at(-1) ?? 0 },
        seconds: (finished - started) / 1000,
      },
      null,
      2,
    ),
  );
} finally {
  await db.close();
  await bench.stop();
  sink.close();
}
