// Helpers shared by SqlStore and MemoryStore so that both validate the same way and write
// the same events, audit rows and outbox jobs for each state change.

import { createHash, randomUUID } from 'node:crypto';
import type { IncidentStatus } from '../core/types.ts';
import { canonicalJson, jsonNormalise } from './audit-chain.ts';
import {
  ASSIGNMENT_EVENT_KIND,
  ASSIGNMENT_STATUSES,
  type AssignmentPatch,
  type AssignmentRecord,
  type AssignmentStatus,
  type AuditInput,
  assignmentTransitionError,
  type EpochS,
  INCIDENT_CREATED_TOPIC,
  INCIDENT_STATUSES,
  type IncidentPatch,
  type IncidentRecord,
  isActiveAssignmentStatus,
  type JsonObject,
  type NewAssignment,
  type NewEvent,
  type NewIncident,
  type OutboxJob,
  roundMs,
  StoreError,
  UNIT_STATUSES,
  type UnitInput,
  type UnitRecord,
  type WriteOptions,
} from './store.ts';

export const newId = (prefix: string) => `${prefix}_${randomUUID()}`;

const invalid = (field: string, msg: string) => new StoreError('INVALID', `${field}: ${msg}`, { field });

const isFiniteNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function checkNonEmpty(v: unknown, field: string): void {
  if (typeof v !== 'string' || v.length === 0) throw invalid(field, 'must be a non-empty string');
}

function checkTime(v: unknown, field: string, optional = false): void {
  if (v === undefined || (optional && v === null)) {
    if (optional) return;
    throw invalid(field, 'is required');
  }
  if (!isFiniteNum(v)) throw invalid(field, 'must be epoch seconds');
}

function checkLonLat(v: unknown, field: string, optional = false): void {
  if (v === undefined && optional) return;
  if (!Array.isArray(v) || v.length !== 2 || !isFiniteNum(v[0]) || !isFiniteNum(v[1])) {
    throw invalid(field, 'must be [lon, lat]');
  }
}

function checkObject(v: unknown, field: string): void {
  if (v === undefined) return;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid(field, 'must be an object');
}

function checkPriority(v: unknown, field: string): void {
  if (v !== 1 && v !== 2 && v !== 3 && v !== 4) throw invalid(field, 'must be 1, 2, 3 or 4');
}

export function checkIncidentStatus(v: unknown, field: string): asserts v is IncidentStatus {
  if (!(INCIDENT_STATUSES as readonly unknown[]).includes(v))
    throw invalid(field, `unknown status ${String(v)}`);
}

export function checkIncidentStatuses(list: readonly unknown[], field: string): void {
  for (let i = 0; i < list.length; i++) checkIncidentStatus(list[i], `${field}[${i}]`);
}

export function checkAssignmentStatus(v: unknown, field: string): asserts v is AssignmentStatus {
  if (!(ASSIGNMENT_STATUSES as readonly unknown[]).includes(v))
    throw invalid(field, `unknown status ${String(v)}`);
}

export function validateUnit(u: UnitInput): void {
  checkNonEmpty(u.id, 'unit.id');
  checkNonEmpty(u.department, 'unit.department');
  if (!Array.isArray(u.capabilities) || u.capabilities.some((c) => typeof c !== 'string')) {
    throw invalid('unit.capabilities', 'must be an array of strings');
  }
  checkLonLat(u.home, 'unit.home');
  checkLonLat(u.position, 'unit.position', true);
  if (!isFiniteNum(u.speedKmh) || u.speedKmh <= 0) throw invalid('unit.speedKmh', 'must be > 0');
  if (!isFiniteNum(u.turnoutS) || u.turnoutS < 0) throw invalid('unit.turnoutS', 'must be >= 0');
  if (!(UNIT_STATUSES as readonly unknown[]).includes(u.status))
    throw invalid('unit.status', 'unknown status');
  if (u.role !== undefined && u.role !== null && typeof u.role !== 'string')
    throw invalid('unit.role', 'must be a string');
  checkTime(u.since, 'unit.since', true);
  checkObject(u.payload, 'unit.payload');
}

export function validateNewIncident(i: NewIncident): void {
  if (i.id !== undefined) checkNonEmpty(i.id, 'incident.id');
  checkNonEmpty(i.type, 'incident.type');
  checkPriority(i.priority, 'incident.priority');
  checkLonLat(i.location, 'incident.location');
  checkTime(i.reportedAt, 'incident.reportedAt');
  if (i.status !== undefined) checkIncidentStatus(i.status, 'incident.status');
  checkTime(i.targetAt, 'incident.targetAt', true);
  checkObject(i.payload, 'incident.payload');
}

