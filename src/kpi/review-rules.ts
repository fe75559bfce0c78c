// Review flags a supervisor works through: the rules, as functions of one event and what the
// log said before it. The live engine feeds them the store's events (src/engine/reviews.ts,
// lookups answered from the store); a replay's log can be reviewed the same way (LogReviewer,
// lookups answered from the records seen so far). Thresholds are configuration.
//
//   on_scene_far              a unit reported on scene more than onSceneFarM from the incident,
//                             by its last known position (the engine records `distanceM`).
//   too_fast                  a unit reported on scene sooner than travel allows: the straight
//                             line from where its trip started (its en-route report, else the
//                             offer) to the incident, at speedFactor × its speed, takes longer
//                             than it took. Trips shorter than minTravelCheckM are not judged.
//   repeated_non_response     nonResponseThreshold or more offers to one unit timed out within
//                             one shift (shiftS, a sliding window ending at the latest one).
//   declines_above_threshold  more than declineThreshold declines by one unit within one shift.
//   closed_without_on_scene   an incident closed with no unit ever reported on scene.
// The two per-shift flags are raised at most once per unit and shift: not again until shiftS
// after the last one of the same kind. Every flag has a stable key (raised once per key).

import { haversineM, isLonLat as isPlace } from '../core/geo.ts';
import type { LonLat } from '../core/types.ts';

export type ReviewKind =
  | 'on_scene_far'
  | 'too_fast'
  | 'repeated_non_response'
  | 'declines_above_threshold'
  | 'closed_without_on_scene';

export const REVIEW_KINDS: readonly ReviewKind[] = [
  'on_scene_far',
  'too_fast',
  'repeated_non_response',
  'declines_above_threshold',
  'closed_without_on_scene',
];

export interface ReviewConfig {
  /** on_scene_far above this distance (default 300 m). */
  onSceneFarM: number;
  /** repeated_non_response at this many timed-out offers in one shift (default 3). */
  nonResponseThreshold: number;
  /** declines_above_threshold above this many declines in one shift (default 3). */
  declineThreshold: number;
  /** One shift, seconds (default 8 h). */
  shiftS: number;
  /** too_fast: travel faster than this multiple of the unit's speed (default 1.5). */
  speedFactor: number;
  /** too_fast: trips shorter than this are not judged (default 500 m). */
  minTravelCheckM: number;
}

export const DEFAULT_REVIEW_CONFIG: ReviewConfig = {
  onSceneFarM: 300,
  nonResponseThreshold: 3,
  declineThreshold: 3,
  shiftS: 8 * 3600,
  speedFactor: 1.5,
  minTravelCheckM: 500,
};

/** Checks a (partial) review configuration; throws with the path of the first bad field. */
export function resolveReviewConfig(raw: unknown, path = 'reviews'): ReviewConfig {
  if (raw === undefined) return { ...DEFAULT_REVIEW_CONFIG };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new RangeError(`${path}: must be an object`);
  const o = raw as Record<string, unknown>;
  const out: ReviewConfig = { ...DEFAULT_REVIEW_CONFIG };
  for (const k of Object.keys(o)) {
    if (!(k in DEFAULT_REVIEW_CONFIG)) throw new RangeError(`${path}.${k}: unknown setting`);
    const v = o[k];
    const key = k as keyof ReviewConfig;
    const integer = key === 'nonResponseThreshold' || key === 'declineThreshold';
    const min = key === 'shiftS' || key === 'speedFactor' || key === 'nonResponseThreshold' ? 1e-9 : 0;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      throw new RangeError(
        `${path}.${k}: must be ${integer ? 'an integer' : 'a number'} ${min > 0 ? '> 0' : '≥ 0'}, got ${JSON.stringify(v)}`,
      );
    }
    out[key] = v;
  }
  return out;
}

/** The fields of an event the rules read (a stored event, or a replay record mapped to it). */
export interface ReviewEvent {
  /** Store id (live) or line number (replay). */
  id: number;
  /** Seconds on the log's clock. */
  t: number;
  kind: string;
  incidentId?: string;
  unitId?: string;
  assignmentId?: string;
  actor?: string;
  data: Record<string, unknown>;
}

export interface NewReviewFlag {
  key: string;
  kind: ReviewKind;
  /** When it happened (log clock). */
  t: number;
  incidentId?: string;
  unitId?: string;
  summary: string;
  evidence: Record<string, unknown>;
}

