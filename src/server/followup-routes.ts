// Routes of appraisal and follow-up (issue #7), registered under /v1 beside routes.ts:
//
//   GET  /v1/kpis/export.csv                  dispatcher planner admin   figures as CSV
//   GET  /v1/kpis/report.html                 dispatcher planner admin   printable report
//   GET  /v1/duties                           dispatcher planner admin   duties lists
//   GET  /v1/followup                         dispatcher planner admin   are reviews / webhooks running here
//   GET  /v1/reviews                          dispatcher planner admin   review flags (with a FollowUp)
//   GET  /v1/reviews/:id                      dispatcher planner admin
//   POST /v1/reviews/:id/resolve              dispatcher admin           note required; audited
//   GET  /v1/webhooks/deliveries              dispatcher admin           default: the dead-letter list
//   POST /v1/webhooks/deliveries/:id/retry    dispatcher admin           a dead delivery again
//
// The KPI exports go through engine.kpis, so they carry the very numbers of GET /v1/kpis.

import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox';
import type { CatalogIndex } from '../core/catalog.ts';
import { dutyLists } from '../core/duties.ts';
import type { IncidentType } from '../core/types.ts';
import type { EngineApi } from '../engine/api.ts';
import type { FollowUp } from '../engine/followup.ts';
import type { LiveKpis } from '../engine/kpis.ts';
import { deliveryView } from '../engine/webhooks.ts';
import { REVIEW_KINDS } from '../kpi/review-rules.ts';
import { figuresCsv, renderFiguresReport } from '../report/kpi-report.ts';
import type { AreaFeature } from '../scenario/types.ts';
import { isStoreError } from '../store/store.ts';
import type { Role } from './auth.ts';
import { ApiError } from './errors.ts';
import { documented, errorResponses, IdParams, IdSchema, IsoTimeSchema } from './schemas.ts';

const DISPATCH: readonly Role[] = ['dispatcher', 'admin'];
const READ: readonly Role[] = ['dispatcher', 'planner', 'admin'];
const security = [{ bearerAuth: [] }];
const closed = { additionalProperties: false } as const;
const rolesText = (roles: readonly Role[], extra = '') =>
  `Roles: ${roles.join(', ')}.${extra ? ` ${extra}` : ''}`;

const GroupBySchema = Type.Union([
  Type.Literal('unit'),
  Type.Literal('department'),
  Type.Literal('area'),
  Type.Literal('type'),
]);

export const ExportQuery = Type.Object(
  {
    from: Type.Optional(IsoTimeSchema),
    to: Type.Optional(IsoTimeSchema),
    groupBy: Type.Optional(GroupBySchema),
  },
  closed,
);

export const ReportQuery = Type.Object(
  { from: Type.Optional(IsoTimeSchema), to: Type.Optional(IsoTimeSchema) },
  closed,
);

export const ReviewListQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('all')], { default: 'open' }),
    ),
    kind: Type.Optional(Type.Union(REVIEW_KINDS.map((k) => Type.Literal(k)))),
    unitId: Type.Optional(IdSchema),
    incidentId: Type.Optional(IdSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  },
  closed,
);

export const ResolveBody = Type.Object(
  { note: Type.String({ minLength: 1, maxLength: 2000, description: 'what was found and done' }) },
  closed,
);

export const DeliveryListQuery = Type.Object(
  {
    state: Type.Optional(
      Type.Union([Type.Literal('dead'), Type.Literal('pending'), Type.Literal('delivered')], {
        default: 'dead',
      }),
    ),
    incidentId: Type.Optional(IdSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  },
  closed,
);

const DeliveryParams = Type.Object({ id: Type.String({ pattern: '^[0-9]{1,15}$' }) }, closed);

const open = { additionalProperties: true } as const;

export const ReviewViewSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.String({ description: REVIEW_KINDS.join(', ') }),
    status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
    at: IsoTimeSchema,
    raisedAt: IsoTimeSchema,
    incidentId: Type.Optional(Type.String()),
    unitId: Type.Optional(Type.String()),
    summary: Type.String(),
    evidence: Type.Record(Type.String(), Type.Unknown()),
    resolvedAt: Type.Optional(IsoTimeSchema),
    resolvedBy: Type.Optional(Type.String()),
    note: Type.Optional(Type.String()),
  },
  open,
);

export const DeliveryViewSchema = Type.Object(
  {
    id: Type.Integer(),
    incidentId: Type.String(),
    seq: Type.Integer(),
    status: Type.String(),
    url: Type.String({ description: 'scheme, host and path (the query string is not shown)' }),
    idempotencyKey: Type.String(),
    state: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')]),
    attempts: Type.Integer(),
    createdAt: IsoTimeSchema,
    lastError: Type.Optional(Type.String()),
  },
  open,
);

