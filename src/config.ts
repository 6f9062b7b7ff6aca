/**
 * Configuration: environment variables (and a `.env` file) turned once, at start, into one typed,
 * frozen object. A bad value stops the process with a message naming the variable.
 */
import { existsSync, readFileSync } from 'node:fs';
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
  BASE_URL: httpUrl.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SESSION_TTL_HOURS: positiveInt(24 * 365).default(24 * 14),
  LOGIN_MAX_ATTEMPTS: positiveInt(10_000).default(10),
  LOGIN_WINDOW_MINUTES: positiveInt(24 * 60).default(15),
  TRUST_PROXY: z.string().default(''),
  ALLOW_SIGNUP: bool.default(true),
  BODY_LIMIT_BYTES: positiveInt(1024 * 1024 * 1024).default(1024 * 1024),
  BUILD_NUMBER: z.string().optional(),
  GIT_COMMIT: z.string().optional(),
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
  baseUrl: string;
  logLevel: Raw['LOG_LEVEL'];
  sessionTtlHours: number;
  loginMaxAttempts: number;
  loginWindowMinutes: number;
  trustProxy: readonly string[];
  allowSignup: boolean;
  bodyLimitBytes: number;
  buildNumber: string | undefined;
  gitCommit: string | undefined;
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
    const secret = name === 'DATABASE_URL';
    throw new ConfigError(name, `${issue.message}${secret ? '' : shown}`);
  }
  const raw = result.data;
  return Object.freeze({
    env: raw.NODE_ENV,
    host: raw.HOST,
    port: raw.PORT,
    dataDir: resolve(raw.DATA_DIR),
    databaseUrl: raw.DATABASE_URL,
    databasePoolMax: raw.DATABASE_POOL_MAX,
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
    buildNumber: raw.BUILD_NUMBER,
    gitCommit: raw.GIT_COMMIT,
  });
}
