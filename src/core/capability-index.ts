// Spatial index of the assignment model's columns per capability and pool, on the uniform
// lon/lat grids of capability-grid.ts, with the fastest speed and shortest turnout of each
// group, from which an admissible lower bound on any member's ETA follows. Every search
// knows a great-circle distance that all members it leaves out provably exceed, which is all
// the optimality certificate needs: nearest-k searches walk rings of cells, ranking members
// by chord between unit vectors (cheap, monotone in the distance) and computing the exact
// haversine only for those returned; reach searches test a box member by member.

import {
  CapGroup,
  columnData,
  M_COS_LAT,
  M_LAT_RAD,
  M_LON,
  M_SPEED,
  M_TURNOUT,
  M_VX,
  M_VY,
  M_VZ,
  MEMBER_FIELDS,
  S_LAT,
  S_LON,
  S_VX,
  S_VY,
  S_VZ,
  SLOT_FIELDS,
} from './capability-grid.ts';
import { EARTH_RADIUS_M, haversineParts } from './geo.ts';
import type { Column } from './model.ts';
import type { TravelTimes } from './ports.ts';
import type { Capability, LonLat } from './types.ts';

/** Which columns a search looks at: free units, or units that could be pre-empted. */
export type Pool = 'free' | 'preempt';

const RAD = Math.PI / 180;

/**
 * Rank distances (chords between unit vectors) carry rounding errors of about 1e-9 m against
 * the haversine figures; a bound derived from a rank is lowered by this much to stay admissible.
 */
const RANK_SLACK_M = 1e-6;
const RANK_SLACK_REL = 1e-12;
/** Error bound of distanceEstimates against haversineM (rounding of the unit vectors). */
export const DISTANCE_EST_M = 1e-6;
export const DISTANCE_EST_REL = 1e-12;
/** Degrees a cell edge is moved towards the query, for the rounding of cell arithmetic. */
const GAP_SLACK_DEG = 1e-9;

/** haversineM(member, at) from the member's stored parts and those of `at`. */
function memberDistance(g: CapGroup, id: number, lat2: number, cos2: number, lon2: number): number {
  const m = id * MEMBER_FIELDS;
  const { member } = g;
  return haversineParts(member[m + M_LAT_RAD], member[m + M_COS_LAT], member[m + M_LON], lat2, cos2, lon2);
}

/** The search box of one query: members outside it are at least radiusM away. */
interface Box {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  /** The box covers every member. */
  all: boolean;
}

/**
 * Spatial index of columns per capability and pool, with the fastest speed and shortest
 * turnout in each, from which an admissible lower bound on any member's ETA follows.
 */
export class CapabilityIndex {
  // Per pool, per capability: nested maps so hot lookups build no key strings. A group's grid
  // is built on its first search: a decision usually needs a few of the units' capabilities,
  // and building every grid over a thousand units was most of a small decision's time.
  private readonly groups: Record<Pool, Map<Capability, CapGroup>> = { free: new Map(), preempt: new Map() };
  private readonly members: Record<Pool, Map<Capability, number[]>>;
  private readonly cols: Column[];
  private data?: Float64Array;
  // Scratch buffers reused across searches (the index is used by one decision at a time).
  private bestQ = new Float64Array(32);
  private bestI = new Int32Array(32);
  private hits = new Int32Array(64);
  private readonly box: Box = { minX: 0, minY: 0, maxX: 0, maxY: 0, all: false };
  /** Output of nearestInto. */
  readonly found: Column[] = [];
  foundDist = new Float64Array(32);
  restLowerBoundS = Number.POSITIVE_INFINITY;

  constructor(cols: Column[]) {
    // Column indices per pool and capability; cols come in index order, so each list is sorted.
    const byPool: Record<Pool, Map<Capability, number[]>> = { free: new Map(), preempt: new Map() };
    // Units of one kind often share one capabilities array (the live engine's mirror hands
    // out one per distinct list): its lists are looked up once per run of such columns, not
    // once per capability of every column (5,000 map lookups a decision for 1,000 units).
    let lastCaps: readonly Capability[] | undefined;
    let lastPool: Map<Capability, number[]> | undefined;
    let lists: number[][] = [];
    for (let j = 0; j < cols.length; j++) {
      const c = cols[j];
      const m = byPool[c.boundFor ? 'preempt' : 'free'];
      const caps = c.unit.capabilities;
      if (caps !== lastCaps || m !== lastPool) {
        lastCaps = caps;
        lastPool = m;
        lists = [];
        for (let q = 0; q < caps.length; q++) {
          let g = m.get(caps[q]);
          if (!g) {
            g = [];
            m.set(caps[q], g);
          }
          lists.push(g);
        }
      }
      for (let q = 0; q < lists.length; q++) lists[q].push(j);
    }
    this.cols = cols;
    this.members = byPool;
  }

