import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../src/store/migrate.ts';
import { createDatabase, createPgClient, dropDatabase, type PgClient } from '../../src/store/pg-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import { sqlReset, sqlTamper, storeContract } from './store-suite.ts';
import { preparedPlanContract, writeAtomicContract } from './write-atomic-suite.ts';

// Real PostgreSQL: each run creates (and drops) its own dispatch_test_<random> database on
// the server of DATABASE_URL (default: the local test server). An unreachable server fails
// these tests; they never skip.
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

it(`reaches PostgreSQL at ${redact(ADMIN_URL)} (required: this file fails, never skips, without it)`, async () => {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL unreachable at ${redact(ADMIN_URL)}: ${(err as Error).message}. Start it or set DATABASE_URL.`,
    );
  }
  const { rows } = await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  await c.end();
  expect(Number(rows[0].v)).toBeGreaterThanOrEqual(130000); // WITH (FORCE) and the SQL here need PostgreSQL 13+
});

storeContract(
  'PostgreSQL',
  async () => {
    const db = await createDatabase(ADMIN_URL);
    return {
      open: (opts) => SqlStore.open(createPgClient(db.url, { max: 10 }), opts),
      reset: (store) => sqlReset((store as SqlStore).client),
      tamperAudit: (store, t) => sqlTamper((store as SqlStore).client, t),
      teardown: () => dropDatabase(ADMIN_URL, db.name),
      sqlClient: (store) => (store as SqlStore).client,
    };
  },
  { sql: true },
);

describe('PostgreSQL specifics', () => {
  let db: { name: string; url: string };
  const clients: PgClient[] = [];
  const client = (max = 4) => {
    const c = createPgClient(db.url, { max });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    db = await createDatabase(ADMIN_URL);
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    if (db) await dropDatabase(ADMIN_URL, db.name);
  });

  it('migrations started by several processes at once apply exactly once', async () => {
    const ids = (await loadMigrations()).map((m) => m.id);
    const results = await Promise.all([client(), client(), client(), client()].map((c) => migrate(c)));
    // Each file applied by exactly one process; the others find it applied.
    expect(results.flatMap((r) => r.applied).sort()).toEqual(ids);
    for (const id of ids) expect(results.filter((r) => r.alreadyApplied.includes(id))).toHaveLength(3);
    const { rows } = await client(1).query<{ n: string }>('SELECT count(*) AS n FROM schema_migrations');
    expect(Number(rows[0].n)).toBe(ids.length);
  });

  describe('writeAtomic', () => {
    let c: PgClient;
    beforeAll(async () => {
      c = client(2);
      await c.query('CREATE TABLE wa (id int PRIMARY KEY, v text NOT NULL)');
    });
    writeAtomicContract(() => c, 'wa');
  });

  describe('prepared writes (queryWrite, writeAtomic with prepare)', () => {
    // One commit connection, so that its session's prepared statements can be looked at.
    let c: PgClient;
    beforeAll(async () => {
      c = createPgClient(db.url, { max: 2, writers: 1 });
      clients.push(c);
      await c.query('CREATE TABLE pw (id int PRIMARY KEY, v text NOT NULL)');
    });

    it('take any text, number, boolean or null exactly as an unprepared statement does', async () => {
      const texts = ["it's", '\\', 'line\nbreak', '$1', '漢字 🚑', '{"a":"b\'c"}', ''];
      const sql = 'SELECT $1::int AS i, $2::text AS s, $3::boolean AS b, $4::float8 AS f';
      for (let i = 0; i < texts.length; i++) {
        const args = [i, texts[i], i % 2 === 0, i % 3 === 0 ? null : 2.5e-7 * i];
        expect((await c.queryWrite(sql, args)).rows).toEqual((await c.query(sql, args)).rows);
        await c.writeAtomic([
          { text: 'INSERT INTO pw (id, v) VALUES ($1, $2)', params: [i, texts[i]], prepare: true },
        ]);
      }
      expect((await c.query<{ v: string }>('SELECT v FROM pw ORDER BY id')).rows.map((r) => r.v)).toEqual(
        texts,
      );
      // A failing prepared statement reports its error and leaves the connection usable.
      const err = await c.queryWrite('INSERT INTO pw (id, v) VALUES ($1, $2)', [0, 'again']).then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      expect(err?.code).toBe('23505');
      expect((await c.queryWrite<{ n: number }>('SELECT $1::int + 1 AS n', [1])).rows[0].n).toBe(2);
    });

    // On the commit connection (writers: 1), where the statement is prepared.
    preparedPlanContract(() => c);
  });

  it('the database itself refuses a second active assignment for a unit', async () => {
    const c = client(2);
    const store = await SqlStore.open(c);
    await store.upsertUnit({
      id: 'U1',
      department: 'police',
      capabilities: ['police'],
      home: [0, 0],
      speedKmh: 30,
      turnoutS: 0,
      status: 'available',
    });
    await store.createIncident(
      { id: 'X1', type: 't', priority: 2, location: [0, 0], reportedAt: 1 },
      { actor: 'a' },
    );
    await store.createAssignment(
      { incidentId: 'X1', unitId: 'U1', capability: 'police', offeredAt: 1, etaS: 1 },
      { actor: 'a' },
    );
    await expect(
      c.query(
        `INSERT INTO assignments (id, incident_id, unit_id, capability, status, offered_at, eta_s, updated_at)
         VALUES ('raw', 'X1', 'U1', 'police', 'en_route', now(), 1, now())`,
      ),
    ).rejects.toMatchObject({ code: '23505', constraint: 'assignments_one_active_per_unit' });
  });

  it('a relay holding claimed rows open does not block another relay (SKIP LOCKED)', async () => {
    const c = client(4);
    const store = await SqlStore.open(c);
    await sqlReset(c);
    for (let i = 0; i < 10; i++) await store.enqueueOutbox({ topic: 'j', payload: { i } });
    let otherIds: number[] = [];
    const firstIds = await store.transaction(async (tx) => {
      const mine = await tx.claimOutbox(4);
      // Still inside the first relay's transaction: its rows stay locked.
      otherIds = (await store.claimOutbox(100)).map((j) => j.id);
      return mine.map((j) => j.id);
    });
    expect(firstIds).toHaveLength(4);
    expect(otherIds).toHaveLength(6);
    expect(otherIds.filter((id) => firstIds.includes(id))).toEqual([]);
  });
});
