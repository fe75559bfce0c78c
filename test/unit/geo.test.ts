import { distance } from '@turf/turf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bboxOf,
  destination,
  EARTH_RADIUS_M,
  haversineM,
  isLonLat,
  isPosition,
  offsetM,
} from '../../src/core/geo.ts';
import type { LonLat } from '../../src/core/types.ts';

const lonLat = fc.tuple(
  fc.double({ min: -180, max: 180, noNaN: true }),
  fc.double({ min: -90, max: 90, noNaN: true }),
) as fc.Arbitrary<LonLat>;

describe('haversineM', () => {
  it('gives one degree of latitude as R·π/180', () => {
    expect(haversineM([113.46, 23], [113.46, 24])).toBeCloseTo((EARTH_RADIUS_M * Math.PI) / 180, 6);
  });

  it('is zero for a point and itself, and half the circumference for antipodes', () => {
    expect(haversineM([113.46, 23.1], [113.46, 23.1])).toBe(0);
    expect(haversineM([0, 0], [180, 0])).toBeCloseTo(Math.PI * EARTH_RADIUS_M, 3);
    expect(Number.isNaN(haversineM([0, 90], [0, -90]))).toBe(false);
  });

  it('agrees with turf and is symmetric', () => {
    fc.assert(
      fc.property(lonLat, lonLat, (a, b) => {
        const d = haversineM(a, b);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(Math.abs(d - haversineM(b, a))).toBeLessThan(1e-6);
        expect(Math.abs(d - distance(a, b, { units: 'meters' }))).toBeLessThan(1e-3);
      }),
    );
  });

  it('satisfies the triangle inequality', () => {
    fc.assert(
      fc.property(lonLat, lonLat, lonLat, (a, b, c) => {
        // Doubles lose precision in the trigonometry near antipodes: asin(√h) with h → 1 is off
        // by up to about √ε of the distance (seen: 2 cm in 20,015 km, 1e-9 of it), so the
        // tolerance is relative, 1e-8, not 1 µm absolute.
        const sum = haversineM(a, b) + haversineM(b, c);
        expect(haversineM(a, c)).toBeLessThanOrEqual(sum + 1e-6 + 1e-8 * sum);
      }),
    );
  });
});

describe('isLonLat / isPosition', () => {
  it('accepts finite in-range pairs only', () => {
    expect(isLonLat([113.46, 23.1])).toBe(true);
    expect(isLonLat([-180, -90])).toBe(true);
    expect(isLonLat([180, 90])).toBe(true);
    for (const bad of [
      [180.0001, 0],
      [0, -90.0001],
      [Number.NaN, 0],
      [0, Number.POSITIVE_INFINITY],
      ['113', 23],
      [113],
      [113, 23, 0],
      null,
      undefined,
      '113,23',
      { 0: 113, 1: 23, length: 2 },
    ]) {
      expect(isLonLat(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it('lets a GeoJSON position carry an altitude', () => {
    expect(isPosition([113, 23])).toBe(true);
    expect(isPosition([113, 23, 12])).toBe(true);
    expect(isPosition([113, 23, Number.NaN])).toBe(false);
    expect(isPosition([113, 23, 1, 2])).toBe(false);
    expect(isPosition([200, 23])).toBe(false);
  });
});

describe('destination / offsetM', () => {
  it('lands at the requested distance', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -170, max: 170, noNaN: true }),
        fc.double({ min: -70, max: 70, noNaN: true }),
        fc.double({ min: 0, max: 360, noNaN: true }),
        fc.double({ min: 0, max: 50_000, noNaN: true }),
        (lon, lat, bearing, d) => {
          const p = destination([lon, lat], bearing, d);
          expect(isLonLat(p)).toBe(true);
          expect(Math.abs(haversineM([lon, lat], p) - d)).toBeLessThan(1e-3);
        },
      ),
    );
  });

  it('heads north at bearing 0 and east at bearing 90', () => {
    const o: LonLat = [113.46, 23.1];
    const n = destination(o, 0, 1000);
    const e = destination(o, 90, 1000);
    expect(n[0]).toBeCloseTo(o[0], 9);
    expect(n[1]).toBeGreaterThan(o[1]);
    expect(e[0]).toBeGreaterThan(o[0]);
  });

  it('offsets by metres east and north within 0.1% over 10 km', () => {
    const o: LonLat = [113.46, 23.1];
    expect(haversineM(o, offsetM(o, 10_000, 0))).toBeCloseTo(10_000, -1);
    expect(haversineM(o, offsetM(o, 0, -10_000))).toBeCloseTo(10_000, -1);
    expect(Math.abs(haversineM(o, offsetM(o, 3000, 4000)) - 5000)).toBeLessThan(5);
    expect(offsetM([179.9999, 0], 1000, 0)[0]).toBeLessThan(-179);
  });
});

describe('bboxOf', () => {
  it('bounds all points', () => {
    expect(
      bboxOf([
        [1, 2],
        [-3, 5],
        [4, -1, 7],
      ]),
    ).toEqual([-3, -1, 4, 5]);
  });
});