  private group(pool: Pool, cap: Capability): CapGroup | undefined {
    const built = this.groups[pool].get(cap);
    if (built) return built;
    const members = this.members[pool].get(cap);
    if (!members) return undefined;
    this.data ??= columnData(this.cols);
    const g = new CapGroup(members, this.cols, this.data);
    this.groups[pool].set(cap, g);
    return g;
  }

  /**
   * Every member of the pool (by column index), with an estimate of its great-circle distance
   * to `at` in est[0 .. n-1], within ±(DISTANCE_EST_REL·d + DISTANCE_EST_M) of haversineM;
   * exactDistance(id) then gives the exact one (until the next call).
   */
  distanceEstimates(cap: Capability, pool: Pool, at: LonLat, est: Float64Array): Column[] {
    const g = this.group(pool, cap);
    if (!g) return [];
    const lat2 = at[1] * RAD;
    const cos2 = Math.cos(lat2);
    this.estGroup = g;
    this.estLat2 = lat2;
    this.estCos2 = cos2;
    this.estLon2 = at[0];
    const ax = cos2 * Math.cos(at[0] * RAD);
    const ay = cos2 * Math.sin(at[0] * RAD);
    const az = Math.sin(lat2);
    const { member } = g;
    for (let id = 0; id < g.n; id++) {
      const m = id * MEMBER_FIELDS;
      const dx = member[m + M_VX] - ax;
      const dy = member[m + M_VY] - ay;
      const dz = member[m + M_VZ] - az;
      const c = Math.sqrt(dx * dx + dy * dy + dz * dz);
      // Arc 2R·asin(c/2) by its series where the chord is short (error far below the slack).
      est[id] =
        c < 0.01
          ? EARTH_RADIUS_M * c * (1 + c * c * (1 / 24 + (c * c * 3) / 640))
          : memberDistance(g, id, lat2, cos2, at[0]);
    }
    return g.cols;
  }

  /** haversineM(member id, at) for the group and point of the last distanceEstimates. */
  exactDistance(id: number): number {
    return memberDistance(this.estGroup!, id, this.estLat2, this.estCos2, this.estLon2);
  }

  private estGroup: CapGroup | undefined;
  private estLat2 = 0;
  private estCos2 = 0;
  private estLon2 = 0;

  count(cap: Capability, pool: Pool = 'free'): number {
    return this.members[pool].get(cap)?.length ?? 0;
  }

  all(cap: Capability, pool: Pool = 'free'): Column[] {
    return this.group(pool, cap)?.cols ?? [];
  }

