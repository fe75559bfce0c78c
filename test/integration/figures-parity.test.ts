// Acceptance: the appraisal figures computed from a replay's events and from the live store,
// for the same sequence of events, are identical — per unit, department, sub-district and
// incident type, and over all incidents.
//
// The replay: scenarios/demo.json (40 units, 163 incidents over 2 h) with declines and
// unanswered offers switched on, through the simulator. The live side: the real Engine on a
// manual clock (epoch seconds = scenario start + t), driven through its API event by event —
// each `reported` is a report, each `assigned` a dispatcher assignment (pre-empting where the
// replay pre-empted), each `declined` / `en_route` / `on_scene` / `cleared` the unit's own
// answer, each `ack_timeout` the ack-deadline job, `cancelled` a cancellation. The engine's own
// decisions are not run (no workers), so the live log holds exactly the replay's decisions.
// Then GET /v1/kpis's figures (engine.kpis) must equal `dispatch figures`' (computeFigures over
// the replay's records). Memory store, then PostgreSQL (its own database).

import { afterAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/cli/commands/replay.ts';
import { optimalPolicy } from '../../src/core/policies.ts';
import type { Actor } from '../../src/engine/api.ts';
import { Engine } from '../../src/engine/engine.ts';
import { scenarioContext, seedUnits } from '../../src/engine/factory.ts';
import type { LiveKpis } from '../../src/engine/kpis.ts';
import { nullPublisher } from '../../src/engine/memory-publisher.ts';
import type { Clock } from '../../src/engine/ports.ts';
import { computeFigures, fromSimEvents, type GroupBy } from '../../src/kpi/figures.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import type { SimEvent } from '../../src/sim/events.ts';
import { simulate } from '../../src/sim/simulate.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { createDatabase, createPgClient, dropDatabase } from '../../src/store/pg-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import type { Store } from '../../src/store/store.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DISPATCHER: Actor = { role: 'dispatcher', id: 'd.parity' };
const unitActor = (id: string): Actor => ({ role: 'unit', id: `u-${id}`, unitId: id });

const scenario = loadScenario('scenarios/demo.json');
const T0 = Date.parse(scenario.start) / 1000;
const replay = simulate(scenario, {
  policy: optimalPolicy,
  sim: { noResponseProb: 0.05, declineProb: 0.05 },
});
const lastT = replay.events.reduce((m, e) => Math.max(m, e.t), 0);
const context = scenarioContext(scenario);

class ManualClock implements Clock {
  t = T0;
  now(): number {
    return this.t;
  }
}

/** Plays the replay's events through the live engine's API on a manual clock. */
async function playLive(store: Store): Promise<Engine> {
  const clock = new ManualClock();
  const queue = new MemoryQueue();
  const engine = new Engine({
    store,
    queue,
    publisher: nullPublisher,
    clock,
    ...context,
    config: {
      ackTimeoutS: 30,
      ackTimeoutOtherS: 30,
      sweepIntervalMs: 0,
      // Decisions when the replay made them (the test steps them), not inline with a report.
      decideInline: false,
      // Every report is its own incident, as in the replay.
      duplicateRadiusM: 0,
      duplicateWindowS: 0,
    },
  });
  await engine.start();
  await seedUnits(engine, scenario.units);
  const byId = new Map(scenario.incidents.map((i) => [i.id, i]));
  const live = new Map<string, string>();
  const closed = new Set<string>();
  const id = (replayId: string) => {
    const x = live.get(replayId);
    if (!x) throw new Error(`incident ${replayId} was not reported live`);
    return x;
  };
  const activeOf = async (unitId: string) => {
    const [a] = await engine.listAssignments({ unitId, active: true }, DISPATCHER);
    if (!a) throw new Error(`${unitId} has no active assignment`);
    return a;
  };
  for (const e of replay.events as SimEvent[]) {
    clock.t = T0 + e.t;
    switch (e.kind) {
      case 'reported': {
        const def = byId.get(e.incidentId)!;
        const r = await engine.reportIncident(
          { type: def.type, location: def.location, ...(def.priority ? { priority: def.priority } : {}) },
          undefined,
          DISPATCHER,
        );
        expect(r.created).toBe(true);
        live.set(e.incidentId, r.incident.id);
        break;
      }
      case 'assigned': {
        const a = await engine.assign(id(e.incidentId), e.unitId, DISPATCHER);
        expect(a.preemptedFrom).toBe(e.preemptedFrom ? id(e.preemptedFrom) : undefined);
        break;
      }
      case 'declined':
        await engine.acknowledge((await activeOf(e.unitId)).id, false, unitActor(e.unitId), e.reason);
        break;
      case 'ack_timeout':
        await engine.onAckDeadline((await activeOf(e.unitId)).id);
        break;
      case 'en_route':
      case 'on_scene':
        await engine.reportStatus(e.unitId, e.kind, unitActor(e.unitId));
        break;
      case 'cleared':
        if (!closed.has(e.incidentId)) await engine.reportStatus(e.unitId, 'available', unitActor(e.unitId));
        break;
      case 'released':
        // At a cancellation the cancel releases them; at the end of on-scene work units still on
        // their way are released: the dispatcher closes the incident.
        if (e.reason === 'job_done' && !closed.has(e.incidentId)) {
          closed.add(e.incidentId);
          await engine.closeIncident(id(e.incidentId), DISPATCHER, 'work done');
        }
        break;
      case 'cancelled':
        await engine.cancelIncident(id(e.incidentId), DISPATCHER);
        break;
      default:
        // preempted (done by the assignment that follows it), decision, queued, resolved,
        // returned, unserved: nothing to do, or the engine does it itself.
        break;
    }
  }
  clock.t = T0 + lastT;
  expect(engine.unitsWithTwoAssignments()).toEqual([]);
  return engine;
}

function replayFigures(groupBy?: GroupBy) {
  return computeFigures(fromSimEvents(replay.events), {
    catalog: context.catalog,
    units: scenario.units.map((u) => ({ id: u.id, department: u.department })),
    ...(context.areas ? { areas: context.areas } : {}),
    startT: 0,
    durationS: scenario.durationS,
    asOfT: lastT,
    ...(groupBy ? { groupBy } : {}),
  });
}

const window = {
  from: new Date(T0 * 1000).toISOString(),
  to: new Date((T0 + scenario.durationS) * 1000).toISOString(),
};

function parity(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>) {
  describe(`figures from a replay and from the live store agree (${name})`, () => {
    let engine: Engine | undefined;
    let close: (() => Promise<void>) | undefined;
    afterAll(async () => {
      await engine?.stop();
      await close?.();
    });

    it('the replay exercises every figure', () => {
      const all = replayFigures().all;
      expect(all.incidents).toBe(scenario.incidents.length);
      expect(all.nonResponses).toBeGreaterThan(0);
      expect(all.declines).toBeGreaterThan(0);
      expect(all.preemptions).toBeGreaterThan(0);
      expect(all.reassignments).toBeGreaterThan(0);
      expect(all.routing.area).toBeGreaterThan(0);
      expect(all.routing.district).toBeGreaterThan(0);
      expect(all.routing.immediate).toBeGreaterThan(0);
      expect(all.onTime.measured).toBeGreaterThan(0);
      expect(all.segments.turnout.n).toBeGreaterThan(0);
    });

    it('plays the replay live, then every grouping gives identical numbers', async () => {
      const s = await open();
      close = s.close;
      engine = await playLive(s.store);
      for (const groupBy of [undefined, 'unit', 'department', 'area', 'type'] as const) {
        const live = (await engine.kpis(
          { ...window, ...(groupBy ? { groupBy } : {}) },
          DISPATCHER,
        )) as LiveKpis;
        const planned = replayFigures(groupBy);
        expect(live.truncated).toBeUndefined();
        expect(live.figures, `all (${groupBy ?? 'no grouping'})`).toEqual(planned.all);
        if (groupBy) {
          expect(Object.keys(live.groups!)).toEqual(Object.keys(planned.groups!));
          for (const k of Object.keys(planned.groups!)) {
            expect(live.groups![k], `${groupBy} ${k}`).toEqual(planned.groups![k]);
          }
        }
      }
    });
  });
}

parity('memory store', async () => ({ store: new MemoryStore(), close: async () => {} }));

parity('PostgreSQL', async () => {
  const db = await createDatabase(ADMIN_URL);
  const store = await SqlStore.open(createPgClient(db.url, { max: 4 }));
  return {
    store,
    async close() {
      await store.close();
      await dropDatabase(ADMIN_URL, db.name);
    },
  };
});
