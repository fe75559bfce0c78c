// The socket.io side of the live engine, attached to the fastify HTTP server.
//
// - Handshake: the Origin must be the page's own or on the allow-list (else connect_error
//   BAD_ORIGIN), and
//   `auth.token` (or an `Authorization: Bearer` header) must verify with the same rules as
//   HTTP (else connect_error UNAUTHENTICATED / TOKEN_EXPIRED); `err.data.code` carries the code.
//   A socket is disconnected (error TOKEN_EXPIRED) when its token expires.
// - Rooms: `consoles` for dispatcher / planner / admin, `unit:<id>` for a unit; the room
//   name is the engine's push-message recipient.
// - Delivery: every message the engine publishes is an envelope with a per-recipient,
//   gap-free seq. Without `auth.lastSeq` a socket gets live messages from its connection on
//   (`lastSeq: 0` replays the whole retained stream). Each socket delivers in seq order: on
//   connect with `auth.lastSeq` (or on a
//   `resync` event) it replays everything after it from the store (store.messagesSince)
//   while buffering live messages, then flushes the buffer, so the client sees no gap and no
//   reorder. A live message that skips a seq triggers the same catch-up from the store.
//   Offers (`assignment:offer`) are sent with an acknowledgement and re-sent up to
//   `offerRetries` times if not acknowledged within `offerAckTimeoutMs`; clients drop any
//   seq they have already seen.
// - socket.io's connection-state recovery is NOT enabled: recovered sockets would skip the
//   middlewares (auth, origin). The store-backed resync replaces it.
// - Unit events `ack`, `status`, `location` call the engine with the unit's Actor and answer
//   `{ ok: true }` or `{ ok: false, code, message }` (error table codes); a console sending
//   them gets FORBIDDEN. Incoming events are rate-limited per socket (token bucket, default
//   50/s with a burst of 50): over the limit an event is dropped and answered RATE_LIMITED.
//   An event name outside the contract is answered UNKNOWN_EVENT; a frame socket.io cannot
//   decode gets an `error` MALFORMED_JSON and the connection is closed (a frame over 64 KiB
//   is cut by the transport: WebSocket close 1009).

import type { Server as HttpServer } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { type ExtendedError, Server, type ServerOptions, type Socket } from 'socket.io';
import { Compile } from 'typebox/compile';
import type { Actor, EngineApi } from '../engine/api.ts';
import type { Recipient } from '../engine/ports.ts';
import type {
  AckInput,
  ClientToServerEvents,
  LocationInput,
  Reply,
  ServerToClientEvents,
  StatusInput,
} from '../shared/events.ts';
import type { MessageRecord, Store } from '../store/store.ts';
import { type AuthConfig, bearerToken, recipientOf, verifyToken } from './auth.ts';
import { toApiError, validationError } from './error-map.ts';
import { ApiError, type ErrorCode } from './errors.ts';
import type { Metrics } from './metrics.ts';
import { TokenBucket } from './rate.ts';
import { AckEvent, LocationEvent, ResyncEvent, StatusEvent } from './schemas.ts';
import { SocketPublisher } from './socket-publisher.ts';
import { guardStatusReport } from './status-guard.ts';

type Envelope = { seq: number; at: number; data: unknown };
type Message = { event: string; env: Envelope };

interface InterServerEvents {
  /** Messages published on one node, for the sockets of the others (batched per tick). */
  'dispatch:publish': (messages: [recipient: string, event: string, envelope: Envelope][]) => void;
}

interface SocketData {
  actor: Actor;
  recipient: Recipient;
  exp: number;
  session?: Session;
}

export type DispatchIo = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
type DispatchSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/** Epoch ms of a stored message (the store keeps epoch seconds). */
const envelopeOf = (m: MessageRecord): Message => ({
  event: m.event,
  env: { seq: m.seq, at: Math.round(m.at * 1000), data: m.payload },
});

/** The events a client may send (src/shared/events.ts ClientToServerEvents). */
const CLIENT_EVENTS: ReadonlySet<string> = new Set<keyof ClientToServerEvents>([
  'ack',
  'status',
  'location',
  'resync',
]);

export { SocketPublisher };

const RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

