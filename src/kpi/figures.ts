// Appraisal figures per unit, department, sub-district or incident type over a time window,
// computed from the event log alone (plus the catalogue, the units' departments and the
// areas for duty routing). One piece of code for both clocks: a replay's `events.ndjson`
// (fromSimEvents) and the live store's events (fromStoredEvents) are mapped to the same
// FigureEvent records first, so a planner's figures and the live ones agree to the digit.
// Pure, deterministic.
//
// Time. Every instant is turned into whole milliseconds from the window start before any
// arithmetic (replay seconds and epoch seconds both carry millisecond precision), so sums,
// differences and percentiles are exact integers on either clock.
//
// Which incidents: those `reported` in [start, start + duration); all their events count,
// even after the window (an incident reported at 23:59 is measured to its arrival).
//
// Segments (each p50 / p90, nearest rank, seconds to 0.1; n = samples):
//   processing  report → first assignment (offer) of the incident
//   turnout     an assignment's offer → its en route
//   travel      an assignment's en route → its on scene
//   onScene     an assignment's on scene → its clearing
//   response    report → first unit on scene
// On time: an incident reached within its type's targetS is on time; one never reached, not
// cancelled, whose target passed before `asOf` is late; the rest are not measured yet.
// `immediate` is the same over the types of the catalogue's immediate-response list.
// nonResponses = offers that timed out (`ack_timeout`); declines, also by reason;
// preemptions = assignments taken away for immediate work; reassignments = offers of an
// incident made after one of its assignments ended before arrival (declined, timed out,
// pre-empted, released) — paired first in, first out, so a release at cancellation (no offer
// follows) is not one. Utilisation = busy unit time (offer → clearing / release / decline /
// timeout / pre-emption) on these incidents, clipped to the window, ÷ (units × window).
// routing counts the incidents by duty level (immediate list, a sub-district's list, district).
//
// Groups. By `type` and `area` (sub-district; `unplaced` outside every one) each incident and
// all its assignments fall in one group; utilisation is then the share of the whole fleet's
// time spent on the group's incidents. By `unit` and `department` each assignment falls in
// its unit's group; the incident-level figures are the group's own: processing = report → the
// group's first offer at the incident, response = report → the group's first arrival, on time
// over the incidents the group reached; utilisation is over the group's units.

import type { AreaIndex } from '../core/areas.ts';
import type { CatalogIndex } from '../core/catalog.ts';
import { type DutyLevel, ownedTypes, readDutyRoute, routeDuty } from '../core/duties.ts';
import type { SimEvent } from '../sim/events.ts';
import type { IncidentRecord, StoredEvent } from '../store/store.ts';
import { percentileSorted, round } from './stats.ts';

export type GroupBy = 'unit' | 'department' | 'area' | 'type';
export const GROUP_BYS: readonly GroupBy[] = ['unit', 'department', 'area', 'type'];

/** The fields of an event the figures read. */
export interface FigureEvent {
  t: number;
  kind: string;
  incidentId?: string;
  unitId?: string;
  /** reported */
  type?: string;
  priority?: number;
  area?: string;
  cell?: string;
  /** reported: the routing recorded at intake (live), else computed. */
  duty?: DutyLevel;
  /** declined */
  reason?: string;
}

const UNIT_KINDS = new Set([
  'assigned',
  'en_route',
  'on_scene',
  'cleared',
  'declined',
  'ack_timeout',
  'preempted',
  'released',
]);

/** A replay's records (events.ndjson) as figure events. */
export function fromSimEvents(events: readonly SimEvent[]): FigureEvent[] {
  const out: FigureEvent[] = [];
  for (const e of events) {
    if (e.kind === 'reported') {
      const f: FigureEvent = {
        t: e.t,
        kind: e.kind,
        incidentId: e.incidentId,
        type: e.type,
        priority: e.priority,
      };
      if (e.area !== undefined) f.area = e.area;
      if (e.cell !== undefined) f.cell = e.cell;
      out.push(f);
    } else if (e.kind === 'cancelled') {
      out.push({ t: e.t, kind: e.kind, incidentId: e.incidentId });
    } else if (UNIT_KINDS.has(e.kind) && 'unitId' in e && 'incidentId' in e) {
      const f: FigureEvent = { t: e.t, kind: e.kind, incidentId: e.incidentId, unitId: e.unitId };
      if (e.kind === 'declined') f.reason = e.reason;
      out.push(f);
    }
  }
  return out;
}

