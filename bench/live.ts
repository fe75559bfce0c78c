// `npm run bench:live [-- --mode embedded|services|both] [--units 1000] [--rate R[,R…]] [--duration 20]
//                      [--warmup 3] [--step] [--seed 1] [--no-baseline] [--json]`
//
// Load on the live engine as clients see it. Per mode, `dispatch serve` runs in a child process
// on a free port (embedded: PGlite in a temp dir + in-process queue, default 200 incidents/s;
// services: a database of its own on DATABASE_URL's server + BullMQ on REDIS_URL with a prefix
// of its own, default 300/s). This process then
//   1. registers N units (PUT /v1/units/:id as admin) at seeded random points of the demo
//      district, each able to serve every incident type used here;
//   2. connects one socket.io client per unit (unit token), which answers every offer like
//      the field app, at once: ack accept → location (at the incident) → on_scene →
//      available, so units stay free;
//   3. posts incidents (POST /v1/incidents, dispatcher token, Idempotency-Key) open-loop on a
//      fixed schedule — requests go out on time whatever the answers: during the warm-up the
//      rate climbs linearly from 0 (with --step: the whole rate from the first second), then
//      holds for the duration. Single-unit types, at grid points ≥ 110 m apart per type, so
//      the engine's duplicate merging (same type within 100 m and 300 s) never folds two
//      posts into one;
//   4. measures, for posts sent after the warmup, the time from sending the POST to the
//      `assignment:offer` for that incident arriving at a unit socket (matched by the incident
//      id in the offer payload; both instants from performance.now() in this one process),
//      and the POST's own response time; throughput is completed posts and offers per second
//      over the measured window.
// Beside it, in the same run and the same way, a bare fastify + socket.io echo server
// (bench/echo-server.ts: POST → emit to one connected socket) gives the floor.
//
// All clients share this one process (and the machine): its own event-loop lag is reported
// (`lagMaxMs`) and the load average is printed with the figures. Rerun when the machine is quiet.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { type Socket as ClientSocket, io as connect } from 'socket.io-client';
import type { LonLat } from '../src/core/types.ts';
import { QUEUES } from '../src/engine/jobs.ts';
import { BullmqQueue } from '../src/queue/bullmq-queue.ts';
import { Rng } from '../src/scenario/rng.ts';
import { mintToken } from '../src/server/auth.ts';
import type { OfferView } from '../src/shared/events.ts';
import { createDatabase, dropDatabase } from '../src/store/pg-client.ts';

const ROOT = join(import.meta.dirname, '..');
const TYPES = [
  'illegal-parking',
  'street-vending',
  'noise-complaint',
  'traffic-obstruction',
  'missing-manhole-cover',
  'burglary-report',
  'food-safety',
  'medical-emergency',
];
const CAPABILITIES = ['traffic', 'chengguan', 'police', 'market', 'ambulance'];
/** The demo district's bounding box. */
const BBOX = { w: 113.425, e: 113.5, s: 23.075, n: 23.12 };
const GRID_LON = 0.0011; // ≈ 112 m at 23° N
const GRID_LAT = 0.001; // ≈ 111 m

type Mode = 'embedded' | 'services';

interface Options {
  modes: Mode[];
  units: number;
  /** Incidents per second; several: one run each (a fresh server per run). */
  rates?: number[];
  durationS: number;
  warmupS: number;
  /** The warm-up ramps the rate up from 0 (default); false: the whole rate from the start. */
  ramp: boolean;
  seed: number;
  baseline: boolean;
  json: boolean;
}

interface Target {
  name: string;
  url: string;
  /** Tokens (the echo server ignores them). */
  dispatcher: string;
  unitToken(id: string): Promise<string>;
  /** Services mode: transactions committed so far in the server's database. */
  dbCommits?(): Promise<number>;
  /** CPU time the server process has used so far, ms (all its threads; not the database's). */
  cpuMs(): number | undefined;
  stop(): Promise<void>;
}

/** User + system CPU of a process from /proc (Linux), ms; undefined elsewhere. */
function procCpuMs(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks of 10 ms
  } catch {
    return undefined;
  }
}

