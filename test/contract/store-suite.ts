// One contract suite for every Store adapter (memory, PGlite, PostgreSQL). Each adapter's
// test file supplies a StoreTarget: how to open a store on its database (the same
// database on every call, so a reopen sees what was written), how to empty it between
// tests and how to tamper with the audit log behind the store's back.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { auditTime, GENESIS_HASH, hashAuditRow } from '../../src/store/audit-chain.ts';
import type { MemoryStore } from '../../src/store/memory-store.ts';
import { loadMigrations, migrate } from '../../src/store/migrate.ts';
import type { SqlClient } from '../../src/store/sql-client.ts';
import {
  type AssignmentRecord,
  type EpochS,
  isStoreError,
  type NewIncident,
  type Store,
  StoreError,
  type StoreOptions,
  type UnitInput,
  type WriteLink,
} from '../../src/store/store.ts';

export type AuditTamper =
  /** Edit a row's data, leaving its hash alone. */
  | { kind: 'update'; seq: number; data: unknown }
  /** Edit a row's data and recompute its own hash (an attacker who knows the algorithm). */
  | { kind: 'rehash'; seq: number; data: unknown }
  | { kind: 'delete'; seq: number };

export interface StoreTarget {
  /** Opens a store on the target's database (the same one on every call). */
  open(opts: StoreOptions): Promise<Store>;
  /** Empties every table and resets the audit chain. */
  reset(store: Store): Promise<void>;
  tamperAudit(store: Store, t: AuditTamper): Promise<void>;
  /** Releases (and for PostgreSQL drops) the database. */
  teardown(): Promise<void>;
  /** SQL adapters: the store's client, for the migration checks. */
  sqlClient?(store: Store): SqlClient;
}

// ---------------------------------------------------------------- SQL / memory helpers for targets

export async function sqlReset(client: SqlClient): Promise<void> {
  await client.exec(`
    DELETE FROM messages; DELETE FROM recipient_seq; DELETE FROM assignments; DELETE FROM events;
    DELETE FROM outbox; DELETE FROM incidents; DELETE FROM units; DELETE FROM audit; DELETE FROM audit_head;
    INSERT INTO audit_head (id, last_seq, last_hash) VALUES (true, 0, '${GENESIS_HASH}');
  `);
}

/** Tampering with raw SQL, as an operator with database access would. */
export async function sqlTamper(client: SqlClient, t: AuditTamper): Promise<void> {
  if (t.kind === 'delete') {
    await client.query('DELETE FROM audit WHERE seq = $1', [t.seq]);
    return;
  }
  if (t.kind === 'update') {
    await client.query('UPDATE audit SET data = $2::text::jsonb WHERE seq = $1', [
      t.seq,
      JSON.stringify(t.data),
    ]);
    return;
  }
  const { rows } = await client.query<{
    at: Date;
    actor: string;
    action: string;
    subject: string;
    prev_hash: string;
  }>('SELECT at, actor, action, subject, prev_hash FROM audit WHERE seq = $1', [t.seq]);
  const r = rows[0];
  const hash = hashAuditRow(r.prev_hash, {
    seq: t.seq,
    at: auditTime(r.at),
    actor: r.actor,
    action: r.action,
    subject: r.subject,
    data: t.data,
  });
  await client.query('UPDATE audit SET data = $2::text::jsonb, hash = $3 WHERE seq = $1', [
    t.seq,
    JSON.stringify(t.data),
    hash,
  ]);
}

export function memoryTamper(store: MemoryStore, t: AuditTamper): void {
  const rows = store.db.audit;
  const i = rows.findIndex((r) => r.seq === t.seq);
  if (i < 0) throw new Error(`no audit row ${t.seq}`);
  if (t.kind === 'delete') {
    rows.splice(i, 1);
    return;
  }
  const row = rows[i];
  row.data = t.data;
  if (t.kind === 'rehash') row.hash = hashAuditRow(row.prevHash, { ...row, at: auditTime(row.at) });
}

// ---------------------------------------------------------------- fixtures

const T0: EpochS = 1772380800.123; // 2026-03-01T16:00:00.123Z

export function unitFixture(id: string, over: Partial<UnitInput> = {}): UnitInput {
  return {
    id,
    department: 'fire',
    capabilities: ['fire-engine'],
    home: [113.459, 23.106],
    speedKmh: 40,
    turnoutS: 60,
    status: 'available',
    ...over,
  };
}

export function incidentFixture(over: Partial<NewIncident> = {}): NewIncident {
  return {
    type: 'structure-fire',
    priority: 1,
    location: [113.462, 23.111],
    reportedAt: T0,
    targetAt: T0 + 480,
    payload: { callback: '+86 20 1234 5678', description: 'smoke from 3rd floor' },
    ...over,
  };
}

