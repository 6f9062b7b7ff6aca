/** Operations endpoints: version, liveness, readiness. Public and cheap. */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { type Db, sql } from '../platform/db.ts';
import type { RedisLink } from '../platform/redis.ts';

/** The version in package.json, read once. */
export const packageVersion: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * The version as pages show it in their footer: the package version, and the build number and commit when the
 * deploy set them (BUILD_NUMBER, GIT_COMMIT). Set when the ops routes are registered.
 */
export let versionLabel: string = packageVersion;

/** Registers /version, /healthz and /readyz. */
export async function opsRoutes(
  app: FastifyInstance,
  { db, config, redis }: { db: Db; config: Config; redis?: RedisLink | undefined },
) {
  const version = Object.freeze({
    name: 'bugzot',
    version: packageVersion,
    build: config.buildNumber ?? null,
    commit: config.gitCommit ?? null,
  });
  versionLabel = [
    packageVersion,
    config.buildNumber ? `build ${config.buildNumber}` : '',
    config.gitCommit ? config.gitCommit.slice(0, 12) : '',
  ]
    .filter(Boolean)
    .join(' · ');
  app.get('/version', { config: { public: true } }, async () => version);

  app.get('/healthz', { config: { public: true } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/readyz', { config: { public: true } }, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    const started = performance.now();
    try {
      await Promise.race([
        db.query(sql`SELECT 1`),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout after 2 s')), 2000).unref()),
      ]);
      const database = { ok: true, ms: Math.round(performance.now() - started) };
      if (!redis) return { status: 'ready', checks: { database } };
      // Redis down is not "unready": Bugzot answers from the database, slower. Say so, keep taking traffic.
      const t0 = performance.now();
      const ok = await redis.ping();
      const cache = { ok, ms: Math.round(performance.now() - t0), shared_cache_in_use: redis.cacheUsable };
      return { status: ok ? 'ready' : 'degraded', checks: { database, redis: cache } };
    } catch (err) {
      request.log.warn({ err }, 'readiness: database unreachable');
      return reply.code(503).send({ status: 'unavailable', checks: { database: { ok: false } } });
    }
  });
}
