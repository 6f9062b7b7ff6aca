/**
 * `npm test`: runs every test file with node's own test runner, twice.
 *
 *   1. BUGZOT_TEST_DB=pglite   — in-memory PGlite, every file.
 *   2. BUGZOT_TEST_DB=postgres — real PostgreSQL, every file except those marked `// bugzot-test: once`.
 *      The server is BUGZOT_TEST_DATABASE_URL when set, else a throwaway cluster started here from the
 *      Debian server binaries; with neither, the pass is skipped with a loud banner (a failure when CI=true).
 *
 * Usage: npm test [-- [filter...] [--node-test-flag...]]
 *   filter        keeps test files whose path contains it (or lies under it, when it is a path)
 *   --flag=value  passed on to `node --test` (e.g. --test-name-pattern=login, --test-only)
 * Env: BUGZOT_TEST_CONCURRENCY (default 2), BUGZOT_TEST_TIMEOUT_MS (per test, default 300000).
 *
 * The last line printed is always `N passed, N failed[, N skipped]`, totalled over both passes; the exit
 * status is non-zero when a test failed, a pass crashed or was interrupted, or CI lacked PostgreSQL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPgBin, type PgCluster, startPgCluster } from '../test/helpers/pg-cluster.ts';

/** Repository root: test file paths are given to node relative to it. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A file containing this line on its own runs only in the first (PGlite) pass. */
const RUN_ONCE_MARKER = /^\/\/ bugzot-test: once\s*$/m;

/** Per-test timeout: generous, only there so a hung test cannot hang CI forever. */
const TIMEOUT_MS = process.env['BUGZOT_TEST_TIMEOUT_MS'] ?? '300000';

/** How many test files node runs at once. */
const CONCURRENCY = process.env['BUGZOT_TEST_CONCURRENCY'] ?? '2';

/** How long an interrupted pass gets to exit before it is killed outright. */
const KILL_GRACE_MS = 10_000;

/** What one pass of node's test runner reported. */
interface PassResult {
  passed: number;
  failed: number;
  skipped: number;
  /** Why the pass did not finish normally (killed, no summary, non-zero exit without failures). */
  crash?: string;
}

/** The pass running now, so a signal can stop it. */
let currentPass: ChildProcess | undefined;
/** Set once we were asked to stop; no further pass starts. */
let interrupted: NodeJS.Signals | undefined;

/** Finds the test files, runs both passes, prints the totals and exits. */
async function main(): Promise<number> {
  const { filters, nodeFlags } = parseArgs(process.argv.slice(2));
  const files = findTestFiles(filters);
  if (files.length === 0) {
    console.error(filters.length ? `No test file matches: ${filters.join(' ')}` : 'No test files found.');
    return 1;
  }
  const postgresFiles = files.filter((file) => !RUN_ONCE_MARKER.test(readFileSync(join(ROOT, file), 'utf8')));

  const results: PassResult[] = [];
  const notes: string[] = [];
  const tapDir = mkdtempSync(join(tmpdir(), 'bugzot-tap-'));
  let cluster: PgCluster | undefined;
  let postgresMissing: string | undefined;
  try {
    heading(`Pass 1/2: PGlite (in-memory) — ${files.length} file(s)`);
    results.push(await runPass(files, nodeFlags, { BUGZOT_TEST_DB: 'pglite' }, join(tapDir, 'pglite.tap')));

    if (interrupted) {
      // Fall through to the summary.
    } else if (postgresFiles.length === 0) {
      notes.push('Pass 2/2 (PostgreSQL) had nothing to run: every selected file is marked run-once.');
    } else {
      let url = process.env['BUGZOT_TEST_DATABASE_URL'];
      let where = url ? `BUGZOT_TEST_DATABASE_URL (${redact(url)})` : '';
      const pgBin = url ? undefined : findPgBin();
      if (!url && pgBin) {
        try {
          cluster = await startPgCluster({ binDir: pgBin });
          url = cluster.url;
          where = `a throwaway cluster from ${pgBin} (${url})`;
        } catch (err) {
          results.push({ passed: 0, failed: 0, skipped: 0, crash: `could not start PostgreSQL: ${err}` });
        }
      } else if (!url) {
        postgresMissing =
          'no BUGZOT_TEST_DATABASE_URL is set and no server binaries were found under ' +
          '/usr/lib/postgresql/*/bin (install the Debian package postgresql-15, or set ' +
          'BUGZOT_TEST_DATABASE_URL to a superuser URL of a maintenance database)';
        printSkipBanner(postgresMissing);
      }
      if (url && !interrupted) {
        heading(`Pass 2/2: PostgreSQL — ${postgresFiles.length} file(s) against ${where}`);
        const env = { BUGZOT_TEST_DB: 'postgres', BUGZOT_TEST_DATABASE_URL: url };
        results.push(await runPass(postgresFiles, nodeFlags, env, join(tapDir, 'postgres.tap')));
      }
    }
  } finally {
    await cluster?.stop().catch((err) => console.error(`Could not stop the test cluster: ${err}`));
    rmSync(tapDir, { recursive: true, force: true });
  }

  // Everything below is the summary; the totals line must stay last.
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const result of results) {
    total.passed += result.passed;
    total.failed += result.failed;
    total.skipped += result.skipped;
    // A pass we interrupted ends without a summary; that is reported below, not as a crash.
    if (result.crash && !interrupted) {
      // A crashed pass may have reported nothing at all; it must not read as "0 failed".
      total.failed += 1;
      notes.push(`A test pass crashed (counted as 1 failure): ${result.crash}`);
    }
  }
  const ciRequiresPostgres = postgresMissing !== undefined && process.env['CI'] === 'true';
  if (ciRequiresPostgres) {
    total.failed += 1;
    notes.push('CI=true requires the PostgreSQL pass (counted as 1 failure).');
  }
  if (interrupted) notes.push(`Interrupted by ${interrupted}; remaining tests did not run.`);
  if (postgresMissing) printSkipBanner(postgresMissing);
  for (const note of notes) console.log(note);
  const skipped = total.skipped ? `, ${total.skipped} skipped` : '';
  console.log(`${total.passed} passed, ${total.failed} failed${skipped}`);

  // The shell convention for "ended by signal N": 128 + N.
  if (interrupted) return 128 + constants.signals[interrupted];
  return total.failed > 0 ? 1 : 0;
}

