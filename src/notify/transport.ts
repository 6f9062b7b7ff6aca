/**
 * Where mails go: the company's SMTP provider through nodemailer (pooled connections; smtp:// upgrades
 * with STARTTLS, smtps:// is TLS from the start; a private CA may be trusted), or, without SMTP_URL, an
 * outbox folder of `.eml` files that are logged, so a new installation shows what it would send.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { counter } from '../platform/metrics.ts';
import { withSpan } from '../platform/tracing.ts';
import nodemailer from 'nodemailer';
import type { ComposedMail } from './compose.ts';

/** Mail figures for /metrics (of the process that sends: serve's in-process worker, or `bugzot worker`). */
const mailsSent = counter('bugzot_mails_sent_total', 'Mails the SMTP server accepted.');
const mailsFailed = counter(
  'bugzot_mails_failed_total',
  'Mail deliveries the SMTP server refused or that failed.',
);

/** A way to send composed mails. */
export interface MailTransport {
  readonly kind: 'smtp' | 'outbox';
  /** Sends one mail; resolves when the server accepted it (or the file is written). */
  send(mail: ComposedMail): Promise<{ accepted: string[]; file?: string }>;
  close(): void;
}

/** Settings the transport is made from (config.mail, plus DATA_DIR for the outbox). */
export interface TransportSettings {
  smtpUrl: string | undefined;
  smtpPassword: string | undefined;
  smtpCaFile: string | undefined;
  dataDir: string;
  log: { info(obj: object, msg: string): void };
}

/** The transport the configuration names (SMTP_URL, else the outbox under DATA_DIR). */
export function transportFor(
  config: {
    mail: {
      smtpUrl?: string | undefined;
      smtpPassword?: string | undefined;
      smtpCaFile?: string | undefined;
    };
    dataDir: string;
  },
  log: TransportSettings['log'],
): MailTransport {
  return createTransport({
    smtpUrl: config.mail.smtpUrl,
    smtpPassword: config.mail.smtpPassword,
    smtpCaFile: config.mail.smtpCaFile,
    dataDir: config.dataDir,
    log,
  });
}

/** The nodemailer options for an SMTP_URL (exported for tests of the parsing). */
export function smtpOptions(s: TransportSettings) {
  const url = new URL(s.smtpUrl!);
  const secure = url.protocol === 'smtps:';
  const user = decodeURIComponent(url.username);
  const pass = s.smtpPassword ?? decodeURIComponent(url.password);
  const q = url.searchParams;
  return {
    pool: true,
    maxConnections: Number(q.get('maxConnections') ?? 5),
    host: url.hostname,
    port: Number(url.port || (secure ? 465 : 587)),
    secure,
    // smtp:// upgrades with STARTTLS whenever the server offers it; ?requireTLS=true refuses servers that do not.
    requireTLS: q.get('requireTLS') === 'true',
    auth: user ? { user, pass } : undefined,
    tls: s.smtpCaFile ? { ca: readFileSync(s.smtpCaFile, 'utf8') } : undefined,
    connectionTimeout: 30_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
  };
}

/** Makes the transport the settings name. */
export function createTransport(s: TransportSettings): MailTransport {
  if (s.smtpUrl) {
    const transporter = nodemailer.createTransport(smtpOptions(s));
    const smtpHost = new URL(s.smtpUrl).hostname;
    return {
      kind: 'smtp',
      async send(mail) {
        const info = await withSpan(
          'smtp.send',
          { 'messaging.system': 'smtp', 'server.address': smtpHost },
          () => transporter.sendMail(mail),
        ).then(
          (sent) => {
            mailsSent.inc();
            return sent;
          },
          (err: unknown) => {
            mailsFailed.inc();
            throw err;
          },
        );
        return {
          accepted: (info.accepted as (string | { address: string })[]).map((a) =>
            typeof a === 'string' ? a : a.address,
          ),
        };
      },
      close: () => transporter.close(),
    };
  }
  const dir = join(s.dataDir, 'outbox');
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    kind: 'outbox',
    async send(mail) {
      const info = await composer.sendMail(mail);
      mkdirSync(dir, { recursive: true });
      // Named after the Message-ID: a retried job rewrites the same file rather than adding a second.
      const name = `${mail.messageId.replace(/[^A-Za-z0-9.@-]+/g, '_').replace(/^_|_$/g, '')}.eml`;
      const file = join(dir, name);
      writeFileSync(`${file}.tmp`, info.message as Buffer);
      renameSync(`${file}.tmp`, file);
      s.log.info(
        { to: mail.to.address, subject: mail.subject, file },
        'mail written to the outbox (SMTP_URL is not set)',
      );
      return { accepted: [mail.to.address], file };
    },
    close: () => composer.close(),
  };
}
