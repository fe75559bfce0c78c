// A transaction that begins at its first statement. A deferred store transaction
// (src/store/sql-deferred.ts) often sends nothing until its end, and then a single statement,
// which is atomic on its own: `alone` runs it without BEGIN and COMMIT, one round trip for a
// whole batch of changes; several that must commit together go as one message where the
// client can (aloneMany). Anything else begins a real transaction first.

import type { QueryResult, SqlClient, Statement } from './sql-client.ts';
import type { WriteLink } from './store.ts';

class Rollback extends Error {}

/** The transaction this one was to follow did not hold (TransactionOptions.afterLink). */
export class PreviousFailed extends Error {
  constructor() {
    super('the transaction this one follows did not commit');
  }
}

export class LazyTx implements SqlClient {
  readonly inTransaction = true;
  readonly dialect: SqlClient['dialect'];
  private opening?: Promise<SqlClient>;
  private done?: Promise<unknown>;
  private decide?: (commit: boolean) => void;

  constructor(
    private readonly root: SqlClient,
    /** Nothing is sent before this settles (TransactionOptions.after)… */
    private readonly after?: Promise<unknown>,
    /** …but the final write, pipelined behind this one's (TransactionOptions.afterLink). */
    private readonly afterLink?: WriteLink,
    /** Where this one's final write is recorded. */
    private readonly link?: WriteLink,
  ) {
    this.dialect = root.dialect;
  }

  get begun(): boolean {
    return this.opening !== undefined;
  }

  private begin(): Promise<SqlClient> {
    this.opening ??= this.ready().then(() => this.open());
    return this.opening;
  }

  /** Resolves once `after` settled: from then on statements go out. */
  async ready(): Promise<void> {
    if (this.after) await this.after.catch(() => {});
  }

  /**
   * Before the final write: ready(), or nothing when that write will be pipelined behind the
   * previous one, still unanswered. Fails when the previous one did not hold.
   */
  async beforeFinal(): Promise<void> {
    if (this.pipelinesBehind() === undefined) await this.previous();
  }

  /** ready(); fails when the previous transaction did not hold (with `afterLink`). */
  private async previous(): Promise<void> {
    if (!this.after) return;
    const held = await this.after.catch(() => false);
    if (this.afterLink && held === false) throw new PreviousFailed();
  }

  /** The previous write's ticket when the final write may go out behind it now. */
  private pipelinesBehind(): number | undefined {
    const prev = this.afterLink;
    if (this.begun || !this.link || !this.root.writePipelined || prev?.answered !== false) return undefined;
    return prev.ticket;
  }

  private open(): Promise<SqlClient> {
    return new Promise<SqlClient>((resolve, reject) => {
      const decided = new Promise<boolean>((r) => {
        this.decide = r;
      });
      this.done = this.root.transaction(async (tx) => {
        resolve(tx);
        if (!(await decided)) throw new Rollback();
      });
      this.done.catch(reject);
    });
  }

  async query<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> {
    return (await this.begin()).query<T>(text, params);
  }

  /** One statement: on its own (autocommit) when nothing began, else inside the transaction. */
  async alone<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> {
    if (this.begun) return this.query<T>(text, params);
    await this.ready();
    return this.root.queryWrite ? this.root.queryWrite<T>(text, params) : this.root.query<T>(text, params);
  }

  /** aloneMany would send several statements as one message that commits on its own. */
  get atomicAlone(): boolean {
    return !this.begun && this.root.writeAtomic !== undefined;
  }

  /**
   * Statements that commit together: when nothing began, one alone, several as one message
   * (SqlClient.writeAtomic); else one after the other inside the transaction (begun here if
   * need be).
   */
  async aloneMany(statements: readonly Statement[]): Promise<QueryResult<Record<string, unknown>>[]> {
    if (!this.begun && this.link && this.root.writePipelined) {
      const ifOk = this.pipelinesBehind();
      if (ifOk === undefined) await this.previous();
      const sent = this.root.writePipelined(statements, ifOk);
      if (sent) {
        const link = this.link;
        link.ticket = sent.ticket;
        link.answered = false;
        const answered = () => {
          link.answered = true;
        };
        sent.result.then(answered, answered);
        return sent.result;
      }
      // A transaction of several messages is open: the usual way, once the previous answered.
      if (ifOk !== undefined) await this.previous();
    }
    if (statements.length === 1 && !this.begun)
      return [await this.alone(statements[0].text, statements[0].params)];
    if (this.atomicAlone) {
      await this.ready();
      return this.root.writeAtomic!(statements);
    }
    const out: QueryResult<Record<string, unknown>>[] = [];
    for (const st of statements) out.push(await this.query(st.text, st.params));
    return out;
  }

  async exec(script: string): Promise<void> {
    await (await this.begin()).exec(script);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return (await this.begin()).transaction(fn);
  }

  /** Commits (or rolls back) what began; nothing to do when nothing did. */
  async end(commit: boolean): Promise<void> {
    if (!this.opening) return;
    await this.opening.catch(() => {});
    this.decide?.(commit);
    try {
      await this.done;
    } catch (err) {
      if (!(err instanceof Rollback)) throw err;
    }
  }

  async close(): Promise<void> {
    throw new Error('close() is not allowed inside a transaction');
  }
}
