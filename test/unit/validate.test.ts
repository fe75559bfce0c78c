import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/core/catalog.ts';
import { CoreError } from '../../src/core/errors.ts';
import { validateIncidents, validateState, validateUnits } from '../../src/core/validate.ts';

const catalog = buildCatalog([
  {
    type: 'structure-fire',
    priority: 1,
    immediate: true,
    targetS: 480,
    requires: { 'fire-engine': 2 },
    onSceneS: 1800,
  },
  {
    type: 'noise-complaint',
    priority: 4,
    immediate: false,
    targetS: 3600,
    requires: { police: 1 },
    onSceneS: 900,
  },
]);

function coreError(fn: () => unknown): CoreError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CoreError) return e;
    throw e;
  }
  throw new Error('expected a CoreError');
}

const unit = {
  id: 'FE-01',
  department: 'fire',
  capabilities: ['fire-engine'],
  home: [113.459, 23.106],
  speedKmh: 40,
  turnoutS: 60,
  status: 'available',
};
const incident = {
  id: 'I-1',
  type: 'structure-fire',
  location: [113.462, 23.111],
  reportedAt: 12.5,
  status: 'queued',
};

describe('validateUnits', () => {
  it('leaves the input alone, passes normal-form units through and normalises the rest', () => {
    const input = [
      { ...unit, extra: 1 },
      {
        id: 'P-1',
        department: 'police',
        capabilities: ['police', 'traffic', 'police'],
        home: [113.45, 23.1],
        homeArea: 'S1',
        position: [113.46, 23.11],
        speedKmh: 50,
        turnoutS: 0,
        status: 'en_route',
        incidentId: 'I-1',
        role: 'police',
        since: 100,
      },
      { ...unit, id: 'FE-02', status: undefined },
    ];
    const before = structuredClone(input);
    const out = validateUnits(input);
    expect(input).toEqual(before);
    // A unit already in normal form is used as given (the core never mutates it).
    expect(out[0]).toBe(input[0]);
    expect(out[0]).toMatchObject(unit);
    expect(out[1].capabilities).toEqual(['police', 'traffic']);
    expect(out[1]).toMatchObject({
      homeArea: 'S1',
      position: [113.46, 23.11],
      incidentId: 'I-1',
      role: 'police',
      since: 100,
    });
    // No status means a unit just loaded from a scenario or registered: it is available.
    expect(out[2].status).toBe('available');
    expect(validateUnits([])).toEqual([]);
  });

  it('refuses a duplicate id', () => {
    const e = coreError(() => validateUnits([unit, { ...unit, id: 'X' }, unit]));
    expect([e.code, e.field]).toEqual(['DUPLICATE_ID', 'units[2].id']);
  });

  it('finds a duplicate whether or not the ids come sorted', () => {
    const first = (ids: string[]) => coreError(() => validateUnits(ids.map((id) => ({ ...unit, id })))).field;
    expect(first(['A', 'A'])).toBe('units[1].id');
    expect(first(['A', 'B', 'C', 'B'])).toBe('units[3].id');
    expect(first(['A', 'C', 'B', 'D', 'A'])).toBe('units[4].id');
    expect(validateUnits(['C', 'A', 'B'].map((id) => ({ ...unit, id }))).map((u) => u.id)).toEqual([
      'C',
      'A',
      'B',
    ]);
  });

  it('checks again what changed since a list of frozen units, like the full check', () => {
    const frozenUnit = (id: string, extra: Record<string, unknown> = {}) =>
      Object.freeze({
        ...unit,
        ...extra,
        id,
        capabilities: Object.freeze(['fire-engine']),
        home: Object.freeze([113.459, 23.106]),
      });
    const ids = Array.from({ length: 12 }, (_, i) => `U-${String(i).padStart(2, '0')}`);
    const base = ids.map((id) => frozenUnit(id));
    expect(validateUnits(base)).toEqual(base); // remembered
    // The same objects and a few new ones: the units come back as given.
    const next = [...base];
    next[3] = frozenUnit('U-03', { status: 'off_duty' });
    next[7] = frozenUnit('U-07', { position: Object.freeze([113.46, 23.1]) });
    const out = validateUnits(next);
    expect(out).not.toBe(next);
    expect(out.every((u, i) => u === next[i])).toBe(true);
    // A changed unit taking another's id, or breaking the order: found as by the full check.
    const dup = [...next];
    dup[5] = frozenUnit('U-04');
    expect([coreError(() => validateUnits(dup)).code, coreError(() => validateUnits(dup)).field]).toEqual([
      'DUPLICATE_ID',
      'units[5].id',
    ]);
    validateUnits(next);
    const swapped = [...next];
    swapped[2] = frozenUnit('U-09');
    swapped[9] = frozenUnit('U-02');
    expect(validateUnits(swapped).map((u) => u.id)).toEqual(swapped.map((u) => u.id));
    // A changed unit that is wrong is named; one not frozen is normalised afresh each time.
    validateUnits(next);
    const bad = [...next];
    bad[4] = Object.freeze({ ...next[4], speedKmh: -1 });
    expect(coreError(() => validateUnits(bad)).field).toBe('units[4].speedKmh');
    validateUnits(next);
    const mutable = [...next];
    mutable[6] = { ...unit, id: 'U-06', capabilities: ['fire-engine', 'fire-engine'] };
    expect(validateUnits(mutable)[6].capabilities).toEqual(['fire-engine']);
    (mutable[6] as { speedKmh: number }).speedKmh = 0;
    expect(coreError(() => validateUnits(mutable)).field).toBe('units[6].speedKmh');
  });

  it('names the first wrong field', () => {
    const cases: [unknown, string][] = [
      [null, 'units'],
      [{ 0: unit }, 'units'],
      [[unit, 'FE-02'], 'units[1]'],
      [[{ ...unit, id: '' }], 'units[0].id'],
      [[{ ...unit, id: '  ' }], 'units[0].id'],
      [[{ ...unit, id: 7 }], 'units[0].id'],
      [[{ ...unit, department: undefined }], 'units[0].department'],
      [[{ ...unit, capabilities: [] }], 'units[0].capabilities'],
      [[{ ...unit, capabilities: 'fire-engine' }], 'units[0].capabilities'],
      [[{ ...unit, capabilities: ['fire-engine', ''] }], 'units[0].capabilities[1]'],
      [[{ ...unit, home: [113.4, Number.NaN] }], 'units[0].home'],
      [[{ ...unit, home: [213.4, 23] }], 'units[0].home'],
      [[{ ...unit, home: [113.4, 23, 0] }], 'units[0].home'],
      [[{ ...unit, home: { lon: 113, lat: 23 } }], 'units[0].home'],
      [[{ ...unit, position: [0, 91] }], 'units[0].position'],
      [[{ ...unit, speedKmh: 0 }], 'units[0].speedKmh'],
      [[{ ...unit, speedKmh: -10 }], 'units[0].speedKmh'],
      [[{ ...unit, speedKmh: 301 }], 'units[0].speedKmh'],
      [[{ ...unit, speedKmh: Number.NaN }], 'units[0].speedKmh'],
      [[{ ...unit, speedKmh: '40' }], 'units[0].speedKmh'],
      [[{ ...unit, turnoutS: -1 }], 'units[0].turnoutS'],
      [[{ ...unit, turnoutS: Number.POSITIVE_INFINITY }], 'units[0].turnoutS'],
      [[{ ...unit, status: 'busy' }], 'units[0].status'],
      [[{ ...unit, status: 'en_route' }], 'units[0].incidentId'],
      [[{ ...unit, status: 'offered', incidentId: '' }], 'units[0].incidentId'],
      [[{ ...unit, homeArea: 3 }], 'units[0].homeArea'],
      [[{ ...unit, since: Number.NaN }], 'units[0].since'],
      [[{ ...unit, role: 'police' }], 'units[0].role'],
    ];
    for (const [input, field] of cases) {
      const e = coreError(() => validateUnits(input));
      expect({ code: e.code, field: e.field }).toEqual({ code: 'INVALID_FIELD', field });
    }
    expect(coreError(() => validateUnits([{ ...unit, speedKmh: 0 }], 'scenario.units')).field).toBe(
      'scenario.units[0].speedKmh',
    );
  });

  it('accepts the limits', () => {
    expect(validateUnits([{ ...unit, speedKmh: 300, turnoutS: 0, home: [-180, 90] }])[0].speedKmh).toBe(300);
  });
});

