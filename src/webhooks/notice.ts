/**
 * The notice a webhook's owner gets when Bugzot disables the webhook after repeated failures: a
 * `webhook.disabled_notice` job, enqueued in the transaction that disables the webhook (idempotency key:
 * webhook + disable time, so one disabling gives one mail), sent through the notify module's transport.
 */
import { escapeHtml } from '@kitajs/html';
import type { Config } from '../config.ts';
import { enqueue, type Job, type JobHandler } from '../jobs/index.ts';
import { type MailTransport, oneLine, transportFor } from '../notify/index.ts';
import { type Queryable, sql } from '../platform/db.ts';

/** The job kind of the notice. */
export const DISABLED_NOTICE_JOB = 'webhook.disabled_notice';

interface NoticePayload {
  webhookId: number;
  /** The delivery whose failure tipped the count over (its log row has the details). */
  deliveryId: number;
  /** When the webhook was disabled (ISO): a notice about an older disabling is not sent. */
  disabledAt: string;
}

/** Enqueues the notice in the caller's transaction (the one that disabled the webhook). */
export async function enqueueDisabledNotice(tx: Queryable, p: NoticePayload): Promise<void> {
  await enqueue(tx, {
    kind: DISABLED_NOTICE_JOB,
    payload: { ...p },
    idempotencyKey: `webhook-disabled:${p.webhookId}:${Date.parse(p.disabledAt)}`,
  });
}

/** What the notice says (loaded when it is sent). */
export interface DisabledNotice {
  webhook: { id: number; url: string; disabledAt: Date; reason: string; failureCount: number };
  owner: { id: number; name: string; email: string };
  last?:
    | {
        id: number;
        eventType: string;
        statusCode: number | null;
        error: string | null;
        durationMs: number | null;
        excerpt: string | null;
        attemptedAt: Date | null;
      }
    | undefined;
  baseUrl: string;
  from: string;
}

/** The URL as the mail shows it: without query string or fragment, which often carry tokens. */
export function displayUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.origin}${u.pathname}${u.search || u.hash ? ' (query omitted)' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Builds the notice mail (a nodemailer message, as the notify transport sends). */
export function composeDisabledNotice(n: DisabledNotice): Parameters<MailTransport['send']>[0] {
  const { webhook: w, last } = n;
  const api = `${n.baseUrl}/api/v1/webhooks/${w.id}`;
  const url = displayUrl(w.url);
  const when = w.disabledAt.toISOString();
  const text = [
    `Hello ${n.owner.name},`,
    '',
    `Bugzot disabled your webhook ${w.id} (${url}) at ${when}`,
    'because its deliveries kept failing. No events are sent to it until you re-enable it;',
    'deliveries that were waiting are logged as skipped.',
    '',
    `Why: ${w.reason}`,
  ];
  if (last) {
    text.push(
      `Last attempt: delivery ${last.id} (${last.eventType})` +
        `${last.attemptedAt ? ` at ${last.attemptedAt.toISOString()}` : ''}: ` +
        `${last.statusCode === null ? (last.error ?? 'no answer') : `HTTP ${last.statusCode}`}` +
        `${last.durationMs === null ? '' : ` after ${last.durationMs} ms`}`,
    );
    if (last.excerpt) text.push(`Its answer began: ${oneLine(last.excerpt).slice(0, 200)}`);
  }
  text.push(
    '',
    'When the receiver works again, turn the webhook back on (this clears its failure count):',
    '',
    `  curl -X POST -H "Authorization: Bearer $BUGZOT_API_KEY" ${api}/enable`,
    '',
    'Then send what it missed: list its deliveries and redeliver the failed or skipped ones:',
    '',
    `  curl -H "Authorization: Bearer $BUGZOT_API_KEY" "${api}/deliveries?limit=500"`,
    `  curl -X POST -H "Authorization: Bearer $BUGZOT_API_KEY" ${api}/deliveries/DELIVERY_ID/redeliver`,
    '',
    '-- ',
    'You receive this mail because you own this webhook. Webhooks: docs/integration.md.',
  );
  const h = escapeHtml;
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    `<p>Bugzot disabled your webhook ${w.id} (<code>${h(url)}</code>) at ${h(when)} because its deliveries kept failing.`,
    ' No events are sent to it until you re-enable it; deliveries that were waiting are logged as skipped.</p>',
    `<p><b>Why:</b> ${h(w.reason)}</p>`,
    last
      ? `<p><b>Last attempt:</b> delivery ${last.id} (${h(last.eventType)}): ${h(
          last.statusCode === null ? (last.error ?? 'no answer') : `HTTP ${last.statusCode}`,
        )}</p>`
      : '',
    '<p>When the receiver works again, turn the webhook back on, then redeliver what it missed:</p>',
    `<pre>curl -X POST -H "Authorization: Bearer $BUGZOT_API_KEY" ${h(api)}/enable\n`,
    `curl -H "Authorization: Bearer $BUGZOT_API_KEY" "${h(api)}/deliveries?limit=500"</pre>`,
    '</body></html>',
  ].join('\n');
  const host = new URL(n.baseUrl).hostname || 'bugzot.invalid';
  return {
    from: n.from,
    to: { name: n.owner.name, address: n.owner.email },
    subject: oneLine(`[Bugzot] Webhook ${w.id} disabled after repeated failures: ${url}`),
    text: text.join('\n'),
    html,
    // Stable across retries of the job: a resent notice is recognisably the same mail.
    messageId: `<webhook-${w.id}-disabled-${w.disabledAt.getTime()}@${host}>`,
    headers: {
      'X-Bugzot-Webhook-Id': String(w.id),
      'X-Bugzot-Reason': 'webhook-disabled',
      'Auto-Submitted': 'auto-generated',
    },
  };
}

