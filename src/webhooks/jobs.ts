/**
 * Webhook jobs. `webhook.fanout` (one per bug event, enqueued by recordEvent): one delivery row and one
 * `webhook.deliver` job per active webhook subscribed to the event's types and product. `webhook.deliver`:
 * checks at send time that the owner may see the bug (else the delivery is `skipped`), builds the payload
 * as the API presents the bug to the owner, signs it, POSTs it (10 s timeout, URL re-checked), logs the
 * attempt, and retries with backoff on non-2xx or network errors; after `disableAfterFailures` failures
 * in a row the webhook is disabled with the reason, and its owner is told (log line; see docs).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isStaff, type UserViewer, visibleBugs } from '../access/index.ts';
import { presentBug } from '../bugs/present.ts';
import { loadBug } from '../bugs/repository.ts';
import { loadEvents, type StoredBugEvent, WEBHOOK_FANOUT_JOB } from '../events/index.ts';
import { enqueue, type Job, type JobHandler, PermanentJobError } from '../jobs/index.ts';
import { type Db, type Queryable, sql } from '../platform/db.ts';
import { type AddressPolicy, addressPolicy, checkUrl, guardedLookup } from './address.ts';
import { DELIVER_JOB, type WebhookEvent } from './service.ts';
import { signature } from './signing.ts';

const TIMEOUT_MS = 10_000;
const EXCERPT_BYTES = 1024;

export interface WebhookDeps {
  db: Db;
  allowedHosts: readonly string[];
  disableAfterFailures: number;
  /** Give-up window of one delivery's retries (default 24 h). */
  giveUpAfterMs?: number;
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

async function runFanout(deps: WebhookDeps, job: Job): Promise<undefined> {
  const eventId = Number(job.payload.eventId);
  await deps.db.transaction(async (tx) => {
    const [event] = await loadEvents(tx, [eventId]);
    if (!event) return;
    const [bug] = await tx.query<{ product_id: number }>(
      sql`SELECT product_id FROM bugs WHERE id = ${event.bugId}`,
    );
    if (!bug) return;
    const rows = await tx.query<{ id: number | string }>(sql`
      INSERT INTO webhook_deliveries (webhook_id, event_id, event_type)
      SELECT w.id, ${eventId}, t.type FROM webhooks w CROSS JOIN unnest(${eventTypes(event)}::text[]) AS t(type)
      WHERE w.active AND t.type = ANY(w.events) AND w.created_at <= (SELECT created_at FROM bug_events WHERE id = ${eventId})
        AND (w.product_ids IS NULL OR ${bug.product_id}::int = ANY(w.product_ids))
      ON CONFLICT (webhook_id, event_id, event_type) WHERE redelivery_of IS NULL DO NOTHING
      RETURNING id`);
    for (const r of rows) {
      await enqueue(tx, {
        kind: DELIVER_JOB,
        payload: { deliveryId: Number(r.id) },
        idempotencyKey: `delivery:${r.id}`,
      });
    }
  });
  return undefined;
}

interface SendRow {
  id: number;
  event_type: WebhookEvent;
  state: string;
  webhook_id: number;
  url: string;
  secret: string;
  active: boolean;
  owner_id: number;
  owner_name: string;
  owner_email: string;
  owner_kind: string;
  owner_admin: boolean;
  owner_disabled: boolean;
  event_id: number;
}

