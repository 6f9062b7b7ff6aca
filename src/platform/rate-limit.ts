/**
 * The application's own rate limit (nginx adds one per client address in front): RATE_LIMIT_PER_MINUTE requests
 * a minute per API key, per signed-in user, or per client address for anonymous requests, counted in Redis when
 * REDIS_URL is set (so every process and host shares the budget), else per process. Past it: 429 with
 * Retry-After, in the usual error envelope. If Redis cannot answer, requests are let through (skipOnError): an
 * outage must not lock everybody out. Health, readiness and metrics probes are never limited.
 *
 * An API key may carry its own limit (api_keys.rate_limit_per_minute, set by its owner up to
 * API_KEY_RATE_LIMIT_MAX or by an admin above it): that key's requests count against it instead, in the same
 * per-key bucket and store, and it applies even when RATE_LIMIT_PER_MINUTE is 0. Every limited answer carries
 * x-ratelimit-limit / -remaining / -reset.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { tooManyRequests } from './errors.ts';

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/** Who a request's budget belongs to. */
export function rateLimitKey(request: FastifyRequest): string {
  const cred = request.credential;
  if (cred?.keyId !== undefined) return `k:${cred.keyId}`;
  if (cred) return `u:${cred.viewer.id}`;
  return `ip:${request.ip}`;
}

export async function installRateLimit(
  app: FastifyInstance,
  { perMinute, redis }: { perMinute: number; redis?: Redis | undefined },
): Promise<void> {
  await app.register(rateLimit, {
    global: true,
    max: (request) => request.credential?.rateLimitPerMinute ?? perMinute,
    timeWindow: 60_000,
    // After the auth hook (onRequest), so the budget is the caller's, not the proxy's address.
    hook: 'preHandler',
    keyGenerator: rateLimitKey,
    allowList: (request) =>
      PROBES.has(request.url.split('?')[0] ?? '') ||
      // Without a global limit, only keys with their own limit are counted.
      (perMinute === 0 && !request.credential?.rateLimitPerMinute),
    ...(redis ? { redis, nameSpace: 'rl:', skipOnError: true } : {}),
    errorResponseBuilder: (_request, ctx) =>
      tooManyRequests(`Too many requests: the limit is ${ctx.max} a minute. Try again in ${ctx.after}.`),
  });
}
