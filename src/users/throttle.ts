/**
 * Sign-in throttling: failed attempts are counted per e-mail address and per client address within a
 * sliding window; past the limit, sign-in answers 429 until the window passes. Success clears the
 * address's count for that e-mail. Shared by every process through Redis when REDIS_URL is set; per process
 * otherwise, and whenever Redis cannot answer.
 */
import { LRUCache } from 'lru-cache';
import { tooManyRequests } from '../platform/errors.ts';

/** Counters kept in Redis (platform/redis.ts's RedisLink); undefined answers mean Redis could not be asked. */
export interface SharedCounter {
  hit(key: string, windowS: number): Promise<number | undefined>;
  count(key: string): Promise<number | undefined>;
  setCount(key: string, n: number): Promise<void>;
}

/** Counts failed sign-ins and refuses further tries past the limit. */
export class LoginThrottle {
  private readonly failures: LRUCache<string, number>;

  constructor(
    private readonly maxAttempts: number,
    private readonly windowMinutes: number,
    private readonly shared?: SharedCounter,
  ) {
    this.failures = new LRUCache({ max: 100_000, ttl: windowMinutes * 60_000, updateAgeOnGet: false });
  }

  private keys(email: string, ip: string) {
    // The per-IP budget is wider: several people behind one NAT sign in from the same address.
    return [`e:${email.toLowerCase()}`, `i:${ip}`] as const;
  }

  /**
   * Counts an attempt before the password is checked (so parallel guesses cannot all slip through
   * while argon2 runs), throwing 429 once this e-mail or this address is over its budget.
   */
  async attempt(email: string, ip: string): Promise<void> {
    const [e, i] = this.keys(email, ip);
    if (this.shared) {
      const windowS = this.windowMinutes * 60;
      const [ne, ni] = await Promise.all([
        this.shared.hit(`login:${e}`, windowS),
        this.shared.hit(`login:${i}`, windowS),
      ]);
      if (ne !== undefined && ni !== undefined) {
        // Counted first, compared after: the attempt that crosses the budget is the first one refused.
        if (ne > this.maxAttempts || ni > this.maxAttempts * 5) {
          throw tooManyRequests('Too many failed sign-in attempts. Wait a few minutes and try again.');
        }
        return;
      }
      // Redis did not answer: count here instead.
    }
    if (
      (this.failures.get(e) ?? 0) >= this.maxAttempts ||
      (this.failures.get(i) ?? 0) >= this.maxAttempts * 5
    ) {
      throw tooManyRequests('Too many failed sign-in attempts. Wait a few minutes and try again.');
    }
    for (const k of [e, i]) {
      this.failures.set(k, (this.failures.get(k) ?? 0) + 1, { noUpdateTTL: this.failures.has(k) });
    }
  }

  /** A successful sign-in: the attempt it counted is taken back, and the e-mail's failures forgotten. */
  async succeed(email: string, ip: string): Promise<void> {
    const [e, i] = this.keys(email, ip);
    if (this.shared) {
      const n = await this.shared.count(`login:${i}`);
      await Promise.all([
        this.shared.setCount(`login:${e}`, 0),
        this.shared.setCount(`login:${i}`, (n ?? 1) - 1),
      ]);
    }
    this.failures.delete(e);
    const n = this.failures.get(i) ?? 0;
    if (n > 0) this.failures.set(i, n - 1, { noUpdateTTL: true });
  }
}
