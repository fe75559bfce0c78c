// Checks of untrusted units, incidents and dispatch states. Whatever the input, the only
// thing thrown is a CoreError naming the first wrong field; what comes back is a fresh,
// normalised copy holding only the known fields, so callers may keep or mutate it freely.

import type { CatalogIndex } from './catalog.ts';
import { CoreError } from './errors.ts';
import { isLonLat } from './geo.ts';
import type { DispatchState, Incident, IncidentStatus, Priority, Unit, UnitStatus } from './types.ts';

export const UNIT_STATUSES: readonly UnitStatus[] = [
  'available',
  'offered',
  'en_route',
  'on_scene',
  'off_duty',
  'out_of_service',
];

export const INCIDENT_STATUSES: readonly IncidentStatus[] = [
  'queued',
  'assigned',
  'en_route',
  'on_scene',
  'resolved',
  'closed',
  'cancelled',
];

/** Statuses in which a unit is bound to an incident and so must name it. */
const COMMITTED: ReadonlySet<UnitStatus> = new Set(['offered', 'en_route', 'on_scene']);

/** Above any road vehicle or e-bike; a typo such as 4000 km/h would wreck every ETA. */
export const MAX_SPEED_KMH = 300;

export function validateUnits(units: unknown, path = 'units'): Unit[] {
  const list = requireArray(units, path);
  const again = lastClean && lastClean.length === list.length ? recheck(list, lastClean) : undefined;
  if (again) return again;
  const out = new Array<Unit>(list.length);
  const ids = new IdCheck('unit', path);
  let frozen = true;
  for (let i = 0; i < list.length; i++) {
    const raw = list[i];
    // A clean unit is used as is, and its path is never built (thousands per decision).
    const unit =
      CLEAN_FROZEN.has(raw as object) || (isRecord(raw) && isCleanUnit(raw) && remember(raw))
        ? (raw as unknown as Unit)
        : validateUnit(raw, `${path}[${i}]`);
    ids.add(unit.id, i, out);
    out[i] = unit;
    if (frozen && !CLEAN_FROZEN.has(unit)) frozen = false;
  }
  lastClean = frozen && ids.ascending ? out.slice() : undefined;
  return out;
}

/**
 * The last list checked whose units were all frozen and clean, with ids strictly ascending
 * (the live engine's: its mirror keeps each unit's frozen view until the unit changes). A
 * decision checked a thousand units every round when a batch changes a few: a list of the
 * same length is now compared with it position by position, and only the units that are not
 * the same objects are checked (recheck). A memo of a pure check: no result changes.
 */
let lastClean: readonly Unit[] | undefined;

/**
 * `list` checked against `prev` (see lastClean): the units, or undefined when the full check
 * must run (a changed unit not frozen and clean, ids out of order, too many changes).
 */
function recheck(list: readonly unknown[], prev: readonly Unit[]): Unit[] | undefined {
  const n = list.length;
  const out = new Array<Unit>(n);
  const changed: number[] = [];
  for (let i = 0; i < n; i++) {
    const raw = list[i];
    if (raw !== prev[i]) {
      if (changed.length * 4 > n) return undefined;
      // Wrong, or clean but not frozen: the full check names the field, or copies the unit.
      const frozenClean =
        CLEAN_FROZEN.has(raw as object) ||
        (isRecord(raw) && isCleanUnit(raw) && remember(raw) && CLEAN_FROZEN.has(raw));
      if (!frozenClean) return undefined;
      changed.push(i);
    }
    out[i] = raw as Unit;
  }
  // Every unchanged unit keeps its (frozen) id between its old neighbours', so the order holds
  // wherever a changed unit's id sits between its new ones.
  for (const i of changed) {
    if (i > 0 && !(out[i - 1].id < out[i].id)) return undefined;
    if (i + 1 < n && !(out[i].id < out[i + 1].id)) return undefined;
  }
  lastClean = out.slice();
  return out;
}

/**
 * Units found clean that cannot change any more (frozen, with their arrays): a caller that
 * hands the same objects to every decision (the live engine's mirror) has them checked once.
 * A memo of a pure check on immutable values: it changes no result.
 */
