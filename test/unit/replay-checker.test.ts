// An independent checker of replay logs: it reads ONLY the scenario and the events.ndjson
// text and re-derives every movement with its own copy of the documented models —
//   travel time = great-circle distance × detour factor ÷ unit speed (haversine, R = 6371008.8 m);
//   a unit setting off at t0 from `from` spends `turnoutS` (its own turnout from rest, 0 when
//   the decision took it while already en route), then moves along the straight line
//   from → incident (linear in lon/lat) at a constant pace; a unit taken or released while
//   en route stops at that interpolated point.
// It confirms: every scenario incident is reported once and ends exactly once as served,
// cancelled or unserved; no unit is committed to two incidents at once; every assigned unit
// has the capability its slot needs and no package is over-filled; every trip starts where
// the unit is (home, the last scene, the point where it stopped); every en_route ETA equals
// turnout + travel by the model within ±1 s, and every on_scene time equals en_route time +
// ETA within ±1 s — including redirected (pre-empted) units, whose start point is checked
// against the interpolation rule. After clearing a unit is free at once and counts as standing
// at the scene until its modelled return drive ends (`returned`, then at home).
// It runs on scenarios/demo.json and scenarios/surge.json under both policies, and with
// declines, ack delays, non-responses and a decision cadence switched on.

import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { policyByName } from '../../src/core/policies.ts';
import { generateScenario } from '../../src/scenario/generate.ts';
import type { Scenario } from '../../src/scenario/types.ts';
import { parseScenario } from '../../src/scenario/validate.ts';
import { toNdjson } from '../../src/sim/events.ts';
import { simulate } from '../../src/sim/simulate.ts';

type LL = [number, number];
type Ev = Record<string, unknown> & { t: number; kind: string; incidentId?: string; unitId?: string };

const R = 6371008.8;
const RAD = Math.PI / 180;
function haversine(a: LL, b: LL): number {
  const s1 = Math.sin(((b[1] - a[1]) * RAD) / 2);
  const s2 = Math.sin(((b[0] - a[0]) * RAD) / 2);
  const h = s1 * s1 + Math.cos(a[1] * RAD) * Math.cos(b[1] * RAD) * s2 * s2;
  return 2 * R * Math.asin(Math.sqrt(Math.min(1, h)));
}

interface Trip {
  t0: number;
  from: LL;
  to: LL;
  turnoutS: number;
  travelS: number;
}

function along(trip: Trip, t: number): LL {
  const f = trip.travelS > 0 ? Math.min(1, Math.max(0, (t - trip.t0 - trip.turnoutS) / trip.travelS)) : 1;
  return [trip.from[0] + f * (trip.to[0] - trip.from[0]), trip.from[1] + f * (trip.to[1] - trip.from[1])];
}

interface UnitTrack {
  pos: LL;
  incident: string | null;
  role: string | null;
  /** Status the unit had when its current offer was made. */
  enRouteAtOffer: boolean;
  state: 'free' | 'offered' | 'en_route' | 'on_scene';
  trip: Trip | null;
  arriveAt: number | null;
  homeAt: number | null;
}