export interface SocketDeps {
  engine: EngineApi;
  store: Store;
  auth: AuthConfig;
  /** Bound to this server's rooms. */
  publisher?: SocketPublisher;
  metrics?: Metrics;
  /**
   * Origins allowed besides the page's own (exact `scheme://host[:port]`, or `*` for any). The
   * same host as the request (Origin host = Host header) is always allowed. Requests without
   * an Origin (non-browser clients) pass unless `requireOrigin`.
   */
  origins?: readonly string[];
  requireOrigin?: boolean;
  /** Incoming events per second per socket (token bucket; default 50/s, burst 50). */
  rateLimit?: { perSecond: number; burst?: number };
  /** Time a client has to acknowledge an offer before it is re-sent (default 5000 ms). */
  offerAckTimeoutMs?: number;
  /** Re-sends of an unacknowledged offer (default 2). */
  offerRetries?: number;
  /**
   * Several server processes behind one adapter (e.g. @socket.io/redis-adapter, set with
   * `io.adapter(...)` before clients connect): published messages are also forwarded to the
   * other nodes with serverSideEmit.
   */
  cluster?: boolean;
  /** socket.io adapter (cluster mode: `createAdapter(pub, sub)` of @socket.io/redis-adapter). */
  adapter?: ServerOptions['adapter'];
  /** socket.io path (default `/socket.io`). */
  path?: string;
  /**
   * Whether the engine serves (as /healthz). Handshakes wait for it, up to `admitWaitMs`
   * (default 15 s; then UNAVAILABLE): after a crash a thousand units reconnect at once, and
   * their handshakes and catch-up reads held the restarted engine's start up.
   */
  ready?: () => boolean;
  admitWaitMs?: number;
  /** Logger for failures (default: the fastify logger when attached to an app, else none). */
  log?: { warn: (obj: unknown, msg?: string) => void; error: (obj: unknown, msg?: string) => void };
}

export interface SocketsHandle {
  readonly io: DispatchIo;
  readonly publisher: SocketPublisher;
  /** Connected sockets by kind. */
  clients(): { consoles: number; units: number };
  /** Disconnects every client and stops socket.io (does not close the HTTP server). */
  close(): Promise<void>;
}

const REPLAY_PAGE = 500;

/** Per-socket ordered delivery with store-backed catch-up. */
class Session {
  lastSent = 0;
  private pending = 0;
  private buffer: Message[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly socket: DispatchSocket,
    readonly recipient: Recipient,
    private readonly deps: SocketDeps,
    private readonly log: SocketDeps['log'],
  ) {}

  get syncing(): boolean {
    return this.pending > 0;
  }

  close(): void {
    this.closed = true;
    this.buffer = [];
  }

  deliverLive(m: Message): void {
    if (this.closed) return;
    if (this.syncing) {
      this.buffer.push(m);
      return;
    }
    if (m.env.seq <= this.lastSent) return;
    if (m.env.seq !== this.lastSent + 1) {
      // A seq was skipped (published out of order, or from another node): fetch the gap.
      this.buffer.push(m);
      void this.sync(this.lastSent, false).catch(() => {});
      return;
    }
    this.emit(m);
  }

  /**
   * Replays from the store every message after `after` ('head': none, start from the current
   * last seq), then flushes live messages buffered meanwhile. `explicit`: the client asked,
   * so messages it was already sent are sent again. Resolves with the number replayed.
   */
  sync(after: number | 'head', explicit: boolean): Promise<number> {
    this.pending++;
    const run = async (): Promise<number> => {
      let replayed = 0;
      try {
        const { store } = this.deps;
        const head = await store.lastMessageSeq(this.recipient);
        if (after === 'head') {
          // Live from now: what was published after the socket joined its room (buffered
          // meanwhile) still goes out, even when the store's head already counts it.
          let firstLive = Number.POSITIVE_INFINITY;
          for (const m of this.buffer) firstLive = Math.min(firstLive, m.env.seq);
          this.lastSent = Math.max(this.lastSent, Math.min(head, firstLive - 1));
          return 0;
        }
        // A client ahead of the store (the store was reset) restarts from the head.
        let cursor = Math.min(after, head);
        if (!explicit) this.lastSent = Math.max(this.lastSent, cursor);
        for (;;) {
          if (this.closed) return replayed;
          const page = await store.messagesSince(this.recipient, cursor, REPLAY_PAGE);
          for (const rec of page) {
            if (this.closed) return replayed;
            if (explicit || rec.seq > this.lastSent) {
              this.emit(envelopeOf(rec));
              replayed++;
            }
            this.lastSent = Math.max(this.lastSent, rec.seq);
            cursor = rec.seq;
          }
          if (page.length < REPLAY_PAGE) break;
        }
        return replayed;
      } finally {
        this.pending--;
        if (this.pending === 0) this.flush();
      }
    };
    const p = this.chain.then(run);
    this.chain = p.catch((err) => this.log?.warn({ err, recipient: this.recipient }, 'socket replay failed'));
    return p;
  }

