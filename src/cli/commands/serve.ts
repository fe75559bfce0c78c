// `dispatch serve [--port 3000] [--host 127.0.0.1] [--config FILE] [--demo SCENARIO] [--speed N]
//                 [--data-dir DIR] [--demo-once] [--demo-limit N]`
//
// The live engine: HTTP API (/v1, /docs, /healthz, /metrics), socket.io, the console (the
// built bundle in dist/console, when present), the workers and the engine itself.
//
// District (areas, incident-type catalogue, units): from --config FILE, a scenario-format
// file whose incidents are ignored (`name`, `start`, `durationS`, `seed` and `incidents` may be
// left out there); else from the --demo scenario; else from the bundled scenarios/demo.json.
// A bad file is refused with the JSON path of its first wrong field, exit code 2. Units are
// registered at start: a unit new to the store starts available at home; one already stored
// keeps its status and work.
//
// Infrastructure: DATABASE_URL → PostgreSQL, else embedded PGlite in <data-dir>/pglite
// (persistent across restarts); REDIS_URL → BullMQ queues (key prefix DISPATCH_QUEUE_PREFIX,
// default `dispatch`), else an in-process queue. The data dir (--data-dir, else
// $DISPATCH_DATA_DIR, else ./.dispatch) also holds the JWT secret `jwt-secret` unless
// DISPATCH_JWT_SECRET is set. In embedded mode, at the first start (secret just created) and
// whenever --demo runs, the console URL with a dispatcher token and a unit-app URL with a
// unit token are printed; later, mint tokens with `dispatch token`.
//
// --demo SCENARIO --speed N (default 10): the scenario's incidents arrive through
// POST /v1/incidents at (scenario time) / N and its units answer as socket.io clients
// (src/demo). The demo loops, each pass with fresh incidents, unless --demo-once;
// --demo-limit N plays only the first N incidents of each pass.
//
// Logs: pino JSON lines on stdout, level LOG_LEVEL (default info for the engine's own lines,
// warn for per-request HTTP logs unless LOG_LEVEL is set). Sockets accept the same origin as
// the page, plus DISPATCH_ORIGINS (comma-separated, or `*`).
//
// Engine tunables (src/engine/config.ts: ack timeouts, debounce, sweep period…) may be set as
// a JSON object in DISPATCH_ENGINE_CONFIG, e.g. '{"ackTimeoutS": 20}'; a bad value exits 2.
//
// Workers: by default this process runs every queue (intake, decisions, timers,
// notifications) and the webhook sender. DISPATCH_WORKERS=core (with DATABASE_URL and
// REDIS_URL, else exit 2) leaves the notifications queue and the webhook sender to
// `dispatch worker` processes (src/cli/commands/worker.ts); the start-up handler check then
// covers the other queues (workers/index.ts, `delegate`).
//
// SIGINT / SIGTERM: stop taking requests (/healthz answers 503), stop the demo, close HTTP and
// sockets, stop the engine, the workers, the queue, then the store; exit 0. A second signal
// exits at once (130).

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { startWorkers } from '../../../workers/index.ts';
import { LeaderLease } from '../../cluster/leader.ts';
import { isCoreError } from '../../core/errors.ts';
import type { DemoHandle } from '../../demo/driver.ts';
import type { EngineConfig } from '../../engine/config.ts';
import { Engine } from '../../engine/engine.ts';
import { createEngineDeps, scenarioContext, seedUnits } from '../../engine/factory.ts';
import { FollowUp, resolveWebhookSecret } from '../../engine/followup.ts';
import { QUEUES } from '../../engine/jobs.ts';
import { systemClock } from '../../engine/ports.ts';
import { type ReviewConfig, resolveReviewConfig } from '../../kpi/review-rules.ts';
import type { Scenario } from '../../scenario/types.ts';
import { isScenarioError, parseScenario } from '../../scenario/validate.ts';
import { authConfigFromEnv, defaultDataDir, mintToken, type Role } from '../../server/auth.ts';
import type { HttpServer } from '../../server/index.ts';
import { createMetrics } from '../../server/metrics.ts';
import { SocketPublisher } from '../../server/socket-publisher.ts';
import { PACKAGE_ROOT } from '../../shared/package-root.ts';
import { delegatedQueuesFrom, engineConfigFrom, engineEnvFrom, UsageError } from '../engine-env.ts';
import { runUntilSignal } from '../until-signal.ts';

