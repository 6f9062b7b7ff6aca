/**
 * Composing one notification mail for one recipient: subject, threading headers, filter headers,
 * and the text and HTML parts (what changed, the new comments, attachments, a link to the bug).
 */
import { escapeHtml } from '@kitajs/html';
import type { FieldChange } from '../events/index.ts';
import { REASON_NAMES, type Role } from './preferences.ts';

/** The bug as the mail shows it (loaded at send time). */
export interface MailBug {
  id: number;
  summary: string;
  status: string;
  resolution: string | null;
  confidential: boolean;
  product: string;
  version: string;
  component: string;
  assignee: string | null;
  reporter: string;
}

/** A comment in the mail (only those the recipient may read). */
export interface MailComment {
  id: number;
  author: string;
  body: string;
  isPrivate: boolean;
}

/** An attachment in the mail. */
export interface MailAttachment {
  id: number;
  name: string;
  size: number | null;
}

/** Everything one mail is made of. */
export interface MailInput {
  bug: MailBug;
  to: { name: string; email: string; id: number };
  roles: Role[];
  actor: string;
  /** The bug was filed in this batch: the mail starts the thread. */
  filed: boolean;
  changes: FieldChange[];
  comments: MailComment[];
  attachments: MailAttachment[];
  /** Identifies the batch (its first event id): makes the Message-ID unique and stable across retries. */
  batchId: number;
  baseUrl: string;
  from: string;
}

/** What the transport sends (a nodemailer message). */
export interface ComposedMail {
  from: string;
  to: { name: string; address: string };
  subject: string;
  text: string;
  html: string;
  messageId: string;
  inReplyTo?: string;
  references?: string;
  headers: Record<string, string>;
}

/** Merges repeated changes of one field in a batch into first old -> last new (dropping no-ops). */
export function mergeChanges(changes: readonly FieldChange[]): FieldChange[] {
  const byField = new Map<string, FieldChange>();
  for (const c of changes) {
    const prev = byField.get(c.field);
    if (!prev) byField.set(c.field, { ...c });
    else if (c.field === 'cc') {
      const join = (a: string | null, b: string | null) => [a, b].filter(Boolean).join(', ') || null;
      byField.set('cc', { field: 'cc', old: join(prev.old, c.old), new: join(prev.new, c.new) });
    } else byField.set(c.field, { field: c.field, old: prev.old, new: c.new });
  }
  return [...byField.values()].filter((c) => c.field === 'cc' || c.old !== c.new);
}

/** The status as the subject shows it: `RESOLVED FIXED`. */
function statusText(bug: MailBug): string {
  return bug.resolution ? `${bug.status} ${bug.resolution}` : bug.status;
}

/** The host part for Message-IDs: the public host of this Bugzot. */
function idHost(baseUrl: string): string {
  return new URL(baseUrl).hostname || 'bugzot.invalid';
}

/** Header values must stay on one line: line breaks become spaces. */
export const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');

