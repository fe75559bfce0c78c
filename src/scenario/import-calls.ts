// `dispatch import-calls`: a recorded call log (CSV, one row per call) → a scenario's
// incidents, so that a real day can be replayed. Pure: the caller reads the files.
//
// Every data row is either imported or rejected with a reason; the report counts rows per
// reason with their line numbers (first 20), so nothing is dropped silently. Blank lines are
// not rows. Reasons, checked in this order: `missing column` (a short row lacks a mapped
// column), `extra columns` (non-empty fields beyond the header: a shifted row), `missing id`,
// `missing time`, `bad time`, `time without offset` (a local time and no mapping.timezone),
// `missing type`, `unknown type`, `missing coordinates`, `bad coordinates`, `outside district`
// (beyond the areas' bounding box + ~2 km), `bad priority`, `bad onSceneS`, then in file
// order `before start`, `after end` (only with mapping.durationS), and `duplicate id` (an id
// already imported from an earlier row).

import { CsvError, parseCsv } from './csv.ts';
import type { AreaCollection, Scenario, ScenarioIncident } from './types.ts';
import {
  describeValue,
  expectNumber,
  expectObject,
  expectString,
  field,
  formatIsoWithOffset,
  key,
  parseIsoWithOffset,
  parseOffset,
  parseScenario,
  ScenarioError,
  wallClockMs,
} from './validate.ts';

export interface CallMapping {
  columns: {
    id: string;
    receivedAt: string;
    type: string;
    lon: string;
    lat: string;
    /** Optional: a priority 1..4 overriding the catalogue's. */
    priority?: string;
    /** Optional: where the call came from (hotline, feed, …). */
    source?: string;
    /** Optional: the actual on-scene time in seconds. */
    onSceneS?: string;
  };
  /** Raw category value → catalogue type. A raw value equal to a catalogue type needs no entry. */
  types: Record<string, string>;
  /** ISO 8601 with offset: scenario second 0 (default: 00:00 of the earliest call's day, in its offset). */
  start?: string;
  /** Offset of times written without one, e.g. "+08:00". */
  timezone?: string;
  /**
   * `auto` (default: ISO 8601 with offset, or `YYYY-MM-DD HH:mm[:ss[.SSS]]` / `YYYY/MM/DD …`
   * in `timezone`), `iso`, `epoch` (seconds), `epoch-ms`, or a pattern of the tokens YYYY MM DD
   * HH mm ss SSS and literal characters, e.g. `DD.MM.YYYY HH:mm` (an offset may follow).
   */
  timeFormat?: string;
  /** CSV field separator (default `,`). */
  delimiter?: string;
  /** Scenario name (default: the base's, or "imported-calls"). */
  name?: string;
  /** Scenario length in seconds (default: whole days covering the last call); later calls are rejected. */
  durationS?: number;
  /** `source` of calls without a source column value. */
  defaultSource?: string;
}

/** What the import needs from a scenario: areas, catalogue and units; the rest is optional. */
export type ImportBase = Pick<Scenario, 'areas' | 'catalog' | 'units'> &
  Partial<Pick<Scenario, 'name' | 'seed' | 'travel' | 'sim' | 'description'>>;

export interface RejectGroup {
  count: number;
  /** Physical line numbers (header = line 1) of the first 20 rows rejected for this reason. */
  rows: number[];
}

export interface ImportReport {
  /** Data rows read (blank lines excluded). */
  rows: number;
  imported: number;
  rejected: Record<string, RejectGroup>;
}

export interface ImportResult {
  scenario: Scenario;
  report: ImportReport;
}

const COLUMN_KEYS = ['id', 'receivedAt', 'type', 'lon', 'lat', 'priority', 'source', 'onSceneS'] as const;
const REQUIRED_COLUMNS = new Set(['id', 'receivedAt', 'type', 'lon', 'lat']);
const NAMED_FORMATS = new Set(['auto', 'iso', 'epoch', 'epoch-ms']);

