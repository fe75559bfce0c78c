// Live KPI figures: the same computeKpis and computeFigures (src/kpi) the replays use, fed
// with the stored events of the incidents reported in the window, plus counts by status and,
// on request, the appraisal figures grouped by unit, department, sub-district (area) or
// incident type, and the on-time % per type week by week (the printable report).
//
// The window: `from` and `to` are ISO 8601 times; none → today (server local midnight) until
// now; only `from` → until now; only `to` → TIME_WINDOW_UNBOUNDED; `to` not after `from` →
// INVALID_TIME_WINDOW; longer than MAX_WINDOW_S → TIME_WINDOW_UNBOUNDED.
//
// Cost: the Store port has no time filter on events, so the events are read per incident
// (one query each) for at most MAX_INCIDENTS incidents of the window (`truncated` says so).

import type { AreaIndex } from '../core/areas.ts';
import type { CatalogIndex } from '../core/catalog.ts';
import { computeKpis, type KpiEvent, type Kpis, scanIncidents } from '../kpi/compute.ts';
import {
  computeFigures,
  type FigureEvent,
  fromStoredEvents,
  type GroupBy,
  type GroupFigures,
  type OnTimeSeries,
  onTimeSeries,
} from '../kpi/figures.ts';
import { percentile } from '../kpi/stats.ts';
import { ApiError } from '../server/errors.ts';
import type { IncidentRecord, Store, StoredEvent, UnitRecord } from '../store/store.ts';
import type { KpiQuery } from './api.ts';
import { invalidField, parseIsoTime } from './errors.ts';
import { iso } from './views.ts';

export const MAX_INCIDENTS = 5000;
/** The longest window (31 days). */
export const MAX_WINDOW_S = 31 * 86_400;

export interface LiveKpis extends Kpis {
  period: { from: string; to: string };
  /** Incidents reported in the period by their current status. */
  byStatus: Record<string, number>;
  /** Share of the period's measured incidents reached within target, in %. */
  onTimePct: number | null;
  /** Present when the period had more incidents than were read. */
  truncated?: boolean;
  /** Appraisal figures over every incident of the window (src/kpi/figures.ts). */
  figures: GroupFigures;
  groupBy?: GroupBy;
  /** The same figures per group. */
  groups?: Record<string, GroupFigures>;
  /** On-time % per incident type, week by week from `from` (with `series`). */
  onTimeByWeek?: OnTimeSeries;
}

export function toKpiEvent(e: StoredEvent): KpiEvent {
  const k: KpiEvent = { t: e.at, kind: e.kind };
  if (e.incidentId !== undefined) k.incidentId = e.incidentId;
  if (e.unitId !== undefined) k.unitId = e.unitId;
  if (typeof e.data.type === 'string') k.type = e.data.type;
  if (typeof e.data.priority === 'number') k.priority = e.data.priority;
  if (typeof e.data.work === 'number') k.work = e.data.work;
  return k;
}

/** The window of a KPI query in epoch seconds (see the header for the rules). */
export function resolveWindow(q: Pick<KpiQuery, 'from' | 'to'>, now: number): { from: number; to: number } {
  if (q.to !== undefined && q.from === undefined) {
    throw new ApiError('TIME_WINDOW_UNBOUNDED', 'a window with an end needs a start: give from as well', {
      field: 'from',
    });
  }
  const to = q.to !== undefined ? parseIsoTime(q.to, 'to') : now;
  let from: number;
  if (q.from !== undefined) from = parseIsoTime(q.from, 'from');
  else {
    const d = new Date(now * 1000);
    d.setHours(0, 0, 0, 0); // today, local time of the server
    from = d.getTime() / 1000;
  }
  if (!(to > from)) {
    throw new ApiError(
      'INVALID_TIME_WINDOW',
      `the window ends (${iso(to)}) before it starts (${iso(from)})`,
      {
        field: 'to',
      },
    );
  }
  if (to - from > MAX_WINDOW_S) {
    throw new ApiError('TIME_WINDOW_UNBOUNDED', `the window may span at most ${MAX_WINDOW_S / 86_400} days`, {
      field: 'from',
    });
  }
  return { from, to };
}

export interface KpiInputs {
  store: Store;
  catalog: CatalogIndex;
  /** For duty routing of incidents reported before routing was recorded. */
  areas?: AreaIndex;
  /** Every unit (departments); those not off duty or out of service make the fleet. */
  units: readonly UnitRecord[];
  from: number;
  to: number;
  groupBy?: KpiQuery['groupBy'];
  /** Add onTimeByWeek. */
  series?: boolean;
  solverMs: readonly number[];
  /** Current time (epoch seconds): open incidents past their target count as late. */
  now: number;
}