  /** Sends buffered live messages in seq order (a gap the store could not fill is accepted). */
  private flush(): void {
    const buf = this.buffer.sort((a, b) => a.env.seq - b.env.seq);
    this.buffer = [];
    for (const m of buf) {
      if (this.closed) return;
      if (m.env.seq <= this.lastSent) continue;
      this.emit(m);
    }
  }

  private emit(m: Message): void {
    if (RESERVED.has(m.event)) return;
    this.lastSent = Math.max(this.lastSent, m.env.seq);
    this.deps.metrics?.socketMessages.inc({ event: m.event });
    if (m.event === 'assignment:offer') {
      this.emitOffer(m.env as Parameters<ServerToClientEvents['assignment:offer']>[0], 0);
      return;
    }
    // Event names come from the engine; the typed map cannot check a runtime string.
    (this.socket.emit as (ev: string, env: Envelope) => boolean)(m.event, m.env);
  }

  private emitOffer(env: Parameters<ServerToClientEvents['assignment:offer']>[0], attempt: number): void {
    const timeout = this.deps.offerAckTimeoutMs ?? 5000;
    const retries = this.deps.offerRetries ?? 2;
    this.socket.timeout(timeout).emit('assignment:offer', env, (err: Error | null) => {
      if (!err || this.closed || !this.socket.connected) return;
      if (attempt < retries) this.emitOffer(env, attempt + 1);
      else
        this.log?.warn({ recipient: this.recipient, seq: env.seq }, 'offer not acknowledged by the client');
    });
  }
}

function connectError(code: ErrorCode, message?: string): ExtendedError {
  const e = new ApiError(code, message);
  const err = new Error(e.message) as ExtendedError;
  err.data = { code: e.code, message: e.message };
  return err;
}

