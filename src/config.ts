/**
 * Configuration: environment variables (and a `.env` file) turned once, at start, into one typed,
 * frozen object. A bad value stops the process with a message naming the variable.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';

/** Raised when the environment holds a value Bugzot cannot use; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { message: 'must be true or false' })
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

/** A whole number written as digits (so that a blank value is not read as 0). */
const digits = z.string().trim().regex(/^\d+$/, 'must be a whole number');

const port = digits.pipe(
  z.coerce
    .number<string>()
    .int()
    .min(0, 'must be between 0 and 65535')
    .max(65535, 'must be between 0 and 65535'),
);

const positiveInt = (max: number) =>
  digits.pipe(
    z.coerce.number<string>().int().min(1, 'must be at least 1').max(max, `must be at most ${max}`),
  );

const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL')
  .refine((v) => {
    try {
      new URL(v);
      return true;
    } catch {
      return false;
    }
  }, 'is not a valid URL');

const httpUrl = z
  .string()
  .refine((v) => /^https?:\/\/[^/]+/.test(v), 'must be an http:// or https:// URL')
  .transform((v) => v.replace(/\/+$/, ''));

/**
 * Every variable Bugzot reads, with its default. Keep in step with the README's configuration table
 * (a test checks that each one is documented there).
 */
const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(8080),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: postgresUrl.optional(),
  DATABASE_POOL_MAX: positiveInt(1000).default(10),
  SEARCH_PARALLEL: positiveInt(4).default(2),
  BASE_URL: httpUrl.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SESSION_TTL_HOURS: positiveInt(24 * 365).default(24 * 14),
  LOGIN_MAX_ATTEMPTS: positiveInt(10_000).default(10),
  LOGIN_WINDOW_MINUTES: positiveInt(24 * 60).default(15),
  TRUST_PROXY: z.string().default(''),
  ALLOW_SIGNUP: bool.default(true),
  BODY_LIMIT_BYTES: positiveInt(1024 * 1024 * 1024).default(1024 * 1024),
  REDIS_URL: z
    .string()
    .refine((v) => v === '' || /^rediss?:\/\/[^\s]*$/.test(v), 'must be a redis:// or rediss:// (TLS) URL')
    .optional(),
  RATE_LIMIT_PER_MINUTE: digits
    .pipe(z.coerce.number<string>().int().min(0).max(1_000_000, 'must be at most 1000000'))
    .default(1200),
  API_KEY_RATE_LIMIT_MAX: positiveInt(1_000_000).default(1200),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default('bugzot'),
  WORKERS: positiveInt(256).optional(),
  SOCKET: z.string().optional(),
  SOCKET_MODE: z
    .string()
    .regex(/^0?[0-7]{3}$/, 'must be an octal file mode such as 660')
    .default('660'),
  METRICS_ALLOW: z
    .string()
    .refine(
      (v) =>
        v
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean)
          .every((e) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(e) && isIP(e.split('/')[0] ?? '') !== 0),
      'must be a comma-separated list of IP addresses or CIDR ranges',
    )
    .default('127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16'),
  BUILD_NUMBER: z.string().optional(),
  GIT_COMMIT: z.string().optional(),
  ATTACHMENT_MAX_BYTES: digits
    .pipe(z.coerce.number<string>().int().min(1, 'must be at least 1'))
    .default(10 * 1024 ** 3),
  UPLOAD_EXPIRY_HOURS: positiveInt(24 * 365).default(24),
  ATTACHMENT_TYPES: z
    .string()
    .regex(
      /^\s*(bundle|gzip|text|image|pdf|zip|binary)(\s*,\s*(bundle|gzip|text|image|pdf|zip|binary))*\s*$/,
      'must be a comma-separated list of bundle, gzip, text, image, pdf, zip, binary',
    )
    .default('bundle,gzip,text,image,pdf,zip'),
  BUNDLE_INSPECT_MAX_BYTES: digits
    .pipe(
      z.coerce
        .number<string>()
        .int()
        .min(1024 * 1024, 'must be at least 1048576 (1 MiB)'),
    )
    .default(256 * 1024 ** 3),
  BUNDLE_INSPECT_MAX_RATIO: positiveInt(1_000_000).default(200),
  STORAGE_BACKEND: z.enum(['local', 's3']).default('local'),
  S3_ENDPOINT: httpUrl.optional(),
  S3_BUCKET: z.string().min(1).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_FORCE_PATH_STYLE: bool.default(false),
  SMTP_URL: z
    .string()
    .refine((v) => /^smtps?:\/\/[^/]+/.test(v), 'must be an smtp:// (STARTTLS) or smtps:// (TLS) URL')
    .optional(),
  SMTP_PASSWORD: z.string().optional(),
  SMTP_TLS_CA_FILE: z.string().min(1).optional(),
  MAIL_FROM: z.string().min(3).default('Bugzot <bugzot@localhost>'),
  NOTIFY_BATCH_SECONDS: digits
    .pipe(z.coerce.number<string>().int().max(3600, 'must be at most 3600'))
    .default(30),
  MAIL_GIVE_UP_HOURS: z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, 'must be a positive number of hours')
    .pipe(
      z.coerce
        .number<string>()
        .positive('must be more than 0')
        .max(24 * 365),
    )
    .default(48),
  WORKER_IN_PROCESS: bool.default(true),
  WORKER_CONCURRENCY: positiveInt(256).default(16),
  WORKER_POLL_MS: positiveInt(600_000).default(1000),
  JOB_RETRY_BASE_MS: positiveInt(86_400_000).default(30_000),
  WEBHOOK_ALLOWED_HOSTS: z
    .string()
    .refine(
      (v) =>
        v
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean)
          .every((e) => /^(\*\.)?[A-Za-z0-9.-]+$/.test(e) || /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(e)),
      'must be a comma-separated list of host names (*.example.com) or IP addresses/CIDR ranges',
    )
    .default(''),
  WEBHOOK_DISABLE_AFTER_FAILURES: positiveInt(10_000).default(10),
  JOB_LEASE_SECONDS: positiveInt(86_400).default(300),
});

