// Where a moving unit is: the simulator's documented position rule, shared with the
// replay checker so that both compute the same point.
//
// A unit that set off at `startT` from `from` towards `to` spends `turnoutS` getting
// rolling (it does not move), then covers the straight line from → to (linear in lon/lat)
// at a constant pace in `travelS` seconds. Its position at time t is
//   from + f · (to − from),   f = clamp((t − startT − turnoutS) / travelS, 0, 1)
// (f = 1 when travelS is 0). The travel model's route may not be straight (detour factor,
// roads); the rule only needs to be simple and reproducible.

import type { LonLat } from '../core/types.ts';

export function progress(startT: number, turnoutS: number, travelS: number, t: number): number {
  if (!(travelS > 0)) return 1;
  const f = (t - startT - turnoutS) / travelS;
  return Math.min(1, Math.max(0, f));
}

export function interpolate(from: LonLat, to: LonLat, f: number): LonLat {
  if (f <= 0) return [from[0], from[1]];
  if (f >= 1) return [to[0], to[1]];
  return [from[0] + f * (to[0] - from[0]), from[1] + f * (to[1] - from[1])];
}

export function positionAt(
  from: LonLat,
  to: LonLat,
  startT: number,
  turnoutS: number,
  travelS: number,
  t: number,
): LonLat {
  return interpolate(from, to, progress(startT, turnoutS, travelS, t));
}
