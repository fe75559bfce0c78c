import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoreError } from '../../src/core/errors.ts';
import { haversineM, offsetM } from '../../src/core/geo.ts';
import { type RoadNetworkOptions, RoadNetworkTravel } from '../../src/core/road-network.ts';
import type { LonLat } from '../../src/core/types.ts';

const O: LonLat = [113.45, 23.1];
const at = (e: number, n: number): LonLat => offsetM(O, e, n);
const kmh = (v: number) => v / 3.6;

function road(coordinates: LonLat[], speedKmh: number) {
  return { type: 'Feature', properties: { speedKmh }, geometry: { type: 'LineString', coordinates } };
}
function net(...features: unknown[]) {
  return { type: 'FeatureCollection', features };
}
function coreError(fn: () => unknown): CoreError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CoreError) return e;
    throw e;
  }
  throw new Error('expected a CoreError');
}

describe('RoadNetworkTravel: model', () => {
  it('drives a straight road at min(road speed, unit speed)', () => {
    const a = at(0, 0);
    const b = at(2000, 0);
    const t = new RoadNetworkTravel(net(road([a, b], 60)));
    expect(t.name).toBe('road-network');
    expect(t.vertexCount).toBe(21); // split every 100 m
    expect(t.components).toBe(1);
    const len = haversineM(a, b);
    expect(t.travelS(a, b, 40)).toBeCloseTo(len / kmh(40), 2);
    expect(t.travelS(a, b, 80)).toBeCloseTo(len / kmh(60), 2);
    expect(t.travelS(b, a, 80)).toBeCloseTo(len / kmh(60), 2);
    expect(t.travelS(a, a, 80)).toBe(0);
  });

  it('connects lines whose endpoints lie within a metre, and only those', () => {
    const a = at(0, 0);
    const b = at(1000, 0);
    const c = at(1000, 1000);
    const big = { maxSegmentM: 1e9 };
    const joined = new RoadNetworkTravel(net(road([a, b], 36), road([offsetM(b, 0.3, 0.3), c], 36)), big);
    expect(joined.vertexCount).toBe(3);
    expect(joined.components).toBe(1);
    expect(joined.travelS(a, c, 36)).toBeCloseTo((haversineM(a, b) + haversineM(b, c)) / 10, 6);

    // 5 m apart: two separate roads, so the trip falls back to great-circle × detour at unit speed.
    const apart = new RoadNetworkTravel(net(road([a, b], 36), road([offsetM(b, 5, 0), c], 36)), big);
    expect(apart.vertexCount).toBe(4);
    expect(apart.components).toBe(2);
    expect(apart.travelS(a, c, 36)).toBeCloseTo((haversineM(a, c) * 1.3) / 10, 6);
  });

  it('merges within a metre away from the equator too', () => {
    const north: LonLat = [10, 60];
    const b = offsetM(north, 1000, 0);
    const t = new RoadNetworkTravel(
      net(road([north, b], 36), road([offsetM(b, -0.9, 0), offsetM(b, 0, 1000)], 36)),
      {
        maxSegmentM: 1e9,
      },
    );
    expect(t.vertexCount).toBe(3);
  });

  it('adds off-network access legs at min(unit speed, access speed) × detour', () => {
    const a = at(0, 0);
    const b = at(1000, 0);
    const t = new RoadNetworkTravel(net(road([a, b], 60)));
    const p = at(0, 50);
    const expected = (haversineM(p, a) * 1.3) / kmh(15) + haversineM(a, b) / kmh(40);
    expect(t.travelS(p, b, 40)).toBeCloseTo(expected, 2);
    // A unit slower than the access speed drives the legs at its own speed.
    const slow = (haversineM(p, a) * 1.3) / kmh(10) + haversineM(a, b) / kmh(10);
    expect(t.travelS(p, b, 10)).toBeCloseTo(slow, 2);
    expect(t.snap(p)).toEqual(a);
  });

  it('goes straight when that beats joining a distant road', () => {
    const t = new RoadNetworkTravel(net(road([at(0, 0), at(1000, 0)], 60)));
    const p = at(500, 500);
    const q = at(520, 500);
    expect(t.travelS(p, q, 40)).toBeCloseTo((haversineM(p, q) * 1.3) / kmh(15), 6);
  });

  it('takes the fastest route, not the shortest', () => {
    const a = at(0, 0);
    const b = at(1000, 0);
    const t = new RoadNetworkTravel(net(road([a, b], 20), road([a, at(0, 300), at(1000, 300), b], 100)), {
      maxSegmentM: 1e9,
    });
    const detourM =
      haversineM(a, at(0, 300)) + haversineM(at(0, 300), at(1000, 300)) + haversineM(at(1000, 300), b);
    expect(t.travelS(a, b, 120)).toBeCloseTo(detourM / kmh(100), 6);
    expect(t.travelS(a, b, 20)).toBeCloseTo(haversineM(a, b) / kmh(20), 6);
  });

  it('answers the same through a tiny cache as through a large one', () => {
    const lines = [];
    for (let i = 0; i < 5; i++) {
      lines.push(road([at(0, i * 500), at(2000, i * 500)], 30 + i * 10));
      lines.push(road([at(i * 500, 0), at(i * 500, 2000)], 70 - i * 10));
    }
    const small = new RoadNetworkTravel(net(...lines), { cacheSize: 1 });
    const large = new RoadNetworkTravel(net(...lines));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.constantFrom(30, 50, 80),
        (x1, y1, x2, y2, v) => {
          const p = at(x1, y1);
          const q = at(x2, y2);
          const ref = large.travelS(p, q, v);
          expect(small.travelS(p, q, v)).toBe(ref);
          expect(large.travelS(p, q, v)).toBe(ref);
          // Undirected roads: the reverse trip takes as long, up to rounding.
          expect(large.travelS(q, p, v)).toBeCloseTo(ref, 6);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** Random networks on a 4×4 grid of junctions 400 m apart, each road one grid edge. */
const gridNetwork = fc.record({
  edges: fc.uniqueArray(
    fc.record({
      i: fc.integer({ min: 0, max: 15 }),
      dir: fc.constantFrom(1, 4),
      speed: fc.integer({ min: 5, max: 120 }),
    }),
    { minLength: 1, maxLength: 24, selector: (e) => `${e.i}:${e.dir}` },
  ),
  v: fc.integer({ min: 5, max: 150 }),
  f: fc.double({ min: 1, max: 2, noNaN: true }),
  access: fc.integer({ min: 5, max: 40 }),
});
const node = (i: number): LonLat => at((i % 4) * 400, Math.floor(i / 4) * 400);

describe('RoadNetworkTravel: shortest paths', () => {
  it('matches Floyd–Warshall on random grid networks', () => {
    fc.assert(
      fc.property(gridNetwork, ({ edges, v, f, access }) => {
        const valid = edges.filter((e) => !(e.dir === 1 && e.i % 4 === 3) && e.i + e.dir < 16);
        fc.pre(valid.length > 0);
        const opts: RoadNetworkOptions = { maxSegmentM: 1e9, detourFactor: f, accessSpeedKmh: access };
        const t = new RoadNetworkTravel(
          net(...valid.map((e) => road([node(e.i), node(e.i + e.dir)], e.speed))),
          opts,
        );
        const d: number[][] = Array.from({ length: 16 }, (_, i) =>
          Array.from({ length: 16 }, (_, j) => (i === j ? 0 : Infinity)),
        );
        for (const e of valid) {
          const s = haversineM(node(e.i), node(e.i + e.dir)) / kmh(Math.min(e.speed, v));
          const j = e.i + e.dir;
          d[e.i][j] = Math.min(d[e.i][j], s);
          d[j][e.i] = Math.min(d[j][e.i], s);
        }
        for (let k = 0; k < 16; k++)
          for (let i = 0; i < 16; i++)
            for (let j = 0; j < 16; j++) d[i][j] = Math.min(d[i][j], d[i][k] + d[k][j]);
        const used = [...new Set(valid.flatMap((e) => [e.i, e.i + e.dir]))];
        for (const i of used) {
          for (const j of used) {
            const gc = haversineM(node(i), node(j));
            const expected = Number.isFinite(d[i][j])
              ? Math.min(d[i][j], (gc * f) / kmh(Math.min(v, access)))
              : (gc * f) / kmh(v);
            const got = t.travelS(node(i), node(j), v);
            expect(Math.abs(got - expected)).toBeLessThan(1e-6 * Math.max(1, expected));
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('RoadNetworkTravel: admissible lower bound', () => {
  const point = fc.tuple(fc.integer({ min: -4000, max: 4000 }), fc.integer({ min: -4000, max: 4000 }));
  // Junction coordinates snap to a coarse lattice so that random lines often share vertices.
  const junction = fc.tuple(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 }));
  const line = fc.record({
    pts: fc.array(
      fc.oneof(
        junction.map(([x, y]) => [x * 700, y * 700] as const),
        point,
      ),
      { minLength: 2, maxLength: 5 },
    ),
    speed: fc.double({ min: 3, max: 130, noNaN: true }),
  });

  it('never exceeds travelS on random networks, points, speeds and parameters', () => {
    fc.assert(
      fc.property(
        fc.array(line, { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(point, point), { minLength: 1, maxLength: 12 }),
        fc.double({ min: 2, max: 200, noNaN: true }),
        fc.double({ min: 1, max: 2.5, noNaN: true }),
        fc.double({ min: 2, max: 60, noNaN: true }),
        fc.integer({ min: 30, max: 3000 }),
        (lines, pairs, v, f, access, seg) => {
          const t = new RoadNetworkTravel(
            net(
              ...lines.map((l) =>
                road(
                  l.pts.map(([x, y]) => at(x, y)),
                  l.speed,
                ),
              ),
            ),
            { detourFactor: f, accessSpeedKmh: access, maxSegmentM: seg },
          );
          for (const [[x1, y1], [x2, y2]] of pairs) {
            const p = at(x1, y1);
            const q = at(x2, y2);
            const lb = t.lowerBoundS(haversineM(p, q), v);
            expect(lb).toBeGreaterThanOrEqual(0);
            expect(lb).toBeLessThanOrEqual(t.travelS(p, q, v));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is tight along a straight road at the top speed', () => {
    const a = at(0, 0);
    const b = at(3000, 0);
    const t = new RoadNetworkTravel(net(road([a, b], 50)));
    const lb = t.lowerBoundS(haversineM(a, b), 80);
    expect(lb).toBeLessThanOrEqual(t.travelS(a, b, 80));
    expect(lb / t.travelS(a, b, 80)).toBeGreaterThan(0.9999);
  });

  it('accounts for the faster fallback when the network is not connected', () => {
    const t = new RoadNetworkTravel(
      net(road([at(0, 0), at(100, 0)], 10), road([at(5000, 0), at(5100, 0)], 10)),
    );
    expect(t.components).toBe(2);
    const p = at(0, 0);
    const q = at(5100, 0);
    // Roads top out at 15 km/h (access), yet the fallback drives the unit's 60 km/h.
    expect(t.lowerBoundS(haversineM(p, q), 60)).toBeLessThanOrEqual(t.travelS(p, q, 60));
  });
});

describe('RoadNetworkTravel: validation', () => {
  const ok = road([at(0, 0), at(100, 0)], 40);

  it('names the offending field', () => {
    const cases: [unknown, string][] = [
      [null, 'travel.roads'],
      [{ type: 'FeatureCollection' }, 'travel.roads.features'],
      [net(), 'travel.roads.features'],
      [net(ok, ok, ok, road([at(0, 0), at(1, 0)], -5)), 'travel.roads.features[3].properties.speedKmh'],
      [net(road([at(0, 0), at(1, 0)], Number.NaN)), 'travel.roads.features[0].properties.speedKmh'],
      [net(road([at(0, 0), at(1, 0)], 301)), 'travel.roads.features[0].properties.speedKmh'],
      [net({ ...ok, properties: undefined }), 'travel.roads.features[0].properties'],
      [
        net({ ...ok, geometry: { type: 'Point', coordinates: [1, 2] } }),
        'travel.roads.features[0].geometry.type',
      ],
      [net(road([at(0, 0)], 40)), 'travel.roads.features[0].geometry.coordinates'],
      [net(ok, road([at(0, 0), [200, 0]], 40)), 'travel.roads.features[1].geometry.coordinates[1]'],
      [net(road([at(0, 0), [113, Number.NaN]], 40)), 'travel.roads.features[0].geometry.coordinates[1]'],
    ];
    for (const [input, field] of cases) {
      const e = coreError(() => new RoadNetworkTravel(input));
      expect(e.code).toBe('INVALID_FIELD');
      expect(e.field).toBe(field);
    }
  });

  it('validates its options', () => {
    expect(coreError(() => new RoadNetworkTravel(net(ok), { detourFactor: 0.5 })).field).toBe(
      'travel.detourFactor',
    );
    expect(coreError(() => new RoadNetworkTravel(net(ok), { accessSpeedKmh: 0 })).field).toBe(
      'travel.accessSpeedKmh',
    );
    expect(coreError(() => new RoadNetworkTravel(net(ok), { cacheSize: 0 })).field).toBe('travel.cacheSize');
    expect(coreError(() => new RoadNetworkTravel({}, { path: 'roads' })).field).toBe('roads.features');
  });

  it('accepts positions with an altitude', () => {
    const t = new RoadNetworkTravel(net(road([[113.45, 23.1, 5] as unknown as LonLat, [113.46, 23.1]], 40)));
    expect(t.components).toBe(1);
  });

  it('throws only CoreError, whatever the input', () => {
    fc.assert(
      fc.property(fc.anything(), (x) => {
        try {
          new RoadNetworkTravel(x);
        } catch (e) {
          expect(e).toBeInstanceOf(CoreError);
        }
        try {
          new RoadNetworkTravel(net(x));
        } catch (e) {
          expect(e).toBeInstanceOf(CoreError);
        }
      }),
    );
  });
});

describe('RoadNetworkTravel: scale', () => {
  it('serves 4000 queries from 40 sources on a 3600-junction grid quickly', () => {
    const lines = [];
    for (let i = 0; i < 60; i++) {
      const row: LonLat[] = [];
      const col: LonLat[] = [];
      for (let j = 0; j < 60; j++) {
        row.push(at(j * 150, i * 150));
        col.push(at(i * 150, j * 150));
      }
      lines.push(road(row, i % 5 === 0 ? 60 : 30), road(col, i % 5 === 0 ? 60 : 30));
    }
    const start = performance.now();
    const t = new RoadNetworkTravel(net(...lines));
    expect(t.components).toBe(1);
    let checksum = 0;
    for (let s = 0; s < 40; s++) {
      const from = at(((s * 37) % 60) * 150 + 20, ((s * 11) % 60) * 150 + 10);
      for (let k = 0; k < 100; k++) {
        const to = at(((k * 53) % 89) * 100, ((k * 29) % 89) * 100);
        const s1 = t.travelS(from, to, 50);
        expect(s1).toBeGreaterThanOrEqual(t.lowerBoundS(haversineM(from, to), 50));
        checksum += s1;
      }
    }
    const ms = performance.now() - start;
    expect(Number.isFinite(checksum)).toBe(true);
    expect(ms).toBeLessThan(5000);
  });
});
