// Spherical geometry on [lon, lat] pairs. Hand-written rather than turf because distances
// sit on the solver's hot path (millions of calls per decision on large states).

import type { LonLat } from './types.ts';

/** Mean earth radius (IUGG), metres; the same constant turf uses, so results agree. */
export const EARTH_RADIUS_M = 6371008.8;

const RAD = Math.PI / 180;

/** Great-circle distance in metres (haversine formula). */
export function haversineM(a: LonLat, b: LonLat): number {
  const lat1 = a[1] * RAD;
  const lat2 = b[1] * RAD;
  return haversineParts(lat1, Math.cos(lat1), a[0], lat2, Math.cos(lat2), b[0]);
}

/**
 * haversineM(a, b) from parts a caller may have precomputed: latitudes in radians with their
 * cosines, longitudes in degrees. Bit-identical to haversineM on the same points.
 */
export function haversineParts(
  lat1: number,
  cosLat1: number,
  lon1: number,
  lat2: number,
  cosLat2: number,
  lon2: number,
): number {
  const sLat = Math.sin((lat2 - lat1) / 2);
  const sLon = Math.sin(((lon2 - lon1) * RAD) / 2);
  const h = sLat * sLat + cosLat1 * cosLat2 * sLon * sLon;
  // atan2 stays well conditioned near antipodes, where asin(√h) loses centimetres; the clamp
  // keeps rounding from pushing h a hair above 1.
  const hc = Math.min(1, h);
  return 2 * EARTH_RADIUS_M * Math.atan2(Math.sqrt(hc), Math.sqrt(1 - hc));
}

/** True for a finite, in-range [lon, lat] pair of exactly two numbers. */
export function isLonLat(x: unknown): x is LonLat {
  return Array.isArray(x) && x.length === 2 && isLon(x[0]) && isLat(x[1]);
}

/** A GeoJSON position: [lon, lat] with an optional altitude, as area and road files may carry. */
export function isPosition(x: unknown): x is [number, number, ...number[]] {
  return (
    Array.isArray(x) &&
    (x.length === 2 || (x.length === 3 && Number.isFinite(x[2]))) &&
    isLon(x[0]) &&
    isLat(x[1])
  );
}

function isLon(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= -180 && v <= 180;
}

function isLat(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= -90 && v <= 90;
}

/** Point reached from `from` after `distanceM` metres along the initial bearing (degrees from north). */
export function destination(from: LonLat, bearingDeg: number, distanceM: number): LonLat {
  const lat1 = from[1] * RAD;
  const lon1 = from[0] * RAD;
  const brg = bearingDeg * RAD;
  const d = distanceM / EARTH_RADIUS_M;
  const sinLat2 = Math.sin(lat1) * Math.cos(d) + Math.cos(lat1) * Math.sin(d) * Math.cos(brg);
  const lat2 = Math.asin(Math.max(-1, Math.min(1, sinLat2)));
  const lon2 =
    lon1 + Math.atan2(Math.sin(brg) * Math.sin(d) * Math.cos(lat1), Math.cos(d) - Math.sin(lat1) * sinLat2);
  return [normaliseLon(lon2 / RAD), lat2 / RAD];
}

/**
 * Point `eastM` metres east and `northM` metres north of `from` on a local flat approximation;
 * accurate to well under 1% within a few tens of kilometres away from the poles.
 */
export function offsetM(from: LonLat, eastM: number, northM: number): LonLat {
  const dLat = northM / EARTH_RADIUS_M / RAD;
  const dLon = eastM / (EARTH_RADIUS_M * Math.cos(from[1] * RAD)) / RAD;
  return [normaliseLon(from[0] + dLon), from[1] + dLat];
}

/** Bounding box [minLon, minLat, maxLon, maxLat] of a list of positions. */
export function bboxOf(points: readonly (readonly number[])[]): [number, number, number, number] {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const p of points) {
    if (p[0] < minX) minX = p[0];
    if (p[0] > maxX) maxX = p[0];
    if (p[1] < minY) minY = p[1];
    if (p[1] > maxY) maxY = p[1];
  }
  return [minX, minY, maxX, maxY];
}

function normaliseLon(lon: number): number {
  return lon > 180 ? lon - 360 : lon < -180 ? lon + 360 : lon;
}
