// The /v1 routes. Each declares its schemas (closed objects) and the roles that pass the gate
// (`config.roles`, checked in app.ts before the body is parsed); the Actor built from the
// token goes to the engine, which enforces the object-level rules too (a unit acting only on
// its own assignments). Where the route itself knows the unit (path or query), it checks here.
//
//   POST /v1/incidents                 dispatcher admin
//   GET  /v1/incidents                 dispatcher planner admin
//   GET  /v1/incidents/:id             dispatcher planner admin unit (only incidents it serves)
//   POST /v1/incidents/:id/assign      dispatcher admin
//   POST /v1/incidents/:id/cancel      dispatcher admin
//   POST /v1/incidents/:id/close       dispatcher admin
//   GET  /v1/units                     every role (a unit: only itself)
//   PUT  /v1/units/:id                 admin
//   POST /v1/units/:id/location        unit (itself) admin
//   POST /v1/units/:id/status          unit (itself) admin
//   POST /v1/assignments/:id/ack       unit (its own; engine-checked) admin
//   GET  /v1/assignments               dispatcher planner admin unit (its own only)
//   GET  /v1/alerts                    dispatcher planner admin
//   POST /v1/alerts/:id/ack            dispatcher admin
//   GET  /v1/config                    every role (areas, catalogue)
//   GET  /v1/kpis                      dispatcher planner admin
//   GET  /v1/messages?after=SEQ        every role (its own stream: consoles or unit:<id>)

import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox';
import type { Actor, EngineApi } from '../engine/api.ts';
import type { Store } from '../store/store.ts';
import { type Role, recipientOf, requireOwnUnit } from './auth.ts';
import { ApiError } from './errors.ts';
import {
  AckBody,
  AlertViewSchema,
  AssignBody,
  AssignmentListQuery,
  AssignmentViewSchema,
  CancelBody,
  CloseBody,
  documented,
  EmptyQuery,
  errorResponses,
  IdempotencyHeaders,
  IdParams,
  IncidentDetailSchema,
  IncidentListQuery,
  IncidentViewSchema,
  KpiQuerySchema,
  LocationBody,
  MessageSchema,
  MessagesQuery,
  ReportIncidentBody,
  StatusBody,
  UnitUpsertBody,
  UnitViewSchema,
} from './schemas.ts';
import { guardStatusReport } from './status-guard.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed through the gate; absent = public route. */
    roles?: readonly Role[];
  }
  interface FastifyRequest {
    /** Set by the auth hook on every gated route. */
    actor: Actor;
  }
}

const DISPATCH: readonly Role[] = ['dispatcher', 'admin'];
const READ: readonly Role[] = ['dispatcher', 'planner', 'admin'];
const UNIT_SELF: readonly Role[] = ['unit', 'admin'];
const ALL: readonly Role[] = ['dispatcher', 'unit', 'planner', 'admin'];

const security = [{ bearerAuth: [] }];
const rolesText = (roles: readonly Role[], extra = '') =>
  `Roles: ${roles.join(', ')}.${extra ? ` ${extra}` : ''}`;

/** Epoch milliseconds of an envelope time kept in epoch seconds by the store. */
export const toEpochMs = (s: number): number => Math.round(s * 1000);

/** Routes whose body is all optional accept no body at all. */
const emptyBodyIsObject = async (req: { body: unknown }) => {
  if (req.body === undefined || req.body === null) req.body = {};
};

