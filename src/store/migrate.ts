// Runs the numbered SQL migrations (src/store/migrations/NNN_name.sql) in order, each in
// its own transaction, recording them in schema_migrations. Idempotent; two processes
// starting at once on PostgreSQL serialise on a transaction-scoped advisory lock.

import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { packagePath } from '../shared/package-root.ts';
import type { SqlClient } from './sql-client.ts';

export interface Migration {
  /** e.g. `001_init` */
  id: string;
  sql: string;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

/** Advisory lock key shared by every migrating process ("dispatch" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x6469737061746368n;

export const MIGRATIONS_DIR = packagePath('src/store/migrations');

const FILE_RE = /^(\d{3,})_[a-z0-9_-]+\.sql$/i;

/** Reads `*.sql` migrations from `dir`, sorted by their numeric prefix. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => FILE_RE.test(f));
  files.sort((a, b) => Number(FILE_RE.exec(a)![1]) - Number(FILE_RE.exec(b)![1]) || a.localeCompare(b));
  const out: Migration[] = [];
  for (const f of files) {
    out.push({ id: f.replace(/\.sql$/i, ''), sql: await readFile(`${dir}/${f}`, 'utf8') });
  }
  const seen = new Set<string>();
  for (const m of out) {
    const n = FILE_RE.exec(`${m.id}.sql`)![1];
    if (seen.has(n)) throw new Error(`migrations: two files share the number ${n}`);
    seen.add(n);
  }
  return out;
}

const checksum = (sql: string) => createHash('sha256').update(sql, 'utf8').digest('hex');

async function lock(tx: SqlClient): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY.toString()]);
}

/**
 * Applies pending migrations. A migration whose file changed after it was applied is an
 * error (write a new numbered file instead).
 */
export async function migrate(client: SqlClient, migrations?: Migration[]): Promise<MigrateResult> {
  const list = migrations ?? (await loadMigrations());
  await client.transaction(async (tx) => {
    await lock(tx);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         id text PRIMARY KEY,
         checksum text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
  });
  const applied: string[] = [];
  const alreadyApplied: string[] = [];
  for (const m of list) {
    const sum = checksum(m.sql);
    const did = await client.transaction(async (tx) => {
      await lock(tx);
      const prev = await tx.query<{ checksum: string }>(
        'SELECT checksum FROM schema_migrations WHERE id = $1',
        [m.id],
      );
      if (prev.rows.length > 0) {
        if (prev.rows[0].checksum !== sum) {
          throw new Error(`migration ${m.id} was changed after it was applied (checksum mismatch)`);
        }
        return false;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (id, checksum) VALUES ($1, $2)', [m.id, sum]);
      return true;
    });
    (did ? applied : alreadyApplied).push(m.id);
  }
  return { applied, alreadyApplied };
}
