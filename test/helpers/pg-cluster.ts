/**
 * A throwaway PostgreSQL server for the test suites: `initdb` into a temp dir, start it on a free
 * loopback port with durability switched off (tests never need to survive a crash), and remove it all
 * again on stop. Uses the Debian server binaries in /usr/lib/postgresql/<version>/bin.
 *
 * PostgreSQL refuses to run as root, so when we are root every server command runs as the `postgres`
 * system user (through `runuser`, or `setpriv` where runuser is missing) and the temp dir is given to it.
 */
import { spawn, execFileSync } from 'node:child_process';
import {
  accessSync,
  appendFileSync,
  chownSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

/** The server version the production servers run; preferred when several are installed. */
const PREFERRED_VERSION = '15';

/** Root of the Debian layout: one directory per installed major version. */
const PG_LIB_ROOT = '/usr/lib/postgresql';

/** The binaries a cluster needs; a directory missing any of them is not usable. */
const REQUIRED_BINARIES = ['initdb', 'pg_ctl', 'postgres'];

/** How many times to pick another port when the one we probed was taken before the server bound it. */
const PORT_ATTEMPTS = 5;

/** A running throwaway cluster. */
export interface PgCluster {
  /** Superuser URL of the `postgres` maintenance database, e.g. `postgres://postgres@127.0.0.1:41234/postgres`. */
  url: string;
  /** Stops the server (immediate mode) and deletes its directory; safe to call more than once. */
  stop(): Promise<void>;
}

/** Finds a directory holding the PostgreSQL server binaries: $BUGZOT_PG_BIN, else version 15, else the newest. */
export function findPgBin(): string | undefined {
  const override = process.env['BUGZOT_PG_BIN'];
  if (override) return hasServerBinaries(override) ? override : undefined;
  let versions: string[];
  try {
    versions = readdirSync(PG_LIB_ROOT);
  } catch {
    return undefined;
  }
  // Preferred version first, then the others newest first (numeric, so 9.6 sorts below 10).
  const ordered = versions.sort((a, b) => {
    if (a === PREFERRED_VERSION) return -1;
    if (b === PREFERRED_VERSION) return 1;
    return Number.parseFloat(b) - Number.parseFloat(a);
  });
  for (const version of ordered) {
    const dir = join(PG_LIB_ROOT, version, 'bin');
    if (hasServerBinaries(dir)) return dir;
  }
  return undefined;
}

/** Creates and starts a throwaway cluster; the caller must call `stop()` (also on failure paths). */
export async function startPgCluster(opts: { binDir?: string } = {}): Promise<PgCluster> {
  const binDir = opts.binDir ?? findPgBin();
  if (!binDir) throw new Error(`no PostgreSQL server binaries found under ${PG_LIB_ROOT}/*/bin`);

  const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
  // The socket path must stay under ~107 bytes, so keep the dir name short.
  const root = mkdtempSync(join(process.env['BUGZOT_PG_TMPDIR'] ?? tmpdir(), 'bugzot-pg-'));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'server.log');
  if (owner) chownSync(root, owner.uid, owner.gid);

  const run = (bin: string, args: string[]) => runCommand(join(binDir, bin), args, root, owner);
  let running = false;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        if (running) await run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // Already gone (crashed or killed): nothing left to stop, the directory still goes.
      } finally {
        running = false;
        rmSync(root, { recursive: true, force: true });
      }
    })();
    return stopping;
  };

  try {
    // --no-sync: the cluster is thrown away, so initdb need not flush anything to disk.
    await run('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    // Appending keeps the file owned by the server user. The port is given at start (see below).
    appendFileSync(
      join(dataDir, 'postgresql.conf'),
      [
        '',
        '# Throwaway test cluster (test/helpers/pg-cluster.ts): speed over durability.',
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${root}'`,
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        // Many test processes each hold a small pool.
        'max_connections = 200',
        '',
      ].join('\n'),
    );

    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', `-p ${port}`, 'start']);
        running = true;
        break;
      } catch (err) {
        // Another process may have taken the port between our probe and the server's bind.
        const log = readTail(logFile);
        if (attempt < PORT_ATTEMPTS && /could not bind|address already in use/i.test(log)) continue;
        throw new Error(`${(err as Error).message}\n--- server.log ---\n${log}`);
      }
    }

    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await checkPgTrgm(url);
    return { url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** True when `dir` holds executable initdb, pg_ctl and postgres. */
function hasServerBinaries(dir: string): boolean {
  return REQUIRED_BINARIES.every((bin) => isExecutable(join(dir, bin)));
}

/** True when `file` exists and we may execute it. */
function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The `postgres` system user, which server commands run as when we are root. */
function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      "running as root, but PostgreSQL refuses root and there is no 'postgres' system user to run it as",
    );
  }
}

/** Runs one command (as the `postgres` user when `owner` is set); rejects with its output on failure. */
function runCommand(
  bin: string,
  args: string[],
  cwd: string,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  let argv = [bin, ...args];
  if (owner) {
    argv = hasCommand('runuser')
      ? ['runuser', '-u', 'postgres', '--', ...argv]
      : ['setpriv', `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--init-groups', '--', ...argv];
  }
  const [command, ...rest] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    // cwd is the cluster dir so the server user can always read its working directory.
    const child = spawn(command, rest, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${argv.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

/** True when `name` is an executable on PATH. */
function hasCommand(name: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((dir) => dir !== '' && isExecutable(join(dir, name)));
}

/** Asks the kernel for a free loopback port. The server binds it a moment later (hence the retry). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

/** The last lines of a log file, or '' when it does not exist. */
function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

/** Migrations use trigram indexes: fail at start, with the fix, when the contrib module is missing. */
async function checkPgTrgm(url: string): Promise<void> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    // Created and dropped again, so each test database still gets it only through its migrations.
    await client.unsafe('CREATE EXTENSION pg_trgm');
    await client.unsafe('DROP EXTENSION pg_trgm');
  } catch (err) {
    throw new Error(
      `CREATE EXTENSION pg_trgm failed on the test cluster (${(err as Error).message}); ` +
        'install the PostgreSQL contrib modules (Debian: postgresql-15, or postgresql-contrib)',
    );
  } finally {
    await client.end({ timeout: 5 });
  }
}
