// What a deferred SqlStore transaction holds back until it ends (`transaction(fn, { defer })`):
// side rows (events, outbox jobs, audit rows, pushed messages) and, with `writeBehind`, the
// row writes whose caller handed in its current copy (units, incidents' status, assignments).
// The records handed out are computed here exactly as the database would compute them; the
// writes go out in two statements at the end, guarded by the versions the caller saw, so a
// copy that was stale makes the whole transaction fail instead of overwriting.

import { isoTime } from '../shared/iso-time.ts';
import type { AuditRow } from './audit-chain.ts';
import type {
  AssignmentRecord,
  AuditRecord,
  IncidentRecord,
  MessageRecord,
  OutboxRecord,
  StoredEvent,
  UnitRecord,
} from './store.ts';

type Row = Record<string, unknown>;

export interface Guarded<R> {
  rec: R;
  /** The stored version the first write of this batch was computed from. */
  expect: number;
}

/**
 * An assignment written over: `explanation` when a change of this batch set its explanation.
 * Otherwise the stored one is kept and not sent again: it is written with the offer and never
 * changes after, and it was the largest part of the rows sent back at every status change.
 */
export interface GuardedAssignment extends Guarded<AssignmentRecord> {
  explanation: boolean;
}

export class Deferred {
  readonly events: { row: Row; rec: StoredEvent }[] = [];
  readonly outbox: { row: Row; rec: OutboxRecord }[] = [];
  readonly audits: { content: Omit<AuditRow, 'seq' | 'prevHash' | 'hash'>; rec: AuditRecord }[] = [];
  readonly messages: { rec: MessageRecord; iso: string }[] = [];
  units = new Map<string, Guarded<UnitRecord>>();
  incidents = new Map<string, Guarded<IncidentRecord>>();
  assignments = new Map<string, GuardedAssignment>();
  /** Assignments created in this transaction (their final state is inserted). */
  newAssignments = new Map<string, AssignmentRecord>();
  /** Incidents created in this transaction, with their idempotency fingerprint. */
  newIncidents = new Map<string, { rec: IncidentRecord; fingerprint: string | null }>();

  constructor(readonly writeBehind: boolean) {}

  /** Rows held back that later reads or immediate writes of those tables must see. */
  get rowsPending(): boolean {
    return (
      this.units.size +
        this.incidents.size +
        this.assignments.size +
        this.newAssignments.size +
        this.newIncidents.size >
      0
    );
  }

  get empty(): boolean {
    return (
      !this.rowsPending &&
      this.events.length + this.outbox.length + this.audits.length + this.messages.length === 0
    );
  }

  /** After a flush: everything held back is written. */
  clear(): void {
    this.events.length = 0;
    this.outbox.length = 0;
    this.audits.length = 0;
    this.messages.length = 0;
    this.units = new Map();
    this.incidents = new Map();
    this.assignments = new Map();
    this.newAssignments = new Map();
    this.newIncidents = new Map();
  }

  mark(): Mark {
    return {
      lengths: [this.events.length, this.outbox.length, this.audits.length, this.messages.length],
      units: new Map(this.units),
      incidents: new Map(this.incidents),
      assignments: new Map(this.assignments),
      newAssignments: new Map(this.newAssignments),
      newIncidents: new Map(this.newIncidents),
    };
  }

  rollbackTo(m: Mark): void {
    const [e, o, a, msg] = m.lengths;
    this.events.length = e;
    this.outbox.length = o;
    this.audits.length = a;
    this.messages.length = msg;
    this.units = m.units;
    this.incidents = m.incidents;
    this.assignments = m.assignments;
    this.newAssignments = m.newAssignments;
    this.newIncidents = m.newIncidents;
  }

  putUnit(rec: UnitRecord, from: number): void {
    const prev = this.units.get(rec.id);
    this.units.set(rec.id, { rec, expect: prev ? prev.expect : from });
  }

  putIncident(rec: IncidentRecord, from: number): void {
    const fresh = this.newIncidents.get(rec.id);
    if (fresh) {
      this.newIncidents.set(rec.id, { rec, fingerprint: fresh.fingerprint });
      return;
    }
    const prev = this.incidents.get(rec.id);
    this.incidents.set(rec.id, { rec, expect: prev ? prev.expect : from });
  }

  /** `explanation`: this write set the explanation (see GuardedAssignment). */
  putAssignment(rec: AssignmentRecord, from: number, explanation: boolean): void {
    if (this.newAssignments.has(rec.id)) {
      this.newAssignments.set(rec.id, rec);
      return;
    }
    const prev = this.assignments.get(rec.id);
    this.assignments.set(rec.id, {
      rec,
      expect: prev ? prev.expect : from,
      explanation: explanation || prev?.explanation === true,
    });
  }
}