export interface Result {
  target: string;
  mode: Mode | '-';
  units: number;
  rate: number;
  durationS: number;
  posted: number;
  /** Incidents created (201), warm-up included. */
  created: number;
  postsPerS: number;
  offersPerS: number;
  /** Posts answered 200 (merged / replayed): no offer expected. */
  merged: number;
  /** Posts that failed (network or non-2xx). */
  failed: number;
  /** Why they failed: status code or error name → count. */
  failures: Record<string, number>;
  /** Created incidents whose offer never arrived (within the grace time). */
  missing: number;
  offerMs: Percentiles;
  postMs: Percentiles;
  /** Services mode: PostgreSQL commits in the bench database per created incident. */
  dbCommitsPerIncident?: number;
  /** Decision rounds (optimiser calls, from /metrics) per created incident. */
  roundsPerIncident?: number;
  /** Mean duration of those rounds' optimiser calls (ms, from /metrics). */
  roundMs?: number;
  /** CPU of the server process (all threads) per created incident over the measured window, ms. */
  cpuMsPerIncident?: number;
  /** The engine's lane over the measured window (from /metrics; the echo server has none). */
  lane?: LaneFigures;
  /** Worst event-loop delay of this (client) process during the run. */
  lagMaxMs: number;
  loadAvg: { before: number[]; after: number[] };
}

interface LaneFigures {
  /** Share of the window the lane spent in batches (1: every state change waited its turn). */
  busy: number;
  tasksPerBatch: number;
  /** A batch's work on the event loop, and its commit wait, per task (ms). */
  workMsPerTask: number;
  commitMsPerTask: number;
  /**
   * Commits that took 20 ms or more (from the lane's commit histogram). Every task of such a
   * batch, and every one queued behind it, waits that long: the p99 follows them. A periodic
   * stall of the database showed here first (the WAL segment zero-fill, pglite-thread.mjs).
   */
  slowCommits: number;
}

interface LaneCounters {
  at: number;
  busyS: number;
  batches: number;
  tasks: number;
  workS: number;
  commitS: number;
  /** Commits under 20 ms (the histogram's le="0.02" bucket), and all of them. */
  commitsFast: number;
  commits: number;
}

/** The lane's counters on /metrics now; undefined when the target has none. */
async function laneCounters(url: string): Promise<LaneCounters | undefined> {
  try {
    const at = performance.now();
    const text = await (await fetch(`${url}/metrics`)).text();
    const read = (name: string) => Number(new RegExp(`^\\w*${name} (\\S+)$`, 'm').exec(text)?.[1]);
    const c = {
      at,
      busyS: read('lane_busy_seconds_total'),
      batches: read('lane_batch_tasks_count'),
      tasks: read('lane_batch_tasks_sum'),
      workS: read('lane_work_seconds_sum'),
      commitS: read('lane_commit_seconds_sum'),
      commitsFast: read('lane_commit_seconds_bucket\\{le="0\\.02"\\}'),
      commits: read('lane_commit_seconds_count'),
    };
    return Object.values(c).every(Number.isFinite) ? c : undefined;
  } catch {
    return undefined;
  }
}

function laneFigures(a: LaneCounters | undefined, b: LaneCounters | undefined): LaneFigures | undefined {
  if (!a || !b || b.tasks <= a.tasks) return undefined;
  const tasks = b.tasks - a.tasks;
  return {
    busy: round((b.busyS - a.busyS) / ((b.at - a.at) / 1000), 2),
    tasksPerBatch: round(tasks / (b.batches - a.batches)),
    workMsPerTask: round(((b.workS - a.workS) * 1000) / tasks, 3),
    commitMsPerTask: round(((b.commitS - a.commitS) * 1000) / tasks, 3),
    slowCommits: b.commits - b.commitsFast - (a.commits - a.commitsFast),
  };
}

interface Percentiles {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

const log = (msg: string) => process.stderr.write(`bench:live ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

function percentiles(xs: number[]): Percentiles {
  if (xs.length === 0) return { n: 0, p50: null, p90: null, p99: null, max: null };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => round(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]);
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: round(s[s.length - 1]) };
}

async function pool<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

// ------------------------------------------------------------------ targets

function spawnReady(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string) {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // BENCH_SERVE_LOG=FILE: everything the server writes, for a run that went wrong.
  const keep = process.env.BENCH_SERVE_LOG;
  const take = (b: Buffer) => {
    if (keep) appendFileSync(keep, b);
    if (out.length < 1_000_000) out += b.toString();
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  return new Promise<{ child: ChildProcess; url: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${out}`)), 180_000);
    const check = () => {
      const m = /listening on (http:\/\/[^\s)]+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve({ child, url: m[1] });
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${out}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function waitHealthy(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // starting
    }
    await sleep(100);
  }
  throw new Error(`${url}/healthz never answered`);
}