  /**
   * The distance within which a member of the pool could arrive within etaS (beyond it the
   * ETA lower bound exceeds etaS): the travel model's inverse when it has one, else bisection.
   */
  reachM(cap: Capability, pool: Pool, etaS: number, travel: TravelTimes): number {
    const g = this.group(pool, cap);
    if (!g) return 0;
    const s = etaS - g.minTurnout;
    if (s <= 0) return 0;
    if (travel.lowerBoundDistanceM) return travel.lowerBoundDistanceM(s, g.maxSpeed) * (1 + 1e-9) + 1;
    let hi = 100;
    while (travel.lowerBoundS(hi, g.maxSpeed) < s && hi < 2.1e7) hi *= 2;
    let lo = 0;
    for (let it = 0; it < 40 && hi - lo > 1; it++) {
      const mid = (lo + hi) / 2;
      if (travel.lowerBoundS(mid, g.maxSpeed) < s) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /**
   * The lon/lat box around `at` such that every member outside it is at least radiusM away:
   * |Δlat| > b gives d ≥ R·b; |Δlon| > a gives, from the haversine formula,
   * sin(d/2R) ≥ cos φ₁ cos φ₂ sin(a/2) ≥ cos²φmax… so a = 2·asin(sin(radiusM/2R) / cos φmax).
   * Near the antimeridian the box would wrap: it spans every longitude instead.
   */
  private setBox(g: CapGroup, at: LonLat, radiusM: number): Box {
    const bRad = radiusM / EARTH_RADIUS_M;
    const cosMax = Math.cos(Math.max(g.maxAbsLat, Math.abs(at[1])) * RAD);
    const s = Math.sin(Math.min(bRad, Math.PI) / 2) / Math.max(cosMax, 1e-12);
    const aDeg = s >= 1 ? 360 : (2 * Math.asin(s)) / RAD;
    const bDeg = bRad / RAD;
    const b = this.box;
    b.minX = at[0] - aDeg;
    b.maxX = at[0] + aDeg;
    b.minY = at[1] - bDeg;
    b.maxY = at[1] + bDeg;
    b.all = b.minX <= g.minX && b.maxX >= g.maxX && b.minY <= g.minY && b.maxY >= g.maxY;
    if (b.minX < -180 || b.maxX > 180) {
      b.minX = -180;
      b.maxX = 180;
    }
    return b;
  }

  /**
   * Slots of the members inside the box (and passing the filter) into this.hits; returns
   * their number.
   */
  private collect(g: CapGroup, b: Box, filter: ((c: Column) => boolean) | undefined): number {
    const { slot, slotId, cellStart, nx } = g;
    const x0 = g.cellX(b.minX);
    const x1 = g.cellX(b.maxX);
    const y0 = g.cellY(b.minY);
    const y1 = g.cellY(b.maxY);
    const { minX, maxX, minY, maxY } = b;
    if (this.hits.length < g.n) this.hits = new Int32Array(Math.max(g.n, 2 * this.hits.length));
    const hits = this.hits;
    let n = 0;
    // A box past the members' extent still clamps onto edge cells: the exact test below rejects.
    for (let cy = y0; cy <= y1; cy++) {
      const end = cellStart[cy * nx + x1 + 1];
      for (let s = cellStart[cy * nx + x0]; s < end; s++) {
        const x = slot[s * SLOT_FIELDS + S_LON];
        const y = slot[s * SLOT_FIELDS + S_LAT];
        if (x < minX || x > maxX || y < minY || y > maxY) continue;
        if (filter && !filter(g.cols[slotId[s]])) continue;
        hits[n++] = s;
      }
    }
    return n;
  }

  /**
   * About k members nearest to `at` (nearest first, ties by column index) passing the filter,
   * their great-circle distances, and a lower bound on the ETA of every member not returned
   * (Infinity when none is left).
   */
  nearest(
    cap: Capability,
    pool: Pool,
    at: LonLat,
    k: number,
    travel: TravelTimes,
    filter?: (c: Column) => boolean,
  ): { cols: Column[]; dists: number[]; restLowerBoundS: number } {
    const n = this.nearestInto(cap, pool, at, k, travel, filter);
    return {
      cols: this.found.slice(0, n),
      dists: Array.from(this.foundDist.subarray(0, n)),
      restLowerBoundS: this.restLowerBoundS,
    };
  }

  /**
   * nearest() without allocating: the members go to found[0 .. n-1] and their distances to
   * foundDist, the bound to restLowerBoundS; returns n. Valid until the next search.
   *
   * The search visits grid cells in square rings around the incident's cell and stops once
   * the (k+1)-th nearest member found is no farther than anything outside the rings can be:
   * the k returned are then the k nearest of the pool, and the (k+1)-th bounds the rest.
   */
  nearestInto(
    cap: Capability,
    pool: Pool,
    at: LonLat,
    k: number,
    travel: TravelTimes,
    filter?: (c: Column) => boolean,
  ): number {
    const g = this.group(pool, cap);
    this.restLowerBoundS = Number.POSITIVE_INFINITY;
    if (!g) return 0;
    if (this.bestQ.length < k + 1) {
      this.bestQ = new Float64Array(2 * (k + 1));
      this.bestI = new Int32Array(2 * (k + 1));
    }
    if (this.foundDist.length < k + 1) this.foundDist = new Float64Array(2 * (k + 1));
    const lat2 = at[1] * RAD;
    const cos2 = Math.cos(lat2);
    // A small group needs no search: all of it, nothing left to bound.
    if (g.n <= k && !filter) {
      for (let id = 0; id < g.n; id++) {
        this.found[id] = g.cols[id];
        this.foundDist[id] = memberDistance(g, id, lat2, cos2, at[0]);
      }
      return g.n;
    }
    this.ax = cos2 * Math.cos(at[0] * RAD);
    this.ay = cos2 * Math.sin(at[0] * RAD);
    this.az = Math.sin(lat2);
    this.n = 0;
    this.k = k;
    this.filter = filter;
    const { nx, ny, cellStart } = g;
    // The longitude bound below needs every member within 180° of longitude of `at`.
    const lonBounded = Math.max(g.maxX - at[0], at[0] - g.minX) <= 180;
    const cosMax = Math.cos(Math.max(g.maxAbsLat, Math.abs(at[1])) * RAD);
    const cx = g.cellX(at[0]);
    const cy = g.cellY(at[1]);
    for (let rho = 0; ; rho++) {
      const xa = cx - rho;
      const xb = cx + rho;
      const ya = cy - rho;
      const yb = cy + rho;
      const x0 = Math.max(0, xa);
      const x1 = Math.min(nx - 1, xb);
      // The ring: its top and bottom rows whole, then the two side columns between them.
      if (ya >= 0) this.rank(g, cellStart[ya * nx + x0], cellStart[ya * nx + x1 + 1]);
      if (yb < ny && rho > 0) this.rank(g, cellStart[yb * nx + x0], cellStart[yb * nx + x1 + 1]);
      if (rho > 0) {
        const y0 = Math.max(0, ya + 1);
        const y1 = Math.min(ny - 1, yb - 1);
        for (let y = y0; y <= y1; y++) {
          if (xa >= 0) this.rank(g, cellStart[y * nx + xa], cellStart[y * nx + xa + 1]);
          if (xb < nx) this.rank(g, cellStart[y * nx + xb], cellStart[y * nx + xb + 1]);
        }
      }
      const all = xa <= 0 && xb >= nx - 1 && ya <= 0 && yb >= ny - 1;
      if (!all && this.n <= k) continue;
      if (!all) {
        // Members outside the rings lie past a cell edge: at least this far in latitude or
        // longitude (a hair less, for the rounding of the cell arithmetic).
        if (!lonBounded) continue;
        const gapW = xa > 0 ? at[0] - (g.minX + xa * g.cellW) : Number.POSITIVE_INFINITY;
        const gapE = xb < nx - 1 ? g.minX + (xb + 1) * g.cellW - at[0] : Number.POSITIVE_INFINITY;
        const gapS = ya > 0 ? at[1] - (g.minY + ya * g.cellH) : Number.POSITIVE_INFINITY;
        const gapN = yb < ny - 1 ? g.minY + (yb + 1) * g.cellH - at[1] : Number.POSITIVE_INFINITY;
        const aDeg = Math.min(gapW, gapE) - GAP_SLACK_DEG;
        const bDeg = Math.min(gapS, gapN) - GAP_SLACK_DEG;
        if (aDeg <= 0 || bDeg <= 0) continue;
        // |Δlat| > b gives d ≥ R·b; |Δlon| > a (≤ 180°) gives sin(d/2R) ≥ cos²φmax… sin(a/2).
        const outsideM = Math.min(
          bDeg * RAD * EARTH_RADIUS_M,
          aDeg >= 180
            ? Number.POSITIVE_INFINITY
            : 2 * EARTH_RADIUS_M * Math.asin(cosMax * Math.sin((aDeg * RAD) / 2)),
        );
        // The (k+1)-th found, from its chord, with room for rounding.
        const chord = Math.sqrt(this.bestQ[k]);
        const dk = 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, chord / 2));
        if (dk * (1 + RANK_SLACK_REL) + RANK_SLACK_M > outsideM) continue;
      }
      const m = Math.min(this.n, k);
      const bestI = this.bestI;
      for (let q = 0; q < m; q++) {
        const id = bestI[q];
        this.found[q] = g.cols[id];
        this.foundDist[q] = memberDistance(g, id, lat2, cos2, at[0]);
      }
      if (this.n > k) {
        // Every member not returned is at least as far as the (k+1)-th.
        const id = bestI[k];
        const dk = memberDistance(g, id, lat2, cos2, at[0]);
        const restM = Math.max(0, dk * (1 - RANK_SLACK_REL) - RANK_SLACK_M);
        this.restLowerBoundS = g.minTurnout + travel.lowerBoundS(restM, g.maxSpeed);
      }
      this.filter = undefined;
      return m;
    }
  }

