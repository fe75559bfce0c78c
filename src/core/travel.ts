// The default travel-time model: great-circle distance stretched by a detour factor (roads
// are not straight), driven at the unit's top speed. Turnout is added by the caller.

import { CoreError } from './errors.ts';
import { haversineM } from './geo.ts';
import type { TravelTimes } from './ports.ts';
import type { LonLat } from './types.ts';

export const DEFAULT_DETOUR_FACTOR = 1.3;

/** km/h → m/s. */
export const kmhToMs = (kmh: number): number => kmh / 3.6;

/** Refuses a detour factor below 1 (faster than a straight line) or not finite. */
export function checkDetourFactor(f: unknown, field = 'travel.detourFactor'): number {
  if (typeof f !== 'number' || !Number.isFinite(f) || f < 1) {
    throw new CoreError('INVALID_FIELD', field, 'must be a finite number ≥ 1');
  }
  return f;
}

export class GreatCircleTravel implements TravelTimes {
  readonly name = 'great-circle';
  readonly distanceOnly = true;
  readonly detourFactor: number;

  constructor(detourFactor: number = DEFAULT_DETOUR_FACTOR) {
    this.detourFactor = checkDetourFactor(detourFactor);
  }

  travelS(from: LonLat, to: LonLat, speedKmh: number): number {
    return this.lowerBoundS(haversineM(from, to), speedKmh);
  }

  /** Exact, not merely admissible: travelS depends on the two points only through their distance. */
  lowerBoundS(distanceM: number, speedKmh: number): number {
    return (distanceM * this.detourFactor) / kmhToMs(speedKmh);
  }

  lowerBoundDistanceM(seconds: number, speedKmh: number): number {
    return (Math.max(0, seconds) * kmhToMs(speedKmh)) / this.detourFactor;
  }
}