/** Builds the mail for one recipient. */
export function composeMail(m: MailInput): ComposedMail {
  const { bug } = m;
  const host = idHost(m.baseUrl);
  const url = `${m.baseUrl}/bugs/${bug.id}`;
  const prefsUrl = `${m.baseUrl}/preferences/email`;
  // One thread per bug and recipient: the first mail of a bug is its root, later ones reply to it.
  const root = `<bug-${bug.id}-${m.to.id}@${host}>`;
  const messageId = m.filed ? root : `<bug-${bug.id}-${m.to.id}-${m.batchId}@${host}>`;
  const tag = bug.confidential ? ' [CONFIDENTIAL]' : '';
  const subject = oneLine(
    `[Bug ${bug.id}]${tag} [${bug.product} ${bug.version}] ${m.filed ? 'New: ' : ''}${bug.summary} - ${statusText(bug)}`,
  );
  const changes = mergeChanges(m.changes);
  const changedFields = changes.map((c) => c.field);

  const text: string[] = [];
  text.push(url, '');
  if (bug.confidential) text.push('This bug is CONFIDENTIAL: do not forward this mail.', '');
  if (m.filed) {
    text.push(`${m.actor} filed this bug.`, '');
    text.push(
      `  Product:   ${bug.product}`,
      `  Version:   ${bug.version}`,
      `  Component: ${bug.component}`,
      `  Status:    ${statusText(bug)}`,
      `  Assignee:  ${bug.assignee ?? '(nobody)'}`,
      `  Reporter:  ${bug.reporter}`,
      `  Summary:   ${bug.summary}`,
      '',
    );
  }
  if (changes.length) {
    text.push(`${m.actor} changed:`, '');
    const width = Math.max(...changes.map((c) => c.field.length));
    for (const c of changes) {
      text.push(`  ${c.field.padEnd(width)}: ${c.old ?? '(none)'} -> ${c.new ?? '(none)'}`);
    }
    text.push('');
  }
  for (const a of m.attachments) {
    text.push(`${m.actor} added attachment ${a.id}: ${a.name}${a.size === null ? '' : ` (${a.size} bytes)`}`);
    text.push(`  ${m.baseUrl}/attachments/${a.id}`, '');
  }
  for (const c of m.comments) {
    text.push(`--- Comment #${c.id} from ${c.author}${c.isPrivate ? ' (private)' : ''} ---`, c.body, '');
  }
  text.push(
    '-- ',
    `You are receiving this mail because: ${m.roles.map((r) => reasonText(r)).join('; ')}.`,
    `Change which mails you get: ${prefsUrl}`,
  );

  const h = escapeHtml;
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    `<p><a href="${h(url)}">Bug ${bug.id}</a> - ${h(bug.summary)}</p>`,
    bug.confidential ? '<p><strong>This bug is CONFIDENTIAL: do not forward this mail.</strong></p>' : '',
    m.filed
      ? `<p>${h(m.actor)} filed this bug.</p><table>${[
          ['Product', bug.product],
          ['Version', bug.version],
          ['Component', bug.component],
          ['Status', statusText(bug)],
          ['Assignee', bug.assignee ?? '(nobody)'],
          ['Reporter', bug.reporter],
        ]
          .map(([k, v]) => `<tr><th align="left">${h(k)}</th><td>${h(v)}</td></tr>`)
          .join('')}</table>`
      : '',
    changes.length
      ? `<p>${h(m.actor)} changed:</p><table border="1" cellpadding="4" style="border-collapse:collapse">` +
        '<tr><th>What</th><th>Removed</th><th>Added</th></tr>' +
        changes
          .map((c) => `<tr><td>${h(c.field)}</td><td>${h(c.old ?? '')}</td><td>${h(c.new ?? '')}</td></tr>`)
          .join('') +
        '</table>'
      : '',
    ...m.attachments.map(
      (a) =>
        `<p>${h(m.actor)} added attachment <a href="${h(`${m.baseUrl}/attachments/${a.id}`)}">${a.id}: ${h(a.name)}</a></p>`,
    ),
    ...m.comments.map(
      (c) =>
        `<p><b>Comment #${c.id} from ${h(c.author)}${c.isPrivate ? ' (private)' : ''}</b></p><pre style="white-space:pre-wrap">${h(c.body)}</pre>`,
    ),
    `<hr><p style="font-size:small">You are receiving this mail because: ${h(m.roles.map((r) => reasonText(r)).join('; '))}. `,
    `<a href="${h(prefsUrl)}">Change which mails you get</a>.</p>`,
    '</body></html>',
  ].join('\n');

  const headers: Record<string, string> = {
    'X-Bugzot-Reason': m.roles.map((r) => REASON_NAMES[r]).join(' '),
    'X-Bugzot-Changed-Fields': changedFields.join(' '),
    'X-Bugzot-Bug-Id': String(bug.id),
    'X-Bugzot-Product': oneLine(bug.product),
    'X-Bugzot-Component': oneLine(bug.component),
    'X-Bugzot-Status': statusText(bug),
    'X-Bugzot-Who': oneLine(m.actor),
    'List-Unsubscribe': `<${prefsUrl}>`,
    'Auto-Submitted': 'auto-generated',
  };
  if (bug.confidential) headers['X-Bugzot-Confidential'] = 'yes';
  const mail: ComposedMail = {
    from: m.from,
    to: { name: m.to.name, address: m.to.email },
    subject,
    text: text.join('\n'),
    html,
    messageId,
    headers,
  };
  if (!m.filed) {
    mail.inReplyTo = root;
    mail.references = root;
  }
  return mail;
}

function reasonText(r: Role): string {
  return {
    reporter: 'you reported the bug',
    assignee: 'you are the assignee',
    cc: 'you are on the CC list',
    watcher: 'you watch its product or component',
  }[r];
}
