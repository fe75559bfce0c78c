// Ports the core needs from the outside world. Each has a first-class in-core
// implementation; callers may inject others (a road network, a routing service).

import type { LonLat } from './types.ts';

/** Travel-time model. Times in seconds, turnout excluded (the core adds the unit's turnout). */
export interface TravelTimes {
  readonly name: string;
  /** Seconds to drive from `from` to `to` at a unit's top speed. */
  travelS(from: LonLat, to: LonLat, speedKmh: number): number;
  /**
   * Admissible lower bound on travelS for any two points `distanceM` metres apart
   * (great-circle) at `speedKmh`. The optimiser's optimality certificate relies on it
   * never exceeding the true travel time, and its searches on it not decreasing with distance.
   */
  lowerBoundS(distanceM: number, speedKmh: number): number;
  /**
   * Optional inverse of lowerBoundS: the largest distance whose bound is at most `seconds`.
   * Without it the optimiser finds that distance by bisection.
   */
  lowerBoundDistanceM?(seconds: number, speedKmh: number): number;
  /**
   * True when travelS(a, b, v) is exactly lowerBoundS(haversineM(a, b), v): the optimiser then
   * reuses the distances its spatial search already computed instead of recomputing them.
   */
  readonly distanceOnly?: boolean;
}

/**
 * Deadline for the anytime solver. The core never reads a clock: the caller hands in
 * either a deterministic work budget (replays) or a predicate backed by its clock (live).
 */
export interface Budget {
  /** Maximum solver work units (deterministic); undefined = unlimited. */
  maxWork?: number;
  /** Returns true once the caller's deadline has passed. */
  expired?: () => boolean;
}