const CLEAN_FROZEN = new WeakSet<object>();

function remember(o: Record<string, unknown>): true {
  if (
    Object.isFrozen(o) &&
    Object.isFrozen(o.capabilities) &&
    Object.isFrozen(o.home) &&
    (o.position === undefined || Object.isFrozen(o.position))
  ) {
    CLEAN_FROZEN.add(o);
  }
  return true;
}

/**
 * Duplicate ids in input order. Lists often come sorted by id: while they do, one comparison
 * with the previous id proves the new one unseen, and a set of the ids seen is built only
 * once the order breaks.
 */
class IdCheck {
  private last: string | undefined;
  private seen: Set<string> | undefined;

  constructor(
    private readonly kind: string,
    private readonly path: string,
  ) {}

  /** Every id so far came after the one before (no set was needed). */
  get ascending(): boolean {
    return this.seen === undefined;
  }

  /** Throws DUPLICATE_ID when id is among earlier[0 .. i-1], the ids added before. */
  add(id: string, i: number, earlier: readonly { id: string }[]): void {
    if (this.seen === undefined) {
      if (this.last === undefined || this.last < id) {
        this.last = id;
        return;
      }
      this.seen = new Set();
      for (let k = 0; k < i; k++) this.seen.add(earlier[k].id);
    }
    if (this.seen.has(id)) {
      throw new CoreError('DUPLICATE_ID', `${this.path}[${i}].id`, `duplicate ${this.kind} id "${id}"`);
    }
    this.seen.add(id);
  }
}

/** Non-blank. Checked for every unit's strings on every decision: trim() allocates, so a first
 * character that is printable ASCII answers at once. */
const isText = (x: unknown): x is string => {
  if (typeof x !== 'string' || x.length === 0) return false;
  const c = x.charCodeAt(0);
  return (c > 32 && c < 127) || x.trim() !== '';
};
const isFiniteNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * True when a unit is already in normal form, so it can be used as is: the optimiser runs on
 * thousands of units per decision and building error paths for each field would dominate.
 * Anything unusual takes the detailed path, which normalises or names the offending field.
 */
function isCleanUnit(o: Record<string, unknown>): boolean {
  const caps = o.capabilities;
  if (!isText(o.id) || !isText(o.department) || !Array.isArray(caps) || caps.length === 0) return false;
  for (let i = 0; i < caps.length; i++) {
    if (!isText(caps[i])) return false;
    for (let j = 0; j < i; j++) if (caps[j] === caps[i]) return false;
  }
  const speed = o.speedKmh;
  if (!isLonLat(o.home) || !isFiniteNum(speed) || !(speed > 0 && speed <= MAX_SPEED_KMH)) return false;
  if (!isFiniteNum(o.turnoutS) || o.turnoutS < 0) return false;
  if (typeof o.status !== 'string' || !(UNIT_STATUSES as readonly string[]).includes(o.status)) return false;
  if (o.homeArea !== undefined && !isText(o.homeArea)) return false;
  if (o.position !== undefined && !isLonLat(o.position)) return false;
  if (o.incidentId !== undefined && !isText(o.incidentId)) return false;
  if (o.role !== undefined && !(isText(o.role) && caps.includes(o.role))) return false;
  if (o.since !== undefined && !isFiniteNum(o.since)) return false;
  return !(COMMITTED.has(o.status as UnitStatus) && o.incidentId === undefined);
}

