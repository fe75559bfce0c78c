// typebox schemas of the HTTP API and of the socket events units send. Every request object
// is closed (`additionalProperties: false`: an unknown field is a 400 VALIDATION_FAILED);
// coordinates are [lon, lat] with lon in −180..180 and lat in −90..90 (typebox refuses
// non-finite numbers). Response schemas document the views for the OpenAPI page; responses
// are serialised with JSON.stringify, so a view field the schema does not list still goes out.

import { type Static, type TSchema, Type } from 'typebox';

const closed = { additionalProperties: false } as const;

export const IdSchema = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' });
export const LonSchema = Type.Number({ minimum: -180, maximum: 180, description: 'longitude, degrees' });
export const LatSchema = Type.Number({ minimum: -90, maximum: 90, description: 'latitude, degrees' });
/** `[lon, lat]` as a JSON Schema 2020-12 tuple (prefixItems), as OpenAPI 3.1 shows it. */
export const LonLatSchema = Type.Unsafe<[number, number]>({
  type: 'array',
  prefixItems: [LonSchema, LatSchema],
  items: false,
  minItems: 2,
  description: '[lon, lat], WGS84 (GeoJSON order)',
});
export const IsoTimeSchema = Type.String({ format: 'date-time', description: 'ISO 8601 with offset' });
const Text = (max: number, description?: string) => Type.String({ maxLength: max, description });
const Reason = Type.String({ minLength: 1, maxLength: 500 });

export const PrioritySchema = Type.Union(
  [Type.Literal(1), Type.Literal(2), Type.Literal(3), Type.Literal(4)],
  {
    description: '1 = highest … 4',
  },
);
export const IncidentStatusSchema = Type.Union([
  Type.Literal('queued'),
  Type.Literal('assigned'),
  Type.Literal('en_route'),
  Type.Literal('on_scene'),
  Type.Literal('resolved'),
  Type.Literal('closed'),
  Type.Literal('cancelled'),
]);
export const UnitStatusSchema = Type.Union([
  Type.Literal('available'),
  Type.Literal('offered'),
  Type.Literal('en_route'),
  Type.Literal('on_scene'),
  Type.Literal('off_duty'),
  Type.Literal('out_of_service'),
]);
export const ReportableStatusSchema = Type.Union(
  [
    Type.Literal('en_route'),
    Type.Literal('on_scene'),
    Type.Literal('available'),
    Type.Literal('off_duty'),
    Type.Literal('out_of_service'),
  ],
  {
    description: 'what a unit may report: en_route, on_scene, available (cleared), off_duty, out_of_service',
  },
);

// ---------------------------------------------------------------- params, headers, queries

export const IdParams = Type.Object({ id: IdSchema }, closed);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 200,
      pattern: '^[\\x21-\\x7E]+$',
      description: 'the same key never makes two incidents (a repeat answers 200 with the first)',
    }),
  ),
});

export const IncidentListQuery = Type.Object(
  {
    status: Type.Optional(IncidentStatusSchema),
    open: Type.Optional(Type.Boolean({ description: 'only open (true) or only closed/cancelled (false)' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  },
  closed,
);

export const AssignmentListQuery = Type.Object(
  {
    unitId: Type.Optional(IdSchema),
    active: Type.Optional(Type.Boolean({ description: 'only offered / accepted / en route / on scene' })),
  },
  closed,
);

export const KpiQuerySchema = Type.Object(
  {
    from: Type.Optional(IsoTimeSchema),
    to: Type.Optional(IsoTimeSchema),
    groupBy: Type.Optional(
      Type.Union([
        Type.Literal('unit'),
        Type.Literal('department'),
        Type.Literal('area'),
        Type.Literal('type'),
      ]),
    ),
    series: Type.Optional(
      Type.Boolean({ description: 'add onTimeByWeek: on-time % per type, week by week' }),
    ),
  },
  closed,
);

export const MessagesQuery = Type.Object(
  {
    after: Type.Integer({ minimum: 0, description: 'last seq the client has seen (0: from the start)' }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 500 })),
  },
  closed,
);

export const EmptyQuery = Type.Object({}, closed);

// ---------------------------------------------------------------- bodies

export const ReportIncidentBody = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 64, description: 'a catalogue type, e.g. structure-fire' }),
    location: LonLatSchema,
    priority: Type.Optional(PrioritySchema),
    reportedAt: Type.Optional(IsoTimeSchema),
    source: Type.Optional(Text(64, 'hotline, sensor, department feed, console…')),
    description: Type.Optional(Text(2000)),
    callback: Type.Optional(Text(500, 'an HTTPS callback URL or a reporter reference')),
  },
  closed,
);

export const AssignBody = Type.Object({ unitId: IdSchema, reason: Type.Optional(Reason) }, closed);
export const CancelBody = Type.Object({ reason: Type.Optional(Reason) }, closed);
export const CloseBody = Type.Object({ note: Type.Optional(Type.String({ maxLength: 2000 })) }, closed);

export const UnitUpsertBody = Type.Object(
  {
    department: Type.String({ minLength: 1, maxLength: 64 }),
    capabilities: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 32 }),
    home: LonLatSchema,
    homeArea: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    speedKmh: Type.Number({ exclusiveMinimum: 0, maximum: 400 }),
    turnoutS: Type.Number({ minimum: 0, maximum: 3600 }),
    status: Type.Optional(UnitStatusSchema),
  },
  closed,
);

