// The replay viewer's model: from a scenario (units, areas) and its replay log
// (events.ndjson, src/sim/events.ts) it answers "where is every unit, in which status, and
// which incidents are visible, at virtual time t". Pure (no DOM), so it is unit-testable.
//
// Units move only where the log says so: an `en_route` record gives the start point, the
// turnout and the arrival time (t + etaS), so the unit waits at `from` for turnoutS and then
// travels in a straight line to the incident; `on_scene` snaps it there; a `preempted`,
// `released` or `returned` record gives its position. After `cleared` or `released` the
// unit drifts towards its next known position (home on `returned`, or the `from` of its next
// dispatch). Later records overrule projections (an arrival that a pre-emption cut short).

import type { LonLat } from '../../src/core/types.ts';
import type { Scenario } from '../../src/scenario/types.ts';
import type { SimEvent } from '../../src/sim/events.ts';

export type ReplayUnitStatus = 'available' | 'offered' | 'en_route' | 'on_scene';
export type ReplayIncidentStatus =
  | 'queued'
  | 'assigned'
  | 'en_route'
  | 'on_scene'
  | 'resolved'
  | 'cancelled'
  | 'unserved';

export interface UnitFrame {
  id: string;
  department: string;
  status: ReplayUnitStatus;
  position: LonLat;
  incidentId?: string;
}

export interface IncidentFrame {
  id: string;
  type: string;
  priority: number;
  location: LonLat;
  status: ReplayIncidentStatus;
  reportedT: number;
  /** Time it was resolved / cancelled / declared unserved. */
  endT?: number;
}

interface Keyframe {
  t: number;
  pos: LonLat;
  /** Moving from here towards the next keyframe (else standing still until it). */
  move: boolean;
}

interface Change<S> {
  t: number;
  status: S;
  incidentId?: string;
}

interface UnitTrack {
  id: string;
  department: string;
  home: LonLat;
  keys: Keyframe[];
  changes: Change<ReplayUnitStatus>[];
}

interface IncidentTrack {
  id: string;
  type: string;
  priority: number;
  location: LonLat;
  reportedT: number;
  endT?: number;
  changes: Change<ReplayIncidentStatus>[];
  active: number;
}

/** Finished incidents stay on the map (faded) this long, virtual seconds. */
export const LINGER_S = 300;

const FINAL = new Set<ReplayIncidentStatus>(['resolved', 'cancelled', 'unserved']);

/** Parses NDJSON text; throws with the line number of the first bad line. */
export function parseEventLog(text: string): SimEvent[] {
  const out: SimEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new Error(`line ${i + 1}: not JSON`);
    }
    const r = rec as { t?: unknown; kind?: unknown };
    if (typeof rec !== 'object' || rec === null || typeof r.t !== 'number' || typeof r.kind !== 'string') {
      throw new Error(`line ${i + 1}: expected an object with a numeric "t" and a "kind"`);
    }
    out.push(rec as SimEvent);
  }
  // The log is in time order; keep it so even if a tool reordered lines.
  return out.every((e, i) => i === 0 || out[i - 1].t <= e.t) ? out : [...out].sort((a, b) => a.t - b.t);
}

/** The parts of a scenario the viewer needs; throws naming the first missing part. */
export function checkScenario(
  json: unknown,
): Pick<Scenario, 'name' | 'start' | 'durationS' | 'areas' | 'units'> {
  const s = json as Partial<Scenario> | null;
  if (typeof s !== 'object' || s === null) throw new Error('the scenario is not a JSON object');
  if (!Array.isArray(s.units)) throw new Error('the scenario has no "units" list');
  if (!s.areas || !Array.isArray(s.areas.features))
    throw new Error('the scenario has no "areas" FeatureCollection');
  return {
    name: typeof s.name === 'string' ? s.name : 'scenario',
    start: typeof s.start === 'string' ? s.start : new Date(0).toISOString(),
    durationS: typeof s.durationS === 'number' ? s.durationS : 0,
    areas: s.areas,
    units: s.units,
  };
}

function lastAtOrBefore<T extends { t: number }>(list: readonly T[], t: number): number {
  let lo = 0;
  let hi = list.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].t <= t) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

const lerp = (a: LonLat, b: LonLat, f: number): LonLat => [
  a[0] + (b[0] - a[0]) * f,
  a[1] + (b[1] - a[1]) * f,
];

