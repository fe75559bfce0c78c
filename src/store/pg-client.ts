// SqlClient on a pg Pool (PostgreSQL server), plus helpers that create and drop a
// throw-away database for test runs.

import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { type QueryResult, type SqlClient, type Statement, sqlState, withSavepoint } from './sql-client.ts';

export interface PgClientOptions {
  connectionString: string;
  /** Pool size for reads (default 10). */
  max?: number;
  /** Connections kept for transactions and lone writes (default 2; see SqlClient.queryWrite). */
  writers?: number;
  /** application_name reported to the server. */
  applicationName?: string;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

async function run<T>(
  q: Queryable,
  text: string | pg.QueryConfig,
  params?: readonly unknown[],
): Promise<QueryResult<T>> {
  const res = await q.query(text as string, params as unknown[] | undefined);
  return { rows: res.rows as T[], rowCount: res.rowCount ?? res.rows.length };
}

/**
 * Statement texts kept prepared on the commit connections, by text. The engine's commit is one
 * statement of a dozen CTEs in a few dozen shapes; parsing and planning it again each batch cost
 * 3.1 ms of its 7 ms in the server (parse 0.9, bind 2.2; 100/s, log_min_duration_statement).
 * Bounded: past the limit a new text runs unnamed, as any other.
 */
const preparedNames = new Map<string, string>();
const MAX_PREPARED = 256;

function preparedName(text: string): string | undefined {
  let name = preparedNames.get(text);
  if (name === undefined && preparedNames.size < MAX_PREPARED) {
    name = `dispatch_${createHash('sha1').update(text).digest('hex')}`;
    preparedNames.set(text, name);
  }
  return name;
}

/** Per connection, the prepared names already planned there (see queuePrepared). */
const planned = new WeakMap<pg.PoolClient, Set<string>>();

/**
 * Queues `text` on `conn` as a named prepared statement when it has parameters (the driver
 * parses it once per connection). The connection plans generic plans only (the commit pool's
 * plan_cache_mode), made once, at the first execution: with seq scans off then, since the
 * tables are nearly empty at start and a plan made from those sizes would scan them as they
 * grow (the same trap as in pglite-thread.mjs, where it was measured). Returns at once with
 * the promises queued, so that a caller may queue more behind them.
 */
function queuePrepared<T>(
  conn: pg.PoolClient,
  text: string,
  params?: readonly unknown[],
): Promise<QueryResult<T>> {
  const name = params?.length ? preparedName(text) : undefined;
  if (name === undefined) return run<T>(conn, text, params);
  let names = planned.get(conn);
  if (!names) {
    names = new Set();
    planned.set(conn, names);
  }
  const config: pg.QueryConfig = { name, text, values: params as unknown[] };
  if (names.has(name)) return run<T>(conn, config);
  const off = conn.query('SET enable_seqscan = off');
  const out = run<T>(conn, config);
  // Runs whatever the statement did (autocommit: its failure leaves no aborted transaction; in
  // a transaction it fails too, and the rollback undoes the SET).
  const reset = conn.query('RESET enable_seqscan');
  for (const p of [off, out, reset]) p.catch(() => {}); // each is awaited below
  return (async () => {
    await Promise.allSettled([off, reset]);
    const r = await out;
    names.add(name);
    return r;
  })();
}

class PgTxClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly inTransaction = true;
  constructor(
    private readonly conn: pg.PoolClient,
    private readonly depth: number,
  ) {}
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    return run<T>(this.conn, text, params);
  }
  async exec(script: string): Promise<void> {
    await this.conn.query(script);
  }
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    const inner = new PgTxClient(this.conn, this.depth + 1);
    return withSavepoint(this, this.depth + 1, () => fn(inner));
  }
  async close(): Promise<void> {
    throw new Error('close() is not allowed inside a transaction');
  }
}

