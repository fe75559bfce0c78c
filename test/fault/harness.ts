// Shared by the fault-injection tests (test/fault/*.test.ts) and their long versions
// (bench/fault-*.ts): the live engine as users run it — `node bin/dispatch.js serve` in a
// child process on a fixed port (so a restart keeps the URL and clients reconnect to it) —
// in services mode (a PostgreSQL database and a BullMQ prefix of its own) or embedded mode
// (a PGlite data dir); a private redis-server that can be killed and started again; field
// units as socket.io clients that follow the README's client contract (keep the last seq,
// send it as auth.lastSeq on every reconnect, drop a seq already seen) and either answer
// offers like the field app or stay silent; an open-loop incident poster that retries what
// failed with the same Idempotency-Key; and the store-side checks (SQL on the engine's own
// tables, on PostgreSQL or on the PGlite data dir after the engine stopped).
//
// Nothing here asserts: the tests and benches decide what the figures must be.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type Socket as ClientSocket, io as connect } from 'socket.io-client';
import type { LonLat } from '../../src/core/types.ts';
import type { EngineConfig } from '../../src/engine/config.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import { BullmqQueue } from '../../src/queue/bullmq-queue.ts';
import { Rng } from '../../src/scenario/rng.ts';
import { mintToken } from '../../src/server/auth.ts';
import type { AssignmentView, OfferView } from '../../src/shared/events.ts';
import { createDatabase, dropDatabase } from '../../src/store/pg-client.ts';
import { createPgliteClient } from '../../src/store/pglite-client.ts';

export const ROOT = join(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/dispatch.js');
export const ADMIN_DB_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d;

/** One line of figures, `[fault] name: k=v k=v`, so CI logs show them. */
export function figures(name: string, values: Record<string, unknown>): string {
  const line = `[fault] ${name}: ${Object.entries(values)
    .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join(' ')}`;
  process.stdout.write(`${line}\n`);
  return line;
}

/** Waits for `pred` (polled), throws `what` with the last value after `ms`. */
export async function waitFor<T>(
  what: string,
  pred: () => Promise<T | undefined | false> | T | undefined | false,
  ms: number,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function percentiles(xs: number[]): { n: number; p50: number; p90: number; p99: number; max: number } {
  if (xs.length === 0) return { n: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => round(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]);
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: round(s[s.length - 1]) };
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// ====================================================================== cleanup

/** Cleanups registered by helpers, run in reverse order by `cleanupAll` (afterAll / finally). */
const cleanups: (() => unknown)[] = [];
export const onCleanup = (f: () => unknown) => cleanups.push(f);
export async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const f = cleanups.pop()!;
    try {
      await f();
    } catch (err) {
      process.stderr.write(`[fault] cleanup failed: ${(err as Error).message}\n`);
    }
  }
}