export interface Refusal {
  t: number;
  incidentId: string;
  reason?: string;
}

const isLonLat = (v: unknown): v is LonLat =>
  Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number';

/** Where a unit's trip to an incident started: its en-route report, else the offer. */
export interface TripStart {
  t: number;
  via: 'en_route' | 'offer';
  position?: LonLat;
}

/**
 * What the live engine records on a unit's on-scene event, as it stood then: where the
 * incident is, where and when the unit's trip started, and the unit's speed. With them the
 * rules look nothing up; an event without them (an engine restarted mid-trip, a replay's
 * log) is looked up in the log as before, which gives the same facts.
 */
export interface OnSceneFacts {
  incidentLocation: LonLat;
  trip: TripStart & { position: LonLat };
  speedKmh: number;
}

/** The on-scene facts of an event's data, when all are there and well formed. */
export function onSceneFacts(data: Record<string, unknown>): OnSceneFacts | undefined {
  const { incidentLocation, trip, speedKmh } = data;
  if (!isPlace(incidentLocation) || typeof speedKmh !== 'number' || !Number.isFinite(speedKmh)) return;
  if (!trip || typeof trip !== 'object') return;
  const { t, via, position } = trip as Record<string, unknown>;
  if (typeof t !== 'number' || (via !== 'en_route' && via !== 'offer') || !isPlace(position)) return;
  return { incidentLocation, trip: { t, via, position }, speedKmh };
}

/**
 * Whether the rules (below) will look this event's incident or unit up: a caller answering
 * lookups from a database reads those ahead, in bulk. Keep in step with reviewEvent.
 */
export function needsLookup(e: Pick<ReviewEvent, 'kind' | 'incidentId' | 'unitId' | 'data'>): boolean {
  if (!e.incidentId) return false;
  if (e.kind === 'on_scene') return e.unitId !== undefined && onSceneFacts(e.data) === undefined;
  if (e.kind === 'closed') return e.unitId === undefined && e.data.withoutOnScene === undefined;
  return false;
}

/** What the rules ask about the past. */
export interface ReviewLookup {
  incident(
    incidentId: string,
  ): Promise<{ location?: LonLat; type?: string; reachedBefore: (t: number) => boolean } | undefined>;
  /** The start of the unit's latest trip to the incident before t: its en-route report, else the offer. */
  tripStart(incidentId: string, unitId: string, beforeT: number): Promise<TripStart | undefined>;
  unitSpeedKmh(unitId: string): Promise<number | undefined>;
  /** The unit's timed-out offers or declines with t in [sinceT, untilT], oldest first. */
  refusals(
    unitId: string,
    kind: 'ack_timeout' | 'declined',
    sinceT: number,
    untilT: number,
  ): Promise<Refusal[]>;
  /** When the last flag of this kind for the unit was raised (log clock), if any. */
  lastFlagAt(kind: ReviewKind, unitId: string): Promise<number | undefined>;
}

