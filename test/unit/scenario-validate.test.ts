import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatIsoWithOffset,
  parseIsoWithOffset,
  parseScenario,
  ScenarioError,
} from '../../src/scenario/validate.ts';

// biome-ignore lint/suspicious/noExplicitAny: fixtures are edited freely by the tests
type Loose = any;

const square = (x: number, y: number, d = 0.01) => [
  [
    [x, y],
    [x + d, y],
    [x + d, y + d],
    [x, y + d],
    [x, y],
  ],
];

/** A small valid scenario (plain JSON). */
function fixture(): Record<string, Loose> {
  return {
    name: 'fixture',
    start: '2026-03-02T00:00:00+08:00',
    durationS: 3600,
    seed: 7,
    travel: { detourFactor: 1.3 },
    areas: {
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          properties: { id: 'cell-1', name: 'Cell 1', parent: 'sd-1' },
          geometry: { type: 'Polygon', coordinates: square(113.45, 23.1) },
        },
        {
          type: 'Feature',
          properties: { id: 'sd-1', name: 'Sub-district 1', duties: ['noise-complaint'] },
          geometry: { type: 'MultiPolygon', coordinates: [square(113.45, 23.1, 0.02)] },
        },
      ],
    },
    catalog: [
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
        label: '噪声扰民 / Noise',
      },
    ],
    units: [
      {
        id: 'FE-01',
        department: 'fire',
        capabilities: ['fire-engine'],
        home: [113.459, 23.106],
        homeArea: 'sd-1',
        speedKmh: 40,
        turnoutS: 60,
      },
      {
        id: 'FE-02',
        department: 'fire',
        capabilities: ['fire-engine'],
        home: [113.46, 23.107],
        speedKmh: 45,
        turnoutS: 60,
      },
      {
        id: 'POL-01',
        department: 'police',
        capabilities: ['police'],
        home: [113.455, 23.105],
        speedKmh: 40,
        turnoutS: 30,
      },
    ],
    incidents: [
      { id: 'I-3', atS: 100, type: 'noise-complaint', location: [113.451, 23.101], source: '12345' },
      { id: 'I-2', atS: 12.5, type: 'structure-fire', location: [113.462, 23.111], onSceneS: 1500 },
      {
        id: 'I-1',
        atS: 100,
        type: 'noise-complaint',
        location: [113.452, 23.102],
        cancelAtS: 400,
        priority: 3,
      },
    ],
    sim: { ackDelayS: 5, declineProb: 0.1, ackTimeoutS: 30, returnHome: true, cadenceS: 0 },
    description: 'a fixture',
  };
}

function errorOf(json: unknown): ScenarioError {
  try {
    parseScenario(json);
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw new Error(`threw a non-ScenarioError: ${String(e)}`);
  }
  throw new Error('parseScenario accepted the input');
}

function mutated(edit: (s: Record<string, Loose>) => void): Record<string, Loose> {
  const s = fixture();
  edit(s);
  return s;
}

describe('parseScenario: valid input', () => {
  it('accepts a valid scenario and returns a copy with incidents sorted by (atS, id)', () => {
    const input = fixture();
    const before = JSON.stringify(input);
    const s = parseScenario(input);
    expect(JSON.stringify(input)).toBe(before);
    expect(s.incidents.map((i) => i.id)).toEqual(['I-2', 'I-1', 'I-3']);
    expect(s.units[0]).toEqual(input.units[0]);
    expect(s.catalog[1].label).toBe('噪声扰民 / Noise');
    expect(s.incidents[1].cancelAtS).toBe(400);
    expect(s.sim?.declineProb).toBe(0.1);
    expect(s.units[0].home).not.toBe(input.units[0].home);
  });

  it('is idempotent and survives a JSON round trip', () => {
    const s = parseScenario(fixture());
    expect(parseScenario(JSON.parse(JSON.stringify(s)))).toEqual(s);
  });

  it('passes unknown fields through and accepts an empty area collection and no units/incidents', () => {
    const s = parseScenario(
      mutated((x) => {
        x.extra = { a: 1 };
        x.units[0].callSign = 'Engine 1';
        x.areas.features = [];
        x.units = [];
        x.incidents = [];
      }),
    );
    expect((s as unknown as { extra: unknown }).extra).toEqual({ a: 1 });
    expect(s.units).toEqual([]);
  });

  it('accepts altitude in area geometry and Z as an offset', () => {
    const s = parseScenario(
      mutated((x) => {
        x.areas.features[0].geometry.coordinates[0][1] = [113.46, 23.1, 12];
        x.start = '2026-03-02T00:00:00Z';
      }),
    );
    expect(s.areas.features[0].geometry.coordinates[0][1]).toEqual([113.46, 23.1]);
  });

  it('accepts capabilities named like Object.prototype keys', () => {
    const s = parseScenario(
      JSON.parse(JSON.stringify(fixture()).replace('"requires":{"police":1}', '"requires":{"__proto__":1}')),
    );
    expect(Object.keys(s.catalog[1].requires)).toEqual(['__proto__']);
  });
});

