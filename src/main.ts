/**
 * The `bugzot` command: serve | worker | migrate | user add | seed. Each subcommand has --help.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { buildApp } from './app.ts';
import { type Config, ConfigError, loadConfig, loadDotEnv } from './config.ts';
import { createWorker } from './notify/index.ts';
import { webhookJobs } from './webhooks/index.ts';
import { packageVersion } from './ops/routes.ts';
import { type Db, openDatabase } from './platform/db.ts';
import { migrate } from './platform/migrate.ts';
import { isClusterWorker, runPrimary } from './platform/cluster.ts';
import { createUser, hashPassword, hasUsers, purgeExpiredSessions } from './users/index.ts';

function intArg(name: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

/** Loads .env and the environment, applying command-line overrides; exits naming a bad variable. */
function config(overrides: Record<string, string | undefined> = {}): Config {
  loadDotEnv();
  const env = { ...process.env };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) env[k] = v;
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bugzot: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

async function open(cfg: Config): Promise<Db> {
  return openDatabase({
    databaseUrl: cfg.databaseUrl,
    dataDir: cfg.dataDir,
    poolMax: cfg.databasePoolMax,
    searchParallel: cfg.searchParallel,
  });
}

async function serve(opts: { host?: string; port?: number; migrate: boolean }) {
  const cfg = config({ HOST: opts.host, PORT: opts.port?.toString() });
  if (cfg.workers > 1 && !isClusterWorker()) return servePrimary(cfg, opts);
  const db = await open(cfg);
  // Embedded: migrate on every start. With a server, deploys may run `bugzot migrate` once instead
  // (--no-migrate); both are safe together thanks to the advisory lock. Cluster workers: the primary did.
  if (!isClusterWorker() && (opts.migrate || !cfg.databaseUrl)) await migrate(db);
  if (!cfg.databaseUrl) await bootstrapAdmin(db);
  const app = await buildApp({ config: cfg, db });
  const purge = setInterval(
    () => purgeExpiredSessions(db).catch((err) => app.log.warn({ err }, 'session purge')),
    3600_000,
  );
  purge.unref();

  // Mail and webhook jobs: run here unless WORKER_IN_PROCESS=false leaves them to `bugzot worker`.
  const background = cfg.worker.inProcess
    ? createWorker(cfg, db, app.log, webhookJobs(cfg, db, app.log))
    : undefined;

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: draining in-flight requests');
    const force = setTimeout(() => {
      app.log.error('shutdown took over 30 s; exiting');
      process.exit(1);
    }, 30_000);
    force.unref();
    try {
      // The worker first: jobs in hand finish (or their lease hands them to another worker later).
      await background?.stop();
      await app.close();
      await db.drain(5_000);
      await db.close();
    } finally {
      clearInterval(purge);
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  if (cfg.socket && !isClusterWorker() && existsSync(cfg.socket)) rmSync(cfg.socket);
  const address = cfg.socket
    ? await app.listen({ path: cfg.socket })
    : await app.listen({ host: cfg.host, port: cfg.port });
  if (cfg.socket && !isClusterWorker()) chmodSync(cfg.socket, cfg.socketMode);
  if (background) {
    await background.worker.start();
    app.log.info(
      { worker: background.worker.id, mail: background.transport.kind },
      'job worker started in process',
    );
  }
  app.log.info(
    {
      address,
      database: db.kind,
      data_dir: db.kind === 'pglite' ? cfg.dataDir : undefined,
      version: packageVersion,
    },
    'bugzot is serving',
  );
}

/**
 * WORKERS > 1: migrate once here, then fork the workers and supervise them (restarts, SIGHUP rolling restart,
 * SIGTERM drain). Several processes cannot share the embedded database, so that needs DATABASE_URL.
 */
async function servePrimary(cfg: Config, opts: { migrate: boolean }) {
  if (!cfg.databaseUrl) {
    process.stderr.write(
      `bugzot: WORKERS=${cfg.workers} needs DATABASE_URL: the embedded database belongs to one process (use WORKERS=1)\n`,
    );
    process.exit(2);
  }
  const { pino } = await import('pino');
  const log = pino({ level: cfg.logLevel });
  if (opts.migrate) {
    const db = await open(cfg);
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
  }
  const code = await runPrimary({
    workers: cfg.workers,
    log,
    socket: cfg.socket,
    socketMode: cfg.socketMode,
  });
  process.exit(code);
}

/**
 * First start of the embedded database: nobody could sign in, and `bugzot user add` cannot run while
 * the server holds the data folder. So create an admin with a random password and print it once.
 */
async function bootstrapAdmin(db: Db) {
  if (await hasUsers(db)) return;
  const password = randomBytes(12).toString('base64url');
  const user = await createUser(db, {
    email: 'admin@localhost',
    name: 'Administrator',
    password,
    kind: 'internal',
    isAdmin: true,
  });
  process.stderr.write(
    `\nFirst start: created the admin account ${user.email} with password ${password}\n` +
      'Sign in and change it; this password is not shown again.\n\n',
  );
}

/** `bugzot worker`: runs background jobs (mail, webhooks) until SIGTERM; any number may run at once. */
async function runWorker(opts: { once?: boolean }) {
  const cfg = config();
  if (!cfg.databaseUrl && !opts.once) {
    process.stderr.write(
      'bugzot: note: with the embedded database, `serve` runs the worker itself; a separate worker needs the data folder to itself\n',
    );
  }
  const db = await open(cfg);
  if (!cfg.databaseUrl) await migrate(db);
  const { pino } = await import('pino');
  const log = pino({ level: cfg.logLevel });
  const background = createWorker(cfg, db, log, webhookJobs(cfg, db, log));
  if (opts.once) {
    const n = await background.worker.drain();
    await background.stop();
    await db.close();
    log.info({ jobs: n }, 'worker: due jobs done');
    return;
  }
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'worker: stopping after the jobs in hand');
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    try {
      await background.stop();
      await db.close();
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  await background.worker.start();
  log.info(
    { worker: background.worker.id, mail: background.transport.kind, database: db.kind },
    'worker started',
  );
}

async function runMigrate() {
  const cfg = config();
  const db = await open(cfg);
  try {
    const applied = await migrate(db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await db.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function userAdd(opts: {
  email: string;
  name?: string;
  password?: string;
  passwordStdin?: boolean;
  admin?: boolean;
  internal?: boolean;
  external?: boolean;
}) {
  if (opts.internal && opts.external)
    throw new InvalidArgumentError('choose --internal or --external, not both');
  let password = opts.password ?? (opts.passwordStdin ? await readStdin() : undefined);
  const generated = password === undefined;
  password ??= randomBytes(12).toString('base64url');
  const cfg = config();
  const db = await open(cfg);
  try {
    await migrate(db);
    const kind = opts.external ? 'external' : opts.internal || opts.admin ? 'internal' : 'external';
    const user = await createUser(db, {
      email: opts.email,
      name: opts.name ?? opts.email.split('@')[0] ?? opts.email,
      password,
      kind,
      isAdmin: opts.admin ?? false,
    });
    process.stdout.write(
      `created user ${user.id} <${user.email}> (${user.kind}${user.is_admin ? ', admin' : ''})\n` +
        (generated ? `password: ${password}\n` : ''),
    );
  } finally {
    await db.close();
  }
}

async function runSeed(opts: {
  bugs: number;
  users?: number;
  comments: number;
  seed: number;
  password: string;
}) {
  const cfg = config();
  const db = await open(cfg);
  try {
    await migrate(db);
    const { seed } = await import('./seed/index.ts');
    const summary = await seed(db, {
      bugs: opts.bugs,
      ...(opts.users ? { users: opts.users } : {}),
      comments: opts.comments,
      seed: opts.seed,
      passwordHash: await hashPassword(opts.password),
      log: (msg: string) => process.stderr.write(`${msg}\n`),
    });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.stdout.write(
      `demo accounts (password "${opts.password}"): admin@bugzot.example, dev@bugzot.example, customer@example.com\n`,
    );
  } finally {
    await db.close();
  }
}

/** Builds the command-line program. */
export function program(): Command {
  const cli = new Command('bugzot')
    .description('Bugzot: a self-hosted bug tracker. Configure with environment variables (see README).')
    .version(packageVersion)
    .showHelpAfterError();

  cli
    .command('serve')
    .description('Serve the web UI and API (embedded PostgreSQL under DATA_DIR unless DATABASE_URL is set)')
    .option('--host <host>', 'address to listen on (env HOST, default 127.0.0.1)')
    .option('--port <port>', 'TCP port (env PORT, default 8080)', intArg('--port', 0, 65535))
    .option('--no-migrate', 'with DATABASE_URL: do not apply pending migrations at start')
    .action(serve);

  cli
    .command('worker')
    .description('Run background jobs (mail, webhooks) from the database queue; run as many as you like')
    .option('--once', 'run the jobs that are due now, then exit')
    .action(runWorker);

  cli
    .command('migrate')
    .description('Apply pending database migrations (safe to run from several replicas at once)')
    .action(runMigrate);

  cli
    .command('assets')
    .description(
      'Write the stylesheet and bundled scripts under their content-hashed names, for a proxy to serve',
    )
    .requiredOption(
      '--out <dir>',
      'web root to write them under, in <dir>/assets/ (e.g. /var/lib/bugzot/public)',
    )
    .action(async (opts: { out: string }) => {
      const { writeAssets } = await import('./web/assets.ts');
      for (const file of await writeAssets(opts.out)) process.stdout.write(`${file}\n`);
    });

  const user = cli.command('user').description('Manage user accounts');
  user
    .command('add')
    .description('Create a user (prints a generated password unless one is given)')
    .requiredOption('--email <email>', 'e-mail address, used to sign in')
    .option('--name <name>', 'display name (default: the part of the address before @)')
    .option('--password <password>', 'password (visible to other local users in ps; prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--admin', 'make the user an admin (implies --internal)')
    .addOption(
      new Option(
        '--internal',
        'staff: sees internal products, unreleased versions, confidential bugs',
      ).conflicts('external'),
    )
    .addOption(new Option('--external', 'customer or partner (the default)').conflicts('internal'))
    .action(userAdd);

  cli
    .command('seed')
    .description(
      'Fill the database with realistic demo data: products, versions, components, users, bugs, comments, history',
    )
    .requiredOption('--bugs <n>', 'number of bugs to create', intArg('--bugs', 0, 10_000_000))
    .option('--users <n>', 'number of users (default scales with --bugs)', intArg('--users', 1, 1_000_000))
    .option('--comments <n>', 'average comments per bug', intArg('--comments', 0, 50), 3)
    .option('--seed <n>', 'random seed, for reproducible data', intArg('--seed', 0, 2 ** 31 - 1), 42)
    .option('--password <password>', 'password of the demo accounts', 'bugzot-demo-password')
    .action(runSeed);
  return cli;
}

try {
  await program().parseAsync(process.argv);
} catch (err) {
  const message = err instanceof Error ? err.message : JSON.stringify(err);
  process.stderr.write(`bugzot: ${message}\n`);
  process.exit(1);
}