  // State of the ranking of one nearestInto search.
  private n = 0;
  private k = 0;
  private ax = 0;
  private ay = 0;
  private az = 0;
  private filter: ((c: Column) => boolean) | undefined;

  /**
   * Ranks slots s0 .. s1-1 into the k+1 nearest kept sorted by insertion (k is small), by
   * squared chord (monotone in the great-circle distance, and cheap), ties by member id =
   * column order.
   */
  private rank(g: CapGroup, s0: number, s1: number): void {
    const { slot, slotId } = g;
    const { bestQ, bestI, ax, ay, az, k, filter } = this;
    let n = this.n;
    for (let s = s0; s < s1; s++) {
      const o = s * SLOT_FIELDS;
      const dx = slot[o + S_VX] - ax;
      const dy = slot[o + S_VY] - ay;
      const dz = slot[o + S_VZ] - az;
      const q = dx * dx + dy * dy + dz * dz;
      const id = slotId[s];
      if (n === k + 1 && !(q < bestQ[k] || (q === bestQ[k] && id < bestI[k]))) continue;
      if (filter && !filter(g.cols[id])) continue;
      let p = n === k + 1 ? k : n++;
      while (p > 0 && (bestQ[p - 1] > q || (bestQ[p - 1] === q && bestI[p - 1] > id))) {
        bestQ[p] = bestQ[p - 1];
        bestI[p] = bestI[p - 1];
        p--;
      }
      bestQ[p] = q;
      bestI[p] = id;
    }
    this.n = n;
  }

