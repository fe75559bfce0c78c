// The HTTP application: `buildApp(deps)` returns a configured fastify instance that never
// listens (the `serve` entry point does, and attaches the sockets). One error handler maps
// every refusal to `{ error: { code, message, details? } }` with the status of the error
// table; bad input is never a 5xx. OpenAPI at /docs, health at /healthz, Prometheus at /metrics.

import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifySchemaValidationError,
  type FastifyServerOptions,
} from 'fastify';
import { type ClusterRole, forwardToLeader } from '../cluster/forward.ts';
import type { EngineApi } from '../engine/api.ts';
import type { FollowUp } from '../engine/followup.ts';
import { OPEN_INCIDENT_STATUSES, type Store } from '../store/store.ts';
import { type AuthConfig, bearerToken, checkAuthConfig, requireRole, verifyToken } from './auth.ts';
import { errorBody, toApiError } from './error-map.ts';
import { ApiError, ERRORS, type ErrorCode } from './errors.ts';
import { followUpRoutes } from './followup-routes.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { v1Routes } from './routes.ts';
import { ErrorResponse } from './schemas.ts';

export interface AppDeps {
  engine: EngineApi;
  store: Store;
  auth: AuthConfig;
  /** Review flags and reporter webhooks (GET /v1/reviews, /v1/webhooks/…); 503 on those routes without it. */
  followUp?: FollowUp;
  /** Shared with the engine (decision latency) and the sockets (connected gauges). */
  metrics?: Metrics;
  /** fastify logger: false (default), true, or pino options. */
  logger?: FastifyServerOptions['logger'];
  /** Static console files served at `/` (index.html), when given. */
  consoleDir?: string;
  /** Largest accepted request body in bytes (default 64 KiB → 413 BODY_TOO_LARGE). */
  bodyLimit?: number;
  /** Per-client HTTP rate limit (by token subject, else IP) → 429 RATE_LIMITED. Default off. */
  rateLimit?: { max: number; timeWindowMs: number } | false;
  /** Trust X-Forwarded-* (behind a proxy). Default false. */
  trustProxy?: boolean;
  /** Serve the OpenAPI page at /docs (default true). */
  docs?: boolean;
  /**
   * Readiness for /healthz (e.g. `() => engine.running`): false answers 503 UNAVAILABLE, so a
   * load balancer stops sending traffic while the engine starts or drains. Default: ready.
   */
  ready?: () => boolean;
  /** Cluster mode: while this node follows, /v1 requests are forwarded to the leader. */
  cluster?: ClusterRole;
}

export type App = FastifyInstance & { readonly metrics: Metrics };

export const DEFAULT_BODY_LIMIT = 64 * 1024;

const API_DESCRIPTION = `
**Auth.** Bearer JWTs (HS256 only, \`iss\` and \`aud\` = \`dispatch\`, \`exp\` required) carry \`role\`
(dispatcher | unit | planner | admin) and, for a unit, \`unitId\`. Mint one with
\`dispatch token --role ROLE [--unit ID] [--ttl 8h]\`. Each route lists the roles it admits; a unit acts
only for itself (another unit's assignment or incident is 403 or 404).

**Formats.** JSON bodies only (64 KiB at most), closed schemas (an unknown field is 400), coordinates
\`[lon, lat]\` (WGS84), times ISO 8601 with offset. Lists come wrapped: \`{ "incidents": [...] }\`.

**Errors.** Every refusal is \`{ "error": { "code", "message", "details"? } }\`; switch on \`code\`:
${Object.entries(ERRORS)
  .map(([code, e]) => `\`${code}\` ${e.status}`)
  .join(' · ')}.