export const v1Routes: FastifyPluginAsyncTypebox<{ engine: EngineApi; store: Store }> = async (
  api,
  { engine, store },
) => {
  // ------------------------------------------------------------ incidents
  api.post(
    '/incidents',
    {
      config: { roles: DISPATCH },
      schema: {
        tags: ['incidents'],
        summary: 'Report an incident',
        description: rolesText(
          DISPATCH,
          'With `Idempotency-Key`, the same key never makes two incidents: 201 when created, 200 (header `Idempotent-Replayed: true`) with the first incident when the key was seen; the same key with a different body is 422 IDEMPOTENCY_MISMATCH.',
        ),
        security,
        headers: IdempotencyHeaders,
        body: ReportIncidentBody,
        response: documented({
          200: IncidentViewSchema,
          201: IncidentViewSchema,
          ...errorResponses(400, 401, 403, 413, 415, 422),
        }),
      },
    },
    async (req, reply) => {
      const key = req.headers['idempotency-key'];
      const { incident, created } = await engine.reportIncident(req.body, key, req.actor);
      reply.code(created ? 201 : 200).header('location', `/v1/incidents/${encodeURIComponent(incident.id)}`);
      if (!created) reply.header('idempotent-replayed', 'true');
      return incident;
    },
  );

  api.get(
    '/incidents',
    {
      config: { roles: READ },
      schema: {
        tags: ['incidents'],
        summary: 'List incidents (newest first)',
        description: rolesText(READ),
        security,
        querystring: IncidentListQuery,
        response: documented({
          200: Type.Object({
            incidents: Type.Array(IncidentViewSchema),
            limit: Type.Integer(),
            offset: Type.Integer(),
          }),
          ...errorResponses(400, 401, 403),
        }),
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 100;
      const offset = req.query.offset ?? 0;
      const incidents = await engine.listIncidents({ ...req.query, limit, offset }, req.actor);
      return { incidents, limit, offset };
    },
  );

  api.get(
    '/incidents/:id',
    {
      config: { roles: ALL },
      schema: {
        tags: ['incidents'],
        summary: 'One incident with its timeline and assignments',
        description: rolesText(ALL, 'A unit sees only incidents it has been assigned to.'),
        security,
        params: IdParams,
        response: documented({ 200: IncidentDetailSchema, ...errorResponses(400, 401, 403, 404) }),
      },
    },
    async (req) => {
      const detail = await engine.getIncident(req.params.id, req.actor);
      // Defence in depth (the engine checks too): a unit never reads an incident it does not serve.
      if (req.actor.role === 'unit' && !detail.assignments.some((a) => a.unitId === req.actor.unitId)) {
        throw new ApiError('NOT_FOUND');
      }
      return detail;
    },
  );

  api.post(
    '/incidents/:id/assign',
    {
      config: { roles: DISPATCH },
      schema: {
        tags: ['incidents'],
        summary: 'Dispatcher override: send this unit (pre-empting or reassigning it if needed)',
        description: rolesText(DISPATCH),
        security,
        params: IdParams,
        body: AssignBody,
        response: documented({ 200: AssignmentViewSchema, ...errorResponses(400, 401, 403, 404, 409) }),
      },
    },
    async (req) => engine.assign(req.params.id, req.body.unitId, req.actor, req.body.reason),
  );

  api.post(
    '/incidents/:id/cancel',
    {
      config: { roles: DISPATCH },
      preValidation: emptyBodyIsObject,
      schema: {
        tags: ['incidents'],
        summary: 'Cancel an incident (its units are released)',
        description: rolesText(DISPATCH),
        security,
        params: IdParams,
        body: CancelBody,
        response: documented({ 200: IncidentViewSchema, ...errorResponses(400, 401, 403, 404, 409) }),
      },
    },
    async (req) => engine.cancelIncident(req.params.id, req.actor, req.body.reason),
  );

  api.post(
    '/incidents/:id/close',
    {
      config: { roles: DISPATCH },
      preValidation: emptyBodyIsObject,
      schema: {
        tags: ['incidents'],
        summary: 'Close a resolved incident',
        description: rolesText(DISPATCH),
        security,
        params: IdParams,
        body: CloseBody,
        response: documented({ 200: IncidentViewSchema, ...errorResponses(400, 401, 403, 404, 409) }),
      },
    },
    async (req) => engine.closeIncident(req.params.id, req.actor, req.body.note),
  );

  // ------------------------------------------------------------ units
  api.get(
    '/units',
    {
      config: { roles: ALL },
      schema: {
        tags: ['units'],
        summary: 'Every unit with its status and position (a unit token sees only its own unit)',
        description: rolesText(ALL),
        security,
        querystring: EmptyQuery,
        response: documented({
          200: Type.Object({ units: Type.Array(UnitViewSchema) }),
          ...errorResponses(401, 403),
        }),
      },
    },
    async (req) => ({ units: await engine.listUnits(req.actor) }),
  );

  api.put(
    '/units/:id',
    {
      config: { roles: ['admin'] },
      schema: {
        tags: ['units'],
        summary: 'Register or update a unit',
        description: rolesText(['admin']),
        security,
        params: IdParams,
        body: UnitUpsertBody,
        response: documented({ 200: UnitViewSchema, ...errorResponses(400, 401, 403, 409) }),
      },
    },
    async (req) => engine.upsertUnit(req.params.id, req.body, req.actor),
  );

  api.post(
    '/units/:id/location',
    {
      config: { roles: UNIT_SELF },
      schema: {
        tags: ['units'],
        summary: 'Report a position fix',
        description: rolesText(UNIT_SELF, 'A unit reports only for itself.'),
        security,
        params: IdParams,
        body: LocationBody,
        response: documented({ 204: Type.Null(), ...errorResponses(400, 401, 403, 404) }),
      },
    },
    async (req, reply) => {
      requireOwnUnit(req.actor, req.params.id);
      const at = req.body.at;
      const atMs = typeof at === 'string' ? Date.parse(at) : at;
      await engine.reportLocation(req.params.id, req.body.position, req.actor, atMs);
      return reply.code(204).send();
    },
  );

  api.post(
    '/units/:id/status',
    {
      config: { roles: UNIT_SELF },
      schema: {
        tags: ['units'],
        summary: 'Report a status: en_route, on_scene, available (cleared), off_duty, out_of_service',
        description: rolesText(
          UNIT_SELF,
          'A unit reports only for itself. en_route and on_scene need an accepted assignment (an open offer is acknowledged first: 409 INVALID_TRANSITION).',
        ),
        security,
        params: IdParams,
        body: StatusBody,
        response: documented({ 200: UnitViewSchema, ...errorResponses(400, 401, 403, 404, 409) }),
      },
    },
    async (req) => {
      requireOwnUnit(req.actor, req.params.id);
      const { status } = req.body;
      const incidentId = await guardStatusReport(
        engine,
        req.params.id,
        status,
        req.actor,
        req.body.incidentId,
      );
      return engine.reportStatus(req.params.id, status, req.actor, incidentId);
    },
  );

  // ------------------------------------------------------------ assignments
  api.post(
    '/assignments/:id/ack',
    {
      config: { roles: UNIT_SELF },
      schema: {
        tags: ['assignments'],
        summary: 'Accept or decline an offer (a reason is required when declining)',
        description: rolesText(UNIT_SELF, 'A unit acknowledges only its own offers.'),
        security,
        params: IdParams,
        body: AckBody,
        response: documented({ 200: AssignmentViewSchema, ...errorResponses(400, 401, 403, 404, 409) }),
      },
    },
    async (req) => {
      if (!req.body.accept && !req.body.reason?.trim()) {
        throw new ApiError('VALIDATION_FAILED', 'body.reason: required when declining', {
          errors: [{ path: 'body.reason', message: 'required when declining' }],
        });
      }
      return engine.acknowledge(req.params.id, req.body.accept, req.actor, req.body.reason);
    },
  );

  api.get(
    '/assignments',
    {
      config: { roles: ALL },
      schema: {
        tags: ['assignments'],
        summary: 'List assignments',
        description: rolesText(ALL, 'A unit sees only its own (unitId defaults to it).'),
        security,
        querystring: AssignmentListQuery,
        response: documented({
          200: Type.Object({ assignments: Type.Array(AssignmentViewSchema) }),
          ...errorResponses(400, 401, 403),
        }),
      },
    },
    async (req) => {
      const filter = { ...req.query };
      if (req.actor.role === 'unit') {
        if (filter.unitId !== undefined) requireOwnUnit(req.actor, filter.unitId);
        filter.unitId = req.actor.unitId;
      }
      const assignments = await engine.listAssignments(filter, req.actor);
      if (req.actor.role === 'unit')
        return { assignments: assignments.filter((a) => a.unitId === filter.unitId) };
      return { assignments };
    },
  );

  // ------------------------------------------------------------ alerts, kpis
  api.get(
    '/alerts',
    {
      config: { roles: READ },
      schema: {
        tags: ['alerts'],
        summary: 'Open alerts',
        description: rolesText(READ),
        security,
        querystring: EmptyQuery,
        response: documented({
          200: Type.Object({ alerts: Type.Array(AlertViewSchema) }),
          ...errorResponses(401, 403),
        }),
      },
    },
    async (req) => ({ alerts: await engine.listAlerts(req.actor) }),
  );

  api.post(
    '/alerts/:id/ack',
    {
      config: { roles: DISPATCH },
      preValidation: emptyBodyIsObject,
      schema: {
        tags: ['alerts'],
        summary: 'Acknowledge an alert',
        description: rolesText(DISPATCH),
        security,
        params: IdParams,
        body: Type.Object({}, { additionalProperties: false }),
        response: documented({ 204: Type.Null(), ...errorResponses(401, 403, 404) }),
      },
    },
    async (req, reply) => {
      await engine.acknowledgeAlert(req.params.id, req.actor);
      return reply.code(204).send();
    },
  );

  api.get(
    '/config',
    {
      config: { roles: ALL },
      schema: {
        tags: ['district'],
        summary:
          'The district: areas (GeoJSON sub-districts and grid cells), the incident-type catalogue and the immediate-response list',
        security,
        response: documented({ 200: Type.Unknown(), ...errorResponses(401) }),
      },
    },
    async (req) => engine.district(req.actor),
  );

  api.get(
    '/kpis',
    {
      config: { roles: READ },
      schema: {
        tags: ['kpis'],
        summary:
          'Live KPIs (the replay KPI object over a time window) and appraisal figures, optionally grouped',
        description: rolesText(
          READ,
          'Window: from/to ISO 8601 (none: today so far; only from: until now; only to: 400 TIME_WINDOW_UNBOUNDED; to not after from: 400 INVALID_TIME_WINDOW; at most 31 days). `figures` (and `groups` per unit, department, area or type) hold the response segments (processing, turnout, travel, on scene, response: p50/p90), on-time % (all, immediate list), non-responses, declines by reason, reassignments, pre-emptions, utilisation and duty routing — computed by the same code as a replay’s `dispatch figures`. `series=true` adds the on-time % per type week by week.',
        ),
        security,
        querystring: KpiQuerySchema,
        response: documented({ 200: Type.Unknown(), ...errorResponses(400, 401, 403) }),
      },
    },
    async (req) => {
      const { from, to } = req.query;
      if (from && to && Date.parse(from) >= Date.parse(to)) {
        throw new ApiError('INVALID_TIME_WINDOW', 'from must be before to', { field: 'from' });
      }
      return engine.kpis(req.query, req.actor);
    },
  );

  // ------------------------------------------------------------ message replay
  api.get(
    '/messages',
    {
      config: { roles: ALL },
      schema: {
        tags: ['messages'],
        summary: "Replay the caller's push messages after a seq (the socket resync over HTTP)",
        description: rolesText(
          ALL,
          'Consoles (dispatcher, planner, admin) read the `consoles` stream, a unit its own `unit:<id>` stream. `lastSeq` is the newest seq of the stream; page with `after` = the last seq received.',
        ),
        security,
        querystring: MessagesQuery,
        response: documented({
          200: Type.Object({
            recipient: Type.String(),
            messages: Type.Array(MessageSchema),
            lastSeq: Type.Integer(),
          }),
          ...errorResponses(400, 401, 403),
        }),
      },
    },
    async (req) => {
      const recipient = recipientOf(req.actor);
      const rows = await store.messagesSince(recipient, req.query.after, req.query.limit ?? 500);
      const lastSeq = Math.max(await store.lastMessageSeq(recipient), rows.at(-1)?.seq ?? 0);
      const messages = rows.map((m) => ({
        event: m.event,
        seq: m.seq,
        at: toEpochMs(m.at),
        data: m.payload,
      }));
      return { recipient, messages, lastSeq };
    },
  );
};
