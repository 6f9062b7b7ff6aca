/**
 * Prometheus metrics: one registry per process, HTTP instrumentation, and `GET /metrics` in the text format.
 *
 * Modules add their own metrics to `registry` (upload bytes, job queue depth, mails sent ...) with the helpers
 * below; gauges that mirror a live number (pool size, cache counters) read it when scraped, never on the hot path.
 * `/metrics` answers only clients in METRICS_ALLOW (loopback and private networks by default); nginx limits it too.
 */
import cluster from 'node:cluster';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AggregatorRegistry, Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { clusterMetrics } from './cluster.ts';
import { type Db, sql } from './db.ts';

/** This process's registry; every module's metrics live here. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });
// In a cluster worker, the primary's aggregator reads this registry over IPC: constructing an AggregatorRegistry
// installs prom-client's listener that answers it.
AggregatorRegistry.setRegistries([registry]);
export const clusterMetricsListener = cluster.isWorker ? new AggregatorRegistry() : undefined;

/** Seconds per HTTP request, by method, route pattern (never the raw URL: bounded labels) and status. */
const httpDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'Time to answer an HTTP request, by method, route pattern and status code.',
  labelNames: ['method', 'route', 'status_code'] as const,
  buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

const inFlight = new Gauge({
  name: 'http_requests_in_flight',
  help: 'HTTP requests being answered now.',
  registers: [registry],
});

/** A counter in the shared registry (for modules: uploads, mails, webhooks ...). */
export function counter<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/**
 * A gauge in the shared registry; `collect` runs at scrape time to set its value. A gauge of the same name made
 * before is replaced (tests build many apps in one process; the newest one's database is the one to report).
 */
export function gauge<L extends string>(
  name: string,
  help: string,
  collect?: (g: Gauge<L>) => void | Promise<void>,
  labelNames: readonly L[] = [],
): Gauge<L> {
  registry.removeSingleMetric(name);
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    ...(collect
      ? {
          collect(this: Gauge<L>) {
            return collect(this);
          },
        }
      : {}),
  });
}

/** The ranges METRICS_ALLOW lists, as a BlockList (used as an allow list). */
export function parseAllowList(spec: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of spec) {
    const [addr = '', bits] = entry.split('/');
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (!isIPv4(addr) && !isIPv6(addr)) throw new Error(`not an IP address or CIDR range: ${entry}`);
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

/** Whether an address (as Fastify reports it, IPv4-mapped IPv6 included) is in the list. */
function allowed(list: BlockList, ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return list.check(mapped[1], 'ipv4');
  return isIPv6(ip) ? list.check(ip, 'ipv6') : list.check(ip, 'ipv4');
}

interface MetricsOptions {
  db: Db;
  /** Addresses and CIDR ranges that may read /metrics. */
  allow: readonly string[];
  /** Hit/miss counters of the in-memory caches, read at scrape time. */
  caches: Record<string, { hits: number; misses: number }>;
}

/** Times every request of the app (call it before routes are registered) and registers GET /metrics. */
export function installMetrics(app: FastifyInstance, { db, allow, caches }: MetricsOptions): void {
  const allowList = parseAllowList(allow);

  gauge(
    'bugzot_db_pool_connections',
    'Database connections of this process, by state.',
    (g) => {
      const { total, idle } = db.stats();
      g.set({ state: 'total' }, total);
      g.set({ state: 'idle' }, idle);
    },
    ['state'],
  );
  gauge(
    'bugzot_cache_lookups',
    'Cache lookups since start, by cache and result (hit, miss).',
    (g) => {
      for (const [cache, c] of Object.entries(caches)) {
        g.set({ cache, result: 'hit' }, c.hits);
        g.set({ cache, result: 'miss' }, c.misses);
      }
    },
    ['cache', 'result'],
  );

  // The job queue as the database holds it (every process reports the same figures: aggregate with max).
  gauge(
    'bugzot_jobs',
    'Background jobs (mail, webhooks) by kind and state: pending, running, failed (given up).',
    async (g) => {
      g.reset();
      try {
        const rows = await db.query<{ kind: string; state: string; n: number }>(sql`
          SELECT kind, state, count(*)::int AS n FROM jobs
          WHERE state IN ('pending', 'running', 'failed') GROUP BY kind, state`);
        for (const r of rows) g.set({ kind: r.kind, state: r.state }, r.n);
      } catch {
        // The queue's table is missing or the database is away: no figures this time.
      }
    },
    ['kind', 'state'],
  );

  app.addHook('onRequest', async () => {
    inFlight.inc();
  });
  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    inFlight.dec();
    httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });

  app.get(
    '/metrics',
    { config: { public: true }, schema: { hide: true } },
    async (request: FastifyRequest, reply: FastifyReply) => {
      if (!allowed(allowList, request.ip)) {
        return reply
          .code(403)
          .type('text/plain; charset=utf-8')
          .send('Metrics are for internal networks only.\n');
      }
      reply.header('cache-control', 'no-store').type(registry.contentType);
      // Under `serve` with several workers, every worker's figures together (asked of the primary).
      return (await clusterMetrics()) ?? (await registry.metrics());
    },
  );
}