/** Loads what the notice says; undefined when it is moot (webhook gone or re-enabled, owner disabled). */
async function loadNotice(
  q: Queryable,
  p: NoticePayload,
  config: Config,
): Promise<DisabledNotice | undefined> {
  const [w] = await q.query<{
    id: number;
    url: string;
    active: boolean;
    disabled_at: Date | null;
    disabled_reason: string | null;
    failure_count: number;
    owner_id: number;
    owner_name: string;
    owner_email: string;
    owner_disabled: boolean;
  }>(sql`
    SELECT w.id, w.url, w.active, w.disabled_at, w.disabled_reason, w.failure_count, u.id AS owner_id,
      u.name AS owner_name, u.email AS owner_email, u.disabled AS owner_disabled
    FROM webhooks w JOIN users u ON u.id = w.owner_id WHERE w.id = ${p.webhookId}`);
  if (!w || w.active || w.owner_disabled || !w.disabled_at) return undefined;
  if (w.disabled_at.getTime() !== Date.parse(p.disabledAt)) return undefined;
  const [d] = await q.query<{
    id: number | string;
    event_type: string;
    status_code: number | null;
    error: string | null;
    duration_ms: number | null;
    response_excerpt: string | null;
    attempted_at: Date | null;
  }>(sql`
    SELECT id, event_type, status_code, error, duration_ms, response_excerpt, attempted_at
    FROM webhook_deliveries WHERE id = ${p.deliveryId} AND webhook_id = ${p.webhookId}`);
  return {
    webhook: {
      id: w.id,
      url: w.url,
      disabledAt: w.disabled_at,
      reason: w.disabled_reason ?? 'repeated failures',
      failureCount: w.failure_count,
    },
    owner: { id: w.owner_id, name: w.owner_name, email: w.owner_email },
    last: d && {
      id: Number(d.id),
      eventType: d.event_type,
      statusCode: d.status_code,
      error: d.error,
      durationMs: d.duration_ms,
      excerpt: d.response_excerpt,
      attemptedAt: d.attempted_at,
    },
    baseUrl: config.baseUrl,
    from: config.mail.from,
  };
}

/**
 * The notice job's handler. It opens its own transport from the mail settings for each notice and
 * closes it after: disablings are rare, and the job handlers are built before the worker's pool exists.
 */
export function disabledNoticeHandler(
  config: Config,
  db: Queryable,
  log: { info(obj: object, msg: string): void },
  giveUpAfterMs: number,
): JobHandler {
  return {
    kind: DISABLED_NOTICE_JOB,
    giveUpAfterMs,
    async run(job: Job) {
      const p = job.payload as unknown as NoticePayload;
      const notice = await loadNotice(db, p, config);
      if (!notice) {
        log.info({ job: job.id, webhook: p.webhookId }, 'webhooks: disabled notice skipped (moot now)');
        return undefined;
      }
      const transport = transportFor(config, log);
      try {
        await transport.send(composeDisabledNotice(notice));
      } finally {
        transport.close();
      }
      log.info(
        { webhook: notice.webhook.id, owner: notice.owner.id },
        'webhooks: owner told that the webhook was disabled',
      );
      return undefined;
    },
  };
}
