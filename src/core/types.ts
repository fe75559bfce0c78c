// Domain types shared by the core, the simulator, the live engine and the clients.
// Coordinates are [lon, lat] (WGS84, GeoJSON order). Core times are seconds on a
// caller-supplied clock (scenario seconds in replays, epoch seconds live).

export type LonLat = [number, number];

export type Priority = 1 | 2 | 3 | 4;

/** Capability tag, e.g. `fire-engine`, `ambulance`, `police`, `chengguan`. */
export type Capability = string;

export type UnitStatus = 'available' | 'offered' | 'en_route' | 'on_scene' | 'off_duty' | 'out_of_service';

export interface Unit {
  id: string;
  department: string;
  capabilities: Capability[];
  /** Home position (station, post, office). */
  home: LonLat;
  /** Home sub-district id; filled by area placement when not given. */
  homeArea?: string;
  speedKmh: number;
  turnoutS: number;
  status: UnitStatus;
  /** Last known position; defaults to home. */
  position?: LonLat;
  /** Incident the unit is committed to (offered / en_route / on_scene). */
  incidentId?: string;
  /** The capability of the package the unit fills at that incident. */
  role?: Capability;
  /** Time the current commitment started (used to estimate progress of en-route units). */
  since?: number;
}

export interface IncidentType {
  type: string;
  priority: Priority;
  /** On the immediate-response list: answered at once, may pre-empt lower-priority work. */
  immediate: boolean;
  /** Arrival target in seconds from the report. */
  targetS: number;
  /** Capability package, e.g. {"fire-engine": 2, "traffic": 1}. */
  requires: Record<Capability, number>;
  /** Typical on-scene time in seconds. */
  onSceneS: number;
  /** When true, a partial package is worthless: all required units or none. */
  allOrNothing?: boolean;
  /** Human label (e.g. Chinese and English) for consoles and reports. */
  label?: string;
}

export type Catalog = IncidentType[];

export type IncidentStatus =
  | 'queued'
  | 'assigned'
  | 'en_route'
  | 'on_scene'
  | 'resolved'
  | 'closed'
  | 'cancelled';

export interface Incident {
  id: string;
  type: string;
  location: LonLat;
  /** Report time (clock seconds). */
  reportedAt: number;
  status: IncidentStatus;
  /** Grid cell and sub-district, filled by area placement. */
  cell?: string;
  area?: string;
  /** Overrides the catalogue's priority (a dispatcher may raise it). */
  priority?: Priority;
  /** Units currently committed to this incident (offered, en route or on scene). */
  assignedUnitIds?: string[];
  /**
   * Units that must not be sent to this incident (they declined it or let its offer lapse, and
   * the caller's exclusion window is still open). Never a candidate for it, not even by pre-emption.
   */
  excludedUnitIds?: string[];
}

/** Everything the optimiser needs to decide; the caller owns it and applies decisions. */
export interface DispatchState {
  units: Unit[];
  incidents: Incident[];
}

export interface AssignmentAlternative {
  unitId: string;
  etaS: number;
  /** Why it was not chosen, in words a dispatcher reads. */
  reason: string;
}

export interface Explanation {
  /** One-line summary, e.g. "FE-03 nearest capable fire-engine, ETA 4m12s (target 8m)". */
  summary: string;
  etaS: number;
  targetS: number;
  lateS: number;
  alternatives: AssignmentAlternative[];
}

export interface AssignmentDecision {
  incidentId: string;
  unitId: string;
  capability: Capability;
  etaS: number;
  /** Set when the unit was taken from a lower-priority incident. */
  preemptedFrom?: string;
  crossesJurisdiction: boolean;
  explanation: Explanation;
}

export interface PreemptionDecision {
  unitId: string;
  fromIncidentId: string;
  toIncidentId: string;
}

/** Why a slot waits, as a stable code (the reason's words carry the details). */
export type UnservedCode = 'no_capable_unit' | 'none_in_reach' | 'reserved' | 'joint_incomplete';

export interface UnservedSlot {
  incidentId: string;
  capability: Capability;
  code: UnservedCode;
  /** Why nobody was sent: no capable unit at all, none free, all reserved for higher priority. */
  reason: string;
}

/** The objective as a lexicographic tuple (see objective.ts). */
export interface ObjectiveValue {
  /** Priority-weighted demand left unserved (lower is better). */
  unservedWeight: number;
  /** Priority-weighted lateness against targets, seconds. */
  weightedLateS: number;
  /** Priority-weighted travel time (ETA), seconds. */
  weightedEtaS: number;
}

export interface SolverStats {
  policy: string;
  rows: number;
  candidates: number;
  /** Rounds in which the certificate failed and candidate lists were widened. */
  widenRounds: number;
  dense: boolean;
  /** Joint-force components solved as integer programs. */
  ipComponents: number;
  /** True when every stage finished within the deadline (else the greedy answer stands). */
  exact: boolean;
  /** Operation count, a deterministic stand-in for time (wall time is measured outside the core). */
  work: number;
}

export interface Decision {
  now: number;
  assignments: AssignmentDecision[];
  preemptions: PreemptionDecision[];
  unserved: UnservedSlot[];
  objective: ObjectiveValue;
  stats: SolverStats;
}
