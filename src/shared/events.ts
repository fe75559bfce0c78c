// The websocket contract shared by the server, the dispatcher console and field-unit
// clients (socket.io typed event maps). Every pushed message is wrapped in an Envelope with
// a per-recipient sequence number, gap-free from 1; a client that reconnects sends the last
// seq it saw in the handshake (`auth.lastSeq`) or with `resync`, and receives what it missed.

import type {
  AssignmentDecision,
  Explanation,
  IncidentStatus,
  LonLat,
  Priority,
  UnitStatus,
} from '../core/types.ts';

export interface Envelope<T> {
  /** Per-recipient sequence number (the recipient is the console room or one unit). */
  seq: number;
  /** Epoch milliseconds at which the message was recorded. */
  at: number;
  data: T;
}

export interface IncidentView {
  id: string;
  type: string;
  priority: Priority;
  immediate: boolean;
  status: IncidentStatus;
  location: LonLat;
  cell?: string;
  area?: string;
  /** ISO 8601 times. */
  reportedAt: string;
  targetAt?: string;
  assignedUnitIds: string[];
  /** Why the incident waits, when it is queued. */
  queuedReason?: string;
}

export interface AssignmentView {
  id: string;
  incidentId: string;
  unitId: string;
  capability: string;
  status:
    | 'offered'
    | 'accepted'
    | 'en_route'
    | 'on_scene'
    | 'cleared'
    | 'declined'
    | 'timed_out'
    | 'preempted'
    | 'cancelled';
  etaS: number;
  offeredAt: string;
  ackDeadline?: string;
  preemptedFrom?: string;
  crossesJurisdiction: boolean;
  /**
   * Why this unit: set with the offer and never changed after. Sent with `assignment:created`,
   * `assignment:offer` and the HTTP reads; `assignment:updated` leaves it out, so a client
   * keeps the one it has (mergeAssignment).
   */
  explanation?: Explanation;
  reason?: string;
}

/** An `assignment:updated` applied to what a client holds: the explanation is kept. */
export function mergeAssignment(before: AssignmentView | undefined, update: AssignmentView): AssignmentView {
  if (update.explanation !== undefined || before?.explanation === undefined) return update;
  return { ...update, explanation: before.explanation };
}

export interface UnitView {
  id: string;
  department: string;
  capabilities: string[];
  status: UnitStatus;
  position: LonLat;
  home: LonLat;
  homeArea?: string;
  incidentId?: string;
}

export type AlertKind =
  | 'no_ack'
  | 'target_breached'
  | 'no_capable_unit'
  | 'repeated_non_response'
  | 'on_scene_far';

export interface AlertView {
  id: string;
  kind: AlertKind;
  severity: 'info' | 'warning' | 'critical';
  message: string;
  incidentId?: string;
  unitId?: string;
  at: string;
  /** Set once a dispatcher has acknowledged the alert (then sent again as `alert:updated`). */
  acknowledgedAt?: string;
  acknowledgedBy?: string;
}

export interface OfferView {
  assignment: AssignmentView;
  incident: IncidentView;
}

/** Server → client events. Consoles get everything but offers; a unit gets its own offers and updates. */
export interface ServerToClientEvents {
  'incident:created': (m: Envelope<IncidentView>) => void;
  'incident:updated': (m: Envelope<IncidentView>) => void;
  'assignment:created': (m: Envelope<AssignmentView>) => void;
  'assignment:updated': (m: Envelope<AssignmentView>) => void;
  'unit:updated': (m: Envelope<UnitView>) => void;
  alert: (m: Envelope<AlertView>) => void;
  /** An alert was acknowledged: every console can take it off its list. */
  'alert:updated': (m: Envelope<AlertView>) => void;
  /** Sent to a unit's room, with acknowledgement: the client's callback confirms receipt. */
  'assignment:offer': (m: Envelope<OfferView>, received: (ok: boolean) => void) => void;
  /** Answer to a refused client event. */
  error: (e: { code: string; message: string; event?: string }) => void;
}

export interface AckInput {
  assignmentId: string;
  accept: boolean;
  reason?: string;
}

export interface StatusInput {
  status: 'en_route' | 'on_scene' | 'available' | 'off_duty' | 'out_of_service';
  incidentId?: string;
}

export interface LocationInput {
  position: LonLat;
  /** Epoch milliseconds of the fix (defaults to receipt time). */
  at?: number;
  accuracyM?: number;
}

export type Reply = (r: { ok: true } | { ok: false; code: string; message: string }) => void;

/** Client → server events (units only for ack/status/location). */
export interface ClientToServerEvents {
  ack: (a: AckInput, reply?: Reply) => void;
  status: (s: StatusInput, reply?: Reply) => void;
  location: (l: LocationInput, reply?: Reply) => void;
  /** Ask for every message after `lastSeq` (also done automatically from `auth.lastSeq`). */
  resync: (r: { lastSeq: number }, reply?: (r: { ok: boolean; replayed: number }) => void) => void;
}

/** Handshake `auth` payload. */
export interface HandshakeAuth {
  token: string;
  lastSeq?: number;
}

export type { AssignmentDecision };
