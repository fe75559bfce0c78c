// The server layer's entry points, and `startHttp`: the HTTP + socket half of `dispatch
// serve` (build the app, attach socket.io, listen; close in the right order).
//
// Wiring of `dispatch serve` (the engine half lives in src/engine and workers/):
//   const { config: auth, secret } = authConfigFromEnv({ dataDir, create: true });  // print secret.path when generated
//   const metrics = createMetrics({ defaultMetrics: true });
//   const publisher = new SocketPublisher();
//   const engine = new Engine({ store, queue, publisher, clock: systemClock, ...scenarioContext(scenario),
//                               onDecision: (ms, p) => metrics.observeDecision(ms, p) });
//   metrics.setIncidentCountSource(() => engine.openIncidentCounts());
//   metrics.setQueueDepthSource(async () => ({ intake: await queue.depth('intake'), … }));
//   await engine.start(); const workers = await startWorkers(engine, queue, store);
//   const http = await startHttp({ engine, store, auth, metrics, publisher, port, logger: true,
//                                  ready: () => engine.running && !draining });
//   on SIGINT/SIGTERM: draining = true; await http.close(); await engine.stop();
//                      await workers.stop(); await queue.close(); await store.close();

import type { AppDeps } from './app.ts';
import { type App, buildApp } from './app.ts';
import { attachSockets, type SocketDeps, type SocketPublisher, type SocketsHandle } from './sockets.ts';

export { type App, type AppDeps, buildApp, DEFAULT_BODY_LIMIT } from './app.ts';
export {
  type AuthConfig,
  authConfigFromEnv,
  mintToken,
  type Principal,
  type ResolvedSecret,
  ROLES,
  type Role,
  resolveJwtSecret,
  verifyToken,
} from './auth.ts';
export { toApiError } from './error-map.ts';
export { ApiError, ERRORS, type ErrorCode } from './errors.ts';
export { createMetrics, type Metrics } from './metrics.ts';
export { attachSockets, type SocketDeps, SocketPublisher, type SocketsHandle } from './sockets.ts';

export interface HttpOptions extends AppDeps {
  /** The engine's publisher, bound to socket.io here. */
  publisher: SocketPublisher;
  /** Default 3000; 0 picks a free port. */
  port?: number;
  /** Default 0.0.0.0. */
  host?: string;
  /** Socket options beyond engine/store/auth/metrics/publisher (origins, rate limit, cluster…). */
  sockets?: Omit<SocketDeps, 'engine' | 'store' | 'auth' | 'metrics' | 'publisher'>;
}

export interface HttpServer {
  app: App;
  sockets: SocketsHandle;
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  /** Disconnects socket clients, stops socket.io, then closes fastify (waits for in-flight requests). Idempotent. */
  close(): Promise<void>;
}

/** Builds the app, attaches socket.io and listens. */
export async function startHttp(opts: HttpOptions): Promise<HttpServer> {
  const { publisher, port, host, sockets: socketOpts, ...appDeps } = opts;
  const app = buildApp(appDeps);
  const sockets = attachSockets(app, {
    ...(opts.ready ? { ready: opts.ready } : {}),
    ...socketOpts,
    engine: opts.engine,
    store: opts.store,
    auth: opts.auth,
    metrics: app.metrics,
    publisher,
  });
  const address = await app.listen({ port: port ?? 3000, host: host ?? '0.0.0.0' });
  let closing: Promise<void> | undefined;
  return {
    app,
    sockets,
    url: address.replace('0.0.0.0', '127.0.0.1'),
    close() {
      closing ??= (async () => {
        await sockets.close();
        await app.close();
      })();
      return closing;
    },
  };
}