function validateUnit(raw: unknown, path: string): Unit {
  const o = requireRecord(raw, path);
  const id = requireString(o.id, `${path}.id`);
  const department = requireString(o.department, `${path}.department`);
  const capabilities = requireStringList(o.capabilities, `${path}.capabilities`);
  const home = requireLonLat(o.home, `${path}.home`);
  const speedKmh = requireNumber(o.speedKmh, `${path}.speedKmh`);
  if (!(speedKmh > 0 && speedKmh <= MAX_SPEED_KMH)) {
    throw invalid(`${path}.speedKmh`, `must be > 0 and ≤ ${MAX_SPEED_KMH} km/h, got ${speedKmh}`);
  }
  const turnoutS = requireNumber(o.turnoutS, `${path}.turnoutS`);
  if (turnoutS < 0) throw invalid(`${path}.turnoutS`, `must be ≥ 0, got ${turnoutS}`);
  // Scenario and registration files carry no status: a unit loaded from them starts available.
  const status =
    o.status === undefined ? 'available' : requireOneOf(o.status, UNIT_STATUSES, `${path}.status`);

  const unit: Unit = { id, department, capabilities, home, speedKmh, turnoutS, status };
  if (o.homeArea !== undefined) unit.homeArea = requireString(o.homeArea, `${path}.homeArea`);
  if (o.position !== undefined) unit.position = requireLonLat(o.position, `${path}.position`);
  if (o.incidentId !== undefined) unit.incidentId = requireString(o.incidentId, `${path}.incidentId`);
  if (o.role !== undefined) {
    unit.role = requireString(o.role, `${path}.role`);
    if (!capabilities.includes(unit.role)) {
      throw invalid(`${path}.role`, `"${unit.role}" is not one of its capabilities`);
    }
  }
  if (o.since !== undefined) unit.since = requireNumber(o.since, `${path}.since`);
  if (COMMITTED.has(status) && unit.incidentId === undefined) {
    throw invalid(`${path}.incidentId`, `required when status is ${status}`);
  }
  return unit;
}

export function validateIncidents(incidents: unknown, catalog: CatalogIndex, path = 'incidents'): Incident[] {
  const list = requireArray(incidents, path);
  const out = new Array<Incident>(list.length);
  const ids = new IdCheck('incident', path);
  for (let i = 0; i < list.length; i++) {
    const raw = list[i];
    const incident =
      isRecord(raw) && isCleanIncident(raw, catalog)
        ? (raw as unknown as Incident)
        : validateIncident(raw, catalog, `${path}[${i}]`);
    ids.add(incident.id, i, out);
    out[i] = incident;
  }
  return out;
}

function isCleanIncident(o: Record<string, unknown>, catalog: CatalogIndex): boolean {
  if (!isText(o.id) || !isText(o.type) || !catalog.get(o.type) || !isLonLat(o.location)) return false;
  if (!isFiniteNum(o.reportedAt)) return false;
  if (typeof o.status !== 'string' || !(INCIDENT_STATUSES as readonly string[]).includes(o.status))
    return false;
  if (o.cell !== undefined && !isText(o.cell)) return false;
  if (o.area !== undefined && !isText(o.area)) return false;
  if (
    o.priority !== undefined &&
    o.priority !== 1 &&
    o.priority !== 2 &&
    o.priority !== 3 &&
    o.priority !== 4
  ) {
    return false;
  }
  return isCleanIdList(o.assignedUnitIds) && isCleanIdList(o.excludedUnitIds);
}

/** Absent, or an array of distinct non-empty strings (short lists: the quadratic check is cheap). */
function isCleanIdList(ids: unknown): boolean {
  if (ids === undefined) return true;
  if (!Array.isArray(ids)) return false;
  for (let i = 0; i < ids.length; i++) {
    if (!isText(ids[i])) return false;
    for (let j = 0; j < i; j++) if (ids[j] === ids[i]) return false;
  }
  return true;
}

function validateIncident(raw: unknown, catalog: CatalogIndex, path: string): Incident {
  const o = requireRecord(raw, path);
  const id = requireString(o.id, `${path}.id`);
  const type = requireString(o.type, `${path}.type`);
  if (!catalog.get(type)) {
    throw new CoreError(
      'UNKNOWN_INCIDENT_TYPE',
      `${path}.type`,
      `incident type "${type}" is not in the catalogue`,
    );
  }
  const location = requireLonLat(o.location, `${path}.location`);
  const reportedAt = requireNumber(o.reportedAt, `${path}.reportedAt`);
  // A freshly reported incident has no status yet: it waits in the queue.
  const status =
    o.status === undefined ? 'queued' : requireOneOf(o.status, INCIDENT_STATUSES, `${path}.status`);

  const incident: Incident = { id, type, location, reportedAt, status };
  if (o.cell !== undefined) incident.cell = requireString(o.cell, `${path}.cell`);
  if (o.area !== undefined) incident.area = requireString(o.area, `${path}.area`);
  if (o.priority !== undefined) incident.priority = requirePriority(o.priority, `${path}.priority`);
  if (o.assignedUnitIds !== undefined)
    incident.assignedUnitIds = requireIdList(o.assignedUnitIds, `${path}.assignedUnitIds`);
  if (o.excludedUnitIds !== undefined)
    incident.excludedUnitIds = requireIdList(o.excludedUnitIds, `${path}.excludedUnitIds`);
  return incident;
}

