import { describe, expect, it } from 'vitest';
import { haversineM } from '../../src/core/geo.ts';
import { greedyPolicy, optimalPolicy } from '../../src/core/policies.ts';
import type { LonLat } from '../../src/core/types.ts';
import type { Scenario, ScenarioIncident, ScenarioUnit, SimulationConfig } from '../../src/scenario/types.ts';
import { parseScenario } from '../../src/scenario/validate.ts';
import { parseNdjson, type SimEvent, toNdjson } from '../../src/sim/events.ts';
import { interpolate, positionAt, progress } from '../../src/sim/motion.ts';
import { DEFAULT_SIM, resolveSimOptions } from '../../src/sim/options.ts';
import { EventQueue } from '../../src/sim/queue.ts';
import { simulate } from '../../src/sim/simulate.ts';

const HOME: LonLat = [113.45, 23.1];
/** A point `m` metres north of HOME. */
const north = (m: number): LonLat => [HOME[0], HOME[1] + m / 111_195.08];
/** Great circle × 1.3 at 36 km/h (10 m/s). */
const drive = (a: LonLat, b: LonLat) => (haversineM(a, b) * 1.3) / 10;

const CATALOG = [
  { type: 'fight', priority: 1, immediate: true, targetS: 600, requires: { police: 1 }, onSceneS: 1000 },
  { type: 'noise', priority: 4, immediate: false, targetS: 3600, requires: { police: 1 }, onSceneS: 500 },
  { type: 'fire', priority: 1, immediate: true, targetS: 480, requires: { 'fire-engine': 2 }, onSceneS: 800 },
  { type: 'spill', priority: 2, immediate: false, targetS: 900, requires: { hazmat: 1 }, onSceneS: 100 },
];

function unit(id: string, caps: string[], home: LonLat = HOME, turnoutS = 60): ScenarioUnit {
  return { id, department: 'd', capabilities: caps, home, speedKmh: 36, turnoutS };
}

function scenario(
  units: ScenarioUnit[],
  incidents: ScenarioIncident[],
  sim?: SimulationConfig,
  durationS = 7200,
): Scenario {
  return parseScenario({
    name: 't',
    start: '2026-03-02T00:00:00+08:00',
    durationS,
    seed: 3,
    areas: { type: 'FeatureCollection', features: [] },
    catalog: CATALOG,
    units,
    incidents,
    ...(sim ? { sim } : {}),
  });
}

const of = (events: SimEvent[], kind: string, id?: string) =>
  events.filter((e) => e.kind === kind && (id === undefined || ('incidentId' in e && e.incidentId === id)));

describe('EventQueue', () => {
  it('orders by time, then priority, then insertion', () => {
    const q = new EventQueue<string>();
    q.push(5, 1, 'c');
    q.push(1, 9, 'b');
    q.push(1, 0, 'a');
    q.push(5, 1, 'd');
    q.push(5, 0, 'x');
    q.push(0.5, 3, 'first');
    const out: string[] = [];
    for (let e = q.pop(); e; e = q.pop()) out.push(e.item);
    expect(out).toEqual(['first', 'a', 'b', 'x', 'c', 'd']);
  });

  it('stays ordered under many random pushes and pops', () => {
    const q = new EventQueue<number>();
    let x = 1;
    const rnd = () => {
      x = (x * 48271) % 2147483647;
      return x / 2147483647;
    };
    for (let i = 0; i < 2000; i++) q.push(Math.floor(rnd() * 100), Math.floor(rnd() * 3), i);
    let last = { t: -1, prio: -1, seq: -1 };
    while (q.size > 0) {
      const e = q.pop()!;
      const ok =
        e.t > last.t ||
        (e.t === last.t && (e.prio > last.prio || (e.prio === last.prio && e.seq > last.seq)));
      expect(ok).toBe(true);
      last = e;
    }
  });
});

