import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../bench/instances.ts';
import { CapabilityIndex } from '../../src/core/capability-index.ts';
import { haversineM } from '../../src/core/geo.ts';
import type { Column } from '../../src/core/model.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat, Unit } from '../../src/core/types.ts';

const travel = new GreatCircleTravel(1.3);

/** Columns of one capability at the given points, some sharing a station. */
function columns(points: LonLat[], rnd: () => number): Column[] {
  return points.map((at, i) => {
    const unit: Unit = {
      id: `U${String(i).padStart(4, '0')}`,
      department: 'd',
      capabilities: ['cap'],
      home: at,
      speedKmh: 30 + Math.round(rnd() * 20),
      turnoutS: 30 + Math.round(rnd() * 60),
      status: 'available',
    };
    return { index: i, unit, at, turnoutS: unit.turnoutS };
  });
}

function scatter(rnd: () => number, n: number, x0: number, y0: number, span: number): LonLat[] {
  const hot: LonLat[] = [0, 1, 2].map(() => [x0 + rnd() * span, y0 + rnd() * span]);
  const pts: LonLat[] = [];
  for (let i = 0; i < n; i++) {
    if (i > 0 && rnd() < 0.1)
      pts.push(pts[Math.floor(rnd() * pts.length)]); // same station
    else if (rnd() < 0.5) {
      const h = hot[Math.floor(rnd() * hot.length)];
      pts.push([h[0] + (rnd() - 0.5) * span * 0.05, h[1] + (rnd() - 0.5) * span * 0.05]);
    } else pts.push([x0 + rnd() * span, y0 + rnd() * span]);
  }
  return pts;
}

const eta = (c: Column, at: LonLat) => c.turnoutS + travel.travelS(c.at, at, c.unit.speedKmh);

/** Nearest k by exact great-circle distance, ties by column index. */
function bruteNearest(cols: Column[], at: LonLat, k: number, ok: (c: Column) => boolean): Column[] {
  return cols
    .filter(ok)
    .map((c) => ({ c, d: haversineM(c.at, at) }))
    .sort((a, b) => a.d - b.d || a.c.index - b.c.index)
    .slice(0, k)
    .map((x) => x.c);
}

/** Checks every query against brute force; returns the violations found (none expected). */
function violations(cols: Column[], queries: LonLat[], ks: number[]): string[] {
  const bad: string[] = [];
  const index = new CapabilityIndex(cols);
  const odd = (c: Column) => c.index % 2 === 1;
  for (const at of queries) {
    for (const k of ks) {
      for (const filter of [undefined, odd]) {
        const tag = `${at} k=${k}${filter ? ' odd' : ''}`;
        const found = index.nearest('cap', 'free', at, k, travel, filter);
        const want = bruteNearest(cols, at, k, filter ?? (() => true));
        if (found.cols.map((c) => c.index).join() !== want.map((c) => c.index).join())
          bad.push(`${tag}: nearest`);
        found.cols.forEach((c, q) => {
          if (found.dists[q] !== haversineM(c.at, at)) bad.push(`${tag}: distance`);
        });
        // The bound holds for every unit not returned.
        const returned = new Set(found.cols);
        for (const c of cols) {
          if (returned.has(c) || (filter && !filter(c))) continue;
          if (eta(c, at) < found.restLowerBoundS) bad.push(`${tag}: bound`);
        }
      }
      // Every unit arriving sooner than needEta is found, and the bound holds for the rest.
      const needEta = 120 + k * 60;
      const n = index.reachableInto('cap', 'free', at, needEta, travel);
      const got = index.found.slice(0, n);
      const ids = got.map((c) => c.index);
      if (ids.join() !== [...ids].sort((a, b) => a - b).join()) bad.push(`${at}: reachable order`);
      got.forEach((c, q) => {
        if (index.foundDist[q] !== haversineM(c.at, at)) bad.push(`${at}: reachable distance`);
      });
      const inList = new Set(got);
      for (const c of cols) {
        const e = eta(c, at);
        if (!inList.has(c) && e < needEta && e < index.restLowerBoundS) bad.push(`${at}: reachable missed`);
      }
    }
  }
  return bad;
}

describe('capability index', () => {
  it('finds the exact nearest units and bounds the rest (clustered district, shared stations)', () => {
    const rnd = mulberry32(7);
    const cols = columns(scatter(rnd, 600, 113.4, 23.05, 0.3), rnd);
    const queries: LonLat[] = Array.from({ length: 80 }, () => [113.4 + rnd() * 0.3, 23.05 + rnd() * 0.3]);
    // Outside the fleet's extent, and on a station.
    queries.push([113.2, 22.9], [114.2, 23.6], cols[17].at);
    expect(violations(cols, queries, [1, 8, 40])).toEqual([]);
  });

  it('stays exact for a fleet astride the antimeridian and near a pole', () => {
    const rnd = mulberry32(11);
    const across = columns(
      Array.from(
        { length: 200 },
        (): LonLat => [rnd() < 0.5 ? 179.8 + rnd() * 0.2 : -180 + rnd() * 0.2, -16 + rnd()],
      ),
      rnd,
    );
    const acrossQueries: LonLat[] = [
      [179.95, -15.5],
      [-179.95, -15.5],
      [180, -16.2],
    ];
    expect(violations(across, acrossQueries, [1, 8])).toEqual([]);
    const polar = columns(
      Array.from({ length: 200 }, (): LonLat => [-180 + rnd() * 360, 88 + rnd() * 2]),
      rnd,
    );
    const polarQueries: LonLat[] = [
      [0, 89.5],
      [120, 88.2],
      [-179, 89.9],
    ];
    expect(violations(polar, polarQueries, [1, 8])).toEqual([]);
  });

  it('returns a small group whole, with nothing left to bound', () => {
    const rnd = mulberry32(3);
    const cols = columns(scatter(rnd, 5, 10, 50, 0.1), rnd);
    const index = new CapabilityIndex(cols);
    const found = index.nearest('cap', 'free', [10.05, 50.05], 8, travel);
    expect(found.cols).toHaveLength(5);
    expect(found.restLowerBoundS).toBe(Number.POSITIVE_INFINITY);
    expect(index.nearest('none', 'free', [10, 50], 8, travel).cols).toEqual([]);
  });
});
