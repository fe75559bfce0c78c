// A small in-memory EngineApi for tests of the HTTP and socket layers (no optimiser, no
// store): it keeps views in maps, records every call with its Actor, enforces the
// object-level rule a real engine enforces (a unit acts only on its own assignments), and
// can be told to throw on the next call of a method.

import type {
  Actor,
  EngineApi,
  IncidentDetailView,
  KpiQuery,
  ReportIncidentInput,
  UnitUpsertInput,
} from '../engine/api.ts';
import type { AlertView, AssignmentView, IncidentView, UnitView } from '../shared/events.ts';
import { ApiError } from './errors.ts';

type Method = keyof EngineApi;

export class FakeEngine implements EngineApi {
  readonly calls: { method: Method; args: unknown[]; actor: Actor }[] = [];
  readonly incidents = new Map<string, IncidentView>();
  readonly units = new Map<string, UnitView>();
  readonly assignments = new Map<string, AssignmentView>();
  readonly alerts = new Map<string, AlertView>();
  private readonly keys = new Map<string, { id: string; body: string }>();
  private readonly failures = new Map<Method, unknown>();
  private n = 0;

  /** The next call of `method` throws `err`. */
  failNext(method: Method, err: unknown): void {
    this.failures.set(method, err);
  }

  private enter(method: Method, actor: Actor, ...args: unknown[]): void {
    this.calls.push({ method, args, actor });
    if (this.failures.has(method)) {
      const err = this.failures.get(method);
      this.failures.delete(method);
      throw err;
    }
  }

  private own(actor: Actor, unitId: string): void {
    if (actor.role === 'unit' && actor.unitId !== unitId) throw new ApiError('FORBIDDEN', 'not your unit');
  }

  addUnit(id: string, patch: Partial<UnitView> = {}): UnitView {
    const u: UnitView = {
      id,
      department: 'fire',
      capabilities: ['fire-engine'],
      status: 'available',
      position: [113.46, 23.11],
      home: [113.46, 23.11],
      ...patch,
    };
    this.units.set(id, u);
    return u;
  }

  addAssignment(incidentId: string, unitId: string, patch: Partial<AssignmentView> = {}): AssignmentView {
    const a: AssignmentView = {
      id: `asg_${++this.n}`,
      incidentId,
      unitId,
      capability: 'fire-engine',
      status: 'offered',
      etaS: 240,
      offeredAt: new Date().toISOString(),
      crossesJurisdiction: false,
      ...patch,
    };
    this.assignments.set(a.id, a);
    const inc = this.incidents.get(incidentId);
    if (inc && !inc.assignedUnitIds.includes(unitId)) {
      inc.assignedUnitIds.push(unitId);
      inc.status = 'assigned';
    }
    return a;
  }

  async reportIncident(input: ReportIncidentInput, key: string | undefined, actor: Actor) {
    this.enter('reportIncident', actor, input, key);
    const body = JSON.stringify(input);
    if (key) {
      const seen = this.keys.get(key);
      if (seen) {
        if (seen.body !== body) throw new ApiError('IDEMPOTENCY_MISMATCH');
        return { incident: this.incidents.get(seen.id)!, created: false };
      }
    }
    if (input.type === 'no-such-type') throw new ApiError('UNKNOWN_INCIDENT_TYPE');
    const incident: IncidentView = {
      id: `inc_${++this.n}`,
      type: input.type,
      priority: input.priority ?? 2,
      immediate: false,
      status: 'queued',
      location: input.location,
      reportedAt: input.reportedAt ?? new Date().toISOString(),
      assignedUnitIds: [],
    };
    this.incidents.set(incident.id, incident);
    if (key) this.keys.set(key, { id: incident.id, body });
    return { incident, created: true };
  }

  async listIncidents(
    filter: { status?: string; open?: boolean; limit?: number; offset?: number },
    actor: Actor,
  ) {
    this.enter('listIncidents', actor, filter);
    let list = [...this.incidents.values()];
    if (filter.status) list = list.filter((i) => i.status === filter.status);
    return list.slice(filter.offset ?? 0, (filter.offset ?? 0) + (filter.limit ?? 100));
  }