/** The payload as the owner may see it; undefined when the owner may not see the bug (or the comment). */
export async function buildPayload(
  q: Queryable,
  viewer: UserViewer,
  event: StoredBugEvent,
  type: WebhookEvent,
): Promise<Record<string, unknown> | undefined> {
  const [visible] = await q.query(
    sql`SELECT 1 FROM bugs b WHERE b.id = ${event.bugId} AND ${visibleBugs(viewer)}`,
  );
  if (!visible) return undefined;
  const bug = await loadBug(q, event.bugId);
  if (!bug) return undefined;
  let duplicateOf = bug.duplicate_of;
  if (duplicateOf !== null) {
    const [dup] = await q.query(
      sql`SELECT 1 FROM bugs b WHERE b.id = ${duplicateOf} AND ${visibleBugs(viewer)}`,
    );
    if (!dup) duplicateOf = null;
  }
  const payload: Record<string, unknown> = {
    id: Number(event.id),
    type,
    created_at: event.createdAt.toISOString(),
    actor_id: event.actorId,
    bug: presentBug({ ...bug, duplicate_of: duplicateOf }),
  };
  if (type === 'bug.updated') payload.changes = event.changes;
  if (type === 'bug.status_changed') {
    payload.changes = event.changes.filter((c) => c.field === 'status' || c.field === 'resolution');
  }
  if (event.commentId !== null && (type === 'comment.created' || type === 'bug.updated')) {
    const [c] = await q.query<{
      id: number;
      author_id: number;
      author_name: string;
      body: string;
      is_private: boolean;
      created_at: Date;
    }>(sql`SELECT c.id, c.author_id, u.name AS author_name, c.body, c.is_private, c.created_at
      FROM comments c JOIN users u ON u.id = c.author_id WHERE c.id = ${event.commentId}`);
    if (c && (!c.is_private || isStaff(viewer))) {
      payload.comment = {
        id: c.id,
        bug_id: event.bugId,
        author: { id: c.author_id, name: c.author_name },
        body: c.body,
        is_private: c.is_private,
        created_at: c.created_at.toISOString(),
      };
    } else if (type === 'comment.created') return undefined;
  }
  if (type === 'attachment.created' && event.attachmentId !== null) {
    const [a] = await q.query<{
      id: number;
      file_name: string;
      kind: string;
      content_type: string;
      size: number | string;
      sha256: string;
      uploader_id: number;
      created_at: Date;
    }>(sql`SELECT id, file_name, kind, content_type, size, sha256, uploader_id, created_at
      FROM attachments WHERE id = ${event.attachmentId}`);
    if (!a) return undefined;
    payload.attachment = {
      id: a.id,
      bug_id: event.bugId,
      file_name: a.file_name,
      kind: a.kind,
      content_type: a.content_type,
      size: Number(a.size),
      sha256: a.sha256,
      uploader_id: a.uploader_id,
      created_at: a.created_at.toISOString(),
    };
  }
  return payload;
}

interface Outcome {
  status?: number;
  excerpt?: string;
  error?: string;
  durationMs: number;
}

/** POSTs `body`; resolves (never rejects) with what happened. */
function post(
  policy: AddressPolicy,
  url: URL,
  body: string,
  headers: Record<string, string>,
): Promise<Outcome> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      lookup: guardedLookup(policy),
      timeout: TIMEOUT_MS,
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => resolve({ error: err.message, durationMs: took() }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < EXCERPT_BYTES) chunks.push(c);
        size += c.length;
      });
      res.on('error', (err) => resolve({ error: err.message, durationMs: took() }));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          excerpt: Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8'),
          durationMs: took(),
        }),
      );
    });
    req.end(body);
  });
}