/** Checks a mapping file's JSON; errors name the field (`mapping.columns.lat`). */
export function parseMapping(json: unknown, catalogTypes?: ReadonlySet<string>): CallMapping {
  const p = 'mapping';
  const o = expectObject(json, p, 'a mapping object');
  const cp = key(p, 'columns');
  const colsRaw = expectObject(field(o, 'columns'), cp);
  const columns: Record<string, string> = {};
  for (const k of COLUMN_KEYS) {
    const v = field(colsRaw, k);
    if (v === undefined && !REQUIRED_COLUMNS.has(k)) continue;
    columns[k] = expectString(v, key(cp, k)).trim();
  }
  const tp = key(p, 'types');
  const typesRaw = field(o, 'types');
  let types: Record<string, string> = {};
  if (typesRaw !== undefined) {
    const t = expectObject(typesRaw, tp, 'an object of category → incident type');
    const entries: [string, string][] = [];
    for (const raw of Object.keys(t)) {
      const target = expectString(t[raw], key(tp, raw));
      if (catalogTypes && !catalogTypes.has(target))
        fail(key(tp, raw), 'an incident type of the catalogue', target);
      entries.push([raw.trim(), target]);
    }
    // fromEntries defines own properties, so even a category named "__proto__" is kept.
    types = Object.fromEntries(entries);
  }
  const out: CallMapping = { columns: columns as CallMapping['columns'], types };
  const start = field(o, 'start');
  if (start !== undefined) {
    const s = expectString(start, key(p, 'start'));
    if (!parseIsoWithOffset(s)) fail(key(p, 'start'), 'an ISO 8601 time with offset', s);
    out.start = s;
  }
  const tz = field(o, 'timezone');
  if (tz !== undefined) {
    const s = expectString(tz, key(p, 'timezone'));
    if (parseOffset(s) === undefined) fail(key(p, 'timezone'), 'an offset like "+08:00" or "Z"', s);
    out.timezone = s;
  }
  const tf = field(o, 'timeFormat');
  if (tf !== undefined) {
    const s = expectString(tf, key(p, 'timeFormat'));
    if (!NAMED_FORMATS.has(s) && !/YYYY/.test(s)) {
      fail(key(p, 'timeFormat'), 'auto, iso, epoch, epoch-ms or a pattern with YYYY MM DD HH mm [ss]', s);
    }
    out.timeFormat = s;
  }
  const dl = field(o, 'delimiter');
  if (dl !== undefined) {
    if (typeof dl !== 'string' || dl.length !== 1 || dl === '"' || dl === '\n' || dl === '\r') {
      fail(key(p, 'delimiter'), 'one character other than a quote or line end', dl);
    }
    out.delimiter = dl;
  }
  const name = field(o, 'name');
  if (name !== undefined) out.name = expectString(name, key(p, 'name'));
  const dur = field(o, 'durationS');
  if (dur !== undefined) out.durationS = expectNumber(dur, key(p, 'durationS'), { gt: 0 });
  const ds = field(o, 'defaultSource');
  if (ds !== undefined) out.defaultSource = expectString(ds, key(p, 'defaultSource'));
  return out;
}

function fail(path: string, expected: string, got: unknown): never {
  throw new ScenarioError(path, expected, describeValue(got));
}

// ---------------------------------------------------------------------------------------
// Times

type TimeResult = { ok: true; epochMs: number; offsetMin: number } | { ok: false; reason: string };

const LOCAL_RE = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,3}))?)?$/;
const OFFSET_TAIL = /\s*(Z|[+-]\d{2}:\d{2})$/;

function fromWall(
  parts: { y: number; mo: number; d: number; h: number; mi: number; s: number; ms: number },
  offset: string | undefined,
  tz: number | undefined,
): TimeResult {
  const wall = wallClockMs(parts.y, parts.mo, parts.d, parts.h, parts.mi, parts.s, parts.ms);
  if (wall === undefined) return { ok: false, reason: 'bad time' };
  const off = offset !== undefined ? parseOffset(offset) : tz;
  if (off === undefined)
    return { ok: false, reason: offset !== undefined ? 'bad time' : 'time without offset' };
  return { ok: true, epochMs: wall - off * 60_000, offsetMin: off };
}