async function expectStoreError(p: Promise<unknown>, code: StoreError['code'], reason?: string) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected StoreError ${code}`).toBeInstanceOf(StoreError);
  const se = err as StoreError;
  expect(se.code).toBe(code);
  if (reason) expect(se.details.reason).toBe(reason);
  return se;
}

// ---------------------------------------------------------------- the suite

export function storeContract(
  name: string,
  makeTarget: () => Promise<StoreTarget>,
  /** `sql`: also run the migration checks (the target must provide sqlClient). */
  features: { sql?: boolean } = {},
): void {
  describe(`Store contract: ${name}`, () => {
    let target: StoreTarget;
    let store: Store;
    const clock = { t: T0 };
    const opts: StoreOptions = { now: () => clock.t };
    const actor = 'dispatcher:alice';

    beforeAll(async () => {
      target = await makeTarget();
      store = await target.open(opts);
    });

    afterAll(async () => {
      await store?.close().catch(() => {});
      await target?.teardown();
    });

    beforeEach(async () => {
      clock.t = T0;
      await target.reset(store);
    });

    // ------------------------------------------------------------ units

    it('upserts, reads and lists units; versions them; optimistic update conflicts', async () => {
      const a = await store.upsertUnit(
        unitFixture('FE-02', { homeArea: 'huangpu-1', payload: { callSign: 'Engine 2' }, since: T0 - 10 }),
      );
      expect(a).toMatchObject({
        id: 'FE-02',
        version: 1,
        status: 'available',
        payload: { callSign: 'Engine 2' },
      });
      expect(a.since).toBe(T0 - 10);
      await store.upsertUnit(unitFixture('AMB-1', { department: 'health', capabilities: ['ambulance'] }));
      clock.t = T0 + 5;
      const b = await store.upsertUnit(
        unitFixture('FE-02', {
          status: 'en_route',
          position: [113.46, 23.107],
          incidentId: 'I-1',
          role: 'fire-engine',
        }),
      );
      expect(b).toMatchObject({
        role: 'fire-engine',
        version: 2,
        status: 'en_route',
        position: [113.46, 23.107],
        incidentId: 'I-1',
      });
      expect(b.createdAt).toBe(T0);
      expect(b.updatedAt).toBe(T0 + 5);
      expect(b.homeArea).toBeUndefined();

      expect(await store.getUnit('FE-02')).toEqual(b);
      expect(await store.getUnit('nope')).toBeUndefined();
      const some = await store.getUnits(['nope', 'FE-02', 'AMB-1', 'FE-02']);
      expect(some.sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual([await store.getUnit('AMB-1'), b]);
      expect((await store.listUnits()).map((u) => u.id)).toEqual(['AMB-1', 'FE-02']);
      expect((await store.listUnits({ status: 'en_route' })).map((u) => u.id)).toEqual(['FE-02']);
      expect((await store.listUnits({ department: 'health' })).map((u) => u.id)).toEqual(['AMB-1']);

      const c = await store.upsertUnit(unitFixture('FE-02', { status: 'on_scene' }), { expectVersion: 2 });
      expect(c.version).toBe(3);
      expect(c.role).toBeUndefined();
      await expectStoreError(
        store.upsertUnit(unitFixture('FE-02'), { expectVersion: 2 }),
        'CONFLICT',
        'stale',
      );
      await expectStoreError(store.upsertUnit(unitFixture('GHOST'), { expectVersion: 1 }), 'NOT_FOUND');
      await expectStoreError(store.upsertUnit(unitFixture('BAD', { speedKmh: 0 })), 'INVALID');
      await expectStoreError(
        store.upsertUnit(unitFixture('BAD', { status: 'sleeping' as never })),
        'INVALID',
      );
    });

    // ------------------------------------------------------------ incidents

    it('creates an incident with its reported event, outbox job and audit row in one go', async () => {
      const { incident, created } = await store.createIncident(
        incidentFixture({ id: 'I-000001', cell: 'c-12', area: 'huangpu-1' }),
        { actor, idempotencyKey: 'k-1' },
      );
      expect(created).toBe(true);
      expect(incident).toMatchObject({
        id: 'I-000001',
        type: 'structure-fire',
        priority: 1,
        location: [113.462, 23.111],
        reportedAt: T0,
        targetAt: T0 + 480,
        status: 'queued',
        cell: 'c-12',
        area: 'huangpu-1',
        idempotencyKey: 'k-1',
        assignedUnitIds: [],
        payload: { callback: '+86 20 1234 5678', description: 'smoke from 3rd floor' },
        version: 1,
      });
      expect(incident.closedAt).toBeUndefined();

      const detail = await store.getIncident('I-000001');
      expect(detail?.timeline.map((e) => e.kind)).toEqual(['reported']);
      expect(detail?.timeline[0]).toMatchObject({ incidentId: 'I-000001', actor, at: T0 });
      expect(detail?.assignments).toEqual([]);
      expect(await store.getIncident('nope')).toBeUndefined();
      // The bulk read gives what the single one gives, for the ids that exist.
      const many = await store.getIncidents(['nope', 'I-000001', 'I-000001']);
      expect(many).toEqual([detail]);
      expect(await store.getIncidents([])).toEqual([]);

      const jobs = await store.claimOutbox(10);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]).toMatchObject({ topic: 'incident.created', payload: { incidentId: 'I-000001' } });

      const audit = await store.listAudit();
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ seq: 1, actor, action: 'incident.create', subject: 'I-000001' });

      // generated ids and a custom job
      const other = await store.createIncident(incidentFixture(), {
        actor,
        job: { topic: 'dispatch', payload: { reason: 'new' } },
      });
      expect(other.incident.id).toMatch(/^inc_/);
      expect((await store.claimOutbox(10)).map((j) => j.topic)).toEqual(['dispatch']);

      // No job (the caller did its work), directly and held back to the commit.
      const none = await store.createIncident(incidentFixture(), { actor, job: false });
      const held = await store.transaction(
        (tx) => tx.createIncident(incidentFixture(), { actor, job: false, writeBehind: true }),
        { defer: true, writeBehind: true },
      );
      expect((await store.getIncidents([none.incident.id, held.incident.id])).map((i) => i.id)).toEqual([
        none.incident.id,
        held.incident.id,
      ]);
      // (The two claimed above are still pending: claimed, not completed.)
      expect(await store.claimOutbox(10)).toEqual([]);
      expect(await store.outboxBacklog()).toBe(2);
    });

    it('idempotency: a repeated key returns the first incident; a different body is a mismatch', async () => {
      const first = await store.createIncident(incidentFixture({ id: 'I-A' }), {
        actor,
        idempotencyKey: 'same',
      });
      clock.t = T0 + 3;
      // A retry: the server stamps another id and report time; the request body is the same.
      const again = await store.createIncident(incidentFixture({ id: 'I-B', reportedAt: T0 + 3 }), {
        actor,
        idempotencyKey: 'same',
      });
      expect(again.created).toBe(false);
      expect(again.incident).toEqual(first.incident);
      expect(await store.getIncident('I-B')).toBeUndefined();

      const mismatch = await expectStoreError(
        store.createIncident(incidentFixture({ type: 'noise', priority: 4 }), {
          actor,
          idempotencyKey: 'same',
        }),
        'IDEMPOTENCY_MISMATCH',
      );
      expect(mismatch.details.id).toBe('I-A');
      // An explicit fingerprint (e.g. a hash of the raw HTTP body) overrides the default.
      await store.createIncident(incidentFixture(), { actor, idempotencyKey: 'fp', fingerprint: 'body-1' });
      await expectStoreError(
        store.createIncident(incidentFixture(), { actor, idempotencyKey: 'fp', fingerprint: 'body-2' }),
        'IDEMPOTENCY_MISMATCH',
      );
      // Same id without a key: duplicate.
      await expectStoreError(
        store.createIncident(incidentFixture({ id: 'I-A' }), { actor }),
        'CONFLICT',
        'duplicate_id',
      );
      await expectStoreError(
        store.createIncident(incidentFixture({ priority: 7 as never }), { actor }),
        'INVALID',
      );
      expect(await store.verifyAudit()).toMatchObject({ ok: true, rows: 2 });
    });

    it('idempotency: 100 concurrent posts with one key make exactly one incident', async () => {
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.createIncident(incidentFixture({ id: `I-RACE-${i}` }), { actor, idempotencyKey: 'race' }),
        ),
      );
      const ids = new Set(results.map((r) => r.incident.id));
      expect(ids.size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(await store.listIncidents({ limit: 1000 })).toHaveLength(1);
      expect(await store.listEvents({ limit: 1000 })).toHaveLength(1);
      expect(await store.outboxBacklog()).toBe(1);
      expect(await store.verifyAudit()).toMatchObject({ ok: true, rows: 1 });
    });

    it('lists incidents with filters, order and paging', async () => {
      const mk = (id: string, dt: number, over: Partial<NewIncident> = {}) =>
        store.createIncident(incidentFixture({ id, reportedAt: T0 + dt, ...over }), { actor });
      await mk('I-1', 0, { area: 'north' });
      await mk('I-2', 10, { type: 'noise', priority: 4, area: 'south' });
      await mk('I-3', 20, { area: 'north' });
      await mk('I-4', 20, { area: 'south' });
      await store.updateIncidentStatus('I-3', 'queued', 'cancelled', { actor });

      const ids = async (f: Parameters<Store['listIncidents']>[0]) =>
        (await store.listIncidents(f)).map((i) => i.id);
      expect(await ids({})).toEqual(['I-4', 'I-3', 'I-2', 'I-1']);
      expect(await ids({ order: 'asc' })).toEqual(['I-1', 'I-2', 'I-3', 'I-4']);
      expect(await ids({ open: true, order: 'asc' })).toEqual(['I-1', 'I-2', 'I-4']);
      expect(await ids({ open: false })).toEqual(['I-3']);
      expect(await ids({ status: ['queued'], area: 'north' })).toEqual(['I-1']);
      expect(await ids({ type: 'noise' })).toEqual(['I-2']);
      expect(await ids({ reportedFrom: T0 + 10, reportedTo: T0 + 20, order: 'asc' })).toEqual(['I-2']);
      expect(await ids({ order: 'asc', limit: 2, offset: 1 })).toEqual(['I-2', 'I-3']);
    });

    it('moves incident status with an optimistic check, events, audit and closedAt', async () => {
      await store.createIncident(incidentFixture({ id: 'I-S' }), { actor: 'system' });
      clock.t = T0 + 1;
      const a = await store.updateIncidentStatus('I-S', 'queued', 'assigned', { actor: 'engine' });
      expect(a).toMatchObject({ status: 'assigned', version: 2, updatedAt: T0 + 1 });
      await expectStoreError(
        store.updateIncidentStatus('I-S', 'queued', 'assigned', { actor: 'engine' }),
        'CONFLICT',
        'stale',
      );
      await expectStoreError(
        store.updateIncidentStatus('nope', 'queued', 'assigned', { actor }),
        'NOT_FOUND',
      );
      await expectStoreError(
        store.updateIncidentStatus('I-S', 'assigned', 'bogus' as never, { actor }),
        'INVALID',
      );
      await store.updateIncidentStatus('I-S', ['assigned', 'en_route'], 'on_scene', {
        actor: 'unit:FE-01',
        at: T0 + 300,
        event: { data: { distanceM: 20 } },
      });
      await store.updateIncidentStatus('I-S', 'on_scene', 'resolved', {
        actor: 'unit:FE-01',
        at: T0 + 900,
        audit: false,
      });
      clock.t = T0 + 1000;
      const closed = await store.updateIncidentStatus('I-S', 'resolved', 'closed', {
        actor,
        job: { topic: 'incident.closed', payload: { incidentId: 'I-S' } },
      });
      expect(closed.closedAt).toBe(T0 + 1000);

      const detail = await store.getIncident('I-S');
      expect(detail?.timeline.map((e) => [e.kind, e.actor, e.at])).toEqual([
        ['reported', 'system', T0],
        ['assigned', 'engine', T0 + 1],
        ['on_scene', 'unit:FE-01', T0 + 300],
        ['resolved', 'unit:FE-01', T0 + 900],
        ['closed', actor, T0 + 1000],
      ]);
      expect(detail?.timeline[2].data).toEqual({ from: 'assigned', distanceM: 20 });
      expect((await store.listAudit()).map((r) => r.action)).toEqual([
        'incident.create',
        'incident.status',
        'incident.status',
        'incident.status',
      ]);
      expect((await store.claimOutbox(10)).map((j) => j.topic)).toEqual([
        'incident.created',
        'incident.closed',
      ]);
    });

    it('only one of several concurrent identical status moves wins', async () => {
      await store.createIncident(incidentFixture({ id: 'I-C' }), { actor });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => store.updateIncidentStatus('I-C', 'queued', 'assigned', { actor })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(isStoreError(r.reason, 'CONFLICT')).toBe(true);
      }
      expect((await store.getIncident('I-C'))?.version).toBe(2);
    });

    it('patches incidents (priority, target, placement, payload) with a version check', async () => {
      await store.createIncident(incidentFixture({ id: 'I-P', cell: 'c-1' }), { actor });
      const p = await store.updateIncident(
        'I-P',
        { priority: 2, targetAt: null, cell: null, area: 'east', payload: { floor: 3 } },
        { actor, expectVersion: 1 },
      );
      expect(p).toMatchObject({ priority: 2, area: 'east', version: 2 });
      expect(p.targetAt).toBeUndefined();
      expect(p.cell).toBeUndefined();
      expect(p.payload).toEqual({
        callback: '+86 20 1234 5678',
        description: 'smoke from 3rd floor',
        floor: 3,
      });
      await expectStoreError(
        store.updateIncident('I-P', { priority: 1 }, { actor, expectVersion: 1 }),
        'CONFLICT',
        'stale',
      );
      await expectStoreError(store.updateIncident('nope', { priority: 1 }, { actor }), 'NOT_FOUND');
      const again = await store.updateIncident(
        'I-P',
        { targetAt: T0 + 60 },
        { actor, event: false, audit: false },
      );
      expect(again.targetAt).toBe(T0 + 60);
      expect((await store.getIncident('I-P'))?.timeline.map((e) => e.kind)).toEqual(['reported', 'updated']);
      expect(await store.getIncident('I-P')).toMatchObject({ priority: 2, area: 'east', targetAt: T0 + 60 });
    });

    // ------------------------------------------------------------ assignments

    async function seedUnitsAndIncidents() {
      await store.upsertUnit(unitFixture('FE-01'));
      await store.upsertUnit(unitFixture('FE-02'));
      await store.createIncident(incidentFixture({ id: 'I-1' }), { actor });
      await store.createIncident(incidentFixture({ id: 'I-2', reportedAt: T0 + 1 }), { actor });
    }

    const explanation = {
      summary: 'FE-01 nearest capable fire-engine, ETA 4m12s (target 8m)',
      etaS: 252,
      targetS: 480,
      lateS: 0,
      alternatives: [{ unitId: 'FE-02', etaS: 300, reason: 'farther' }],
    };

    it('records assignments; a second active assignment for a unit is a conflict', async () => {
      await seedUnitsAndIncidents();
      const a = await store.createAssignment(
        {
          id: 'A-1',
          incidentId: 'I-1',
          unitId: 'FE-01',
          capability: 'fire-engine',
          offeredAt: T0 + 2,
          ackDeadline: T0 + 32,
          etaS: 252,
          explanation,
        },
        { actor: 'engine' },
      );
      expect(a).toMatchObject({
        id: 'A-1',
        status: 'offered',
        offeredAt: T0 + 2,
        ackDeadline: T0 + 32,
        etaS: 252,
        crossesJurisdiction: false,
        explanation,
        version: 1,
      });
      const busy = await expectStoreError(
        store.createAssignment(
          { incidentId: 'I-2', unitId: 'FE-01', capability: 'fire-engine', offeredAt: T0 + 3, etaS: 10 },
          { actor: 'engine' },
        ),
        'CONFLICT',
        'unit_busy',
      );
      expect(busy.details.activeAssignmentId).toBe('A-1');
      await expectStoreError(
        store.createAssignment(
          {
            id: 'A-1',
            incidentId: 'I-2',
            unitId: 'FE-02',
            capability: 'fire-engine',
            offeredAt: T0,
            etaS: 1,
          },
          { actor },
        ),
        'CONFLICT',
        'duplicate_id',
      );
      await expectStoreError(
        store.createAssignment(
          { incidentId: 'I-2', unitId: 'GHOST', capability: 'fire-engine', offeredAt: T0, etaS: 1 },
          { actor },
        ),
        'NOT_FOUND',
      );
      await expectStoreError(
        store.createAssignment(
          { incidentId: 'NOPE', unitId: 'FE-02', capability: 'fire-engine', offeredAt: T0, etaS: 1 },
          { actor },
        ),
        'NOT_FOUND',
      );
      await expectStoreError(
        store.createAssignment(
          {
            incidentId: 'I-2',
            unitId: 'FE-02',
            capability: 'x',
            offeredAt: T0,
            etaS: 1,
            status: 'cleared' as never,
          },
          { actor },
        ),
        'INVALID',
      );

      expect((await store.getIncident('I-1'))?.assignedUnitIds).toEqual(['FE-01']);
      expect((await store.listIncidents({ order: 'asc' })).map((i) => i.assignedUnitIds)).toEqual([
        ['FE-01'],
        [],
      ]);
      // Once the first ends, the unit can be assigned again.
      await store.updateAssignment(
        'A-1',
        { status: 'declined', reason: 'engine out of water' },
        { actor: 'unit:FE-01' },
      );
      const b = await store.createAssignment(
        {
          id: 'A-2',
          incidentId: 'I-2',
          unitId: 'FE-01',
          capability: 'fire-engine',
          offeredAt: T0 + 5,
          etaS: 100,
        },
        { actor: 'engine' },
      );
      expect(b.status).toBe('offered');
      expect((await store.activeAssignments()).map((x) => x.id)).toEqual(['A-2']);
      expect((await store.listAssignments({ unitId: 'FE-01' })).map((x) => [x.id, x.status])).toEqual([
        ['A-1', 'declined'],
        ['A-2', 'offered'],
      ]);
      expect((await store.listAssignments({ status: 'declined' })).map((x) => x.reason)).toEqual([
        'engine out of water',
      ]);
      // Recent refusals only (how a restarted engine rebuilds its exclusions in one query).
      const ended = (await store.listAssignments({ status: 'declined' }))[0].endedAt!;
      expect(ended).toBeGreaterThan(0);
      expect((await store.listAssignments({ endedSince: ended })).map((x) => x.id)).toEqual(['A-1']);
      expect(await store.listAssignments({ endedSince: ended + 1 })).toEqual([]);
      const detail = await store.getIncident('I-1');
      expect(detail?.assignments.map((x) => x.id)).toEqual(['A-1']);
      expect(detail?.timeline.map((e) => e.kind)).toEqual(['reported', 'assigned', 'declined']);
      expect(detail?.timeline[1]).toMatchObject({
        unitId: 'FE-01',
        assignmentId: 'A-1',
        data: { etaS: 252 },
      });
      expect(detail?.timeline[2].data).toMatchObject({ reason: 'engine out of water' });
    });

    it('of concurrent assignments for one unit exactly one succeeds', async () => {
      await store.upsertUnit(unitFixture('FE-01'));
      for (let i = 0; i < 10; i++) {
        await store.createIncident(incidentFixture({ id: `I-${i}` }), { actor, audit: false });
      }
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          store.createAssignment(
            { incidentId: `I-${i}`, unitId: 'FE-01', capability: 'fire-engine', offeredAt: T0, etaS: 60 },
            { actor: 'engine' },
          ),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') {
          expect(r.reason).toBeInstanceOf(StoreError);
          expect((r.reason as StoreError).details.reason).toBe('unit_busy');
        }
      }
      expect(await store.activeAssignments()).toHaveLength(1);
    });

    it('walks an assignment through its lifecycle with stamps, checks and events', async () => {
      await seedUnitsAndIncidents();
      await store.createAssignment(
        {
          id: 'A-1',
          incidentId: 'I-1',
          unitId: 'FE-01',
          capability: 'fire-engine',
          offeredAt: T0,
          ackDeadline: T0 + 30,
          etaS: 200,
        },
        { actor: 'engine' },
      );
      const acc = await store.updateAssignment(
        'A-1',
        { status: 'accepted' },
        { actor: 'unit:FE-01', at: T0 + 5, expect: 'offered' },
      );
      expect(acc).toMatchObject({ status: 'accepted', acceptedAt: T0 + 5, version: 2 });
      await expectStoreError(
        store.updateAssignment('A-1', { status: 'en_route' }, { actor, expect: 'offered' }),
        'CONFLICT',
        'stale',
      );
      await expectStoreError(
        store.updateAssignment('A-1', { status: 'en_route' }, { actor, expectVersion: 1 }),
        'CONFLICT',
        'stale',
      );
      await expectStoreError(
        store.updateAssignment('A-1', { status: 'offered' }, { actor }),
        'CONFLICT',
        'invalid_transition',
      );
      const enr = await store.updateAssignment(
        'A-1',
        { status: 'en_route', etaS: 180 },
        { actor: 'unit:FE-01', at: T0 + 60 },
      );
      expect(enr).toMatchObject({ status: 'en_route', enRouteAt: T0 + 60, etaS: 180, acceptedAt: T0 + 5 });
      // A non-status patch writes no event and no audit row.
      await store.updateAssignment('A-1', { payload: { lastFix: [113.46, 23.11] } }, { actor: 'unit:FE-01' });
      await store.updateAssignment('A-1', { status: 'on_scene' }, { actor: 'unit:FE-01', at: T0 + 240 });
      const done = await store.updateAssignment(
        'A-1',
        { status: 'cleared' },
        { actor: 'unit:FE-01', at: T0 + 2000 },
      );
      expect(done).toMatchObject({ status: 'cleared', onSceneAt: T0 + 240, endedAt: T0 + 2000, version: 6 });
      expect(done.payload).toEqual({ lastFix: [113.46, 23.11] });
      await expectStoreError(
        store.updateAssignment('A-1', { status: 'on_scene' }, { actor }),
        'CONFLICT',
        'invalid_transition',
      );
      await expectStoreError(store.updateAssignment('NOPE', { status: 'cleared' }, { actor }), 'NOT_FOUND');
      expect(await store.activeAssignments()).toEqual([]);
      expect(await store.getAssignment('A-1')).toEqual(done);
      expect(await store.getAssignment('NOPE')).toBeUndefined();
      const kinds = (await store.listEvents({ incidentId: 'I-1' })).map((e) => e.kind);
      expect(kinds).toEqual(['reported', 'assigned', 'accepted', 'en_route', 'on_scene', 'cleared']);
      expect((await store.listEvents({ unitId: 'FE-01' })).map((e) => e.kind)).toEqual(kinds.slice(1));

      // timed out and pre-empted offers
      await store.createAssignment(
        { id: 'A-2', incidentId: 'I-2', unitId: 'FE-02', capability: 'fire-engine', offeredAt: T0, etaS: 1 },
        { actor: 'engine' },
      );
      const to = await store.updateAssignment(
        'A-2',
        { status: 'timed_out' },
        { actor: 'engine', expect: ['offered'] },
      );
      expect(to.endedAt).toBe(T0);
      expect((await store.listEvents({ incidentId: 'I-2' })).map((e) => e.kind)).toContain('ack_timeout');
      expect(await store.verifyAudit()).toMatchObject({ ok: true });
    });

    // ------------------------------------------------------------ transactions

    it('commits a state change and its outbox job together, or neither', async () => {
      await store.createIncident(incidentFixture({ id: 'I-T' }), { actor, job: { topic: 'noop' } });
      await store.completeOutbox((await store.claimOutbox(10)).map((j) => j.id));
      await expect(
        store.transaction(async (tx) => {
          await tx.updateIncidentStatus('I-T', 'queued', 'cancelled', { actor });
          await tx.enqueueOutbox({ topic: 'incident.cancelled', payload: { incidentId: 'I-T' } });
          await tx.upsertUnit(unitFixture('TX-1'));
          await tx.pushMessage('console', 'incident:updated', { id: 'I-T' });
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect((await store.getIncident('I-T'))?.status).toBe('queued');
      expect(await store.outboxBacklog()).toBe(0);
      expect(await store.getUnit('TX-1')).toBeUndefined();
      expect(await store.lastMessageSeq('console')).toBe(0);
      expect(await store.verifyAudit()).toMatchObject({ ok: true, rows: 1 });

      const out = await store.transaction(async (tx) => {
        const inc = await tx.updateIncidentStatus('I-T', 'queued', 'cancelled', { actor });
        const job = await tx.enqueueOutbox({ topic: 'incident.cancelled', payload: { incidentId: inc.id } });
        const msg = await tx.pushMessage('console', 'incident:updated', { id: inc.id, status: inc.status });
        // Nested transactions join the outer one.
        await tx.transaction((inner) => inner.appendEvent({ kind: 'note', actor, incidentId: 'I-T' }));
        return { job, msg };
      });
      expect(out.msg.seq).toBe(1);
      expect((await store.getIncident('I-T'))?.status).toBe('cancelled');
      const claimed = await store.claimOutbox(10);
      expect(claimed.map((j) => j.id)).toEqual([out.job.id]);
      expect(await store.verifyAudit()).toMatchObject({ ok: true, rows: 2 });
    });

    it('a StoreError inside a transaction leaves it usable', async () => {
      await seedUnitsAndIncidents();
      await store.createAssignment(
        { id: 'A-1', incidentId: 'I-1', unitId: 'FE-01', capability: 'fire-engine', offeredAt: T0, etaS: 1 },
        { actor },
      );
      const chosen = await store.transaction(async (tx) => {
        for (const unitId of ['FE-01', 'FE-02']) {
          try {
            return await tx.createAssignment(
              { incidentId: 'I-2', unitId, capability: 'fire-engine', offeredAt: T0, etaS: 1 },
              { actor },
            );
          } catch (e) {
            if (!isStoreError(e, 'CONFLICT')) throw e;
          }
        }
        throw new Error('no unit');
      });
      expect(chosen.unitId).toBe('FE-02');
      expect((await store.activeAssignments()).map((a) => a.unitId).sort()).toEqual(['FE-01', 'FE-02']);
      expect(await store.verifyAudit()).toMatchObject({ ok: true });
    });

    // ------------------------------------------------------------ events

    it('appends and lists free events', async () => {
      const e1 = await store.appendEvent({
        kind: 'location',
        actor: 'unit:FE-01',
        unitId: 'FE-01',
        data: { lonLat: [1, 2] },
      });
      const e2 = await store.appendEvent({ kind: 'alert', actor: 'engine', incidentId: 'I-9', at: T0 + 9 });
      expect(e2.id).toBeGreaterThan(e1.id);
      expect(e1).toMatchObject({ kind: 'location', at: T0, data: { lonLat: [1, 2] } });
      expect(e2).toMatchObject({ incidentId: 'I-9', at: T0 + 9, data: {} });
      expect((await store.listEvents()).map((e) => e.id)).toEqual([e1.id, e2.id]);
      expect((await store.listEvents({ afterId: e1.id })).map((e) => e.id)).toEqual([e2.id]);
      expect((await store.listEvents({ limit: 1 })).map((e) => e.id)).toEqual([e1.id]);
      await expectStoreError(store.appendEvent({ kind: '', actor }), 'INVALID');
    });

    // ------------------------------------------------------------ outbox

    it('outbox: claims oldest first, respects availability, leases and release', async () => {
      const j1 = await store.enqueueOutbox({ topic: 'a', payload: { n: 1 } });
      const j2 = await store.enqueueOutbox({ topic: 'b', availableAt: T0 + 60 });
      const j3 = await store.enqueueOutbox({ topic: 'c' });
      expect(await store.outboxBacklog()).toBe(3);
      const first = await store.claimOutbox(10);
      expect(first.map((j) => j.id)).toEqual([j1.id, j3.id]);
      expect(first[0]).toMatchObject({ topic: 'a', payload: { n: 1 }, attempts: 1, claimedAt: T0 });
      expect(await store.claimOutbox(10)).toEqual([]);

      // The relay failed on j3: give it back for a retry in 5 s.
      await store.releaseOutbox(j3.id, { error: 'redis down', retryAt: T0 + 5 });
      expect(await store.completeOutbox([j1.id])).toBe(1);
      expect(await store.completeOutbox([j1.id])).toBe(0);
      clock.t = T0 + 10;
      const retry = await store.claimOutbox(10);
      expect(retry.map((j) => [j.id, j.attempts, j.lastError])).toEqual([[j3.id, 2, 'redis down']]);

      // A claim older than the lease is claimable again (the relay died).
      clock.t = T0 + 61;
      expect((await store.claimOutbox(10, { leaseS: 100 })).map((j) => j.id)).toEqual([j2.id]);
      clock.t = T0 + 200;
      expect((await store.claimOutbox(1, { leaseS: 30 })).map((j) => j.id)).toEqual([j2.id]);
      expect(await store.completeOutbox([j2.id, j3.id])).toBe(2);
      expect(await store.outboxBacklog()).toBe(0);
      expect(await store.claimOutbox(10, { leaseS: 0 })).toEqual([]);
      await expectStoreError(store.releaseOutbox(999_999_999), 'NOT_FOUND');
    });

    it('outbox: concurrent claimers never get the same job twice', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 120; i++)
        ids.push((await store.enqueueOutbox({ topic: 'job', payload: { i } })).id);
      const seen: number[] = [];
      const claimer = async () => {
        for (;;) {
          const batch = await store.claimOutbox(7);
          if (batch.length === 0) return;
          seen.push(...batch.map((j) => j.id));
          await store.completeOutbox(batch.map((j) => j.id));
        }
      };
      await Promise.all([claimer(), claimer(), claimer(), claimer()]);
      expect(seen).toHaveLength(ids.length);
      expect(new Set(seen).size).toBe(ids.length);
      expect([...seen].sort((a, b) => a - b)).toEqual(ids);
      expect(await store.outboxBacklog()).toBe(0);
    });

    it('push log: a replayed payload is the pushed JSON as it was, key order and all', async () => {
      // A reconnecting client must get what a live one got. jsonb would reorder the keys
      // (shortest first) and fold duplicates; the log keeps the JSON text as pushed.
      const payload = { zeta: 1, id: 'A-1', nested: { b: [2, null, 'ü'], a: { y: true, x: -0.5 } }, e: '' };
      const direct = await store.pushMessage('unit:ORDER-1', 'assignment:offer', payload);
      const [held] = await store.transaction(
        (tx) => tx.pushMessages(['unit:ORDER-2'], 'assignment:offer', payload),
        {
          defer: true,
        },
      );
      for (const [r, m] of [
        ['unit:ORDER-1', direct],
        ['unit:ORDER-2', held],
      ] as const) {
        const [back] = await store.messagesSince(r, 0);
        expect(back).toEqual(m);
        expect(JSON.stringify(back.payload)).toBe(JSON.stringify(payload));
      }
    });
    // ------------------------------------------------------------ push log

    it('push log: per-recipient gap-free sequences under concurrency; messagesSince', async () => {
      const recipients = ['console', 'unit:FE-01', 'unit:FE-02'];
      await Promise.all([
        ...Array.from({ length: 90 }, (_, i) =>
          store.pushMessage(recipients[i % 3], 'incident:updated', { i }, { at: T0 + i }),
        ),
        ...Array.from({ length: 10 }, (_, i) => store.pushMessages(recipients, 'alert', { alert: i })),
      ]);
      for (const r of recipients) {
        const all = await store.messagesSince(r, 0);
        expect(all.map((m) => m.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
        expect(await store.lastMessageSeq(r)).toBe(40);
      }
      const page = await store.messagesSince('console', 35, 3);
      expect(page.map((m) => m.seq)).toEqual([36, 37, 38]);
      expect(page[0]).toMatchObject({ recipient: 'console' });
      expect(await store.messagesSince('console', 40)).toEqual([]);
      expect(await store.messagesSince('nobody', 0)).toEqual([]);
      expect(await store.lastMessageSeq('nobody')).toBe(0);

      const one = await store.pushMessage(
        'unit:FE-09',
        'assignment:offer',
        { assignmentId: 'A-1', n: [1, 2] },
        { at: T0 },
      );
      expect(one).toEqual({
        recipient: 'unit:FE-09',
        seq: 1,
        event: 'assignment:offer',
        payload: { assignmentId: 'A-1', n: [1, 2] },
        at: T0,
      });
      // Pruning old messages keeps the counter: the next seq continues.
      clock.t = T0 + 1000;
      const pruned = await store.pruneMessages(T0 + 500);
      expect(pruned).toBeGreaterThanOrEqual(91);
      expect(await store.messagesSince('unit:FE-09', 0)).toEqual([]);
      expect((await store.pushMessage('unit:FE-09', 'x', null)).seq).toBe(2);
      const many = await store.pushMessages(['b', 'a', 'b'], 'e', { k: 1 });
      expect(many.map((m) => [m.recipient, m.seq])).toEqual([
        ['b', 1],
        ['a', 1],
      ]);
    });

    // ------------------------------------------------------------ audit

    async function appendFive() {
      for (let i = 1; i <= 5; i++) {
        await store.appendAudit({
          actor,
          action: 'override.assign',
          subject: `I-${i}`,
          data: { i, note: 'x' },
          at: T0 + i,
        });
      }
    }

    it('audit: chains rows by hash and verifies the chain', async () => {
      expect(await store.verifyAudit()).toEqual({ ok: true, rows: 0, headSeq: 0, headHash: GENESIS_HASH });
      await appendFive();
      const rows = await store.listAudit();
      expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(rows[0].prevHash).toBe(GENESIS_HASH);
      for (let i = 1; i < rows.length; i++) expect(rows[i].prevHash).toBe(rows[i - 1].hash);
      expect(rows[2]).toMatchObject({
        actor,
        action: 'override.assign',
        subject: 'I-3',
        data: { i: 3, note: 'x' },
        at: T0 + 3,
      });
      expect((await store.listAudit({ afterSeq: 3, limit: 1 })).map((r) => r.seq)).toEqual([4]);
      const v = await store.verifyAudit();
      expect(v).toEqual({ ok: true, rows: 5, headSeq: 5, headHash: rows[4].hash });
      // Concurrent appends still form one chain.
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          store.appendAudit({ actor, action: 'x', subject: `s${i}`, data: [i] }),
        ),
      );
      expect(await store.verifyAudit()).toMatchObject({ ok: true, rows: 35 });
      await expectStoreError(store.appendAudit({ actor: '', action: 'x', subject: 'y' }), 'INVALID');
    });

    it('audit: an edited row is detected at its seq', async () => {
      await appendFive();
      await target.tamperAudit(store, { kind: 'update', seq: 3, data: { i: 3, note: 'edited' } });
      const v = await store.verifyAudit();
      expect(v).toMatchObject({ ok: false, brokenAt: 3, rows: 2 });
      if (!v.ok) expect(v.reason).toMatch(/hash mismatch/);
    });

    it('audit: an edited row with a recomputed hash breaks the next link', async () => {
      await appendFive();
      await target.tamperAudit(store, { kind: 'rehash', seq: 2, data: { i: 2, note: 'forged' } });
      const v = await store.verifyAudit();
      expect(v).toMatchObject({ ok: false, brokenAt: 3 });
      if (!v.ok) expect(v.reason).toMatch(/prev_hash/);
    });

    it('audit: a deleted row is detected at its seq (middle, first, last)', async () => {
      await appendFive();
      await target.tamperAudit(store, { kind: 'delete', seq: 3 });
      const v = await store.verifyAudit();
      expect(v).toMatchObject({ ok: false, brokenAt: 3, rows: 2 });
      if (!v.ok) expect(v.reason).toMatch(/missing/);

      await target.reset(store);
      await appendFive();
      await target.tamperAudit(store, { kind: 'delete', seq: 1 });
      expect(await store.verifyAudit()).toMatchObject({ ok: false, brokenAt: 1 });

      await target.reset(store);
      await appendFive();
      await target.tamperAudit(store, { kind: 'delete', seq: 5 });
      expect(await store.verifyAudit()).toMatchObject({ ok: false, brokenAt: 5 });
    });

    // ------------------------------------------------------------ recovery

    it('snapshot: a reopened store returns units, open incidents and active assignments', async () => {
      await seedUnitsAndIncidents();
      await store.upsertUnit(
        unitFixture('POL-1', { department: 'police', capabilities: ['police'], status: 'off_duty' }),
      );
      await store.createIncident(incidentFixture({ id: 'I-3', reportedAt: T0 + 2 }), { actor });
      await store.createAssignment(
        {
          id: 'A-1',
          incidentId: 'I-1',
          unitId: 'FE-01',
          capability: 'fire-engine',
          offeredAt: T0 + 1,
          ackDeadline: T0 + 31,
          etaS: 120,
          explanation,
        },
        { actor: 'engine' },
      );
      await store.updateIncidentStatus('I-1', 'queued', 'assigned', { actor: 'engine' });
      await store.upsertUnit(
        unitFixture('FE-01', { status: 'offered', incidentId: 'I-1', role: 'fire-engine', since: T0 + 1 }),
      );
      await store.createAssignment(
        {
          id: 'A-2',
          incidentId: 'I-2',
          unitId: 'FE-02',
          capability: 'fire-engine',
          offeredAt: T0 + 2,
          etaS: 99,
        },
        { actor: 'engine' },
      );
      await store.updateAssignment('A-2', { status: 'cancelled' }, { actor });
      await store.updateIncidentStatus('I-3', 'queued', 'cancelled', { actor });
      await store.pushMessage('console', 'incident:created', { id: 'I-1' });
      await store.pushMessage('console', 'incident:created', { id: 'I-2' });
      const job = await store.enqueueOutbox({ topic: 'pending-after-restart' });

      const before = await store.loadSnapshot();
      expect(before.units.map((u) => [u.id, u.status])).toEqual([
        ['FE-01', 'offered'],
        ['FE-02', 'available'],
        ['POL-1', 'off_duty'],
      ]);
      expect(before.openIncidents.map((i) => [i.id, i.status, i.assignedUnitIds])).toEqual([
        ['I-1', 'assigned', ['FE-01']],
        ['I-2', 'queued', []],
      ]);
      expect(before.openIncidents[0].targetAt).toBe(T0 + 480);
      // Every field as a read of the incident gives it (PGlite's snapshot comes as one JSON text).
      const single = await store.getIncidents(before.openIncidents.map((i) => i.id));
      expect(before.openIncidents).toEqual(
        before.openIncidents.map((i) => {
          const { timeline: _t, assignments: _a, ...rec } = single.find((d) => d.id === i.id)!;
          return rec;
        }),
      );
      expect(before.activeAssignments.map((a) => [a.id, a.ackDeadline])).toEqual([['A-1', T0 + 31]]);
      expect(before.at).toBe(T0);

      await store.ping();
      await store.close();
      await expect(store.ping()).rejects.toThrow();
      store = await target.open(opts);

      const after = await store.loadSnapshot();
      expect(after).toEqual(before);
      expect(after.activeAssignments[0].explanation).toEqual(explanation);
      expect(after.units[0]).toMatchObject({ incidentId: 'I-1', role: 'fire-engine', since: T0 + 1 });
      expect(await store.verifyAudit()).toMatchObject({ ok: true });
      expect((await store.pushMessage('console', 'x', {})).seq).toBe(3);
      expect((await store.claimOutbox(100)).map((j) => j.topic)).toContain('pending-after-restart');
      expect(await store.completeOutbox([job.id])).toBe(1);
      // Creating a unit-busy conflict still works after the reopen.
      await expectStoreError(
        store.createAssignment(
          { incidentId: 'I-2', unitId: 'FE-01', capability: 'fire-engine', offeredAt: T0, etaS: 1 },
          { actor },
        ),
        'CONFLICT',
        'unit_busy',
      );
    });

    if (features.sql) {
      it('migrations (SQL adapters): re-running applies nothing; a changed applied file is refused', async () => {
        const client = target.sqlClient!(store);
        const ids = (await loadMigrations()).map((m) => m.id);
        expect(ids.slice(0, 2)).toEqual(['001_init', '002_reviews_webhooks']);
        expect(await migrate(client)).toEqual({ applied: [], alreadyApplied: ids });
        const { rows } = await client.query<{ id: string }>('SELECT id FROM schema_migrations ORDER BY id');
        expect(rows.map((r) => r.id)).toEqual(ids);
        await expect(migrate(client, [{ id: '001_init', sql: 'SELECT 1' }])).rejects.toThrow(/checksum/);
      });
    }

    // ------------------------------------------------------------ deferred / write-behind transactions

    it('deferred write-behind transaction: the records it hands out are what is stored', async () => {
      await store.upsertUnit(unitFixture('FE-02'));
      const { incident } = await store.createIncident(incidentFixture({ id: 'I-WB-1' }), { actor });
      const unit0 = (await store.getUnit('FE-02'))!;
      clock.t = T0 + 3;
      const out = await store.transaction(
        async (tx) => {
          const a0 = await tx.createAssignment(
            {
              id: 'A-WB-1',
              incidentId: incident.id,
              unitId: 'FE-02',
              capability: 'fire-engine',
              offeredAt: T0 + 3,
              ackDeadline: T0 + 33,
              etaS: 240,
              explanation: { chosen: 'FE-02' } as never,
            },
            { actor },
          );
          const u1 = await tx.upsertUnit(
            unitFixture('FE-02', {
              status: 'offered',
              incidentId: incident.id,
              role: 'fire-engine',
              since: T0 + 3,
            }),
            { current: unit0 },
          );
          const i1 = await tx.updateIncidentStatus(incident.id, 'queued', 'assigned', {
            actor,
            current: incident,
          });
          const a1 = await tx.updateAssignment(
            a0.id,
            { status: 'accepted' },
            { actor, expect: 'offered', current: a0 },
          );
          const u2 = await tx.upsertUnit(
            unitFixture('FE-02', { status: 'en_route', incidentId: incident.id }),
            {
              current: u1,
            },
          );
          // A read inside sees the held-back writes.
          expect((await tx.getAssignment(a0.id))?.status).toBe('accepted');
          const msgs = await tx.pushMessages(['consoles', 'unit:FE-02'], 'assignment:updated', { id: a0.id });
          const ev = await tx.appendEvent({ kind: 'note', actor, incidentId: incident.id, data: { n: 1 } });
          const au = await tx.appendAudit({ actor, action: 'note', subject: incident.id, data: { n: 1 } });
          return { a1, u2, i1, msgs, ev, au };
        },
        { defer: true, writeBehind: true },
      );
      expect(await store.getAssignment('A-WB-1')).toEqual(out.a1);
      expect(out.a1).toMatchObject({ status: 'accepted', version: 2, acceptedAt: T0 + 3, etaS: 240 });
      expect(await store.getUnit('FE-02')).toEqual(out.u2);
      expect(out.u2).toMatchObject({
        status: 'en_route',
        version: 3,
        createdAt: unit0.createdAt,
        updatedAt: T0 + 3,
      });
      const { assignedUnitIds: _ignored, ...inc } = out.i1;
      expect(await store.getIncident(incident.id)).toMatchObject({ ...inc, status: 'assigned', version: 2 });
      // Ids, seqs and hashes are filled in by the commit.
      expect(out.msgs.every((m) => m.seq > 0)).toBe(true);
      expect(await store.messagesSince('unit:FE-02', 0)).toEqual([out.msgs[1]]);
      expect(out.ev.id).toBeGreaterThan(0);
      expect((await store.listEvents({ incidentId: incident.id })).at(-1)).toEqual(out.ev);
      expect(out.au.seq).toBeGreaterThan(0);
      expect((await store.listAudit({ afterSeq: out.au.seq - 1 }))[0]).toEqual(out.au);
      expect((await store.verifyAudit()).ok).toBe(true);
    });

    it('write-behind: an assignment keeps its explanation unless a change of the batch sets one', async () => {
      await store.upsertUnit(unitFixture('FE-02'));
      const { incident } = await store.createIncident(incidentFixture({ id: 'I-WB-X' }), { actor });
      const first = { summary: 'FE-02: nearest', alternatives: [{ unitId: 'FE-09', etaS: 300 }] };
      const a0 = await store.createAssignment(
        {
          id: 'A-WB-X',
          incidentId: incident.id,
          unitId: 'FE-02',
          capability: 'fire-engine',
          offeredAt: T0,
          ackDeadline: T0 + 30,
          etaS: 240,
          explanation: first as never,
        },
        { actor },
      );
      const wb = { defer: true, writeBehind: true } as const;
      // Status changes only: the stored explanation stays.
      const a1 = await store.transaction(
        (tx) => tx.updateAssignment(a0.id, { status: 'accepted' }, { actor, expect: 'offered', current: a0 }),
        wb,
      );
      expect(await store.getAssignment(a0.id)).toEqual(a1);
      expect(a1.explanation).toEqual(first);
      // A batch that sets it, then changes the status again: the new one is stored.
      const second = { summary: 'FE-02: re-explained' };
      const a3 = await store.transaction(async (tx) => {
        const a2 = await tx.updateAssignment(a0.id, { explanation: second as never }, { actor, current: a1 });
        return tx.updateAssignment(a0.id, { status: 'en_route' }, { actor, expect: 'accepted', current: a2 });
      }, wb);
      expect(a3.explanation).toEqual(second);
      expect(await store.getAssignment(a0.id)).toEqual(a3);
      // And a later status change keeps that one.
      const a4 = await store.transaction(
        (tx) =>
          tx.updateAssignment(a0.id, { status: 'on_scene' }, { actor, expect: 'en_route', current: a3 }),
        wb,
      );
      expect(await store.getAssignment(a0.id)).toEqual(a4);
      expect(a4.explanation).toEqual(second);
    });

    it('deferred transaction: a savepoint that throws leaves none of its rows', async () => {
      await store.upsertUnit(unitFixture('FE-02'));
      await store.transaction(
        async (tx) => {
          await tx.pushMessage('consoles', 'kept', { n: 1 });
          await tx
            .savepoint(async (sp) => {
              await sp.pushMessage('consoles', 'dropped', { n: 2 });
              await sp.appendEvent({ kind: 'dropped', actor });
              await sp.appendAudit({ actor, action: 'dropped', subject: 'x' });
              throw new Error('undo');
            })
            .catch(() => {});
          await tx.pushMessage('consoles', 'kept', { n: 3 });
        },
        { defer: true },
      );
      const msgs = await store.messagesSince('consoles', 0);
      expect(msgs.map((m) => [m.event, m.seq])).toEqual([
        ['kept', 1],
        ['kept', 2],
      ]);
      expect((await store.listEvents()).filter((e) => e.kind === 'dropped')).toEqual([]);
      expect((await store.verifyAudit()).ok).toBe(true);
    });

    it('deferred transaction `after`: it sends nothing before the one in flight ends, and sees its write', async () => {
      await store.upsertUnit(unitFixture('FE-03'));
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      // The first transaction writes, then waits before committing (a commit in flight).
      const first = store.transaction(
        async (tx) => {
          await tx.upsertUnit(unitFixture('FE-03', { status: 'off_duty' }));
          await tx.pushMessage('consoles', 'first', {});
          await held;
        },
        { defer: true },
      );
      const firstEnded = first.then(
        () => {},
        () => {},
      );
      let read = false;
      const second = store.transaction(
        async (tx) => {
          const u = await tx.getUnit('FE-03');
          read = true;
          await tx.pushMessage('consoles', 'second', {});
          return u?.status;
        },
        { defer: true, after: firstEnded },
      );
      await new Promise((r) => setTimeout(r, 30));
      expect(read).toBe(false);
      release();
      expect(await second).toBe('off_duty');
      const msgs = await store.messagesSince('consoles', 0);
      expect(msgs.map((m) => [m.event, m.seq])).toEqual([
        ['first', 1],
        ['second', 2],
      ]);
    });

    if (features.sql) {
      it('write-behind: a stale copy fails the whole transaction and writes nothing', async () => {
        const u0 = await store.upsertUnit(unitFixture('FE-02'));
        await store.upsertUnit(unitFixture('FE-02', { status: 'off_duty' })); // version 2 now
        const before = await store.lastMessageSeq('consoles');
        const err = await store
          .transaction(
            async (tx) => {
              await tx.upsertUnit(unitFixture('FE-02', { status: 'offered' }), { current: u0 });
              await tx.pushMessage('consoles', 'unit:updated', { id: 'FE-02' });
              await tx.appendAudit({ actor, action: 'x', subject: 'FE-02' });
            },
            { defer: true, writeBehind: true },
          )
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(isStoreError(err, 'CONFLICT'), String(err)).toBe(true);
        expect((await store.getUnit('FE-02'))?.status).toBe('off_duty');
        expect(await store.lastMessageSeq('consoles')).toBe(before);
        expect((await store.verifyAudit()).ok).toBe(true);
        // The audit head this store guessed was rolled back: the next row still chains.
        await store.transaction(
          (tx) => tx.appendAudit({ actor, action: 'y', subject: 'FE-02' }).then(() => {}),
          {
            defer: true,
          },
        );
        expect((await store.verifyAudit()).ok).toBe(true);
      });

      it('`afterLink`: behind a transaction that fails, the next writes nothing; behind one that held, it commits', async () => {
        if (!store.checksAfter) throw new Error('SQL stores check `after` themselves');
        const client = target.sqlClient!(store);
        // A deferred write first, so that the audit head is known and the writes below go
        // out alone (the only ones that may be pipelined).
        await store.transaction((tx) => tx.appendAudit({ actor, action: 'w', subject: 'x' }).then(() => {}), {
          defer: true,
        });
        const u0 = await store.upsertUnit(unitFixture('FE-04'));
        await store.upsertUnit(unitFixture('FE-04', { status: 'off_duty' })); // u0 is stale now
        const before = await store.lastMessageSeq('consoles');
        const pair = async (failFirst: boolean) => {
          const link1: WriteLink = {};
          const link2: WriteLink = {};
          const first = store.transaction(
            async (tx) => {
              if (failFirst)
                await tx.upsertUnit(unitFixture('FE-04', { status: 'offered' }), { current: u0 });
              await tx.pushMessage('consoles', 'first', {});
              await tx.appendAudit({ actor, action: 'first', subject: 'FE-04' });
            },
            { defer: true, writeBehind: true, link: link1 },
          );
          // The second starts once the first's write is out and before its answer came.
          for (let i = 0; i < 50 && link1.answered !== false; i++) await Promise.resolve();
          const second = store.transaction(
            async (tx) => {
              await tx.pushMessage('consoles', 'second', {});
              await tx.appendAudit({ actor, action: 'second', subject: 'FE-04' });
            },
            {
              defer: true,
              writeBehind: true,
              link: link2,
              after: first.then(
                () => true,
                () => false,
              ),
              afterLink: link1,
            },
          );
          const out = await Promise.allSettled([first, second]);
          // Where the client pipelines, the second went out while the first was in flight.
          if (client.writePipelined) expect(link2.ticket).toBeDefined();
          return out.map((r) => r.status);
        };
        expect(await pair(true)).toEqual(['rejected', 'rejected']);
        expect(await store.lastMessageSeq('consoles')).toBe(before);
        expect(await pair(false)).toEqual(['fulfilled', 'fulfilled']);
        const msgs = await store.messagesSince('consoles', before);
        expect(msgs.map((m) => [m.event, m.seq])).toEqual([
          ['first', before + 1],
          ['second', before + 2],
        ]);
        const v = await store.verifyAudit();
        expect(v.ok).toBe(true);
      });

      it('write-behind: a second active assignment for a unit fails the transaction at commit', async () => {
        await store.upsertUnit(unitFixture('FE-02'));
        const { incident } = await store.createIncident(incidentFixture({ id: 'I-WB-2' }), { actor });
        const mk = (id: string) => ({
          id,
          incidentId: incident.id,
          unitId: 'FE-02',
          capability: 'fire-engine',
          offeredAt: T0,
          etaS: 60,
        });
        await store.createAssignment(mk('A-1'), { actor });
        const err = await store
          .transaction((tx) => tx.createAssignment(mk('A-2'), { actor }), { defer: true, writeBehind: true })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(isStoreError(err)).toBe(true);
        expect(await store.getAssignment('A-2')).toBeUndefined();
      });
    }

    // A unit clears and is offered its next incident in the same batch: the old assignment
    // must end before the new one is written (one active assignment per unit), in one commit.
    describe('write-behind: an assignment ends and the same unit gets its next one', () => {
      const setup = async () => {
        await store.upsertUnit(unitFixture('FE-02'));
        const { incident: first } = await store.createIncident(incidentFixture({ id: 'I-WB-3' }), { actor });
        const { incident: next } = await store.createIncident(incidentFixture({ id: 'I-WB-4' }), { actor });
        const a0 = await store.createAssignment(
          {
            id: 'A-WB-3',
            incidentId: first.id,
            unitId: 'FE-02',
            capability: 'fire-engine',
            offeredAt: T0,
            etaS: 60,
          },
          { actor },
        );
        return { next, a0 };
      };
      const move = (tx: Store, a0: AssignmentRecord, nextId: string, stale = false) =>
        tx
          .updateAssignment(
            a0.id,
            { status: 'declined', reason: 'declined' },
            { actor, expect: 'offered', current: stale ? { ...a0, version: a0.version + 7 } : a0 },
          )
          .then(() =>
            tx.createAssignment(
              {
                id: 'A-WB-4',
                incidentId: nextId,
                unitId: 'FE-02',
                capability: 'fire-engine',
                offeredAt: T0 + 5,
                etaS: 90,
              },
              { actor },
            ),
          );

      it('commits both, with their messages and audit rows', async () => {
        const { next, a0 } = await setup();
        const seq0 = await store.lastMessageSeq('unit:FE-02');
        const out = await store.transaction(
          async (tx) => {
            const created = await move(tx, a0, next.id);
            const msgs = await tx.pushMessages(['consoles', 'unit:FE-02'], 'assignment:offer', {
              id: created.id,
            });
            return { created, msgs };
          },
          { defer: true, writeBehind: true },
        );
        expect((await store.getAssignment('A-WB-3'))?.status).toBe('declined');
        expect(await store.getAssignment('A-WB-4')).toEqual(out.created);
        expect((await store.activeAssignments()).map((a) => a.id)).toEqual(['A-WB-4']);
        expect(out.msgs[1].seq).toBe(seq0 + 1);
        expect(await store.messagesSince('unit:FE-02', seq0)).toEqual([out.msgs[1]]);
        expect((await store.verifyAudit()).ok).toBe(true);
      });

      // A stale copy is found by the SQL stores' write-behind guards (the memory store keeps no copies).
      if (features.sql) {
        it('a guessed audit head gone stale (another writer) is read again, and both commit', async () => {
          const { next, a0 } = await setup();
          // This store's guess of the head is now its own last row; another store on the same
          // database appends one more.
          await store.transaction(
            (tx) => tx.appendAudit({ actor, action: 'x', subject: 'a' }).then(() => {}),
            {
              defer: true,
              writeBehind: true,
            },
          );
          const { SqlStore } = await import('../../src/store/sql-store.ts');
          const other = await SqlStore.open(target.sqlClient!(store), { ...opts, migrate: false });
          await other.appendAudit({ actor, action: 'y', subject: 'b' });
          const created = await store.transaction((tx) => move(tx, a0, next.id), {
            defer: true,
            writeBehind: true,
          });
          expect(await store.getAssignment('A-WB-4')).toEqual(created);
          expect((await store.getAssignment('A-WB-3'))?.status).toBe('declined');
          const audit = await store.listAudit();
          expect(audit.map((r) => r.action).slice(-4)).toEqual([
            'x',
            'y',
            'assignment.status',
            'assignment.create',
          ]);
          expect((await store.verifyAudit()).ok).toBe(true);
        });

        it('a stale copy of the ended one fails both, and writes nothing', async () => {
          const { next, a0 } = await setup();
          const seq0 = await store.lastMessageSeq('unit:FE-02');
          const audit0 = (await store.listAudit()).length;
          const err = await store
            .transaction(
              async (tx) => {
                const created = await move(tx, a0, next.id, true);
                await tx.pushMessages(['unit:FE-02'], 'assignment:offer', { id: created.id });
              },
              { defer: true, writeBehind: true },
            )
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          expect(isStoreError(err), String(err)).toBe(true);
          expect(await store.getAssignment('A-WB-3')).toEqual(a0);
          expect(await store.getAssignment('A-WB-4')).toBeUndefined();
          expect(await store.lastMessageSeq('unit:FE-02')).toBe(seq0);
          expect((await store.listAudit()).length).toBe(audit0);
          expect((await store.verifyAudit()).ok).toBe(true);
        });
      }
    });

    it('returns copies: mutating a returned record does not change the store', async () => {
      const u = await store.upsertUnit(unitFixture('FE-01'));
      u.capabilities.push('ladder');
      u.home[0] = 0;
      const got = await store.getUnit('FE-01');
      expect(got?.capabilities).toEqual(['fire-engine']);
      expect(got?.home[0]).toBe(113.459);
    });
  });
}