export class ReplayModel {
  readonly events: SimEvent[];
  readonly endT: number;
  private readonly units = new Map<string, UnitTrack>();
  private readonly incidents = new Map<string, IncidentTrack>();
  /** Events without `decision` records (for the feed). */
  private readonly feed: SimEvent[];

  constructor(scenario: Pick<Scenario, 'units' | 'durationS'>, events: SimEvent[]) {
    this.events = events;
    for (const u of scenario.units) {
      this.units.set(u.id, {
        id: u.id,
        department: u.department,
        home: u.home,
        keys: [{ t: Number.NEGATIVE_INFINITY, pos: u.home, move: false }],
        changes: [{ t: Number.NEGATIVE_INFINITY, status: 'available' }],
      });
    }
    for (const e of events) this.apply(e);
    this.feed = events.filter((e) => e.kind !== 'decision');
    const lastT = events.length > 0 ? events[events.length - 1].t : 0;
    this.endT = Math.max(lastT, scenario.durationS ?? 0);
  }

  get unitCount(): number {
    return this.units.size;
  }

  get incidentCount(): number {
    return this.incidents.size;
  }

  private unit(id: string, pos?: LonLat): UnitTrack {
    let u = this.units.get(id);
    if (!u) {
      // A unit the scenario does not list: it appears where the log first places it.
      const home = pos ?? [0, 0];
      u = {
        id,
        department: '',
        home,
        keys: [{ t: Number.NEGATIVE_INFINITY, pos: home, move: false }],
        changes: [{ t: Number.NEGATIVE_INFINITY, status: 'available' }],
      };
      this.units.set(id, u);
    }
    return u;
  }

  /** Sets a known position at t, dropping projections after t. */
  private key(u: UnitTrack, t: number, pos: LonLat, move: boolean): void {
    while (u.keys.length > 1 && u.keys[u.keys.length - 1].t > t) u.keys.pop();
    u.keys.push({ t, pos, move });
  }

  private unitStatus(u: UnitTrack, t: number, status: ReplayUnitStatus, incidentId?: string): void {
    u.changes.push({ t, status, ...(incidentId ? { incidentId } : {}) });
  }

  private incStatus(inc: IncidentTrack, t: number, status: ReplayIncidentStatus): void {
    const cur = inc.changes[inc.changes.length - 1]?.status;
    if (cur === status) return;
    if (cur && FINAL.has(cur)) return;
    inc.changes.push({ t, status });
    if (FINAL.has(status)) inc.endT = t;
  }

  private incStatusNow(inc: IncidentTrack): ReplayIncidentStatus {
    return inc.changes[inc.changes.length - 1].status;
  }

  /** A unit left the incident before arriving: back to the queue if nobody else is on it. */
  private lostUnit(incidentId: string, t: number): void {
    const inc = this.incidents.get(incidentId);
    if (!inc) return;
    inc.active = Math.max(0, inc.active - 1);
    const s = this.incStatusNow(inc);
    if (inc.active === 0 && (s === 'assigned' || s === 'en_route')) this.incStatus(inc, t, 'queued');
  }

