// Entry point of the persistence layer: `openStore` picks PostgreSQL when a database URL
// is given, else embedded PGlite (in memory, or in `dataDir`), or the memory store.

import { MemoryDatabase, MemoryStore } from './memory-store.ts';
import { createPgClient } from './pg-client.ts';
import { PgliteThreadClient } from './pglite-thread-client.ts';
import { SqlStore } from './sql-store.ts';
import type { Store, StoreOptions } from './store.ts';

export * from './audit-chain.ts';
export { MemoryDatabase, MemoryStore } from './memory-store.ts';
export { loadMigrations, type MigrateResult, type Migration, migrate } from './migrate.ts';
export { createDatabase, createPgClient, dropDatabase, PgClient, withDatabase } from './pg-client.ts';
export { createPgliteClient, PgliteClient } from './pglite-client.ts';
export { PgliteThreadClient } from './pglite-thread-client.ts';
export type { QueryResult, SqlClient } from './sql-client.ts';
export { SqlStore, type SqlStoreOptions } from './sql-store.ts';
export * from './store.ts';

export interface OpenStoreOptions extends StoreOptions {
  /** PostgreSQL URL (e.g. process.env.DATABASE_URL); wins over everything else. */
  databaseUrl?: string;
  /** `memory` for the in-memory store; default `pglite` when no databaseUrl. */
  embedded?: 'pglite' | 'memory';
  /** PGlite data directory (default: in memory). PGlite runs in a worker thread. */
  dataDir?: string;
  /** pg pool size. */
  poolSize?: number;
}

/** Opens (and migrates) the store the engine runs on. */
export async function openStore(opts: OpenStoreOptions = {}): Promise<Store> {
  if (opts.embedded === 'memory' && !opts.databaseUrl) return new MemoryStore(new MemoryDatabase(), opts);
  const client = opts.databaseUrl
    ? createPgClient(opts.databaseUrl, { max: opts.poolSize })
    : await PgliteThreadClient.start(opts.dataDir);
  try {
    return await SqlStore.open(client, opts);
  } catch (err) {
    await client.close().catch(() => {});
    throw err;
  }
}