const EpochMs = Type.Integer({
  minimum: 0,
  maximum: 8_640_000_000_000_000,
  description: 'epoch milliseconds',
});

export const LocationBody = Type.Object(
  {
    position: LonLatSchema,
    at: Type.Optional(
      Type.Union([IsoTimeSchema, EpochMs], { description: 'time of the fix (default: receipt)' }),
    ),
    accuracyM: Type.Optional(Type.Number({ minimum: 0, maximum: 100_000 })),
  },
  closed,
);

export const StatusBody = Type.Object(
  { status: ReportableStatusSchema, incidentId: Type.Optional(IdSchema) },
  closed,
);

export const AckBody = Type.Object(
  {
    accept: Type.Boolean(),
    reason: Type.Optional(
      Type.String({ minLength: 1, maxLength: 500, description: 'required when declining' }),
    ),
  },
  closed,
);

// ---------------------------------------------------------------- socket events (units)

export const AckEvent = Type.Object(
  {
    assignmentId: IdSchema,
    accept: Type.Boolean(),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  },
  closed,
);
export const StatusEvent = StatusBody;
export const LocationEvent = Type.Object(
  {
    position: LonLatSchema,
    at: Type.Optional(EpochMs),
    accuracyM: Type.Optional(Type.Number({ minimum: 0 })),
  },
  closed,
);
export const ResyncEvent = Type.Object({ lastSeq: Type.Integer({ minimum: 0 }) }, closed);

// ---------------------------------------------------------------- views (documentation)

const open = { additionalProperties: true } as const;

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable code of the error table; switch on this' }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorResponse' },
);

export const IncidentViewSchema = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    priority: PrioritySchema,
    immediate: Type.Boolean(),
    status: IncidentStatusSchema,
    location: LonLatSchema,
    cell: Type.Optional(Type.String()),
    area: Type.Optional(Type.String()),
    reportedAt: IsoTimeSchema,
    targetAt: Type.Optional(IsoTimeSchema),
    assignedUnitIds: Type.Array(Type.String()),
    queuedReason: Type.Optional(Type.String()),
  },
  open,
);

export const ExplanationSchema = Type.Object(
  {
    summary: Type.String(),
    etaS: Type.Number(),
    targetS: Type.Number(),
    lateS: Type.Number(),
    alternatives: Type.Array(
      Type.Object({ unitId: Type.String(), etaS: Type.Number(), reason: Type.String() }),
    ),
  },
  open,
);

export const AssignmentViewSchema = Type.Object(
  {
    id: Type.String(),
    incidentId: Type.String(),
    unitId: Type.String(),
    capability: Type.String(),
    status: Type.String({
      description:
        'offered, accepted, en_route, on_scene, cleared, declined, timed_out, preempted, cancelled',
    }),
    etaS: Type.Number(),
    offeredAt: IsoTimeSchema,
    ackDeadline: Type.Optional(IsoTimeSchema),
    preemptedFrom: Type.Optional(Type.String()),
    crossesJurisdiction: Type.Boolean(),
    explanation: Type.Optional(ExplanationSchema),
    reason: Type.Optional(Type.String()),
  },
  open,
);

export const IncidentDetailSchema = Type.Object(
  {
    ...IncidentViewSchema.properties,
    timeline: Type.Array(
      Type.Object(
        {
          at: IsoTimeSchema,
          kind: Type.String(),
          actor: Type.String(),
          unitId: Type.Optional(Type.String()),
          data: Type.Record(Type.String(), Type.Unknown()),
        },
        open,
      ),
    ),
    assignments: Type.Array(AssignmentViewSchema),
  },
  open,
);

export const UnitViewSchema = Type.Object(
  {
    id: Type.String(),
    department: Type.String(),
    capabilities: Type.Array(Type.String()),
    status: UnitStatusSchema,
    position: LonLatSchema,
    home: LonLatSchema,
    homeArea: Type.Optional(Type.String()),
    incidentId: Type.Optional(Type.String()),
  },
  open,
);

export const AlertViewSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.String({
      description: 'no_ack, target_breached, no_capable_unit, repeated_non_response, on_scene_far',
    }),
    severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]),
    message: Type.String(),
    incidentId: Type.Optional(Type.String()),
    unitId: Type.Optional(Type.String()),
    at: IsoTimeSchema,
  },
  open,
);

export const MessageSchema = Type.Object(
  {
    event: Type.String({ description: 'the socket event name, e.g. incident:updated' }),
    seq: Type.Integer(),
    at: Type.Integer({ description: 'epoch milliseconds' }),
    data: Type.Unknown(),
  },
  open,
);

export const errorResponses = (...statuses: number[]): Record<number, TSchema> =>
  Object.fromEntries(statuses.map((s) => [s, Type.Ref('ErrorResponse')]));

/**
 * Response schemas for the OpenAPI page only: widened so handlers return the engine's view
 * types (the serializer is JSON.stringify, see app.ts).
 */
export const documented = (responses: Record<number, TSchema>): Record<number, TSchema> => responses;

export type ReportIncidentBodyT = Static<typeof ReportIncidentBody>;
export type UnitUpsertBodyT = Static<typeof UnitUpsertBody>;
export type LocationBodyT = Static<typeof LocationBody>;