export { UsageError };

/** The district used when neither --config nor --demo is given. */
export const DEFAULT_DISTRICT = join(PACKAGE_ROOT, 'scenarios/demo.json');
/** Where the console build puts its bundle; served at / when it exists. */
export const CONSOLE_DIR = join(PACKAGE_ROOT, 'dist/console');

/**
 * EngineConfig.timerArmDelayMs: offers are answered within milliseconds and deadlines are 30 s
 * and more, so most timers are cancelled before they would reach the queue.
 */
const TIMER_ARM_DELAY_MS = 2000;

const USAGE = `usage: dispatch serve [--port 3000] [--host 127.0.0.1] [--config FILE] [--demo SCENARIO]
                      [--speed N] [--data-dir DIR] [--demo-once] [--demo-limit N]

  --port        listen port (0: any free port; default 3000)
  --host        listen address (default 127.0.0.1; 0.0.0.0 for every interface)
  --config      areas, catalogue and units from a scenario-format file (incidents ignored)
  --demo        play this scenario live: incidents through the API, units over sockets
  --speed       demo speed-up (default 10)
  --demo-once   play the demo scenario once instead of looping
  --demo-limit  only the first N incidents of each demo pass
  --data-dir    embedded PGlite database and JWT secret (default $DISPATCH_DATA_DIR or ./.dispatch)

Without --config or --demo the district is scenarios/demo.json (areas, catalogue, units).
DATABASE_URL → PostgreSQL, else PGlite in <data-dir>/pglite; REDIS_URL → BullMQ, else in process.
DISPATCH_WORKERS=core (needs DATABASE_URL and REDIS_URL): run intake, decisions and timers only;
the notifications queue and the webhook sender are left to \`dispatch worker\` processes.
`;

/**
 * Reads a scenario-format file and checks it. With `district`, missing `name`, `start`,
 * `durationS`, `seed` and `incidents` are filled in (a district config needs none of them).
 */
export function loadScenarioFile(file: string, opts: { district?: boolean } = {}): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (opts.district && typeof json === 'object' && json !== null && !Array.isArray(json)) {
    json = {
      name: 'district',
      start: '2026-01-01T00:00:00+08:00',
      durationS: 86_400,
      seed: 1,
      incidents: [],
      ...json,
    };
  }
  try {
    return parseScenario(json);
  } catch (e) {
    if (isScenarioError(e)) {
      throw new UsageError(`${file}: invalid at ${e.path}: expected ${e.expected}, got ${e.got}`);
    }
    throw e;
  }
}

export interface ServeOptions {
  /** Default 3000; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** District config file (scenario format, incidents ignored). */
  config?: string;
  /** Demo scenario file. */
  demo?: string;
  /** Demo speed-up (default 10). */
  speed?: number;
  demoOnce?: boolean;
  demoLimit?: number;
  /** Data directory (default $DISPATCH_DATA_DIR or ./.dispatch). */
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Human-readable lines (URLs, tokens); default stdout. */
  print?: (line: string) => void;
  /** pino level of the serve logger (default $LOG_LEVEL or info). */
  logLevel?: string;
  /** Cluster mode: this node lost the lease it held (default: exit 1, for the supervisor). */
  onLeaseLost?: (err: unknown) => void;
}

export interface ServeHandle {
  url: string;
  engine: Engine;
  http: HttpServer;
  demo?: DemoHandle;
  embedded: boolean;
  /** Mints a token with the server's secret (tests, tools). */
  token(role: Role, unitId?: string, ttlS?: number): Promise<string>;
  /** Graceful stop, in order; idempotent. */
  close(): Promise<void>;
}