const fmtS = (s: number) => (s < 120 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`);

/** The flags one event raises. */
export async function reviewEvent(
  e: ReviewEvent,
  lookup: ReviewLookup,
  cfg: ReviewConfig,
): Promise<NewReviewFlag[]> {
  const out: NewReviewFlag[] = [];
  const subject = e.assignmentId ?? `${e.incidentId}:${e.unitId}:${e.t}`;
  if (e.kind === 'on_scene' && e.unitId && e.incidentId) {
    const facts = onSceneFacts(e.data);
    const inc = facts ? { location: facts.incidentLocation } : await lookup.incident(e.incidentId);
    // on_scene_far: the distance the engine measured, else from a reported position.
    let distanceM = typeof e.data.distanceM === 'number' ? e.data.distanceM : undefined;
    if (distanceM === undefined && isLonLat(e.data.position) && inc?.location) {
      distanceM = Math.round(haversineM(e.data.position, inc.location));
    }
    if (distanceM !== undefined && distanceM > cfg.onSceneFarM) {
      out.push({
        key: `on_scene_far:${subject}`,
        kind: 'on_scene_far',
        t: e.t,
        incidentId: e.incidentId,
        unitId: e.unitId,
        summary: `${e.unitId} reported on scene at ${e.incidentId} ${distanceM} m from the incident (limit ${cfg.onSceneFarM} m)`,
        evidence: {
          eventId: e.id,
          distanceM,
          thresholdM: cfg.onSceneFarM,
          ...(isLonLat(e.data.position) ? { position: e.data.position } : {}),
          ...(inc?.location ? { incidentLocation: inc.location } : {}),
        },
      });
    }
    // too_fast
    const start = facts
      ? facts.trip
      : inc?.location
        ? await lookup.tripStart(e.incidentId, e.unitId, e.t)
        : undefined;
    const speed = facts ? facts.speedKmh : start?.position ? await lookup.unitSpeedKmh(e.unitId) : undefined;
    if (start?.position && inc?.location && speed !== undefined && speed > 0) {
      const tripM = haversineM(start.position, inc.location);
      const elapsedS = e.t - start.t;
      const minS = tripM / ((speed / 3.6) * cfg.speedFactor);
      if (tripM >= cfg.minTravelCheckM && elapsedS < minS) {
        out.push({
          key: `too_fast:${subject}`,
          kind: 'too_fast',
          t: e.t,
          incidentId: e.incidentId,
          unitId: e.unitId,
          summary: `${e.unitId} reported on scene at ${e.incidentId} ${fmtS(elapsedS)} after ${start.via === 'en_route' ? 'setting off' : 'the offer'}, ${Math.round(tripM)} m away: at least ${fmtS(minS)} at ${cfg.speedFactor} × ${speed} km/h`,
          evidence: {
            eventId: e.id,
            startVia: start.via,
            startT: start.t,
            from: start.position,
            incidentLocation: inc.location,
            tripM: Math.round(tripM),
            elapsedS: Math.round(elapsedS * 1000) / 1000,
            minPlausibleS: Math.round(minS * 10) / 10,
            speedKmh: speed,
            speedFactor: cfg.speedFactor,
          },
        });
      }
    }
  }
  if ((e.kind === 'ack_timeout' || e.kind === 'declined') && e.unitId) {
    const kind: ReviewKind = e.kind === 'ack_timeout' ? 'repeated_non_response' : 'declines_above_threshold';
    const threshold = e.kind === 'ack_timeout' ? cfg.nonResponseThreshold : cfg.declineThreshold + 1;
    const list = await lookup.refusals(e.unitId, e.kind, e.t - cfg.shiftS, e.t);
    const last = await lookup.lastFlagAt(kind, e.unitId);
    if (list.length >= threshold && (last === undefined || last <= e.t - cfg.shiftS)) {
      const what = e.kind === 'ack_timeout' ? 'offers unanswered' : 'offers declined';
      out.push({
        key: `${kind}:${e.unitId}:${subject}`,
        kind,
        t: e.t,
        unitId: e.unitId,
        ...(e.incidentId ? { incidentId: e.incidentId } : {}),
        summary: `${e.unitId}: ${list.length} ${what} within ${fmtS(cfg.shiftS)} (${e.kind === 'ack_timeout' ? `flagged at ${cfg.nonResponseThreshold}` : `more than ${cfg.declineThreshold}`})`,
        evidence: {
          eventId: e.id,
          count: list.length,
          threshold: e.kind === 'ack_timeout' ? cfg.nonResponseThreshold : cfg.declineThreshold,
          shiftS: cfg.shiftS,
          offers: list.map((r) => ({
            t: r.t,
            incidentId: r.incidentId,
            ...(r.reason ? { reason: r.reason } : {}),
          })),
        },
      });
    }
  }
  if (e.kind === 'closed' && e.incidentId && e.unitId === undefined) {
    let without = e.data.withoutOnScene === true;
    if (e.data.withoutOnScene === undefined) {
      const inc = await lookup.incident(e.incidentId);
      without = inc !== undefined && !inc.reachedBefore(e.t);
    }
    if (without) {
      out.push({
        key: `closed_without_on_scene:${e.incidentId}`,
        kind: 'closed_without_on_scene',
        t: e.t,
        incidentId: e.incidentId,
        summary: `${e.incidentId} was closed${e.actor ? ` by ${e.actor}` : ''} with no unit reported on scene`,
        evidence: {
          eventId: e.id,
          ...(e.actor ? { closedBy: e.actor } : {}),
          ...(typeof e.data.note === 'string' ? { note: e.data.note } : {}),
          ...(typeof e.data.from === 'string' ? { statusBefore: e.data.from } : {}),
        },
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------- a log reviewed in memory

/**
 * Reviews a log in order, answering the rules' lookups from the records fed so far. For a
 * replay's events (see fromSimRecord) or any list of stored events; unit speeds come from the
 * fleet list.
 */
export class LogReviewer {
  private readonly incidents = new Map<string, { location?: LonLat; type?: string; reached: number[] }>();
  private readonly trips = new Map<string, { t: number; via: 'en_route' | 'offer'; position?: LonLat }>();
  private readonly refused = new Map<string, Refusal[]>();
  private readonly flagged = new Map<string, number>();
  readonly flags: NewReviewFlag[] = [];
  private readonly seen = new Set<string>();

  constructor(
    private readonly cfg: ReviewConfig,
    private readonly speeds: ReadonlyMap<string, number>,
  ) {}

  private readonly lookup: ReviewLookup = {
    incident: async (id) => {
      const r = this.incidents.get(id);
      if (!r) return undefined;
      return {
        ...(r.location ? { location: r.location } : {}),
        ...(r.type ? { type: r.type } : {}),
        reachedBefore: (t) => r.reached.some((x) => x <= t),
      };
    },
    tripStart: async (incidentId, unitId) => this.trips.get(`${incidentId}\u0000${unitId}`),
    unitSpeedKmh: async (unitId) => this.speeds.get(unitId),
    refusals: async (unitId, kind, since, until) =>
      (this.refused.get(`${kind}\u0000${unitId}`) ?? []).filter((r) => r.t >= since && r.t <= until),
    lastFlagAt: async (kind, unitId) => this.flagged.get(`${kind}\u0000${unitId}`),
  };

  async feed(e: ReviewEvent): Promise<NewReviewFlag[]> {
    // Facts first (a refusal counts itself), then the rules, then the arrival.
    const tripKey = `${e.incidentId}\u0000${e.unitId}`;
    if (e.kind === 'reported' && e.incidentId) {
      this.incidents.set(e.incidentId, {
        ...(isLonLat(e.data.location) ? { location: e.data.location } : {}),
        ...(typeof e.data.type === 'string' ? { type: e.data.type } : {}),
        reached: [],
      });
    } else if (e.kind === 'assigned' && e.unitId) {
      this.trips.set(tripKey, {
        t: e.t,
        via: 'offer',
        ...(isLonLat(e.data.from) ? { position: e.data.from } : {}),
      });
    } else if (e.kind === 'en_route' && e.unitId) {
      // Where it set off: its reported position, else where it stood at the offer.
      const pos = isLonLat(e.data.position)
        ? e.data.position
        : isLonLat(e.data.from)
          ? e.data.from
          : this.trips.get(tripKey)?.position;
      this.trips.set(tripKey, { t: e.t, via: 'en_route', ...(pos ? { position: pos } : {}) });
    } else if ((e.kind === 'ack_timeout' || e.kind === 'declined') && e.unitId && e.incidentId) {
      const k = `${e.kind}\u0000${e.unitId}`;
      const l = this.refused.get(k) ?? [];
      l.push({
        t: e.t,
        incidentId: e.incidentId,
        ...(typeof e.data.reason === 'string' ? { reason: e.data.reason } : {}),
      });
      this.refused.set(k, l);
    }
    const raised = (await reviewEvent(e, this.lookup, this.cfg)).filter((f) => !this.seen.has(f.key));
    for (const f of raised) {
      this.seen.add(f.key);
      this.flags.push(f);
      if (f.unitId) this.flagged.set(`${f.kind}\u0000${f.unitId}`, f.t);
    }
    if (e.kind === 'on_scene' && e.unitId && e.incidentId) {
      this.incidents.get(e.incidentId)?.reached.push(e.t);
      this.trips.delete(tripKey);
    }
    return raised;
  }
}

/** A replay record (events.ndjson line `n`) as a review event. */
export function fromSimRecord(
  rec: { t: number; kind: string } & Record<string, unknown>,
  n: number,
): ReviewEvent {
  const { t, kind, incidentId, unitId, ...data } = rec;
  return {
    id: n,
    t,
    kind,
    ...(typeof incidentId === 'string' ? { incidentId } : {}),
    ...(typeof unitId === 'string' ? { unitId } : {}),
    data,
  };
}
