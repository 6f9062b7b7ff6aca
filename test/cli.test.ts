// bugzot-test: once
/**
 * The `bugzot` command as an operator uses it on the embedded database: --help on every command,
 * `user add` (generated password, duplicate refused), `seed`, and `migrate` on an up-to-date database.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runNode } from './helpers/run.ts';

const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'bugzot-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function bugzot(args: string[], input?: string) {
  return runNode([bin, ...args], {
    env: { DATA_DIR: dir, DATABASE_URL: '', LOG_LEVEL: 'warn' },
    ...(input === undefined ? {} : { input }),
  });
}

test('every command answers --help', async () => {
  for (const cmd of [[], ['serve'], ['migrate'], ['user', 'add'], ['seed']]) {
    const r = await bugzot([...cmd, '--help']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Usage: bugzot/m);
  }
  const top = await bugzot(['--help']);
  for (const cmd of ['serve', 'migrate', 'user', 'seed']) assert.match(top.out, new RegExp(`\\b${cmd}\\b`));
});

test('user add creates an account, printing a generated password; the same e-mail again is refused', async () => {
  const r = await bugzot(['user', 'add', '--email', 'Ops@Example.com', '--admin']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /created user \d+ <Ops@Example.com> \(internal, admin\)/);
  assert.match(r.out, /password: \S{12,}/);
  const again = await bugzot(
    ['user', 'add', '--email', 'ops@example.com', '--password-stdin'],
    'a long enough password\n',
  );
  assert.notEqual(again.code, 0);
  assert.match(again.err, /already exists/);
  const short = await bugzot(['user', 'add', '--email', 'x@example.com', '--password-stdin'], 'short\n');
  assert.notEqual(short.code, 0);
  assert.match(short.err, /password must be at least 10 characters/);
  const both = await bugzot(['user', 'add', '--email', 'y@example.com', '--internal', '--external']);
  assert.notEqual(both.code, 0);
});

test('seed fills the embedded database and reports what it made; migrate then has nothing to do', async () => {
  const r = await bugzot(['seed', '--bugs', '60', '--seed', '7']);
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out.split('\n')[0]!) as { bugs: number; comments: number; products: number };
  assert.equal(summary.bugs, 60);
  assert.ok(summary.comments > 0);
  assert.ok(summary.products > 0);
  const bad = await bugzot(['seed', '--bugs', 'many']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--bugs must be an integer/);
  const m = await bugzot(['migrate']);
  assert.equal(m.code, 0, m.err);
  assert.match(m.out, /up to date/);
});
