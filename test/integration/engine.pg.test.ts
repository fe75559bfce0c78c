// The live engine on PostgreSQL + BullMQ (the production wiring): the core flow, and recovery
// after a stop with incidents queued and an offer pending. Needs PostgreSQL (DATABASE_URL,
// default the local test server) and Redis (REDIS_URL, default local); without them this file
// fails, it never skips. It creates and drops its own database and uses its own queue prefix.

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/core/catalog.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';
import type { Actor } from '../../src/engine/api.ts';
import type { EngineConfig } from '../../src/engine/config.ts';
import { Engine } from '../../src/engine/engine.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import { RecordingPublisher } from '../../src/engine/memory-publisher.ts';
import { systemClock } from '../../src/engine/ports.ts';
import { BullmqQueue } from '../../src/queue/bullmq-queue.ts';
import type { AssignmentView, OfferView } from '../../src/shared/events.ts';
import { createDatabase, createPgClient, dropDatabase } from '../../src/store/pg-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import { startWorkers, type Workers } from '../../workers/index.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `dispatch-test-engine-${randomBytes(4).toString('hex')}`;
const prefixes: string[] = [];
/** A queue prefix per test (a restarted engine reuses its predecessor's). */
const freshPrefix = () => {
  prefixes.push(`${PREFIX}-${prefixes.length + 1}`);
  return prefixes[prefixes.length - 1];
};

const DISPATCHER: Actor = { role: 'dispatcher', id: 'd.wang' };
const ADMIN: Actor = { role: 'admin', id: 'root' };
const unit = (id: string): Actor => ({ role: 'unit', id: `u-${id}`, unitId: id });
const BASE: LonLat = [113.45, 23.1];
const at = (dxKm: number, dyKm = 0): LonLat => [BASE[0] + dxKm / 102.4, BASE[1] + dyKm / 111.2];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  ms = 8000,
) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

interface Node {
  engine: Engine;
  store: SqlStore;
  queue: BullmqQueue;
  pub: RecordingPublisher;
  workers: Workers;
  stop(): Promise<void>;
}

const databases: string[] = [];

/** A fresh database per test (cheap on a server), so tests never see each other's units. */
async function freshDatabase(): Promise<string> {
  const db = await createDatabase(ADMIN_URL);
  databases.push(db.name);
  return db.url;
}
const nodes: Node[] = [];

async function node(dbUrl: string, prefix: string, config: Partial<EngineConfig> = {}): Promise<Node> {
  const store = await SqlStore.open(createPgClient(dbUrl, { max: 5 }));
  const queue = new BullmqQueue({ url: REDIS_URL, prefix, retry: { backoffMs: 100 } });
  await queue.ping();
  const pub = new RecordingPublisher();
  const engine = new Engine({
    store,
    queue,
    publisher: pub,
    clock: systemClock,
    catalog: defaultCatalog(),
    travel: new GreatCircleTravel(),
    config: { decideDebounceMs: 5, sweepIntervalMs: 1000, ...config },
  });
  await engine.start();
  const workers = await startWorkers(engine, queue, store, { relay: { pollMs: 50 } });
  let stopped = false;
  const n: Node = {
    engine,
    store,
    queue,
    pub,
    workers,
    async stop() {
      if (stopped) return;
      stopped = true;
      await engine.stop();
      await workers.stop();
      await queue.close();
      await store.close();
    },
  };
  nodes.push(n);
  return n;
}

async function offerFor(n: Node, unitId: string, incidentId: string): Promise<AssignmentView> {
  const o = await until(
    () =>
      n.pub
        .for(`unit:${unitId}`, 'assignment:offer')
        .map((m) => m.envelope.data as OfferView)
        .find((x) => x.incident.id === incidentId),
    `an offer of ${incidentId} to ${unitId}`,
  );
  return o.assignment;
}

async function addUnit(n: Node, id: string, home: LonLat) {
  await n.engine.upsertUnit(
    id,
    { department: 'police', capabilities: ['police'], home, speedKmh: 40, turnoutS: 60 },
    ADMIN,
  );
}

