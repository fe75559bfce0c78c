// What the HTTP and socket layers ask of the live engine. Every dispatcher action and every
// field-unit report goes through these methods, so the console, the unit page, the demo's
// simulated units and any other client obey the same rules. Errors are ApiErrors
// (src/server/errors.ts codes) so both transports answer alike.

import type { IncidentType, LonLat, Priority, UnitStatus } from '../core/types.ts';
import type { AlertView, AssignmentView, IncidentView, UnitView } from '../shared/events.ts';

/** Who is acting: a dispatcher, a unit (bound to its id), a planner, an admin, or the system. */
export interface Actor {
  role: 'dispatcher' | 'unit' | 'planner' | 'admin' | 'system';
  /** Subject of the token (user name) or `system:<worker>`. */
  id: string;
  /** For role `unit`: the only unit it may see or act for. */
  unitId?: string;
}

export interface ReportIncidentInput {
  type: string;
  location: LonLat;
  /** Dispatcher override of the catalogue priority. */
  priority?: Priority;
  /** ISO 8601; default: receipt time. */
  reportedAt?: string;
  source?: string;
  description?: string;
  /** Reporter follow-up: an HTTPS callback URL or a reporter reference. */
  callback?: string;
}

export interface IncidentDetailView extends IncidentView {
  timeline: { at: string; kind: string; actor: string; unitId?: string; data: Record<string, unknown> }[];
  assignments: AssignmentView[];
}

export interface UnitUpsertInput {
  department: string;
  capabilities: string[];
  home: LonLat;
  homeArea?: string;
  speedKmh: number;
  turnoutS: number;
  status?: UnitStatus;
}

export interface KpiQuery {
  from?: string;
  to?: string;
  groupBy?: 'unit' | 'department' | 'area' | 'type';
  /** Add the on-time % per incident type week by week (`onTimeByWeek`). */
  series?: boolean;
}

/** What every client needs to draw the district and offer incident types. */
export interface DistrictConfig {
  /** Sub-districts and grid cells (GeoJSON FeatureCollection). */
  areas: { type: 'FeatureCollection'; features: unknown[] };
  catalog: IncidentType[];
  immediateTypes: string[];
}

export interface EngineApi {
  district(actor: Actor): Promise<DistrictConfig>;
  reportIncident(
    input: ReportIncidentInput,
    idempotencyKey: string | undefined,
    actor: Actor,
  ): Promise<{ incident: IncidentView; created: boolean }>;
  listIncidents(
    filter: { status?: string; open?: boolean; limit?: number; offset?: number },
    actor: Actor,
  ): Promise<IncidentView[]>;
  getIncident(id: string, actor: Actor): Promise<IncidentDetailView>;
  /** Dispatcher override: send this unit (pre-empting it if needed), or reassign. */
  assign(incidentId: string, unitId: string, actor: Actor, reason?: string): Promise<AssignmentView>;
  cancelIncident(incidentId: string, actor: Actor, reason?: string): Promise<IncidentView>;
  closeIncident(incidentId: string, actor: Actor, note?: string): Promise<IncidentView>;

  listUnits(actor: Actor): Promise<UnitView[]>;
  upsertUnit(id: string, input: UnitUpsertInput, actor: Actor): Promise<UnitView>;
  reportLocation(unitId: string, position: LonLat, actor: Actor, atMs?: number): Promise<void>;
  reportStatus(unitId: string, status: UnitStatus, actor: Actor, incidentId?: string): Promise<UnitView>;
  acknowledge(assignmentId: string, accept: boolean, actor: Actor, reason?: string): Promise<AssignmentView>;
  listAssignments(filter: { unitId?: string; active?: boolean }, actor: Actor): Promise<AssignmentView[]>;

  listAlerts(actor: Actor): Promise<AlertView[]>;
  acknowledgeAlert(alertId: string, actor: Actor): Promise<void>;
  kpis(q: KpiQuery, actor: Actor): Promise<unknown>;
}
