// Store records → the views of the socket contract and the HTTP API (src/shared/events.ts).
// Times go out as ISO 8601 (UTC, `Z`); positions default to home.

import type { CatalogIndex } from '../core/catalog.ts';
import type { UnitStatus } from '../core/types.ts';
import type { AssignmentView, IncidentView, UnitView } from '../shared/events.ts';
import { isoTime } from '../shared/iso-time.ts';
import type { AssignmentRecord, IncidentRecord, StoredEvent, UnitRecord } from '../store/store.ts';
import type { IncidentDetailView } from './api.ts';

export const iso = isoTime;

export function incidentView(
  rec: IncidentRecord,
  catalog: CatalogIndex,
  assignedUnitIds: readonly string[],
  queuedReason?: string,
): IncidentView {
  const immediate =
    typeof rec.payload.immediate === 'boolean'
      ? rec.payload.immediate
      : (catalog.get(rec.type)?.immediate ?? false);
  const v: IncidentView = {
    id: rec.id,
    type: rec.type,
    priority: rec.priority,
    immediate,
    status: rec.status,
    location: [rec.location[0], rec.location[1]],
    reportedAt: iso(rec.reportedAt),
    assignedUnitIds: [...assignedUnitIds],
  };
  if (rec.cell !== undefined) v.cell = rec.cell;
  if (rec.area !== undefined) v.area = rec.area;
  if (rec.targetAt !== undefined) v.targetAt = iso(rec.targetAt);
  if (queuedReason !== undefined) v.queuedReason = queuedReason;
  return v;
}

export function assignmentView(a: AssignmentRecord): AssignmentView {
  return assignmentFields(a, true);
}

/**
 * An assignment as pushed with each later change (`assignment:updated`): without the
 * explanation, which the offer carried and which never changes after. It was most of each
 * such message's bytes, sent and logged twice (to the consoles and to the unit).
 */
export function assignmentChangeView(a: AssignmentRecord): AssignmentView {
  return assignmentFields(a, false);
}

function assignmentFields(a: AssignmentRecord, withExplanation: boolean): AssignmentView {
  const v: AssignmentView = {
    id: a.id,
    incidentId: a.incidentId,
    unitId: a.unitId,
    capability: a.capability,
    status: a.status,
    etaS: a.etaS,
    offeredAt: iso(a.offeredAt),
    crossesJurisdiction: a.crossesJurisdiction,
  };
  if (a.ackDeadline !== undefined) v.ackDeadline = iso(a.ackDeadline);
  if (a.preemptedFrom !== undefined) v.preemptedFrom = a.preemptedFrom;
  if (withExplanation && a.explanation !== undefined) v.explanation = a.explanation;
  if (a.reason !== undefined) v.reason = a.reason;
  return v;
}

/** A unit as the core and the consoles see it: status and commitment follow its active assignment. */
export function unitView(u: UnitRecord, status: UnitStatus, incidentId: string | undefined): UnitView {
  const v: UnitView = {
    id: u.id,
    department: u.department,
    capabilities: [...u.capabilities],
    status,
    position: u.position ? [u.position[0], u.position[1]] : [u.home[0], u.home[1]],
    home: [u.home[0], u.home[1]],
  };
  if (u.homeArea !== undefined) v.homeArea = u.homeArea;
  if (incidentId !== undefined) v.incidentId = incidentId;
  return v;
}

export function timelineEntry(e: StoredEvent): IncidentDetailView['timeline'][number] {
  const t: IncidentDetailView['timeline'][number] = {
    at: iso(e.at),
    kind: e.kind,
    actor: e.actor,
    data: e.data,
  };
  if (e.unitId !== undefined) t.unitId = e.unitId;
  return t;
}