describe('parseScenario: refusals name the first wrong field', () => {
  const cases: [string, (s: Record<string, Loose>) => void, string, string?][] = [
    ['root', (s) => Object.assign(s, { name: undefined }), '$.name'],
    ['start without offset', (s) => (s.start = '2026-03-02T00:00:00'), '$.start'],
    ['start impossible date', (s) => (s.start = '2026-02-30T00:00:00+08:00'), '$.start'],
    ['durationS 0', (s) => (s.durationS = 0), '$.durationS', 'a number > 0'],
    ['seed fractional', (s) => (s.seed = 1.5), '$.seed'],
    ['empty catalogue', (s) => (s.catalog = []), '$.catalog'],
    ['priority 5', (s) => (s.catalog[0].priority = 5), '$.catalog[0].priority', 'an integer in [1, 4]'],
    ['immediate string', (s) => (s.catalog[0].immediate = 'yes'), '$.catalog[0].immediate'],
    ['targetS 0', (s) => (s.catalog[1].targetS = 0), '$.catalog[1].targetS'],
    ['requires empty', (s) => (s.catalog[0].requires = {}), '$.catalog[0].requires'],
    [
      'requires zero',
      (s) => (s.catalog[0].requires = { 'fire-engine': 0 }),
      '$.catalog[0].requires["fire-engine"]',
    ],
    ['requires fraction', (s) => (s.catalog[1].requires = { police: 1.5 }), '$.catalog[1].requires.police'],
    ['onSceneS negative', (s) => (s.catalog[0].onSceneS = -1), '$.catalog[0].onSceneS'],
    ['allOrNothing', (s) => (s.catalog[0].allOrNothing = 1), '$.catalog[0].allOrNothing'],
    ['duplicate type', (s) => (s.catalog[1].type = 'structure-fire'), '$.catalog[1].type'],
    ['areas type', (s) => (s.areas.type = 'Feature'), '$.areas.type'],
    ['feature type', (s) => (s.areas.features[1].type = 'Polygon'), '$.areas.features[1].type'],
    ['area id', (s) => delete s.areas.features[0].properties.id, '$.areas.features[0].properties.id'],
    ['area name', (s) => (s.areas.features[1].properties.name = 3), '$.areas.features[1].properties.name'],
    [
      'duplicate area id',
      (s) => s.areas.features.push(structuredClone(s.areas.features[0])),
      '$.areas.features[2].properties.id',
    ],
    [
      'unknown parent',
      (s) => (s.areas.features[0].properties.parent = 'nope'),
      '$.areas.features[0].properties.parent',
    ],
    [
      'duty not in catalogue',
      (s) => (s.areas.features[1].properties.duties = ['noise-complaint', 'x']),
      '$.areas.features[1].properties.duties[1]',
    ],
    [
      'point geometry',
      (s) => (s.areas.features[0].geometry = { type: 'Point', coordinates: [1, 2] }),
      '$.areas.features[0].geometry.type',
    ],
    [
      'ring not closed',
      (s) => (s.areas.features[0].geometry.coordinates[0][4] = [113.45, 23.2]),
      '$.areas.features[0].geometry.coordinates[0][4]',
    ],
    [
      'ring lon 200',
      (s) => (s.areas.features[0].geometry.coordinates[0][1][0] = 200),
      '$.areas.features[0].geometry.coordinates[0][1][0]',
      'a number in [-180, 180]',
    ],
    [
      'short ring',
      (s) =>
        (s.areas.features[0].geometry.coordinates[0] = [
          [1, 1],
          [2, 2],
          [1, 1],
        ]),
      '$.areas.features[0].geometry.coordinates[0]',
    ],
    [
      'empty multipolygon',
      (s) => (s.areas.features[1].geometry.coordinates = []),
      '$.areas.features[1].geometry.coordinates',
    ],
    ['units not array', (s) => (s.units = {}), '$.units'],
    ['speed negative', (s) => (s.units[1].speedKmh = -5), '$.units[1].speedKmh', 'a number in (0, 300]'],
    ['speed absurd', (s) => (s.units[1].speedKmh = 4000), '$.units[1].speedKmh'],
    ['turnout negative', (s) => (s.units[2].turnoutS = -1), '$.units[2].turnoutS'],
    ['no capabilities', (s) => (s.units[0].capabilities = []), '$.units[0].capabilities'],
    [
      'blank capability',
      (s) => (s.units[0].capabilities = ['fire-engine', ' ']),
      '$.units[0].capabilities[1]',
    ],
    ['home lat 91', (s) => (s.units[0].home = [113, 91]), '$.units[0].home[1]', 'a number in [-90, 90]'],
    ['home 3 numbers', (s) => (s.units[0].home = [113, 23, 0]), '$.units[0].home'],
    ['home NaN-ish string', (s) => (s.units[0].home = ['113', 23]), '$.units[0].home[0]'],
    ['unknown homeArea', (s) => (s.units[0].homeArea = 'sd-9'), '$.units[0].homeArea'],
    ['duplicate unit id', (s) => (s.units[2].id = 'FE-01'), '$.units[2].id'],
    [
      'atS beyond duration',
      (s) => (s.incidents[1].atS = 3601),
      '$.incidents[1].atS',
      'a number in [0, 3600]',
    ],
    ['atS negative', (s) => (s.incidents[0].atS = -1), '$.incidents[0].atS'],
    ['unknown type', (s) => (s.incidents[2].type = 'alien-landing'), '$.incidents[2].type'],
    ['location', (s) => (s.incidents[0].location = [200, 23]), '$.incidents[0].location[0]'],
    ['duplicate incident id', (s) => (s.incidents[2].id = 'I-3'), '$.incidents[2].id'],
    ['cancel before report', (s) => (s.incidents[2].cancelAtS = 50), '$.incidents[2].cancelAtS'],
    ['priority 0', (s) => (s.incidents[2].priority = 0), '$.incidents[2].priority'],
    ['onSceneS negative', (s) => (s.incidents[1].onSceneS = -3), '$.incidents[1].onSceneS'],
    ['source number', (s) => (s.incidents[0].source = 110), '$.incidents[0].source'],
    ['detourFactor < 1', (s) => (s.travel.detourFactor = 0.9), '$.travel.detourFactor', 'a number ≥ 1'],
    [
      'roads empty',
      (s) => (s.travel.roads = { type: 'FeatureCollection', features: [] }),
      '$.travel.roads.features',
    ],
    [
      'road speed',
      (s) =>
        (s.travel.roads = {
          type: 'FeatureCollection',
          features: [
            {
              type: 'Feature',
              properties: { speedKmh: 0 },
              geometry: {
                type: 'LineString',
                coordinates: [
                  [113.4, 23.1],
                  [113.5, 23.1],
                ],
              },
            },
          ],
        }),
      '$.travel.roads.features[0].properties.speedKmh',
    ],
    [
      'road one point',
      (s) =>
        (s.travel.roads = {
          type: 'FeatureCollection',
          features: [
            {
              type: 'Feature',
              properties: { speedKmh: 40 },
              geometry: { type: 'LineString', coordinates: [[1, 2]] },
            },
          ],
        }),
      '$.travel.roads.features[0].geometry.coordinates',
    ],
    ['declineProb 1.5', (s) => (s.sim.declineProb = 1.5), '$.sim.declineProb', 'a number in [0, 1]'],
    ['ackTimeoutS 0', (s) => (s.sim.ackTimeoutS = 0), '$.sim.ackTimeoutS'],
    ['ackDelayS negative', (s) => (s.sim.ackDelayS = -1), '$.sim.ackDelayS'],
    ['returnHome', (s) => (s.sim.returnHome = 'no'), '$.sim.returnHome'],
    ['cadenceS', (s) => (s.sim.cadenceS = -2), '$.sim.cadenceS'],
    ['description', (s) => (s.description = 5), '$.description'],
  ];

  it.each(cases)('%s', (_label, edit, path, expected) => {
    const e = errorOf(mutated(edit));
    expect(e.path).toBe(path);
    if (expected) expect(e.expected).toBe(expected);
    expect(e.message.startsWith(`${path}: expected `)).toBe(true);
  });

  it('formats the message as "path: expected …, got …"', () => {
    const e = errorOf(mutated((s) => (s.units[1].speedKmh = -5)));
    expect(e.message).toBe('$.units[1].speedKmh: expected a number in (0, 300], got -5');
    expect(e.got).toBe('-5');
    expect(e.name).toBe('ScenarioError');
  });

  it('names the first wrong field when several are wrong', () => {
    const e1 = errorOf(
      mutated((s) => {
        s.units[2].speedKmh = 0;
        s.units[1].turnoutS = -1;
        s.incidents[0].atS = -5;
      }),
    );
    expect(e1.path).toBe('$.units[1].turnoutS');
    const e2 = errorOf(
      mutated((s) => {
        s.incidents[0].atS = -5;
        s.name = '';
      }),
    );
    expect(e2.path).toBe('$.name');
    expect(e2.got).toBe('an empty string');
  });

  it('refuses non-objects at the root', () => {
    for (const v of [null, 3, 'x', [], undefined]) expect(errorOf(v).path).toBe('$');
  });
});

