/**
 * Fixture of the notification tests: a test app wired to a real SMTP server, a worker built exactly as
 * `serve` builds it, and helpers to change bugs over HTTP and read what arrived.
 */
import type { Config } from '../../src/config.ts';
import { type BackgroundWorker, createWorker } from '../../src/notify/index.ts';
import { sql } from '../../src/platform/db.ts';
import { type Json, startTestApp, type TestApp, type TestUser } from './app.ts';
import { startSmtp, type TestSmtp } from './smtp.ts';

/** A logger that keeps what the worker said (for assertions) and prints nothing. */
export function memoryLog() {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg: string) => lines.push({ level, msg, obj });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

/** A test app whose mails go to a fresh SMTP server. */
export interface MailApp {
  t: TestApp;
  smtp: TestSmtp;
  log: ReturnType<typeof memoryLog>;
  /** Builds a worker (not started) the way `serve` does. */
  worker(config?: Config): BackgroundWorker;
  /** Runs every due job with one worker, then stops it. */
  drain(): Promise<number>;
  patch(bugId: number, body: object, as: TestUser): Promise<Json>;
  comment(bugId: number, body: string, as: TestUser): Promise<Json>;
  close(): Promise<void>;
}

/** Starts the app and the SMTP server; `env` adds to the defaults (batching off, fast retries). */
export async function startMailApp(
  env: Record<string, string> = {},
  smtpOpts?: Parameters<typeof startSmtp>[0],
): Promise<MailApp> {
  const smtp = await startSmtp(smtpOpts);
  const t = await startTestApp({
    SMTP_URL: smtp.url,
    NOTIFY_BATCH_SECONDS: '0',
    JOB_RETRY_BASE_MS: '50',
    WORKER_POLL_MS: '20',
    BASE_URL: 'http://bugs.example.test',
    MAIL_FROM: 'Bugzot <bugzot@example.test>',
    ...env,
  });
  const log = memoryLog();
  const workers: BackgroundWorker[] = [];
  const m: MailApp = {
    t,
    smtp,
    log,
    worker(config = t.config) {
      const w = createWorker(config, t.db, log);
      workers.push(w);
      return w;
    },
    async drain() {
      const w = createWorker(t.config, t.db, log);
      try {
        return await w.worker.drain();
      } finally {
        await w.stop();
      }
    },
    async patch(bugId, body, as) {
      const res = await t.request({ method: 'PATCH', url: `/api/v1/bugs/${bugId}`, payload: body, as });
      if (res.statusCode !== 200) throw new Error(`PATCH bug ${bugId} -> ${res.statusCode} ${res.body}`);
      return res.data;
    },
    async comment(bugId, body, as) {
      const res = await t.request({
        method: 'POST',
        url: `/api/v1/bugs/${bugId}/comments`,
        payload: { body },
        as,
      });
      if (res.statusCode !== 201) throw new Error(`comment on ${bugId} -> ${res.statusCode} ${res.body}`);
      return res.data;
    },
    async close() {
      for (const w of workers) await w.stop();
      await t.close();
      await smtp.close();
    },
  };
  return m;
}

/** Counts rows of a table (optionally of one job kind). */
export async function count(t: TestApp, table: 'jobs' | 'bug_events', kind?: string): Promise<number> {
  const q =
    table === 'jobs'
      ? sql`SELECT count(*)::int AS n FROM jobs WHERE ${kind ?? null}::text IS NULL OR kind = ${kind ?? null}`
      : sql`SELECT count(*)::int AS n FROM bug_events`;
  const [row] = await t.db.query<{ n: number }>(q);
  return row!.n;
}

/** Waits until `check` holds (polling), or fails naming `what`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 15_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