export interface Mark {
  lengths: number[];
  units: Map<string, Guarded<UnitRecord>>;
  incidents: Map<string, Guarded<IncidentRecord>>;
  assignments: Map<string, GuardedAssignment>;
  newAssignments: Map<string, AssignmentRecord>;
  newIncidents: Map<string, { rec: IncidentRecord; fingerprint: string | null }>;
}

const isoOf = (s: number | undefined | null): string | null =>
  s === undefined || s === null ? null : isoTime(s);

/** Assignment columns as jsonb_to_recordset reads them. */
export function assignmentRow(a: AssignmentRecord): Row {
  return {
    id: a.id,
    incident_id: a.incidentId,
    unit_id: a.unitId,
    capability: a.capability,
    status: a.status,
    offered_at: isoOf(a.offeredAt),
    ack_deadline: isoOf(a.ackDeadline),
    accepted_at: isoOf(a.acceptedAt),
    en_route_at: isoOf(a.enRouteAt),
    on_scene_at: isoOf(a.onSceneAt),
    ended_at: isoOf(a.endedAt),
    eta_s: a.etaS,
    crosses_jurisdiction: a.crossesJurisdiction,
    preempted_from: a.preemptedFrom ?? null,
    reason: a.reason ?? null,
    explanation: a.explanation ?? null,
    payload: a.payload,
    version: a.version,
    updated_at: isoOf(a.updatedAt),
  };
}

export const ASSIGNMENT_COLUMNS = `id text, incident_id text, unit_id text, capability text, status text,
  offered_at timestamptz, ack_deadline timestamptz, accepted_at timestamptz, en_route_at timestamptz,
  on_scene_at timestamptz, ended_at timestamptz, eta_s double precision, crosses_jurisdiction boolean,
  preempted_from text, reason text, explanation jsonb, payload jsonb, version integer,
  updated_at timestamptz`;

export function unitRow(u: UnitRecord): Row {
  return {
    id: u.id,
    department: u.department,
    capabilities: u.capabilities,
    home_lon: u.home[0],
    home_lat: u.home[1],
    home_area: u.homeArea ?? null,
    speed_kmh: u.speedKmh,
    turnout_s: u.turnoutS,
    status: u.status,
    pos_lon: u.position?.[0] ?? null,
    pos_lat: u.position?.[1] ?? null,
    incident_id: u.incidentId ?? null,
    since_at: isoOf(u.since),
    payload: u.payload,
    version: u.version,
    updated_at: isoOf(u.updatedAt),
    role: u.role ?? null,
  };
}

export const UNIT_COLUMNS = `id text, department text, capabilities jsonb, home_lon double precision,
  home_lat double precision, home_area text, speed_kmh double precision, turnout_s double precision,
  status text, pos_lon double precision, pos_lat double precision, incident_id text, since_at timestamptz,
  payload jsonb, version integer, updated_at timestamptz, role text, expect integer`;

export function incidentRow(i: IncidentRecord): Row {
  return {
    id: i.id,
    status: i.status,
    version: i.version,
    updated_at: isoOf(i.updatedAt),
    closed_at: isoOf(i.closedAt),
  };
}

export const INCIDENT_COLUMNS =
  'id text, status text, version integer, updated_at timestamptz, closed_at timestamptz, expect integer';

export function newIncidentRow(x: { rec: IncidentRecord; fingerprint: string | null }): Row {
  const i = x.rec;
  return {
    id: i.id,
    idempotency_key: i.idempotencyKey ?? null,
    idempotency_fingerprint: x.fingerprint,
    type: i.type,
    priority: i.priority,
    lon: i.location[0],
    lat: i.location[1],
    cell: i.cell ?? null,
    area: i.area ?? null,
    status: i.status,
    reported_at: isoOf(i.reportedAt),
    target_at: isoOf(i.targetAt),
    payload: i.payload,
    version: i.version,
    created_at: isoOf(i.createdAt),
    updated_at: isoOf(i.updatedAt),
    closed_at: isoOf(i.closedAt),
  };
}

export const NEW_INCIDENT_COLUMNS = `id text, idempotency_key text, idempotency_fingerprint text, type text,
  priority smallint, lon double precision, lat double precision, cell text, area text, status text,
  reported_at timestamptz, target_at timestamptz, payload jsonb, version integer, created_at timestamptz,
  updated_at timestamptz, closed_at timestamptz`;
