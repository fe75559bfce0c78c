// The lane's pipelining against real databases (embedded PGlite in its worker thread, and
// PostgreSQL): a batch whose work ran over a commit that then failed is undone and runs again,
// and nothing of the failed attempt shows, in the store, the mirror or the pushed messages.
// Needs PostgreSQL (DATABASE_URL, default the local test server); fails without it, never skips.

import { afterAll, describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/core/catalog.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';
import type { Actor } from '../../src/engine/api.ts';
import { Engine } from '../../src/engine/engine.ts';
import { RecordingPublisher } from '../../src/engine/memory-publisher.ts';
import { systemClock } from '../../src/engine/ports.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import { createDatabase, createPgClient, dropDatabase } from '../../src/store/pg-client.ts';
import { PgliteThreadClient } from '../../src/store/pglite-thread-client.ts';
import type { SqlClient } from '../../src/store/sql-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ADMIN: Actor = { role: 'admin', id: 'root' };
const DISPATCHER: Actor = { role: 'dispatcher', id: 'd.wang' };
const unit = (id: string): Actor => ({ role: 'unit', id: `u-${id}`, unitId: id });
const BASE: LonLat = [113.45, 23.1];
const UNITS = Array.from({ length: 70 }, (_, i) => `L-${String(i + 1).padStart(2, '0')}`);
const FIRST = UNITS.slice(0, 64);
/**
 * Batch 2: six reports, each making an incident. They depend on nothing batch 1 writes, and
 * running one twice makes two incidents: were batch 2 committed although batch 1 failed (and
 * then run again), it would show.
 */
const REPORTS = Array.from({ length: 6 }, (_, i): LonLat => [BASE[0] + 0.02 * (i + 1), BASE[1] + 0.02]);

const databases: string[] = [];
afterAll(async () => {
  for (const name of databases) await dropDatabase(ADMIN_URL, name);
});

const backends: [string, () => Promise<SqlClient>][] = [
  ['PGlite (worker thread)', () => PgliteThreadClient.start()],
  [
    'PostgreSQL',
    async () => {
      const db = await createDatabase(ADMIN_URL);
      databases.push(db.name);
      return createPgClient(db.url, { max: 5 });
    },
  ],
];

describe.each(backends)('pipelined batches on %s', (_name, open) => {
  it('a batch run over a commit that fails is undone, runs again, and leaves no trace twice', async () => {
    await run(open, true);
  }, 60_000);

  it('with overlapCommits off, no batch runs over a commit, and the same changes land', async () => {
    await run(open, false);
  }, 60_000);
});

/** 70 status changes at once on a fresh engine, the first batch's commit failing. */
async function run(open: () => Promise<SqlClient>, overlapCommits: boolean) {
  const store = await SqlStore.open(await open());
  const pub = new RecordingPublisher();
  const engine = new Engine({
    store,
    queue: new MemoryQueue(),
    publisher: pub,
    clock: systemClock,
    catalog: defaultCatalog(),
    travel: new GreatCircleTravel(),
    config: { sweepIntervalMs: 60_000, overlapCommits },
  });
  try {
    await engine.start();
    for (const [i, id] of UNITS.entries()) {
      await engine.upsertUnit(
        id,
        {
          department: 'police',
          capabilities: ['police'],
          home: [BASE[0] + i / 1000, BASE[1]],
          speedKmh: 40,
          turnoutS: 60,
        },
        ADMIN,
      );
    }
    // Another writer moves L-05 behind the engine: its next write-behind guard fails.
    await store.client.query(`UPDATE units SET version = version + 1 WHERE id = 'L-05'`);
    const eventsBefore = (await store.listEvents({ limit: 100_000 })).length;
    const incidentsBefore = (await store.listIncidents({ limit: 1000 })).length;
    const seqBefore = await store.lastMessageSeq('consoles');
    pub.clear();

    // 70 changes at once: the first 64 are batch 1 (L-05's change among them); the six
    // reports wait for it and run as batch 2 over its commit.
    const results = await Promise.allSettled([
      ...FIRST.map((id) => engine.reportStatus(id, 'off_duty', unit(id))),
      ...REPORTS.map((location) =>
        engine.reportIncident({ type: 'burglary-report', location }, undefined, DISPATCHER),
      ),
    ]);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);

    expect(engine.slowBatches).toBeGreaterThanOrEqual(1);
    if (overlapCommits) expect(engine.undoneOver).toBeGreaterThanOrEqual(1);
    else expect(engine.overlapped).toBe(0);

    // The store, the mirror and the pushes agree, each change once.
    expect((await store.listIncidents({ limit: 1000 })).length - incidentsBefore).toBe(6);
    for (const id of UNITS) {
      const stored = (await store.getUnit(id))!;
      if (FIRST.includes(id)) expect(stored.status, id).toBe('off_duty');
      expect(engine.mirror.units.get(id)?.status, id).toBe(stored.status);
      expect(engine.mirror.units.get(id)?.version, id).toBe(stored.version);
    }
    const events = (await store.listEvents({ limit: 100_000 })).slice(eventsBefore);
    expect(events.filter((e) => e.kind === 'unit_status')).toHaveLength(64);
    expect(events.filter((e) => e.kind === 'reported')).toHaveLength(6);
    // Each report made its incident (run twice, a report would be merged into its first run's).
    expect(events.filter((e) => e.kind === 'duplicate_report')).toEqual([]);
    for (const r of results.slice(FIRST.length))
      expect(r.status === 'fulfilled' && (r.value as { created: boolean }).created).toBe(true);
    const consoles = pub.for('consoles').map((m) => m.envelope.seq);
    expect(consoles).toEqual(Array.from({ length: consoles.length }, (_, i) => seqBefore + i + 1));
    expect(await store.lastMessageSeq('consoles')).toBe(seqBefore + consoles.length);
    for (const id of FIRST) expect(pub.for(`unit:${id}`), id).toHaveLength(1);
    expect((await store.verifyAudit()).ok).toBe(true);
  } finally {
    await engine.stop();
    await store.close();
  }
}
