// The assignment model shared by every policy: open slots (rows), eligible units
// (columns), their costs under the one objective, and a spatial index of units per capability.

import KDBush from 'kdbush';
import type { CatalogIndex } from './catalog.ts';
import { haversineM } from './geo.ts';
import { PRIORITY_WEIGHT, slotCost, unservedCost } from './objective.ts';
import type { DispatchOptions } from './policy.ts';
import type { TravelTimes } from './ports.ts';
import type { Capability, Incident, IncidentType, Priority, Unit } from './types.ts';

/** One required unit of one open incident. */
export interface Row {
  index: number;
  incident: Incident;
  type: IncidentType;
  capability: Capability;
  priority: Priority;
  weight: number;
  immediate: boolean;
  /** Seconds left until the arrival target (may be negative). */
  slackS: number;
  unservedCost: number;
  /** All-or-nothing group (incident index) or -1. */
  group: number;
}

/** A unit that may be sent: free, or (for pre-emption) bound for a lower-priority incident. */
export interface Column {
  index: number;
  unit: Unit;
  /** Where it is now (position or home). */
  at: [number, number];
  /** Turnout applies to units not yet rolling. */
  turnoutS: number;
  /** Set for pre-emptible units: the incident it would be taken from, and its priority. */
  boundFor?: Incident;
  boundPriority?: Priority;
}

const ACTIVE_INCIDENT = new Set(['queued', 'assigned', 'en_route', 'on_scene']);
const COMMITTED_UNIT = new Set(['offered', 'en_route', 'on_scene']);

/** Canonical order of rows: priority, report time, incident id, capability (the tie-break). */
function compareIncidents(a: Row, b: Row): number {
  return (
    a.priority - b.priority ||
    a.incident.reportedAt - b.incident.reportedAt ||
    (a.incident.id < b.incident.id ? -1 : a.incident.id > b.incident.id ? 1 : 0) ||
    (a.capability < b.capability ? -1 : a.capability > b.capability ? 1 : 0)
  );
}

/**
 * Open slots: each required capability of each active incident minus the units already
 * committed to it in that role. An on-scene package is not reopened.
 */
export function buildRows(
  incidents: Incident[],
  units: Unit[],
  catalog: CatalogIndex,
  now: number,
  horizonS: number,
): Row[] {
  const committed = new Map<string, Map<Capability, number>>();
  for (const u of units) {
    if (!u.incidentId || !COMMITTED_UNIT.has(u.status)) continue;
    let byCap = committed.get(u.incidentId);
    if (!byCap) {
      byCap = new Map();
      committed.set(u.incidentId, byCap);
    }
    const role = u.role ?? u.capabilities[0];
    byCap.set(role, (byCap.get(role) ?? 0) + 1);
  }
  const rows: Row[] = [];
  let group = 0;
  for (const inc of incidents) {
    if (!ACTIVE_INCIDENT.has(inc.status)) continue;
    const type = catalog.get(inc.type);
    if (!type) continue; // validated upstream; an unknown type cannot reach here
    const priority = inc.priority ?? type.priority;
    const weight = PRIORITY_WEIGHT[priority];
    const byCap = committed.get(inc.id);
    const g = type.allOrNothing ? group++ : -1;
    for (const cap of Object.keys(type.requires).sort()) {
      const open = type.requires[cap] - (byCap?.get(cap) ?? 0);
      for (let k = 0; k < open; k++) {
        const slackS = inc.reportedAt + type.targetS - now;
        rows.push({
          index: 0,
          incident: inc,
          type,
          capability: cap,
          priority,
          weight,
          immediate: type.immediate,
          slackS,
          unservedCost: unservedCost(weight, slackS, horizonS),
          group: g,
        });
      }
    }
  }
  rows.sort(compareIncidents);
  rows.forEach((r, i) => {
    r.index = i;
  });
  return rows;
}

/** Units by id order: free units first, then pre-emptible ones (only when pre-emption is on). */
export function buildColumns(
  units: Unit[],
  incidents: Incident[],
  catalog: CatalogIndex,
  preemption: boolean,
): Column[] {
  const byId = new Map(incidents.map((i) => [i.id, i]));
  const cols: Column[] = [];
  const sorted = [...units].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const unit of sorted) {
    const at = unit.position ?? unit.home;
    if (unit.status === 'available') {
      cols.push({ index: 0, unit, at, turnoutS: unit.turnoutS });
    } else if (preemption && (unit.status === 'offered' || unit.status === 'en_route') && unit.incidentId) {
      const inc = byId.get(unit.incidentId);
      const type = inc && catalog.get(inc.type);
      if (!inc || !type || inc.status === 'on_scene') continue;
      // An offered unit has not moved yet; an en-route one is already rolling.
      const turnoutS = unit.status === 'offered' ? unit.turnoutS : 0;
      cols.push({
        index: 0,
        unit,
        at,
        turnoutS,
        boundFor: inc,
        boundPriority: inc.priority ?? type.priority,
      });
    }
  }
  cols.forEach((c, i) => {
    c.index = i;
  });
  return cols;
}