async function startEngine(mode: Mode, opts: Options): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'dispatch-bench-live-'));
  const secret = randomBytes(32).toString('base64url');
  const demo = JSON.parse(readFileSync(join(ROOT, 'scenarios/demo.json'), 'utf8'));
  const config = join(dir, 'district.json');
  writeFileSync(
    config,
    JSON.stringify({ areas: demo.areas, catalog: demo.catalog, travel: demo.travel, units: [] }),
  );
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', DISPATCH_JWT_SECRET: secret };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  const cleanups: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  let dbCommits: (() => Promise<number>) | undefined;
  if (mode === 'services') {
    const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const db = await createDatabase(adminUrl, `dispatch_bench_${randomBytes(4).toString('hex')}`);
    const prefix = `dispatch-bench-${randomBytes(4).toString('hex')}`;
    env.DATABASE_URL = db.url;
    env.REDIS_URL = redisUrl;
    env.DISPATCH_QUEUE_PREFIX = prefix;
    cleanups.push(async () => {
      const q = new BullmqQueue({ url: redisUrl, prefix });
      try {
        for (const name of Object.values(QUEUES)) await q.depth(name);
        await q.purge();
      } finally {
        await q.close();
      }
    });
    cleanups.push(() => dropDatabase(adminUrl, db.name));
    dbCommits = async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query('SELECT pg_stat_clear_snapshot()');
        const r = await c.query<{ n: string }>(
          'SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = $1',
          [db.name],
        );
        return Number(r.rows[0]?.n ?? 0);
      } finally {
        await c.end();
      }
    };
  }
  const { child, url } = await spawnReady(
    process.execPath,
    [
      ...(process.env.BENCH_SERVE_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      join(ROOT, 'bin/dispatch.js'),
      'serve',
      '--port',
      '0',
      '--data-dir',
      dir,
      '--config',
      config,
    ],
    env,
    'dispatch serve',
  );
  await waitHealthy(url);
  const admin = await mintToken({ role: 'admin' }, secret);
  // Units at seeded random points of the district, each able to serve every bench type.
  const rng = new Rng(opts.seed).fork('bench:units');
  const ids = Array.from({ length: opts.units }, (_, i) => `B-${String(i + 1).padStart(4, '0')}`);
  const homes = ids.map((): LonLat => [rng.uniform(BBOX.w, BBOX.e), rng.uniform(BBOX.s, BBOX.n)]);
  await pool(
    ids.map((id, i) => ({ id, home: homes[i] })),
    16,
    async ({ id, home }) => {
      const res = await fetch(`${url}/v1/units/${id}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          department: 'bench',
          capabilities: CAPABILITIES,
          home,
          speedKmh: 40,
          turnoutS: 60,
        }),
      });
      if (!res.ok) throw new Error(`PUT /v1/units/${id}: ${res.status} ${await res.text()}`);
    },
  );
  return {
    name: 'engine',
    url,
    dispatcher: await mintToken({ role: 'dispatcher', ttlS: 3600 }, secret),
    unitToken: (id) => mintToken({ role: 'unit', unitId: id, ttlS: 3600 }, secret),
    ...(dbCommits ? { dbCommits } : {}),
    cpuMs: () => procCpuMs(child.pid),
    async stop() {
      await stopChild(child);
      for (const c of cleanups) await c().catch((e) => log(`cleanup failed: ${(e as Error).message}`));
    },
  };
}

async function startEcho(): Promise<Target> {
  const { child, url } = await spawnReady(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/echo-server.ts'), '--port', '0'],
    process.env,
    'echo server',
  );
  return {
    name: 'echo baseline',
    url,
    dispatcher: 'none',
    unitToken: async () => 'none',
    cpuMs: () => procCpuMs(child.pid),
    stop: () => stopChild(child),
  };
}

// ------------------------------------------------------------------ the load

type Client = ClientSocket;

async function connectUnits(target: Target, n: number, onOffer: (o: OfferView) => void): Promise<Client[]> {
  const ids = Array.from({ length: n }, (_, i) => `B-${String(i + 1).padStart(4, '0')}`);
  const clients: Client[] = [];
  await pool(ids, 50, async (id) => {
    const token = await target.unitToken(id);
    const c = connect(target.url, { transports: ['websocket'], auth: { token }, reconnection: false });
    clients.push(c);
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('connect_error', (e: Error & { data?: { code?: string } }) =>
        reject(new Error(`unit ${id}: ${e.data?.code ?? e.message}`)),
      );
    });
    const send = (ev: string, payload: unknown) =>
      new Promise<void>((resolve) => {
        c.timeout(10_000).emit(ev, payload, () => resolve());
      });
    c.on('assignment:offer', (env: { data: OfferView }, received?: (ok: boolean) => void) => {
      if (typeof received === 'function') received(true);
      const offer = env.data;
      onOffer(offer);
      void (async () => {
        await send('ack', { assignmentId: offer.assignment.id, accept: true });
        await send('location', { position: offer.incident.location, at: Date.now() });
        await send('status', { status: 'on_scene', incidentId: offer.incident.id });
        await send('status', { status: 'available' });
      })();
    });
  });
  return clients;
}

/** Seeded incident stream: types round the list, grid points unused for that type. */
function incidentStream(seed: number) {
  const rng = new Rng(seed).fork('bench:incidents');
  const cols = Math.floor((BBOX.e - BBOX.w) / GRID_LON);
  const rows = Math.floor((BBOX.n - BBOX.s) / GRID_LAT);
  const cells = TYPES.map(() => rng.shuffle(Array.from({ length: cols * rows }, (_, i) => i)));
  const used = TYPES.map(() => 0);
  return (k: number) => {
    const t = rng.int(0, TYPES.length - 1);
    const cell = cells[t][used[t]++ % cells[t].length];
    const location: LonLat = [
      round(BBOX.w + ((cell % cols) + 0.5) * GRID_LON, 6),
      round(BBOX.s + (Math.floor(cell / cols) + 0.5) * GRID_LAT, 6),
    ];
    return { key: `bench-${seed}-${k}`, body: { type: TYPES[t], location, source: 'bench' } };
  };
}

async function measure(target: Target, mode: Mode | '-', rate: number, opts: Options): Promise<Result> {
  const sentAt = new Map<string, number>();
  const offerAt = new Map<string, number>();
  const offerMs: number[] = [];
  const postMs: number[] = [];
  let merged = 0;
  let failed = 0;
  let created = 0;
  const failures: Record<string, number> = {};
  const failure = (why: string) => {
    failed++;
    failures[why] = (failures[why] ?? 0) + 1;
  };
  let measuredPosts = 0;
  let measuredOffers = 0;
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  const inWindow = (t: number) => t >= windowStart && t < windowEnd;

  const match = (id: string) => {
    const s = sentAt.get(id);
    const o = offerAt.get(id);
    if (s === undefined || o === undefined) return;
    if (inWindow(s)) offerMs.push(o - s);
    sentAt.delete(id);
    offerAt.delete(id);
  };

  log(`${target.name}${mode === '-' ? '' : ` (${mode})`}: connecting ${opts.units} units`);
  const offered = new Set<string>();
  const clients = await connectUnits(target, opts.units, (offer) => {
    const now = performance.now();
    const id = offer.incident.id;
    if (offered.has(id)) return; // a re-sent offer
    offered.add(id);
    if (inWindow(now)) measuredOffers++;
    offerAt.set(id, now);
    match(id);
  });

  const next = incidentStream(opts.seed);
  // Warm-up: the rate climbs linearly from 0 (a ramp, as k6's ramping stages), or starts whole
  // (--step). A cold engine hit at once with 300/s ran its first seconds in unoptimised code
  // and built a backlog of hundreds of changes; in services mode that took ~10 s to clear,
  // most of it inside the window, or did not clear at all. The window is to measure the rate
  // held, not the start.
  const warmMs = opts.warmupS * 1000;
  const rampPosts = opts.ramp ? Math.floor((rate * opts.warmupS) / 2) : 0;
  const total = opts.ramp
    ? rampPosts + Math.round(opts.durationS * rate)
    : Math.round((opts.warmupS + opts.durationS) * rate);
  /** When post k is due, ms after t0. */
  const dueMs = (k: number) => {
    if (!opts.ramp) return (k * 1000) / rate;
    // Posts due by t (ms) on the ramp: rate·t²/(2·warmMs), solved for t.
    if (k < rampPosts) return Math.sqrt((2 * warmMs * k * 1000) / rate);
    return warmMs + ((k - rampPosts) * 1000) / rate;
  };
  const lag = monitorEventLoopDelay({ resolution: 10 });
  const before = loadavg().map((x) => round(x, 2));
  log(
    `${target.name}: ${rate}/s for ${opts.warmupS} s warm-up (${opts.ramp ? 'ramp' : 'step'}) + ${opts.durationS} s`,
  );
  lag.enable();
  const t0 = performance.now() + 50;
  windowStart = t0 + opts.warmupS * 1000;
  windowEnd = windowStart + opts.durationS * 1000;
  const inflight = new Set<Promise<void>>();
  const fire = (k: number) => {
    const { key, body } = next(k);
    const sent = performance.now();
    const p = fetch(`${target.url}/v1/incidents`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${target.dispatcher}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body: JSON.stringify(body),
    })
      .then(async (res) => {
        const done = performance.now();
        const json = (await res.json()) as { id?: string };
        if (res.status === 201 && json.id) {
          created++;
          if (inWindow(sent)) {
            postMs.push(done - sent);
          }
          if (inWindow(done)) measuredPosts++;
          sentAt.set(json.id, sent);
          match(json.id);
        } else if (res.status === 200) merged++;
        else failure(`HTTP ${res.status}`);
      })
      .catch((err: Error & { cause?: { code?: string } }) => failure(err.cause?.code ?? err.name));
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  // The server's CPU over the measured window (open loop: rate × duration posts in it).
  let cpu0: number | undefined;
  let lane0: Promise<LaneCounters | undefined> | undefined;
  for (let k = 0; k < total; ) {
    const now = performance.now();
    if (cpu0 === undefined && now >= windowStart) {
      cpu0 = target.cpuMs() ?? Number.NaN;
      lane0 = laneCounters(target.url);
    }
    while (k < total && t0 + dueMs(k) <= now) fire(k++);
    await sleep(1);
  }
  const cpu1 = target.cpuMs();
  const lane = laneFigures(await lane0, await laneCounters(target.url));
  await Promise.allSettled([...inflight]);
  // Grace for offers still on their way.
  for (let i = 0; i < 100 && sentAt.size > 0; i++) await sleep(100);
  lag.disable();
  const missing = sentAt.size;
  for (const c of clients) c.disconnect();
  const after = loadavg().map((x) => round(x, 2));
  return {
    target: target.name,
    mode,
    units: opts.units,
    rate,
    durationS: opts.durationS,
    posted: total,
    created,
    postsPerS: round(measuredPosts / opts.durationS),
    offersPerS: round(measuredOffers / opts.durationS),
    merged,
    failed,
    failures,
    missing,
    offerMs: percentiles(offerMs),
    postMs: percentiles(postMs),
    lagMaxMs: round(lag.max / 1e6),
    ...(cpu0 !== undefined && cpu1 !== undefined && Number.isFinite(cpu0)
      ? { cpuMsPerIncident: round((cpu1 - cpu0) / (rate * opts.durationS)) }
      : {}),
    ...(lane ? { lane } : {}),
    loadAvg: { before, after },
  };
}

// ------------------------------------------------------------------ main

function table(results: Result[]): string {
  const head = [
    'target',
    'mode',
    'rate/s',
    'posts/s',
    'offers/s',
    'offer p50',
    'p90',
    'p99',
    'max',
    'POST p50',
    'p99',
    'missing',
    'failed',
    'lag max',
    'db tx/inc',
    'rounds/inc',
    'round ms',
    'cpu ms/inc',
    'lane busy',
    'tasks/batch',
    'work ms/task',
    'commit ms/task',
    'commits ≥20 ms',
    'load avg',
  ];
  const ms = (x: number | null) => (x === null ? '-' : `${x} ms`);
  const rows = results.map((r) => [
    r.target,
    r.mode,
    String(r.rate),
    String(r.postsPerS),
    String(r.offersPerS),
    ms(r.offerMs.p50),
    ms(r.offerMs.p90),
    ms(r.offerMs.p99),
    ms(r.offerMs.max),
    ms(r.postMs.p50),
    ms(r.postMs.p99),
    String(r.missing),
    String(r.failed),
    ms(r.lagMaxMs),
    r.dbCommitsPerIncident === undefined ? '-' : String(r.dbCommitsPerIncident),
    r.roundsPerIncident === undefined ? '-' : String(r.roundsPerIncident),
    r.roundMs === undefined ? '-' : String(r.roundMs),
    r.cpuMsPerIncident === undefined ? '-' : String(r.cpuMsPerIncident),
    r.lane ? String(r.lane.busy) : '-',
    r.lane ? String(r.lane.tasksPerBatch) : '-',
    r.lane ? String(r.lane.workMsPerTask) : '-',
    r.lane ? String(r.lane.commitMsPerTask) : '-',
    r.lane ? String(r.lane.slowCommits) : '-',
    `${r.loadAvg.before[0]}→${r.loadAvg.after[0]}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: 'string', default: 'embedded' },
      units: { type: 'string', default: '1000' },
      rate: { type: 'string' },
      duration: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      'no-baseline': { type: 'boolean', default: false },
      step: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const num = (v: string | undefined, name: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}`);
    return n;
  };
  const mode = String(values.mode);
  if (!['embedded', 'services', 'both'].includes(mode)) throw new Error('--mode embedded|services|both');
  return {
    modes: mode === 'both' ? ['embedded', 'services'] : [mode as Mode],
    units: Math.round(num(values.units, 'units', 1)),
    ...(values.rate !== undefined
      ? { rates: values.rate.split(',').map((r) => num(r.trim(), 'rate', 1)) }
      : {}),
    durationS: num(values.duration, 'duration', 1),
    warmupS: num(values.warmup, 'warmup', 0),
    ramp: !values.step,
    seed: Math.round(num(values.seed, 'seed', 0)),
    baseline: !values['no-baseline'],
    json: Boolean(values.json),
  };
}

/**
 * Optimiser calls so far and their total seconds (the decision histogram's count and sum on
 * /metrics); undefined if unread.
 */
async function decisionRounds(url: string): Promise<{ n: number; s: number } | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    let n = 0;
    let s = 0;
    for (const m of text.matchAll(/^\w*decision_duration_seconds_(count|sum)(?:\{[^}]*\})? ([\d.e+-]+)/gm))
      if (m[1] === 'count') n += Number(m[2]);
      else s += Number(m[2]);
    return { n, s };
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const results: Result[] = [];
  for (const mode of opts.modes) {
    for (const rate of opts.rates ?? [mode === 'embedded' ? 200 : 300]) {
      log(`starting dispatch serve (${mode})`);
      const engine = await startEngine(mode, opts);
      try {
        const c0 = await engine.dbCommits?.();
        const d0 = await decisionRounds(engine.url);
        const r = await measure(engine, mode, rate, opts);
        const d1 = await decisionRounds(engine.url);
        await sleep(1500); // the statistics collector lags
        const c1 = await engine.dbCommits?.();
        if (c0 !== undefined && c1 !== undefined && r.created > 0) {
          r.dbCommitsPerIncident = round((c1 - c0) / r.created);
        }
        if (d0 !== undefined && d1 !== undefined && r.created > 0) {
          r.roundsPerIncident = round((d1.n - d0.n) / r.created);
          if (d1.n > d0.n) r.roundMs = round((1000 * (d1.s - d0.s)) / (d1.n - d0.n), 3);
        }
        results.push(r);
      } finally {
        await engine.stop();
      }
      if (opts.baseline) {
        const echo = await startEcho();
        try {
          results.push(await measure(echo, '-', rate, opts));
        } finally {
          await echo.stop();
        }
      }
    }
  }
  const meta = {
    units: opts.units,
    durationS: opts.durationS,
    warmupS: opts.warmupS,
    ramp: opts.ramp,
    seed: opts.seed,
    cpus: cpus().length,
    node: process.version,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ...meta, results }, null, 2)}\n`);
  } else {
    process.stdout.write(
      `bench:live — ${opts.units} socket.io units, ${opts.warmupS} s warm-up (${opts.ramp ? 'rate ramped up from 0' : 'whole rate at once'}) + ${opts.durationS} s, seed ${opts.seed}, ${meta.cpus} CPUs, Node ${meta.node}\n` +
        "offer = POST sent → assignment:offer received at a unit socket (this process's clock); load avg = 1-min before→after\n\n" +
        `${table(results)}\n`,
    );
  }
}

main().catch((err) => {
  process.stderr.write(`bench:live: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
