// The KPI object (../../../shared/PRODUCT.md "KPI object"), computed from the event log
// alone — plus the catalogue (targets, immediate list), the period and the number of units —
// so that replays and the live engine report the same figures with the same code. Pure.
//
// Clock: only differences of `t` and `startT` are used, so the log's times may be scenario
// seconds (startT 0) or epoch seconds (startT = the epoch second of the period's start).
//
// Definitions:
//   incidents.total      `reported` records; served = with ≥ 1 `on_scene`; cancelled =
//                        `cancelled`; unserved = `unserved`; open = none of these yet (live).
//   response             first `on_scene` t − `reported` t of a served incident, seconds.
//   responseS            p50 / p90 (nearest rank, see stats.ts) and mean over served incidents.
//   priorityWeightedMeanResponseS
//                        Σ w·response / Σ w over served incidents, w = PRIORITY_WEIGHT of the
//                        incident's effective priority (the `reported` record's priority).
//   byType[T]            count = reported of type T; served; p50/p90 over its served ones;
//                        onTimePct = served within the type's targetS ÷ (served + unserved) of
//                        the type — an incident never reached counts as late, a cancelled one
//                        is left out. Null where there is nothing to measure.
//   immediate            the same over every type on the catalogue's immediate-response list.
//   units.utilisationPct busy unit-seconds ÷ (units × durationS) × 100, busy = from `assigned`
//                        until `cleared` / `released` / `declined` / `ack_timeout` (a pre-emption
//                        hands the unit straight to its next incident and stays busy), clipped to
//                        [startT, startT + durationS]; the drive home after clearing is not busy.
//   solver.calls         `decision` records (deterministic; the core's work units stay in the
//                        records: they depend on solver internals, not on behaviour).
//   solver.p50Ms/p99Ms, wallMs
//                        wall-clock figures, only when `timing` is given: they differ between
//                        runs, so byte-identical outputs leave them out.
// Seconds are rounded to 0.1 s, percentages to 0.01, milliseconds to 0.001.

import type { CatalogIndex } from '../core/catalog.ts';
import { PRIORITY_WEIGHT } from '../core/objective.ts';
import type { Priority } from '../core/types.ts';
import { mean, percentileSorted, round } from './stats.ts';

/** The fields of an event record the KPIs read (the replay's SimEvent fits). */
export interface KpiEvent {
  t: number;
  kind: string;
  incidentId?: string;
  unitId?: string;
  type?: string;
  priority?: number;
  /** The core's work units of a `decision` record (carried through; no KPI uses it). */
  work?: number;
}

export interface KpiOptions {
  /** Period start on the log's clock (0 for scenario seconds). */
  startT?: number;
  /** Period length, seconds (the scenario's durationS). */
  durationS: number;
  /** Units in service during the period. */
  unitCount: number;
  /** Wall-clock figures to include (non-deterministic). */
  timing?: { solverMs: readonly number[]; wallMs: number };
}

export interface ResponseStats {
  p50: number | null;
  p90: number | null;
  mean: number | null;
}

export interface TypeKpis {
  count: number;
  served: number;
  p50: number | null;
  p90: number | null;
  onTimePct: number | null;
}

export interface Kpis {
  incidents: { total: number; served: number; unserved: number; cancelled: number; open: number };
  responseS: ResponseStats;
  priorityWeightedMeanResponseS: number | null;
  byType: Record<string, TypeKpis>;
  immediate: TypeKpis;
  units: { count: number; utilisationPct: number | null };
  solver: { calls: number; p50Ms?: number | null; p99Ms?: number | null };
  wallMs?: number;
}

interface IncRec {
  type: string;
  priority: number;
  reportedT: number;
  firstOnScene: number | null;
  outcome: 'open' | 'cancelled' | 'unserved';
}

/** Per-incident facts the KPIs and the report's series share. */
export function scanIncidents(events: readonly KpiEvent[]): Map<string, IncRec> {
  const incs = new Map<string, IncRec>();
  for (const e of events) {
    if (!e.incidentId) continue;
    if (e.kind === 'reported') {
      incs.set(e.incidentId, {
        type: e.type ?? '',
        priority: e.priority ?? 4,
        reportedT: e.t,
        firstOnScene: null,
        outcome: 'open',
      });
      continue;
    }
    const r = incs.get(e.incidentId);
    if (!r) continue;
    if (e.kind === 'on_scene' && r.firstOnScene === null) r.firstOnScene = e.t;
    else if (e.kind === 'cancelled' && r.firstOnScene === null) r.outcome = 'cancelled';
    else if (e.kind === 'unserved' && r.firstOnScene === null) r.outcome = 'unserved';
  }
  return incs;
}