/** Whether column c may serve row r: capability, and pre-emption only for higher-priority immediate work. */
export function eligible(r: Row, c: Column): boolean {
  if (!c.unit.capabilities.includes(r.capability)) return false;
  if (!c.boundFor) return true;
  return r.immediate && c.boundFor.id !== r.incident.id && r.priority < (c.boundPriority ?? 4);
}

export function etaS(r: Row, c: Column, travel: TravelTimes): number {
  return c.turnoutS + travel.travelS(c.at, r.incident.location, c.unit.speedKmh);
}

export function crossesJurisdiction(r: Row, c: Column): boolean {
  return !!(c.unit.homeArea && r.incident.area && c.unit.homeArea !== r.incident.area);
}

/** Cost of sending c to r with ETA eta: the objective's slot cost plus documented penalties. */
export function edgeCost(r: Row, c: Column, eta: number, options: DispatchOptions): number {
  let cost = slotCost(r.weight, eta, r.slackS);
  // Penalties are rounded like ETAs: costs stay integers, so sums are exact.
  if (crossesJurisdiction(r, c)) cost += r.weight * Math.round(options.jurisdictionPenaltyS);
  if (c.boundFor) cost += PRIORITY_WEIGHT[c.boundPriority ?? 4] * Math.round(options.preemptionPenaltyS);
  return cost;
}

/** Which columns a search looks at: free units, or units that could be pre-empted. */
export type Pool = 'free' | 'preempt';

interface CapGroup {
  index: KDBush;
  cols: Column[];
  maxSpeed: number;
  minTurnout: number;
  /** Largest |latitude| of any member, for a rigorous longitude margin. */
  maxAbsLat: number;
  /** Bounding box of the members, to know when a search box already covers them all. */
  bbox: [number, number, number, number];
  /** Radius (m) expected to hold about one member: sets the first search box. */
  spacingM: number;
}

const RAD = Math.PI / 180;
const EARTH_R = 6371008.8;

/**
 * Spatial index of columns per capability and pool, with the fastest speed and shortest
 * turnout in each, from which an admissible lower bound on any member's ETA follows.
 * Searches are box queries on a kd-tree (kdbush.range: typed arrays, no per-point
 * allocation); the box is sized so that every member outside it is provably farther than a
 * known great-circle distance, which is all the optimality certificate needs.
 */
export class CapabilityIndex {
  // Per pool, per capability: nested maps so hot lookups build no key strings.
  private readonly groups: Record<Pool, Map<Capability, CapGroup>> = { free: new Map(), preempt: new Map() };
  private bestD = new Float64Array(32);
  private bestI = new Int32Array(32);

  constructor(cols: Column[]) {
    const byPool: Record<Pool, Map<Capability, Column[]>> = { free: new Map(), preempt: new Map() };
    for (const c of cols) {
      const m = byPool[c.boundFor ? 'preempt' : 'free'];
      for (const cap of c.unit.capabilities) {
        const g = m.get(cap);
        if (g) g.push(c);
        else m.set(cap, [c]);
      }
    }
    for (const pool of ['free', 'preempt'] as const)
      for (const [cap, g] of byPool[pool]) {
        const index = new KDBush(g.length, 16);
        let maxSpeed = 0;
        let minTurnout = Number.POSITIVE_INFINITY;
        let maxAbsLat = 0;
        const bbox: [number, number, number, number] = [180, 90, -180, -90];
        for (const c of g) {
          const [x, y] = c.at;
          index.add(x, y);
          maxSpeed = Math.max(maxSpeed, c.unit.speedKmh);
          minTurnout = Math.min(minTurnout, c.turnoutS);
          maxAbsLat = Math.max(maxAbsLat, Math.abs(y));
          bbox[0] = Math.min(bbox[0], x);
          bbox[1] = Math.min(bbox[1], y);
          bbox[2] = Math.max(bbox[2], x);
          bbox[3] = Math.max(bbox[3], y);
        }
        index.finish();
        const areaM2 =
          Math.max(1, (bbox[2] - bbox[0]) * RAD * EARTH_R * Math.cos(maxAbsLat * RAD)) *
          Math.max(1, (bbox[3] - bbox[1]) * RAD * EARTH_R);
        const spacingM = Math.max(50, Math.sqrt(areaM2 / g.length / Math.PI));
        this.groups[pool].set(cap, { index, cols: g, maxSpeed, minTurnout, maxAbsLat, bbox, spacingM });
      }
  }

  count(cap: Capability, pool: Pool = 'free'): number {
    return this.groups[pool].get(cap)?.cols.length ?? 0;
  }

  all(cap: Capability, pool: Pool = 'free'): Column[] {
    return this.groups[pool].get(cap)?.cols ?? [];
  }

