// The replay event log (`events.ndjson`, ../../../shared/PRODUCT.md "Replay event log").
//
// One record per decision and per transition, in time order. Every record starts with
// `t` (seconds on the log's clock: scenario seconds in replays, epoch seconds live; rounded
// to milliseconds) and `kind`, then `incidentId` and `unitId` where they apply, then the
// kind's own fields — always in the order the interfaces below list them, because records
// are built field by field in that order and serialised with JSON.stringify, so the same
// run gives byte-identical lines.
//
// Kinds and what they mean:
//   reported     an incident arrives (its type, effective priority, location, area/cell).
//   decision     the policy was called (rows = open slots, counts, the core's work units).
//   queued       after a decision the incident still has open slots (capability + reason);
//                logged once, and again only after it lost a unit (pre-emption/decline/timeout).
//   assigned     an offer: unit → incident slot, with etaS (the travel-time model's estimate
//                including turnout), the explanation summary and alternatives.
//   declined     the unit refused the offer (reason); the slot reopens.
//   ack_timeout  the offer was not answered within the ack timeout; the slot reopens.
//   preempted    the unit was taken from this incident for `toIncidentId` (immediate work).
//   en_route     the offer was accepted and the unit set off from `from`; arrival is at
//                t + etaS with etaS = turnoutS + travelS (turnoutS 0 for a unit already rolling).
//   on_scene     the unit arrived.
//   cleared      the unit finished on scene.
//   released     the unit was freed before arriving (incident cancelled, or job done
//                without it); it is available at `position`.
//   returned     the unit, not dispatched since it cleared, reached home (sim.returnHome):
//                from now on it stands at home (before, at the scene it cleared).
//   resolved     every unit of the incident has cleared.
//   cancelled    the incident was cancelled before any unit arrived.
//   unserved     at the end of the replay: the incident never had a unit on scene.

import type { LonLat } from '../core/types.ts';

export interface EvReported {
  t: number;
  kind: 'reported';
  incidentId: string;
  type: string;
  priority: number;
  location: LonLat;
  area?: string;
  cell?: string;
}

export interface EvDecision {
  t: number;
  kind: 'decision';
  /** Open slots the policy saw (its first pass). */
  rows: number;
  /** Units in the state handed to the policy. */
  units: number;
  assignments: number;
  preemptions: number;
  unserved: number;
  /** The core's deterministic operation count. */
  work: number;
  exact: boolean;
}

export interface OpenSlot {
  capability: string;
  reason: string;
}

export interface EvQueued {
  t: number;
  kind: 'queued';
  incidentId: string;
  open: OpenSlot[];
}

export interface EvAssigned {
  t: number;
  kind: 'assigned';
  incidentId: string;
  unitId: string;
  capability: string;
  etaS: number;
  lateS: number;
  crossesJurisdiction: boolean;
  preemptedFrom?: string;
  summary: string;
  alternatives: { unitId: string; etaS: number }[];
}

export interface EvDeclined {
  t: number;
  kind: 'declined';
  incidentId: string;
  unitId: string;
  reason: string;
}

export interface EvAckTimeout {
  t: number;
  kind: 'ack_timeout';
  incidentId: string;
  unitId: string;
}

export interface EvPreempted {
  t: number;
  kind: 'preempted';
  incidentId: string;
  unitId: string;
  toIncidentId: string;
  /** Where the unit was when taken (interpolated when it was en route). */
  position: LonLat;
}

export interface EvEnRoute {
  t: number;
  kind: 'en_route';
  incidentId: string;
  unitId: string;
  from: LonLat;
  turnoutS: number;
  travelS: number;
  etaS: number;
}

export interface EvOnScene {
  t: number;
  kind: 'on_scene';
  incidentId: string;
  unitId: string;
}

export interface EvCleared {
  t: number;
  kind: 'cleared';
  incidentId: string;
  unitId: string;
}

export interface EvReleased {
  t: number;
  kind: 'released';
  incidentId: string;
  unitId: string;
  reason: 'cancelled' | 'job_done';
  position: LonLat;
}

export interface EvReturned {
  t: number;
  kind: 'returned';
  unitId: string;
  position: LonLat;
}

export interface EvResolved {
  t: number;
  kind: 'resolved';
  incidentId: string;
}

export interface EvCancelled {
  t: number;
  kind: 'cancelled';
  incidentId: string;
}

export interface EvUnserved {
  t: number;
  kind: 'unserved';
  incidentId: string;
  open: string[];
}

export type SimEvent =
  | EvReported
  | EvDecision
  | EvQueued
  | EvAssigned
  | EvDeclined
  | EvAckTimeout
  | EvPreempted
  | EvEnRoute
  | EvOnScene
  | EvCleared
  | EvReleased
  | EvReturned
  | EvResolved
  | EvCancelled
  | EvUnserved;

export type EventKind = SimEvent['kind'];

/** Seconds rounded to milliseconds (and −0 folded to 0), as every `t` and duration in the log. */
export function ms(x: number): number {
  const r = Math.round(x * 1000) / 1000;
  return r === 0 ? 0 : r;
}

/** Coordinates rounded to 1e-7° (about 1 cm). */
export function roundLonLat(p: LonLat): LonLat {
  const f = (v: number) => {
    const r = Math.round(v * 1e7) / 1e7;
    return r === 0 ? 0 : r;
  };
  return [f(p[0]), f(p[1])];
}

/** The log as NDJSON text: one JSON object a line, each line ending in "\n". */
export function toNdjson(events: readonly SimEvent[]): string {
  let out = '';
  for (const e of events) out += `${JSON.stringify(e)}\n`;
  return out;
}

/** Parses NDJSON text back into records (blank lines ignored). */
export function parseNdjson(text: string): SimEvent[] {
  const out: SimEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    out.push(JSON.parse(line) as SimEvent);
  }
  return out;
}
