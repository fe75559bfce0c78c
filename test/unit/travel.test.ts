import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoreError } from '../../src/core/errors.ts';
import { haversineM, offsetM } from '../../src/core/geo.ts';
import { DEFAULT_DETOUR_FACTOR, GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';

const HOME: LonLat = [113.459, 23.106];

describe('GreatCircleTravel', () => {
  it('is named great-circle with detour factor 1.3 by default', () => {
    const t = new GreatCircleTravel();
    expect(t.name).toBe('great-circle');
    expect(t.detourFactor).toBe(DEFAULT_DETOUR_FACTOR);
    expect(DEFAULT_DETOUR_FACTOR).toBe(1.3);
  });

  it('drives distance × detour at the unit speed', () => {
    const t = new GreatCircleTravel();
    const to = offsetM(HOME, 0, 1000);
    const d = haversineM(HOME, to);
    // 36 km/h = 10 m/s.
    expect(t.travelS(HOME, to, 36)).toBeCloseTo((d * 1.3) / 10, 9);
    expect(new GreatCircleTravel(1).travelS(HOME, to, 72)).toBeCloseTo(d / 20, 9);
    expect(t.travelS(HOME, HOME, 40)).toBe(0);
  });

  it('has a lower bound equal to the travel time at that distance', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -20_000, max: 20_000, noNaN: true }),
        fc.double({ min: -20_000, max: 20_000, noNaN: true }),
        fc.double({ min: 1, max: 3, noNaN: true }),
        fc.double({ min: 1, max: 300, noNaN: true }),
        (e, n, f, v) => {
          const t = new GreatCircleTravel(f);
          const to = offsetM(HOME, e, n);
          expect(t.lowerBoundS(haversineM(HOME, to), v)).toBe(t.travelS(HOME, to, v));
        },
      ),
    );
  });

  it('is faster for faster units', () => {
    const t = new GreatCircleTravel();
    const to = offsetM(HOME, 2000, 500);
    expect(t.travelS(HOME, to, 60)).toBeLessThan(t.travelS(HOME, to, 30));
  });

  it('refuses a detour factor below 1 or not finite', () => {
    expect(new GreatCircleTravel(1).detourFactor).toBe(1);
    for (const bad of [0.99, 0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      let err: unknown;
      try {
        new GreatCircleTravel(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CoreError);
      expect((err as CoreError).code).toBe('INVALID_FIELD');
      expect((err as CoreError).field).toBe('travel.detourFactor');
    }
  });
});
