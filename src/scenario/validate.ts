// Scenario file checking (../../shared/PRODUCT.md "Scenario file"). Pure: no I/O.
//
// `parseScenario` takes any parsed JSON value and either returns a checked copy typed as
// `Scenario` or throws a `ScenarioError` naming the FIRST wrong field by path
// (`$.units[3].speedKmh`). It never throws anything else, whatever the input.
//
// Check order (what "first" means): name, start, durationS, seed, catalog, areas, units,
// incidents, travel, sim, description; arrays in index order, objects in the order of
// their fields in src/scenario/types.ts. References (incident type → catalogue, duties →
// catalogue, unit homeArea / area parent → area ids) are checked where they occur.
//
// The returned copy: incidents sorted by (atS, id) (ids compared by UTF-16 code units);
// unknown fields are passed through untouched ("fields may be added"); coordinates are
// rebuilt as fresh [lon, lat] pairs (in area and road geometry a third element, altitude,
// is accepted and dropped; unit homes and incident locations must be exactly [lon, lat]).
// Limits shared with the core: speeds ≤ MAX_SPEED_KMH (300), a road network has ≥ 1 road.

import type { IncidentType, LonLat, Priority } from '../core/types.ts';
import { MAX_SPEED_KMH } from '../core/validate.ts';
import type {
  AreaCollection,
  AreaFeature,
  AreaProperties,
  RoadFeature,
  Scenario,
  ScenarioIncident,
  ScenarioUnit,
  SimulationConfig,
  TravelConfig,
} from './types.ts';

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
  constructor(
    /** JSONPath-like location of the first wrong field, e.g. `$.units[3].speedKmh`. */
    readonly path: string,
    /** What was expected there, e.g. `a number > 0`. */
    readonly expected: string,
    /** Short description of what was found, e.g. `-5`, `"abc"`, `nothing`. */
    readonly got: string,
  ) {
    super(`${path}: expected ${expected}, got ${got}`);
  }
}

export const isScenarioError = (e: unknown): e is ScenarioError => e instanceof ScenarioError;

type Obj = Record<string, unknown>;

