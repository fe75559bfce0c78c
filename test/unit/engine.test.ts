// The live engine on its in-memory ports: MemoryStore, the in-process queue (real timers) and
// a recording Publisher. Each test builds its own engine (a memory store costs nothing).

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildCatalog, type CatalogIndex, defaultCatalog } from '../../src/core/catalog.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';
import type { Actor } from '../../src/engine/api.ts';
import type { EngineConfig } from '../../src/engine/config.ts';
import { Engine } from '../../src/engine/engine.ts';
import type { LiveKpis } from '../../src/engine/kpis.ts';
import { RecordingPublisher } from '../../src/engine/memory-publisher.ts';
import { systemClock } from '../../src/engine/ports.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import { ApiError } from '../../src/server/errors.ts';
import type { AlertView, AssignmentView, OfferView } from '../../src/shared/events.ts';
import { MemoryDatabase, MemoryStore } from '../../src/store/memory-store.ts';
import { checkHandlers, startWorkers, type Workers } from '../../workers/index.ts';
import { OutboxRelay } from '../../workers/outbox-relay.ts';

const DISPATCHER: Actor = { role: 'dispatcher', id: 'd.li' };
const ADMIN: Actor = { role: 'admin', id: 'root' };
const unit = (id: string): Actor => ({ role: 'unit', id: `u-${id}`, unitId: id });

// Huangpu, Guangzhou. 0.01° of longitude here ≈ 1.02 km.
const BASE: LonLat = [113.45, 23.1];
const at = (dxKm: number, dyKm = 0): LonLat => [BASE[0] + dxKm / 102.4, BASE[1] + dyKm / 111.2];

interface Harness {
  engine: Engine;
  store: MemoryStore;
  db: MemoryDatabase;
  queue: MemoryQueue;
  pub: RecordingPublisher;
  workers: Workers;
  stop(): Promise<void>;
}

const harnesses: Harness[] = [];

async function harness(
  opts: { config?: Partial<EngineConfig>; catalog?: CatalogIndex; db?: MemoryDatabase; units?: boolean } = {},
): Promise<Harness> {
  const db = opts.db ?? new MemoryDatabase();
  const store = new MemoryStore(db);
  const queue = new MemoryQueue({ retry: { backoffMs: 50 } });
  const pub = new RecordingPublisher();
  const engine = new Engine({
    store,
    queue,
    publisher: pub,
    clock: systemClock,
    catalog: opts.catalog ?? defaultCatalog(),
    travel: new GreatCircleTravel(),
    config: {
      ackTimeoutS: 30,
      ackTimeoutOtherS: 30,
      decideDebounceMs: 2,
      sweepIntervalMs: 0,
      ...opts.config,
    },
  });
  await engine.start();
  const workers = await startWorkers(engine, queue, store, { relay: { pollMs: 20 } });
  let stopped = false;
  const h: Harness = {
    engine,
    store,
    db,
    queue,
    pub,
    workers,
    async stop() {
      if (stopped) return;
      stopped = true;
      await engine.stop();
      await workers.stop();
      await queue.close();
    },
  };
  harnesses.push(h);
  if (opts.units !== false && !opts.db) {
    // Police along a line east of BASE, an ambulance, a chengguan officer.
    await addUnit(h, 'P1', ['police'], at(0.5));
    await addUnit(h, 'P2', ['police'], at(2));
    await addUnit(h, 'P3', ['police'], at(4));
    await addUnit(h, 'A1', ['ambulance'], at(1, 1), 'health');
    await addUnit(h, 'C1', ['chengguan'], at(0, 1), 'chengguan');
  }
  await quiet(h);
  return h;
}

afterEach(async () => {
  while (harnesses.length > 0) await harnesses.pop()!.stop();
});

async function addUnit(h: Harness, id: string, caps: string[], home: LonLat, department = 'police') {
  return h.engine.upsertUnit(id, { department, capabilities: caps, home, speedKmh: 40, turnoutS: 60 }, ADMIN);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  ms = 5000,
) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Waits until no decision, state change or job is pending (delayed timers excepted). */
async function quiet(h: Harness): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await until(() => !h.engine.busy, 'the engine to be quiet');
    await h.queue.whenIdle();
    await sleep(10);
  }
  await until(() => !h.engine.busy, 'the engine to be quiet');
}

const offersTo = (h: Harness, unitId: string) =>
  h.pub.for(`unit:${unitId}`, 'assignment:offer').map((m) => m.envelope.data as OfferView);

async function offerFor(h: Harness, unitId: string, incidentId: string): Promise<AssignmentView> {
  const o = await until(
    () => offersTo(h, unitId).find((x) => x.incident.id === incidentId),
    `an offer of ${incidentId} to ${unitId}`,
  );
  return o.assignment;
}

/** A burglary reported near P1, and the offer it gets. */
async function burglaryOffered(h: Harness) {
  const { incident } = await h.engine.reportIncident(
    { type: 'burglary-report', location: at(0.6) },
    undefined,
    DISPATCHER,
  );
  return { incident, offer: await offerFor(h, 'P1', incident.id) };
}

async function expectApiError(p: Promise<unknown>, code: string): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe(code);
    return e as ApiError;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

function expectGapFree(h: Harness, recipient: 'consoles' | `unit:${string}`) {
  const seqs = h.pub.for(recipient).map((m) => m.envelope.seq);
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
}

