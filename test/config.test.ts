// bugzot-test: once
/**
 * Configuration: loadConfig's defaults, its refusal of each bad value with a ConfigError naming the
 * variable (and never echoing the database URL), NAME_FILE secrets, the frozen result, loadDotEnv never
 * overriding the environment, `bugzot serve` exiting with status 2 on a bad value, and the README's
 * table documenting every variable. Needs no database, so it runs once (PGlite pass only).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, configVariables, loadConfig, loadDotEnv } from '../src/config.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bugzot-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a file in the test's temporary folder and returns its path. */
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Asserts that loading `env` throws a ConfigError about `variable`, and returns it. */
function refused(env: NodeJS.ProcessEnv, variable: string): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof ConfigError,
    `expected a ConfigError for ${JSON.stringify(env)}, got ${caught}`,
  );
  assert.equal(caught.variable, variable);
  assert.ok(caught.message.includes(variable), `message does not name ${variable}: ${caught.message}`);
  return caught;
}

test('with an empty environment every variable takes its default', () => {
  const config = loadConfig({});
  assert.equal(config.port, 8080);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.dataDir, resolve('./data'));
  assert.equal(config.env, 'development');
  assert.equal(config.logLevel, 'info');
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.databasePoolMax, 10);
  assert.equal(config.baseUrl, 'http://localhost:8080');
  assert.equal(config.allowSignup, true);
  assert.deepEqual(config.trustProxy, []);
  assert.equal(config.bodyLimitBytes, 1024 * 1024);
});

test('an empty string counts as unset', () => {
  assert.equal(loadConfig({ PORT: '', HOST: '' }).port, 8080);
  assert.equal(loadConfig({ PORT: '', HOST: '' }).host, '127.0.0.1');
});

test('good values are parsed into their types', () => {
  const config = loadConfig({
    PORT: '9000',
    DATA_DIR: '/srv/bugzot',
    DATABASE_URL: 'postgresql://bugzot@db:5432/bugzot',
    BASE_URL: 'https://bugs.example.com/',
    ALLOW_SIGNUP: 'off',
    TRUST_PROXY: ' 10.0.0.1 , 10.0.0.2 ,',
    LOG_LEVEL: 'debug',
  });
  assert.equal(config.port, 9000);
  assert.equal(config.dataDir, '/srv/bugzot');
  assert.equal(config.databaseUrl, 'postgresql://bugzot@db:5432/bugzot');
  assert.equal(config.baseUrl, 'https://bugs.example.com');
  assert.equal(config.allowSignup, false);
  assert.deepEqual(config.trustProxy, ['10.0.0.1', '10.0.0.2']);
  assert.equal(config.logLevel, 'debug');
});

describe('a bad value throws a ConfigError naming the variable', () => {
  const cases: [string, string][] = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'postgres://bugzot@[broken'],
    ['LOG_LEVEL', 'loud'],
    ['ALLOW_SIGNUP', 'maybe'],
    ['DATABASE_POOL_MAX', '0'],
    ['DATABASE_POOL_MAX', 'many'],
    ['BASE_URL', 'ftp://x'],
    ['BASE_URL', 'bugs.example.com'],
    ['NODE_ENV', 'staging'],
    ['SESSION_TTL_HOURS', '0'],
    ['LOGIN_MAX_ATTEMPTS', '-3'],
    ['BODY_LIMIT_BYTES', 'lots'],
  ];
  for (const [variable, value] of cases) {
    test(`${variable}=${value}`, () => {
      const err = refused({ [variable]: value }, variable);
      assert.equal(err.name, 'ConfigError');
      assert.match(err.message, /^Invalid configuration: /);
    });
  }

  test('PORT of only spaces (Number("  ") is 0: a random port)', {}, () => {
    refused({ PORT: '   ' }, 'PORT');
  });
});