describe('validateIncidents', () => {
  it('passes normal-form incidents through and normalises the rest', () => {
    const input = [
      { ...incident, note: 'dropped' },
      {
        id: 'I-2',
        type: 'noise-complaint',
        location: [113.47, 23.12],
        reportedAt: 30,
        status: 'assigned',
        cell: 'C1',
        area: 'S1',
        priority: 2,
        assignedUnitIds: ['P-1'],
      },
      { id: 'I-3', type: 'noise-complaint', location: [113.47, 23.12], reportedAt: -5 },
    ];
    const before = structuredClone(input);
    const out = validateIncidents(input, catalog);
    expect(input).toEqual(before);
    expect(out[0]).toBe(input[0]);
    expect(out[0]).toMatchObject(incident);
    expect(out[1]).toEqual(input[1]);
    expect(out[2].status).toBe('queued');
  });

  it('refuses an unknown type and a duplicate id with their own codes', () => {
    let e = coreError(() =>
      validateIncidents([incident, { ...incident, id: 'I-2', type: 'alien-landing' }], catalog),
    );
    expect([e.code, e.field]).toEqual(['UNKNOWN_INCIDENT_TYPE', 'incidents[1].type']);
    e = coreError(() => validateIncidents([incident, { ...incident, id: 'I-2', type: 'toString' }], catalog));
    expect([e.code, e.field]).toEqual(['UNKNOWN_INCIDENT_TYPE', 'incidents[1].type']);
    e = coreError(() => validateIncidents([incident, incident], catalog));
    expect([e.code, e.field]).toEqual(['DUPLICATE_ID', 'incidents[1].id']);
  });

  it('names the first wrong field', () => {
    const ok = (i: number) => ({ ...incident, id: `I-${i}` });
    const cases: [unknown, string][] = [
      ['I-1', 'incidents'],
      [[ok(0), ok(1), ok(2), ok(3), { ...incident, location: [113, Number.NaN] }], 'incidents[4].location'],
      [[{ ...incident, location: [113] }], 'incidents[0].location'],
      [[{ ...incident, location: undefined }], 'incidents[0].location'],
      [[{ ...incident, type: '' }], 'incidents[0].type'],
      [[{ ...incident, id: null }], 'incidents[0].id'],
      [[{ ...incident, reportedAt: Number.NaN }], 'incidents[0].reportedAt'],
      [[{ ...incident, reportedAt: '2026-03-02T00:00:00+08:00' }], 'incidents[0].reportedAt'],
      [[{ ...incident, status: 'open' }], 'incidents[0].status'],
      [[{ ...incident, priority: 0 }], 'incidents[0].priority'],
      [[{ ...incident, priority: 5 }], 'incidents[0].priority'],
      [[{ ...incident, priority: 2.5 }], 'incidents[0].priority'],
      [[{ ...incident, cell: '' }], 'incidents[0].cell'],
      [[{ ...incident, area: 1 }], 'incidents[0].area'],
      [[{ ...incident, assignedUnitIds: 'P-1' }], 'incidents[0].assignedUnitIds'],
      [[{ ...incident, assignedUnitIds: ['P-1', ''] }], 'incidents[0].assignedUnitIds[1]'],
      [[{ ...incident, assignedUnitIds: ['P-1', 'P-1'] }], 'incidents[0].assignedUnitIds'],
    ];
    for (const [input, field] of cases) {
      const e = coreError(() => validateIncidents(input, catalog));
      expect({ code: e.code, field: e.field }).toEqual({ code: 'INVALID_FIELD', field });
    }
  });
});