export function tempDir(prefix = 'dispatch-fault-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

// ====================================================================== the district

/** Single-unit, non-immediate incident types (no pre-emption: offers end only by ack, timeout or clear). */
export const FLOW_TYPES = [
  'illegal-parking',
  'street-vending',
  'noise-complaint',
  'traffic-obstruction',
  'missing-manhole-cover',
  'burglary-report',
  'food-safety',
  'traffic-collision',
  'illegal-construction',
  'illegal-dumping',
] as const;
export const FLOW_CAPABILITIES = ['traffic', 'chengguan', 'police', 'market'];
/** The demo district's bounding box. */
const BBOX = { w: 113.425, e: 113.5, s: 23.075, n: 23.12 };
const GRID_LON = 0.0011; // ≈ 112 m at 23° N: more than the 100 m duplicate radius
const GRID_LAT = 0.001; // ≈ 111 m

export interface UnitSpec {
  id: string;
  department: string;
  capabilities: string[];
  home: LonLat;
  speedKmh: number;
  turnoutS: number;
}

/** `n` units able to serve every FLOW_TYPES incident, at seeded points of the demo district. */
export function makeUnits(n: number, seed = 1, prefix = 'U'): UnitSpec[] {
  const rng = new Rng(seed).fork('fault:units');
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${String(i + 1).padStart(4, '0')}`,
    department: 'fault',
    capabilities: [...FLOW_CAPABILITIES],
    home: [round(rng.uniform(BBOX.w, BBOX.e), 6), round(rng.uniform(BBOX.s, BBOX.n), 6)] as LonLat,
    speedKmh: 40,
    turnoutS: 30,
  }));
}

/** Writes a --config district file: the demo's areas and catalogue with these units. */
export function writeDistrict(dir: string, units: UnitSpec[]): string {
  const demo = JSON.parse(readFileSync(join(ROOT, 'scenarios/demo.json'), 'utf8'));
  const file = join(dir, 'district.json');
  writeFileSync(
    file,
    JSON.stringify({ areas: demo.areas, catalog: demo.catalog, travel: demo.travel, units }),
  );
  return file;
}

export interface IncidentBody {
  type: string;
  location: LonLat;
  source: string;
  /** The reporter's callback URL (IncidentPoster's `callback` option). */
  callback?: string;
}

/**
 * Seeded incident stream: types in turn, each at a grid point not yet used for that type, so
 * the engine's duplicate merging (same type within 100 m and 300 s) never folds two posts —
 * for the first 30,600 posts (3,060 grid points × 10 types); past that, points are reused.
 */
export function incidentStream(seed: number, keyPrefix: string) {
  const rng = new Rng(seed).fork('fault:incidents');
  const cols = Math.floor((BBOX.e - BBOX.w) / GRID_LON);
  const rows = Math.floor((BBOX.n - BBOX.s) / GRID_LAT);
  const cells = FLOW_TYPES.map(() => rng.shuffle(Array.from({ length: cols * rows }, (_, i) => i)));
  const used = FLOW_TYPES.map(() => 0);
  return (k: number): { key: string; body: IncidentBody } => {
    const t = k % FLOW_TYPES.length;
    const cell = cells[t][used[t]++ % cells[t].length];
    const location: LonLat = [
      round(BBOX.w + ((cell % cols) + 0.5) * GRID_LON, 6),
      round(BBOX.s + (Math.floor(cell / cols) + 0.5) * GRID_LAT, 6),
    ];
    return { key: `${keyPrefix}-${k}`, body: { type: FLOW_TYPES[t], location, source: 'fault' } };
  };
}

// ====================================================================== services

export interface Services {
  databaseUrl: string;
  dbName: string;
  prefix: string;
  redisUrl: string;
}

/** A database of its own on the shared server and a BullMQ prefix of its own on `redisUrl`. */
export async function makeServices(redisUrl = SHARED_REDIS_URL): Promise<Services> {
  const db = await createDatabase(ADMIN_DB_URL, `dispatch_fault_${randomBytes(5).toString('hex')}`);
  const prefix = `dispatch-fault-${randomBytes(4).toString('hex')}`;
  onCleanup(() => dropDatabase(ADMIN_DB_URL, db.name));
  onCleanup(async () => {
    const q = new BullmqQueue({ url: redisUrl, prefix });
    try {
      await Promise.race([
        (async () => {
          for (const name of Object.values(QUEUES)) await q.depth(name);
          await q.purge();
        })(),
        sleep(5000),
      ]);
    } finally {
      await q.close().catch(() => {});
    }
  });
  return { databaseUrl: db.url, dbName: db.name, prefix, redisUrl };
}

/** Runs SQL on the engine's database. */
export interface Sql {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export function pgSql(url: string): Sql {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  return {
    async query<T>(text: string, params?: unknown[]) {
      return (await pool.query(text, params)).rows as T[];
    },
    close: () => pool.end(),
  };
}

/** The PGlite data dir of a stopped embedded engine. */
export async function pgliteSql(dataDir: string): Promise<Sql> {
  const c = await createPgliteClient(join(dataDir, 'pglite'));
  return {
    async query<T>(text: string, params?: unknown[]) {
      return (await c.query<T>(text, params)).rows;
    },
    close: () => c.close(),
  };
}

// ====================================================================== a private redis-server

/** A redis-server of our own (no persistence: a restart keeps nothing), on a fixed port. */
export class PrivateRedis {
  private proc?: ChildProcess;
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort(), tempDir('dispatch-fault-redis-'));
    onCleanup(() => r.kill());
    await r.launch();
    return r;
  }

  /** Starts redis-server on the port; resolves when it answers PING (epoch ms). */
  async launch(): Promise<number> {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        '--protected-mode',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = proc;
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const probe = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => {});
    try {
      return await waitFor(
        `redis-server on ${this.port} (${out.slice(-300)})`,
        async () => {
          if (proc.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
          try {
            if (probe.status !== 'ready') await probe.connect();
            return (await probe.ping()) === 'PONG' ? Date.now() : undefined;
          } catch {
            probe.disconnect();
            return undefined;
          }
        },
        10_000,
        20,
      );
    } finally {
      probe.disconnect();
    }
  }

  /** SIGKILL: everything in it is gone. Resolves once the process exited (epoch ms). */
  async kill(): Promise<number> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Date.now();
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await exited;
    return Date.now();
  }
}

// ====================================================================== dispatch serve

export interface ServeOptions {
  port: number;
  dataDir: string;
  config: string;
  secret: string;
  services?: Pick<Services, 'databaseUrl' | 'prefix'> & { redisUrl?: string };
  engineConfig?: Partial<EngineConfig>;
  /** Extra environment. */
  env?: Record<string, string>;
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Epoch ms: spawn() called, "listening on" printed, /healthz first answered 200. */
  spawnedAt: number;
  listeningAt: number;
  healthyAt: number;
  out(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL; resolves when the process is gone (epoch ms). */
  kill(): Promise<number>;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

function serveEnv(o: ServeOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of [
    'DATABASE_URL',
    'REDIS_URL',
    'DISPATCH_QUEUE_PREFIX',
    'DISPATCH_DATA_DIR',
    'DISPATCH_ENGINE_CONFIG',
  ])
    delete env[k];
  Object.assign(env, {
    LOG_LEVEL: 'warn',
    DISPATCH_JWT_SECRET: o.secret,
    ...(o.services
      ? {
          DATABASE_URL: o.services.databaseUrl,
          REDIS_URL: o.services.redisUrl ?? SHARED_REDIS_URL,
          DISPATCH_QUEUE_PREFIX: o.services.prefix,
        }
      : {}),
    ...(o.engineConfig ? { DISPATCH_ENGINE_CONFIG: JSON.stringify(o.engineConfig) } : {}),
    ...o.env,
  });
  return env;
}

/** A running `node bin/dispatch.js …` child, its output kept (last MB), killed by cleanupAll. */
interface DispatchChild {
  child: ChildProcess;
  out(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  gone(): boolean;
  /** SIGKILL; resolves when the process is gone (epoch ms). */
  kill(): Promise<number>;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

function spawnDispatch(args: string[], env: NodeJS.ProcessEnv): DispatchChild {
  const child = spawn(
    process.execPath,
    // Profiling a run: BENCH_SERVE_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" (as bench/live.ts).
    [...(process.env.BENCH_SERVE_NODE_ARGS?.split(' ').filter(Boolean) ?? []), BIN, ...args],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  // Keeping a run's process output: BENCH_SERVE_LOG=FILE (appended, every process of the run).
  const keep = process.env.BENCH_SERVE_LOG;
  const take = (b: Buffer) => {
    if (keep) appendFileSync(keep, b);
    out += b.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const kill = async () => {
    if (!gone()) {
      child.kill('SIGKILL');
      await exited;
    }
    return Date.now();
  };
  onCleanup(kill);
  return {
    child,
    out: () => out,
    exited,
    gone,
    kill,
    async stop() {
      if (gone()) return child.exitCode;
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.kill('SIGTERM');
      const { code } = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** `node bin/dispatch.js serve` on `port`; resolves once /healthz answers 200. */
export async function startServe(o: ServeOptions, timeoutMs = 120_000): Promise<ServeProcess> {
  const spawnedAt = Date.now();
  const p = spawnDispatch(
    ['serve', '--port', String(o.port), '--data-dir', o.dataDir, '--config', o.config],
    serveEnv(o),
  );
  const { child, gone, out } = p;
  const url = `http://127.0.0.1:${o.port}`;
  let listeningAt = 0;
  const healthyAt = await waitFor(
    'dispatch serve to answer /healthz',
    async () => {
      if (gone()) throw new Error(`dispatch serve exited (${child.exitCode ?? child.signalCode}):\n${out()}`);
      if (!listeningAt && out().includes('listening on')) listeningAt = Date.now();
      return (await probeHealth(url)) === 200 ? Date.now() : undefined;
    },
    timeoutMs,
    25,
  );
  return {
    ...p,
    url,
    spawnedAt,
    listeningAt: listeningAt || healthyAt,
    healthyAt,
  };
}

/**
 * GET /healthz on a connection of its own, as an orchestrator's probe does: fetch() would
 * queue it behind this process's own posts in the shared connection pool, and after a restart
 * thousands of retried posts wait there for seconds. The status, or undefined (no answer in 2 s).
 */
export function probeHealth(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = httpGet(`${url}/healthz`, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

// ====================================================================== dispatch worker

export interface WorkerOptions {
  dataDir: string;
  /** JWT secret (as serve's; the worker does not use it). */
  secret: string;
  services: Pick<Services, 'databaseUrl' | 'prefix'> & { redisUrl?: string };
  engineConfig?: Partial<EngineConfig>;
  /** Extra environment (DISPATCH_WEBHOOK_SECRET…). */
  env?: Record<string, string>;
  /** Extra command-line arguments (--lease-s 5…). */
  args?: string[];
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** The name its BullMQ workers record on each job they take (`processedBy`): <host>:<pid>. */
  name: string;
  /** Epoch ms: spawn() called, the ready line printed. */
  spawnedAt: number;
  readyAt: number;
  out(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL; resolves when the process is gone (epoch ms). */
  kill(): Promise<number>;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** `node bin/dispatch.js worker` on the services; resolves once it printed its ready line. */
export async function startWorker(o: WorkerOptions, timeoutMs = 60_000): Promise<WorkerProcess> {
  const spawnedAt = Date.now();
  const env = serveEnv({ port: 0, config: '', ...o });
  const p = spawnDispatch(['worker', '--data-dir', o.dataDir, ...(o.args ?? [])], env);
  const { child, gone, out } = p;
  const readyAt = await waitFor(
    'dispatch worker to be ready',
    () => {
      if (gone())
        throw new Error(`dispatch worker exited (${child.exitCode ?? child.signalCode}):\n${out()}`);
      return out().includes('dispatch worker: ready') ? Date.now() : undefined;
    },
    timeoutMs,
    20,
  );
  return { ...p, pid: child.pid!, name: `${hostname()}:${child.pid}`, spawnedAt, readyAt };
}

export function tokens(secret: string) {
  return {
    admin: () => mintToken({ role: 'admin', ttlS: 4 * 3600 }, secret),
    dispatcher: () => mintToken({ role: 'dispatcher', ttlS: 4 * 3600 }, secret),
    unit: (id: string) => mintToken({ role: 'unit', unitId: id, ttlS: 4 * 3600 }, secret),
    /** Signed with another secret. */
    forgedUnit: (id: string) =>
      mintToken({ role: 'unit', unitId: id, ttlS: 3600 }, randomBytes(32).toString('base64url')),
    /** Expired an hour ago (well past the verifier's clock tolerance). */
    expiredUnit: (id: string) =>
      mintToken({ role: 'unit', unitId: id, ttlS: 60 }, secret, { nowS: Date.now() / 1000 - 3600 }),
  };
}

// ====================================================================== field units

export type Behaviour = 'ack' | 'silent';

export interface UnitClientOptions {
  url: string;
  id: string;
  /** Token for each (re)connection attempt. */
  token: () => Promise<string>;
  behaviour: Behaviour;
  /** Acking units: time on scene before clearing (default 0). */
  holdMs?: number;
  /** socket.io-client reconnection delays (a field app retries quickly). */
  reconnectDelayMs?: number;
  reconnectDelayMaxMs?: number;
  /** Send auth.lastSeq on reconnects (the README's client contract; default true). */
  sendLastSeq?: boolean;
  /** Called with every offer the app layer handles (after seq de-duplication). */
  onOffer?: (o: OfferView, at: number) => void;
  onAccepted?: (o: OfferView, at: number) => void;
}

export interface SeqStats {
  /** Messages delivered to the app layer (in seq order, each seq once). */
  delivered: number;
  /** Seqs skipped: a message > last+1 arrived (each missing seq counts). */
  gaps: number;
  /** A seq below the last one that was never seen (out of order). */
  reordered: number;
  /** A seq already seen, dropped by the client per the contract (transport re-sends, replays). */
  resent: number;
  /** The same assignment offered to the app layer twice under different seqs. */
  duplicateOffers: number;
}

/**
 * One field unit: a socket.io client (auto-reconnect, auth re-evaluated on every attempt with
 * the last seq) that checks its per-recipient sequence and, if `ack`, works each offer like the
 * field app (accept → location → on scene → hold → available), each step retried until the
 * server answers it.
 */
export class UnitClient {
  readonly socket: ClientSocket;
  lastSeq = 0;
  readonly stats: SeqStats = { delivered: 0, gaps: 0, reordered: 0, resent: 0, duplicateOffers: 0 };
  /** Offers seen by the app layer, by assignment id; and the seqs that carried them. */
  readonly offers = new Map<string, OfferView>();
  readonly offerSeqs = new Set<number>();
  /** Latest status of each of its assignments seen (offer, assignment:updated). */
  readonly assignmentStatus = new Map<string, AssignmentView['status']>();
  /** Incidents whose offer this unit accepted (ack answered ok). */
  readonly accepted = new Set<string>();
  connects = 0;
  disconnects = 0;
  /** Envelopes received (any event, before de-duplication). */
  received = 0;
  readonly connectErrors: string[] = [];
  /** Socket.io `error` events from the server (code). */
  readonly serverErrors: string[] = [];
  /** Seqs delivered to the app layer. */
  readonly seen = new Set<number>();
  private work: Promise<void> = Promise.resolve();
  private closed = false;
  /** The next (re)connection uses this token instead (once). */
  private tokenOverride?: string;
  /** While set, every (re)connection attempt uses this token source. */
  private tokenSource?: () => Promise<string>;

  constructor(private readonly o: UnitClientOptions) {
    this.socket = connect(o.url, {
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: o.reconnectDelayMs ?? 200,
      reconnectionDelayMax: o.reconnectDelayMaxMs ?? 1000,
      randomizationFactor: 0.3,
      timeout: 10_000,
      autoConnect: false,
      auth: (cb) => {
        const override = this.tokenOverride;
        this.tokenOverride = undefined;
        const t = override !== undefined ? Promise.resolve(override) : (this.tokenSource ?? o.token)();
        t.then(
          (token) => cb(o.sendLastSeq === false ? { token } : { token, lastSeq: this.lastSeq }),
          () => cb({ token: '' }),
        );
      },
    });
    this.socket.on('connect', () => {
      this.connects++;
    });
    this.socket.on('disconnect', () => {
      this.disconnects++;
    });
    this.socket.on('connect_error', (e: Error & { data?: { code?: string } }) => {
      this.connectErrors.push(e.data?.code ?? e.message);
    });
    this.socket.on('error' as never, (e: { code?: string }) => {
      this.serverErrors.push(e?.code ?? String(e));
    });
    this.socket.onAny((event: string, ...args: unknown[]) => this.onMessage(event, args));
  }

  get id(): string {
    return this.o.id;
  }

  /** Connects; resolves on the first connect, rejects with the refusal code. */
  open(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`unit ${this.o.id}: no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      const ok = () => {
        cleanup();
        resolve();
      };
      const bad = (e: Error & { data?: { code?: string } }) => {
        if (e.data?.code) {
          cleanup();
          reject(new Error(`unit ${this.o.id}: ${e.data.code}`));
        }
      };
      const cleanup = () => {
        clearTimeout(t);
        this.socket.off('connect', ok);
        this.socket.off('connect_error', bad);
      };
      this.socket.on('connect', ok);
      this.socket.on('connect_error', bad);
      this.socket.connect();
    });
  }

  /** Every later (re)connection attempt takes its token from `source` (undefined: the usual). */
  useTokenSource(source: (() => Promise<string>) | undefined): void {
    this.tokenSource = source;
  }

  /** Drops the transport as a network failure would; socket.io-client reconnects by itself. */
  dropTransport(): void {
    this.socket.io.engine?.close();
  }

  /**
   * Disconnects, then connects once with `token` (auto-reconnect off meanwhile). Resolves with
   * 'connected' or the refusal code.
   */
  async reconnectWith(token: string, timeoutMs = 15_000): Promise<string> {
    this.socket.disconnect();
    this.tokenOverride = token;
    const prev = this.socket.io.reconnection();
    this.socket.io.reconnection(false);
    try {
      return await new Promise<string>((resolve) => {
        const t = setTimeout(() => {
          cleanup();
          resolve('timeout');
        }, timeoutMs);
        const ok = () => {
          cleanup();
          resolve('connected');
        };
        const bad = (e: Error & { data?: { code?: string } }) => {
          cleanup();
          resolve(e.data?.code ?? e.message);
        };
        const cleanup = () => {
          clearTimeout(t);
          this.socket.off('connect', ok);
          this.socket.off('connect_error', bad);
        };
        this.socket.on('connect', ok);
        this.socket.on('connect_error', bad);
        this.socket.connect();
      });
    } finally {
      this.tokenOverride = undefined;
      this.socket.io.reconnection(prev);
    }
  }

  /** Waits until the socket is connected again. */
  connected(timeoutMs = 30_000): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    if (!this.socket.active) this.socket.connect();
    return waitFor(`unit ${this.o.id} to reconnect`, () => this.socket.connected, timeoutMs, 20).then(
      () => {},
    );
  }

  close(): void {
    this.closed = true;
    this.socket.disconnect();
  }

  /** Waits for the app's pending work (offer flows). */
  idle(): Promise<void> {
    return this.work;
  }

  private onMessage(event: string, args: unknown[]): void {
    const env = args[0] as { seq?: unknown; data?: unknown } | undefined;
    const received =
      args.length > 1 && typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
    if (event === 'assignment:offer' && received) (received as (ok: boolean) => void)(true);
    if (!env || typeof env.seq !== 'number') return;
    this.received++;
    const seq = env.seq;
    if (seq <= this.lastSeq) {
      if (this.seen.has(seq)) this.stats.resent++;
      else this.stats.reordered++;
      return;
    }
    if (seq > this.lastSeq + 1) this.stats.gaps += seq - this.lastSeq - 1;
    this.seen.add(seq);
    this.lastSeq = seq;
    this.stats.delivered++;
    // ---- the app layer
    if (event === 'assignment:offer') {
      const offer = env.data as OfferView;
      this.offerSeqs.add(seq);
      if (this.offers.has(offer.assignment.id)) {
        this.stats.duplicateOffers++;
        return;
      }
      this.offers.set(offer.assignment.id, offer);
      if (!this.assignmentStatus.has(offer.assignment.id))
        this.assignmentStatus.set(offer.assignment.id, offer.assignment.status);
      this.o.onOffer?.(offer, Date.now());
      if (this.o.behaviour === 'ack') this.work = this.work.then(() => this.handle(offer)).catch(() => {});
    } else if (event === 'assignment:updated') {
      const a = env.data as AssignmentView;
      this.assignmentStatus.set(a.id, a.status);
    }
  }

  /** Sends one unit event; retried (same payload) until the server answers, or `giveUpMs`. */
  private async send(event: 'ack' | 'status' | 'location', payload: unknown, giveUpMs = 120_000) {
    const end = Date.now() + giveUpMs;
    for (;;) {
      if (this.closed) return { ok: false, code: 'CLOSED' };
      try {
        const r = (await this.socket.timeout(5000).emitWithAck(event as never, payload as never)) as {
          ok: boolean;
          code?: string;
        };
        // Transient refusals: retry; anything else is the answer.
        if (r.ok || !['UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL'].includes(r.code ?? '')) return r;
      } catch {
        // no answer (disconnected, server down): retry
      }
      if (Date.now() > end) return { ok: false, code: 'GAVE_UP' };
      await sleep(200);
    }
  }

  private async handle(offer: OfferView): Promise<void> {
    const a = offer.assignment;
    const cur = this.assignmentStatus.get(a.id);
    if (cur !== undefined && cur !== 'offered') return; // already over (a replayed old offer)
    const ack = await this.send('ack', { assignmentId: a.id, accept: true });
    if (!ack.ok) return;
    this.accepted.add(offer.incident.id);
    this.o.onAccepted?.(offer, Date.now());
    await this.send('location', { position: offer.incident.location, at: Date.now() });
    const onScene = await this.send('status', { status: 'on_scene', incidentId: offer.incident.id });
    if (!onScene.ok) return;
    if (this.o.holdMs) await sleep(this.o.holdMs);
    await this.send('status', { status: 'available' });
  }
}

/**
 * Waits until every incident in `ids` was accepted by one of the units, as long as that makes
 * progress: gives up after `stallMs` without a new acceptance, or after `maxMs`. Returns how
 * long it took and how many were left.
 */
export async function waitAccepted(
  ids: readonly string[],
  clients: readonly UnitClient[],
  opts: { maxMs: number; stallMs?: number; log?: (msg: string) => void },
): Promise<{ ms: number; remaining: number }> {
  const t0 = Date.now();
  const stallMs = opts.stallMs ?? 30_000;
  let best = -1;
  let progressAt = t0;
  for (;;) {
    const got = new Set<string>();
    for (const c of clients) for (const id of c.accepted) got.add(id);
    const remaining = ids.filter((id) => !got.has(id)).length;
    const now = Date.now();
    if (remaining === 0) return { ms: now - t0, remaining };
    if (best < 0 || remaining < best) {
      best = remaining;
      progressAt = now;
    }
    if (now - progressAt > stallMs || now - t0 > opts.maxMs) {
      opts.log?.(`${remaining} incidents still not accepted by a unit after ${now - t0} ms`);
      return { ms: now - t0, remaining };
    }
    await sleep(200);
  }
}

/** Connects clients `concurrency` at a time. */
export async function openAll(clients: UnitClient[], concurrency = 50): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, clients.length) }, async () => {
      while (i < clients.length) await clients[i++].open();
    }),
  );
}

// ====================================================================== incidents, open loop

export interface PostResult {
  key: string;
  body: IncidentBody;
  /** Incident id from the first 2xx answer. */
  id?: string;
  status?: number;
  /** Every 2xx answer's id (must all be the same). */
  ids: string[];
  /** The status of the latest answer. */
  lastStatus?: number;
  attempts: number;
  firstSentAt: number;
  answeredAt?: number;
  /** The last failure (network error code or HTTP status). */
  lastError?: string;
  /** Refused for good (a 4xx): the test fails on it. */
  refused?: string;
}

/**
 * Posts incidents (POST /v1/incidents with an Idempotency-Key) open-loop at a fixed rate;
 * a post that fails (network error, 5xx) is kept for `retryFailed`, which re-posts it with
 * the same key and body until it is answered 2xx.
 */
export class IncidentPoster {
  readonly results = new Map<string, PostResult>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly next: ReturnType<typeof incidentStream>;
  private k = 0;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private url: string,
    private readonly token: string,
    seed: number,
    keyPrefix: string,
    /** Each incident with this reporter callback URL (webhooks). */
    private readonly callback?: string,
  ) {
    this.next = incidentStream(seed, keyPrefix);
  }

  get posted(): number {
    return this.k;
  }

  /** Fires at `rate`/s from now until stop() (or `maxCount`). */
  start(rate: number, maxCount = Number.POSITIVE_INFINITY): void {
    const t0 = performance.now();
    const first = this.k;
    this.loop = (async () => {
      while (!this.stopped && this.k < first + maxCount) {
        const due = first + Math.floor(((performance.now() - t0) * rate) / 1000) + 1;
        while (!this.stopped && this.k < Math.min(due, first + maxCount)) this.fire(this.k++);
        await sleep(2);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.allSettled([...this.inflight]);
  }

  private fire(k: number): void {
    const { key, body: plain } = this.next(k);
    const body = this.callback !== undefined ? { ...plain, callback: this.callback } : plain;
    const r: PostResult = { key, body, ids: [], attempts: 0, firstSentAt: Date.now() };
    this.results.set(key, r);
    this.track(this.send(r));
  }

  private track(p: Promise<void>): Promise<void> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  private async send(r: PostResult): Promise<void> {
    r.attempts++;
    try {
      const res = await fetch(`${this.url}/v1/incidents`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.token}`,
          'content-type': 'application/json',
          'idempotency-key': r.key,
        },
        body: JSON.stringify(r.body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      r.lastStatus = res.status;
      if (res.status === 200 || res.status === 201) {
        const id = (JSON.parse(text) as { id: string }).id;
        r.ids.push(id);
        if (r.id === undefined) {
          r.id = id;
          r.status = res.status;
          r.answeredAt = Date.now();
        }
      } else if (res.status >= 500) {
        r.lastError = `HTTP ${res.status}`;
      } else {
        r.refused = `HTTP ${res.status} ${text.slice(0, 200)}`;
      }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      r.lastError = e.cause?.code ?? e.name;
    }
  }

  /** Posts not answered 2xx yet (and not refused). */
  unanswered(): PostResult[] {
    return [...this.results.values()].filter((r) => r.id === undefined && r.refused === undefined);
  }

  /**
   * Re-posts every unanswered post with its key and body, `concurrency` at a time, until all
   * are answered or `ms` passed. Returns the number retried.
   */
  async retryFailed(ms = 60_000, concurrency = 32): Promise<number> {
    await Promise.allSettled([...this.inflight]);
    const end = Date.now() + ms;
    let retried = 0;
    for (;;) {
      const todo = this.unanswered();
      if (todo.length === 0 || Date.now() > end) return retried;
      retried += todo.length;
      let i = 0;
      await Promise.all(
        Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
          while (i < todo.length) await this.track(this.send(todo[i++]));
        }),
      );
      if (this.unanswered().length > 0) await sleep(250);
    }
  }

  /**
   * Replays `n` already answered posts (same key, same body), spread over the run: each must
   * be answered 200 with the same incident. Returns how many were, and how many were not.
   */
  async replaySome(n: number, concurrency = 16): Promise<{ replayed: number; wrong: number }> {
    const done = [...this.results.values()].filter((r) => r.id !== undefined);
    const step = Math.max(1, Math.floor(done.length / Math.max(1, n)));
    const sample: PostResult[] = [];
    for (let i = 0; i < done.length && sample.length < n; i += step) sample.push(done[i]);
    let replayed = 0;
    let wrong = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, sample.length) }, async () => {
        while (next < sample.length) {
          const r = sample[next++];
          const before = r.ids.length;
          await this.send(r);
          if (r.lastStatus === 200 && r.ids.length === before + 1 && r.ids[before] === r.id) replayed++;
          else wrong++;
        }
      }),
    );
    return { replayed, wrong };
  }

  /** Accepted posts (answered 2xx): key → incident id. */
  accepted(): Map<string, string> {
    const m = new Map<string, string>();
    for (const r of this.results.values()) if (r.id !== undefined) m.set(r.key, r.id);
    return m;
  }

  /** Keys answered 2xx more than once with different incident ids (must be none). */
  inconsistent(): string[] {
    return [...this.results.values()].filter((r) => new Set(r.ids).size > 1).map((r) => r.key);
  }
}