test('the message shows the bad value, so the operator sees what was read', () => {
  assert.match(refused({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL').message, /"loud"/);
});

test('the DATABASE_URL value is never echoed in the error, since it holds a password', () => {
  for (const url of ['mysql://bugzot:hunter2@db.internal/bugzot', 'postgres://bugzot:hunter2@[db.internal']) {
    const err = refused({ DATABASE_URL: url }, 'DATABASE_URL');
    assert.ok(!err.message.includes('hunter2'), err.message);
    assert.ok(!err.message.includes('db.internal'), err.message);
  }
});

describe('NAME_FILE', () => {
  test('reads the value from the file, trimmed', () => {
    const config = loadConfig({
      PORT_FILE: file('port', '  9091\n'),
      DATABASE_URL_FILE: file('db-url', 'postgres://bugzot:s3cret@db/bugzot\n'),
    });
    assert.equal(config.port, 9091);
    assert.equal(config.databaseUrl, 'postgres://bugzot:s3cret@db/bugzot');
  });

  test('setting both NAME and NAME_FILE is refused, naming the variable', () => {
    const err = refused({ PORT: '9000', PORT_FILE: file('port-both', '9001') }, 'PORT');
    assert.match(err.message, /PORT_FILE/);
  });

  test('an unreadable file is refused, naming NAME_FILE', () => {
    refused({ PORT_FILE: join(dir, 'does-not-exist') }, 'PORT_FILE');
    refused({ DATABASE_URL_FILE: dir }, 'DATABASE_URL_FILE');
  });

  test('a file that cannot be read for lack of permission is refused, naming NAME_FILE', {
    skip: process.getuid?.() === 0 ? 'root reads any file' : false,
  }, () => {
    const path = file('unreadable', 'postgres://x@y/z');
    chmodSync(path, 0o000);
    refused({ DATABASE_URL_FILE: path }, 'DATABASE_URL_FILE');
  });

  test('a bad value read from a file names the variable and does not echo a database URL', () => {
    const err = refused(
      { DATABASE_URL_FILE: file('db-bad', 'mysql://bugzot:hunter2@db/bugzot') },
      'DATABASE_URL',
    );
    assert.ok(!err.message.includes('hunter2'), err.message);
  });
});

test('the returned configuration is frozen, down to its lists', () => {
  const config = loadConfig({ TRUST_PROXY: '10.0.0.1' });
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.trustProxy));
  assert.throws(() => {
    (config as { port: number }).port = 1;
  }, TypeError);
  assert.throws(() => {
    (config.trustProxy as string[]).push('0.0.0.0/0');
  }, TypeError);
});

describe('loadDotEnv', () => {
  test('adds variables from the file that are not set', () => {
    const env: NodeJS.ProcessEnv = {};
    loadDotEnv(env, file('add.env', 'PORT=1111\nLOG_LEVEL=warn\n'));
    assert.equal(env['PORT'], '1111');
    assert.equal(env['LOG_LEVEL'], 'warn');
  });

  test('never overrides a variable already set, even to an empty string', () => {
    const env: NodeJS.ProcessEnv = { PORT: '2222', HOST: '' };
    loadDotEnv(env, file('keep.env', 'PORT=1111\nHOST=0.0.0.0\nLOG_LEVEL=warn\n'));
    assert.equal(env['PORT'], '2222');
    assert.equal(env['HOST'], '');
    assert.equal(env['LOG_LEVEL'], 'warn');
  });

  test('does nothing when the file does not exist', () => {
    const env: NodeJS.ProcessEnv = { PORT: '2222' };
    loadDotEnv(env, join(dir, 'missing.env'));
    assert.deepEqual(env, { PORT: '2222' });
  });
});

test('`bugzot serve` with PORT=abc exits with status 2 and a message naming PORT', async () => {
  const dataDir = join(dir, 'serve-data');
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Only what this test sets: nothing from the caller's environment may change the outcome.
  for (const name of configVariables) {
    delete env[name];
    delete env[`${name}_FILE`];
  }
  Object.assign(env, { PORT: 'abc', DATA_DIR: dataDir, LOG_LEVEL: 'silent' });

  // The working directory is the temp folder, so no .env of the developer's is read.
  const child = spawn(process.execPath, [join(ROOT, 'bin/bugzot.js'), 'serve'], { cwd: dir, env });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
  clearTimeout(killer);

  assert.equal(code, 2, `exit ${code}; stderr: ${stderr}`);
  assert.match(stderr, /PORT/);
  assert.match(stderr, /^bugzot: Invalid configuration: PORT: /m);
  assert.ok(!existsSync(join(dataDir, 'pglite')), 'the database was opened despite the bad configuration');
});

const readmePath = join(ROOT, 'README.md');
test("every variable in configVariables appears in the README's configuration table", () => {
  const readme = readFileSync(readmePath, 'utf8');
  // Markdown tables are runs of lines starting with "|"; the configuration table's header says "variable".
  const tables: string[][] = [];
  let current: string[] | undefined;
  for (const line of readme.split('\n')) {
    if (line.trimStart().startsWith('|')) {
      if (!current) {
        current = [];
        tables.push(current);
      }
      current.push(line.trim());
    } else {
      current = undefined;
    }
  }
  const firstCell = (row: string) => row.split('|')[1]?.trim() ?? '';
  const table = tables.find((rows) => /\bvariable\b/i.test(firstCell(rows[0] ?? '')));
  assert.ok(table, 'README.md has no table whose first column is headed "variable"');
  // First cells name the variables, e.g. "| `PORT` | 8080 | ... |" (maybe "`PORT` / `PORT_FILE`").
  const documented = new Set(table.slice(2).flatMap((row) => firstCell(row).match(/[A-Z][A-Z0-9_]+/g) ?? []));
  const missing = configVariables.filter((name) => !documented.has(name));
  assert.deepEqual(missing, [], `README.md's table lacks ${missing.join(', ')}`);
});