describe('motion', () => {
  it('waits through turnout, then moves linearly', () => {
    expect(progress(100, 60, 200, 100)).toBe(0);
    expect(progress(100, 60, 200, 160)).toBe(0);
    expect(progress(100, 60, 200, 260)).toBe(0.5);
    expect(progress(100, 60, 200, 999)).toBe(1);
    expect(progress(0, 0, 0, 0)).toBe(1);
    expect(interpolate([0, 0], [2, 4], 0.25)).toEqual([0.5, 1]);
    expect(positionAt([0, 0], [2, 4], 0, 10, 100, 60)).toEqual([1, 2]);
  });
});

describe('sim options', () => {
  it('defaults, scenario values, overrides, and extra fields checked by path', () => {
    expect(resolveSimOptions(undefined)).toEqual(DEFAULT_SIM);
    const o = resolveSimOptions({ ackDelayS: 5, cadenceS: 10 }, { cadenceS: 30 });
    expect(o.ackDelayS).toBe(5);
    expect(o.cadenceS).toBe(30);
    expect(() => resolveSimOptions({ noResponseProb: 2 } as SimulationConfig)).toThrow(
      /\$\.sim\.noResponseProb/,
    );
    expect(() => resolveSimOptions({ refuseCooldownS: 0.1 } as SimulationConfig)).toThrow(/refuseCooldownS/);
  });
});