it(`reaches PostgreSQL at ${redact(ADMIN_URL)} and Redis at ${REDIS_URL} (required: fails, never skips)`, async () => {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL unreachable at ${redact(ADMIN_URL)}: ${(err as Error).message}. Start it or set DATABASE_URL.`,
    );
  } finally {
    await c.end().catch(() => {});
  }
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 3000, lazyConnect: true });
  r.on('error', () => {});
  try {
    await r.connect();
    expect(await r.ping()).toBe('PONG');
  } catch (err) {
    throw new Error(
      `Redis unreachable at ${REDIS_URL}: ${(err as Error).message}. Start it or set REDIS_URL.`,
    );
  } finally {
    r.disconnect();
  }
});

describe('engine on PostgreSQL + BullMQ', () => {
  afterAll(async () => {
    while (nodes.length > 0) await nodes.pop()!.stop();
    for (const prefix of prefixes) {
      const cleanup = new BullmqQueue({ url: REDIS_URL, prefix });
      try {
        // Obliterate this test's queues (no workers on this instance).
        for (const q of Object.values(QUEUES)) await cleanup.depth(q);
        await cleanup.purge();
      } finally {
        await cleanup.close();
      }
    }
    for (const name of databases) await dropDatabase(ADMIN_URL, name);
  });

  it('runs the core flow: offer, decline → next-best, accept, en route, on scene, clear', async () => {
    const n = await node(await freshDatabase(), freshPrefix(), { ackTimeoutS: 30, ackTimeoutOtherS: 30 });
    await addUnit(n, 'F-P1', at(0.5));
    await addUnit(n, 'F-P2', at(2));
    const { incident, created } = await n.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      'pg-key-1',
      DISPATCHER,
    );
    expect(created).toBe(true);
    const again = await n.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      'pg-key-1',
      DISPATCHER,
    );
    expect(again).toMatchObject({ created: false, incident: { id: incident.id } });
    const first = await offerFor(n, 'F-P1', incident.id);
    await n.engine.acknowledge(first.id, false, unit('F-P1'), 'already committed by radio');
    const second = await offerFor(n, 'F-P2', incident.id);
    await n.engine.acknowledge(second.id, true, unit('F-P2'));
    await n.engine.reportStatus('F-P2', 'en_route', unit('F-P2'));
    await n.engine.reportLocation('F-P2', at(0.61), unit('F-P2'));
    await n.engine.reportStatus('F-P2', 'on_scene', unit('F-P2'));
    await n.engine.reportStatus('F-P2', 'available', unit('F-P2'));
    const detail = await n.engine.getIncident(incident.id, DISPATCHER);
    expect(detail.status).toBe('resolved');
    expect(detail.assignments.map((a) => [a.unitId, a.status])).toEqual([
      ['F-P1', 'declined'],
      ['F-P2', 'cleared'],
    ]);
    // The target timer was armed in Redis and removed once a unit was on scene.
    await until(async () => (await n.queue.depth('timers')) === 0, 'timers to be disarmed');
    // Console seqs are gap-free and replayable from PostgreSQL.
    await until(() => !n.engine.busy, 'quiet');
    const seqs = n.pub.for('consoles').map((m) => m.envelope.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const stored = await n.store.messagesSince('consoles', 0);
    expect(stored.map((m) => m.seq)).toEqual(seqs);
    expect((await n.store.verifyAudit()).ok).toBe(true);
    await n.engine.closeIncident(incident.id, DISPATCHER);
    await n.stop();
  });

  it('recovers after a stop with incidents queued and an offer pending', async () => {
    const url = await freshDatabase();
    const prefix = freshPrefix();
    const a = await node(url, prefix, { ackTimeoutS: 2.5, ackTimeoutOtherS: 2.5 });
    await addUnit(a, 'R-P1', at(0.5, 5));
    const reported: string[] = [];
    for (const dx of [0.6, 1.5, 3]) {
      const r = await a.engine.reportIncident(
        { type: 'noise-complaint', location: at(dx, 5) },
        undefined,
        DISPATCHER,
      );
      reported.push(r.incident.id);
    }
    const pending = await offerFor(a, 'R-P1', reported[0]);
    const deadline = Date.parse(pending.ackDeadline!);
    await until(() => !a.engine.busy, 'A to settle');
    const queuedAtStop = (await a.store.listIncidents({ status: 'queued' })).map((i) => i.id).sort();
    expect(queuedAtStop).toEqual([reported[1], reported[2]].sort());
    // The ack timer is a delayed job in Redis; it outlives engine A.
    expect(await a.queue.depth('timers')).toBeGreaterThanOrEqual(1);
    await a.stop();

    const b = await node(url, prefix, { ackTimeoutS: 30, ackTimeoutOtherS: 30 });
    expect((await b.engine.listIncidents({ open: true }, DISPATCHER)).map((i) => i.id).sort()).toEqual(
      [...reported].sort(),
    );
    expect((await b.engine.listUnits(DISPATCHER)).find((u) => u.id === 'R-P1')?.status).toBe('offered');
    for (const [id, dx] of [
      ['R-P2', 1.4],
      ['R-P3', 3.1],
      ['R-P4', 0.2],
    ] as const) {
      await addUnit(b, id, at(dx, 5));
    }
    // The queued incidents are assigned by the new engine.
    await until(
      async () => (await b.store.listIncidents({ status: 'queued' })).length === 0,
      'the queued incidents to be assigned',
    );
    // The pending ack timer fires (not before its deadline, promptly after it).
    await until(
      async () => (await b.store.getAssignment(pending.id))?.status === 'timed_out',
      'the pending ack timer',
      10_000,
    );
    const firedAt = Date.now();
    expect(firedAt).toBeGreaterThanOrEqual(deadline - 50);
    expect(firedAt - deadline).toBeLessThan(2500);
    // …and the incident it held goes to another unit.
    await until(async () => {
      const active = await b.store.activeAssignments();
      const holder = (id: string) => active.find((x) => x.incidentId === id)?.unitId;
      return reported.every((id) => holder(id) !== undefined) && holder(reported[0]) !== 'R-P1';
    }, 'every incident to hold a unit');
    await until(() => !b.engine.busy, 'B to settle');
    const active = await b.store.activeAssignments();
    for (const id of reported) expect(active.some((x) => x.incidentId === id)).toBe(true);
    expect(active.find((x) => x.incidentId === reported[0])?.unitId).not.toBe('R-P1');
    expect(new Set(active.map((x) => x.unitId)).size).toBe(active.length);
    expect(b.engine.unitsWithTwoAssignments()).toEqual([]);
    expect(
      (await b.engine.listAlerts(DISPATCHER)).some((x) => x.kind === 'no_ack' && x.unitId === 'R-P1'),
    ).toBe(true);
    await b.stop();
  });
});
