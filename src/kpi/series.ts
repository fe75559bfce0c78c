// Time series for the report, from the event log alone (plus the catalogue and the period),
// like the KPIs. Each series is a time-weighted mean per bucket of `bucketS` seconds:
//   busyUnits  units busy (offered / en route / on scene — see compute.ts), and the same as
//              a percentage of the units in service;
//   waiting    incidents with at least one unfilled slot (reported, not yet resolved,
//              cancelled or unserved, and fewer units committed than their package needs;
//              a unit counts as committed from `assigned` until `declined` / `ack_timeout` /
//              `preempted`).

import type { CatalogIndex } from '../core/catalog.ts';
import { type KpiEvent, scanIncidents } from './compute.ts';

export interface SeriesOptions {
  startT?: number;
  durationS: number;
  unitCount: number;
  /** Bucket length; default: the duration split into about 96 buckets, a multiple of 60 s. */
  bucketS?: number;
}

export interface Series {
  bucketS: number;
  /** Bucket start times, seconds from the period start. */
  t: number[];
  busyUnits: number[];
  utilisationPct: number[];
  waiting: number[];
  /** Response times of served incidents, ascending (for distributions). */
  responses: number[];
  /** The same per incident type. */
  responsesByType: Record<string, number[]>;
}

export function defaultBucketS(durationS: number): number {
  return Math.max(60, Math.round(durationS / 96 / 60) * 60);
}

/** Integrates a step function given as (time, delta) changes in time order into bucket means. */
class StepIntegrator {
  private level = 0;
  private last: number;
  readonly sums: number[];
  constructor(
    private readonly lo: number,
    private readonly bucketS: number,
    n: number,
  ) {
    this.last = lo;
    this.sums = new Array<number>(n).fill(0);
  }
  private advance(t: number): void {
    const n = this.sums.length;
    let a = Math.max(this.last, this.lo);
    const b = Math.min(t, this.lo + n * this.bucketS);
    while (a < b) {
      const k = Math.floor((a - this.lo) / this.bucketS);
      if (k >= n) break;
      const end = Math.min(b, this.lo + (k + 1) * this.bucketS);
      this.sums[k] += this.level * (end - a);
      a = end;
    }
    if (t > this.last) this.last = t;
  }
  change(t: number, delta: number): void {
    this.advance(t);
    this.level += delta;
  }
  finish(t: number): number[] {
    this.advance(t);
    return this.sums.map((s) => s / this.bucketS);
  }
}

export function computeSeries(
  events: readonly KpiEvent[],
  catalog: CatalogIndex,
  opts: SeriesOptions,
): Series {
  const lo = opts.startT ?? 0;
  const bucketS = opts.bucketS ?? defaultBucketS(opts.durationS);
  const n = Math.max(1, Math.ceil(opts.durationS / bucketS));
  const busy = new StepIntegrator(lo, bucketS, n);
  const waiting = new StepIntegrator(lo, bucketS, n);

  const busyUnits = new Set<string>();
  const need = new Map<string, number>();
  const committed = new Map<string, number>();
  const isWaiting = new Set<string>();
  const setWaiting = (id: string, t: number, w: boolean) => {
    if (w === isWaiting.has(id)) return;
    if (w) isWaiting.add(id);
    else isWaiting.delete(id);
    waiting.change(t, w ? 1 : -1);
  };
  const recheck = (id: string, t: number) => {
    const req = need.get(id);
    if (req === undefined) return;
    setWaiting(id, t, (committed.get(id) ?? 0) < req);
  };

  for (const e of events) {
    if (e.unitId) {
      if (e.kind === 'assigned' && !busyUnits.has(e.unitId)) {
        busyUnits.add(e.unitId);
        busy.change(e.t, 1);
      } else if (
        (e.kind === 'cleared' ||
          e.kind === 'released' ||
          e.kind === 'declined' ||
          e.kind === 'ack_timeout') &&
        busyUnits.has(e.unitId)
      ) {
        busyUnits.delete(e.unitId);
        busy.change(e.t, -1);
      }
    }
    const id = e.incidentId;
    if (!id) continue;
    switch (e.kind) {
      case 'reported': {
        const req = catalog.get(e.type ?? '')?.requires;
        need.set(id, req ? Object.values(req).reduce((s, x) => s + x, 0) : 1);
        committed.set(id, 0);
        recheck(id, e.t);
        break;
      }
      case 'assigned':
        committed.set(id, (committed.get(id) ?? 0) + 1);
        recheck(id, e.t);
        break;
      case 'declined':
      case 'ack_timeout':
      case 'preempted':
        committed.set(id, (committed.get(id) ?? 0) - 1);
        recheck(id, e.t);
        break;
      case 'resolved':
      case 'cancelled':
      case 'unserved':
        setWaiting(id, e.t, false);
        need.delete(id);
        break;
    }
  }
  const end = lo + n * bucketS;
  const busyMeans = busy.finish(end);
  const waitMeans = waiting.finish(end);

  const responses: number[] = [];
  const responsesByType: Record<string, number[]> = {};
  for (const r of scanIncidents(events).values()) {
    if (r.firstOnScene === null) continue;
    const resp = r.firstOnScene - r.reportedT;
    responses.push(resp);
    let l = responsesByType[r.type];
    if (!l) responsesByType[r.type] = l = [];
    l.push(resp);
  }
  responses.sort((a, b) => a - b);
  for (const l of Object.values(responsesByType)) l.sort((a, b) => a - b);

  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    bucketS,
    t: busyMeans.map((_, k) => k * bucketS),
    busyUnits: busyMeans.map(r2),
    utilisationPct: busyMeans.map((b) => (opts.unitCount > 0 ? r2((100 * b) / opts.unitCount) : 0)),
    waiting: waitMeans.map(r2),
    responses,
    responsesByType,
  };
}