describe('reporting and offering', () => {
  it('offers the nearest capable unit: offer to the unit, assignment:created to consoles, gap-free seqs', async () => {
    const h = await harness();
    const before = h.pub.messages.length;
    const { incident, created } = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6), source: 'hotline-110' },
      undefined,
      DISPATCHER,
    );
    expect(created).toBe(true);
    expect(incident).toMatchObject({
      type: 'burglary-report',
      priority: 3,
      immediate: false,
      status: 'queued',
    });
    expect(incident.targetAt).toBeDefined();
    const offer = await offerFor(h, 'P1', incident.id);
    await quiet(h);
    expect(offer).toMatchObject({ unitId: 'P1', capability: 'police', status: 'offered' });
    expect(offer.explanation?.summary).toContain('P1');
    expect(offer.explanation?.alternatives.map((a) => a.unitId)).toContain('P2');
    expect(Date.parse(offer.ackDeadline!) - Date.parse(offer.offeredAt)).toBe(30_000);

    const consoleEvents = h.pub
      .for('consoles')
      .slice()
      .map((m) => m.event);
    expect(consoleEvents).toContain('incident:created');
    expect(consoleEvents).toContain('assignment:created');
    expect(consoleEvents).not.toContain('assignment:offer');
    expect(h.pub.messages.slice(before).find((m) => m.event === 'incident:created')?.recipient).toBe(
      'consoles',
    );
    const created1 = h.pub
      .for('consoles', 'assignment:created')
      .map((m) => m.envelope.data as AssignmentView);
    expect(created1.map((a) => a.id)).toEqual([offer.id]);
    // Nobody else received the offer.
    expect(h.pub.messages.filter((m) => m.event === 'assignment:offer')).toHaveLength(1);

    expectGapFree(h, 'consoles');
    expectGapFree(h, 'unit:P1');
    // What was published is exactly what the store can replay.
    const stored = await h.store.messagesSince('consoles', 0);
    expect(stored.map((m) => [m.seq, m.event])).toEqual(
      h.pub.for('consoles').map((m) => [m.envelope.seq, m.event]),
    );
    const units = await h.engine.listUnits(DISPATCHER);
    expect(units.find((u) => u.id === 'P1')).toMatchObject({ status: 'offered', incidentId: incident.id });
    const view = await h.engine.getIncident(incident.id, DISPATCHER);
    expect(view.status).toBe('assigned');
    expect(view.assignedUnitIds).toEqual(['P1']);
    expect(view.timeline.map((e) => e.kind)).toEqual(expect.arrayContaining(['reported', 'assigned']));
  });

  it('validates reports: unknown type, bad coordinates, role', async () => {
    const h = await harness();
    await expectApiError(
      h.engine.reportIncident({ type: 'alien-landing', location: at(0) }, undefined, DISPATCHER),
      'UNKNOWN_INCIDENT_TYPE',
    );
    await expectApiError(
      h.engine.reportIncident({ type: 'burglary-report', location: [200, 23] }, undefined, DISPATCHER),
      'INVALID_FIELD',
    );
    await expectApiError(
      h.engine.reportIncident(
        { type: 'burglary-report', location: at(0), reportedAt: 'yesterday' },
        undefined,
        DISPATCHER,
      ),
      'INVALID_FIELD',
    );
    await expectApiError(
      h.engine.reportIncident({ type: 'burglary-report', location: at(0) }, undefined, unit('P1')),
      'FORBIDDEN',
    );
    await expectApiError(
      h.engine.reportIncident({ type: 'burglary-report', location: at(0) }, undefined, {
        role: 'planner',
        id: 'p',
      }),
      'FORBIDDEN',
    );
    expect(await h.store.listIncidents()).toHaveLength(0);
  });

  it('never makes two incidents from one idempotency key', async () => {
    const h = await harness();
    const body = { type: 'noise-complaint', location: at(3, 3) };
    const a = await h.engine.reportIncident(body, 'key-1', DISPATCHER);
    const b = await h.engine.reportIncident(body, 'key-1', DISPATCHER);
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(b.incident.id).toBe(a.incident.id);
    await expectApiError(
      h.engine.reportIncident({ ...body, location: at(5, 5) }, 'key-1', DISPATCHER),
      'IDEMPOTENCY_MISMATCH',
    );
    await quiet(h);
    expect(await h.store.listIncidents()).toHaveLength(1);
    expect(h.pub.for('consoles', 'incident:created')).toHaveLength(1);
  });

  it('merges a duplicate report into the open incident', async () => {
    const h = await harness();
    const first = await h.engine.reportIncident(
      { type: 'street-vending', location: at(0, 1) },
      undefined,
      DISPATCHER,
    );
    const dup = await h.engine.reportIncident(
      { type: 'street-vending', location: at(0.05, 1), source: 'app', description: 'second caller' },
      'dup-key',
      DISPATCHER,
    );
    expect(dup.created).toBe(false);
    expect(dup.incident.id).toBe(first.incident.id);
    // The same key again: the same answer, no second merge.
    const again = await h.engine.reportIncident(
      { type: 'street-vending', location: at(0.05, 1), source: 'app', description: 'second caller' },
      'dup-key',
      DISPATCHER,
    );
    expect(again.incident.id).toBe(first.incident.id);
    // Another type, or farther than 100 m: new incidents.
    const other = await h.engine.reportIncident(
      { type: 'illegal-dumping', location: at(0.05, 1) },
      undefined,
      DISPATCHER,
    );
    const far = await h.engine.reportIncident(
      { type: 'street-vending', location: at(0.6, 1) },
      undefined,
      DISPATCHER,
    );
    expect(other.created && far.created).toBe(true);
    await quiet(h);
    expect(await h.store.listIncidents()).toHaveLength(3);
    const detail = await h.engine.getIncident(first.incident.id, DISPATCHER);
    const dups = detail.timeline.filter((e) => e.kind === 'duplicate_report');
    expect(dups).toHaveLength(1);
    expect(dups[0].data).toMatchObject({
      source: 'app',
      description: 'second caller',
      idempotencyKey: 'dup-key',
    });
    expect(dups[0].data.distanceM).toBeLessThan(100);
  });
});