export function validateIncidentPatch(p: IncidentPatch): void {
  if (p.priority !== undefined) checkPriority(p.priority, 'patch.priority');
  checkTime(p.targetAt, 'patch.targetAt', true);
  checkObject(p.payload, 'patch.payload');
}

export function validateNewAssignment(a: NewAssignment): void {
  if (a.id !== undefined) checkNonEmpty(a.id, 'assignment.id');
  checkNonEmpty(a.incidentId, 'assignment.incidentId');
  checkNonEmpty(a.unitId, 'assignment.unitId');
  checkNonEmpty(a.capability, 'assignment.capability');
  const status = a.status ?? 'offered';
  if (!isActiveAssignmentStatus(status))
    throw invalid('assignment.status', 'a new assignment must be active');
  checkTime(a.offeredAt, 'assignment.offeredAt');
  checkTime(a.ackDeadline, 'assignment.ackDeadline', true);
  if (!isFiniteNum(a.etaS)) throw invalid('assignment.etaS', 'must be a number');
  checkObject(a.payload, 'assignment.payload');
}

export function validateAssignmentPatch(p: AssignmentPatch): void {
  if (p.status !== undefined) checkAssignmentStatus(p.status, 'patch.status');
  checkTime(p.ackDeadline, 'patch.ackDeadline', true);
  if (p.etaS !== undefined && !isFiniteNum(p.etaS)) throw invalid('patch.etaS', 'must be a number');
  checkObject(p.payload, 'patch.payload');
}

/** Default idempotency fingerprint: the request without server-filled values. */
export function incidentFingerprint(i: NewIncident): string {
  const { id: _id, reportedAt: _r, targetAt: _t, status: _s, ...rest } = i;
  return createHash('sha256')
    .update(canonicalJson(jsonNormalise(rest)), 'utf8')
    .digest('hex');
}

export const obj = (v: unknown): JsonObject => (jsonNormalise(v ?? {}) ?? {}) as JsonObject;

/** Side records (event, audit row, outbox job) written with a state change. */
export interface SideWrites {
  event?: NewEvent;
  audit?: AuditInput;
  job?: OutboxJob;
}

function eventFrom(
  opts: WriteOptions,
  base: Omit<NewEvent, 'kind' | 'actor' | 'at'>,
  defaultKind: string | undefined,
  at: EpochS,
): NewEvent | undefined {
  if (opts.event === false) return undefined;
  const kind = opts.event?.kind ?? defaultKind;
  if (!kind) return undefined;
  return {
    ...base,
    kind,
    at,
    actor: opts.actor,
    data: { ...(base.data ?? {}), ...(opts.event?.data ?? {}) },
  };
}

export function incidentCreatedWrites(
  inc: IncidentRecord,
  opts: { actor: string; at?: EpochS; audit?: boolean; job?: OutboxJob | false; eventData?: JsonObject },
): SideWrites {
  const at = roundMs(opts.at ?? inc.createdAt);
  return {
    event: {
      incidentId: inc.id,
      kind: 'reported',
      at: inc.reportedAt,
      actor: opts.actor,
      data: { type: inc.type, priority: inc.priority, location: inc.location, ...(opts.eventData ?? {}) },
    },
    audit:
      opts.audit === false
        ? undefined
        : {
            actor: opts.actor,
            action: 'incident.create',
            subject: inc.id,
            at,
            data: {
              type: inc.type,
              priority: inc.priority,
              location: inc.location,
              status: inc.status,
              idempotencyKey: inc.idempotencyKey ?? null,
            },
          },
    job:
      opts.job === false
        ? undefined
        : (opts.job ?? { topic: INCIDENT_CREATED_TOPIC, payload: { incidentId: inc.id } }),
  };
}

export function incidentStatusWrites(
  inc: IncidentRecord,
  from: IncidentStatus,
  opts: WriteOptions,
  at: EpochS,
): SideWrites {
  return {
    event: eventFrom(opts, { incidentId: inc.id, data: { from } }, inc.status, at),
    audit:
      opts.audit === false
        ? undefined
        : {
            actor: opts.actor,
            action: 'incident.status',
            subject: inc.id,
            at,
            data: { from, to: inc.status },
          },
    job: opts.job,
  };
}