/**
 * The live store's events as figure events. Incident-status events (no unit) are dropped but
 * for `cancelled`; an assignment cancelled without a `released` kind counts as released. The
 * incident records give the `reported` record its area, cell and recorded duty route.
 */
export function fromStoredEvents(
  events: readonly StoredEvent[],
  incidents: ReadonlyMap<string, IncidentRecord>,
): FigureEvent[] {
  const out: FigureEvent[] = [];
  for (const e of events) {
    if (!e.incidentId) continue;
    if (e.kind === 'reported') {
      const inc = incidents.get(e.incidentId);
      const f: FigureEvent = { t: e.at, kind: 'reported', incidentId: e.incidentId };
      const type = typeof e.data.type === 'string' ? e.data.type : inc?.type;
      if (type !== undefined) f.type = type;
      const priority = typeof e.data.priority === 'number' ? e.data.priority : inc?.priority;
      if (priority !== undefined) f.priority = priority;
      if (inc?.area !== undefined) f.area = inc.area;
      if (inc?.cell !== undefined) f.cell = inc.cell;
      const duty = readDutyRoute(e.data.duty) ?? readDutyRoute(inc?.payload.duty);
      if (duty) f.duty = duty.level;
      out.push(f);
      continue;
    }
    if (e.unitId === undefined) {
      if (e.kind === 'cancelled') out.push({ t: e.at, kind: 'cancelled', incidentId: e.incidentId });
      continue;
    }
    const kind = e.kind === 'assignment_cancelled' ? 'released' : e.kind;
    if (!UNIT_KINDS.has(kind)) continue;
    const f: FigureEvent = { t: e.at, kind, incidentId: e.incidentId, unitId: e.unitId };
    if (kind === 'declined' && typeof e.data.reason === 'string') f.reason = e.data.reason;
    out.push(f);
  }
  return out;
}

export interface SegmentStats {
  n: number;
  p50: number | null;
  p90: number | null;
}

export interface OnTime {
  /** Incidents reached, or late past their target. */
  measured: number;
  onTime: number;
  pct: number | null;
}

export interface GroupFigures {
  incidents: number;
  segments: {
    processing: SegmentStats;
    turnout: SegmentStats;
    travel: SegmentStats;
    onScene: SegmentStats;
    response: SegmentStats;
  };
  onTime: OnTime;
  immediate: OnTime & { incidents: number };
  nonResponses: number;
  declines: number;
  declinesByReason: Record<string, number>;
  reassignments: number;
  preemptions: number;
  /** Units in the group (unit / department), or the whole fleet. */
  units: number;
  busyS: number;
  utilisationPct: number | null;
  routing: Record<DutyLevel, number>;
}

export interface Figures {
  /** Window on the log's clock. */
  startT: number;
  durationS: number;
  groupBy?: GroupBy;
  all: GroupFigures;
  groups?: Record<string, GroupFigures>;
}

export interface FigureOptions {
  catalog: CatalogIndex;
  /** Units of the fleet (in service over the window) and their departments. */
  units: readonly { id: string; department: string }[];
  /** Departments of units outside that list (off duty now, but working in the window). */
  departments?: ReadonlyMap<string, string>;
  /** For duty routing of incidents with no recorded route. */
  areas?: AreaIndex;
  /** Window start on the log's clock (0 for a replay, epoch seconds live). */
  startT: number;
  durationS: number;
  /** Figures as of this instant (log clock): unreached incidents past target by then are late. */
  asOfT: number;
  groupBy?: GroupBy;
}

// ---------------------------------------------------------------- per-incident scan

interface Asg {
  unitId: string;
  incidentId: string;
  assignedMs: number;
  enRouteMs?: number;
  onSceneMs?: number;
  clearedMs?: number;
  endMs?: number;
  endKind?: string;
  /** Ended before arrival and the incident was offered again afterwards. */
  reassigned: boolean;
  reason?: string;
}

interface Inc {
  id: string;
  type: string;
  reportedMs: number;
  area?: string;
  cell?: string;
  duty?: DutyLevel;
  firstAssignedMs?: number;
  firstOnSceneMs?: number;
  cancelled: boolean;
  assignments: Asg[];
}

