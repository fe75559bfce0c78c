// Live KPI figures: the same computeKpis (src/kpi) the replays use, fed with the stored
// events of the incidents reported in the period, plus counts by status and, on request, a
// breakdown by unit, department, area or type.
//
// Cost: the Store port has no time filter on events, so the events are read per incident
// (one query each) for at most MAX_INCIDENTS incidents of the period.

import type { CatalogIndex } from '../core/catalog.ts';
import { computeKpis, type KpiEvent, type Kpis, scanIncidents } from '../kpi/compute.ts';
import { percentile } from '../kpi/stats.ts';
import type { IncidentRecord, Store, StoredEvent, UnitRecord } from '../store/store.ts';
import type { KpiQuery } from './api.ts';
import { iso } from './views.ts';

export const MAX_INCIDENTS = 5000;

export interface UnitFigures {
  assigned: number;
  declined: number;
  ackTimeouts: number;
  onScene: number;
  cleared: number;
  /** Mean seconds from offer to this unit's arrival, over its arrivals. */
  meanArrivalS: number | null;
}

export interface LiveKpis extends Kpis {
  period: { from: string; to: string };
  /** Incidents reported in the period by their current status. */
  byStatus: Record<string, number>;
  /** Share of today's (the period's) measured incidents reached within target, in %. */
  onTimePct: number | null;
  /** Present when the period had more incidents than were read. */
  truncated?: boolean;
  groupBy?: KpiQuery['groupBy'];
  groups?: Record<string, Kpis | UnitFigures>;
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

export interface KpiInputs {
  store: Store;
  catalog: CatalogIndex;
  units: readonly UnitRecord[];
  from: number;
  to: number;
  groupBy?: KpiQuery['groupBy'];
  solverMs: readonly number[];
  /** Current time (epoch seconds): open incidents past their target count as late. */
  now: number;
}

export async function liveKpis(inp: KpiInputs): Promise<LiveKpis> {
  const { store, catalog, from, to } = inp;
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
  const eventsByIncident = new Map<string, KpiEvent[]>();
  for (const inc of incidents.slice(0, MAX_INCIDENTS)) {
    const evs = await store.listEvents({ incidentId: inc.id, limit: 10_000 });
    eventsByIncident.set(inc.id, evs.filter((e) => e.kind !== 'decision').map(toKpiEvent));
  }
  const all = [...eventsByIncident.values()].flat().sort((a, b) => a.t - b.t);
  const inService = inp.units.filter((u) => u.status !== 'off_duty' && u.status !== 'out_of_service').length;
  const durationS = Math.max(1, to - from);
  const sorted = [...inp.solverMs].sort((a, b) => a - b);
  const base = computeKpis(all, catalog, {
    startT: from,
    durationS,
    unitCount: inService,
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
  const out: LiveKpis = {
    period: { from: iso(from), to: iso(to) },
    byStatus,
    onTimePct: n > 0 ? Math.round((10000 * onTime) / n) / 100 : null,
    ...base,
  };
  if (truncated) out.truncated = true;
  if (inp.groupBy) {
    out.groupBy = inp.groupBy;
    out.groups = groups(inp, incidents, eventsByIncident, durationS, inService);
  }
  return out;
}

const round3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

function groups(
  inp: KpiInputs,
  incidents: IncidentRecord[],
  eventsByIncident: Map<string, KpiEvent[]>,
  durationS: number,
  unitCount: number,
): Record<string, Kpis | UnitFigures> {
  const out: Record<string, Kpis | UnitFigures> = {};
  if (inp.groupBy === 'type' || inp.groupBy === 'area') {
    const by = new Map<string, KpiEvent[]>();
    for (const inc of incidents) {
      const key = inp.groupBy === 'type' ? inc.type : (inc.area ?? 'unplaced');
      const list = by.get(key) ?? [];
      list.push(...(eventsByIncident.get(inc.id) ?? []));
      by.set(key, list);
    }
    for (const [key, evs] of by) {
      evs.sort((a, b) => a.t - b.t);
      const k = computeKpis(evs, inp.catalog, { startT: inp.from, durationS, unitCount });
      out[key] = k;
    }
    return out;
  }
  // unit / department: per-unit figures from the assignment events.
  const figures = new Map<string, UnitFigures & { arrivals: number[]; offeredAt: Map<string, number> }>();
  const fig = (unitId: string) => {
    let f = figures.get(unitId);
    if (!f) {
      f = {
        assigned: 0,
        declined: 0,
        ackTimeouts: 0,
        onScene: 0,
        cleared: 0,
        meanArrivalS: null,
        arrivals: [],
        offeredAt: new Map(),
      };
      figures.set(unitId, f);
    }
    return f;
  };
  for (const evs of eventsByIncident.values()) {
    for (const e of evs) {
      if (!e.unitId || !e.incidentId) continue;
      const f = fig(e.unitId);
      if (e.kind === 'assigned') {
        f.assigned++;
        f.offeredAt.set(e.incidentId, e.t);
      } else if (e.kind === 'declined') f.declined++;
      else if (e.kind === 'ack_timeout') f.ackTimeouts++;
      else if (e.kind === 'cleared') f.cleared++;
      else if (e.kind === 'on_scene') {
        f.onScene++;
        const t0 = f.offeredAt.get(e.incidentId);
        if (t0 !== undefined) f.arrivals.push(e.t - t0);
      }
    }
  }
  const deptOf = new Map(inp.units.map((u) => [u.id, u.department]));
  const merged = new Map<string, UnitFigures & { arrivals: number[] }>();
  for (const [unitId, f] of figures) {
    const key = inp.groupBy === 'department' ? (deptOf.get(unitId) ?? 'unknown') : unitId;
    const m = merged.get(key) ?? {
      assigned: 0,
      declined: 0,
      ackTimeouts: 0,
      onScene: 0,
      cleared: 0,
      meanArrivalS: null,
      arrivals: [],
    };
    m.assigned += f.assigned;
    m.declined += f.declined;
    m.ackTimeouts += f.ackTimeouts;
    m.onScene += f.onScene;
    m.cleared += f.cleared;
    m.arrivals.push(...f.arrivals);
    merged.set(key, m);
  }
  for (const [key, m] of merged) {
    const { arrivals, ...rest } = m;
    rest.meanArrivalS =
      arrivals.length > 0
        ? Math.round((10 * arrivals.reduce((s, x) => s + x, 0)) / arrivals.length) / 10
        : null;
    out[key] = rest;
  }
  return out;
}