  private apply(e: SimEvent): void {
    switch (e.kind) {
      case 'reported': {
        this.incidents.set(e.incidentId, {
          id: e.incidentId,
          type: e.type,
          priority: e.priority,
          location: e.location,
          reportedT: e.t,
          changes: [{ t: e.t, status: 'queued' }],
          active: 0,
        });
        return;
      }
      case 'assigned': {
        const u = this.unit(e.unitId);
        this.unitStatus(u, e.t, 'offered', e.incidentId);
        const inc = this.incidents.get(e.incidentId);
        if (inc) {
          inc.active++;
          if (this.incStatusNow(inc) === 'queued') this.incStatus(inc, e.t, 'assigned');
        }
        return;
      }
      case 'declined':
      case 'ack_timeout': {
        this.unitStatus(this.unit(e.unitId), e.t, 'available');
        this.lostUnit(e.incidentId, e.t);
        return;
      }
      case 'preempted': {
        const u = this.unit(e.unitId, e.position);
        this.key(u, e.t, e.position, false);
        this.unitStatus(u, e.t, 'available');
        this.lostUnit(e.incidentId, e.t);
        return;
      }
      case 'en_route': {
        const u = this.unit(e.unitId, e.from);
        const inc = this.incidents.get(e.incidentId);
        this.key(u, e.t, e.from, false);
        if (inc) {
          const depart = e.t + Math.max(0, e.turnoutS);
          const arrive = Math.max(depart, e.t + e.etaS);
          if (arrive > depart) u.keys.push({ t: depart, pos: e.from, move: true });
          u.keys.push({ t: arrive, pos: inc.location, move: false });
          const s = this.incStatusNow(inc);
          if (s === 'queued' || s === 'assigned') this.incStatus(inc, e.t, 'en_route');
        }
        this.unitStatus(u, e.t, 'en_route', e.incidentId);
        return;
      }
      case 'on_scene': {
        const u = this.unit(e.unitId);
        const inc = this.incidents.get(e.incidentId);
        if (inc) {
          this.key(u, e.t, inc.location, false);
          const s = this.incStatusNow(inc);
          if (s !== 'resolved' && s !== 'on_scene') this.incStatus(inc, e.t, 'on_scene');
        }
        this.unitStatus(u, e.t, 'on_scene', e.incidentId);
        return;
      }
      case 'cleared': {
        const u = this.unit(e.unitId);
        const inc = this.incidents.get(e.incidentId);
        if (inc) {
          this.key(u, e.t, inc.location, true);
          inc.active = Math.max(0, inc.active - 1);
        }
        this.unitStatus(u, e.t, 'available');
        return;
      }
      case 'released': {
        const u = this.unit(e.unitId, e.position);
        this.key(u, e.t, e.position, true);
        this.unitStatus(u, e.t, 'available');
        this.lostUnit(e.incidentId, e.t);
        return;
      }
      case 'returned': {
        const u = this.unit(e.unitId, e.position);
        this.key(u, e.t, e.position, false);
        return;
      }
      case 'resolved':
      case 'cancelled':
      case 'unserved': {
        const inc = this.incidents.get(e.incidentId);
        if (inc) this.incStatus(inc, e.t, e.kind);
        return;
      }
      default:
        return;
    }
  }

  private positionAt(u: UnitTrack, t: number): LonLat {
    const i = lastAtOrBefore(u.keys, t);
    const k = u.keys[Math.max(0, i)];
    const next = u.keys[i + 1];
    if (!k.move || !next || next.t <= k.t) return k.pos;
    return lerp(k.pos, next.pos, Math.min(1, Math.max(0, (t - k.t) / (next.t - k.t))));
  }

  unitsAt(t: number): UnitFrame[] {
    const out: UnitFrame[] = [];
    for (const u of this.units.values()) {
      const c = u.changes[Math.max(0, lastAtOrBefore(u.changes, t))];
      out.push({
        id: u.id,
        department: u.department,
        status: c.status,
        position: this.positionAt(u, t),
        ...(c.incidentId && c.status !== 'available' ? { incidentId: c.incidentId } : {}),
      });
    }
    return out;
  }

  /** Incidents reported by t, including those finished less than LINGER_S ago. */
  incidentsAt(t: number): IncidentFrame[] {
    const out: IncidentFrame[] = [];
    for (const inc of this.incidents.values()) {
      if (inc.reportedT > t) continue;
      const c = inc.changes[Math.max(0, lastAtOrBefore(inc.changes, t))];
      const endT = inc.endT !== undefined && inc.endT <= t ? inc.endT : undefined;
      if (endT !== undefined && t - endT > LINGER_S) continue;
      out.push({
        id: inc.id,
        type: inc.type,
        priority: inc.priority,
        location: inc.location,
        status: c.status,
        reportedT: inc.reportedT,
        ...(endT !== undefined ? { endT } : {}),
      });
    }
    return out;
  }

  /** The last `n` records at or before t (decisions left out), newest first. */
  recentEvents(t: number, n: number): SimEvent[] {
    const i = lastAtOrBefore(this.feed, t);
    return this.feed.slice(Math.max(0, i - n + 1), i + 1).reverse();
  }

  countsAt(t: number): {
    reported: number;
    open: number;
    queued: number;
    resolved: number;
    busyUnits: number;
  } {
    let reported = 0;
    let open = 0;
    let queued = 0;
    let resolved = 0;
    for (const inc of this.incidents.values()) {
      if (inc.reportedT > t) continue;
      reported++;
      const s = inc.changes[Math.max(0, lastAtOrBefore(inc.changes, t))].status;
      if (s === 'resolved') resolved++;
      else if (!FINAL.has(s)) {
        open++;
        if (s === 'queued') queued++;
      }
    }
    let busyUnits = 0;
    for (const u of this.units.values()) {
      if (u.changes[Math.max(0, lastAtOrBefore(u.changes, t))].status !== 'available') busyUnits++;
    }
    return { reported, open, queued, resolved, busyUnits };
  }
}