function scan(events: readonly FigureEvent[], startT: number, endMs: number): Inc[] {
  const ms = (t: number) => Math.round((t - startT) * 1000);
  const byInc = new Map<string, FigureEvent[]>();
  for (const e of events) {
    if (!e.incidentId) continue;
    let l = byInc.get(e.incidentId);
    if (!l) {
      l = [];
      byInc.set(e.incidentId, l);
    }
    l.push(e);
  }
  const out: Inc[] = [];
  for (const [id, evs] of byInc) {
    const rep = evs.find((e) => e.kind === 'reported');
    if (!rep) continue;
    const reportedMs = ms(rep.t);
    if (reportedMs < 0 || reportedMs >= endMs) continue;
    const inc: Inc = { id, type: rep.type ?? '', reportedMs, cancelled: false, assignments: [] };
    if (rep.area !== undefined) inc.area = rep.area;
    if (rep.cell !== undefined) inc.cell = rep.cell;
    if (rep.duty !== undefined) inc.duty = rep.duty;
    const open = new Map<string, Asg>();
    const lost: Asg[] = [];
    for (const e of evs) {
      const t = ms(e.t);
      if (e.kind === 'cancelled') {
        inc.cancelled = inc.firstOnSceneMs === undefined;
        continue;
      }
      if (!e.unitId) continue;
      if (e.kind === 'assigned') {
        const prev = lost.shift();
        if (prev) prev.reassigned = true;
        const a: Asg = { unitId: e.unitId, incidentId: id, assignedMs: t, reassigned: false };
        inc.assignments.push(a);
        open.set(e.unitId, a);
        if (inc.firstAssignedMs === undefined) inc.firstAssignedMs = t;
        continue;
      }
      const a = open.get(e.unitId);
      if (!a) continue;
      switch (e.kind) {
        case 'en_route':
          a.enRouteMs ??= t;
          break;
        case 'on_scene':
          a.onSceneMs ??= t;
          if (inc.firstOnSceneMs === undefined) inc.firstOnSceneMs = t;
          break;
        case 'cleared':
          a.clearedMs = t;
          a.endMs = t;
          a.endKind = e.kind;
          open.delete(e.unitId);
          break;
        case 'declined':
        case 'ack_timeout':
        case 'preempted':
        case 'released':
          a.endMs = t;
          a.endKind = e.kind;
          if (e.kind === 'declined' && e.reason !== undefined) a.reason = e.reason;
          open.delete(e.unitId);
          if (a.onSceneMs === undefined) lost.push(a);
          break;
      }
    }
    out.push(inc);
  }
  return out;
}

// ---------------------------------------------------------------- accumulation

class Acc {
  readonly incidents = new Set<string>();
  readonly processing: number[] = [];
  readonly turnout: number[] = [];
  readonly travel: number[] = [];
  readonly onScene: number[] = [];
  readonly response: number[] = [];
  onTime = { measured: 0, onTime: 0 };
  immediate = { incidents: 0, measured: 0, onTime: 0 };
  nonResponses = 0;
  declines = 0;
  readonly reasons = new Map<string, number>();
  reassignments = 0;
  preemptions = 0;
  busyMs = 0;
  readonly routing: Record<DutyLevel, number> = { immediate: 0, area: 0, district: 0 };

  assignment(a: Asg, lo: number, hi: number): void {
    if (a.enRouteMs !== undefined) this.turnout.push(a.enRouteMs - a.assignedMs);
    if (a.enRouteMs !== undefined && a.onSceneMs !== undefined) this.travel.push(a.onSceneMs - a.enRouteMs);
    if (a.onSceneMs !== undefined && a.clearedMs !== undefined) this.onScene.push(a.clearedMs - a.onSceneMs);
    if (a.endKind === 'ack_timeout') this.nonResponses++;
    if (a.endKind === 'declined') {
      this.declines++;
      const r = a.reason ?? '(no reason)';
      this.reasons.set(r, (this.reasons.get(r) ?? 0) + 1);
    }
    if (a.endKind === 'preempted') this.preemptions++;
    if (a.reassigned) this.reassignments++;
    const x = Math.max(a.assignedMs, lo);
    const y = Math.min(a.endMs ?? hi, hi);
    if (y > x) this.busyMs += y - x;
  }

  /** Incident-level figures: first offer and first arrival as this group sees them. */
  incident(
    inc: Inc,
    firstAssignedMs: number | undefined,
    firstOnSceneMs: number | undefined,
    targetMs: number | undefined,
    immediate: boolean,
    duty: DutyLevel,
    asOfMs: number,
    countLate: boolean,
  ): void {
    this.incidents.add(inc.id);
    this.routing[duty]++;
    if (immediate) this.immediate.incidents++;
    if (firstAssignedMs !== undefined) this.processing.push(firstAssignedMs - inc.reportedMs);
    let measured = false;
    let onTime = false;
    if (firstOnSceneMs !== undefined) {
      const resp = firstOnSceneMs - inc.reportedMs;
      this.response.push(resp);
      if (targetMs !== undefined) {
        measured = true;
        onTime = resp <= targetMs;
      }
    } else if (countLate && targetMs !== undefined && !inc.cancelled && inc.reportedMs + targetMs <= asOfMs) {
      measured = true;
    }
    if (measured) {
      this.onTime.measured++;
      if (onTime) this.onTime.onTime++;
      if (immediate) {
        this.immediate.measured++;
        if (onTime) this.immediate.onTime++;
      }
    }
  }

