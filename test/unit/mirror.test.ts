// The engine's mirror: the core's view of each unit is kept across decisions while its record
// and active assignment stay the same objects, and rebuilt when either is replaced.

import { describe, expect, it } from 'vitest';
import { validateUnits } from '../../src/core/validate.ts';
import { Mirror } from '../../src/engine/mirror.ts';
import { Rng } from '../../src/scenario/rng.ts';
import type { AssignmentRecord, IncidentRecord, UnitRecord } from '../../src/store/store.ts';

const unit = (id: string, patch: Partial<UnitRecord> = {}): UnitRecord =>
  ({
    id,
    department: 'police',
    capabilities: ['police'],
    home: [113.45, 23.1],
    speedKmh: 40,
    turnoutS: 60,
    status: 'available',
    version: 1,
    payload: {},
    ...patch,
  }) as UnitRecord;

const incident: IncidentRecord = {
  id: 'I-1',
  type: 'burglary-report',
  priority: 2,
  location: [113.46, 23.1],
  reportedAt: 1000,
  status: 'assigned',
  targetAt: 1600,
  version: 1,
  payload: {},
} as unknown as IncidentRecord;

const assignment = (unitId: string, status: AssignmentRecord['status']): AssignmentRecord =>
  ({
    id: `A-${unitId}`,
    incidentId: 'I-1',
    unitId,
    capability: 'police',
    status,
    offeredAt: 1001,
    version: 1,
  }) as AssignmentRecord;

describe('Mirror.dispatchState', () => {
  it('keeps a unit’s core view while nothing about it changed, rebuilds it when something did', () => {
    const m = new Mirror();
    m.putUnit(unit('P1'));
    m.putUnit(unit('P2'));
    m.putIncident(incident);
    const [p1, p2] = m.dispatchState().units;
    expect(Object.isFrozen(p1) && Object.isFrozen(p1.capabilities) && Object.isFrozen(p1.home)).toBe(true);
    expect(m.dispatchState().units).toEqual([p1, p2]);
    expect(m.dispatchState().units[0]).toBe(p1);
    // Equal capability lists are one list, so the core groups units by it once (CapabilityIndex).
    expect(p2.capabilities).toBe(p1.capabilities);
    m.putUnit(unit('P3', { capabilities: ['police', 'traffic'] }));
    expect(m.dispatchState().units[2].capabilities).toEqual(['police', 'traffic']);
    expect(m.dispatchState().units[2].capabilities).not.toBe(p1.capabilities);
    m.removeUnit('P3');

    // A new record (a position fix), then an assignment: only P1's view is rebuilt.
    m.putUnit(unit('P1', { position: [113.451, 23.1] }));
    const [moved, same] = m.dispatchState().units;
    expect(moved).not.toBe(p1);
    expect(moved.position).toEqual([113.451, 23.1]);
    expect(same).toBe(p2);
    m.putAssignment(assignment('P1', 'en_route'));
    const busy = m.dispatchState().units[0];
    expect(busy).toMatchObject({ id: 'P1', status: 'en_route', incidentId: 'I-1', role: 'police' });
    m.putAssignment({ ...assignment('P1', 'en_route'), status: 'cleared' } as AssignmentRecord);
    expect(m.dispatchState().units[0]).toMatchObject({ id: 'P1', status: 'available' });
    expect(m.dispatchState().units[0].incidentId).toBeUndefined();

    // A unit removed from the mirror leaves the state.
    m.removeUnit('P2');
    expect(m.dispatchState().units.map((u) => u.id)).toEqual(['P1']);
  });

  it('hands the core its units in id order, whatever order they came in', () => {
    const m = new Mirror();
    for (const id of ['P3', 'A10', 'P1', 'A9', 'P20']) m.putUnit(unit(id));
    const ids = () => m.dispatchState().units.map((u) => u.id);
    expect(ids()).toEqual(['A10', 'A9', 'P1', 'P20', 'P3']);
    m.putUnit(unit('B1'));
    m.putUnit(unit('P1', { position: [113.451, 23.1] }));
    m.removeUnit('A9');
    expect(ids()).toEqual(['A10', 'B1', 'P1', 'P20', 'P3']);
    m.load({ units: [unit('Z1'), unit('C1')], openIncidents: [], activeAssignments: [], at: 0 });
    expect(ids()).toEqual(['C1', 'Z1']);
  });

  it('the core checks a kept (frozen) view once, and still checks every unfrozen unit', () => {
    const m = new Mirror();
    m.putUnit(unit('P1'));
    const state = m.dispatchState();
    expect(validateUnits(state.units)[0]).toBe(state.units[0]);
    expect(validateUnits(state.units)[0]).toBe(state.units[0]);
    // An unfrozen unit that passed once and was then broken is refused the next time.
    const loose = { ...state.units[0], capabilities: ['police'] };
    expect(validateUnits([loose])[0]).toBe(loose);
    loose.capabilities = [];
    expect(() => validateUnits([loose])).toThrow(/capabilities/);
  });
});