  /**
   * The distance within which a member of the pool could arrive within etaS (beyond it the
   * ETA lower bound exceeds etaS): the travel model's inverse when it has one, else bisection.
   */
  reachM(cap: Capability, pool: Pool, etaS: number, travel: TravelTimes): number {
    const g = this.groups[pool].get(cap);
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
   * Members in a lon/lat box around `at` such that every member outside it is at least
   * radiusM away: |Δlat| > b gives d ≥ R·b; |Δlon| > a gives, from the haversine formula,
   * sin(d/2R) ≥ cos φ₁ cos φ₂ sin(a/2) ≥ cos²φmax… so a = 2·asin(sin(radiusM/2R) / cos φmax).
   * Returns the ids and whether the box covers every member.
   */
  private box(g: CapGroup, at: [number, number], radiusM: number): { ids: number[]; all: boolean } {
    const bRad = radiusM / EARTH_R;
    const cosMax = Math.cos(Math.max(g.maxAbsLat, Math.abs(at[1])) * RAD);
    const s = Math.sin(Math.min(bRad, Math.PI) / 2) / Math.max(cosMax, 1e-12);
    const aDeg = s >= 1 ? 360 : (2 * Math.asin(s)) / RAD;
    const bDeg = bRad / RAD;
    const minX = at[0] - aDeg;
    const maxX = at[0] + aDeg;
    const minY = at[1] - bDeg;
    const maxY = at[1] + bDeg;
    const all = minX <= g.bbox[0] && maxX >= g.bbox[2] && minY <= g.bbox[1] && maxY >= g.bbox[3];
    if (all) return { ids: g.cols.map((_, i) => i), all };
    // Near the antimeridian the box would wrap: search every longitude instead.
    const wraps = minX < -180 || maxX > 180;
    return { ids: g.index.range(wraps ? -180 : minX, minY, wraps ? 180 : maxX, maxY), all };
  }

  /**
   * About k members nearest to `at` (nearest first) passing the filter, and a lower bound on
   * the ETA of every member not returned (Infinity when none is left).
   */
  nearest(
    cap: Capability,
    pool: Pool,
    at: [number, number],
    k: number,
    travel: TravelTimes,
    filter?: (c: Column) => boolean,
  ): { cols: Column[]; dists?: number[]; restLowerBoundS: number } {
    const g = this.groups[pool].get(cap);
    if (!g) return { cols: [], restLowerBoundS: Number.POSITIVE_INFINITY };
    // A small group needs no search: all of it, nothing left to bound.
    if (g.cols.length <= k && !filter) return { cols: g.cols, restLowerBoundS: Number.POSITIVE_INFINITY };
    // About k+1 members in the circle at average density; the box doubles where sparser.
    let radiusM = g.spacingM * Math.sqrt(k + 1);
    // The k+1 nearest hits kept sorted by insertion (k is small): no allocation per hit.
    // Scratch buffers reused across searches (the index is used by one decision at a time).
    if (this.bestD.length < k + 1) {
      this.bestD = new Float64Array(2 * (k + 1));
      this.bestI = new Int32Array(2 * (k + 1));
    }
    const bestD = this.bestD;
    const bestI = this.bestI;
    for (;;) {
      const { ids, all } = this.box(g, at, radiusM);
      let n = 0;
      for (const i of ids) {
        const c = g.cols[i];
        if (filter && !filter(c)) continue;
        const d = haversineM(c.at, at);
        if (n === k + 1 && !(d < bestD[k] || (d === bestD[k] && c.index < g.cols[bestI[k]].index))) continue;
        let p = n === k + 1 ? k : n++;
        while (p > 0 && (bestD[p - 1] > d || (bestD[p - 1] === d && g.cols[bestI[p - 1]].index > c.index))) {
          bestD[p] = bestD[p - 1];
          bestI[p] = bestI[p - 1];
          p--;
        }
        bestD[p] = d;
        bestI[p] = i;
      }
      if (n > k || all) {
        // Unreturned: the (k+1)-th hit and whatever lies outside the box.
        let restM = all ? Number.POSITIVE_INFINITY : radiusM;
        if (n > k) restM = Math.min(restM, bestD[k]);
        const restLowerBoundS =
          restM === Number.POSITIVE_INFINITY ? restM : g.minTurnout + travel.lowerBoundS(restM, g.maxSpeed);
        const cols: Column[] = [];
        const dists: number[] = [];
        for (let q = 0; q < Math.min(n, k); q++) {
          cols.push(g.cols[bestI[q]]);
          dists.push(bestD[q]);
        }
        return { cols, dists, restLowerBoundS };
      }
      radiusM *= 2;
    }
  }

  /** Every member within radiusM (and possibly more), and the ETA bound of the rest. */
  within(
    cap: Capability,
    pool: Pool,
    at: [number, number],
    radiusM: number,
    travel: TravelTimes,
    filter?: (c: Column) => boolean,
  ): { cols: Column[]; restLowerBoundS: number } {
    const g = this.groups[pool].get(cap);
    if (!g) return { cols: [], restLowerBoundS: Number.POSITIVE_INFINITY };
    const { ids, all } = this.box(g, at, radiusM);
    const cols: Column[] = [];
    for (const i of ids) if (!filter || filter(g.cols[i])) cols.push(g.cols[i]);
    cols.sort((x, y) => x.index - y.index);
    const restLowerBoundS = all
      ? Number.POSITIVE_INFINITY
      : g.minTurnout + travel.lowerBoundS(radiusM, g.maxSpeed);
    return { cols, restLowerBoundS };
  }
}