  finish(units: number, durationMs: number): GroupFigures {
    const declinesByReason: Record<string, number> = {};
    for (const r of [...this.reasons.keys()].sort()) declinesByReason[r] = this.reasons.get(r)!;
    const cap = units * durationMs;
    return {
      incidents: this.incidents.size,
      segments: {
        processing: seg(this.processing),
        turnout: seg(this.turnout),
        travel: seg(this.travel),
        onScene: seg(this.onScene),
        response: seg(this.response),
      },
      onTime: { ...this.onTime, pct: pct(this.onTime.onTime, this.onTime.measured) },
      immediate: { ...this.immediate, pct: pct(this.immediate.onTime, this.immediate.measured) },
      nonResponses: this.nonResponses,
      declines: this.declines,
      declinesByReason,
      reassignments: this.reassignments,
      preemptions: this.preemptions,
      units,
      busyS: this.busyMs / 1000,
      utilisationPct: cap > 0 ? round((100 * this.busyMs) / cap, 2) : null,
      routing: { ...this.routing },
    };
  }
}

function seg(samplesMs: number[]): SegmentStats {
  const s = [...samplesMs].sort((a, b) => a - b);
  const p = (q: number) => {
    const v = percentileSorted(s, q);
    return v === null ? null : Math.round(v / 100) / 10;
  };
  return { n: s.length, p50: p(50), p90: p(90) };
}

const pct = (k: number, n: number) => (n > 0 ? round((100 * k) / n, 2) : null);

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------- the figures

export function computeFigures(events: readonly FigureEvent[], opts: FigureOptions): Figures {
  const durationMs = Math.round(opts.durationS * 1000);
  const asOfMs = Math.round((opts.asOfT - opts.startT) * 1000);
  const hi = Math.min(durationMs, Math.max(0, asOfMs));
  const incs = scan(events, opts.startT, durationMs);
  const owned = ownedTypes(opts.areas);
  const targetMs = (type: string) => {
    const t = opts.catalog.get(type)?.targetS;
    return t === undefined ? undefined : Math.round(t * 1000);
  };
  const immediateTypes = new Set(opts.catalog.immediateTypes);
  const dutyOf = (inc: Inc): DutyLevel =>
    inc.duty ??
    routeDuty(
      inc.type,
      {
        ...(inc.area !== undefined ? { area: inc.area } : {}),
        ...(inc.cell !== undefined ? { cell: inc.cell } : {}),
      },
      opts.catalog,
      opts.areas,
      owned,
    ).level;
  const deptOf = new Map(opts.units.map((u) => [u.id, u.department]));
  const fleet = new Set(opts.units.map((u) => u.id));
  for (const inc of incs) for (const a of inc.assignments) fleet.add(a.unitId);

  const all = new Acc();
  for (const inc of incs) {
    const imm = immediateTypes.has(inc.type);
    all.incident(
      inc,
      inc.firstAssignedMs,
      inc.firstOnSceneMs,
      targetMs(inc.type),
      imm,
      dutyOf(inc),
      asOfMs,
      true,
    );
    for (const a of inc.assignments) all.assignment(a, 0, hi);
  }
  const out: Figures = {
    startT: opts.startT,
    durationS: opts.durationS,
    all: all.finish(fleet.size, durationMs),
  };
  if (!opts.groupBy) return out;
  out.groupBy = opts.groupBy;
  const accs = new Map<string, Acc>();
  const acc = (k: string) => {
    let a = accs.get(k);
    if (!a) {
      a = new Acc();
      accs.set(k, a);
    }
    return a;
  };
  const unitsIn = new Map<string, number>();
  if (opts.groupBy === 'type' || opts.groupBy === 'area') {
    for (const inc of incs) {
      const k = opts.groupBy === 'type' ? inc.type : (inc.area ?? 'unplaced');
      const g = acc(k);
      g.incident(
        inc,
        inc.firstAssignedMs,
        inc.firstOnSceneMs,
        targetMs(inc.type),
        immediateTypes.has(inc.type),
        dutyOf(inc),
        asOfMs,
        true,
      );
      for (const a of inc.assignments) g.assignment(a, 0, hi);
      unitsIn.set(k, fleet.size);
    }
  } else {
    const keyOf = (unitId: string) =>
      opts.groupBy === 'unit' ? unitId : (deptOf.get(unitId) ?? opts.departments?.get(unitId) ?? 'unknown');
    for (const u of fleet) {
      const k = keyOf(u);
      unitsIn.set(k, (unitsIn.get(k) ?? 0) + 1);
    }
    for (const inc of incs) {
      const firsts = new Map<string, { assigned?: number; onScene?: number }>();
      for (const a of inc.assignments) {
        const k = keyOf(a.unitId);
        acc(k).assignment(a, 0, hi);
        const f = firsts.get(k) ?? {};
        if (f.assigned === undefined || a.assignedMs < f.assigned) f.assigned = a.assignedMs;
        if (a.onSceneMs !== undefined && (f.onScene === undefined || a.onSceneMs < f.onScene))
          f.onScene = a.onSceneMs;
        firsts.set(k, f);
      }
      for (const [k, f] of firsts) {
        acc(k).incident(
          inc,
          f.assigned,
          f.onScene,
          targetMs(inc.type),
          immediateTypes.has(inc.type),
          dutyOf(inc),
          asOfMs,
          false,
        );
      }
    }
  }
  const groups: Record<string, GroupFigures> = {};
  for (const k of [...accs.keys()].sort(byKey))
    groups[k] = accs.get(k)!.finish(unitsIn.get(k) ?? 0, durationMs);
  out.groups = groups;
  return out;
}