type Raw = z.infer<typeof schema>;

/** The validated configuration every part of Bugzot reads. */
export type Config = Readonly<{
  env: Raw['NODE_ENV'];
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolMax: number;
  /** Statements one word search may run at once on separate PostgreSQL connections (1: one). */
  searchParallel: number;
  baseUrl: string;
  logLevel: Raw['LOG_LEVEL'];
  sessionTtlHours: number;
  loginMaxAttempts: number;
  loginWindowMinutes: number;
  trustProxy: readonly string[];
  allowSignup: boolean;
  bodyLimitBytes: number;
  /** Redis for the shared cache, rate limits and sign-in throttling; none: per-process. */
  redisUrl: string | undefined;
  /** Requests per minute per API key, signed-in user or (anonymous) client address; 0: no limit. */
  rateLimitPerMinute: number;
  /** The highest own rate limit (requests a minute) a key's owner may set; admins may set more. */
  apiKeyRateLimitMax: number;
  /** OpenTelemetry: the OTLP/HTTP base URL traces are exported to; none: no tracing. */
  otelEndpoint: string | undefined;
  otelServiceName: string;
  /** Processes `serve` runs (node:cluster); 1 serves in the process itself. */
  workers: number;
  /** A unix socket to listen on instead of HOST:PORT (for nginx on the same host). */
  socket: string | undefined;
  /** The socket's file mode. */
  socketMode: number;
  /** Who may read /metrics: addresses and CIDR ranges. */
  metricsAllow: readonly string[];
  buildNumber: string | undefined;
  gitCommit: string | undefined;
  attachmentMaxBytes: number;
  uploadExpiryHours: number;
  /** Kinds of attachment accepted (sniffed from the content, never from the name or Content-Type). */
  attachmentTypes: readonly string[];
  /** Decompression-bomb bounds of bundle inspection: inflated bytes, and inflated per compressed byte. */
  bundleInspectMaxBytes: number;
  bundleInspectMaxRatio: number;
  storage: Readonly<{
    backend: 'local' | 's3';
    s3: Readonly<{
      endpoint: string | undefined;
      bucket: string | undefined;
      region: string;
      accessKeyId: string | undefined;
      secretAccessKey: string | undefined;
      forcePathStyle: boolean;
    }>;
  }>;
  mail: Readonly<{
    /** Unset: mails are written as .eml files under DATA_DIR/outbox. */
    smtpUrl: string | undefined;
    smtpPassword: string | undefined;
    smtpCaFile: string | undefined;
    from: string;
    batchSeconds: number;
    giveUpHours: number;
  }>;
  worker: Readonly<{
    inProcess: boolean;
    concurrency: number;
    pollMs: number;
    retryBaseMs: number;
    leaseSeconds: number;
  }>;
  webhooks: Readonly<{
    /** Host patterns and CIDR ranges a webhook URL may target besides public addresses. */
    allowedHosts: readonly string[];
    /** Consecutive failed deliveries after which a webhook is disabled. */
    disableAfterFailures: number;
  }>;
}>;

/** Names of every variable Bugzot reads (each may also be given as NAME_FILE). */
export const configVariables = Object.keys(schema.shape) as (keyof Raw)[];

/**
 * Reads `NAME` or, when `NAME_FILE` is set, the trimmed contents of that file (Docker secrets).
 * Setting both is refused so that nobody wonders which one won.
 */
