// SqlClient on PGlite (Postgres compiled to WASM): the embedded mode used when no
// DATABASE_URL is set. In memory by default, or persisted in a data directory.
// PGlite is single-connection: queries and transactions are serialised by PGlite itself.

import { PGlite, type Transaction } from '@electric-sql/pglite';
import { type QueryResult, type SqlClient, withSavepoint } from './sql-client.ts';

class PgliteTxClient implements SqlClient {
  readonly dialect = 'pglite' as const;
  readonly inTransaction = true;
  constructor(
    private readonly tx: Transaction,
    private readonly depth: number,
  ) {}
  async query<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> {
    const res = await this.tx.query<T>(text, params as unknown[] | undefined);
    return { rows: res.rows, rowCount: res.affectedRows || res.rows.length };
  }
  async exec(script: string): Promise<void> {
    await this.tx.exec(script);
  }
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    const inner = new PgliteTxClient(this.tx, this.depth + 1);
    return withSavepoint(this, this.depth + 1, () => fn(inner));
  }
  async close(): Promise<void> {
    throw new Error('close() is not allowed inside a transaction');
  }
}

export class PgliteClient implements SqlClient {
  readonly dialect = 'pglite' as const;
  readonly inTransaction = false;

  constructor(readonly db: PGlite) {}

  async query<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> {
    const res = await this.db.query<T>(text, params as unknown[] | undefined);
    return { rows: res.rows, rowCount: res.affectedRows || res.rows.length };
  }

  async exec(script: string): Promise<void> {
    await this.db.exec(script);
  }

  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => fn(new PgliteTxClient(tx, 0)));
  }

  async close(): Promise<void> {
    if (!this.db.closed) await this.db.close();
  }
}

/** Opens PGlite: in memory when `dataDir` is omitted, else persisted in that directory. */
export async function createPgliteClient(dataDir?: string): Promise<PgliteClient> {
  const db = dataDir ? await PGlite.create(dataDir) : await PGlite.create();
  return new PgliteClient(db);
}