// ---------------------------------------------------------------- on time over the weeks

export interface OnTimeSeries {
  /** Bucket starts, seconds from the window start. */
  t: number[];
  bucketS: number;
  /** Per type (catalogue order), the on-time % per bucket (null: nothing measured). */
  byType: Record<string, (number | null)[]>;
  /** The immediate-response list per bucket. */
  immediate: (number | null)[];
}

/** On-time % per incident type per bucket (default one week) of report time. */
export function onTimeSeries(
  events: readonly FigureEvent[],
  opts: Omit<FigureOptions, 'groupBy' | 'units'> & { bucketS?: number },
): OnTimeSeries {
  const bucketS = opts.bucketS ?? 7 * 86_400;
  const durationMs = Math.round(opts.durationS * 1000);
  const n = Math.max(1, Math.ceil(opts.durationS / bucketS));
  const asOfMs = Math.round((opts.asOfT - opts.startT) * 1000);
  const incs = scan(events, opts.startT, durationMs);
  const immediateTypes = new Set(opts.catalog.immediateTypes);
  const cells = new Map<string, { measured: number; onTime: number }[]>();
  const imm = Array.from({ length: n }, () => ({ measured: 0, onTime: 0 }));
  for (const inc of incs) {
    const target = opts.catalog.get(inc.type)?.targetS;
    if (target === undefined) continue;
    const tMs = Math.round(target * 1000);
    let measured = false;
    let onTime = false;
    if (inc.firstOnSceneMs !== undefined) {
      measured = true;
      onTime = inc.firstOnSceneMs - inc.reportedMs <= tMs;
    } else if (!inc.cancelled && inc.reportedMs + tMs <= asOfMs) measured = true;
    if (!measured) continue;
    const b = Math.min(n - 1, Math.floor(inc.reportedMs / (bucketS * 1000)));
    let row = cells.get(inc.type);
    if (!row) {
      row = Array.from({ length: n }, () => ({ measured: 0, onTime: 0 }));
      cells.set(inc.type, row);
    }
    row[b].measured++;
    if (onTime) row[b].onTime++;
    if (immediateTypes.has(inc.type)) {
      imm[b].measured++;
      if (onTime) imm[b].onTime++;
    }
  }
  const byType: Record<string, (number | null)[]> = {};
  const known = opts.catalog.list.map((t) => t.type);
  const order = [...known, ...[...cells.keys()].filter((k) => !known.includes(k)).sort(byKey)];
  for (const type of order) {
    const row = cells.get(type);
    if (row) byType[type] = row.map((c) => pct(c.onTime, c.measured));
  }
  return {
    t: Array.from({ length: n }, (_, i) => i * bucketS),
    bucketS,
    byType,
    immediate: imm.map((c) => pct(c.onTime, c.measured)),
  };
}
