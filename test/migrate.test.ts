/**
 * `bugzot migrate` run by two processes at once. On PostgreSQL both succeed and every migration is
 * applied exactly once (advisory lock); on the embedded database the second process is refused with a
 * clear message instead of corrupting the data folder.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import postgres from 'postgres';
import { loadMigrations } from '../src/platform/migrate.ts';
import { testDbKind } from './helpers/db.ts';
import { runNode } from './helpers/run.ts';

const bin = new URL('../bin/bugzot.js', import.meta.url).pathname;

function run(args: string[], env: Record<string, string>) {
  return runNode([bin, ...args], { env: { LOG_LEVEL: 'warn', ...env } });
}

describe(`bugzot migrate from two processes at once (${testDbKind()})`, () => {
  // Each engine has its own behaviour; each pass runs the test for its engine.
  const notHere = (() => {}) as unknown as typeof test;
  const onPostgres = testDbKind() === 'postgres' ? test : notHere;
  const onPglite = testDbKind() === 'pglite' ? test : notHere;

  onPostgres('on PostgreSQL both succeed and each migration is applied exactly once', async () => {
    const admin = postgres(process.env['BUGZOT_TEST_DATABASE_URL']!, { max: 1, onnotice: () => {} });
    const name = `bugzot_mig_${randomBytes(4).toString('hex')}`;
    await admin.unsafe(`CREATE DATABASE ${name}`);
    try {
      const url = new URL(process.env['BUGZOT_TEST_DATABASE_URL']!);
      url.pathname = `/${name}`;
      const env = { DATABASE_URL: url.toString() };
      const results = await Promise.all([run(['migrate'], env), run(['migrate'], env)]);
      for (const r of results) assert.equal(r.code, 0, r.err);
      const outs = results.map((r) => r.out.trim()).sort();
      const all = loadMigrations().map((m) => m.name);
      // One process applied everything, or they shared the work; never both the same step.
      const applied = outs.flatMap((o) => (o.startsWith('applied: ') ? o.slice(9).split(', ') : []));
      assert.deepEqual([...applied].sort(), [...all].sort());
      const db = postgres(url.toString(), { max: 1, onnotice: () => {} });
      const rows = await db`SELECT version FROM schema_migrations ORDER BY version`;
      assert.deepEqual(
        rows.map((r) => r['version']),
        all.map((_, i) => i + 1),
      );
      await db.end();
    } finally {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  onPglite(
    'on the embedded database a second process is refused while the first holds the folder',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'bugzot-mig-'));
      try {
        const env = { DATA_DIR: dir, DATABASE_URL: '' };
        const results = await Promise.all([run(['migrate'], env), run(['migrate'], env)]);
        const ok = results.filter((r) => r.code === 0);
        assert.ok(ok.length >= 1, results.map((r) => r.err).join('\n'));
        for (const r of results.filter((x) => x.code !== 0)) assert.match(r.err, /in use by process \d+/);
        // Afterwards the folder is free again and fully migrated.
        const again = await run(['migrate'], env);
        assert.equal(again.code, 0, again.err);
        assert.match(again.out, /up to date/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