describe('parseScenario: never throws anything but ScenarioError', () => {
  const mustBeScenarioError = (v: unknown): void => {
    try {
      parseScenario(v);
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
    }
  };

  it('on arbitrary JSON values', () => {
    fc.assert(fc.property(fc.jsonValue(), mustBeScenarioError), { numRuns: 500 });
  });

  it('on arbitrary JS values', () => {
    fc.assert(
      fc.property(
        fc.anything({ withNullPrototype: true, withBigInt: true, withDate: true, withMap: true }),
        mustBeScenarioError,
      ),
      { numRuns: 500 },
    );
  });

  /** Every path to a value inside the fixture, as key lists. */
  function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
    const out: (string | number)[][] = [prefix];
    if (Array.isArray(v)) for (const [i, x] of v.entries()) out.push(...paths(x, [...prefix, i]));
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
    return out;
  }
  const allPaths = paths(fixture()).filter((p) => p.length > 0);

  it('on a valid scenario with one value anywhere replaced by anything', () => {
    fc.assert(
      fc.property(fc.constantFrom(...allPaths), fc.jsonValue(), (path, value) => {
        const s = fixture();
        let o: Loose = s;
        for (const k of path.slice(0, -1)) o = o[k];
        o[path[path.length - 1]] = value;
        mustBeScenarioError(s);
      }),
      { numRuns: 1000 },
    );
  });

  it('when a value is removed, the error names a field at or above it (or the scenario stays valid)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...allPaths), (path) => {
        const s = fixture();
        let o: Loose = s;
        for (const k of path.slice(0, -1)) o = o[k];
        const last = path[path.length - 1];
        if (Array.isArray(o)) o.splice(last as number, 1);
        else delete o[last];
        try {
          parseScenario(s);
        } catch (e) {
          expect(e).toBeInstanceOf(ScenarioError);
          expect((e as ScenarioError).path.startsWith('$')).toBe(true);
        }
      }),
    );
  });
});

describe('ISO times', () => {
  it('parses offsets and round-trips', () => {
    const p = parseIsoWithOffset('2026-03-02T08:30:15.250+08:00');
    expect(p).toEqual({ epochMs: Date.UTC(2026, 2, 2, 0, 30, 15, 250), offsetMin: 480 });
    expect(formatIsoWithOffset(p!.epochMs, 480)).toBe('2026-03-02T08:30:15.250+08:00');
    expect(parseIsoWithOffset('2024-02-29T00:00:00-05:30')?.offsetMin).toBe(-330);
    for (const bad of [
      '2026-03-02',
      '2026-03-02T24:00:00Z',
      '2025-02-29T00:00:00Z',
      '2026-13-01T00:00:00Z',
      'x',
    ]) {
      expect(parseIsoWithOffset(bad)).toBeUndefined();
    }
  });
});