  async getIncident(id: string, actor: Actor): Promise<IncidentDetailView> {
    this.enter('getIncident', actor, id);
    const inc = this.incidents.get(id);
    if (!inc) throw new ApiError('NOT_FOUND');
    const assignments = [...this.assignments.values()].filter((a) => a.incidentId === id);
    return { ...inc, timeline: [], assignments };
  }

  async assign(incidentId: string, unitId: string, actor: Actor, reason?: string) {
    this.enter('assign', actor, incidentId, unitId, reason);
    if (!this.incidents.has(incidentId) || !this.units.has(unitId)) throw new ApiError('NOT_FOUND');
    return this.addAssignment(incidentId, unitId, { reason });
  }

  async cancelIncident(incidentId: string, actor: Actor, reason?: string) {
    this.enter('cancelIncident', actor, incidentId, reason);
    const inc = this.incidents.get(incidentId);
    if (!inc) throw new ApiError('NOT_FOUND');
    inc.status = 'cancelled';
    return inc;
  }

  async closeIncident(incidentId: string, actor: Actor, note?: string) {
    this.enter('closeIncident', actor, incidentId, note);
    const inc = this.incidents.get(incidentId);
    if (!inc) throw new ApiError('NOT_FOUND');
    inc.status = 'closed';
    return inc;
  }

  async listUnits(actor: Actor) {
    this.enter('listUnits', actor);
    return [...this.units.values()];
  }

  async upsertUnit(id: string, input: UnitUpsertInput, actor: Actor) {
    this.enter('upsertUnit', actor, id, input);
    return this.addUnit(id, { ...input, position: input.home, status: input.status ?? 'available' });
  }

  async reportLocation(unitId: string, position: [number, number], actor: Actor, atMs?: number) {
    this.enter('reportLocation', actor, unitId, position, atMs);
    this.own(actor, unitId);
    const u = this.units.get(unitId);
    if (!u) throw new ApiError('NOT_FOUND');
    u.position = position;
  }

  async reportStatus(unitId: string, status: UnitView['status'], actor: Actor, incidentId?: string) {
    this.enter('reportStatus', actor, unitId, status, incidentId);
    this.own(actor, unitId);
    const u = this.units.get(unitId);
    if (!u) throw new ApiError('NOT_FOUND');
    u.status = status;
    return u;
  }

  async acknowledge(assignmentId: string, accept: boolean, actor: Actor, reason?: string) {
    this.enter('acknowledge', actor, assignmentId, accept, reason);
    const a = this.assignments.get(assignmentId);
    if (!a) throw new ApiError('NOT_FOUND');
    this.own(actor, a.unitId);
    if (a.status !== 'offered') throw new ApiError('INVALID_TRANSITION');
    a.status = accept ? 'accepted' : 'declined';
    if (reason) a.reason = reason;
    return a;
  }

  async listAssignments(filter: { unitId?: string; active?: boolean }, actor: Actor) {
    this.enter('listAssignments', actor, filter);
    return [...this.assignments.values()].filter((a) => !filter.unitId || a.unitId === filter.unitId);
  }

  async district(actor: Actor) {
    this.enter('district', actor);
    return { areas: { type: 'FeatureCollection' as const, features: [] }, catalog: [], immediateTypes: [] };
  }

  async listAlerts(actor: Actor) {
    this.enter('listAlerts', actor);
    return [...this.alerts.values()];
  }

  async acknowledgeAlert(alertId: string, actor: Actor) {
    this.enter('acknowledgeAlert', actor, alertId);
    if (!this.alerts.delete(alertId)) throw new ApiError('NOT_FOUND');
  }

  async kpis(q: KpiQuery, actor: Actor) {
    this.enter('kpis', actor, q);
    return { incidents: { total: this.incidents.size }, query: q };
  }
}
