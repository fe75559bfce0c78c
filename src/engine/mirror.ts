// The engine's in-memory mirror of what the core decides on: every unit, the open incidents
// and the active assignments. Rebuilt from store.loadSnapshot() on start and updated on every
// write (a write that fails re-reads the records it touched), it is what each decision's
// DispatchState is built from — no store round trip on the decision path.

import type { DispatchState, Incident, LonLat, Unit, UnitStatus } from '../core/types.ts';
import type { OnSceneFacts } from '../kpi/review-rules.ts';
import {
  ACTIVE_ASSIGNMENT_STATUSES,
  type AssignmentRecord,
  FINAL_INCIDENT_STATUSES,
  type IncidentRecord,
  isActiveAssignmentStatus,
  type Snapshot,
  type Store,
  type UnitRecord,
} from '../store/store.ts';

/** Unit status implied by its active assignment (an accepted offer still counts as `offered`). */
export function unitStatusFor(a: AssignmentRecord): UnitStatus {
  if (a.status === 'en_route') return 'en_route';
  if (a.status === 'on_scene') return 'on_scene';
  return 'offered';
}

const COMMITTED: ReadonlySet<UnitStatus> = new Set(['offered', 'en_route', 'on_scene']);

export class Mirror {
  private readonly unitMap = new Map<string, UnitRecord>();
  /**
   * The records in id order (code units), with each id's place: re-sorted only when a unit
   * comes or goes. The core takes units in id order; handed them in registration order, it
   * sorted them (and checked their ids with a set) on every decision.
   */
  private sorted: { recs: UnitRecord[]; slot: Map<string, number> } | undefined;
  private readonly incidentMap = new Map<string, IncidentRecord>();
  /**
   * The incidents still worked on (not resolved), in the same order as `incidents`. Resolved
   * incidents wait for a dispatcher to close them, hours on a busy day: decisions, duplicate
   * merging and the unserved reasons run per report or per round, and went through all of them.
   */
  private readonly openMap = new Map<string, IncidentRecord>();
  /** Active assignments by id. */
  readonly assignments = new Map<string, AssignmentRecord>();
  private readonly byUnit = new Map<string, string>();
  /** Active assignment ids by incident (activeFor runs per open incident on every decision). */
  private readonly byIncident = new Map<string, Set<string>>();
  /**
   * Why an incident still has open slots, from the last decision: the words, and the key of
   * what consoles were last told (capability:code pairs; the words churn every decision).
   */
  readonly queuedReasons = new Map<string, { text: string; key: string }>();
  /**
   * Where each active assignment's trip started (the offer, then the en-route report), for the
   * on-scene event (OnSceneFacts). Keyed by the record, so a record re-read from the store
   * (a restart, a rollback) has none, and its on-scene event is reviewed from the log instead.
   */
  readonly tripStarts = new WeakMap<AssignmentRecord, OnSceneFacts['trip']>();
  /**
   * The core's view of each unit, kept while its record and active assignment stay the same
   * objects (records are replaced, never changed in place), also when units come or go and
   * `coreList` is built again. Frozen, so the core checks each one once.
   */
  private readonly coreUnits = new Map<
    string,
    { rec: UnitRecord; a: AssignmentRecord | undefined; unit: Unit }
  >();
  /**
   * The core's views in `sorted` order as of the last decision (undefined: to build), and the
   * units whose record or active assignment changed since: only those are looked at again.
   * A round used to look up every unit's assignment and view, a thousand of them, when a
   * batch changes a few.
   */
  private coreList: Unit[] | undefined;
  private readonly staleUnits = new Set<string>();

  /**
   * Each unit's last reported position. Positions are persisted only now and then
   * (locationPersistS), and a unit reports one whenever it likes, even while a write of its
   * record is in flight: a record put here (that write's result, a re-read after a rollback)
   * may carry an older one, and the core would then see the unit where it was.
   */
  private readonly fixes = new Map<string, LonLat>();

  /** Every unit, by id. Changed through putUnit, placeUnit and removeUnit only. */
  get units(): ReadonlyMap<string, UnitRecord> {
    return this.unitMap;
  }

  /** Incidents not closed or cancelled (resolved ones stay until closed). Changed through putIncident. */
  get incidents(): ReadonlyMap<string, IncidentRecord> {
    return this.incidentMap;
  }

  /** The incidents of `incidents` not resolved, in the same order. */
  get open(): ReadonlyMap<string, IncidentRecord> {
    return this.openMap;
  }

