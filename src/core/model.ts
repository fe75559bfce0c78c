// The assignment model shared by every policy: open slots (rows), eligible units
// (columns) and their costs under the one objective. The spatial index of units per
// capability is in capability-index.ts.

import type { CatalogIndex } from './catalog.ts';
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
  /** Units this slot must not get (the incident's excludedUnitIds), or undefined. */
  excluded: ReadonlySet<string> | undefined;
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
  // Each type's capabilities in sorted order, worked out once per type.
  const capsOf = new Map<IncidentType, string[]>();
  for (const inc of incidents) {
    if (!ACTIVE_INCIDENT.has(inc.status)) continue;
    const type = catalog.get(inc.type);
    if (!type) continue; // validated upstream; an unknown type cannot reach here
    const priority = inc.priority ?? type.priority;
    const weight = PRIORITY_WEIGHT[priority];
    const byCap = committed.get(inc.id);
    const g = type.allOrNothing ? group++ : -1;
    const excluded = inc.excludedUnitIds?.length ? new Set(inc.excludedUnitIds) : undefined;
    let caps = capsOf.get(type);
    if (!caps) {
      caps = Object.keys(type.requires).sort();
      capsOf.set(type, caps);
    }
    for (const cap of caps) {
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
          excluded,
        });
      }
    }
  }
  rows.sort(compareIncidents);
  for (let i = 0; i < rows.length; i++) rows[i].index = i;
  return rows;
}

/** Units by id order: free units first, then pre-emptible ones (only when pre-emption is on). */
export function buildColumns(
  units: Unit[],
  incidents: Incident[],
  catalog: CatalogIndex,
  preemption: boolean,
): Column[] {
  // Incidents by id, for pre-emptible units only (built on first need).
  let byId: Map<string, Incident> | undefined;
  const cols: Column[] = [];
  for (const unit of byUnitId(units)) {
    const at = unit.position ?? unit.home;
    if (unit.status === 'available') {
      cols.push({ index: 0, unit, at, turnoutS: unit.turnoutS });
    } else if (preemption && (unit.status === 'offered' || unit.status === 'en_route') && unit.incidentId) {
      byId ??= new Map(incidents.map((i) => [i.id, i]));
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
  for (let i = 0; i < cols.length; i++) cols[i].index = i;
  return cols;
}

/** Units in id order; a list already in that order (the usual case) is used as is. */
function byUnitId(units: Unit[]): Unit[] {
  for (let i = 1; i < units.length; i++) {
    if (!(units[i - 1].id < units[i].id))
      return [...units].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
  return units;
}

/**
 * Whether column c may serve row r: capability, not excluded from the incident, and
 * pre-emption only for higher-priority immediate work.
 */
export function eligible(r: Row, c: Column): boolean {
  if (!c.unit.capabilities.includes(r.capability)) return false;
  if (r.excluded?.has(c.unit.id)) return false;
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