describe('validateState', () => {
  it('validates both lists under the state path', () => {
    const s = validateState({ units: [unit], incidents: [incident], other: 1 }, catalog);
    expect(s).toEqual({ units: [unit], incidents: [incident] });
    expect(coreError(() => validateState(null, catalog)).field).toBe('state');
    expect(coreError(() => validateState({ units: [], incidents: {} }, catalog)).field).toBe(
      'state.incidents',
    );
    expect(
      coreError(() => validateState({ units: [{ ...unit, turnoutS: -1 }], incidents: [] }, catalog)).field,
    ).toBe('state.units[0].turnoutS');
    expect(
      coreError(() => validateState({ units: [], incidents: [{ ...incident, type: 'x' }] }, catalog)).code,
    ).toBe('UNKNOWN_INCIDENT_TYPE');
  });

  it('tolerates references to incidents the caller left out', () => {
    const s = validateState(
      {
        units: [{ ...unit, status: 'on_scene', incidentId: 'I-old' }],
        incidents: [{ ...incident, assignedUnitIds: ['gone'] }],
      },
      catalog,
    );
    expect(s.units[0].incidentId).toBe('I-old');
  });
});

describe('never throws anything but CoreError', () => {
  const fuzzUnit = fc.record(
    {
      id: fc.oneof(fc.string(), fc.anything()),
      department: fc.oneof(fc.constant('fire'), fc.anything()),
      capabilities: fc.oneof(fc.array(fc.string()), fc.anything()),
      home: fc.oneof(fc.tuple(fc.double(), fc.double()), fc.anything()),
      speedKmh: fc.oneof(fc.double(), fc.anything()),
      turnoutS: fc.oneof(fc.double(), fc.anything()),
      status: fc.oneof(fc.constantFrom('available', 'en_route', 'x'), fc.anything()),
      incidentId: fc.anything(),
      role: fc.anything(),
      position: fc.anything(),
      since: fc.anything(),
    },
    { requiredKeys: [] },
  );
  const fuzzIncident = fc.record(
    {
      id: fc.oneof(fc.string(), fc.anything()),
      type: fc.oneof(fc.constantFrom('structure-fire', 'noise-complaint', 'x'), fc.anything()),
      location: fc.oneof(fc.tuple(fc.double(), fc.double()), fc.anything()),
      reportedAt: fc.oneof(fc.double(), fc.anything()),
      status: fc.oneof(fc.constantFrom('queued', 'on_scene', 'x'), fc.anything()),
      priority: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.anything()),
      assignedUnitIds: fc.oneof(fc.array(fc.string()), fc.anything()),
    },
    { requiredKeys: [] },
  );
  const onlyCoreError = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(CoreError);
    }
  };

  it('on anything at all', () => {
    fc.assert(
      fc.property(
        fc.anything({ withNullPrototype: true, withMap: true, withSet: true, withBigInt: true }),
        (x) => {
          onlyCoreError(() => validateUnits(x));
          onlyCoreError(() => validateIncidents(x, catalog));
          onlyCoreError(() => validateState(x, catalog));
          onlyCoreError(() => validateUnits([x]));
          onlyCoreError(() => validateIncidents([x], catalog));
          onlyCoreError(() => validateState({ units: [x], incidents: [x] }, catalog));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('on near-valid records', () => {
    fc.assert(
      fc.property(
        fc.array(fuzzUnit, { maxLength: 4 }),
        fc.array(fuzzIncident, { maxLength: 4 }),
        (units, incidents) => {
          onlyCoreError(() => validateState({ units, incidents }, catalog));
        },
      ),
      { numRuns: 200 },
    );
  });
});