function requireIdList(raw: unknown, path: string): string[] {
  const ids = requireArray(raw, path).map((u, j) => requireString(u, `${path}[${j}]`));
  if (new Set(ids).size !== ids.length) throw invalid(path, 'lists a unit twice');
  return ids;
}

/**
 * A whole state: its units and incidents. References between them are not required to
 * resolve: a caller may pass only the open incidents while a unit still clears a resolved one,
 * and the optimiser treats a unit bound for an absent incident as not pre-emptible.
 */
export function validateState(state: unknown, catalog: CatalogIndex, path = 'state'): DispatchState {
  const o = requireRecord(state, path);
  return {
    units: validateUnits(o.units, `${path}.units`),
    incidents: validateIncidents(o.incidents, catalog, `${path}.incidents`),
  };
}

// ---- small checks shared by the core's validators (catalogue, areas, roads) ----

export function invalid(field: string, message: string): CoreError {
  return new CoreError('INVALID_FIELD', field, message);
}

/** A short, never-throwing description of a bad value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
    case 'number':
      return String(v);
    case 'undefined':
      return 'nothing';
    case 'object':
      return 'an object';
    default:
      return `a ${typeof v}`;
  }
}

export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function requireRecord(x: unknown, path: string): Record<string, unknown> {
  if (!isRecord(x)) throw invalid(path, `must be an object, got ${describe(x)}`);
  return x;
}

export function requireArray(x: unknown, path: string): unknown[] {
  if (!Array.isArray(x)) throw invalid(path, `must be an array, got ${describe(x)}`);
  return x;
}

/** A string with at least one non-blank character. */
export function requireString(x: unknown, path: string): string {
  if (typeof x !== 'string' || x.trim() === '') {
    throw invalid(path, `must be a non-empty string, got ${describe(x)}`);
  }
  return x;
}

/** A finite number (NaN and ±Infinity refused). */
export function requireNumber(x: unknown, path: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) {
    throw invalid(path, `must be a finite number, got ${describe(x)}`);
  }
  return x;
}

export function requireBoolean(x: unknown, path: string): boolean {
  if (typeof x !== 'boolean') throw invalid(path, `must be true or false, got ${describe(x)}`);
  return x;
}

export function requirePriority(x: unknown, path: string): Priority {
  if (x !== 1 && x !== 2 && x !== 3 && x !== 4) {
    throw invalid(path, `must be an integer 1..4, got ${describe(x)}`);
  }
  return x;
}

export function requireLonLat(x: unknown, path: string): [number, number] {
  if (!isLonLat(x)) throw invalid(path, `must be [lon, lat] with lon in [-180, 180] and lat in [-90, 90]`);
  return [x[0], x[1]];
}

/** A non-empty list of non-empty strings; repeats are dropped, first occurrence kept. */
export function requireStringList(x: unknown, path: string): string[] {
  const list = requireArray(x, path);
  if (list.length === 0) throw invalid(path, 'must not be empty');
  const out = list.map((s, i) => requireString(s, `${path}[${i}]`));
  return [...new Set(out)];
}

export function requireOneOf<T extends string>(x: unknown, allowed: readonly T[], path: string): T {
  if (typeof x !== 'string' || !(allowed as readonly string[]).includes(x)) {
    throw invalid(path, `must be one of ${allowed.join(', ')}, got ${describe(x)}`);
  }
  return x as T;
}