  /**
   * Members that could arrive sooner than needEtaS (passing the filter), by column index, into
   * found[0 .. n-1] with their great-circle distances in foundDist; returns n. restLowerBoundS
   * gets a lower bound on the ETA of every member left out for lying outside the searched box
   * (Infinity when the box covers them all). Members inside the box are tested one by one
   * against their own turnout and speed: whoever is left out arrives at needEtaS or later.
   */
  reachableInto(
    cap: Capability,
    pool: Pool,
    at: LonLat,
    needEtaS: number,
    travel: TravelTimes,
    filter?: (c: Column) => boolean,
  ): number {
    const g = this.group(pool, cap);
    this.restLowerBoundS = Number.POSITIVE_INFINITY;
    if (!g) return 0;
    const radiusM = this.reachM(cap, pool, needEtaS, travel);
    const b = this.setBox(g, at, radiusM);
    const nHits = this.collect(g, b, filter);
    const hits = this.hits;
    const { slot, slotId, member } = g;
    const lat2 = at[1] * RAD;
    const cos2 = Math.cos(lat2);
    const ax = cos2 * Math.cos(at[0] * RAD);
    const ay = cos2 * Math.sin(at[0] * RAD);
    const az = Math.sin(lat2);
    // The arc is at least R × the chord: a chord this long puts a member past radiusM, where
    // none arrives in time (squared, to skip the root for most of the box's corners).
    const chordOut = (radiusM + RANK_SLACK_M) / (EARTH_RADIUS_M * (1 - RANK_SLACK_REL));
    const qOut = chordOut * chordOut;
    let n = 0;
    for (let h = 0; h < nHits; h++) {
      const s = hits[h];
      const o = s * SLOT_FIELDS;
      const dx = slot[o + S_VX] - ax;
      const dy = slot[o + S_VY] - ay;
      const dz = slot[o + S_VZ] - az;
      const q = dx * dx + dy * dy + dz * dz;
      if (q >= qOut) continue;
      const id = slotId[s];
      const dLo = Math.sqrt(q) * EARTH_RADIUS_M * (1 - RANK_SLACK_REL) - RANK_SLACK_M;
      const m = id * MEMBER_FIELDS;
      if (member[m + M_TURNOUT] + travel.lowerBoundS(Math.max(0, dLo), member[m + M_SPEED]) >= needEtaS)
        continue;
      hits[n++] = id; // behind the read position h: no slot still to read is overwritten
    }
    // By column order.
    if (n > 1) hits.subarray(0, n).sort();
    if (this.foundDist.length < n) this.foundDist = new Float64Array(2 * n);
    for (let q = 0; q < n; q++) {
      const id = hits[q];
      const c = g.cols[id];
      this.found[q] = c;
      this.foundDist[q] = memberDistance(g, id, lat2, cos2, at[0]);
    }
    if (!b.all) this.restLowerBoundS = g.minTurnout + travel.lowerBoundS(radiusM, g.maxSpeed);
    return n;
  }
}