const msOf = (frac: string | undefined): number => (frac ? Math.round(Number(`0.${frac}`) * 1000) : 0);

/** Compiles a `timeFormat` pattern (tokens YYYY MM DD HH mm ss SSS) into a parser. */
function compilePattern(pattern: string): (s: string, tz: number | undefined) => TimeResult {
  const order: string[] = [];
  let re = '';
  for (let i = 0; i < pattern.length; ) {
    const tok = ['YYYY', 'SSS', 'MM', 'DD', 'HH', 'mm', 'ss'].find((t) => pattern.startsWith(t, i));
    if (tok) {
      order.push(tok);
      re += tok === 'YYYY' ? '(\\d{4})' : tok === 'SSS' ? '(\\d{1,3})' : '(\\d{1,2})';
      i += tok.length;
    } else {
      re += pattern[i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i++;
    }
  }
  const rx = new RegExp(`^${re}(?:\\s*(Z|[+-]\\d{2}:\\d{2}))?$`);
  return (s, tz) => {
    const m = rx.exec(s);
    if (!m) return { ok: false, reason: 'bad time' };
    const v: Record<string, number> = { YYYY: 0, MM: 1, DD: 1, HH: 0, mm: 0, ss: 0, SSS: 0 };
    order.forEach((t, i) => {
      v[t] = t === 'SSS' ? msOf(m[i + 1]) : Number(m[i + 1]);
    });
    return fromWall(
      { y: v.YYYY, mo: v.MM, d: v.DD, h: v.HH, mi: v.mm, s: v.ss, ms: v.SSS },
      m[order.length + 1],
      tz,
    );
  };
}

function timeParser(mapping: CallMapping): (s: string) => TimeResult {
  const tz = mapping.timezone !== undefined ? parseOffset(mapping.timezone) : undefined;
  const fmt = mapping.timeFormat ?? 'auto';
  const iso = (s: string): TimeResult | undefined => {
    const p = parseIsoWithOffset(s);
    return p ? { ok: true, ...p } : undefined;
  };
  const local = (s: string): TimeResult => {
    const off = OFFSET_TAIL.exec(s);
    const body = off ? s.slice(0, off.index) : s;
    const m = LOCAL_RE.exec(body);
    if (!m) return { ok: false, reason: 'bad time' };
    return fromWall(
      {
        y: Number(m[1]),
        mo: Number(m[2]),
        d: Number(m[3]),
        h: Number(m[4]),
        mi: Number(m[5]),
        s: Number(m[6] ?? 0),
        ms: msOf(m[7]),
      },
      off?.[1],
      tz,
    );
  };
  const epoch = (s: string, scale: number): TimeResult => {
    if (!/^[+-]?\d+(\.\d+)?$/.test(s)) return { ok: false, reason: 'bad time' };
    const ms = Number(s) * scale;
    if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return { ok: false, reason: 'bad time' };
    return { ok: true, epochMs: ms, offsetMin: tz ?? 0 };
  };
  switch (fmt) {
    case 'auto':
      return (s) => iso(s) ?? local(s);
    case 'iso':
      return (s) => iso(s) ?? { ok: false, reason: 'bad time' };
    case 'epoch':
      return (s) => epoch(s, 1000);
    case 'epoch-ms':
      return (s) => epoch(s, 1);
    default: {
      const p = compilePattern(fmt);
      return (s) => p(s, tz);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Import

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** Margin around the areas' bounding box within which calls are still accepted (~2 km). */
const BBOX_MARGIN_DEG = 0.02;

function bbox(areas: AreaCollection): [number, number, number, number] | undefined {
  let w = Infinity;
  let s = Infinity;
  let e = -Infinity;
  let n = -Infinity;
  const visit = (c: unknown): void => {
    if (!Array.isArray(c)) return;
    if (typeof c[0] === 'number' && typeof c[1] === 'number') {
      w = Math.min(w, c[0]);
      e = Math.max(e, c[0]);
      s = Math.min(s, c[1]);
      n = Math.max(n, c[1]);
      return;
    }
    for (const x of c) visit(x);
  };
  for (const f of areas.features) visit(f.geometry.coordinates);
  return Number.isFinite(w) ? [w, s, e, n] : undefined;
}

interface Candidate {
  line: number;
  id: string;
  epochMs: number;
  offsetMin: number;
  incident: Omit<ScenarioIncident, 'atS'>;
}

/**
 * Turns a call log into a scenario: the base's areas, catalogue, units (and travel / sim if
 * given) with one incident per usable row. Throws `ScenarioError` for a bad mapping, a
 * header missing a mapped column, malformed CSV (an unterminated quote) or a bad base.
 */
export function importCalls(csvText: string, mapping: unknown, base: ImportBase): ImportResult {
  const catalogTypes = new Set(base.catalog.map((t) => t.type));
  const m = parseMapping(mapping, catalogTypes);
  const byType = new Map(base.catalog.map((t) => [t.type, t]));

  let records: ReturnType<typeof parseCsv>;
  try {
    records = parseCsv(csvText, { delimiter: m.delimiter });
  } catch (e) {
    if (e instanceof CsvError) throw new ScenarioError('csv', 'well-formed CSV', e.message);
    throw e;
  }
  const isBlank = (fields: string[]): boolean => fields.every((f) => f.trim() === '');
  const headerIdx = records.findIndex((r) => !isBlank(r.fields));
  if (headerIdx < 0) throw new ScenarioError('csv', 'a header row naming the columns', 'an empty file');
  const header = records[headerIdx].fields.map((h) => h.trim());

  // Column positions; a mapped column missing from the header is an error naming it.
  const col: Partial<Record<(typeof COLUMN_KEYS)[number], number>> = {};
  for (const k of COLUMN_KEYS) {
    const name = m.columns[k];
    if (name === undefined) continue;
    const i = header.indexOf(name);
    if (i < 0) {
      const shown = header.length > 12 ? `${header.slice(0, 12).join(', ')}, …` : header.join(', ');
      fail(`mapping.columns.${k}`, `a column of the CSV header (${shown})`, name);
    }
    if (header.indexOf(name, i + 1) >= 0)
      fail(`mapping.columns.${k}`, 'a column named once in the CSV header', name);
    col[k] = i;
  }
  const needed = Math.max(...Object.values(col).map((i) => i as number)) + 1;
  const parseTime = timeParser(m);
  const box = bbox(base.areas);

  const report: ImportReport = { rows: 0, imported: 0, rejected: {} };
  const reject = (reason: string, line: number): void => {
    const g = report.rejected[reason] ?? { count: 0, rows: [] };
    g.count++;
    if (g.rows.length < 20) g.rows.push(line);
    report.rejected[reason] = g;
  };

  // Pass 1: each row on its own.
  const candidates: Candidate[] = [];
  for (const rec of records.slice(headerIdx + 1)) {
    if (isBlank(rec.fields)) continue;
    report.rows++;
    const reason = ((): string | Candidate => {
      const f = rec.fields;
      if (f.length < needed) return 'missing column';
      if (f.length > header.length && f.slice(header.length).some((x) => x.trim() !== ''))
        return 'extra columns';
      const cell = (k: (typeof COLUMN_KEYS)[number]): string | undefined => {
        const i = col[k];
        return i === undefined ? undefined : (f[i] ?? '').trim();
      };
      const id = cell('id') as string;
      if (id === '') return 'missing id';
      const timeText = cell('receivedAt') as string;
      if (timeText === '') return 'missing time';
      const time = parseTime(timeText);
      if (!time.ok) return time.reason;
      const rawType = cell('type') as string;
      if (rawType === '') return 'missing type';
      const type = Object.hasOwn(m.types, rawType) ? m.types[rawType] : rawType;
      if (!byType.has(type)) return 'unknown type';
      const lonText = cell('lon') as string;
      const latText = cell('lat') as string;
      if (lonText === '' || latText === '') return 'missing coordinates';
      const lon = DECIMAL.test(lonText) ? Number(lonText) : Number.NaN;
      const lat = DECIMAL.test(latText) ? Number(latText) : Number.NaN;
      if (!(Math.abs(lon) <= 180 && Math.abs(lat) <= 90)) return 'bad coordinates';
      if (
        box &&
        (lon < box[0] - BBOX_MARGIN_DEG ||
          lon > box[2] + BBOX_MARGIN_DEG ||
          lat < box[1] - BBOX_MARGIN_DEG ||
          lat > box[3] + BBOX_MARGIN_DEG)
      ) {
        return 'outside district';
      }
      const incident: Omit<ScenarioIncident, 'atS'> = { id, type, location: [lon, lat] };
      const prText = cell('priority');
      if (prText !== undefined && prText !== '') {
        if (!/^[1-4]$/.test(prText)) return 'bad priority';
        const pr = Number(prText) as 1 | 2 | 3 | 4;
        if (pr !== byType.get(type)?.priority) incident.priority = pr;
      }
      const osText = cell('onSceneS');
      if (osText !== undefined && osText !== '') {
        const os = DECIMAL.test(osText) ? Number(osText) : Number.NaN;
        if (!(Number.isFinite(os) && os >= 0)) return 'bad onSceneS';
        incident.onSceneS = os;
      }
      const src = cell('source');
      if (src !== undefined && src !== '') incident.source = src;
      else if (m.defaultSource !== undefined) incident.source = m.defaultSource;
      return { line: rec.line, id, epochMs: time.epochMs, offsetMin: time.offsetMin, incident };
    })();
    if (typeof reason === 'string') reject(reason, rec.line);
    else candidates.push(reason);
  }

  // Scenario start: the mapping's, or 00:00 of the earliest call's day in that call's offset.
  let startText: string;
  let startMs: number;
  if (m.start !== undefined) {
    startText = m.start;
    startMs = (parseIsoWithOffset(m.start) as { epochMs: number }).epochMs;
  } else if (candidates.length > 0) {
    const first = candidates.reduce((a, b) => (b.epochMs < a.epochMs ? b : a));
    const local = first.epochMs + first.offsetMin * 60_000;
    startMs = Math.floor(local / 86_400_000) * 86_400_000 - first.offsetMin * 60_000;
    startText = formatIsoWithOffset(startMs, first.offsetMin);
  } else {
    const tz = m.timezone !== undefined ? (parseOffset(m.timezone) ?? 0) : 0;
    startMs = 0;
    startText = formatIsoWithOffset(0, tz);
  }

  // Pass 2: in file order, against the start, the end and earlier rows.
  const seen = new Set<string>();
  const incidents: ScenarioIncident[] = [];
  for (const c of candidates) {
    const atS = (c.epochMs - startMs) / 1000;
    if (atS < 0) reject('before start', c.line);
    else if (m.durationS !== undefined && atS > m.durationS) reject('after end', c.line);
    else if (seen.has(c.id)) reject('duplicate id', c.line);
    else {
      seen.add(c.id);
      const { id, type, location, ...rest } = c.incident;
      incidents.push({ id, atS, type, location, ...rest });
    }
  }
  report.imported = incidents.length;

  const lastS = incidents.reduce((a, i) => Math.max(a, i.atS), 0);
  const durationS = m.durationS ?? Math.max(1, Math.ceil(lastS / 86400)) * 86400;
  const scenario: Scenario = {
    name: m.name ?? base.name ?? 'imported-calls',
    description: `Imported call log: ${report.imported} of ${report.rows} rows imported.`,
    start: startText,
    durationS,
    seed: base.seed ?? 0,
    areas: base.areas,
    catalog: base.catalog,
    units: base.units,
    incidents,
  };
  if (base.travel !== undefined) scenario.travel = base.travel;
  if (base.sim !== undefined) scenario.sim = base.sim;
  // A final check (and the sort by (atS, id)); a bad base is reported by its path.
  return { scenario: parseScenario(scenario), report };
}