/** Returns the list of violations (empty = the log is consistent with the scenario). */
function checkReplay(scenario: Scenario, ndjson: string): string[] {
  const errors: string[] = [];
  const err = (m: string) => {
    if (errors.length < 50) errors.push(m);
  };
  const detour = scenario.travel?.detourFactor ?? 1.3;
  const returnHome = scenario.sim?.returnHome ?? true;
  const travelS = (a: LL, b: LL, kmh: number) => (haversine(a, b) * detour) / (kmh / 3.6);
  const catalog = new Map(scenario.catalog.map((t) => [t.type, t]));
  const unitDefs = new Map(scenario.units.map((u) => [u.id, u]));
  const incDefs = new Map(scenario.incidents.map((i) => [i.id, i]));
  const units = new Map<string, UnitTrack>(
    scenario.units.map((u) => [
      u.id,
      {
        pos: u.home,
        incident: null,
        role: null,
        enRouteAtOffer: false,
        state: 'free',
        trip: null,
        arriveAt: null,
        homeAt: null,
      },
    ]),
  );
  const reported = new Set<string>();
  const outcome = new Map<string, string>();
  const ended = new Set<string>();
  const committed = new Map<string, Map<string, number>>();
  const near = (a: LL, b: LL, m = 1) => haversine(a, b) <= m;

  const events = ndjson
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Ev);
  let lastT = -Infinity;
  for (const e of events) {
    if (e.t < lastT) err(`events out of time order at t=${e.t} (${e.kind})`);
    lastT = e.t;
    const u = e.unitId ? units.get(e.unitId) : undefined;
    const ud = e.unitId ? unitDefs.get(e.unitId) : undefined;
    if (e.unitId && (!u || !ud)) {
      err(`unknown unit ${e.unitId}`);
      continue;
    }
    const inc = e.incidentId ? incDefs.get(e.incidentId) : undefined;
    if (e.incidentId && !inc) {
      err(`unknown incident ${e.incidentId}`);
      continue;
    }
    const uncommit = (unit: UnitTrack, incId: string) => {
      const m = committed.get(incId);
      if (m && unit.role) m.set(unit.role, (m.get(unit.role) ?? 1) - 1);
      unit.incident = null;
      unit.role = null;
    };
    switch (e.kind) {
      case 'reported':
        if (reported.has(e.incidentId!)) err(`${e.incidentId} reported twice`);
        reported.add(e.incidentId!);
        if (Math.abs(e.t - inc!.atS) > 1e-3)
          err(`${e.incidentId} reported at ${e.t}, scenario says ${inc!.atS}`);
        committed.set(e.incidentId!, new Map());
        break;
      case 'assigned': {
        const cap = e.capability as string;
        if (!reported.has(e.incidentId!)) err(`${e.incidentId} assigned before it was reported`);
        if (ended.has(e.incidentId!)) err(`${e.incidentId} assigned after it ended`);
        if (u!.incident !== null)
          err(`${e.unitId} assigned to ${e.incidentId} at ${e.t} while committed to ${u!.incident}`);
        if (u!.homeAt !== null && e.t >= u!.homeAt + 1) err(`${e.unitId} never logged its return home`);
        u!.homeAt = null;
        if (!ud!.capabilities.includes(cap)) err(`${e.unitId} lacks capability ${cap} for ${e.incidentId}`);
        const need = catalog.get(inc!.type)!.requires[cap] ?? 0;
        const m = committed.get(e.incidentId!)!;
        const have = (m.get(cap) ?? 0) + 1;
        if (have > need) err(`${e.incidentId} over-filled: ${have} × ${cap}, needs ${need}`);
        m.set(cap, have);
        u!.enRouteAtOffer = e.preemptedFrom !== undefined && u!.state === 'en_route';
        if (u!.state === 'en_route' && e.preemptedFrom === undefined)
          err(`${e.unitId} redirected without pre-emption`);
        u!.incident = e.incidentId!;
        u!.role = cap;
        u!.state = 'offered';
        u!.trip = u!.trip && u!.enRouteAtOffer ? u!.trip : null;
        break;
      }
      case 'preempted': {
        if (u!.incident !== e.incidentId)
          err(`${e.unitId} pre-empted from ${e.incidentId} but bound to ${u!.incident}`);
        if (u!.state === 'on_scene') err(`${e.unitId} pre-empted while on scene`);
        const at = u!.state === 'en_route' && u!.trip ? along(u!.trip, e.t) : u!.pos;
        if (!near(at, e.position as LL))
          err(`${e.unitId} pre-empted at ${JSON.stringify(e.position)}, expected ${at}`);
        u!.pos = e.position as LL;
        uncommit(u!, e.incidentId!);
        // stays en route (if it was) until the new offer below; the trip ends here
        break;
      }
      case 'declined':
      case 'ack_timeout':
        if (u!.incident !== e.incidentId || u!.state !== 'offered')
          err(`${e.kind} of ${e.unitId} not holding an offer`);
        uncommit(u!, e.incidentId!);
        u!.state = 'free';
        u!.trip = null;
        break;
      case 'en_route': {
        if (u!.incident !== e.incidentId || u!.state !== 'offered')
          err(`${e.unitId} en route without an offer`);
        const from = e.from as LL;
        if (!near(from, u!.pos)) err(`${e.unitId} sets off from ${from}, but it is at ${u!.pos}`);
        const turnout = e.turnoutS as number;
        const expectTurnout = u!.enRouteAtOffer ? 0 : ud!.turnoutS;
        if (Math.abs(turnout - expectTurnout) > 1e-6)
          err(`${e.unitId} turnout ${turnout}, expected ${expectTurnout}`);
        const tr = travelS(from, inc!.location, ud!.speedKmh);
        const eta = e.etaS as number;
        if (Math.abs(eta - (expectTurnout + tr)) > 1) {
          err(`${e.unitId} → ${e.incidentId}: etaS ${eta}, model says ${expectTurnout + tr}`);
        }
        u!.state = 'en_route';
        u!.trip = { t0: e.t, from, to: inc!.location, turnoutS: expectTurnout, travelS: tr };
        u!.arriveAt = e.t + eta;
        break;
      }
      case 'on_scene':
        if (u!.incident !== e.incidentId || u!.state !== 'en_route')
          err(`${e.unitId} on scene without being en route`);
        else if (Math.abs(e.t - u!.arriveAt!) > 1) {
          err(`${e.unitId} on scene at ${e.t}, expected ${u!.arriveAt} (en_route + etaS)`);
        }
        if (ended.has(e.incidentId!)) err(`${e.incidentId} reached after it ended`);
        outcome.set(e.incidentId!, 'served');
        u!.state = 'on_scene';
        u!.pos = inc!.location;
        u!.trip = null;
        break;
      case 'cleared':
        if (u!.incident !== e.incidentId || u!.state !== 'on_scene')
          err(`${e.unitId} cleared without being on scene`);
        uncommit(u!, e.incidentId!);
        u!.state = 'free';
        u!.homeAt =
          returnHome && !near(u!.pos, ud!.home, 0) ? e.t + travelS(u!.pos, ud!.home, ud!.speedKmh) : null;
        break;
      case 'returned':
        if (u!.state !== 'free' || u!.homeAt === null) err(`${e.unitId} returned without driving home`);
        else if (Math.abs(e.t - u!.homeAt) > 1) err(`${e.unitId} home at ${e.t}, expected ${u!.homeAt}`);
        u!.pos = ud!.home;
        u!.homeAt = null;
        break;
      case 'released': {
        if (u!.incident !== e.incidentId)
          err(`${e.unitId} released from ${e.incidentId} but bound to ${u!.incident}`);
        const at = u!.state === 'en_route' && u!.trip ? along(u!.trip, e.t) : u!.pos;
        if (!near(at, e.position as LL))
          err(`${e.unitId} released at ${JSON.stringify(e.position)}, expected ${at}`);
        u!.pos = e.position as LL;
        uncommit(u!, e.incidentId!);
        u!.state = 'free';
        u!.trip = null;
        break;
      }
      case 'cancelled':
      case 'unserved':
        if (outcome.has(e.incidentId!))
          err(`${e.incidentId} ${e.kind} after ending ${outcome.get(e.incidentId!)}`);
        outcome.set(e.incidentId!, e.kind);
        ended.add(e.incidentId!);
        break;
      case 'resolved':
        if (outcome.get(e.incidentId!) !== 'served') err(`${e.incidentId} resolved without a unit on scene`);
        if (ended.has(e.incidentId!)) err(`${e.incidentId} resolved twice`);
        ended.add(e.incidentId!);
        for (const [id, x] of units)
          if (x.incident === e.incidentId) err(`${e.incidentId} resolved while ${id} is still on it`);
        break;
    }
  }
  for (const i of scenario.incidents) {
    if (!reported.has(i.id)) err(`${i.id} never reported`);
    if (!outcome.has(i.id)) err(`${i.id} neither served, cancelled nor unserved`);
  }
  return errors;
}