export function incidentPatchWrites(
  inc: IncidentRecord,
  patch: IncidentPatch,
  opts: WriteOptions,
  at: EpochS,
) {
  const data = obj(patch);
  return {
    event: eventFrom(opts, { incidentId: inc.id, data: { patch: data } }, 'updated', at),
    audit:
      opts.audit === false
        ? undefined
        : { actor: opts.actor, action: 'incident.update', subject: inc.id, at, data: { patch: data } },
    job: opts.job,
  } satisfies SideWrites;
}

export function assignmentCreatedWrites(a: AssignmentRecord, opts: WriteOptions, at: EpochS): SideWrites {
  return {
    event: eventFrom(
      opts,
      {
        incidentId: a.incidentId,
        unitId: a.unitId,
        assignmentId: a.id,
        data: {
          capability: a.capability,
          etaS: a.etaS,
          status: a.status,
          ...(a.preemptedFrom ? { preemptedFrom: a.preemptedFrom } : {}),
        },
      },
      'assigned',
      at,
    ),
    audit:
      opts.audit === false
        ? undefined
        : {
            actor: opts.actor,
            action: 'assignment.create',
            subject: a.id,
            at,
            data: {
              incidentId: a.incidentId,
              unitId: a.unitId,
              capability: a.capability,
              status: a.status,
              etaS: a.etaS,
              summary: a.explanation?.summary ?? null,
            },
          },
    job: opts.job,
  };
}

export function assignmentUpdatedWrites(
  a: AssignmentRecord,
  from: AssignmentStatus,
  opts: WriteOptions,
  at: EpochS,
): SideWrites {
  const changed = from !== a.status;
  const audit = opts.audit ?? changed;
  return {
    event: eventFrom(
      opts,
      {
        incidentId: a.incidentId,
        unitId: a.unitId,
        assignmentId: a.id,
        data: { from, to: a.status, ...(a.reason ? { reason: a.reason } : {}) },
      },
      changed ? ASSIGNMENT_EVENT_KIND[a.status] : undefined,
      at,
    ),
    audit: audit
      ? {
          actor: opts.actor,
          action: 'assignment.status',
          subject: a.id,
          at,
          data: { from, to: a.status, unitId: a.unitId, incidentId: a.incidentId, reason: a.reason ?? null },
        }
      : undefined,
    job: opts.job,
  };
}

/** Timestamps set when an assignment moves to `to` (only those not set yet). */
export function assignmentStamps(
  cur: Pick<AssignmentRecord, 'status' | 'acceptedAt' | 'enRouteAt' | 'onSceneAt' | 'endedAt'>,
  to: AssignmentStatus,
  at: EpochS,
): Partial<Pick<AssignmentRecord, 'acceptedAt' | 'enRouteAt' | 'onSceneAt' | 'endedAt'>> {
  if (to === cur.status) return {};
  const out: Partial<Pick<AssignmentRecord, 'acceptedAt' | 'enRouteAt' | 'onSceneAt' | 'endedAt'>> = {};
  if ((to === 'accepted' || to === 'en_route' || to === 'on_scene') && cur.acceptedAt === undefined) {
    out.acceptedAt = at;
  }
  if (to === 'en_route' && cur.enRouteAt === undefined) out.enRouteAt = at;
  if (to === 'on_scene' && cur.onSceneAt === undefined) out.onSceneAt = at;
  if (!isActiveAssignmentStatus(to) && cur.endedAt === undefined) out.endedAt = at;
  return out;
}