async function runDeliver(deps: WebhookDeps, policy: AddressPolicy, job: Job): Promise<undefined> {
  const { db } = deps;
  const deliveryId = Number(job.payload.deliveryId);
  const [d] = await db.query<SendRow>(sql`
    SELECT d.id, d.event_type, d.state, d.event_id, w.id AS webhook_id, w.url, w.secret, w.active, w.owner_id,
      u.name AS owner_name, u.email AS owner_email, u.kind AS owner_kind, u.is_admin AS owner_admin,
      u.disabled AS owner_disabled
    FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN users u ON u.id = w.owner_id
    WHERE d.id = ${deliveryId}`);
  if (!d || d.state === 'delivered' || d.state === 'skipped') return undefined;
  const skip = async (why: string) => {
    await db.query(sql`UPDATE webhook_deliveries SET state = 'skipped', error = ${why}, attempted_at = now()
      WHERE id = ${deliveryId}`);
  };
  if (!d.active) return void (await skip('webhook is disabled'));
  if (d.owner_disabled) return void (await skip('webhook owner is disabled'));
  const viewer: UserViewer = {
    kind: 'user',
    id: d.owner_id,
    name: d.owner_name,
    email: d.owner_email,
    isInternal: d.owner_kind === 'internal',
    isAdmin: d.owner_admin,
  };
  const [event] = await loadEvents(db, [Number(d.event_id)]);
  const payload = event ? await buildPayload(db, viewer, event, d.event_type) : undefined;
  if (!payload) return void (await skip('the webhook owner may not see this bug or comment'));

  const body = JSON.stringify(payload);
  const t = Math.floor(Date.now() / 1000);
  let outcome: Outcome;
  let url: URL | undefined;
  try {
    url = await checkUrl(policy, d.url);
    outcome = await post(policy, url, body, {
      'user-agent': 'Bugzot-Webhook/1',
      'bugzot-event': d.event_type,
      'bugzot-delivery': String(deliveryId),
      'bugzot-signature': signature(d.secret, t, body),
    });
  } catch (err) {
    outcome = { error: err instanceof Error ? err.message : String(err), durationMs: 0 };
  }
  const ok = outcome.status !== undefined && outcome.status >= 200 && outcome.status < 300;
  const error = ok ? null : (outcome.error ?? `HTTP ${outcome.status}`);
  await db.query(sql`
    UPDATE webhook_deliveries SET state = ${ok ? 'delivered' : 'failed'}, attempt = attempt + 1,
      status_code = ${outcome.status ?? null}, duration_ms = ${outcome.durationMs},
      response_excerpt = ${outcome.excerpt ?? null}, error = ${error}, attempted_at = now()
    WHERE id = ${deliveryId}`);
  if (ok) {
    await db.query(sql`UPDATE webhooks SET failure_count = 0 WHERE id = ${d.webhook_id}`);
    return undefined;
  }
  const [w] = await db.query<{ failure_count: number }>(sql`
    UPDATE webhooks SET failure_count = failure_count + 1 WHERE id = ${d.webhook_id} RETURNING failure_count`);
  if ((w?.failure_count ?? 0) >= deps.disableAfterFailures) {
    const reason = `${deps.disableAfterFailures} deliveries in a row failed; last: ${error}`.slice(0, 1000);
    const disabled = await db.query(sql`
      UPDATE webhooks SET active = false, disabled_at = now(), disabled_reason = ${reason}
      WHERE id = ${d.webhook_id} AND active RETURNING id`);
    if (disabled.length) {
      deps.log.warn(
        { webhook: d.webhook_id, owner: d.owner_id, ownerEmail: d.owner_email, reason },
        'webhooks: webhook disabled after repeated failures; its owner must re-enable it',
      );
    }
    return undefined;
  }
  // A URL the allow-list refuses (its host now resolves to an internal address) is not worth retrying.
  if (!url || outcome.error?.includes('is not allowed')) throw new PermanentJobError(error ?? 'URL refused');
  throw new Error(error ?? 'delivery failed');
}

/** The job handlers of webhooks, for `createWorker`. */
export function webhookHandlers(deps: WebhookDeps): JobHandler[] {
  const policy = addressPolicy(deps.allowedHosts);
  const giveUpAfterMs = deps.giveUpAfterMs ?? 24 * 3600_000;
  return [
    { kind: WEBHOOK_FANOUT_JOB, run: (job) => runFanout(deps, job), giveUpAfterMs },
    { kind: DELIVER_JOB, run: (job) => runDeliver(deps, policy, job), giveUpAfterMs },
  ];
}
