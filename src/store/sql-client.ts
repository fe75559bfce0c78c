// A tiny SQL port so that one Store implementation runs on PostgreSQL (pg Pool) and on
// PGlite (embedded). Parameters use $1..$n placeholders. Adapters hand back whatever
// their driver parses (pg: int8 as string; PGlite: int8 as number), so callers normalise.

export interface QueryResult<T> {
  rows: T[];
  /** Rows inserted, updated or deleted (or returned, for SELECT). */
  rowCount: number;
}

/** One statement of a writeAtomic batch. */
export interface Statement {
  text: string;
  params?: readonly unknown[];
  /** The same text comes back often: the client may keep it prepared. */
  prepare?: boolean;
}

export interface SqlClient {
  readonly dialect: 'postgres' | 'pglite';
  /** True on the client handed to a transaction callback. */
  readonly inTransaction: boolean;
  /**
   * Epoch ms of the database's last answer to any statement, when the adapter tracks it: a
   * readiness check skips its own round trip when this is recent (under a backlog every
   * connection is busy, and a ping queued behind the work said "not ready" for 36 s).
   */
  readonly lastAnswerAt?: number;
  /** One statement with optional parameters. */
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  /**
   * A statement that writes on its own (autocommit), on the connections kept for writers
   * (as transactions are), so that a flood of reads cannot hold a commit up. Its text comes
   * back often (the engine's commit): the client may keep it prepared. Absent: query().
   */
  queryWrite?<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>>;
  /**
   * Statements that write, run in order in a transaction of their own and committed together
   * (rolled back, with the failing one's error, when one fails), sent as one message where the
   * adapter can: every extra round trip waits for a turn of a busy event loop. Absent: the
   * caller opens a transaction.
   */
  writeAtomic?(statements: readonly Statement[]): Promise<QueryResult<Record<string, unknown>>[]>;
  /**
   * writeAtomic, pipelined: the message goes out now and gets a ticket; with `ifOk`, the ticket
   * of an earlier such message, the database runs it only if that one held (else it fails
   * with code SKIPPED_WRITE, writing nothing). So the next commit waits in the database, not
   * for this thread to hear the last one's answer. Only where the adapter runs messages one at
   * a time in the order sent (PGlite's thread); undefined when it cannot send now (a
   * transaction of several messages is open).
   */
  writePipelined?(
    statements: readonly Statement[],
    ifOk: number | undefined,
  ): { ticket: number; result: Promise<QueryResult<Record<string, unknown>>[]> } | undefined;
  /** A multi-statement script without parameters (migrations). */
  exec(script: string): Promise<void>;
  /**
   * Runs `fn` in a transaction on one connection; commits when it resolves, rolls back when
   * it throws. Called on a transaction client it opens a savepoint.
   */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /** Closes the pool / database. Not allowed on a transaction client. */
  close(): Promise<void>;
}

/** The code of a pipelined write skipped because the one before it failed (writePipelined). */
export const SKIPPED_WRITE = 'DSKIP';

/** SQLSTATE of a driver error (pg and PGlite both expose `code`). */
export function sqlState(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Shared savepoint helper for nested transactions on a transaction client. */
export async function withSavepoint<T>(tx: SqlClient, depth: number, fn: () => Promise<T>): Promise<T> {
  const name = `sp_${depth}`;
  await tx.query(`SAVEPOINT ${name}`);
  try {
    const out = await fn();
    await tx.query(`RELEASE SAVEPOINT ${name}`);
    return out;
  } catch (err) {
    await tx.query(`ROLLBACK TO SAVEPOINT ${name}`);
    throw err;
  }
}