function typeKpis(recs: IncRec[], targetOf: (type: string) => number | undefined): TypeKpis {
  const responses: number[] = [];
  let onTime = 0;
  let measured = 0;
  for (const r of recs) {
    const target = targetOf(r.type);
    if (r.firstOnScene !== null) {
      const resp = r.firstOnScene - r.reportedT;
      responses.push(resp);
      measured++;
      if (target !== undefined && resp <= target) onTime++;
    } else if (r.outcome === 'unserved') measured++;
  }
  responses.sort((a, b) => a - b);
  const anyTarget = recs.some((r) => targetOf(r.type) !== undefined);
  return {
    count: recs.length,
    served: responses.length,
    p50: round(percentileSorted(responses, 50), 1),
    p90: round(percentileSorted(responses, 90), 1),
    onTimePct: measured > 0 && anyTarget ? round((100 * onTime) / measured, 2) : null,
  };
}

/** Busy unit-seconds within [lo, hi] (see the header for what counts as busy). */
export function busySeconds(events: readonly KpiEvent[], lo: number, hi: number): number {
  const since = new Map<string, number>();
  let busy = 0;
  const add = (a: number, b: number) => {
    const x = Math.max(a, lo);
    const y = Math.min(b, hi);
    if (y > x) busy += y - x;
  };
  for (const e of events) {
    if (!e.unitId) continue;
    switch (e.kind) {
      case 'assigned':
        if (!since.has(e.unitId)) since.set(e.unitId, e.t);
        break;
      case 'cleared':
      case 'released':
      case 'declined':
      case 'ack_timeout': {
        const s = since.get(e.unitId);
        if (s !== undefined) {
          add(s, e.t);
          since.delete(e.unitId);
        }
        break;
      }
    }
  }
  for (const s of since.values()) add(s, hi);
  return busy;
}

export function computeKpis(events: readonly KpiEvent[], catalog: CatalogIndex, opts: KpiOptions): Kpis {
  const startT = opts.startT ?? 0;
  const incs = scanIncidents(events);
  const all = [...incs.values()];
  const targetOf = (type: string) => catalog.get(type)?.targetS;

  let served = 0;
  let unserved = 0;
  let cancelled = 0;
  const responses: number[] = [];
  let wSum = 0;
  let wResp = 0;
  for (const r of all) {
    if (r.firstOnScene !== null) {
      served++;
      const resp = r.firstOnScene - r.reportedT;
      responses.push(resp);
      const w = PRIORITY_WEIGHT[r.priority as Priority] ?? 1;
      wSum += w;
      wResp += w * resp;
    } else if (r.outcome === 'cancelled') cancelled++;
    else if (r.outcome === 'unserved') unserved++;
  }
  responses.sort((a, b) => a - b);

  // byType in catalogue order, then any type the catalogue does not know, sorted.
  const groups = new Map<string, IncRec[]>();
  for (const t of catalog.list) groups.set(t.type, []);
  for (const r of all) {
    let g = groups.get(r.type);
    if (!g) {
      g = [];
      groups.set(r.type, g);
    }
    g.push(r);
  }
  const known = new Set(catalog.list.map((t) => t.type));
  const order = [
    ...catalog.list.map((t) => t.type),
    ...[...groups.keys()].filter((k) => !known.has(k)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
  ];
  const byType: Record<string, TypeKpis> = {};
  for (const type of order) {
    const g = groups.get(type)!;
    if (g.length > 0) byType[type] = typeKpis(g, targetOf);
  }
  const immediateTypes = new Set(catalog.immediateTypes);
  const immediate = typeKpis(
    all.filter((r) => immediateTypes.has(r.type)),
    targetOf,
  );

  let calls = 0;
  for (const e of events) if (e.kind === 'decision') calls++;

  const capacity = opts.unitCount * opts.durationS;
  const busy = busySeconds(events, startT, startT + opts.durationS);

  const kpis: Kpis = {
    incidents: {
      total: all.length,
      served,
      unserved,
      cancelled,
      open: all.length - served - unserved - cancelled,
    },
    responseS: {
      p50: round(percentileSorted(responses, 50), 1),
      p90: round(percentileSorted(responses, 90), 1),
      mean: round(mean(responses), 1),
    },
    priorityWeightedMeanResponseS: wSum > 0 ? round(wResp / wSum, 1) : null,
    byType,
    immediate,
    units: { count: opts.unitCount, utilisationPct: capacity > 0 ? round((100 * busy) / capacity, 2) : null },
    solver: { calls },
  };
  if (opts.timing) {
    const sorted = [...opts.timing.solverMs].sort((a, b) => a - b);
    kpis.solver.p50Ms = round(percentileSorted(sorted, 50), 3);
    kpis.solver.p99Ms = round(percentileSorted(sorted, 99), 3);
    kpis.wallMs = Math.round(opts.timing.wallMs);
  }
  return kpis;
}