/** The incidents reported in [from, to) and their events, as the live figures read them. */
export async function readWindow(
  store: Store,
  from: number,
  to: number,
): Promise<{ incidents: IncidentRecord[]; events: StoredEvent[]; truncated: boolean }> {
  const incidents: IncidentRecord[] = [];
  let truncated = false;
  for (let offset = 0; ; offset += 1000) {
    const page = await store.listIncidents({
      reportedFrom: from,
      reportedTo: to,
      order: 'asc',
      limit: 1000,
      offset,
    });
    incidents.push(...page);
    if (page.length < 1000) break;
    if (incidents.length >= MAX_INCIDENTS) {
      truncated = true;
      break;
    }
  }
  const kept = incidents.slice(0, MAX_INCIDENTS);
  const events: StoredEvent[] = [];
  for (const inc of kept) events.push(...(await store.listEvents({ incidentId: inc.id, limit: 10_000 })));
  return { incidents: kept, events, truncated: truncated || incidents.length > MAX_INCIDENTS };
}

export async function liveKpis(inp: KpiInputs): Promise<LiveKpis> {
  const { store, catalog, from, to } = inp;
  const { incidents, events, truncated } = await readWindow(store, from, to);
  const all = events
    .filter((e) => e.kind !== 'decision')
    .map(toKpiEvent)
    .sort((a, b) => a.t - b.t);
  const inService = inp.units.filter((u) => u.status !== 'off_duty' && u.status !== 'out_of_service');
  const durationS = Math.max(1, to - from);
  const sorted = [...inp.solverMs].sort((a, b) => a - b);
  const base = computeKpis(all, catalog, {
    startT: from,
    durationS,
    unitCount: inService.length,
    timing: { solverMs: sorted, wallMs: 0 },
  });
  delete base.wallMs;
  base.solver.calls = inp.solverMs.length;
  base.solver.p50Ms = round3(percentile(sorted, 50));
  base.solver.p99Ms = round3(percentile(sorted, 99));

  const byStatus: Record<string, number> = {};
  for (const i of incidents) byStatus[i.status] = (byStatus[i.status] ?? 0) + 1;
  // Live on-time share: reached within target, or (not reached and) past its target = late;
  // incidents still inside their target and not reached yet are not measured; cancelled ones neither.
  let onTime = 0;
  let n = 0;
  for (const r of scanIncidents(all).values()) {
    const target = catalog.get(r.type)?.targetS;
    if (target === undefined || r.outcome === 'cancelled') continue;
    if (r.firstOnScene !== null) {
      n++;
      if (r.firstOnScene - r.reportedT <= target) onTime++;
    } else if (inp.now >= r.reportedT + target) n++;
  }

  const fe = figureEvents(events, incidents);
  const figOpts = {
    catalog,
    units: inService.map((u) => ({ id: u.id, department: u.department })),
    departments: new Map(inp.units.map((u) => [u.id, u.department])),
    ...(inp.areas ? { areas: inp.areas } : {}),
    startT: from,
    durationS: to - from,
    asOfT: inp.now,
  };
  const figures = computeFigures(fe, { ...figOpts, ...(inp.groupBy ? { groupBy: inp.groupBy } : {}) });
  const out: LiveKpis = {
    period: { from: iso(from), to: iso(to) },
    byStatus,
    onTimePct: n > 0 ? Math.round((10000 * onTime) / n) / 100 : null,
    ...base,
    figures: figures.all,
  };
  if (truncated) out.truncated = true;
  if (inp.groupBy) {
    out.groupBy = inp.groupBy;
    out.groups = figures.groups ?? {};
  }
  if (inp.series) out.onTimeByWeek = onTimeSeries(fe, figOpts);
  return out;
}

/** Stored events (any order across incidents) → figure events, each incident's in write order. */
export function figureEvents(
  events: readonly StoredEvent[],
  incidents: readonly IncidentRecord[],
): FigureEvent[] {
  const byId = new Map(incidents.map((i) => [i.id, i]));
  return fromStoredEvents(
    [...events].sort((a, b) => a.id - b.id),
    byId,
  );
}

const round3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

/** Checks a groupBy value outside the schema layer (the engine's own callers). */
export function checkGroupBy(v: unknown): GroupBy | undefined {
  if (v === undefined) return undefined;
  if (v === 'unit' || v === 'department' || v === 'area' || v === 'type') return v;
  throw invalidField('groupBy', 'must be unit, department, area or type');
}
