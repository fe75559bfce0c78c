// A follower node serves its clients by forwarding to the leader: HTTP requests under /v1
// verbatim (the leader authenticates them again), and the field units' socket events as the
// leader's HTTP calls on the unit's behalf (a short-lived token minted with the cluster's
// shared JWT secret). Without a leader (a fail-over in progress) the answer is 503
// UNAVAILABLE, which clients retry.

import type { FastifyInstance } from 'fastify';
import type { LonLat, UnitStatus } from '../core/types.ts';
import type { Actor, EngineApi } from '../engine/api.ts';
import { type AuthConfig, mintToken } from '../server/auth.ts';
import { ApiError, type ErrorCode } from '../server/errors.ts';
import type { AssignmentView, UnitView } from '../shared/events.ts';

export interface ClusterRole {
  readonly isLeader: boolean;
  readonly leader: { url: string } | undefined;
}

const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host']);

/** Forwards /v1 requests to the leader while this node follows. Register before the routes. */
export function forwardToLeader(app: FastifyInstance, role: ClusterRole): void {
  app.addHook('onRequest', async (req, reply) => {
    if (role.isLeader || !req.url.startsWith('/v1/')) return;
    const leader = role.leader;
    if (!leader) throw new ApiError('UNAVAILABLE', 'no leader: a fail-over is in progress; retry');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && !HOP_HEADERS.has(k)) headers[k] = v;
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    let res: Response;
    try {
      res = await fetch(leader.url + req.url, {
        method: req.method,
        headers,
        ...(hasBody ? { body: req.raw as unknown as ReadableStream, duplex: 'half' } : {}),
      } as RequestInit);
    } catch {
      throw new ApiError('UNAVAILABLE', 'the leader did not answer: a fail-over may be in progress; retry');
    }
    const body = Buffer.from(await res.arrayBuffer());
    reply.code(res.status);
    const type = res.headers.get('content-type');
    if (type) reply.header('content-type', type);
    for (const h of ['location', 'idempotent-replay', 'retry-after']) {
      const v = res.headers.get(h);
      if (v) reply.header(h, v);
    }
    return reply.send(body);
  });
}

/**
 * The engine as a node sees it: the local core while leading; the leader over HTTP for the
 * calls a socket makes while following (HTTP routes are forwarded whole, see above).
 */
export class ClusterEngine implements EngineApi {
  constructor(
    private readonly role: ClusterRole,
    private readonly local: () => EngineApi | undefined,
    private readonly auth: AuthConfig,
  ) {}

  private engine(): EngineApi {
    const e = this.role.isLeader ? this.local() : undefined;
    if (!e) throw new ApiError('UNAVAILABLE', 'this node does not run the core');
    return e;
  }

  private async call<T>(actor: Actor, method: string, path: string, body?: unknown): Promise<T> {
    if (this.role.isLeader) throw new ApiError('UNAVAILABLE', 'leadership changed; retry');
    const leader = this.role.leader;
    if (!leader) throw new ApiError('UNAVAILABLE', 'no leader: a fail-over is in progress; retry');
    if (actor.role === 'system') throw new ApiError('FORBIDDEN');
    const token = await mintToken(
      { role: actor.role, sub: actor.id, ...(actor.unitId ? { unitId: actor.unitId } : {}), ttlS: 60 },
      this.auth.secret,
      { issuer: this.auth.issuer, audience: this.auth.audience },
    );
    let res: Response;
    try {
      res = await fetch(leader.url + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch {
      throw new ApiError('UNAVAILABLE', 'the leader did not answer; retry');
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    if (res.status >= 400) {
      const err = (json?.error ?? json) as
        | { code?: string; message?: string; details?: Record<string, unknown> }
        | undefined;
      throw new ApiError((err?.code ?? 'UNAVAILABLE') as ErrorCode, err?.message, err?.details);
    }
    return json as T;
  }

  // ---- what sockets call: forwarded while following
  async acknowledge(
    assignmentId: string,
    accept: boolean,
    actor: Actor,
    reason?: string,
  ): Promise<AssignmentView> {
    if (this.role.isLeader) return this.engine().acknowledge(assignmentId, accept, actor, reason);
    return this.call(actor, 'POST', `/v1/assignments/${encodeURIComponent(assignmentId)}/ack`, {
      accept,
      ...(reason !== undefined ? { reason } : {}),
    });
  }
  async reportStatus(
    unitId: string,
    status: UnitStatus,
    actor: Actor,
    incidentId?: string,
  ): Promise<UnitView> {
    if (this.role.isLeader) return this.engine().reportStatus(unitId, status, actor, incidentId);
    return this.call(actor, 'POST', `/v1/units/${encodeURIComponent(unitId)}/status`, {
      status,
      ...(incidentId !== undefined ? { incidentId } : {}),
    });
  }
  async reportLocation(unitId: string, position: LonLat, actor: Actor, atMs?: number): Promise<void> {
    if (this.role.isLeader) return this.engine().reportLocation(unitId, position, actor, atMs);
    await this.call(actor, 'POST', `/v1/units/${encodeURIComponent(unitId)}/location`, {
      position,
      ...(atMs !== undefined ? { at: new Date(atMs).toISOString() } : {}),
    });
  }

  /** Sockets read a unit's assignments before a status report (src/server/status-guard.ts). */
  async listAssignments(
    filter: { unitId?: string; active?: boolean },
    actor: Actor,
  ): Promise<AssignmentView[]> {
    if (this.role.isLeader) return this.engine().listAssignments(filter, actor);
    const q = new URLSearchParams();
    if (filter.unitId !== undefined) q.set('unitId', filter.unitId);
    if (filter.active !== undefined) q.set('active', String(filter.active));
    const r = await this.call<{ assignments: AssignmentView[] }>(actor, 'GET', `/v1/assignments?${q}`);
    return r.assignments;
  }

  // ---- the rest run on the leader (a follower forwards their HTTP routes before they run)
  district: EngineApi['district'] = (...a) => this.engine().district(...a);
  reportIncident: EngineApi['reportIncident'] = (...a) => this.engine().reportIncident(...a);
  listIncidents: EngineApi['listIncidents'] = (...a) => this.engine().listIncidents(...a);
  getIncident: EngineApi['getIncident'] = (...a) => this.engine().getIncident(...a);
  assign: EngineApi['assign'] = (...a) => this.engine().assign(...a);
  cancelIncident: EngineApi['cancelIncident'] = (...a) => this.engine().cancelIncident(...a);
  closeIncident: EngineApi['closeIncident'] = (...a) => this.engine().closeIncident(...a);
  listUnits: EngineApi['listUnits'] = (...a) => this.engine().listUnits(...a);
  upsertUnit: EngineApi['upsertUnit'] = (...a) => this.engine().upsertUnit(...a);
  listAlerts: EngineApi['listAlerts'] = (...a) => this.engine().listAlerts(...a);
  acknowledgeAlert: EngineApi['acknowledgeAlert'] = (...a) => this.engine().acknowledgeAlert(...a);
  kpis: EngineApi['kpis'] = (...a) => this.engine().kpis(...a);
}