export const DutiesSchema = Type.Object(
  {
    immediate: Type.Array(Type.String()),
    areas: Type.Array(
      Type.Object({ area: Type.String(), name: Type.String(), types: Type.Array(Type.String()) }, open),
    ),
    districtLevel: Type.Array(Type.String(), {
      description: 'types on no list: routed to the district level',
    }),
  },
  open,
);

/** A minimal catalogue index from the district configuration (labels, immediate flags). */
function catalogOf(list: IncidentType[]): CatalogIndex {
  const by = new Map(list.map((t) => [t.type, t]));
  return {
    list,
    immediateTypes: list.filter((t) => t.immediate).map((t) => t.type),
    get: (type) => by.get(type),
  };
}

const requireFollowUp = (f: FollowUp | undefined): FollowUp => {
  if (!f) throw new ApiError('UNAVAILABLE', 'review flags and webhooks are not running in this process');
  return f;
};

export const followUpRoutes: FastifyPluginAsyncTypebox<{ engine: EngineApi; followUp?: FollowUp }> = async (
  api,
  { engine, followUp },
) => {
  // ------------------------------------------------------------ exports
  api.get(
    '/kpis/export.csv',
    {
      config: { roles: READ },
      schema: {
        tags: ['kpis'],
        summary: 'Appraisal figures of a window as CSV: one row per group, then ALL',
        description: rolesText(
          READ,
          'Same window rules and numbers as GET /v1/kpis (default groupBy: type). Columns: group, incidents, then per segment (processing, turnout, travel, onScene, response) n / p50_s / p90_s, on-time counts and %, the immediate list, non-responses, declines (and by reason), reassignments, pre-emptions, units, busy seconds, utilisation %, incidents routed to the immediate list / a sub-district / the district level. text/csv; charset=utf-8.',
        ),
        security,
        querystring: ExportQuery,
        response: documented({ 200: Type.String(), ...errorResponses(400, 401, 403) }),
      },
    },
    async (req, reply) => {
      const groupBy = req.query.groupBy ?? 'type';
      const k = (await engine.kpis({ ...req.query, groupBy }, req.actor)) as LiveKpis;
      const name = `kpis_${k.period.from}_${k.period.to}_${groupBy}.csv`.replace(/[^A-Za-z0-9_.-]/g, '');
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .serializer((p: unknown) => p as string)
        .send(figuresCsv({ groups: k.groups ?? {}, all: k.figures }));
    },
  );

  api.get(
    '/kpis/report.html',
    {
      config: { roles: READ },
      schema: {
        tags: ['kpis'],
        summary: 'Printable HTML report of a window: figures per department and per type, charts',
        description: rolesText(
          READ,
          'Self-contained (inline CSS and SVG, no scripts): response segments per department, on-time % per incident type over the weeks of the window, declines by reason. Same window rules as GET /v1/kpis.',
        ),
        security,
        querystring: ReportQuery,
        response: documented({ 200: Type.String(), ...errorResponses(400, 401, 403) }),
      },
    },
    async (req, reply) => {
      const byDept = (await engine.kpis({ ...req.query, groupBy: 'department' }, req.actor)) as LiveKpis;
      const byType = (await engine.kpis(
        {
          ...req.query,
          from: req.query.from ?? byDept.period.from,
          to: byDept.period.to,
          groupBy: 'type',
          series: true,
        },
        req.actor,
      )) as LiveKpis;
      const district = await engine.district(req.actor);
      const html = renderFiguresReport({
        title: 'Dispatch performance report',
        period: `${byDept.period.from} → ${byDept.period.to}`,
        catalog: catalogOf(district.catalog),
        all: byType.figures,
        byDepartment: byDept.groups ?? {},
        byType: byType.groups ?? {},
        series: byType.onTimeByWeek!,
        notes: [
          ...(byType.truncated ? ['Only the first incidents of the window were read (truncated).'] : []),
        ],
      });
      return reply
        .type('text/html; charset=utf-8')
        .serializer((p: unknown) => p as string)
        .send(html);
    },
  );

  api.get(
    '/followup',
    {
      config: { roles: READ },
      schema: {
        tags: ['reviews'],
        summary: 'Whether review flags and reporter webhooks run in this process',
        description: rolesText(READ, 'Consoles check this before asking for the lists.'),
        security,
        response: documented({
          200: Type.Object({ reviews: Type.Boolean(), webhooks: Type.Boolean() }),
          ...errorResponses(401, 403),
        }),
      },
    },
    async () => ({ reviews: followUp !== undefined, webhooks: followUp !== undefined }),
  );

  // ------------------------------------------------------------ duties lists
  api.get(
    '/duties',
    {
      config: { roles: READ },
      schema: {
        tags: ['district'],
        summary:
          'Duties lists: the immediate-response list, each sub-district’s own list, the district level',
        description: rolesText(
          READ,
          'An incident whose type is on the immediate-response list is the emergency services’; one on its sub-district’s list (or its grid cell’s) is that sub-district’s; any other goes to the district level and is counted as such in the figures (`routing`).',
        ),
        security,
        response: documented({ 200: DutiesSchema, ...errorResponses(401, 403) }),
      },
    },
    async (req) => {
      const d = await engine.district(req.actor);
      return dutyLists({ list: d.catalog }, d.areas.features as AreaFeature[]);
    },
  );

  // ------------------------------------------------------------ review flags
  api.get(
    '/reviews',
    {
      config: { roles: READ },
      schema: {
        tags: ['reviews'],
        summary: 'Review flags (newest first), each with its evidence',
        description: rolesText(
          READ,
          'Kinds: on_scene_far, too_fast, repeated_non_response, declines_above_threshold, closed_without_on_scene. status: open (default), resolved or all.',
        ),
        security,
        querystring: ReviewListQuery,
        response: documented({
          200: Type.Object({ reviews: Type.Array(ReviewViewSchema) }),
          ...errorResponses(400, 401, 403, 503),
        }),
      },
    },
    async (req) => ({ reviews: await requireFollowUp(followUp).reviews.list(req.query, req.actor) }),
  );

  api.get(
    '/reviews/:id',
    {
      config: { roles: READ },
      schema: {
        tags: ['reviews'],
        summary: 'One review flag',
        description: rolesText(READ),
        security,
        params: IdParams,
        response: documented({ 200: ReviewViewSchema, ...errorResponses(400, 401, 403, 404, 503) }),
      },
    },
    async (req) => requireFollowUp(followUp).reviews.get(req.params.id, req.actor),
  );

  api.post(
    '/reviews/:id/resolve',
    {
      config: { roles: DISPATCH },
      schema: {
        tags: ['reviews'],
        summary: 'Resolve a review flag with a note (kept in the audit trail)',
        description: rolesText(
          DISPATCH,
          'Writes audit row `review.resolve` (who, when, the note) and a `review_resolved` event in the same transaction. 409 ALREADY_RESOLVED when it was resolved before.',
        ),
        security,
        params: IdParams,
        body: ResolveBody,
        response: documented({ 200: ReviewViewSchema, ...errorResponses(400, 401, 403, 404, 409, 503) }),
      },
    },
    async (req) => requireFollowUp(followUp).reviews.resolve(req.params.id, req.body.note, req.actor),
  );

  // ------------------------------------------------------------ webhook deliveries
  api.get(
    '/webhooks/deliveries',
    {
      config: { roles: DISPATCH },
      schema: {
        tags: ['webhooks'],
        summary: 'Reporter webhook deliveries; by default the dead-letter list',
        description: rolesText(
          DISPATCH,
          'state: dead (default), pending or delivered; with incidentId, that incident’s deliveries in order.',
        ),
        security,
        querystring: DeliveryListQuery,
        response: documented({
          200: Type.Object({ deliveries: Type.Array(DeliveryViewSchema) }),
          ...errorResponses(400, 401, 403, 503),
        }),
      },
    },
    async (req) => {
      const f = requireFollowUp(followUp);
      const q = req.query;
      const list = await f.side.listDeliveries({
        ...(q.incidentId !== undefined ? { incidentId: q.incidentId } : { state: q.state ?? 'dead' }),
        ...(q.incidentId !== undefined && q.state !== undefined ? { state: q.state } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
        ...(q.offset !== undefined ? { offset: q.offset } : {}),
      });
      return { deliveries: list.map(deliveryView) };
    },
  );

  api.post(
    '/webhooks/deliveries/:id/retry',
    {
      config: { roles: DISPATCH },
      schema: {
        tags: ['webhooks'],
        summary: 'Send a dead-lettered delivery again (attempts start from zero)',
        description: rolesText(DISPATCH, '409 NOT_DEAD_LETTER unless it is on the dead-letter list.'),
        security,
        params: DeliveryParams,
        response: documented({ 200: DeliveryViewSchema, ...errorResponses(400, 401, 403, 404, 409, 503) }),
      },
    },
    async (req) => {
      const f = requireFollowUp(followUp);
      try {
        return deliveryView(await f.webhooks.retry(Number(req.params.id)));
      } catch (err) {
        if (isStoreError(err, 'NOT_FOUND'))
          throw new ApiError('NOT_FOUND', `delivery ${req.params.id} not found`);
        if (isStoreError(err, 'CONFLICT')) throw new ApiError('NOT_DEAD_LETTER', (err as Error).message);
        throw err;
      }
    },
  );
};
