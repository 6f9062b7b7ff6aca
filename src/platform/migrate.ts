/**
 * Schema migrations: numbered SQL files in `migrations/`, applied in order, each in its own
 * transaction and recorded in `schema_migrations`. Safe when several replicas migrate at once: each
 * step takes a transaction-scoped advisory lock and re-reads what is applied before acting.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Db, sql } from './db.ts';

/** Lock key shared by every Bugzot process ('bugzot' in ASCII). */
const MIGRATION_LOCK = 0x62_75_67_7a_6f_74;

/** Where the migration files live. */
export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** One migration file. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Reads `NNN_name.sql` files in version order; refuses gaps and duplicate numbers. */
export function loadMigrations(dir = migrationsDir): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => /^\d{3,}_[\w-]+\.sql$/.test(f))
    .sort();
  const migrations = files.map((file) => ({
    version: Number.parseInt(file, 10),
    name: file.replace(/\.sql$/, ''),
    sql: readFileSync(`${dir}/${file}`, 'utf8'),
  }));
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration numbering broken at ${m.name}: expected ${i + 1}`);
  });
  return migrations;
}

/** Applies every pending migration; returns the names applied by this call. */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<string[]> {
  const applied: string[] = [];
  for (;;) {
    const done = await db.transaction(async (tx) => {
      await tx.query(sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await tx.execScript(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version integer PRIMARY KEY,
           name text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const rows = await tx.query<{ version: number }>(sql`SELECT version FROM schema_migrations`);
      const have = new Set(rows.map((r) => r.version));
      const next = migrations.find((m) => !have.has(m.version));
      if (!next) return true;
      await tx.execScript(next.sql);
      await tx.query(
        sql`INSERT INTO schema_migrations (version, name) VALUES (${next.version}, ${next.name})`,
      );
      applied.push(next.name);
      return false;
    });
    if (done) return applied;
  }
}
