// The replay viewer's model (console/src/replay-model.ts) without a browser: unit positions
// and statuses, incident lifecycles and counts at any time of a hand-written log.

import { describe, expect, it } from 'vitest';
import { checkScenario, LINGER_S, parseEventLog, ReplayModel } from '../../console/src/replay-model.ts';
import type { LonLat } from '../../src/core/types.ts';
import type { ScenarioUnit } from '../../src/scenario/types.ts';
import { type SimEvent, toNdjson } from '../../src/sim/events.ts';

const HOME: LonLat = [113.4, 23.1];
const SCENE: LonLat = [113.5, 23.1];
const units: ScenarioUnit[] = [
  { id: 'U1', department: 'police', capabilities: ['police'], home: HOME, speedKmh: 40, turnoutS: 10 },
  { id: 'U2', department: 'police', capabilities: ['police'], home: SCENE, speedKmh: 40, turnoutS: 10 },
];

const log: SimEvent[] = [
  { t: 0, kind: 'reported', incidentId: 'I1', type: 'robbery', priority: 1, location: SCENE },
  {
    t: 0,
    kind: 'assigned',
    incidentId: 'I1',
    unitId: 'U1',
    capability: 'police',
    etaS: 110,
    lateS: 0,
    crossesJurisdiction: false,
    summary: 'U1 nearest',
    alternatives: [],
  },
  {
    t: 0,
    kind: 'en_route',
    incidentId: 'I1',
    unitId: 'U1',
    from: HOME,
    turnoutS: 10,
    travelS: 100,
    etaS: 110,
  },
  { t: 110, kind: 'on_scene', incidentId: 'I1', unitId: 'U1' },
  { t: 200, kind: 'cleared', incidentId: 'I1', unitId: 'U1' },
  { t: 200, kind: 'resolved', incidentId: 'I1' },
  { t: 300, kind: 'returned', unitId: 'U1', position: HOME },
  { t: 400, kind: 'reported', incidentId: 'I2', type: 'robbery', priority: 1, location: HOME },
  {
    t: 400,
    kind: 'assigned',
    incidentId: 'I2',
    unitId: 'U2',
    capability: 'police',
    etaS: 110,
    lateS: 0,
    crossesJurisdiction: false,
    summary: 'U2',
    alternatives: [],
  },
  { t: 420, kind: 'declined', incidentId: 'I2', unitId: 'U2', reason: 'flat tyre' },
  { t: 500, kind: 'cancelled', incidentId: 'I2' },
];

describe('ReplayModel', () => {
  const model = new ReplayModel({ units, durationS: 600 }, parseEventLog(toNdjson(log)));
  const unit = (t: number, id: string) => model.unitsAt(t).find((u) => u.id === id)!;

  it('moves a unit along its drive: waits for turnout, then travels in a straight line', () => {
    expect(unit(5, 'U1')).toMatchObject({ status: 'en_route', position: HOME, incidentId: 'I1' });
    expect(unit(10, 'U1').position).toEqual(HOME);
    const mid = unit(60, 'U1').position;
    expect(mid[0]).toBeCloseTo(113.45, 6);
    expect(unit(110, 'U1')).toMatchObject({ status: 'on_scene', position: SCENE });
    // Cleared at the scene, then drives home until `returned`.
    expect(unit(200, 'U1')).toMatchObject({ status: 'available', position: SCENE });
    expect(unit(250, 'U1').position[0]).toBeCloseTo(113.45, 6);
    expect(unit(350, 'U1').position).toEqual(HOME);
  });

  it('follows an incident from report to resolution, and drops it after it lingered', () => {
    expect(model.incidentsAt(-1)).toEqual([]);
    expect(model.incidentsAt(50)[0]).toMatchObject({ id: 'I1', status: 'en_route' });
    expect(model.incidentsAt(150)[0]).toMatchObject({ id: 'I1', status: 'on_scene' });
    expect(model.incidentsAt(201)[0]).toMatchObject({ id: 'I1', status: 'resolved', endT: 200 });
    expect(model.incidentsAt(200 + LINGER_S + 1).some((i) => i.id === 'I1')).toBe(false);
  });

  it('sends an incident back to the queue when its only unit declines', () => {
    expect(model.incidentsAt(410).find((i) => i.id === 'I2')?.status).toBe('assigned');
    expect(unit(410, 'U2').status).toBe('offered');
    expect(model.incidentsAt(430).find((i) => i.id === 'I2')?.status).toBe('queued');
    expect(unit(430, 'U2').status).toBe('available');
    expect(model.incidentsAt(510).find((i) => i.id === 'I2')?.status).toBe('cancelled');
  });

  it('counts, feed and end time', () => {
    expect(model.countsAt(50)).toEqual({ reported: 1, open: 1, queued: 0, resolved: 0, busyUnits: 1 });
    expect(model.countsAt(430)).toEqual({ reported: 2, open: 1, queued: 1, resolved: 1, busyUnits: 0 });
    expect(model.recentEvents(420, 2).map((e) => e.kind)).toEqual(['declined', 'assigned']);
    expect(model.endT).toBe(600);
  });

  it('refuses bad input with a useful message', () => {
    expect(() => parseEventLog('{"t":1,"kind":"x"}\n{"kind":"x"}\n')).toThrow('line 2');
    expect(() => checkScenario({ units: [] })).toThrow('areas');
    expect(() => checkScenario([])).toThrow('units');
  });
});
