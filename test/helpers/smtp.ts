/**
 * A real SMTP server on 127.0.0.1 (the smtp-server package) that reads what arrives with mailparser.
 * Options: TLS from the start (smtps) or STARTTLS with a self-signed certificate made by openssl,
 * required AUTH, temporary refusal (451) to exercise retries, and holding a message before answering
 * (to kill a sender mid-delivery).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/** One accepted message. */
export interface ReceivedMail {
  from: string;
  to: string[];
  parsed: ParsedMail;
  raw: string;
  /** Whether the session was encrypted (smtps or after STARTTLS). */
  secure: boolean;
  /** A header, lower-cased name; as text. */
  header(name: string): string | undefined;
}

/** A running test SMTP server. */
export interface TestSmtp {
  port: number;
  /** smtp:// or smtps:// URL for SMTP_URL (with credentials when auth is on). */
  url: string;
  /** PEM of the self-signed certificate (when TLS is on), for SMTP_TLS_CA_FILE. */
  caFile?: string;
  mails: ReceivedMail[];
  /** Refuse every message with 451 until `accept()`. */
  refuse(): void;
  accept(): void;
  /** Messages refused so far. */
  refused: number;
  /** Auth attempts that failed. */
  authFailures: number;
  /** Hold every message after its data arrived, until `release()`; `onHeld` hears of each. */
  hold(onHeld?: () => void): void;
  release(): void;
  /** Waits until at least `n` mails arrived (or fails after `ms`). */
  waitFor(n: number, ms?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

/** Makes a self-signed certificate for 127.0.0.1/localhost in a temporary folder. */
function selfSigned(): { dir: string; key: string; cert: string; certFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bugzot-smtp-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  return {
    dir,
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    certFile: join(dir, 'cert.pem'),
  };
}

/** Starts the server. `tls`: 'none' (plain), 'starttls' (offered, self-signed) or 'smtps'. */
export async function startSmtp(
  opts: { tls?: 'none' | 'starttls' | 'smtps'; auth?: { user: string; pass: string } } = {},
): Promise<TestSmtp> {
  const tls = opts.tls ?? 'none';
  const cert = tls === 'none' ? undefined : selfSigned();
  const closedSessions = new Set<string>();
  let refusing = false;
  let holding: { onHeld?: (() => void) | undefined; waiters: (() => void)[] } | undefined;
  const arrived: (() => void)[] = [];

  const t = {
    mails: [] as ReceivedMail[],
    refused: 0,
    authFailures: 0,
  } as TestSmtp;

  const options: SMTPServerOptions = {
    secure: tls === 'smtps',
    ...(cert ? { key: cert.key, cert: cert.cert } : {}),
    hideSTARTTLS: tls === 'none',
    authOptional: !opts.auth,
    allowInsecureAuth: tls === 'none',
    disabledCommands: opts.auth ? [] : ['AUTH'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) {
        return callback(null, { user: auth.username });
      }
      t.authFailures++;
      return callback(new Error('Invalid username or password'));
    },
    onClose(session) {
      closedSessions.add(session.id);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        if (refusing) {
          t.refused++;
          const err = new Error('Try again later') as Error & { responseCode: number };
          err.responseCode = 451;
          return callback(err);
        }
        if (holding) {
          const h = holding;
          await new Promise<void>((resolve) => {
            h.waiters.push(resolve);
            h.onHeld?.();
          });
        }
        // The client went away before hearing 250: it was not delivered, as far as the sender knows.
        if (closedSessions.has(session.id)) return callback(new Error('connection closed'));
        const raw = Buffer.concat(chunks).toString('utf8');
        const parsed = await simpleParser(raw);
        t.mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          parsed,
          raw,
          secure: session.secure,
          header(name: string) {
            const v = parsed.headers.get(name.toLowerCase());
            if (v === undefined) return undefined;
            if (typeof v === 'string') return v;
            if (Array.isArray(v)) return v.join(' ');
            return (v as { text?: string; value?: unknown }).text ?? JSON.stringify(v);
          },
        });
        for (const w of arrived.splice(0)) w();
        callback();
      });
    },
  };
  const server = new SMTPServer(options);
  // A client killed mid-conversation resets its connection: expected here, not a test failure.
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  const cred = opts.auth
    ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.pass)}@`
    : '';
  t.port = port;
  t.url = `${tls === 'smtps' ? 'smtps' : 'smtp'}://${cred}127.0.0.1:${port}`;
  if (cert) t.caFile = cert.certFile;
  t.refuse = () => {
    refusing = true;
  };
  t.accept = () => {
    refusing = false;
  };
  t.hold = (onHeld) => {
    holding = { onHeld, waiters: [] };
  };
  t.release = () => {
    const h = holding;
    holding = undefined;
    for (const w of h?.waiters ?? []) w();
  };
  t.waitFor = async (n, ms = 15_000) => {
    const until = Date.now() + ms;
    while (t.mails.length < n) {
      const left = until - Date.now();
      if (left <= 0) throw new Error(`expected ${n} mails, got ${t.mails.length} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        arrived.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return t.mails;
  };
  t.close = async () => {
    t.release();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (cert) rmSync(cert.dir, { recursive: true, force: true });
  };
  return t;
}
