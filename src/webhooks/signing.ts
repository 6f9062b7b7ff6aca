/** Webhook signatures: `Bugzot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new webhook secret (shown once to its creator). */
export const newSecret = () => `whsec_${randomBytes(24).toString('base64url')}`;

/** The signature header value for `body` sent at unix time `t`. */
export function signature(secret: string, t: number, body: string): string {
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

/** Verifies a signature header (what a receiver does); `toleranceS` bounds the age of `t`. */
export function verifySignature(
  secret: string,
  header: string,
  body: string,
  toleranceS = 300,
  now = Date.now(),
): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(now / 1000 - t) > toleranceS || !parts.v1) return false;
  const expected = Buffer.from(signature(secret, t, body).split('v1=')[1]!, 'hex');
  const got = Buffer.from(parts.v1, 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}