**Push (socket.io, path \`/socket.io\`).** Connect with \`auth: { token, lastSeq? }\`. Consoles (dispatcher,
planner, admin) receive \`incident:created\`, \`incident:updated\`, \`assignment:created\`,
\`assignment:updated\`, \`unit:updated\`, \`alert\`; a unit receives \`assignment:offer\` (acknowledge it with
the callback; unacknowledged offers are re-sent) and its own updates, and may emit \`ack\`
{assignmentId, accept, reason?}, \`status\` {status, incidentId?}, \`location\` {position, at?} with a reply
callback answered \`{ok: true}\` or \`{ok: false, code, message}\`. Every message is an envelope
\`{seq, at, data}\` with a per-stream seq, gap-free from 1: reconnect with \`auth.lastSeq\` (or emit
\`resync {lastSeq}\`) to receive what you missed before live messages; without it you get live messages
from the connection on. Handshake refusals come as \`connect_error\` with \`err.data.code\`
(UNAUTHENTICATED, TOKEN_EXPIRED, BAD_ORIGIN; the page's own origin and \`DISPATCH_ORIGINS\` pass); over
50 events/s a socket's events are dropped with RATE_LIMITED; an event outside this list is answered
UNKNOWN_EVENT; a frame that is not a socket.io packet gets \`error\` MALFORMED_JSON and the connection
closes. A unit reports \`en_route\` / \`on_scene\` only after accepting its offer (INVALID_TRANSITION).
\`GET /v1/messages?after=SEQ\` replays the same stream over HTTP.
`.trim();

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toApiError(err);
  if (e.code === 'UNAUTHENTICATED' || e.code === 'TOKEN_EXPIRED') {
    reply.header('www-authenticate', `Bearer error="invalid_token"`);
  }
  return reply.code(e.status).type('application/json; charset=utf-8').send(errorBody(e));
}

/** A plain decimal number as a query string or path segment writes it ("1e2", "010", " 5" are not). */
const DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/**
 * typebox's conversion of query strings, params and headers is lenient (`limit=1.5` becomes 1,
 * `open=1` becomes true): a converted number or boolean whose text is not its plain decimal
 * form or `true` / `false` is refused as VALIDATION_FAILED instead of silently changed.
 */
const strictValidatorCompiler: typeof TypeBoxValidatorCompiler = (route) => {
  type Validate = (input: unknown) => { value?: unknown; error?: FastifySchemaValidationError[] | Error };
  const validate = TypeBoxValidatorCompiler(route) as Validate;
  if (route.httpPart === 'body') return validate;
  return (input: unknown) => {
    // Convert may rewrite the object in place: keep the texts as they came.
    const raw: Record<string, unknown> =
      input && typeof input === 'object' ? { ...(input as Record<string, unknown>) } : {};
    const res = validate(input);
    if (res.error || !input || typeof input !== 'object' || !res.value || typeof res.value !== 'object')
      return res;
    const out = res.value as Record<string, unknown>;
    for (const [k, v] of Object.entries(out)) {
      const text = raw[k];
      if (typeof text !== 'string') continue;
      const exact =
        typeof v === 'number'
          ? DECIMAL.test(text) && Number(text) === v
          : typeof v === 'boolean'
            ? text === String(v)
            : true;
      if (!exact) {
        const expected = typeof v === 'number' ? 'a number in plain decimal form' : 'true or false';
        return {
          error: [
            {
              instancePath: `/${k}`,
              schemaPath: '',
              keyword: 'type',
              message: `must be ${expected}`,
              params: {},
            },
          ],
        };
      }
    }
    return res;
  };
};

/** Node's `clientError`: answered in the error shape with a table code, then the socket closes. */
function clientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'HEADERS_TOO_LARGE'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'REQUEST_TIMEOUT'
        : 'MALFORMED_REQUEST';
  const e = new ApiError(code);
  const body = JSON.stringify(errorBody(e));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