describe('simulate', () => {
  it('one incident: offer, ETA = turnout + travel, on-scene time, clear, drive home', () => {
    const at = north(3000);
    const s = scenario([unit('P1', ['police'])], [{ id: 'A', atS: 100, type: 'noise', location: at }]);
    const { events } = simulate(s, { policy: greedyPolicy });
    const kinds = events.map((e) => e.kind);
    expect(kinds).toEqual([
      'reported',
      'decision',
      'assigned',
      'en_route',
      'on_scene',
      'cleared',
      'resolved',
      'returned',
    ]);
    const eta = 60 + drive(HOME, at);
    const assigned = of(events, 'assigned')[0] as Extract<SimEvent, { kind: 'assigned' }>;
    expect(assigned.etaS).toBeCloseTo(eta, 3);
    expect(of(events, 'on_scene')[0].t).toBeCloseTo(100 + eta, 3);
    expect(of(events, 'cleared')[0].t).toBeCloseTo(100 + eta + 500, 3);
    expect(events[7].t).toBeCloseTo(100 + eta + 500 + drive(at, HOME), 3);
  });

  it('a queued incident gets the unit when it clears, from the scene (returnHome or not)', () => {
    const a = north(2000);
    const b = north(4000);
    const incs: ScenarioIncident[] = [
      { id: 'A', atS: 0, type: 'noise', location: a },
      { id: 'B', atS: 10, type: 'noise', location: b },
    ];
    const home = simulate(scenario([unit('P1', ['police'])], incs), { policy: greedyPolicy }).events;
    const queued = of(home, 'queued', 'B')[0] as Extract<SimEvent, { kind: 'queued' }>;
    expect(queued.t).toBe(10);
    expect(queued.open[0].capability).toBe('police');
    expect(of(home, 'assigned', 'B')[0].t).toBe(of(home, 'cleared', 'A')[0].t);
    const enB = of(home, 'en_route', 'B')[0] as Extract<SimEvent, { kind: 'en_route' }>;
    expect(enB.from[1]).toBeCloseTo(a[1], 6);
    // dispatched before it got home: no `returned` for that drive; after B it drives home
    expect(home.filter((e) => e.kind === 'returned')).toHaveLength(1);
    expect(home[home.length - 1].kind).toBe('returned');

    const stay = simulate(scenario([unit('P1', ['police'])], incs, { returnHome: false }), {
      policy: greedyPolicy,
    }).events;
    const cleared = of(stay, 'cleared', 'A')[0];
    expect(of(stay, 'assigned', 'B')[0].t).toBe(cleared.t);
    const enB2 = of(stay, 'en_route', 'B')[0] as Extract<SimEvent, { kind: 'en_route' }>;
    expect(enB2.from[0]).toBeCloseTo(a[0], 6);
    expect(enB2.from[1]).toBeCloseTo(a[1], 6);
    expect(enB2.etaS).toBeCloseTo(60 + drive(a, b), 3);
    expect(stay.some((e) => e.kind === 'returned')).toBe(false);
  });

  it('on-scene work runs from the first arrival; every unit clears together', () => {
    const at = north(1000);
    const s = scenario(
      [unit('E1', ['fire-engine']), unit('E2', ['fire-engine'], north(-3000))],
      [{ id: 'F', atS: 0, type: 'fire', location: at, onSceneS: 1000 }],
    );
    const ev = simulate(s, { policy: optimalPolicy }).events;
    const arrivals = of(ev, 'on_scene', 'F').map((e) => e.t);
    expect(arrivals).toHaveLength(2);
    const clears = of(ev, 'cleared', 'F').map((e) => e.t);
    expect(clears).toEqual([arrivals[0] + 1000, arrivals[0] + 1000].map((x) => Math.round(x * 1000) / 1000));
    expect(of(ev, 'resolved', 'F')[0].t).toBe(clears[0]);
    // with shorter work the late unit is released on its way
    const short = { ...s, incidents: [{ ...s.incidents[0], onSceneS: 300 }] };
    const ev2 = simulate(short, { policy: optimalPolicy }).events;
    expect(of(ev2, 'on_scene', 'F')).toHaveLength(1);
    expect(of(ev2, 'released', 'F')[0]).toMatchObject({ unitId: 'E2', reason: 'job_done' });
  });

  it('pre-emption: an immediate incident takes the en-route unit; the position rule and turnout 0 apply', () => {
    const low = north(6000);
    const high = north(-2000);
    const s = scenario(
      [unit('P1', ['police'])],
      [
        { id: 'N', atS: 0, type: 'noise', location: low },
        { id: 'X', atS: 300, type: 'fight', location: high },
      ],
    );
    const ev = simulate(s, { policy: greedyPolicy }).events;
    const pre = of(ev, 'preempted', 'N')[0] as Extract<SimEvent, { kind: 'preempted' }>;
    expect(pre).toMatchObject({ t: 300, unitId: 'P1', toIncidentId: 'X' });
    // en route since t=0 with 60 s turnout: 240 s of a drive(low) trip done
    const f = 240 / drive(HOME, low);
    expect(pre.position[1]).toBeCloseTo(HOME[1] + f * (low[1] - HOME[1]), 6);
    const a = of(ev, 'assigned', 'X')[0] as Extract<SimEvent, { kind: 'assigned' }>;
    expect(a.preemptedFrom).toBe('N');
    const en = of(ev, 'en_route', 'X')[0] as Extract<SimEvent, { kind: 'en_route' }>;
    expect(en.turnoutS).toBe(0);
    expect(en.from).toEqual(pre.position);
    expect(en.etaS).toBeCloseTo(drive(pre.position, high), 2);
    // the lower-priority incident goes back to the queue and is served later
    expect(of(ev, 'queued', 'N').some((e) => e.t === 300)).toBe(true);
    expect(of(ev, 'on_scene', 'N')).toHaveLength(1);
  });

  it('cancellation before arrival releases the unit where it is', () => {
    const at = north(5000);
    const s = scenario(
      [unit('P1', ['police'])],
      [{ id: 'A', atS: 0, type: 'noise', location: at, cancelAtS: 200 }],
    );
    const ev = simulate(s, { policy: greedyPolicy }).events;
    const rel = of(ev, 'released', 'A')[0] as Extract<SimEvent, { kind: 'released' }>;
    expect(rel).toMatchObject({ t: 200, reason: 'cancelled' });
    expect(rel.position[1]).toBeCloseTo(HOME[1] + (140 / drive(HOME, at)) * (at[1] - HOME[1]), 6);
    expect(of(ev, 'cancelled', 'A')).toHaveLength(1);
    expect(of(ev, 'on_scene')).toHaveLength(0);
  });

  it('no capable unit: queued with a reason, unserved at the end', () => {
    const s = scenario([unit('P1', ['police'])], [{ id: 'S', atS: 50, type: 'spill', location: north(10) }]);
    const ev = simulate(s, { policy: optimalPolicy }).events;
    const q = of(ev, 'queued', 'S')[0] as Extract<SimEvent, { kind: 'queued' }>;
    expect(q.open[0].reason).toMatch(/no unit with capability hazmat/);
    const u = of(ev, 'unserved', 'S')[0] as Extract<SimEvent, { kind: 'unserved' }>;
    expect(u).toMatchObject({ t: 7200, open: ['hazmat'] });
    // nothing could be decided, so the policy was not called
    expect(ev.filter((e) => e.kind === 'decision')).toHaveLength(0);
  });

  it('a cadence batches decisions onto its multiples', () => {
    const s = scenario(
      [unit('P1', ['police']), unit('P2', ['police'])],
      [
        { id: 'A', atS: 5, type: 'noise', location: north(500) },
        { id: 'B', atS: 17, type: 'noise', location: north(900) },
      ],
      { cadenceS: 30 },
    );
    const ev = simulate(s, { policy: optimalPolicy }).events;
    const decisions = ev.filter((e) => e.kind === 'decision');
    expect(decisions.map((d) => d.t)).toEqual([30]);
    expect((decisions[0] as Extract<SimEvent, { kind: 'decision' }>).assignments).toBe(2);
  });

  it('declines send the unit into a cooldown and reopen the slot', () => {
    const s = scenario([unit('P1', ['police'])], [{ id: 'A', atS: 0, type: 'noise', location: north(500) }], {
      declineProb: 1,
      ackDelayS: 5,
      drainS: 300,
      refuseCooldownS: 60,
    } as SimulationConfig);
    const ev = simulate(s, { policy: greedyPolicy, sim: { drainS: 300 } }).events;
    const offers = of(ev, 'assigned', 'A').map((e) => e.t);
    const declines = of(ev, 'declined', 'A');
    expect(offers.slice(0, 3)).toEqual([0, 65, 130]);
    expect(declines[0]).toMatchObject({ t: 5, unitId: 'P1' });
    expect(typeof (declines[0] as Extract<SimEvent, { kind: 'declined' }>).reason).toBe('string');
    expect(of(ev, 'unserved', 'A')).toHaveLength(1);
  });

  it('is deterministic and its log round-trips through NDJSON', () => {
    const s = scenario(
      [unit('P1', ['police']), unit('E1', ['fire-engine']), unit('E2', ['fire-engine'], north(800))],
      [
        { id: 'A', atS: 0, type: 'noise', location: north(500) },
        { id: 'B', atS: 40, type: 'fire', location: north(-700) },
        { id: 'C', atS: 41, type: 'fight', location: north(100) },
      ],
      { ackDelayS: 3, declineProb: 0.3, noResponseProb: 0.2 } as SimulationConfig,
    );
    const a = toNdjson(simulate(s, { policy: optimalPolicy }).events);
    const b = toNdjson(simulate(s, { policy: optimalPolicy }).events);
    expect(a).toBe(b);
    expect(toNdjson(parseNdjson(a))).toBe(a);
    // fixed key order: t, kind first
    for (const line of a.trimEnd().split('\n')) expect(line.startsWith('{"t":')).toBe(true);
  });

  it('times the policy only with a clock, and the clock does not change the log', () => {
    const s = scenario([unit('P1', ['police'])], [{ id: 'A', atS: 0, type: 'noise', location: north(500) }]);
    let n = 0;
    const timed = simulate(s, { policy: greedyPolicy, clock: () => (n += 7) });
    const plain = simulate(s, { policy: greedyPolicy });
    expect(timed.solverMs).toEqual([7]);
    expect(plain.solverMs).toEqual([]);
    expect(toNdjson(timed.events)).toBe(toNdjson(plain.events));
  });
});
