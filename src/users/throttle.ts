/**
 * Sign-in throttling: failed attempts are counted per e-mail address and per client address within a
 * sliding window; past the limit, sign-in answers 429 until the window passes. Success clears the
 * address's count for that e-mail. In-process for now; shared through Redis when it is configured.
 */
import { LRUCache } from 'lru-cache';
import { tooManyRequests } from '../platform/errors.ts';

/** Counts failed sign-ins and refuses further tries past the limit. */
export class LoginThrottle {
  private readonly failures: LRUCache<string, number>;

  constructor(
    private readonly maxAttempts: number,
    windowMinutes: number,
  ) {
    this.failures = new LRUCache({ max: 100_000, ttl: windowMinutes * 60_000, updateAgeOnGet: false });
  }

  private keys(email: string, ip: string) {
    // The per-IP budget is wider: several people behind one NAT sign in from the same address.
    return [`e:${email.toLowerCase()}`, `i:${ip}`] as const;
  }

  /** Throws 429 when this e-mail or this address has failed too often lately. */
  check(email: string, ip: string): void {
    const [e, i] = this.keys(email, ip);
    if (
      (this.failures.get(e) ?? 0) >= this.maxAttempts ||
      (this.failures.get(i) ?? 0) >= this.maxAttempts * 5
    ) {
      throw tooManyRequests('Too many failed sign-in attempts. Wait a few minutes and try again.');
    }
  }

  /** Records a failed attempt. */
  fail(email: string, ip: string): void {
    for (const k of this.keys(email, ip)) {
      this.failures.set(k, (this.failures.get(k) ?? 0) + 1, { noUpdateTTL: this.failures.has(k) });
    }
  }

  /** Clears the e-mail's count after a successful sign-in. */
  succeed(email: string): void {
    this.failures.delete(this.keys(email, '')[0]);
  }
}
