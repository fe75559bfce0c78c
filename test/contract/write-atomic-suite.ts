// SqlClient.writeAtomic, the same on every client that has it: the statements commit
// together or not at all, the first failure is the error, and the client stays usable.

import { expect, it } from 'vitest';
import type { SqlClient } from '../../src/store/sql-client.ts';

/** `client()` gives a client with writeAtomic and a table `table (id int PRIMARY KEY, v text NOT NULL)`. */
export function writeAtomicContract(client: () => SqlClient, table: string): void {
  it('writeAtomic commits every statement or none, with the first failure as its error', async () => {
    const c = client();
    await c.query(`DELETE FROM ${table}`);
    const ok = await c.writeAtomic!([
      { text: `INSERT INTO ${table} (id, v) VALUES (1, 'a')` },
      { text: `UPDATE ${table} SET v = $1 WHERE id = 1 RETURNING v`, params: ['b'] },
    ]);
    expect(ok.map((r) => r.rowCount)).toEqual([1, 1]);
    expect(ok[1].rows).toEqual([{ v: 'b' }]);
    const err = await c.writeAtomic!([
      { text: `INSERT INTO ${table} (id, v) VALUES (2, 'c')` },
      { text: `INSERT INTO ${table} (id, v) VALUES (1, 'duplicate')` },
      { text: `INSERT INTO ${table} (id, v) VALUES (3, 'after the failure')` },
    ]).then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    expect(err?.code).toBe('23505'); // the duplicate, not the aborted transaction after it
    const { rows } = await c.query<{ id: number; v: string }>(`SELECT id, v FROM ${table} ORDER BY id`);
    expect(rows).toEqual([{ id: 1, v: 'b' }]);
    // Still usable.
    expect(
      (await c.writeAtomic!([{ text: `INSERT INTO ${table} (id, v) VALUES (4, 'd')` }]))[0].rowCount,
    ).toBe(1);
  });
}