  load(s: Snapshot): void {
    this.unitMap.clear();
    this.fixes.clear();
    this.sorted = undefined;
    this.incidentMap.clear();
    this.openMap.clear();
    this.assignments.clear();
    this.byUnit.clear();
    this.byIncident.clear();
    this.queuedReasons.clear();
    this.coreUnits.clear();
    for (const u of s.units) this.unitMap.set(u.id, u);
    for (const i of s.openIncidents) this.putIncident(i);
    for (const a of s.activeAssignments) this.putAssignment(a);
  }

  /** A unit's reported position: it overrides the position of any record put afterwards. */
  placeUnit(id: string, position: LonLat): void {
    const u = this.unitMap.get(id);
    if (!u) return;
    this.fixes.set(id, position);
    this.putUnit(u);
  }

  putUnit(rec: UnitRecord): void {
    const fix = this.fixes.get(rec.id);
    const u = fix === undefined || fix === rec.position ? rec : { ...rec, position: fix };
    if (this.sorted) {
      const i = this.sorted.slot.get(u.id);
      if (i === undefined) this.sorted = undefined;
      else this.sorted.recs[i] = u;
    }
    this.unitMap.set(u.id, u);
    this.staleUnits.add(u.id);
  }

  removeUnit(id: string): void {
    if (this.unitMap.delete(id)) this.sorted = undefined;
    this.coreUnits.delete(id);
    this.fixes.delete(id);
  }

  putIncident(i: IncidentRecord): void {
    if (FINAL_INCIDENT_STATUSES.includes(i.status)) {
      this.dropIncident(i.id);
      this.queuedReasons.delete(i.id);
      return;
    }
    const known = this.incidentMap.has(i.id);
    this.incidentMap.set(i.id, i);
    if (i.status === 'resolved') this.openMap.delete(i.id);
    else if (!known || this.openMap.has(i.id)) this.openMap.set(i.id, i);
    else {
      // Back from resolved (no transition does that; a re-read might): keep the order.
      this.openMap.clear();
      for (const x of this.incidentMap.values()) if (x.status !== 'resolved') this.openMap.set(x.id, x);
    }
  }

  private dropIncident(id: string): void {
    this.incidentMap.delete(id);
    this.openMap.delete(id);
  }

  putAssignment(a: AssignmentRecord): void {
    if (isActiveAssignmentStatus(a.status)) {
      const prev = this.byUnit.get(a.unitId);
      if (prev !== undefined && prev !== a.id) this.dropAssignment(prev);
      this.assignments.set(a.id, a);
      this.byUnit.set(a.unitId, a.id);
      this.staleUnits.add(a.unitId);
      let ids = this.byIncident.get(a.incidentId);
      if (!ids) {
        ids = new Set();
        this.byIncident.set(a.incidentId, ids);
      }
      ids.add(a.id);
    } else {
      this.dropAssignment(a.id);
      if (this.byUnit.get(a.unitId) === a.id) this.byUnit.delete(a.unitId);
      this.staleUnits.add(a.unitId);
    }
  }

  private dropAssignment(id: string): void {
    const a = this.assignments.get(id);
    if (!a) return;
    this.assignments.delete(id);
    this.staleUnits.add(a.unitId);
    const ids = this.byIncident.get(a.incidentId);
    ids?.delete(id);
    if (ids?.size === 0) this.byIncident.delete(a.incidentId);
  }

  activeOfUnit(unitId: string): AssignmentRecord | undefined {
    const id = this.byUnit.get(unitId);
    return id === undefined ? undefined : this.assignments.get(id);
  }

  activeFor(incidentId: string): AssignmentRecord[] {
    const ids = this.byIncident.get(incidentId);
    if (!ids) return [];
    const out: AssignmentRecord[] = [];
    for (const id of ids) {
      const a = this.assignments.get(id);
      if (a) out.push(a);
    }
    return out.sort((x, y) => x.offeredAt - y.offeredAt || (x.id < y.id ? -1 : 1));
  }

  assignedUnitIds(incidentId: string): string[] {
    return this.activeFor(incidentId).map((a) => a.unitId);
  }

  /** The unit's status as the engine treats it: from its active assignment when it has one. */
  unitStatus(u: UnitRecord): UnitStatus {
    const a = this.activeOfUnit(u.id);
    if (a) return unitStatusFor(a);
    return COMMITTED.has(u.status) ? 'available' : u.status;
  }