describe('the closed loop', () => {
  it('runs the lifecycle: accept, en route, on scene, available, close', async () => {
    const h = await harness();
    const { incident, offer } = await burglaryOffered(h);
    const accepted = await h.engine.acknowledge(offer.id, true, unit('P1'));
    expect(accepted.status).toBe('accepted');
    // A repeated accept (a client retry) is answered with the same state.
    expect((await h.engine.acknowledge(offer.id, true, unit('P1'))).status).toBe('accepted');
    await h.engine.reportStatus('P1', 'en_route', unit('P1'), incident.id);
    expect((await h.engine.getIncident(incident.id, DISPATCHER)).status).toBe('en_route');
    await h.engine.reportLocation('P1', at(0.59), unit('P1'));
    const onScene = await h.engine.reportStatus('P1', 'on_scene', unit('P1'));
    expect(onScene.status).toBe('on_scene');
    expect((await h.engine.getIncident(incident.id, DISPATCHER)).status).toBe('on_scene');
    const cleared = await h.engine.reportStatus('P1', 'available', unit('P1'));
    expect(cleared).toMatchObject({ status: 'available' });
    expect(cleared.incidentId).toBeUndefined();
    const resolved = await h.engine.getIncident(incident.id, DISPATCHER);
    expect(resolved.status).toBe('resolved');
    expect(resolved.assignments[0].status).toBe('cleared');
    const closed = await h.engine.closeIncident(incident.id, DISPATCHER, 'report taken');
    expect(closed.status).toBe('closed');
    const detail = await h.engine.getIncident(incident.id, DISPATCHER);
    const kinds = detail.timeline.map((e) => e.kind);
    for (const k of [
      'reported',
      'assigned',
      'accepted',
      'en_route',
      'on_scene',
      'cleared',
      'resolved',
      'closed',
    ]) {
      expect(kinds).toContain(k);
    }
    expect(detail.timeline.find((e) => e.kind === 'closed')?.data.withoutOnScene).toBeUndefined();
    // Impossible transitions.
    await expectApiError(h.engine.reportStatus('P1', 'on_scene', unit('P1')), 'INVALID_TRANSITION');
    await expectApiError(h.engine.reportStatus('P1', 'offered', unit('P1')), 'INVALID_TRANSITION');
    await expectApiError(h.engine.closeIncident(incident.id, DISPATCHER), 'INVALID_TRANSITION');
    await quiet(h);
    expectGapFree(h, 'consoles');
    expectGapFree(h, 'unit:P1');
    // The explanation goes with the offer and assignment:created, not with each later step;
    // the reads still give it.
    const updates = h.pub.messages.filter((m) => m.event === 'assignment:updated');
    expect(updates.map((m) => (m.envelope.data as AssignmentView).status)).toEqual(
      expect.arrayContaining(['accepted', 'en_route', 'on_scene', 'cleared']),
    );
    for (const m of updates) expect(m.envelope.data).not.toHaveProperty('explanation');
    expect(offer.explanation?.summary).toContain('P1');
    expect(detail.assignments[0].explanation).toEqual(offer.explanation);
    const kpis = (await h.engine.kpis({}, DISPATCHER)) as LiveKpis;
    expect(kpis.incidents).toMatchObject({ total: 1, served: 1 });
    expect(kpis.byStatus).toEqual({ closed: 1 });
    expect(kpis.onTimePct).toBe(100);
    expect(kpis.solver.calls).toBeGreaterThan(0);
    const byUnit = (await h.engine.kpis({ groupBy: 'unit' }, DISPATCHER)) as LiveKpis;
    expect(byUnit.groups?.P1).toMatchObject({
      incidents: 1,
      segments: { response: { n: 1 }, onScene: { n: 1 } },
      onTime: { measured: 1, onTime: 1, pct: 100 },
      declines: 0,
    });
  });

  it('a decline (reason required) goes to the next-best unit and keeps the decliner away', async () => {
    const h = await harness();
    const { incident } = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      undefined,
      DISPATCHER,
    );
    const offer = await offerFor(h, 'P1', incident.id);
    await expectApiError(h.engine.acknowledge(offer.id, false, unit('P1')), 'INVALID_FIELD');
    await expectApiError(h.engine.acknowledge(offer.id, false, unit('P1'), '   '), 'INVALID_FIELD');
    const declined = await h.engine.acknowledge(offer.id, false, unit('P1'), 'vehicle fault');
    expect(declined).toMatchObject({ status: 'declined', reason: 'vehicle fault' });
    const next = await offerFor(h, 'P2', incident.id);
    await quiet(h);
    expect(next.explanation?.alternatives.map((a) => a.unitId)).not.toContain('P1');
    const units = await h.engine.listUnits(DISPATCHER);
    expect(units.find((u) => u.id === 'P1')?.status).toBe('available');
    expect(units.find((u) => u.id === 'P2')?.status).toBe('offered');
    // P1 stays free for other work meanwhile.
    const other = await h.engine.reportIncident(
      { type: 'noise-complaint', location: at(0.4, 0.5) },
      undefined,
      DISPATCHER,
    );
    await offerFor(h, 'P1', other.incident.id);
    await expectApiError(h.engine.acknowledge(offer.id, true, unit('P1')), 'INVALID_TRANSITION');
    const detail = await h.engine.getIncident(incident.id, DISPATCHER);
    expect(detail.timeline.find((e) => e.kind === 'declined')?.data.reason).toBe('vehicle fault');
  });

  it('an unacknowledged offer times out: timed_out, a no_ack alert, the next unit', async () => {
    const h = await harness({ config: { ackTimeoutS: 0.4, ackTimeoutOtherS: 0.4, nonResponseThreshold: 2 } });
    const { incident } = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      undefined,
      DISPATCHER,
    );
    const first = await offerFor(h, 'P1', incident.id);
    const t0 = Date.now();
    const second = await offerFor(h, 'P2', incident.id);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    const firstNow = (await h.engine.getIncident(incident.id, DISPATCHER)).assignments.find(
      (a) => a.id === first.id,
    );
    expect(firstNow?.status).toBe('timed_out');
    const alerts = await h.engine.listAlerts(DISPATCHER);
    expect(alerts.find((a) => a.kind === 'no_ack')).toMatchObject({ unitId: 'P1', incidentId: incident.id });
    expect(h.pub.for('consoles', 'alert').length).toBeGreaterThan(0);
    // P2 times out too; P3 next. P1 has one non-response, so no repeated alert yet.
    await offerFor(h, 'P3', incident.id);
    expect(
      (await h.engine.listAlerts(DISPATCHER)).filter((a) => a.kind === 'repeated_non_response'),
    ).toHaveLength(0);
    expect(second.unitId).toBe('P2');
    // The engine restarts: the count of P1's misses is rebuilt from the store.
    await h.stop();
    const config = { ackTimeoutS: 0.4, ackTimeoutOtherS: 0.4, nonResponseThreshold: 2 };
    const h2 = await harness({ config, db: h.db });
    // A second miss by P1 (on another incident) crosses the threshold of 2.
    const other = await h2.engine.reportIncident(
      { type: 'noise-complaint', location: at(0.4, 0.5) },
      undefined,
      DISPATCHER,
    );
    await offerFor(h2, 'P1', other.incident.id);
    const rep = await until(
      async () => (await h2.engine.listAlerts(DISPATCHER)).find((a) => a.kind === 'repeated_non_response'),
      'a repeated_non_response alert',
    );
    expect(rep.unitId).toBe('P1');
    // Acknowledging an alert removes it from the list.
    await h2.engine.acknowledgeAlert(rep.id, DISPATCHER);
    expect((await h2.engine.listAlerts(DISPATCHER)).find((a) => a.id === rep.id)).toBeUndefined();
    // Every console hears of it, so none keeps showing an alert another dispatcher handled.
    const updated = h2.pub.for('consoles', 'alert:updated').map((m) => m.envelope.data as AlertView);
    expect(updated).toEqual([expect.objectContaining({ id: rep.id, acknowledgedAt: expect.any(String) })]);
    await expectApiError(h2.engine.acknowledgeAlert('alr_nope', DISPATCHER), 'NOT_FOUND');
  });

  it('a unit acts only for itself; others’ assignments and incidents are NOT_FOUND to it', async () => {
    const h = await harness();
    const { incident } = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      undefined,
      DISPATCHER,
    );
    const offer = await offerFor(h, 'P1', incident.id);
    await expectApiError(h.engine.acknowledge(offer.id, true, unit('P2')), 'NOT_FOUND');
    await expectApiError(h.engine.acknowledge('asg_does-not-exist', true, unit('P1')), 'NOT_FOUND');
    await expectApiError(h.engine.reportStatus('P1', 'en_route', unit('P2')), 'FORBIDDEN');
    await expectApiError(h.engine.reportLocation('P1', at(1), unit('P2')), 'FORBIDDEN');
    await expectApiError(h.engine.getIncident(incident.id, unit('P2')), 'NOT_FOUND');
    await expectApiError(h.engine.listAssignments({ unitId: 'P1' }, unit('P2')), 'FORBIDDEN');
    await expectApiError(h.engine.assign(incident.id, 'P2', unit('P2')), 'FORBIDDEN');
    await expectApiError(h.engine.acknowledge(offer.id, true, { role: 'planner', id: 'pl' }), 'FORBIDDEN');
    // What it may see: its own.
    expect((await h.engine.getIncident(incident.id, unit('P1'))).assignments).toHaveLength(1);
    expect((await h.engine.listAssignments({}, unit('P1'))).map((a) => a.id)).toEqual([offer.id]);
    expect(await h.engine.listAssignments({}, unit('P2'))).toEqual([]);
    expect((await h.engine.listIncidents({}, unit('P1'))).map((i) => i.id)).toEqual([incident.id]);
    expect(await h.engine.listIncidents({}, unit('P2'))).toEqual([]);
    expect((await h.engine.listUnits(unit('P2'))).map((u) => u.id)).toEqual(['P2']);
    // A dispatcher may act on the unit's behalf.
    expect((await h.engine.acknowledge(offer.id, true, DISPATCHER)).status).toBe('accepted');
  });

  it('flags an on-scene report far from the incident', async () => {
    const h = await harness();
    const { incident } = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      undefined,
      DISPATCHER,
    );
    const offer = await offerFor(h, 'P1', incident.id);
    await h.engine.acknowledge(offer.id, true, unit('P1'));
    await h.engine.reportLocation('P1', at(1.6), unit('P1')); // ~1 km away
    await h.engine.reportStatus('P1', 'on_scene', unit('P1'));
    const alert = (await h.engine.listAlerts(DISPATCHER)).find((a) => a.kind === 'on_scene_far');
    expect(alert).toMatchObject({ unitId: 'P1', incidentId: incident.id });
    const ev = (await h.engine.getIncident(incident.id, DISPATCHER)).timeline.find(
      (e) => e.kind === 'on_scene' && e.unitId === 'P1',
    );
    expect(ev?.data).toMatchObject({ flagged: true, review: 'on_scene_far' });
    expect(Number(ev?.data.distanceM)).toBeGreaterThan(900);
  });

  it('out of service releases the assignment and the incident is re-decided', async () => {
    const h = await harness();
    const { incident } = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      undefined,
      DISPATCHER,
    );
    const offer = await offerFor(h, 'P1', incident.id);
    await h.engine.acknowledge(offer.id, true, unit('P1'));
    await h.engine.reportStatus('P1', 'en_route', unit('P1'));
    const u = await h.engine.reportStatus('P1', 'out_of_service', unit('P1'));
    expect(u.status).toBe('out_of_service');
    expect(u.incidentId).toBeUndefined();
    await offerFor(h, 'P2', incident.id);
    await quiet(h);
    const detail = await h.engine.getIncident(incident.id, DISPATCHER);
    expect(detail.assignments.find((a) => a.unitId === 'P1')).toMatchObject({
      status: 'cancelled',
      reason: 'unit out of service',
    });
    expect(detail.timeline.some((e) => e.kind === 'released' && e.unitId === 'P1')).toBe(true);
    // Not dispatched while out of service; back in service on `available`.
    expect((await h.engine.reportStatus('P1', 'available', unit('P1'))).status).toBe('available');
    await expectApiError(h.engine.reportStatus('P2', 'off_duty', unit('P2')), 'INVALID_TRANSITION');
    expect(h.engine.unitsWithTwoAssignments()).toEqual([]);
  });

  it('pre-empts units bound for lower-priority work for an immediate incident', async () => {
    const h = await harness();
    const n1 = await h.engine.reportIncident(
      { type: 'noise-complaint', location: at(0.5, 2) },
      undefined,
      DISPATCHER,
    );
    const n2 = await h.engine.reportIncident(
      { type: 'noise-complaint', location: at(2, 2) },
      undefined,
      DISPATCHER,
    );
    const n3 = await h.engine.reportIncident(
      { type: 'noise-complaint', location: at(4, 2) },
      undefined,
      DISPATCHER,
    );
    await quiet(h);
    const busy = (await h.engine.listUnits(DISPATCHER)).filter((u) => u.capabilities.includes('police'));
    expect(busy.every((u) => u.status === 'offered')).toBe(true);
    const robbery = await h.engine.reportIncident(
      { type: 'robbery', location: at(1, 0) },
      undefined,
      DISPATCHER,
    );
    await until(
      async () => (await h.engine.getIncident(robbery.incident.id, DISPATCHER)).assignedUnitIds.length === 2,
      'two police at the robbery',
    );
    await quiet(h);
    const rob = await h.engine.getIncident(robbery.incident.id, DISPATCHER);
    expect(rob.assignments.every((a) => a.preemptedFrom !== undefined)).toBe(true);
    const noise = await Promise.all([n1, n2, n3].map((n) => h.engine.getIncident(n.incident.id, DISPATCHER)));
    expect(noise.filter((i) => i.status === 'queued')).toHaveLength(2);
    expect(noise.flatMap((i) => i.assignments).filter((a) => a.status === 'preempted')).toHaveLength(2);
    expect(h.engine.unitsWithTwoAssignments()).toEqual([]);
    const active = await h.store.activeAssignments();
    expect(new Set(active.map((a) => a.unitId)).size).toBe(active.length);
  });

  it('dispatcher override assigns (pre-empting), cancel releases, close without on-scene is flagged', async () => {
    const h = await harness();
    const a = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      undefined,
      DISPATCHER,
    );
    await offerFor(h, 'P1', a.incident.id);
    const b = await h.engine.reportIncident(
      { type: 'illegal-parking', location: at(3) },
      undefined,
      DISPATCHER,
    );
    await quiet(h);
    const forced = await h.engine.assign(b.incident.id, 'P1', DISPATCHER, 'knows the area');
    expect(forced).toMatchObject({ unitId: 'P1', status: 'offered', preemptedFrom: a.incident.id });
    expect(forced.explanation?.summary).toContain('dispatcher override');
    await offerFor(h, 'P2', a.incident.id); // the pre-empted incident is re-served
    await expectApiError(h.engine.assign(b.incident.id, 'ZZ', DISPATCHER), 'NOT_FOUND');
    await expectApiError(h.engine.assign('inc_nope', 'P3', DISPATCHER), 'NOT_FOUND');
    const cancelled = await h.engine.cancelIncident(a.incident.id, DISPATCHER, 'caller withdrew');
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.assignedUnitIds).toEqual([]);
    await expectApiError(h.engine.cancelIncident(a.incident.id, DISPATCHER), 'INVALID_TRANSITION');
    const closed = await h.engine.closeIncident(b.incident.id, DISPATCHER, 'moved on');
    expect(closed.status).toBe('closed');
    const ev = (await h.engine.getIncident(b.incident.id, DISPATCHER)).timeline.find(
      (e) => e.kind === 'closed',
    );
    expect(ev?.data).toMatchObject({ withoutOnScene: true, flagged: true, note: 'moved on' });
    await quiet(h);
    const units = await h.engine.listUnits(DISPATCHER);
    expect(units.filter((u) => u.status !== 'available')).toEqual([]);
  });

  it('reassigning the last open slot of an on-scene incident keeps it open for the new unit', async () => {
    // Found by the model test (seed 392250170): releasing the replaced unit resolved the
    // incident for a moment (on scene, nobody active), and the new offer hung on it.
    const catalog = buildCatalog([
      {
        type: 'crash',
        priority: 2,
        immediate: false,
        targetS: 900,
        requires: { ambulance: 1, police: 1 },
        onSceneS: 600,
      },
    ]);
    const h = await harness({ catalog, units: false });
    await addUnit(h, 'A1', ['ambulance'], at(0.5), 'health');
    await addUnit(h, 'P1', ['police'], at(1));
    const { incident } = await h.engine.reportIncident(
      { type: 'crash', location: at(0.4) },
      undefined,
      DISPATCHER,
    );
    const amb = await offerFor(h, 'A1', incident.id);
    await offerFor(h, 'P1', incident.id);
    await h.engine.acknowledge(amb.id, true, unit('A1'));
    await h.engine.reportStatus('A1', 'on_scene', unit('A1'));
    await h.engine.reportStatus('A1', 'available', unit('A1'));
    // The ambulance cleared; the police slot is still offered to P1: the incident stays on scene.
    expect((await h.engine.getIncident(incident.id, DISPATCHER)).status).toBe('on_scene');
    await addUnit(h, 'P2', ['police'], at(2));
    const moved = await h.engine.assign(incident.id, 'P2', DISPATCHER, 'P1 is stuck in traffic');
    expect(moved).toMatchObject({ unitId: 'P2', status: 'offered', capability: 'police' });
    const d = await h.engine.getIncident(incident.id, DISPATCHER);
    expect(d.status).toBe('on_scene');
    expect(d.assignedUnitIds).toContain('P2');
    expect(d.assignments.filter((a) => a.capability === 'police').map((a) => [a.unitId, a.status])).toEqual([
      ['P1', 'cancelled'],
      ['P2', 'offered'],
    ]);
    await quiet(h);
  });

  it('alerts when nobody capable is free and when the target passes with no unit on scene', async () => {
    const catalog = buildCatalog([
      { type: 'flash', priority: 1, immediate: true, targetS: 0.5, requires: { ladder: 1 }, onSceneS: 60 },
    ]);
    const h = await harness({ catalog });
    const { incident } = await h.engine.reportIncident(
      { type: 'flash', location: at(0) },
      undefined,
      DISPATCHER,
    );
    const noUnit = await until(
      async () => (await h.engine.listAlerts(DISPATCHER)).find((a) => a.kind === 'no_capable_unit'),
      'no_capable_unit',
    );
    expect(noUnit.incidentId).toBe(incident.id);
    expect((await h.engine.listIncidents({ status: 'queued' }, DISPATCHER))[0].queuedReason).toMatch(
      /ladder/,
    );
    const breach = await until(
      async () => (await h.engine.listAlerts(DISPATCHER)).find((a) => a.kind === 'target_breached'),
      'target_breached',
    );
    expect(breach).toMatchObject({ incidentId: incident.id, severity: 'critical' });
    await quiet(h);
    // Raised once each.
    const alerts = await h.engine.listAlerts(DISPATCHER);
    expect(alerts.filter((a) => a.kind === 'no_capable_unit')).toHaveLength(1);
    expect(alerts.filter((a) => a.kind === 'target_breached')).toHaveLength(1);
  });
});

