/**
 * Backup and restore as docs/operations.md describes them: `pg_dump --format=custom` of the database and a copy of
 * the attachments folder, restored with `pg_restore` into a fresh database and a fresh folder. A Bugzot started on
 * the restored pair serves every bug the same and every attachment byte for byte; every table's rows are equal.
 * Runs in the PostgreSQL pass (PGlite is backed up by copying its data folder while stopped).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import postgres from 'postgres';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { type Db, openPostgres, raw, sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';
import { findPgBin } from './helpers/pg-cluster.ts';

const runs = testDbKind() === 'postgres';
const dir = mkdtempSync(join(tmpdir(), 'bugzot-backup-'));
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

/** Every table's rows, as one digest per table (ordered by all columns). */
async function tableDigests(db: Db): Promise<Record<string, string>> {
  const tables = await db.query<{ name: string }>(sql`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`);
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    // Table names come from the catalogue, quoted as identifiers.
    const ident = `"${name.replaceAll('"', '""')}"`;
    const [row] = await db.query<{ digest: string | null; n: number }>(
      sql`SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) AS digest, count(*)::int AS n FROM ${raw(ident)} t`,
    );
    out[name] = `${row?.n}:${row?.digest}`;
  }
  return out;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a pg_dump and a copy of the attachments restore into a Bugzot with every bug and byte', async (tt) => {
  if (!runs) return tt.skip('runs in the PostgreSQL pass');
  const bin = findPgBin();
  if (!bin) return tt.skip('no PostgreSQL client binaries');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const t: TestApp = await startTestApp({ DATA_DIR: dataDir, STORAGE_BACKEND: 'local' });
  cleanups.push(() => t.close());
  const w = await world(t);

  // Attachments: a log and a larger text file, on two bugs.
  const files = [
    {
      bug: w.bugs.public.id,
      name: 'crash.log',
      body: Buffer.from('2026-11-23 12:00:01 FATAL segfault in render()\n'),
    },
    {
      bug: w.bugs.confidential.id,
      name: 'trace.txt',
      body: Buffer.from(`${randomBytes(96 * 1024).toString('base64')}\n`),
    },
  ];
  const attachmentIds: number[] = [];
  for (const f of files) {
    const res = await t.request({
      method: 'PUT',
      url: `/api/v1/bugs/${f.bug}/attachments/${f.name}`,
      as: w.users.dev,
      headers: { 'content-type': 'application/octet-stream' },
      payload: f.body,
    });
    assert.equal(res.statusCode, 201, res.body);
    attachmentIds.push(res.data.id);
  }

  // Backup: the database, then the attachments folder (docs/operations.md).
  const url = t.testDb.url ?? '';
  const dump = join(dir, 'bugzot.dump');
  execFileSync(join(bin, 'pg_dump'), ['--format=custom', `--file=${dump}`, url]);
  const archive = join(dir, 'attachments.tar');
  execFileSync('tar', ['-C', dataDir, '-cf', archive, 'attachments']);

  // Restore into a fresh database and a fresh data folder.
  const restoredName = `bugzot_restored_${randomBytes(4).toString('hex')}`;
  const maintenance = process.env['BUGZOT_TEST_DATABASE_URL'] ?? '';
  const admin = postgres(maintenance, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${restoredName}`);
  cleanups.push(async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${restoredName} WITH (FORCE)`);
    await admin.end();
  });
  const restoredUrl = new URL(maintenance);
  restoredUrl.pathname = `/${restoredName}`;
  execFileSync(join(bin, 'pg_restore'), ['--no-owner', `--dbname=${restoredUrl}`, dump]);
  const restoredDir = join(dir, 'restored');
  mkdirSync(restoredDir);
  execFileSync('tar', ['-C', restoredDir, '-xf', archive]);

  const db = await openPostgres(restoredUrl.toString(), 3);
  cleanups.push(() => db.close());
  const app: FastifyInstance = await buildApp({
    config: loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATA_DIR: restoredDir,
      STORAGE_BACKEND: 'local',
      RATE_LIMIT_PER_MINUTE: '0',
    }),
    db,
  });
  cleanups.push(() => app.close());

  assert.deepEqual(await tableDigests(db), await tableDigests(t.db), 'every table restored row for row');

  const ids = (await t.db.query<{ id: number }>(sql`SELECT id FROM bugs ORDER BY id`)).map((r) => r.id);
  for (const id of ids) {
    const before = await t.app.inject({ url: `/api/v1/bugs/${id}`, headers: w.users.admin.auth });
    const restored = await app.inject({ url: `/api/v1/bugs/${id}`, headers: w.users.admin.auth });
    assert.equal(restored.statusCode, 200);
    assert.deepEqual(JSON.parse(restored.body), JSON.parse(before.body), `bug ${id}`);
  }
  for (const [i, id] of attachmentIds.entries()) {
    const res = await app.inject({ url: `/api/v1/attachments/${id}/content`, headers: w.users.admin.auth });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(sha256(res.rawPayload), sha256(files[i]?.body ?? Buffer.alloc(0)), `attachment ${id} bytes`);
  }
});