  /**
   * The core's input: every unit (hidden ones left out when free) and the dispatchable open
   * incidents (minus `skip`). Commitments come from the active assignments.
   */
  dispatchState(
    opts: {
      /** Incident → units that must not be sent there (declined, missed acknowledgement). */
      excluded?: ReadonlyMap<string, ReadonlySet<string>>;
      /** Incidents of types the catalogue no longer knows are left out (the core would refuse them). */
      knownType?: (type: string) => boolean;
    } = {},
  ): DispatchState {
    if (!this.sorted) {
      const ids = [...this.unitMap.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      this.sorted = {
        recs: ids.map((id) => this.unitMap.get(id)!),
        slot: new Map(ids.map((id, i) => [id, i])),
      };
      this.coreList = undefined;
    }
    if (!this.coreList) {
      this.coreList = this.sorted.recs.map((u) => this.coreUnit(u));
    } else {
      for (const id of this.staleUnits) {
        const i = this.sorted.slot.get(id);
        if (i !== undefined) this.coreList[i] = this.coreUnit(this.sorted.recs[i]);
      }
    }
    this.staleUnits.clear();
    const units = this.coreList.slice();
    const incidents: Incident[] = [];
    for (const i of this.openMap.values()) {
      if (opts.knownType && !opts.knownType(i.type)) continue;
      const ci: Incident = {
        id: i.id,
        type: i.type,
        location: [i.location[0], i.location[1]],
        reportedAt: i.reportedAt,
        status: i.status,
        priority: i.priority,
        assignedUnitIds: this.assignedUnitIds(i.id),
      };
      if (i.cell !== undefined) ci.cell = i.cell;
      if (i.area !== undefined) ci.area = i.area;
      const ex = opts.excluded?.get(i.id);
      if (ex && ex.size > 0) ci.excludedUnitIds = [...ex].sort();
      incidents.push(ci);
    }
    return { units, incidents };
  }

  /**
   * One frozen capabilities list per distinct list: the core groups units by capability once
   * per run of units sharing a list (CapabilityIndex), not once per capability of each.
   */
  private sharedCaps(caps: readonly string[]): string[] {
    const key = JSON.stringify(caps);
    let shared = this.capLists.get(key);
    if (!shared) {
      shared = Object.freeze([...caps]) as string[];
      this.capLists.set(key, shared);
    }
    return shared;
  }

  private readonly capLists = new Map<string, string[]>();

  /** The core's view of a unit: kept while its record and active assignment are the same objects. */
  private coreUnit(u: UnitRecord): Unit {
    const a = this.activeOfUnit(u.id);
    const kept = this.coreUnits.get(u.id);
    if (kept && kept.rec === u && kept.a === a) return kept.unit;
    const status = this.unitStatus(u);
    const cu: Unit = {
      id: u.id,
      department: u.department,
      capabilities: this.sharedCaps(u.capabilities),
      home: [u.home[0], u.home[1]],
      speedKmh: u.speedKmh,
      turnoutS: u.turnoutS,
      status,
    };
    if (u.homeArea !== undefined) cu.homeArea = u.homeArea;
    if (u.position) cu.position = [u.position[0], u.position[1]];
    if (a) {
      cu.incidentId = a.incidentId;
      // The core checks a role against the unit's capabilities; an override may have used another tag.
      if (u.capabilities.includes(a.capability)) cu.role = a.capability;
      cu.since = a.status === 'en_route' ? (a.enRouteAt ?? a.offeredAt) : a.offeredAt;
    }
    Object.freeze(cu.home);
    if (cu.position) Object.freeze(cu.position);
    Object.freeze(cu);
    this.coreUnits.set(u.id, { rec: u, a, unit: cu });
    return cu;
  }

  /** Re-reads one unit and its active assignment (after a conflict showed the mirror was stale). */
  async reloadUnit(store: Store, unitId: string): Promise<void> {
    const u = await store.getUnit(unitId);
    if (u) this.putUnit(u);
    else this.removeUnit(unitId);
    const prev = this.activeOfUnit(unitId);
    if (prev) this.putAssignment({ ...prev, status: 'cancelled' });
    const active = await store.listAssignments({ unitId, status: [...ACTIVE_ASSIGNMENT_STATUSES] });
    for (const a of active) this.putAssignment(a);
  }

  /** Re-reads one incident and its assignments. */
  async reloadIncident(store: Store, incidentId: string): Promise<void> {
    const d = await store.getIncident(incidentId);
    for (const a of this.activeFor(incidentId)) this.putAssignment({ ...a, status: 'cancelled' });
    if (!d) {
      this.dropIncident(incidentId);
      return;
    }
    const { timeline: _t, assignments, ...rec } = d;
    this.putIncident(rec);
    for (const a of assignments) if (isActiveAssignmentStatus(a.status)) this.putAssignment(a);
  }
}