describe('Mirror.open', () => {
  const inc = (id: string, status: IncidentRecord['status']): IncidentRecord => ({ ...incident, id, status });
  const ids = (m: ReadonlyMap<string, IncidentRecord>) => [...m.keys()];

  it('holds the incidents not resolved, in the order of `incidents`; decisions take only those', () => {
    const m = new Mirror();
    m.load({
      units: [],
      openIncidents: [inc('I-3', 'queued'), inc('I-1', 'resolved'), inc('I-2', 'assigned')],
      activeAssignments: [],
      at: 0,
    });
    expect(ids(m.incidents)).toEqual(['I-3', 'I-1', 'I-2']);
    expect(ids(m.open)).toEqual(['I-3', 'I-2']);
    m.putIncident(inc('I-4', 'queued'));
    m.putIncident(inc('I-3', 'on_scene'));
    m.putIncident(inc('I-2', 'resolved'));
    expect(ids(m.incidents)).toEqual(['I-3', 'I-1', 'I-2', 'I-4']);
    expect(ids(m.open)).toEqual(['I-3', 'I-4']);
    expect(m.dispatchState().incidents.map((i) => i.id)).toEqual(['I-3', 'I-4']);
    m.putIncident(inc('I-3', 'closed'));
    m.putIncident(inc('I-1', 'cancelled'));
    expect(ids(m.incidents)).toEqual(['I-2', 'I-4']);
    expect(ids(m.open)).toEqual(['I-4']);
  });

  it('an incident back from resolved (a re-read) takes its old place', () => {
    const m = new Mirror();
    for (const id of ['I-1', 'I-2', 'I-3']) m.putIncident(inc(id, 'queued'));
    m.putIncident(inc('I-1', 'resolved'));
    expect(ids(m.open)).toEqual(['I-2', 'I-3']);
    m.putIncident(inc('I-1', 'on_scene'));
    expect(ids(m.open)).toEqual(['I-1', 'I-2', 'I-3']);
  });
});

describe('Mirror.placeUnit', () => {
  it('a reported position outlives any older record put after it; removal and a reload forget it', () => {
    const m = new Mirror();
    m.putUnit(unit('P1', { position: [113.46, 23.1] }));
    m.placeUnit('P1', [113.47, 23.1]);
    expect(m.units.get('P1')?.position).toEqual([113.47, 23.1]);
    // A write that read the unit before the report (or a re-read of a throttled persist).
    m.putUnit(unit('P1', { position: [113.46, 23.1], status: 'out_of_service', version: 2 }));
    expect(m.units.get('P1')).toMatchObject({
      position: [113.47, 23.1],
      status: 'out_of_service',
      version: 2,
    });
    expect(m.dispatchState().units[0].position).toEqual([113.47, 23.1]);
    m.placeUnit('NOPE', [113.4, 23.1]); // an unknown unit is not created
    expect(m.units.has('NOPE')).toBe(false);
    m.removeUnit('P1');
    m.putUnit(unit('P1', { position: [113.46, 23.1] }));
    expect(m.units.get('P1')?.position).toEqual([113.46, 23.1]);
    m.placeUnit('P1', [113.47, 23.1]);
    m.load({
      units: [unit('P1', { position: [113.45, 23.1] })],
      openIncidents: [],
      activeAssignments: [],
    } as never);
    expect(m.units.get('P1')?.position).toEqual([113.45, 23.1]);
  });
});

describe('Mirror.dispatchState, rebuilt only for the units that changed', () => {
  it('equals the state of a mirror loaded afresh, after every step of 300 random changes', () => {
    const rng = new Rng(7);
    const m = new Mirror();
    const ids = Array.from({ length: 12 }, (_, i) => `U${String((i * 7) % 12).padStart(2, '0')}`);
    const incidents = ['I-1', 'I-2', 'I-3'].map((id) => ({ ...incident, id, status: 'queued' as const }));
    for (const i of incidents) m.putIncident(i);
    let n = 0;
    for (let step = 0; step < 300; step++) {
      const id = ids[rng.int(0, ids.length - 1)];
      const op = rng.int(0, 5);
      if (op === 0) m.putUnit(unit(id, { position: [113.45 + rng.int(0, 99) / 1e4, 23.1] }));
      else if (op === 1) m.removeUnit(id);
      else if (op === 2 || op === 3) {
        const statuses: AssignmentRecord['status'][] = ['offered', 'en_route', 'on_scene'];
        m.putAssignment({
          ...assignment(id, statuses[rng.int(0, 2)]),
          id: `A-${++n}`,
          incidentId: incidents[rng.int(0, 2)].id,
          offeredAt: 1000 + n,
        });
      } else {
        const a = m.activeOfUnit(id);
        if (a) m.putAssignment({ ...a, status: op === 4 ? 'cleared' : 'declined' });
      }
      if (rng.int(0, 2) > 0) continue; // changes pile up between decisions too
      const fresh = new Mirror();
      fresh.load({
        units: [...m.units.values()],
        openIncidents: [...m.incidents.values()],
        activeAssignments: [...m.assignments.values()],
        at: 0,
      });
      expect(m.dispatchState(), `step ${step}`).toEqual(fresh.dispatchState());
    }
  });
});
