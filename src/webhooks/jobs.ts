/**
 * Webhook jobs.
 * - `webhook.fanout` (one per bug event, enqueued by recordEvent) writes one delivery row per active
 *   webhook subscribed to the event's types and product, then makes the first attempt of each itself, in
 *   parallel, with one payload per (owner, type), and records every outcome in one transaction. Only a
 *   failed attempt gets a job of its own: a `webhook.deliver` job, due after the first backoff step.
 *   (One job per delivery cost ~10 queue and DB round trips per delivery: see bench/README.md.)
 * - `webhook.deliver` (retries and manual redeliveries) makes one attempt at one delivery, and throws
 *   to be retried with backoff by the worker.
 * Every attempt checks at send time that the owner may see the bug (else the delivery is `skipped`),
 * builds the payload as the API presents the bug to the owner, signs it, POSTs it (10 s timeout, URL
 * re-checked), and logs it. After `disableAfterFailures` failures in a row the webhook is disabled with
 * the reason, and a notice to its owner is queued in the same transaction (notice.ts).
 */
import type { UserViewer } from '../access/index.ts';
import { loadEvents, type StoredBugEvent, WEBHOOK_FANOUT_JOB } from '../events/index.ts';
import { backoffMs, enqueue, type Job, type JobHandler, PermanentJobError } from '../jobs/index.ts';
import { type Db, type Queryable, sql } from '../platform/db.ts';
import { type AddressPolicy, addressPolicy, checkUrl } from './address.ts';
import { enqueueDisabledNotice } from './notice.ts';
import { buildPayload } from './payload.ts';
import { type Outcome, post } from './send.ts';
import { DELIVER_JOB, type WebhookEvent } from './service.ts';
import { signature } from './signing.ts';

/**
 * POSTs one fan-out makes at once (a webhook-heavy event must not open hundreds of sockets). With the
 * 10 s timeout, even ~400 webhooks that all time out stay within the job's lease (JOB_LEASE_SECONDS).
 */
const FANOUT_PARALLEL = 16;