// ====================================================================== store checks

export interface StoreReport {
  /** Incidents in the store. */
  incidents: number;
  /** Accepted posts whose incident is not in the store. */
  lost: string[];
  /** Incidents in the store with no accepted key, or whose key maps to another id than answered. */
  extra: string[];
  /**
   * Incidents stored under a key whose post was never answered 2xx (the engine took it, the
   * client gave up waiting): not duplicates, and not lost either — reported apart.
   */
  storedUnanswered: string[];
  /** Pairs of one unit's assignments whose active periods overlap. */
  overlapping: { unitId: string; a: string; b: string }[];
  /** Units with more than one active assignment now. */
  activeTwice: string[];
  /** Accepted incidents never accepted by any unit. */
  neverAccepted: string[];
  assignments: number;
  timedOut: number;
}

/** Checks the engine's store against what the clients were told. */
export async function checkStore(
  sql: Sql,
  accepted: Map<string, string>,
  /** Keys posted and never answered 2xx (PostLoad.unanswered()). */
  unanswered: ReadonlySet<string> = new Set(),
): Promise<StoreReport> {
  const rows = await sql.query<{ id: string; idempotency_key: string | null }>(
    'SELECT id, idempotency_key FROM incidents',
  );
  const byId = new Map(rows.map((r) => [r.id, r.idempotency_key]));
  const ids = new Set(accepted.values());
  const lost = [...accepted.entries()].filter(([, id]) => !byId.has(id)).map(([k]) => k);
  const perKey = new Map<string, number>();
  for (const r of rows) {
    if (r.idempotency_key !== null) perKey.set(r.idempotency_key, (perKey.get(r.idempotency_key) ?? 0) + 1);
  }
  // One incident under a key whose post was never answered: the engine took it, the client
  // gave up waiting. A second one under any key is a duplicate.
  const unansweredOnce = (r: { idempotency_key: string | null }) =>
    r.idempotency_key !== null &&
    unanswered.has(r.idempotency_key) &&
    !accepted.has(r.idempotency_key) &&
    perKey.get(r.idempotency_key) === 1;
  const storedUnanswered = rows.filter(unansweredOnce).map((r) => r.id);
  const extra = rows
    .filter(
      (r) =>
        !unansweredOnce(r) &&
        (!ids.has(r.id) || r.idempotency_key === null || accepted.get(r.idempotency_key) !== r.id),
    )
    .map((r) => r.id);
  const overlapping = await sql.query<{ unitId: string; a: string; b: string }>(
    `SELECT x.unit_id AS "unitId", x.id AS a, y.id AS b
       FROM assignments x JOIN assignments y ON x.unit_id = y.unit_id AND x.id < y.id
      WHERE x.offered_at < COALESCE(y.ended_at, 'infinity'::timestamptz)
        AND y.offered_at < COALESCE(x.ended_at, 'infinity'::timestamptz)`,
  );
  const activeTwice = (
    await sql.query<{ unit_id: string }>(
      `SELECT unit_id FROM assignments WHERE status IN ('offered', 'accepted', 'en_route', 'on_scene')
        GROUP BY unit_id HAVING count(*) > 1`,
    )
  ).map((r) => r.unit_id);
  const acceptedRows = await sql.query<{ incident_id: string }>(
    'SELECT DISTINCT incident_id FROM assignments WHERE accepted_at IS NOT NULL',
  );
  const reached = new Set(acceptedRows.map((r) => r.incident_id));
  const neverAccepted = [...ids].filter((id) => !reached.has(id));
  const [{ n, t }] = await sql.query<{ n: string; t: string }>(
    `SELECT count(*)::text AS n, count(*) FILTER (WHERE status = 'timed_out')::text AS t FROM assignments`,
  );
  return {
    incidents: rows.length,
    lost,
    extra,
    storedUnanswered,
    overlapping,
    activeTwice,
    neverAccepted,
    assignments: Number(n),
    timedOut: Number(t),
  };
}

export interface AssignmentRow {
  id: string;
  incident_id: string;
  unit_id: string;
  status: string;
  offered_at: Date;
  ack_deadline: Date | null;
  accepted_at: Date | null;
  ended_at: Date | null;
}

export async function assignmentRows(
  sql: Sql,
  where = 'true',
  params: unknown[] = [],
): Promise<AssignmentRow[]> {
  return sql.query<AssignmentRow>(
    `SELECT id, incident_id, unit_id, status, offered_at, ack_deadline, accepted_at, ended_at
       FROM assignments WHERE ${where} ORDER BY offered_at, id`,
    params,
  );
}

/** Epoch ms of a timestamptz column (pg gives Date; PGlite too). */
export const ms = (d: Date | string | null | undefined): number =>
  d === null || d === undefined ? Number.NaN : d instanceof Date ? d.getTime() : Date.parse(d);
