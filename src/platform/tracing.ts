/**
 * OpenTelemetry traces, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (nothing is traced or
 * loaded otherwise): a server span per HTTP request (continuing the caller's W3C `traceparent`), and client spans
 * for each database statement, Redis command batch and SMTP delivery inside it. Instrumented by hand at the
 * project's own seams (the Db interface, the Redis link, the mail transport) rather than by patching modules at
 * load time, which an ESM app started through tsx cannot rely on.
 */
import {
  type Attributes,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { TracerProvider } from '@opentelemetry/sdk-trace';
import type { FastifyInstance } from 'fastify';
import type { Db, Parallel, Queryable, Sql } from './db.ts';

let tracer: Tracer | undefined;
let provider: TracerProvider | undefined;
let users = 0;
let starting: Promise<void> | undefined;

/** Whether spans are being recorded in this process. */
export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

/**
 * Starts exporting to `endpoint` (the OTLP base URL; traces go to `<endpoint>/v1/traces`). Several apps in one
 * process (tests) share one provider; the returned function flushes and, for the last user, shuts it down.
 */
export async function startTracing(opts: {
  endpoint: string;
  serviceName: string;
  version: string;
}): Promise<() => Promise<void>> {
  starting ??= startProvider(opts).catch((err) => {
    starting = undefined;
    throw err;
  });
  await starting;
  users++;
  return async () => {
    await provider?.forceFlush();
    if (--users > 0) return;
    await provider?.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
    provider = undefined;
    tracer = undefined;
    starting = undefined;
  };
}

/** Loads the SDK (only when tracing is on: it is a sizeable part of an idle process's heap) and installs it. */
async function startProvider(opts: {
  endpoint: string;
  serviceName: string;
  version: string;
}): Promise<void> {
  const [
    { AsyncLocalStorageContextManager },
    { W3CTraceContextPropagator },
    { OTLPTraceExporter },
    res,
    sdk,
  ] = await Promise.all([
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace'),
  ]);
  provider = new sdk.TracerProvider({
    resource: res.resourceFromAttributes({
      'service.name': opts.serviceName,
      'service.version': opts.version,
    }),
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `${opts.endpoint.replace(/\/+$/, '')}/v1/traces` }),
        scheduledDelayMillis: 1000,
      }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  tracer = trace.getTracer('bugzot', opts.version);
}

/** Runs `fn` in a client span (database, Redis, SMTP) when tracing; just runs it otherwise. */
export async function withSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  if (!tracer) return fn();
  return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span: Span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A Queryable whose statements are spans (the parameterised text only: values never leave the process). */
function tracedQueryable<Q extends Queryable>(q: Q): Q {
  // Statements run at once are one span (made once here, not on every access).
  const p = q.parallel;
  const parallel: Parallel | undefined = p && {
    width: p.width,
    run: <T>(statements: Sql[]) =>
      withSpan(
        'db.query',
        {
          'db.system.name': 'postgresql',
          'db.query.text': statements.map((s) => s.text.replace(/\s+/g, ' ').trim()).join(';\n'),
        },
        () => p.run<T>(statements),
      ),
  };
  return new Proxy(q, {
    get(target, prop, receiver) {
      if (prop === 'parallel') return parallel;
      if (prop !== 'query') return Reflect.get(target, prop, receiver);
      return (statement: Sql) =>
        withSpan(
          'db.query',
          { 'db.system.name': 'postgresql', 'db.query.text': statement.text.replace(/\s+/g, ' ').trim() },
          () => target.query(statement),
        );
    },
  });
}

/** The database with every statement traced (in transactions too); the same object when tracing is off. */
export function tracedDb(db: Db): Db {
  if (!tracer) return db;
  const traced = tracedQueryable(db);
  return new Proxy(traced, {
    get(target, prop, receiver) {
      if (prop !== 'transaction') return Reflect.get(target, prop, receiver);
      return <T>(fn: Parameters<Db['transaction']>[0]) =>
        withSpan('db.transaction', { 'db.system.name': 'postgresql' }, () =>
          db.transaction((tx) => fn(tracedQueryable(tx)) as Promise<T>),
        );
    },
  }) as Db;
}

/** A server span around every request, continuing the caller's trace; call first, before other hooks. */
export function installRequestTracing(app: FastifyInstance): void {
  const t = tracer;
  if (!t) return;
  const spans = new WeakMap<object, Span>();
  app.addHook('onRequest', (request, _reply, done) => {
    const parent = propagation.extract(context.active(), request.headers);
    const route = request.routeOptions.url ?? 'unmatched';
    const span = t.startSpan(
      `${request.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          'http.route': route,
          'url.path': request.url.split('?')[0] ?? '',
          'client.address': request.ip,
        },
      },
      parent,
    );
    spans.set(request, span);
    // Everything after this hook (auth, handler, database) runs inside the span's context.
    context.with(trace.setSpan(parent, span), done);
  });
  app.addHook('onError', async (request, _reply, err) => {
    spans.get(request)?.recordException(err);
  });
  app.addHook('onResponse', async (request, reply) => {
    const span = spans.get(request);
    if (!span) return;
    span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    const user = request.viewer?.kind === 'user' ? request.viewer.id : undefined;
    if (user !== undefined) span.setAttribute('enduser.id', String(user));
    span.end();
  });
}
