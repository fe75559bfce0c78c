// The embedded database's worker-thread client sends a statement at once, without waiting
// for the answers to those before it (the worker runs them in order), but nothing enters a
// transaction of several messages while it is open; writeAtomic commits all or nothing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteThreadClient } from '../../src/store/pglite-thread-client.ts';
import { SKIPPED_WRITE } from '../../src/store/sql-client.ts';
import { preparedPlanContract, writeAtomicContract } from './write-atomic-suite.ts';

let db: PgliteThreadClient;
beforeAll(async () => {
  db = await PgliteThreadClient.start();
  await db.query('CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)');
});
afterAll(async () => {
  await db.close();
});

describe('PGlite worker-thread client', () => {
  it('does not zero-fill new WAL segments (a commit crossing a segment end stalled on it)', async () => {
    const r = await db.query<{ wal_init_zero: string }>('SHOW wal_init_zero');
    expect(r.rows[0].wal_init_zero).toBe('off');
  });

  it('runs statements sent together in the order sent', async () => {
    await db.query('DELETE FROM t');
    const writes = Array.from({ length: 50 }, (_, i) =>
      db.query('INSERT INTO t (id, v) VALUES ($1, $2) RETURNING (SELECT count(*) FROM t) AS before', [
        i,
        `v${i}`,
      ]),
    );
    const out = await Promise.all(writes);
    // Each insert saw exactly the rows of the inserts sent before it.
    expect(out.map((r) => Number(r.rows[0].before))).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('holds a statement back while a transaction is open, and runs it after the commit', async () => {
    await db.query('DELETE FROM t');
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const order: string[] = [];
    const tx = db.transaction(async (c) => {
      await c.query("INSERT INTO t (id, v) VALUES (1, 'in tx')");
      await gate;
      await c.query("UPDATE t SET v = 'committed' WHERE id = 1");
      order.push('tx');
    });
    await new Promise((r) => setTimeout(r, 20));
    // Sent while the transaction is open: it must neither run inside it nor before its end.
    const read = db.query<{ v: string }>('SELECT v FROM t WHERE id = 1').then((r) => {
      order.push('read');
      return r.rows.map((x) => x.v);
    });
    const write = db.query("INSERT INTO t (id, v) VALUES (2, 'after')");
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual([]);
    release();
    await tx;
    expect(await read).toEqual(['committed']);
    await write;
    expect(order).toEqual(['tx', 'read']);
    const rows = await db.query<{ id: number }>('SELECT id FROM t ORDER BY id');
    expect(rows.rows.map((r) => r.id)).toEqual([1, 2]);
  });

  it('a write (queryWrite, writeAtomic) goes before the ordinary statements still waiting', async () => {
    await db.query('DELETE FROM t');
    // The worker answers, then yields once before it goes idle: messages arriving in that
    // moment are sorted before any runs, and the writes would overtake even the first read.
    await new Promise((r) => setTimeout(r, 20));
    // Five slow reads sent together: the first runs, the others wait in the worker.
    const reads = Array.from({ length: 5 }, () =>
      db.query<{ n: string }>('SELECT count(*) AS n FROM t, pg_sleep(0.03)'),
    );
    const write = db.queryWrite!("INSERT INTO t (id, v) VALUES (1, 'urgent')");
    const atomic = db.writeAtomic!([{ text: "INSERT INTO t (id, v) VALUES (2, 'urgent too')" }]);
    const seen = (await Promise.all(reads)).map((r) => Number(r.rows[0].n));
    await Promise.all([write, atomic]);
    // The read running when they arrived saw neither; those waiting saw both.
    expect(seen).toEqual([0, 2, 2, 2, 2]);
  });

  it('a write sent while a transaction is open still waits for its end', async () => {
    await db.query('DELETE FROM t');
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tx = db.transaction(async (c) => {
      await c.query("INSERT INTO t (id, v) VALUES (1, 'in tx')");
      await gate;
      await c.query('SELECT pg_sleep(0.02)');
      await c.query("UPDATE t SET v = 'committed' WHERE id = 1");
    });
    await new Promise((r) => setTimeout(r, 20));
    const write = db.queryWrite!<{ v: string }>(
      'INSERT INTO t (id, v) SELECT 2, v FROM t WHERE id = 1 RETURNING v',
    );
    release();
    await tx;
    expect((await write).rows).toEqual([{ v: 'committed' }]);
  });

  it('a pipelined write runs only if the one it follows held, all sent before any answer', async () => {
    await db.query('DELETE FROM t');
    await db.query("INSERT INTO t (id, v) VALUES (1, 'a')");
    const put = (id: number, ifOk: number | undefined) =>
      db.writePipelined!([{ text: `INSERT INTO t (id, v) VALUES (${id}, 'p')` }], ifOk)!;
    // A duplicate key fails the first; the two behind it, in a chain, are skipped.
    const a = put(1, undefined);
    const b = put(2, a.ticket);
    const c = put(3, b.ticket);
    // One that holds lets the one behind it run.
    const d = put(4, undefined);
    const e = put(5, d.ticket);
    const out = await Promise.allSettled([a.result, b.result, c.result, d.result, e.result]);
    expect(out.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok'))).toEqual([
      '23505',
      SKIPPED_WRITE,
      SKIPPED_WRITE,
      'ok',
      'ok',
    ]);
    const rows = await db.query<{ id: number }>('SELECT id FROM t ORDER BY id');
    expect(rows.rows.map((r) => r.id)).toEqual([1, 4, 5]);
  });

  it('no pipelined write goes out while a transaction of several messages is open', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tx = db.transaction(async (c) => {
      await c.query('SELECT 1');
      await gate;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(db.writePipelined!([{ text: 'SELECT 1' }], undefined)).toBeUndefined();
    release();
    await tx;
    expect((await db.writePipelined!([{ text: 'SELECT 1' }], undefined)!.result)[0].rowCount).toBe(1);
  });

  it('a transaction that fails rolls back, and statements after it still run', async () => {
    await db.query('DELETE FROM t');
    const failed = db
      .transaction(async (c) => {
        await c.query("INSERT INTO t (id, v) VALUES (1, 'rolled back')");
        throw new Error('abort');
      })
      .catch((e: Error) => e.message);
    const after = db.query("INSERT INTO t (id, v) VALUES (2, 'kept')");
    expect(await failed).toBe('abort');
    await after;
    const rows = await db.query<{ id: number }>('SELECT id FROM t ORDER BY id');
    expect(rows.rows.map((r) => r.id)).toEqual([2]);
  });

  writeAtomicContract(() => db, 't');

  // queryWrite keeps its statement prepared in the worker and sends the parameters as quoted
  // literals: every value must arrive exactly as bind parameters would bring it.
  it('a prepared write takes any text, number, boolean or null exactly as a bound one', async () => {
    await db.query('DELETE FROM t');
    const texts = [
      "it's",
      "''",
      '\\',
      '\\n',
      'line\nbreak',
      '$1',
      '$$ dollar $$',
      '漢字 🚑',
      '{"a":"b\'c"}',
      '',
    ];
    const sql = 'SELECT $1::int AS i, $2::text AS s, $3::boolean AS b, $4::float8 AS f';
    for (let i = 0; i < texts.length; i++) {
      const args = [i, texts[i], i % 2 === 0, i % 3 === 0 ? null : 2.5e-7 * i];
      expect((await db.queryWrite(sql, args)).rows).toEqual((await db.query(sql, args)).rows);
      await db.queryWrite('INSERT INTO t (id, v) VALUES ($1, $2)', [i, texts[i]]);
    }
    const stored = await db.query<{ v: string }>('SELECT v FROM t ORDER BY id');
    expect(stored.rows.map((r) => r.v)).toEqual(texts);
  });

  preparedPlanContract(() => db);

  it('a prepared write reports its errors, and many statement texts stay usable', async () => {
    await db.query('DELETE FROM t');
    const err = await db.queryWrite("INSERT INTO t (id, v) VALUES ($1, $2), ($1, 'again')", [1, 'x']).then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    expect(err?.code).toBe('23505');
    // More distinct texts than the worker keeps prepared: the oldest are let go.
    for (let i = 0; i < 250; i++) {
      const r = await db.queryWrite<{ n: number }>(`SELECT $1::int + ${i} AS n`, [i]);
      expect(r.rows[0].n).toBe(2 * i);
    }
    expect((await db.queryWrite<{ n: number }>('SELECT $1::int + 0 AS n', [7])).rows[0].n).toBe(7);
  });
});