/** The same origin as the page (Origin host = Host header) always; the configured list besides. */
function originAllowed(origin: string | undefined, host: string | undefined, deps: SocketDeps): boolean {
  if (!origin) return !deps.requireOrigin;
  if (deps.origins && (deps.origins.includes('*') || deps.origins.includes(origin))) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

function isFastify(t: FastifyInstance | HttpServer): t is FastifyInstance {
  return typeof (t as FastifyInstance).inject === 'function' && 'server' in t;
}

const compiled = {
  ack: Compile(AckEvent),
  status: Compile(StatusEvent),
  location: Compile(LocationEvent),
  resync: Compile(ResyncEvent),
};

function check<T>(
  c: { Check(v: unknown): boolean; Errors(v: unknown): unknown[] },
  v: unknown,
  ev: string,
): T {
  if (!c.Check(v)) throw validationError(c.Errors(v) as Parameters<typeof validationError>[0], ev);
  return v as T;
}

/** Attaches socket.io to the app's (or a plain) HTTP server. Call before or after listen. */
export function attachSockets(target: FastifyInstance | HttpServer, deps: SocketDeps): SocketsHandle {
  const httpServer = isFastify(target) ? target.server : target;
  const log = deps.log ?? (isFastify(target) ? target.log : undefined);
  const publisher = deps.publisher ?? new SocketPublisher();
  const origins = deps.origins;
  const io: DispatchIo = new Server(httpServer, {
    path: deps.path ?? '/socket.io',
    serveClient: false,
    maxHttpBufferSize: 64 * 1024,
    ...(deps.adapter ? { adapter: deps.adapter } : {}),
    cors: origins && origins.length > 0 ? { origin: origins.includes('*') ? true : [...origins] } : undefined,
  });
  const nsp = io.of('/');
  const counts = { consoles: 0, units: 0 };

  const deliverLocal = (recipient: string, event: string, envelope: Envelope) => {
    const ids = nsp.adapter.rooms.get(recipient);
    if (!ids) return;
    for (const id of ids) nsp.sockets.get(id)?.data.session?.deliverLive({ event, env: envelope });
  };
  const forward: [string, string, Envelope][] = [];
  const unbind = publisher.bind((recipient, event, envelope) => {
    deliverLocal(recipient, event, envelope);
    if (deps.cluster) {
      // One Redis message per tick, not one per pushed message.
      forward.push([recipient, event, envelope]);
      if (forward.length === 1) {
        queueMicrotask(() => {
          const batch = forward.splice(0);
          if (batch.length > 0) io.serverSideEmit('dispatch:publish', batch);
        });
      }
    }
  });
  if (deps.cluster) {
    io.on('dispatch:publish', (batch) => {
      if (!Array.isArray(batch)) return;
      for (const m of batch) if (Array.isArray(m) && m.length === 3) deliverLocal(m[0], m[1], m[2]);
    });
  }

  // ------------------------------------------------------------ handshake
  io.use((socket, next) => {
    const h = socket.handshake.headers;
    if (!originAllowed(h.origin, h.host, deps)) return next(connectError('BAD_ORIGIN'));
    next();
  });
  if (deps.ready) {
    const ready = deps.ready;
    const waitMs = deps.admitWaitMs ?? 15_000;
    // One poll for every waiting handshake (a thousand arrive together after a crash).
    const waiting = new Set<() => void>();
    let poll: NodeJS.Timeout | undefined;
    const check = () => {
      if (!ready()) return;
      clearInterval(poll);
      poll = undefined;
      for (const admit of waiting) admit();
    };
    io.use((_socket, next) => {
      if (ready()) return next();
      const admit = () => {
        waiting.delete(admit);
        clearTimeout(refuse);
        next();
      };
      const refuse = setTimeout(() => {
        waiting.delete(admit);
        next(connectError('UNAVAILABLE'));
      }, waitMs);
      refuse.unref();
      waiting.add(admit);
      if (!poll) {
        poll = setInterval(check, 25);
        poll.unref();
      }
    });
  }
  io.use((socket, next) => {
    const auth = (socket.handshake.auth ?? {}) as { token?: unknown };
    const token =
      typeof auth.token === 'string' ? auth.token : bearerToken(socket.handshake.headers.authorization);
    if (!token) return next(connectError('UNAUTHENTICATED'));
    verifyToken(token, deps.auth).then(
      (p) => {
        socket.data.actor = p.actor;
        socket.data.exp = p.exp;
        socket.data.recipient = recipientOf(p.actor);
        next();
      },
      (err) => {
        const e = toApiError(err);
        next(connectError(e.code, e.message));
      },
    );
  });

  // ------------------------------------------------------------ connection
  io.on('connection', (socket) => {
    const { actor, recipient, exp } = socket.data;
    const isUnit = actor.role === 'unit';
    const session = new Session(socket, recipient, deps, log);
    socket.data.session = session;
    void socket.join(recipient);
    if (isUnit) {
      counts.units++;
      deps.metrics?.connectedUnits.inc();
    } else {
      counts.consoles++;
      deps.metrics?.connectedConsoles.inc();
    }

    const rawLast = (socket.handshake.auth as { lastSeq?: unknown } | undefined)?.lastSeq;
    const lastSeq =
      typeof rawLast === 'number' && Number.isSafeInteger(rawLast) && rawLast >= 0 ? rawLast : undefined;
    void session.sync(lastSeq ?? 'head', false).catch(() => {});

    // Token expiry ends the session.
    const ttlMs = exp * 1000 - Date.now();
    const expiry =
      ttlMs < 2 ** 31 - 1
        ? setTimeout(
            () => {
              socket.emit('error', { code: 'TOKEN_EXPIRED', message: 'The token has expired' });
              socket.disconnect(true);
            },
            Math.max(0, ttlMs),
          )
        : undefined;

    // Rate limit on every incoming event.
    const rl = deps.rateLimit ?? { perSecond: 50 };
    const bucket = new TokenBucket(rl.perSecond, rl.burst ?? rl.perSecond);
    let lastRateError = 0;
    socket.use((packet, next) => {
      if (bucket.take()) return next();
      const last = packet[packet.length - 1];
      const e = new ApiError('RATE_LIMITED');
      if (typeof last === 'function') last({ ok: false, code: e.code, message: e.message });
      const now = Date.now();
      if (now - lastRateError > 1000) {
        lastRateError = now;
        socket.emit('error', { code: e.code, message: e.message, event: String(packet[0]) });
      }
    });
    // Only the contract's events reach a handler; any other name (`error`, `newListener`, a
    // server-to-client event…) is answered UNKNOWN_EVENT and goes no further.
    socket.use((packet, next) => {
      const event = packet[0];
      if (typeof event === 'string' && CLIENT_EVENTS.has(event)) return next();
      const last = packet[packet.length - 1];
      const e = new ApiError('UNKNOWN_EVENT', `No socket event "${String(event).slice(0, 64)}"`);
      if (typeof last === 'function') last({ ok: false, code: e.code, message: e.message });
      else socket.emit('error', { code: e.code, message: e.message, event: String(event).slice(0, 64) });
    });
    // A frame socket.io cannot decode (not JSON, a bad packet type): the client is told why,
    // then socket.io closes the connection.
    socket.on('error', (err: unknown) => {
      log?.warn({ err, recipient }, 'socket protocol error');
      const e = new ApiError('MALFORMED_JSON', 'The message is not a valid socket.io packet; closing');
      socket.emit('error', { code: e.code, message: e.message });
    });

    const unitEvent =
      <T>(
        event: 'ack' | 'status' | 'location',
        run: (input: T, actor: Actor & { unitId: string }) => Promise<unknown>,
      ) =>
      async (input: unknown, reply?: Reply) => {
        const answer = typeof reply === 'function' ? reply : undefined;
        try {
          if (actor.role !== 'unit' || !actor.unitId) {
            throw new ApiError('FORBIDDEN', `Only a unit may send "${event}"`);
          }
          const value = check<T>(compiled[event], input, event);
          await run(value, actor as Actor & { unitId: string });
          answer?.({ ok: true });
        } catch (err) {
          const e = toApiError(err);
          if (e.status >= 500) log?.error({ err, event }, 'socket event failed');
          if (answer) answer({ ok: false, code: e.code, message: e.message });
          else socket.emit('error', { code: e.code, message: e.message, event });
        }
      };

    socket.on(
      'ack',
      unitEvent<AckInput>('ack', async (a, who) => {
        if (!a.accept && !a.reason?.trim()) {
          throw new ApiError('VALIDATION_FAILED', 'ack.reason: required when declining', {
            errors: [{ path: 'ack.reason', message: 'required when declining' }],
          });
        }
        await deps.engine.acknowledge(a.assignmentId, a.accept, who, a.reason);
      }),
    );
    socket.on(
      'status',
      unitEvent<StatusInput>('status', async (s, who) => {
        const incidentId = await guardStatusReport(deps.engine, who.unitId, s.status, who, s.incidentId);
        return deps.engine.reportStatus(who.unitId, s.status, who, incidentId);
      }),
    );
    socket.on(
      'location',
      unitEvent<LocationInput>('location', (l, who) =>
        deps.engine.reportLocation(who.unitId, l.position, who, l.at),
      ),
    );
    type ResyncReply = { ok: boolean; replayed: number; code?: ErrorCode; message?: string };
    socket.on('resync', async (r: unknown, reply?: (r: ResyncReply) => void) => {
      const answer = typeof reply === 'function' ? reply : undefined;
      try {
        const { lastSeq } = check<{ lastSeq: number }>(compiled.resync, r, 'resync');
        const replayed = await session.sync(lastSeq, true);
        answer?.({ ok: true, replayed });
      } catch (err) {
        const e = toApiError(err);
        if (answer) answer({ ok: false, replayed: 0, code: e.code, message: e.message });
        socket.emit('error', { code: e.code, message: e.message, event: 'resync' });
      }
    });

    socket.on('disconnect', () => {
      session.close();
      if (expiry) clearTimeout(expiry);
      if (isUnit) {
        counts.units--;
        deps.metrics?.connectedUnits.dec();
      } else {
        counts.consoles--;
        deps.metrics?.connectedConsoles.dec();
      }
    });
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      unbind();
      io.disconnectSockets(true);
      await Promise.resolve(nsp.adapter.close()).catch(() => {});
      io.engine.close();
    })();
    return closing;
  };
  if (isFastify(target)) {
    try {
      target.addHook('preClose', close);
    } catch {
      // Already started: the caller closes the handle before app.close().
    }
  }

  return { io, publisher, clients: () => ({ ...counts }), close };
}