export function buildApp(deps: AppDeps): App {
  checkAuthConfig(deps.auth);
  const metrics = deps.metrics ?? createMetrics();
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    trustProxy: deps.trustProxy ?? false,
    // Never strip or coerce silently: unknown fields are refused by the schemas.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    // Bad URL encodings and the like answer in the same error shape.
    frameworkErrors: (err, _req, reply) => {
      sendError(reply, err);
    },
    // Refusals by node's HTTP parser (headers over 16 KiB, broken HTTP, slow requests) too.
    clientErrorHandler: clientError,
    routerOptions: { maxParamLength: 200 },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // typebox validates (bodies as sent; params/query/headers converted from strings, and only
  // when the conversion loses nothing); the responses go out with JSON.stringify (the view
  // schemas only document).
  app.setValidatorCompiler(strictValidatorCompiler);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.decorate('metrics', metrics);
  if (!metrics.hasIncidentCountSource()) {
    // Fallback until the engine installs its own source: count open incidents in the store.
    metrics.setIncidentCountSource(async () => {
      const counts: Record<string, number> = Object.fromEntries(OPEN_INCIDENT_STATUSES.map((s) => [s, 0]));
      for (const i of await deps.store.listIncidents({ open: true, limit: 1000 })) {
        counts[i.status] = (counts[i.status] ?? 0) + 1;
      }
      return counts;
    });
  }
  // Only JSON bodies: text/plain would reach the schemas as a string.
  app.removeContentTypeParser('text/plain');
  app.addSchema(ErrorResponse);

  app.setErrorHandler((err, req, reply) => {
    const e = toApiError(err);
    if (e.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.debug({ code: e.code }, 'request refused');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, new ApiError('ROUTE_NOT_FOUND')));

  // Authentication and the role gate, before the body is even parsed. Routes without
  // `config.roles` are public (health, metrics, docs, console).
  app.addHook('onRequest', async (req) => {
    const roles = req.routeOptions.config?.roles;
    if (!roles) return;
    const token = bearerToken(req.headers.authorization);
    if (!token) throw new ApiError('UNAUTHENTICATED');
    const principal = await verifyToken(token, deps.auth);
    requireRole(principal.actor, roles);
    req.actor = principal.actor;
  });
  if (deps.cluster) forwardToLeader(app, deps.cluster);
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (req.url.startsWith('/v1/')) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = { method: req.method, route };
    metrics.httpRequests.inc({ ...labels, status: String(reply.statusCode) });
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });

  if (deps.rateLimit) {
    const { max, timeWindowMs } = deps.rateLimit;
    app.register(import('@fastify/rate-limit'), {
      global: true,
      max,
      timeWindow: timeWindowMs,
      keyGenerator: (req) => bearerToken(req.headers.authorization)?.slice(-32) ?? req.ip,
      errorResponseBuilder: () => new ApiError('RATE_LIMITED'),
    });
  }

  if (deps.docs !== false) {
    app.register(fastifySwagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'dispatch — live engine API',
          version: '1',
          description: API_DESCRIPTION,
        },
        components: {
          securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        },
        tags: [
          { name: 'incidents' },
          { name: 'units' },
          { name: 'assignments' },
          { name: 'alerts' },
          { name: 'kpis' },
          { name: 'reviews' },
          { name: 'webhooks' },
          { name: 'district' },
          { name: 'messages' },
          { name: 'ops' },
        ],
      },
      refResolver: { buildLocalReference: (json, _base, _frag, i) => String(json.$id ?? `def-${i}`) },
    });
    app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: true });
  }

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Readiness: engine running and store reachable (no auth); 503 otherwise',
      },
    },
    async (_req, reply) => {
      if (deps.ready && !deps.ready()) {
        return sendError(reply, new ApiError('UNAVAILABLE'));
      }
      try {
        await deps.store.ping();
      } catch {
        return sendError(reply, new ApiError('UNAVAILABLE', 'The store does not answer'));
      }
      return {
        status: 'ok',
        store: deps.store.kind,
        ...(deps.cluster ? { role: deps.cluster.isLeader ? 'leader' : 'follower' } : {}),
      };
    },
  );

  app.get(
    '/metrics',
    { schema: { tags: ['ops'], summary: 'Prometheus metrics (text exposition format)', hide: false } },
    async (_req, reply) => {
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    },
  );

  app.register(v1Routes, { prefix: '/v1', engine: deps.engine, store: deps.store });
  app.register(followUpRoutes, {
    prefix: '/v1',
    engine: deps.engine,
    ...(deps.followUp ? { followUp: deps.followUp } : {}),
  });

  if (deps.consoleDir) {
    app.register(fastifyStatic, { root: deps.consoleDir, prefix: '/', index: ['index.html'] });
  } else {
    app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/docs'));
  }

  return app as unknown as App;
}