export const asList = <T>(v: T | readonly T[] | undefined): T[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? [...(v as readonly T[])] : [v as T];

export const clampLimit = (limit: number | undefined, dflt: number, max: number): number => {
  if (limit === undefined) return dflt;
  if (!Number.isFinite(limit) || limit < 0) throw invalid('limit', 'must be >= 0');
  return Math.min(Math.floor(limit), max);
};

/** Applies a patch to an assignment in memory, enforcing the optimistic checks. */
export function applyAssignmentPatch(
  cur: AssignmentRecord,
  patch: AssignmentPatch,
  opts: { expect?: AssignmentStatus | readonly AssignmentStatus[]; expectVersion?: number },
  at: EpochS,
): AssignmentRecord {
  const expect = asList(opts.expect);
  if (expect && !expect.includes(cur.status)) {
    throw new StoreError('CONFLICT', `assignment ${cur.id} is ${cur.status}, not ${expect.join('|')}`, {
      reason: 'stale',
      entity: 'assignment',
      id: cur.id,
      status: cur.status,
    });
  }
  if (opts.expectVersion !== undefined && cur.version !== opts.expectVersion) {
    throw new StoreError('CONFLICT', `assignment ${cur.id} is at version ${cur.version}`, {
      reason: 'stale',
      entity: 'assignment',
      id: cur.id,
      version: cur.version,
    });
  }
  const to = patch.status ?? cur.status;
  const refused = assignmentTransitionError(cur.status, to);
  if (refused) {
    throw new StoreError('CONFLICT', `assignment ${cur.id}: ${refused}`, {
      reason: 'invalid_transition',
      entity: 'assignment',
      id: cur.id,
      status: cur.status,
    });
  }
  const next: AssignmentRecord = { ...cur, status: to, ...assignmentStamps(cur, to, at) };
  if (patch.ackDeadline !== undefined) {
    if (patch.ackDeadline === null) delete next.ackDeadline;
    else next.ackDeadline = roundMs(patch.ackDeadline);
  }
  if (patch.etaS !== undefined) next.etaS = patch.etaS;
  if (patch.reason !== undefined) {
    if (patch.reason === null) delete next.reason;
    else next.reason = patch.reason;
  }
  if (patch.explanation !== undefined)
    next.explanation = jsonNormalise(patch.explanation) as typeof next.explanation;
  if (patch.payload !== undefined) next.payload = { ...cur.payload, ...obj(patch.payload) };
  next.version = cur.version + 1;
  next.updatedAt = at;
  return next;
}

// ---------------------------------------------------------------- records as stored
// (SqlStore's write-behind and MemoryStore build them alike)

/** The record a unit upsert stores (as the database computes it). */
export function unitRecord(unit: UnitInput, version: number, createdAt: EpochS, at: EpochS): UnitRecord {
  const rec: UnitRecord = {
    id: unit.id,
    department: unit.department,
    capabilities: [...unit.capabilities],
    home: [unit.home[0], unit.home[1]],
    speedKmh: unit.speedKmh,
    turnoutS: unit.turnoutS,
    status: unit.status,
    payload: obj(unit.payload),
    version,
    createdAt,
    updatedAt: at,
  };
  if (unit.homeArea !== undefined && unit.homeArea !== null) rec.homeArea = unit.homeArea;
  if (unit.position) rec.position = [unit.position[0], unit.position[1]];
  if (unit.incidentId !== undefined && unit.incidentId !== null) rec.incidentId = unit.incidentId;
  if (unit.role !== undefined && unit.role !== null) rec.role = unit.role;
  if (unit.since !== undefined && unit.since !== null) rec.since = roundMs(unit.since);
  return rec;
}

/** The record a new incident stores (as the database computes it). */
export function newIncidentRecord(
  id: string,
  input: NewIncident,
  now: EpochS,
  key: string | undefined,
): IncidentRecord {
  const rec: IncidentRecord = {
    id,
    type: input.type,
    priority: input.priority,
    location: [input.location[0], input.location[1]],
    reportedAt: roundMs(input.reportedAt),
    status: input.status ?? 'queued',
    assignedUnitIds: [],
    payload: obj(input.payload),
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
  if (input.cell !== undefined && input.cell !== null) rec.cell = input.cell;
  if (input.area !== undefined && input.area !== null) rec.area = input.area;
  if (input.targetAt !== undefined && input.targetAt !== null) rec.targetAt = roundMs(input.targetAt);
  if (key !== undefined) rec.idempotencyKey = key;
  return rec;
}

/** The record a new assignment stores (as the database computes it). */
export function newAssignmentRecord(id: string, input: NewAssignment, at: EpochS): AssignmentRecord {
  const status = input.status ?? 'offered';
  const offeredAt = roundMs(input.offeredAt);
  const rec: AssignmentRecord = {
    id,
    incidentId: input.incidentId,
    unitId: input.unitId,
    capability: input.capability,
    status,
    offeredAt,
    etaS: input.etaS,
    crossesJurisdiction: input.crossesJurisdiction ?? false,
    payload: obj(input.payload),
    version: 1,
    updatedAt: at,
    ...assignmentStamps({ status: 'offered' }, status, offeredAt),
  };
  if (input.ackDeadline !== undefined && input.ackDeadline !== null)
    rec.ackDeadline = roundMs(input.ackDeadline);
  if (input.preemptedFrom !== undefined && input.preemptedFrom !== null)
    rec.preemptedFrom = input.preemptedFrom;
  if (input.explanation !== undefined)
    rec.explanation = jsonNormalise(input.explanation) as typeof rec.explanation;
  return rec;
}