/** Splits CLI arguments into file filters and flags for `node --test`. */
function parseArgs(args: string[]): { filters: string[]; nodeFlags: string[] } {
  return {
    filters: args.filter((arg) => !arg.startsWith('-')),
    nodeFlags: args.filter((arg) => arg.startsWith('-')),
  };
}

/** test/**\/*.test.ts relative to the root with '/' separators, sorted, narrowed by the filters. */
function findTestFiles(filters: string[]): string[] {
  const all = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
    .map((entry) => `test/${entry.split(sep).join('/')}`)
    .filter((file) => file.endsWith('.test.ts') && !file.includes('/node_modules/'))
    .sort();
  if (filters.length === 0) return all;
  const matchers = filters.map((filter) => {
    // An existing path (file or directory) matches itself and what lies under it; anything else is a substring.
    if (existsSync(filter)) {
      const rel = relative(ROOT, resolve(filter)).split(sep).join('/');
      return (file: string) => file === rel || file.startsWith(`${rel}/`);
    }
    return (file: string) => file.includes(filter);
  });
  return all.filter((file) => matchers.some((matches) => matches(file)));
}

/** Runs `node --test` on the files (spec output to the terminal, TAP to a file we count) and waits. */
function runPass(
  files: string[],
  nodeFlags: string[],
  env: Record<string, string>,
  tapFile: string,
): Promise<PassResult> {
  const args = [
    // Without it, the failure summary points at positions in tsx's output instead of the .ts source.
    '--enable-source-maps',
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${CONCURRENCY}`,
    `--test-timeout=${TIMEOUT_MS}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...nodeFlags,
    ...files,
  ];
  return new Promise((done) => {
    // Its own process group, so that on a signal we can stop node's runner and every test process under it.
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: 'inherit',
      detached: true,
      env: { ...process.env, ...env },
    });
    currentPass = child;
    child.on('error', (err) => {
      currentPass = undefined;
      done({ passed: 0, failed: 0, skipped: 0, crash: `could not start node: ${err.message}` });
    });
    child.on('exit', (code, signal) => {
      currentPass = undefined;
      const counts = readTapSummary(tapFile);
      if (!counts) {
        done({ passed: 0, failed: 0, skipped: 0, crash: `no TAP summary (exit ${signal ?? code})` });
      } else if (signal) {
        done({ ...counts, crash: `killed by ${signal}` });
      } else if (code !== 0 && counts.failed === 0) {
        done({ ...counts, crash: `exit ${code} without a failing test` });
      } else {
        done(counts);
      }
    });
  });
}

/** Reads the closing `# pass N` etc. lines of a TAP file; undefined when there are none. */
function readTapSummary(tapFile: string): Omit<PassResult, 'crash'> | undefined {
  let text: string;
  try {
    text = readFileSync(tapFile, 'utf8');
  } catch {
    return undefined;
  }
  const summary = new Map<string, number>();
  // Only unindented comments: the summary lines node writes last, not diagnostics of nested tests.
  for (const match of text.matchAll(/^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) {
    summary.set(match[1]!, Number(match[2]));
  }
  if (!summary.has('tests')) return undefined;
  const count = (key: string) => summary.get(key) ?? 0;
  return {
    passed: count('pass'),
    // Cancelled tests (timeouts, a file that died mid-run) did not pass either.
    failed: count('fail') + count('cancelled'),
    skipped: count('skipped') + count('todo'),
  };
}

/** A visible separator between the passes. */
function heading(text: string): void {
  console.log(`\n=== ${text} ===\n`);
}

/** The banner that makes a skipped PostgreSQL pass impossible to miss. */
function printSkipBanner(reason: string): void {
  const rule = '!'.repeat(100);
  console.log(
    [
      '',
      rule,
      '!!! SKIPPED: the PostgreSQL suites did not run because',
      `!!! ${reason}.`,
      '!!! Only the PGlite pass ran; production runs on PostgreSQL 15.',
      rule,
      '',
    ].join('\n'),
  );
}

/** A URL safe to print: the password replaced. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** First signal: stop the running pass gracefully; second signal (or a stuck pass): kill it. */
function onSignal(signal: NodeJS.Signals): void {
  const pass = currentPass;
  const group = pass?.pid;
  if (interrupted) {
    if (group) killGroup(group, 'SIGKILL');
    return;
  }
  interrupted = signal;
  if (!group) return;
  killGroup(group, signal);
  const timer = setTimeout(() => {
    if (currentPass === pass) killGroup(group, 'SIGKILL');
  }, KILL_GRACE_MS);
  timer.unref();
}

/** Signals a pass's whole process group; it may already be gone. */
function killGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // Already exited.
  }
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('SIGHUP', onSignal);

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
