// SqlClient.writeAtomic, the same on every client that has it: the statements commit
// together or not at all, the first failure is the error, and the client stays usable. And
// SqlClient.queryWrite's prepared statements, planned once, keep their index plans.

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

/**
 * `client()` gives a client whose queryWrite keeps statements prepared, with every queryWrite
 * on one session (where pg_prepared_statements shows them). The shape of the engine's guarded
 * updates (sql-flush.ts) is first run on 20 rows of a wide table never analysed: as wide as
 * the assignments table (under ten pages, Postgres plans a never-vacuumed table as ten pages,
 * and ten pages of wide rows are few enough to scan). Planned from those sizes the update
 * would scan the table for good; the table then grows to 20,020 rows.
 */
export function preparedPlanContract(client: () => SqlClient): void {
  it('a prepared write keyed by primary key keeps its index plan as its table grows from a few rows', async () => {
    const c = client();
    const write = <T>(sql: string, params?: unknown[]) => c.queryWrite!<T>(sql, params);
    const wide = Array.from({ length: 12 }, (_, i) => `c${i} text`).join(', ');
    await c.query(`CREATE TABLE grows (id text PRIMARY KEY, version int NOT NULL, ${wide})`);
    const update = `UPDATE grows g SET version = t.version FROM jsonb_to_recordset($1::text::jsonb)
        AS t(id text, version int, expect int)
      WHERE g.id = ANY(ARRAY(SELECT jsonb_array_elements_text($2::text::jsonb)))
        AND g.id = t.id AND g.version = t.expect RETURNING 1`;
    const rows = JSON.stringify([{ id: 'k-1', version: 2, expect: 1 }]);
    await c.query("INSERT INTO grows SELECT 'first-' || i, 1 FROM generate_series(1, 20) AS i");
    // Past the five runs after which Postgres settles on a generic plan.
    for (let i = 0; i < 8; i++) expect((await write(update, [rows, '["k-1"]'])).rows).toEqual([]);
    await c.query("INSERT INTO grows SELECT 'k-' || i, 1 FROM generate_series(1, 20000) AS i");
    expect((await write(update, [rows, '["k-1"]'])).rows).toEqual([{ '?column?': 1 }]);
    const [{ name }] = (
      await write<{ name: string }>(
        "SELECT name FROM pg_prepared_statements WHERE statement LIKE '%UPDATE grows%'",
      )
    ).rows;
    const plan = await write<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE ${name}('${rows}', '["k-1"]')`);
    const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(text).toContain('grows_pkey');
    expect(text).not.toContain('Seq Scan on grows');
  });
}