describe('recovery, workers, callbacks', () => {
  it('a restarted engine fires overdue ack timers and assigns what waits', async () => {
    const db = new MemoryDatabase();
    const a = await harness({ db, config: { ackTimeoutS: 0.3, ackTimeoutOtherS: 0.3 } });
    await addUnit(a, 'P1', ['police'], at(0.5));
    const i1 = await a.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6) },
      undefined,
      DISPATCHER,
    );
    const offer = await offerFor(a, 'P1', i1.incident.id);
    const i2 = await a.engine.reportIncident(
      { type: 'noise-complaint', location: at(0.7, 1) },
      undefined,
      DISPATCHER,
    );
    await quiet(a);
    await a.stop(); // the in-process queue loses its timers
    await sleep(400); // past the ack deadline while down
    const b = await harness({ db, config: { ackTimeoutS: 30, ackTimeoutOtherS: 30 } });
    await addUnit(b, 'P2', ['police'], at(2));
    await until(
      async () => (await b.store.getAssignment(offer.id))?.status === 'timed_out',
      'the overdue ack timer to fire',
    );
    // P1 is free again: it goes to i2 (excluded from i1); P2 takes i1.
    await until(async () => (await b.store.activeAssignments()).length === 2, 'both incidents assigned');
    await quiet(b);
    const active = await b.store.activeAssignments();
    expect(Object.fromEntries(active.map((x) => [x.incidentId, x.unitId]))).toEqual({
      [i1.incident.id]: 'P2',
      [i2.incident.id]: 'P1',
    });
    expect(b.engine.unitsWithTwoAssignments()).toEqual([]);
    expect((await b.engine.listAlerts(DISPATCHER)).some((x) => x.kind === 'no_ack')).toBe(true);
  });

  it('an incident stored here has an intake job only for a webhook reporter, which arms and decides nothing again', async () => {
    const h = await harness();
    const add = vi.spyOn(h.queue, 'add');
    const outbox = () =>
      [...h.db.outbox.values()].map((r) => `${r.topic}:${(r.payload as { incidentId?: string }).incidentId}`);
    const before = outbox();
    // A reference callback (a phone number) hears back by other means: no job.
    const plain = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(0.6), callback: 'tel:+862012345678' },
      undefined,
      DISPATCHER,
    );
    await offerFor(h, 'P1', plain.incident.id);
    const hooked = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(3.6), callback: 'https://reporter.example.com/cb' },
      undefined,
      DISPATCHER,
    );
    await offerFor(h, 'P3', hooked.incident.id);
    await quiet(h);
    expect(outbox().filter((r) => !before.includes(r) && r.startsWith('incident.created:'))).toEqual([
      `incident.created:${hooked.incident.id}`,
    ]);
    const jobs = add.mock.calls.map((c) => `${c[0]}/${c[1]}/${c[3]?.jobId?.split(':')[0]}`);
    // The relay's one job ran (the queue is idle), and the only timers armed are the commits'.
    expect(jobs.filter((j) => j.startsWith('intake/'))).toHaveLength(1);
    expect(jobs.filter((j) => j === 'timers/target.breach/target')).toHaveLength(2);
    expect(jobs.filter((j) => j.startsWith('decisions/'))).toEqual([]);
    expect(await h.queue.depth('timers')).toBe(4);
  });

  it('removes each timer once, as its offer is answered and as its incident is reached', async () => {
    const h = await harness();
    const remove = vi.spyOn(h.queue, 'remove');
    const { incident, offer } = await burglaryOffered(h);
    await quiet(h);
    expect(await h.queue.depth('timers')).toBe(2);
    await h.engine.acknowledge(offer.id, true, unit('P1'));
    await h.engine.reportStatus('P1', 'en_route', unit('P1'), incident.id);
    await h.engine.reportStatus('P1', 'on_scene', unit('P1'));
    await h.engine.reportStatus('P1', 'available', unit('P1'));
    await quiet(h);
    expect((await h.engine.getIncident(incident.id, DISPATCHER)).status).toBe('resolved');
    expect(remove.mock.calls.map((c) => `${c[0]}/${c[1]}`)).toEqual([
      `timers/ack:${offer.id}`,
      `timers/target:${incident.id}`,
    ]);
    expect(await h.queue.depth('timers')).toBe(0);
  });

  it('the sweep re-arms a timer that went missing from the queue', async () => {
    const h = await harness();
    const { incident, offer } = await burglaryOffered(h);
    await quiet(h);
    expect(await h.queue.depth('timers')).toBe(2); // the offer's ack deadline and the incident's target
    await h.queue.remove('timers', `ack:${offer.id}`);
    await h.queue.remove('timers', `target:${incident.id}`);
    expect(await h.queue.depth('timers')).toBe(0);
    await h.engine.sweep();
    expect(await h.queue.depth('timers')).toBe(2);
    await h.engine.sweep(); // de-duplicated by jobId: still two
    expect(await h.queue.depth('timers')).toBe(2);
  });

  it('with timerArmDelayMs, a timer cancelled within the delay never reaches the queue', async () => {
    const h = await harness({ config: { timerArmDelayMs: 150 } });
    const add = vi.spyOn(h.queue, 'add');
    const remove = vi.spyOn(h.queue, 'remove');
    const timers = () => add.mock.calls.filter((c) => c[0] === 'timers').map((c) => c[3]?.jobId);
    const { incident, offer } = await burglaryOffered(h);
    await quiet(h);
    expect(timers()).toEqual([]);
    // Answered and reached within the delay: no script to arm, none to remove.
    await h.engine.acknowledge(offer.id, true, unit('P1'));
    await h.engine.reportStatus('P1', 'en_route', unit('P1'), incident.id);
    await h.engine.reportStatus('P1', 'on_scene', unit('P1'));
    await sleep(300);
    await quiet(h);
    expect(timers()).toEqual([]);
    expect(remove.mock.calls.filter((c) => c[0] === 'timers')).toEqual([]);
    expect(await h.queue.depth('timers')).toBe(0);
  });

  it('with timerArmDelayMs, a timer still wanted after the delay is armed with its own deadline', async () => {
    const h = await harness({ config: { timerArmDelayMs: 100 } });
    const add = vi.spyOn(h.queue, 'add');
    const { incident, offer } = await burglaryOffered(h);
    await quiet(h);
    expect(await h.queue.depth('timers')).toBe(0);
    await sleep(250);
    await quiet(h);
    expect(await h.queue.depth('timers')).toBe(2);
    const armed = add.mock.calls.filter((c) => c[0] === 'timers');
    expect(armed.map((c) => c[3]?.jobId).sort()).toEqual([`ack:${offer.id}`, `target:${incident.id}`].sort());
    // Due at the offer's deadline, not 100 ms later.
    const ack = armed.find((c) => c[3]?.jobId === `ack:${offer.id}`)!;
    expect(ack[2]).toMatchObject({
      deadline: offer.ackDeadline ? Date.parse(offer.ackDeadline) / 1000 : NaN,
    });
    // Answered now: removed from the queue as before.
    await h.engine.acknowledge(offer.id, true, unit('P1'));
    await quiet(h);
    expect(await h.queue.depth('timers')).toBe(1);
  });

  it('with timerArmDelayMs, the sweep arms at once, and a stopped engine leaves the rest to the next start', async () => {
    const h = await harness({ config: { timerArmDelayMs: 10_000 } });
    await burglaryOffered(h);
    await quiet(h);
    expect(await h.queue.depth('timers')).toBe(0);
    await h.engine.sweep();
    expect(await h.queue.depth('timers')).toBe(2);
    // Another offer; the engine stops before its timers were armed, and they are dropped.
    const add = vi.spyOn(h.queue, 'add');
    const second = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(2.4) },
      undefined,
      DISPATCHER,
    );
    const offer2 = await offerFor(h, 'P2', second.incident.id);
    await h.stop();
    expect(add.mock.calls.filter((c) => c[0] === 'timers')).toEqual([]);
    // The next engine on the same store arms all four at start (its queue is a new one).
    const next = await harness({ db: h.db, config: { timerArmDelayMs: 10_000 } });
    const nextAdd = vi.spyOn(next.queue, 'add');
    await next.engine.sweep();
    expect(await next.queue.depth('timers')).toBe(4);
    expect(nextAdd.mock.calls.map((c) => c[3]?.jobId)).toContain(`ack:${offer2.id}`);
  });

  it('throttles location updates: the mirror at once, consoles at most once per interval', async () => {
    const h = await harness({ config: { locationPublishMs: 200 } });
    const before = h.pub.for('consoles', 'unit:updated').length;
    for (let i = 1; i <= 10; i++) await h.engine.reportLocation('C1', at(i * 0.01, 1), unit('C1'));
    // A late, older fix is ignored.
    await h.engine.reportLocation('C1', at(9, 9), unit('C1'), Date.now() - 60_000);
    const now = (await h.engine.listUnits(DISPATCHER)).find((u) => u.id === 'C1');
    expect(now?.position).toEqual(at(0.1, 1));
    await sleep(300);
    await quiet(h);
    const sent = h.pub.for('consoles', 'unit:updated').slice(before);
    expect(sent.length).toBeGreaterThanOrEqual(1);
    expect(sent.length).toBeLessThanOrEqual(2);
    expect(sent[sent.length - 1].envelope.data).toMatchObject({ id: 'C1', position: at(0.1, 1) });
    expect(h.pub.for('unit:C1', 'unit:updated').length).toBe(1); // only its registration
    expect((await h.store.getUnit('C1'))?.position).toEqual(at(0.1, 1));
    await expectApiError(h.engine.reportLocation('C1', [0, 91] as LonLat, unit('C1')), 'INVALID_FIELD');
    await expectApiError(h.engine.reportLocation('NOPE', at(0), ADMIN), 'NOT_FOUND');
  });

  it('a position reported while a write of the unit is in flight is the one decisions use', async () => {
    // A unit's first report is persisted; the next, within locationPersistS, only published.
    const h = await harness({ config: { locationPublishMs: 0, locationPersistS: 600 } });
    // Hold the write of P2's record that its first report starts.
    const upsert = MemoryStore.prototype.upsertUnit;
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inFlight = new Promise<void>((r) => {
      entered = r;
    });
    const spy = vi.spyOn(MemoryStore.prototype, 'upsertUnit').mockImplementation(async function (
      this: MemoryStore,
      ...args: Parameters<MemoryStore['upsertUnit']>
    ) {
      if (args[0].id === 'P2') {
        entered();
        await held;
      }
      return upsert.apply(this, args);
    });
    try {
      await h.engine.reportLocation('P2', at(1), unit('P2'));
      await inFlight; // the write carries at(1)
      await h.engine.reportLocation('P2', at(-3), unit('P2')); // 3.5 km west of P1
      release();
      await quiet(h);
    } finally {
      spy.mockRestore();
    }
    expect((await h.engine.listUnits(DISPATCHER)).find((u) => u.id === 'P2')?.position).toEqual(at(-3));
    const { incident } = await h.engine.reportIncident(
      { type: 'burglary-report', location: at(-3.1) },
      undefined,
      DISPATCHER,
    );
    // With P2 still seen at at(1), P1 (at 0.5) would be the nearer.
    await offerFor(h, 'P2', incident.id);
    expect(offersTo(h, 'P1')).toEqual([]);
  });

  it('the outbox relay refuses a topic without a route, loudly, and keeps the row', async () => {
    const h = await harness();
    await h.workers.stop();
    const logged: string[] = [];
    const relay = new OutboxRelay(h.store, h.queue, { log: (m) => logged.push(m) });
    const row = await h.store.enqueueOutbox({ topic: 'mystery.topic', payload: { x: 1 } });
    await relay.relayOnce();
    expect(logged.join('\n')).toMatch(/no job route for outbox topic "mystery\.topic"/);
    expect(await h.store.outboxBacklog()).toBe(1);
    expect(h.db.outbox.get(row.id)?.lastError).toMatch(/mystery/);
  });

  it('the outbox relay drains a backlog at once, then spaces the passes kicks ask for', async () => {
    const h = await harness();
    await h.workers.stop();
    let claims = 0;
    const store: typeof h.store = Object.create(h.store);
    store.claimOutbox = (limit, opts) => {
      claims++;
      return h.store.claimOutbox(limit, opts);
    };
    for (let i = 0; i < 12; i++)
      await h.store.enqueueOutbox({ topic: 'incident.created', payload: { incidentId: `x${i}` } });
    const relay = new OutboxRelay(store, h.queue, { pollMs: 60_000, minGapMs: 60_000, batch: 5 });
    relay.start();
    try {
      // Full claims (5, 5) go on without the gap; the third (2) ends the drain.
      await until(async () => (await h.store.outboxBacklog()) === 0, 'the backlog relayed', 5000);
      await until(() => claims === 3, 'three claims', 5000);
      // Kicks within the gap after that pass run nothing yet.
      await h.store.enqueueOutbox({ topic: 'incident.created', payload: { incidentId: 'late' } });
      for (let i = 0; i < 5; i++) relay.kick();
      await new Promise((r) => setTimeout(r, 200));
      expect(claims).toBe(3);
      expect(await h.store.outboxBacklog()).toBe(1);
    } finally {
      await relay.stop();
    }
  });

  it('refuses to start workers when an emitted job has no handler', () => {
    expect(() => checkHandlers({ intake: { 'incident.created': async () => {} } })).toThrow(
      /no handler for .*decisions\/decide.*timers\/ack\.deadline/,
    );
  });

  it('pushes status changes to a reporter callback through the outbox, retrying failures', async () => {
    const got: Record<string, unknown>[] = [];
    let failFirst = true;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        if (failFirst) {
          failFirst = false;
          res.writeHead(503).end();
          return;
        }
        got.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const h = await harness({ config: { callbackAllowHttp: true, callbackAllowPrivate: true } });
      const { incident } = await h.engine.reportIncident(
        { type: 'burglary-report', location: at(0.6), callback: `http://127.0.0.1:${port}/cb` },
        undefined,
        DISPATCHER,
      );
      // The first attempt (received) is refused with 503 and retried after the first back-off step.
      await until(() => got.find((m) => m.status === 'assigned'), 'the assigned callback', 15_000);
      expect(got.slice(0, 2)).toMatchObject([
        { incidentId: incident.id, type: 'burglary-report', status: 'received', sequence: 1 },
        { incidentId: incident.id, type: 'burglary-report', status: 'assigned', sequence: 2 },
      ]);
      expect(await h.store.outboxBacklog()).toBe(0);
    } finally {
      server.close();
    }
  });
});