export class PgClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly inTransaction = false;
  readonly pool: pg.Pool;
  /**
   * Writers' connections: the engine commits one batch at a time, and a burst of reads (a
   * thousand reconnecting clients reading what they missed) queued on the same pool would
   * hold every commit, and so every offer, up behind it.
   */
  private readonly writers: pg.Pool;
  /**
   * The engine's commits (queryWrite, writeAtomic): statements kept prepared, on connections
   * that plan them once, generically (see queuePrepared). A pool of their own, so that the
   * transactions' ad hoc reads on the writers keep plans made for their parameters.
   */
  private readonly committers: pg.Pool;
  private closed = false;

  constructor(opts: PgClientOptions) {
    const name = opts.applicationName ?? 'dispatch';
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.max ?? 10,
      application_name: name,
    });
    this.writers = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.writers ?? 2,
      application_name: `${name}:writer`,
    });
    this.committers = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.writers ?? 2,
      application_name: `${name}:commit`,
      options: '-c plan_cache_mode=force_generic_plan',
    });
    // An idle client losing its connection must not crash the process.
    for (const p of [this.pool, this.writers, this.committers]) p.on('error', () => {});
  }

  lastAnswerAt = 0;

  private answered<T>(r: T): T {
    this.lastAnswerAt = Date.now();
    return r;
  }

  async query<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> {
    return this.answered(await run<T>(this.pool, text, params));
  }

  async queryWrite<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> {
    const conn = await this.committers.connect();
    let broken = false;
    try {
      return this.answered(await queuePrepared<T>(conn, text, params));
    } catch (err) {
      // A statement's error (it has a SQLSTATE) leaves the connection fine; anything else may not.
      broken = sqlState(err) === undefined;
      throw err;
    } finally {
      conn.release(broken);
    }
  }

  async writeAtomic(statements: readonly Statement[]): Promise<QueryResult<Record<string, unknown>>[]> {
    const conn = await this.committers.connect();
    let broken = false;
    try {
      // All queued at once: the driver sends each as the one before is answered, without a
      // turn of the event loop between (a busy loop made every round trip wait). pg 8 warns
      // once per process that this queueing is deprecated (gone in pg 9): on that upgrade,
      // send them one after the other, or as a pipeline if the driver has one by then.
      const begin = run<Record<string, unknown>>(conn, 'BEGIN');
      const runs = statements.map((s) =>
        s.prepare
          ? queuePrepared<Record<string, unknown>>(conn, s.text, s.params)
          : run<Record<string, unknown>>(conn, s.text, s.params),
      );
      const settled = await Promise.allSettled([begin, ...runs]);
      // The first failure is the cause; the statements after it only found the transaction aborted.
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed) {
        try {
          await conn.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw failed.reason;
      }
      await conn.query('COMMIT');
      return this.answered(
        settled
          .slice(1)
          .map((r) => (r as PromiseFulfilledResult<QueryResult<Record<string, unknown>>>).value),
      );
    } finally {
      conn.release(broken);
    }
  }

  async exec(script: string): Promise<void> {
    await this.pool.query(script);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    const conn = await this.writers.connect();
    let broken = false;
    try {
      await conn.query('BEGIN');
      try {
        const out = await fn(new PgTxClient(conn, 0));
        await conn.query('COMMIT');
        return this.answered(out);
      } catch (err) {
        try {
          await conn.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw err;
      }
    } finally {
      conn.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.pool.end(), this.writers.end(), this.committers.end()]);
  }
}

/** Opens a pool on `connectionString`. */
export function createPgClient(
  connectionString: string,
  opts: Omit<PgClientOptions, 'connectionString'> = {},
) {
  return new PgClient({ connectionString, ...opts });
}

/** Same server as `baseUrl`, another database name. */
export function withDatabase(baseUrl: string, database: string): string {
  const u = new URL(baseUrl);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Creates `dispatch_test_<random>` (or `name`) on the server of `adminUrl` and returns its
 * URL. Fails loudly when the server is unreachable.
 */
export async function createDatabase(
  adminUrl: string,
  name?: string,
): Promise<{ name: string; url: string }> {
  const dbName = name ?? `dispatch_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(dbName)}`);
  } finally {
    await admin.end();
  }
  return { name: dbName, url: withDatabase(adminUrl, dbName) };
}

/** Drops a database created by createDatabase, disconnecting leftover sessions. */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