function loadOrGenerate(name: 'demo' | 'surge'): Scenario {
  const file = `scenarios/${name}.json`;
  if (existsSync(file)) return parseScenario(JSON.parse(readFileSync(file, 'utf8')));
  return parseScenario(
    JSON.parse(
      JSON.stringify(
        name === 'demo'
          ? generateScenario({ preset: 'demo', hours: 2, seed: 7 })
          : generateScenario({
              preset: 'huangpu',
              hours: 6,
              seed: 11,
              incidentsPerDay: 6000,
              unitsScale: 0.3,
              surge: { startH: 2, hours: 3 },
            }),
      ),
    ),
  );
}

function run(scenario: Scenario, policy: string): string {
  return toNdjson(simulate(scenario, { policy: policyByName(policy) }).events);
}

describe('replay checker', () => {
  const demo = loadOrGenerate('demo');
  const surge = loadOrGenerate('surge');

  for (const policy of ['greedy', 'optimal']) {
    it(`demo.json under ${policy}: consistent`, () => {
      expect(checkReplay(demo, run(demo, policy))).toEqual([]);
    });
    it(`surge.json under ${policy}: consistent`, () => {
      expect(checkReplay(surge, run(surge, policy))).toEqual([]);
    }, 180_000);
  }

  it('with declines, ack delays, non-responses and a cadence (both policies)', () => {
    for (const policy of ['greedy', 'optimal']) {
      const s: Scenario = {
        ...demo,
        sim: {
          ackDelayS: 12,
          declineProb: 0.2,
          ackTimeoutS: 30,
          cadenceS: 20,
          noResponseProb: 0.1,
        } as Scenario['sim'],
      };
      const log = run(s, policy);
      expect(checkReplay(s, log)).toEqual([]);
      expect(log).toContain('"kind":"declined"');
      expect(log).toContain('"kind":"ack_timeout"');
    }
  });

  it('with units staying at the scene and answers slower than the timeout', () => {
    const s: Scenario = {
      ...demo,
      sim: { ackDelayS: 40, ackTimeoutS: 30, returnHome: false, drainS: 600 } as Scenario['sim'],
    };
    const log = run(s, 'greedy');
    expect(checkReplay(s, log)).toEqual([]);
    expect(log).not.toContain('"kind":"en_route"');
    expect(log).toContain('"kind":"unserved"');
  });

  it('pre-emptions (redirected en-route units) pass the position rule', () => {
    const log = run(surge, 'optimal');
    expect(log).toContain('"kind":"preempted"');
  }, 180_000);

  it('the checker catches a doctored log', () => {
    const log = run(demo, 'greedy');
    const lines = log.trimEnd().split('\n');
    const k = lines.findIndex((l) => l.includes('"kind":"on_scene"'));
    const e = JSON.parse(lines[k]);
    e.t += 30;
    lines[k] = JSON.stringify(e);
    expect(checkReplay(demo, `${lines.join('\n')}\n`).join('\n')).toMatch(/on scene at/);
    const dropped = lines.filter(
      (l) => !l.includes('"kind":"unserved"') && !l.includes('"kind":"cancelled"'),
    );
    const nOut = lines.length - dropped.length;
    if (nOut > 0) expect(checkReplay(demo, `${dropped.join('\n')}\n`).join('\n')).toMatch(/neither served/);
  });

  it('determinism: two runs give byte-identical logs', () => {
    for (const policy of ['greedy', 'optimal']) expect(run(demo, policy)).toBe(run(demo, policy));
  });
});