export interface WebhookDeps {
  db: Db;
  allowedHosts: readonly string[];
  disableAfterFailures: number;
  /** Give-up window of one delivery's retries (default 24 h). */
  giveUpAfterMs?: number;
  /** First retry delay after a failed first attempt (JOB_RETRY_BASE_MS; default 30 s). */
  retryBaseMs?: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** The webhook event types one bug event produces. */
export function eventTypes(e: StoredBugEvent): WebhookEvent[] {
  if (e.kind !== 'bug.updated') return [e.kind];
  const types: WebhookEvent[] = ['bug.updated'];
  if (e.changes.some((c) => c.field === 'status' || c.field === 'resolution'))
    types.push('bug.status_changed');
  if (e.commentId !== null) types.push('comment.created');
  return types;
}

/** One delivery with its webhook and owner: what an attempt needs. */
interface Target {
  id: number;
  event_type: WebhookEvent;
  state: string;
  webhook_id: number;
  url: string;
  secret: string;
  active: boolean;
  failure_count: number;
  owner_id: number;
  owner_name: string;
  owner_email: string;
  owner_kind: string;
  owner_admin: boolean;
  owner_disabled: boolean;
  event_id: number;
}

const TARGET_COLUMNS = sql`d.id, d.event_type, d.state, d.event_id, w.id AS webhook_id, w.url, w.secret, w.active,
  w.failure_count,
  w.owner_id, u.name AS owner_name, u.email AS owner_email, u.kind AS owner_kind, u.is_admin AS owner_admin,
  u.disabled AS owner_disabled`;
const TARGET_FROM = sql`webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN users u ON u.id = w.owner_id`;

const ownerOf = (d: Target): UserViewer => ({
  kind: 'user',
  id: d.owner_id,
  name: d.owner_name,
  email: d.owner_email,
  isInternal: d.owner_kind === 'internal',
  isAdmin: d.owner_admin,
});

/** What one attempt came to. */
type Attempt =
  | { target: Target; skipped: string }
  | {
      target: Target;
      skipped?: undefined;
      outcome: Outcome;
      ok: boolean;
      error: string | null;
      refused: boolean;
    };

/** Payload bodies by (owner, type), built once per event however many webhooks an owner has. */
type PayloadCache = Map<string, Promise<string | undefined>>;

async function attempt(
  db: Queryable,
  policy: AddressPolicy,
  target: Target,
  event: StoredBugEvent | undefined,
  cache: PayloadCache,
): Promise<Attempt> {
  if (!target.active) return { target, skipped: 'webhook is disabled' };
  if (target.owner_disabled) return { target, skipped: 'webhook owner is disabled' };
  const key = `${target.owner_id}:${target.event_type}`;
  let building = cache.get(key);
  if (!building) {
    building = event
      ? buildPayload(db, ownerOf(target), event, target.event_type).then((p) => p && JSON.stringify(p))
      : Promise.resolve(undefined);
    cache.set(key, building);
  }
  const body = await building;
  if (!body) return { target, skipped: 'the webhook owner may not see this bug or comment' };

  const t = Math.floor(Date.now() / 1000);
  let outcome: Outcome;
  let refused = false;
  try {
    const url = await checkUrl(policy, target.url);
    outcome = await post(policy, url, body, {
      'user-agent': 'Bugzot-Webhook/1',
      'bugzot-event': target.event_type,
      'bugzot-delivery': String(target.id),
      'bugzot-signature': signature(target.secret, t, body),
    });
    // A URL the allow-list refuses (its host now resolves to an internal address) is not worth retrying.
    refused = outcome.error?.includes('is not allowed') ?? false;
  } catch (err) {
    outcome = { error: err instanceof Error ? err.message : String(err), durationMs: 0 };
    refused = true;
  }
  const ok = outcome.status !== undefined && outcome.status >= 200 && outcome.status < 300;
  return { target, outcome, ok, error: ok ? null : (outcome.error ?? `HTTP ${outcome.status}`), refused };
}

/**
 * Logs attempts and updates their webhooks' failure counts, in the caller's transaction. Returns the
 * ids of the webhooks this disabled (their owner's notice is queued here too).
 */
async function record(tx: Queryable, deps: WebhookDeps, attempts: readonly Attempt[]): Promise<Set<number>> {
  const skipped = attempts.filter((a) => a.skipped !== undefined);
  const sent = attempts.flatMap((a) => (a.skipped === undefined ? [a] : []));
  if (skipped.length) {
    await tx.query(sql`
      UPDATE webhook_deliveries d SET state = 'skipped', error = s.why, attempted_at = now()
      FROM unnest(${skipped.map((a) => a.target.id)}::bigint[], ${skipped.map((a) => a.skipped)}::text[])
        AS s(id, why)
      WHERE d.id = s.id`);
  }
  if (sent.length === 0) return new Set();
  await tx.query(sql`
    UPDATE webhook_deliveries d SET state = s.state, attempt = d.attempt + 1, status_code = s.status_code,
      duration_ms = s.duration_ms, response_excerpt = s.excerpt, error = s.error, attempted_at = now()
    FROM unnest(${sent.map((a) => a.target.id)}::bigint[], ${sent.map((a) => (a.ok ? 'delivered' : 'failed'))}::text[],
      ${sent.map((a) => a.outcome.status ?? null)}::int[], ${sent.map((a) => a.outcome.durationMs)}::int[],
      ${sent.map((a) => a.outcome.excerpt ?? null)}::text[], ${sent.map((a) => a.error)}::text[])
      AS s(id, state, status_code, duration_ms, excerpt, error)
    WHERE d.id = s.id`);
  // Only webhooks that had failures need their count reset (most have none: no write, no round trip).
  const succeeded = [
    ...new Set(sent.filter((a) => a.ok && a.target.failure_count > 0).map((a) => a.target.webhook_id)),
  ];
  if (succeeded.length) {
    await tx.query(sql`
      UPDATE webhooks SET failure_count = 0 WHERE id = ANY(${succeeded}::int[]) AND failure_count <> 0`);
  }
  const disabled = new Set<number>();
  for (const a of sent) {
    if (a.ok || disabled.has(a.target.webhook_id)) continue;
    const [w] = await tx.query<{ failure_count: number }>(sql`
      UPDATE webhooks SET failure_count = failure_count + 1 WHERE id = ${a.target.webhook_id}
      RETURNING failure_count`);
    if ((w?.failure_count ?? 0) < deps.disableAfterFailures) continue;
    const reason = `${deps.disableAfterFailures} deliveries in a row failed; last: ${a.error}`.slice(0, 1000);
    const [off] = await tx.query<{ disabled_at: Date }>(sql`
      UPDATE webhooks SET active = false, disabled_at = now(), disabled_reason = ${reason}
      WHERE id = ${a.target.webhook_id} AND active RETURNING disabled_at`);
    if (!off) continue;
    disabled.add(a.target.webhook_id);
    await enqueueDisabledNotice(tx, {
      webhookId: a.target.webhook_id,
      deliveryId: a.target.id,
      disabledAt: off.disabled_at.toISOString(),
    });
    deps.log.warn(
      { webhook: a.target.webhook_id, owner: a.target.owner_id, ownerEmail: a.target.owner_email, reason },
      'webhooks: webhook disabled after repeated failures; its owner is told by mail and must re-enable it',
    );
  }
  return disabled;
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

async function runFanout(deps: WebhookDeps, policy: AddressPolicy, job: Job): Promise<undefined> {
  const { db } = deps;
  const eventId = Number(job.payload.eventId);
  const [event] = await loadEvents(db, [eventId]);
  if (!event) return undefined;
  // One statement: the new delivery rows, plus (on a re-run of this job after a crash) those not yet
  // attempted. A CTE's inserted rows are invisible to the rest of the statement: the two parts never overlap.
  const targets = await db.query<Target>(sql`
    WITH d AS (
      INSERT INTO webhook_deliveries (webhook_id, event_id, event_type)
      SELECT w.id, ${eventId}, t.type
      FROM webhooks w CROSS JOIN unnest(${eventTypes(event)}::text[]) AS t(type) JOIN bugs b ON b.id = ${event.bugId}
      WHERE w.active AND t.type = ANY(w.events)
        AND w.created_at <= (SELECT created_at FROM bug_events WHERE id = ${eventId})
        AND (w.product_ids IS NULL OR b.product_id = ANY(w.product_ids))
      ON CONFLICT (webhook_id, event_id, event_type) WHERE redelivery_of IS NULL DO NOTHING
      RETURNING id, webhook_id, event_id, event_type, state)
    SELECT ${TARGET_COLUMNS} FROM d JOIN webhooks w ON w.id = d.webhook_id JOIN users u ON u.id = w.owner_id
    UNION ALL
    SELECT ${TARGET_COLUMNS} FROM ${TARGET_FROM}
    WHERE d.event_id = ${eventId} AND d.redelivery_of IS NULL AND d.state = 'pending' AND d.attempt = 0
    ORDER BY id`);
  if (targets.length === 0) return undefined;
  const cache: PayloadCache = new Map();
  const attempts = await inParallel(targets, FANOUT_PARALLEL, (t) => attempt(db, policy, t, event, cache));
  const retryAt = new Date(Date.now() + backoffMs(1, deps.retryBaseMs ?? 30_000, 3600_000));
  // All delivered (the usual case): one UPDATE, no transaction needed.
  if (attempts.every((a) => a.skipped === undefined && a.ok && a.target.failure_count === 0)) {
    await record(db, deps, attempts);
    return undefined;
  }
  await db.transaction(async (tx) => {
    const disabled = await record(tx, deps, attempts);
    for (const a of attempts) {
      if (a.skipped !== undefined || a.ok || a.refused || disabled.has(a.target.webhook_id)) continue;
      await enqueue(tx, {
        kind: DELIVER_JOB,
        payload: { deliveryId: a.target.id },
        runAt: retryAt,
        idempotencyKey: `delivery:${a.target.id}`,
      });
    }
  });
  return undefined;
}

async function runDeliver(deps: WebhookDeps, policy: AddressPolicy, job: Job): Promise<undefined> {
  const { db } = deps;
  const deliveryId = Number(job.payload.deliveryId);
  const [target] = await db.query<Target>(
    sql`SELECT ${TARGET_COLUMNS} FROM ${TARGET_FROM} WHERE d.id = ${deliveryId}`,
  );
  if (!target || target.state === 'delivered' || target.state === 'skipped') return undefined;
  const [event] = await loadEvents(db, [Number(target.event_id)]);
  const a = await attempt(db, policy, target, event, new Map());
  const disabled = await db.transaction((tx) => record(tx, deps, [a]));
  if (a.skipped !== undefined || a.ok || disabled.size) return undefined;
  if (a.refused) throw new PermanentJobError(a.error ?? 'URL refused');
  throw new Error(a.error ?? 'delivery failed');
}

/** The job handlers of webhooks, for `createWorker`. */
export function webhookHandlers(deps: WebhookDeps): JobHandler[] {
  const policy = addressPolicy(deps.allowedHosts);
  const giveUpAfterMs = deps.giveUpAfterMs ?? 24 * 3600_000;
  return [
    { kind: WEBHOOK_FANOUT_JOB, run: (job) => runFanout(deps, policy, job), giveUpAfterMs },
    { kind: DELIVER_JOB, run: (job) => runDeliver(deps, policy, job), giveUpAfterMs },
  ];
}