const display = (p: string) => {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
};

/** Starts the live engine and (with `demo`) the demo driver. */
export async function startServe(opts: ServeOptions = {}): Promise<ServeHandle> {
  const env = opts.env ?? process.env;
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const level = opts.logLevel ?? env.LOG_LEVEL ?? 'info';
  const log = pino({ level, base: { name: 'dispatch' }, timestamp: pino.stdTimeFunctions.isoTime });
  const speed = opts.speed ?? 10;
  if (!(speed > 0) || !Number.isFinite(speed)) throw new UsageError('--speed must be a number > 0');

  // ---------------------------------------------------------------- files first (exit 2)
  const demoScenario = opts.demo ? loadScenarioFile(opts.demo) : undefined;
  const districtFile = opts.config ?? opts.demo ?? DEFAULT_DISTRICT;
  const district = opts.config
    ? loadScenarioFile(opts.config, { district: true })
    : (demoScenario ?? loadScenarioFile(DEFAULT_DISTRICT, { district: true }));
  let context: ReturnType<typeof scenarioContext>;
  try {
    context = scenarioContext(district);
  } catch (e) {
    if (isCoreError(e)) throw new UsageError(`${districtFile}: invalid at $.${e.field}: ${e.message}`);
    throw e;
  }
  const engineConfig: Partial<EngineConfig> | undefined = engineConfigFrom(env);
  // Queues left to `dispatch worker` processes (DISPATCH_WORKERS=core).
  const delegate = delegatedQueuesFrom(env);
  // Review-flag thresholds: the district file's optional `reviews` block (src/kpi/review-rules.ts).
  const reviewsRaw = (district as unknown as Record<string, unknown>).reviews;
  const reviews: Partial<ReviewConfig> = {};
  try {
    const all = resolveReviewConfig(reviewsRaw, 'reviews');
    if (reviewsRaw !== undefined) {
      for (const k of Object.keys(reviewsRaw as object) as (keyof ReviewConfig)[]) reviews[k] = all[k];
    }
  } catch (e) {
    throw new UsageError(`${districtFile}: invalid at $.${(e as Error).message}`);
  }

  // ---------------------------------------------------------------- infrastructure
  const dataDir = resolve(opts.dataDir ?? defaultDataDir(env));
  const embedded = !env.DATABASE_URL;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const { config: auth, secret } = authConfigFromEnv({ dataDir, create: true, env });
  const loadedAtMs = Math.round(process.uptime() * 1000);
  const deps = await createEngineDeps(engineEnvFrom(env, join(dataDir, 'pglite')));
  const { store, queue } = deps;

  const depsAtMs = Math.round(process.uptime() * 1000);
  const metrics = createMetrics({ defaultMetrics: true });
  const publisher = new SocketPublisher();
  const engine = new Engine({
    store,
    queue,
    publisher,
    clock: systemClock,
    ...context,
    onDecision: (ms, p) => metrics.observeDecision(ms, p),
    onBatch: (b) => metrics.observeBatch(b),
    log: (msg, err) => log.error({ err }, msg),
    // Overlapping commits pays with PGlite in its thread, not with PostgreSQL (EngineConfig).
    config: { overlapCommits: embedded, timerArmDelayMs: TIMER_ARM_DELAY_MS, ...engineConfig },
  });
  const webhookSecret = resolveWebhookSecret({ dataDir, env });
  const followUp = new FollowUp({
    store,
    engineConfig: engine.config,
    webhookSecret: webhookSecret.secret,
    reviews,
    log: (msg, err) => log.error({ err }, msg),
  });
  metrics.setIncidentCountSource(() => engine.openIncidentCounts());
  metrics.setQueueDepthSource(async () =>
    Object.fromEntries(
      await Promise.all(Object.values(QUEUES).map(async (q) => [q, await queue.depth(q)] as const)),
    ),
  );

  // Cluster mode (PostgreSQL and Redis shared by several `dispatch serve` processes): only the
  // lease holder runs the core; the others forward to it (src/cluster). One cluster per prefix.
  const clustered = !embedded && !!env.REDIS_URL;
  const prefix = env.DISPATCH_QUEUE_PREFIX ?? 'dispatch';
  const redis = clustered
    ? new (await import('../../cluster/redis.ts')).Redis(env.REDIS_URL!, {
        maxRetriesPerRequest: null,
        lazyConnect: false,
      })
    : undefined;
  const redisSub = redis?.duplicate();
  let lease: LeaderLease | undefined;
  const role = {
    get isLeader() {
      return lease ? lease.isLeader : true;
    },
    get leader() {
      return lease?.leader;
    },
  };

  let draining = false;
  let workers: Awaited<ReturnType<typeof startWorkers>> | undefined;
  let http: HttpServer | undefined;
  // Milestones of the start, in ms since the process started (a restart must be deciding
  // again within seconds: this line says where they went).
  const startedAt: Record<string, number> = { modules: loadedAtMs, store: depsAtMs };
  const mark = (what: string) => {
    startedAt[what] = Math.round(process.uptime() * 1000);
  };
  // Printed once both the core runs and the server listens (in either order).
  let reported = false;
  const report = () => {
    if (reported || startedAt.core === undefined || startedAt.listening === undefined) return;
    reported = true;
    const open = Object.values(engine.openIncidentCounts()).reduce((a, b) => a + b, 0);
    const order = Object.entries(startedAt).sort((a, b) => a[1] - b[1]);
    print(
      `dispatch: core running with ${open} open incidents; ms from process start: ${order
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  };
  let engineStarted!: () => void;
  const engineStart = new Promise<void>((r) => {
    engineStarted = r;
  });
  const startCore = async () => {
    mark('lease');
    await engine.start();
    mark('engine');
    await engine.firstDecision();
    mark('decided');
    engineStarted();
    workers = await startWorkers(engine, queue, store, { followUp, delegate });
    followUp.start({ webhookSender: !delegate.includes(QUEUES.notifications) });
    await seedUnits(engine, district.units);
    mark('core');
    report();
  };
  const teardown = async () => {
    draining = true;
    await lease?.stop().catch(() => {});
    if (http) await http.close();
    await engine.stop();
    if (workers) await workers.stop();
    await followUp.stop();
    await queue.close();
    await store.close();
    redisSub?.disconnect();
    redis?.disconnect();
  };

  try {
    // The core first: the lease when free, the engine's snapshot, its first decision and its
    // overdue timers. Then the HTTP and socket stack, loaded only now (a third of the code),
    // beside the rest of the core's start (workers, units): a restarted engine does not wait
    // for it (measured under load: about 0.9 s of its restart), and neither does its first
    // decision's commit. Socket handshakes wait until the engine runs.
    let coreStart: Promise<void>;
    if (clustered) {
      // A node that finds the lease free runs the core at once; one that finds it held
      // listens, forwards to the leader and keeps polling. The address followers forward to
      // is advertised once listening.
      lease = new LeaderLease({
        databaseUrl: env.DATABASE_URL!,
        redis: redis!,
        addressKey: `${prefix}:leader`,
        nodeId: `${hostname()}:${process.pid}`,
        onAcquired: startCore,
        onLost:
          opts.onLeaseLost ??
          ((err) => {
            log.fatal({ err }, 'lost the core lease: stopping so that only one node writes');
            process.exit(1);
          }),
        log: (msg, err) => (err ? log.warn({ err }, msg) : log.info(msg)),
      });
      coreStart = lease.start();
    } else {
      coreStart = startCore();
    }
    // Not left unhandled while the HTTP start is awaited; rethrown below.
    coreStart.catch(() => {});
    // The engine runs, or this node follows (the lease is held elsewhere), or the start failed.
    await Promise.race([engineStart, coreStart]);
    const origins = env.DISPATCH_ORIGINS?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const { startHttp } = await import('../../server/index.ts');
    const clusterDeps = clustered
      ? {
          engine: new (await import('../../cluster/forward.ts')).ClusterEngine(
            role,
            () => (engine.running ? engine : undefined),
            auth,
          ),
          adapter: (await import('../../cluster/socket-adapter.ts')).createAdapter(redis!, redisSub!, {
            key: `${prefix}:socket.io`,
          }),
        }
      : undefined;
    http = await startHttp({
      engine: clusterDeps?.engine ?? engine,
      ...(clustered ? { cluster: role } : {}),
      store,
      auth,
      metrics,
      publisher,
      port: opts.port ?? 3000,
      host: opts.host ?? '127.0.0.1',
      logger: { level: env.LOG_LEVEL ?? 'warn' },
      ...(existsSync(join(CONSOLE_DIR, 'index.html')) ? { consoleDir: CONSOLE_DIR } : {}),
      ready: () => !draining && (role.isLeader ? engine.running : role.leader !== undefined),
      followUp,
      sockets: {
        ...(origins && origins.length > 0 ? { origins } : {}),
        ...(clusterDeps ? { cluster: true, adapter: clusterDeps.adapter } : {}),
      },
    });
    mark('listening');
    await lease?.setUrl(http.url);
    await coreStart;
    report();
  } catch (err) {
    await teardown().catch(() => {});
    throw err;
  }
  const url = http.url;

  const token = (role: Role, unitId?: string, ttlS?: number) =>
    mintToken({ role, ...(unitId ? { unitId } : {}), ...(ttlS ? { ttlS } : {}) }, auth.secret, {
      issuer: auth.issuer,
      audience: auth.audience,
    });

  // ---------------------------------------------------------------- what to tell the user
  const consoleBuilt = existsSync(join(CONSOLE_DIR, 'index.html'));
  const mode = embedded
    ? `embedded: PGlite in ${display(join(dataDir, 'pglite'))}`
    : `PostgreSQL${env.REDIS_URL ? '' : ', in-process queue'}`;
  print(`dispatch: listening on ${url} (${mode}${env.REDIS_URL ? ', BullMQ on Redis' : ''})`);
  print(
    `  district:  ${display(districtFile)} — ${district.areas.features.length} areas, ${district.catalog.length} incident types, ${district.units.length} units`,
  );
  print(`  api:       ${url}/v1   docs: ${url}/docs   health: ${url}/healthz   metrics: ${url}/metrics`);
  if (delegate.length > 0)
    print(
      `  workers:   intake, decisions, timers here; ${delegate.join(', ')} and the webhook sender in \`dispatch worker\` processes (DISPATCH_WORKERS=core)`,
    );
  if (secret.source === 'generated') print(`  new JWT secret written to ${display(secret.path!)}`);
  if (webhookSecret.source === 'generated')
    print(`  new webhook signing secret written to ${display(webhookSecret.path!)} (give it to receivers)`);
  if (embedded && (secret.source === 'generated' || demoScenario)) {
    const ttlS = 12 * 3600;
    print(`  console:   ${url}/?token=${await token('dispatcher', undefined, ttlS)}`);
    const unit = [...district.units].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))[0];
    if (unit)
      print(`  unit app:  ${url}/unit?token=${await token('unit', unit.id, ttlS)}   (unit ${unit.id})`);
    if (!consoleBuilt) print('             (the console is not built: / shows the API docs)');
    print('             tokens expire in 12 h.');
  }
  print(
    `  tokens:    npx dispatch token --role dispatcher${opts.dataDir ? ` --data-dir ${display(dataDir)}` : ''}`,
  );

  // ---------------------------------------------------------------- demo
  let demo: DemoHandle | undefined;
  if (demoScenario) {
    const cache = new Map<string, { token: string; at: number }>();
    const cached = (role: 'dispatcher' | 'admin') => async () => {
      const c = cache.get(role);
      if (c && Date.now() - c.at < 3600_000) return c.token;
      const t = await token(role, undefined, 4 * 3600);
      cache.set(role, { token: t, at: Date.now() });
      return t;
    };
    try {
      const { startDemo } = await import('../../demo/driver.ts');
      demo = await startDemo({
        baseUrl: url,
        scenario: demoScenario,
        speed,
        tokens: {
          dispatcher: cached('dispatcher'),
          admin: cached('admin'),
          unit: (id) => token('unit', id, 4 * 3600),
        },
        ...(opts.demoOnce ? { once: true } : {}),
        ...(opts.demoLimit !== undefined ? { limit: opts.demoLimit } : {}),
        log: {
          info: (msg, obj) => log.info(obj ?? {}, msg),
          warn: (msg, obj) => log.warn(obj ?? {}, msg),
          debug: (msg, obj) => log.debug(obj ?? {}, msg),
        },
      });
    } catch (err) {
      await teardown().catch(() => {});
      throw err;
    }
    const n = opts.demoLimit ?? demoScenario.incidents.length;
    print(
      `  demo:      ${display(opts.demo!)} at ${speed}× — ${Math.min(n, demoScenario.incidents.length)} incidents, ${demoScenario.units.length} simulated units${opts.demoOnce ? ', once' : ', looping'}`,
    );
  }
  log.info({ url, embedded, demo: demoScenario?.name ?? null }, 'dispatch serve ready');

  let closing: Promise<void> | undefined;
  return {
    url,
    engine,
    http,
    ...(demo ? { demo } : {}),
    embedded,
    token,
    close() {
      closing ??= (async () => {
        draining = true;
        if (demo) await demo.stop();
        await teardown();
        log.info('dispatch serve stopped');
      })();
      return closing;
    },
  };
}