/** Short, safe description of any value for error messages (never throws). */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'undefined':
      return 'nothing';
    case 'string': {
      const s = JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}…` : v);
      return v.length === 0 ? 'an empty string' : s;
    }
    case 'number':
      return Object.is(v, -0) ? '-0' : String(v);
    case 'boolean':
      return String(v);
    case 'bigint':
      return `${String(v)}n`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      if (v === null) return 'null';
      if (Array.isArray(v)) return v.length === 0 ? 'an empty array' : `an array of ${v.length}`;
      return 'an object';
  }
}

export function fail(path: string, expected: string, got: unknown): never {
  throw new ScenarioError(path, expected, describeValue(got));
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
export const key = (path: string, k: string): string =>
  IDENT.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
const idx = (path: string, i: number): string => `${path}[${i}]`;

export const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Own property or undefined (never reads inherited properties such as `constructor`). */
export const field = (o: Obj, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);

export function expectObject(v: unknown, path: string, what = 'an object'): Obj {
  if (!isObject(v)) fail(path, what, v);
  return v;
}

export function expectArray(v: unknown, path: string, minLength = 0): unknown[] {
  if (!Array.isArray(v) || v.length < minLength) {
    fail(path, minLength > 0 ? `an array of at least ${minLength}` : 'an array', v);
  }
  return v;
}

export function expectString(v: unknown, path: string, nonEmpty = true): string {
  if (typeof v !== 'string' || (nonEmpty && v.trim() === '')) {
    fail(path, nonEmpty ? 'a non-empty string' : 'a string', v);
  }
  return v;
}

export function expectBoolean(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, 'true or false', v);
  return v;
}

export interface NumberRule {
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  gt?: number;
  /** Inclusive upper bound. */
  max?: number;
  integer?: boolean;
}

function ruleText(r: NumberRule): string {
  const noun = r.integer ? 'an integer' : 'a number';
  if (r.min !== undefined && r.max !== undefined) return `${noun} in [${r.min}, ${r.max}]`;
  if (r.gt !== undefined && r.max !== undefined) return `${noun} in (${r.gt}, ${r.max}]`;
  if (r.gt !== undefined) return `${noun} > ${r.gt}`;
  if (r.min !== undefined) return `${noun} ≥ ${r.min}`;
  if (r.max !== undefined) return `${noun} ≤ ${r.max}`;
  return r.integer ? 'an integer' : 'a finite number';
}

export function expectNumber(v: unknown, path: string, rule: NumberRule = {}): number {
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!rule.integer || Number.isSafeInteger(v)) &&
    (rule.min === undefined || v >= rule.min) &&
    (rule.gt === undefined || v > rule.gt) &&
    (rule.max === undefined || v <= rule.max);
  if (!ok) fail(path, ruleText(rule), v);
  return v as number;
}

/**
 * A `[lon, lat]` position. With `altitude`, a GeoJSON position with an optional third
 * element (area and road geometry) whose altitude is checked and dropped.
 */
export function expectLonLat(v: unknown, path: string, altitude = false): LonLat {
  if (!Array.isArray(v) || v.length < 2 || v.length > (altitude ? 3 : 2)) {
    fail(path, altitude ? 'a [lon, lat] or [lon, lat, alt] position' : 'a [lon, lat] pair', v);
  }
  const lon = expectNumber(v[0], idx(path, 0), { min: -180, max: 180 });
  const lat = expectNumber(v[1], idx(path, 1), { min: -90, max: 90 });
  if (v.length === 3) expectNumber(v[2], idx(path, 2));
  return [lon, lat];
}

function expectPriority(v: unknown, path: string): Priority {
  return expectNumber(v, path, { min: 1, max: 4, integer: true }) as Priority;
}

// ---------------------------------------------------------------------------------------
// ISO 8601 times with an offset

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|([+-])(\d{2}):(\d{2}))$/;

const daysInMonth = (y: number, m: number): number =>
  m === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;

export interface ParsedTime {
  /** Milliseconds since the Unix epoch. */
  epochMs: number;
  /** Offset from UTC in minutes (e.g. +480 for +08:00). */
  offsetMin: number;
}

/** Checks calendar fields; returns UTC epoch ms of the local wall time (offset not applied). */
export function wallClockMs(
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
  ms: number,
): number | undefined {
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 59) return undefined;
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d); // unlike Date.UTC, no 0–99 → 1900s mapping
  t.setUTCHours(h, mi, s, ms);
  return t.getTime();
}

/** Parses an offset "+08:00" / "-05:30" / "Z" into minutes; undefined when malformed. */
export function parseOffset(s: string): number | undefined {
  if (s === 'Z') return 0;
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(s);
  if (!m) return undefined;
  const h = Number(m[2]);
  const mi = Number(m[3]);
  if (h > 14 || mi > 59) return undefined;
  return (m[1] === '-' ? -1 : 1) * (h * 60 + mi);
}

/** Parses `YYYY-MM-DDTHH:mm[:ss[.fff]]` followed by `Z` or `±HH:MM`; undefined when invalid. */
export function parseIsoWithOffset(s: string): ParsedTime | undefined {
  const m = ISO_RE.exec(s);
  if (!m) return undefined;
  const frac = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  const wall = wallClockMs(
    Number(m[1]),
    Number(m[2]),
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6] ?? 0),
    0,
  );
  const offsetMin = parseOffset(m[8]);
  if (wall === undefined || offsetMin === undefined) return undefined;
  return { epochMs: wall + frac - offsetMin * 60_000, offsetMin };
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

export function formatOffset(offsetMin: number): string {
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** Formats an instant as `YYYY-MM-DDTHH:mm:ss[.fff]±HH:MM` in the given offset. */
export function formatIsoWithOffset(epochMs: number, offsetMin: number): string {
  const d = new Date(epochMs + offsetMin * 60_000);
  const ms = d.getUTCMilliseconds();
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `${ms ? `.${pad(ms, 3)}` : ''}${formatOffset(offsetMin)}`
  );
}

// ---------------------------------------------------------------------------------------
// Parts

function parseCatalogEntry(v: unknown, path: string): IncidentType {
  const o = expectObject(v, path);
  const type = expectString(field(o, 'type'), key(path, 'type'));
  const priority = expectPriority(field(o, 'priority'), key(path, 'priority'));
  const immediate = expectBoolean(field(o, 'immediate'), key(path, 'immediate'));
  const targetS = expectNumber(field(o, 'targetS'), key(path, 'targetS'), { gt: 0 });
  const reqPath = key(path, 'requires');
  const reqRaw = expectObject(field(o, 'requires'), reqPath, 'an object of capability counts');
  const reqKeys = Object.keys(reqRaw);
  if (reqKeys.length === 0) fail(reqPath, 'at least one capability', reqRaw);
  const entries: [string, number][] = [];
  for (const k of reqKeys) {
    if (k.trim() === '') fail(reqPath, 'non-empty capability names', JSON.stringify(k));
    entries.push([k, expectNumber(reqRaw[k], key(reqPath, k), { min: 1, integer: true })]);
  }
  const onSceneS = expectNumber(field(o, 'onSceneS'), key(path, 'onSceneS'), { min: 0 });
  const out: IncidentType = {
    ...o,
    type,
    priority,
    immediate,
    targetS,
    requires: Object.fromEntries(entries),
    onSceneS,
  };
  const aon = field(o, 'allOrNothing');
  if (aon !== undefined) out.allOrNothing = expectBoolean(aon, key(path, 'allOrNothing'));
  const label = field(o, 'label');
  if (label !== undefined) out.label = expectString(label, key(path, 'label'), false);
  return out;
}

function parseCatalog(v: unknown, path: string): IncidentType[] {
  const arr = expectArray(v, path, 1);
  const seen = new Set<string>();
  return arr.map((e, i) => {
    const t = parseCatalogEntry(e, idx(path, i));
    if (seen.has(t.type)) fail(key(idx(path, i), 'type'), 'a type not already in the catalogue', t.type);
    seen.add(t.type);
    return t;
  });
}

function parseRing(v: unknown, path: string): LonLat[] {
  const arr = expectArray(v, path);
  if (arr.length < 4) fail(path, 'a linear ring of at least 4 positions', v);
  const ring = arr.map((p, i) => expectLonLat(p, idx(path, i), true));
  const a = ring[0];
  const b = ring[ring.length - 1];
  if (a[0] !== b[0] || a[1] !== b[1])
    fail(idx(path, ring.length - 1), 'the ring closed (last position = first)', arr[arr.length - 1]);
  return ring;
}

function parsePolygonCoords(v: unknown, path: string): LonLat[][] {
  return expectArray(v, path, 1).map((r, i) => parseRing(r, idx(path, i)));
}

function parseAreaGeometry(v: unknown, path: string): AreaFeature['geometry'] {
  const g = expectObject(v, path, 'a Polygon or MultiPolygon geometry');
  const type = field(g, 'type');
  const cPath = key(path, 'coordinates');
  if (type === 'Polygon') return { type, coordinates: parsePolygonCoords(field(g, 'coordinates'), cPath) };
  if (type === 'MultiPolygon') {
    const polys = expectArray(field(g, 'coordinates'), cPath, 1);
    return { type, coordinates: polys.map((p, i) => parsePolygonCoords(p, idx(cPath, i))) };
  }
  return fail(key(path, 'type'), '"Polygon" or "MultiPolygon"', type);
}

function parseAreas(v: unknown, path: string, catalogTypes: ReadonlySet<string>): AreaCollection {
  const fc = expectObject(v, path, 'a GeoJSON FeatureCollection');
  if (field(fc, 'type') !== 'FeatureCollection')
    fail(key(path, 'type'), '"FeatureCollection"', field(fc, 'type'));
  const fPath = key(path, 'features');
  const raw = expectArray(field(fc, 'features'), fPath);
  // Ids declared anywhere in the collection, so that a parent may be declared after its cells.
  const declared = new Set<string>();
  for (const f of raw) {
    const props = isObject(f) ? field(f, 'properties') : undefined;
    const id = isObject(props) ? field(props, 'id') : undefined;
    if (typeof id === 'string') declared.add(id);
  }
  const seen = new Set<string>();
  const features = raw.map((f, i): AreaFeature => {
    const p = idx(fPath, i);
    const o = expectObject(f, p, 'a GeoJSON Feature');
    if (field(o, 'type') !== 'Feature') fail(key(p, 'type'), '"Feature"', field(o, 'type'));
    const pp = key(p, 'properties');
    const props = expectObject(field(o, 'properties'), pp);
    const id = expectString(field(props, 'id'), key(pp, 'id'));
    if (seen.has(id)) fail(key(pp, 'id'), 'an area id not already used', id);
    seen.add(id);
    const name = expectString(field(props, 'name'), key(pp, 'name'));
    const outProps: AreaProperties = { ...props, id, name };
    const parent = field(props, 'parent');
    if (parent !== undefined) {
      const pr = expectString(parent, key(pp, 'parent'));
      if (pr === id || !declared.has(pr))
        fail(key(pp, 'parent'), 'the id of another area in this collection', pr);
      outProps.parent = pr;
    }
    const duties = field(props, 'duties');
    if (duties !== undefined) {
      const dp = key(pp, 'duties');
      const listed = new Set<string>();
      outProps.duties = expectArray(duties, dp).map((d, j) => {
        const t = expectString(d, idx(dp, j));
        if (!catalogTypes.has(t)) fail(idx(dp, j), 'an incident type of the catalogue', t);
        if (listed.has(t)) fail(idx(dp, j), 'an incident type not already on this list', t);
        listed.add(t);
        return t;
      });
    }
    const geometry = parseAreaGeometry(field(o, 'geometry'), key(p, 'geometry'));
    return { ...o, type: 'Feature', properties: outProps, geometry } as AreaFeature;
  });
  return { ...fc, type: 'FeatureCollection', features } as AreaCollection;
}

function parseUnit(v: unknown, path: string, areaIds: ReadonlySet<string>): ScenarioUnit {
  const o = expectObject(v, path);
  const id = expectString(field(o, 'id'), key(path, 'id'));
  const department = expectString(field(o, 'department'), key(path, 'department'));
  const cPath = key(path, 'capabilities');
  const capabilities = expectArray(field(o, 'capabilities'), cPath, 1).map((c, i) =>
    expectString(c, idx(cPath, i)),
  );
  const home = expectLonLat(field(o, 'home'), key(path, 'home'));
  const out: ScenarioUnit = { ...o, id, department, capabilities, home, speedKmh: 0, turnoutS: 0 };
  const homeArea = field(o, 'homeArea');
  if (homeArea !== undefined) {
    const ha = expectString(homeArea, key(path, 'homeArea'));
    if (!areaIds.has(ha)) fail(key(path, 'homeArea'), 'an area id', ha);
    out.homeArea = ha;
  }
  out.speedKmh = expectNumber(field(o, 'speedKmh'), key(path, 'speedKmh'), { gt: 0, max: MAX_SPEED_KMH });
  out.turnoutS = expectNumber(field(o, 'turnoutS'), key(path, 'turnoutS'), { min: 0 });
  return out;
}

function parseIncident(
  v: unknown,
  path: string,
  durationS: number,
  types: ReadonlySet<string>,
): ScenarioIncident {
  const o = expectObject(v, path);
  const id = expectString(field(o, 'id'), key(path, 'id'));
  const atS = expectNumber(field(o, 'atS'), key(path, 'atS'), { min: 0, max: durationS });
  const type = expectString(field(o, 'type'), key(path, 'type'));
  if (!types.has(type)) fail(key(path, 'type'), 'an incident type of the catalogue', type);
  const location = expectLonLat(field(o, 'location'), key(path, 'location'));
  const out: ScenarioIncident = { ...o, id, atS, type, location };
  const onSceneS = field(o, 'onSceneS');
  if (onSceneS !== undefined) out.onSceneS = expectNumber(onSceneS, key(path, 'onSceneS'), { min: 0 });
  const priority = field(o, 'priority');
  if (priority !== undefined) out.priority = expectPriority(priority, key(path, 'priority'));
  const cancelAtS = field(o, 'cancelAtS');
  if (cancelAtS !== undefined) out.cancelAtS = expectNumber(cancelAtS, key(path, 'cancelAtS'), { min: atS });
  const source = field(o, 'source');
  if (source !== undefined) out.source = expectString(source, key(path, 'source'));
  return out;
}

function parseRoads(v: unknown, path: string): NonNullable<TravelConfig['roads']> {
  const fc = expectObject(v, path, 'a GeoJSON FeatureCollection of LineStrings');
  if (field(fc, 'type') !== 'FeatureCollection')
    fail(key(path, 'type'), '"FeatureCollection"', field(fc, 'type'));
  const fPath = key(path, 'features');
  const features = expectArray(field(fc, 'features'), fPath, 1).map((f, i): RoadFeature => {
    const p = idx(fPath, i);
    const o = expectObject(f, p, 'a GeoJSON Feature');
    if (field(o, 'type') !== 'Feature') fail(key(p, 'type'), '"Feature"', field(o, 'type'));
    const pp = key(p, 'properties');
    const props = expectObject(field(o, 'properties'), pp);
    const speedKmh = expectNumber(field(props, 'speedKmh'), key(pp, 'speedKmh'), {
      gt: 0,
      max: MAX_SPEED_KMH,
    });
    const gp = key(p, 'geometry');
    const g = expectObject(field(o, 'geometry'), gp, 'a LineString geometry');
    if (field(g, 'type') !== 'LineString') fail(key(gp, 'type'), '"LineString"', field(g, 'type'));
    const cp = key(gp, 'coordinates');
    const coordinates = expectArray(field(g, 'coordinates'), cp, 2).map((c, j) =>
      expectLonLat(c, idx(cp, j), true),
    );
    return {
      ...o,
      type: 'Feature',
      properties: { ...props, speedKmh },
      geometry: { type: 'LineString', coordinates },
    };
  });
  return { ...fc, type: 'FeatureCollection', features } as NonNullable<TravelConfig['roads']>;
}

function parseTravel(v: unknown, path: string): TravelConfig {
  const o = expectObject(v, path);
  const out: TravelConfig = { ...o };
  const df = field(o, 'detourFactor');
  if (df !== undefined) out.detourFactor = expectNumber(df, key(path, 'detourFactor'), { min: 1 });
  const roads = field(o, 'roads');
  if (roads !== undefined) out.roads = parseRoads(roads, key(path, 'roads'));
  return out;
}

function parseSim(v: unknown, path: string): SimulationConfig {
  const o = expectObject(v, path);
  const out: SimulationConfig = { ...o };
  const num = (k: 'ackDelayS' | 'declineProb' | 'ackTimeoutS' | 'cadenceS', rule: NumberRule): void => {
    const x = field(o, k);
    if (x !== undefined) out[k] = expectNumber(x, key(path, k), rule);
  };
  num('ackDelayS', { min: 0 });
  num('declineProb', { min: 0, max: 1 });
  num('ackTimeoutS', { gt: 0 });
  const rh = field(o, 'returnHome');
  if (rh !== undefined) out.returnHome = expectBoolean(rh, key(path, 'returnHome'));
  num('cadenceS', { min: 0 });
  return out;
}

/** Compares incidents by (atS, id); ids by UTF-16 code units (locale-independent). */
export function compareIncidents(a: ScenarioIncident, b: ScenarioIncident): number {
  if (a.atS !== b.atS) return a.atS - b.atS;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Checks a parsed scenario file and returns a checked copy with incidents sorted by
 * (atS, id). Throws `ScenarioError` (and nothing else) naming the first wrong field.
 */
export function parseScenario(json: unknown): Scenario {
  try {
    return parseScenarioUnsafe(json);
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    // Defensive: any unforeseen failure (e.g. a hostile getter) is still a ScenarioError.
    throw new ScenarioError(
      '$',
      'a readable scenario object',
      e instanceof Error ? e.message : 'an unreadable value',
    );
  }
}

function parseScenarioUnsafe(json: unknown): Scenario {
  const root = expectObject(json, '$', 'a scenario object');
  const name = expectString(field(root, 'name'), '$.name');
  const start = expectString(field(root, 'start'), '$.start');
  if (!parseIsoWithOffset(start))
    fail('$.start', 'an ISO 8601 time with offset (e.g. 2026-03-02T00:00:00+08:00)', start);
  const durationS = expectNumber(field(root, 'durationS'), '$.durationS', { gt: 0 });
  const seed = expectNumber(field(root, 'seed'), '$.seed', { integer: true });

  const catalog = parseCatalog(field(root, 'catalog'), '$.catalog');
  const types = new Set(catalog.map((t) => t.type));
  const areas = parseAreas(field(root, 'areas'), '$.areas', types);
  const areaIds = new Set(areas.features.map((f) => f.properties.id));

  const unitsRaw = expectArray(field(root, 'units'), '$.units');
  const unitIds = new Set<string>();
  const units = unitsRaw.map((u, i) => {
    const unit = parseUnit(u, idx('$.units', i), areaIds);
    if (unitIds.has(unit.id)) fail(`$.units[${i}].id`, 'a unit id not already used', unit.id);
    unitIds.add(unit.id);
    return unit;
  });

  const incRaw = expectArray(field(root, 'incidents'), '$.incidents');
  const incIds = new Set<string>();
  const incidents = incRaw.map((x, i) => {
    const inc = parseIncident(x, idx('$.incidents', i), durationS, types);
    if (incIds.has(inc.id)) fail(`$.incidents[${i}].id`, 'an incident id not already used', inc.id);
    incIds.add(inc.id);
    return inc;
  });
  incidents.sort(compareIncidents);

  const out: Scenario = { ...root, name, start, durationS, seed, areas, catalog, units, incidents };
  const travel = field(root, 'travel');
  if (travel !== undefined) out.travel = parseTravel(travel, '$.travel');
  const sim = field(root, 'sim');
  if (sim !== undefined) out.sim = parseSim(sim, '$.sim');
  const description = field(root, 'description');
  if (description !== undefined) out.description = expectString(description, '$.description', false);
  return out;
}