function readVariables(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of configVariables) {
    const direct = env[name];
    const file = env[`${name}_FILE`];
    if (file !== undefined && file !== '') {
      if (direct !== undefined && direct !== '') {
        throw new ConfigError(name, `set either ${name} or ${name}_FILE, not both`);
      }
      try {
        out[name] = readFileSync(file, 'utf8').trim();
      } catch (err) {
        throw new ConfigError(`${name}_FILE`, `cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
      }
    } else {
      out[name] = direct === '' ? undefined : direct;
    }
  }
  return out;
}

/** Loads `.env` from the working directory into `env`, never overriding variables already set. */
export function loadDotEnv(env: NodeJS.ProcessEnv = process.env, path = resolve('.env')): void {
  if (!existsSync(path)) return;
  const parsed = parseEnv(readFileSync(path, 'utf8'));
  for (const [key, value] of Object.entries(parsed)) {
    if (env[key] === undefined && value !== undefined) env[key] = value;
  }
}

/** Validates the environment into a frozen Config, or throws a ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = schema.safeParse(readVariables(env));
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const got = env[name];
    const shown =
      got === undefined ? '' : ` (got ${JSON.stringify(got.length > 60 ? `${got.slice(0, 60)}…` : got)})`;
    const secret = name === 'DATABASE_URL' || name === 'S3_SECRET_ACCESS_KEY' || name.startsWith('SMTP_');
    throw new ConfigError(name, `${issue.message}${secret ? '' : shown}`);
  }
  const raw = result.data;
  if (raw.STORAGE_BACKEND === 's3' && !raw.S3_BUCKET) {
    throw new ConfigError('S3_BUCKET', 'is required when STORAGE_BACKEND=s3');
  }
  return Object.freeze({
    env: raw.NODE_ENV,
    host: raw.HOST,
    port: raw.PORT,
    dataDir: resolve(raw.DATA_DIR),
    databaseUrl: raw.DATABASE_URL,
    databasePoolMax: raw.DATABASE_POOL_MAX,
    searchParallel: raw.SEARCH_PARALLEL,
    baseUrl: raw.BASE_URL ?? `http://localhost:${raw.PORT}`,
    logLevel: raw.LOG_LEVEL,
    sessionTtlHours: raw.SESSION_TTL_HOURS,
    loginMaxAttempts: raw.LOGIN_MAX_ATTEMPTS,
    loginWindowMinutes: raw.LOGIN_WINDOW_MINUTES,
    trustProxy: Object.freeze(
      raw.TRUST_PROXY.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
    allowSignup: raw.ALLOW_SIGNUP,
    bodyLimitBytes: raw.BODY_LIMIT_BYTES,
    redisUrl: raw.REDIS_URL || undefined,
    otelEndpoint: raw.OTEL_EXPORTER_OTLP_ENDPOINT,
    otelServiceName: raw.OTEL_SERVICE_NAME,
    rateLimitPerMinute: raw.RATE_LIMIT_PER_MINUTE,
    apiKeyRateLimitMax: raw.API_KEY_RATE_LIMIT_MAX,
    // Production on PostgreSQL: one process per CPU unless told otherwise; the embedded database allows one.
    workers: raw.WORKERS ?? (raw.NODE_ENV === 'production' && raw.DATABASE_URL ? availableParallelism() : 1),
    socket: raw.SOCKET?.trim() ? resolve(raw.SOCKET.trim()) : undefined,
    socketMode: Number.parseInt(raw.SOCKET_MODE, 8),
    metricsAllow: Object.freeze(
      raw.METRICS_ALLOW.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
    buildNumber: raw.BUILD_NUMBER,
    gitCommit: raw.GIT_COMMIT,
    attachmentMaxBytes: raw.ATTACHMENT_MAX_BYTES,
    uploadExpiryHours: raw.UPLOAD_EXPIRY_HOURS,
    attachmentTypes: Object.freeze(raw.ATTACHMENT_TYPES.split(',').map((s) => s.trim())),
    bundleInspectMaxBytes: raw.BUNDLE_INSPECT_MAX_BYTES,
    bundleInspectMaxRatio: raw.BUNDLE_INSPECT_MAX_RATIO,
    storage: Object.freeze({
      backend: raw.STORAGE_BACKEND,
      s3: Object.freeze({
        endpoint: raw.S3_ENDPOINT,
        bucket: raw.S3_BUCKET,
        region: raw.S3_REGION,
        accessKeyId: raw.S3_ACCESS_KEY_ID,
        secretAccessKey: raw.S3_SECRET_ACCESS_KEY,
        forcePathStyle: raw.S3_FORCE_PATH_STYLE,
      }),
    }),
    mail: Object.freeze({
      smtpUrl: raw.SMTP_URL,
      smtpPassword: raw.SMTP_PASSWORD,
      smtpCaFile: raw.SMTP_TLS_CA_FILE,
      from: raw.MAIL_FROM,
      batchSeconds: raw.NOTIFY_BATCH_SECONDS,
      giveUpHours: raw.MAIL_GIVE_UP_HOURS,
    }),
    worker: Object.freeze({
      inProcess: raw.WORKER_IN_PROCESS,
      concurrency: raw.WORKER_CONCURRENCY,
      pollMs: raw.WORKER_POLL_MS,
      retryBaseMs: raw.JOB_RETRY_BASE_MS,
      leaseSeconds: raw.JOB_LEASE_SECONDS,
    }),
    webhooks: Object.freeze({
      allowedHosts: Object.freeze(
        raw.WEBHOOK_ALLOWED_HOSTS.split(',')
          .map((e) => e.trim())
          .filter(Boolean),
      ),
      disableAfterFailures: raw.WEBHOOK_DISABLE_AFTER_FAILURES,
    }),
  });
}