function intOption(v: unknown, name: string, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isInteger(n) || n < lo || n > hi) {
    throw new UsageError(`${name} must be an integer in [${lo}, ${hi}], got "${String(v)}"`);
  }
  return n;
}

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        config: { type: 'string' },
        demo: { type: 'string' },
        speed: { type: 'string' },
        'data-dir': { type: 'string' },
        'demo-once': { type: 'boolean' },
        'demo-limit': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`dispatch serve: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);

  let handle: ServeHandle;
  try {
    const speedRaw = str('speed');
    const speed = speedRaw === undefined ? undefined : Number(speedRaw);
    if (speed !== undefined && (!Number.isFinite(speed) || speed <= 0)) {
      throw new UsageError(`--speed must be a number > 0, got "${speedRaw}"`);
    }
    if ((speed !== undefined || values['demo-once'] || str('demo-limit')) && !str('demo')) {
      throw new UsageError('--speed, --demo-once and --demo-limit apply to --demo');
    }
    const port = intOption(str('port'), '--port', 0, 65_535);
    const demoLimit = intOption(str('demo-limit'), '--demo-limit', 1, 10_000_000);
    handle = await startServe({
      ...(port !== undefined ? { port } : {}),
      ...(str('host') ? { host: str('host') } : {}),
      ...(str('config') ? { config: str('config') } : {}),
      ...(str('demo') ? { demo: str('demo') } : {}),
      ...(speed !== undefined ? { speed } : {}),
      ...(str('data-dir') ? { dataDir: str('data-dir') } : {}),
      ...(values['demo-once'] ? { demoOnce: true } : {}),
      ...(demoLimit !== undefined ? { demoLimit } : {}),
    });
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dispatch serve: ${err.message}\n`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(
      `dispatch serve: ${e.code === 'EADDRINUSE' ? `the port is in use (${e.message})` : (e.message ?? String(e))}\n`,
    );
    return 1;
  }

  return runUntilSignal('serve', () => handle.close());
}
