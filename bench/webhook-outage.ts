// `npx tsx bench/webhook-outage.ts [--units 100] [--rate 20] [--duration 10] [--warmup 2] [--cycles 2]
//                                  [--store pglite|memory] [--json]`
//
// Does a failing reporter webhook receiver slow dispatch? One process runs the live engine as
// `dispatch serve` wires it in embedded mode — PGlite in its worker thread (in memory) or the
// memory store, the in-process queue, the workers, the FollowUp with its webhook sender (real
// clock), the HTTP API and socket.io on a free port — plus N field units as socket.io clients
// that answer every offer at once (accept → location at the incident → on scene → available,
// so they stay free), and a webhook receiver on 127.0.0.1. Every incident carries the
// receiver's URL as its callback, so each one makes four signed deliveries (received,
// assigned, on scene, resolved).
//
// Phases, the same open-loop load each (POST /v1/incidents at --rate per second for --warmup
// + --duration seconds; only posts after the warm-up are measured):
//   up     the receiver answers 204 at once;
//   down   the receiver is not listening (connection refused); the sender backs it off on
//          its production schedule (5, 15, 30, 60, 120, 300 s), probing it once per step;
//   hang   the receiver accepts connections and never answers: attempts hold a sender slot
//          until their 5 s timeout.
// One unreported warm-up phase, then --cycles rounds of up / down / hang; after each round the
// receiver comes back and the time until its whole backlog is delivered is taken. Measured:
// POST sent → `assignment:offer` for that incident at a unit socket (this process's
// performance.now()), p50 / p90 / p99 / max per phase and pooled per receiver state.
//
// All clients share this process and the machine: compare phases of one run, not runs.

import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type Socket as ClientSocket, io as connect } from 'socket.io-client';
import { defaultCatalog } from '../src/core/catalog.ts';
import { GreatCircleTravel } from '../src/core/travel.ts';
import type { LonLat } from '../src/core/types.ts';
import { Engine } from '../src/engine/engine.ts';
import { FollowUp } from '../src/engine/followup.ts';
import { systemClock } from '../src/engine/ports.ts';
import { MemoryQueue } from '../src/queue/memory-queue.ts';
import { Rng } from '../src/scenario/rng.ts';
import { mintToken } from '../src/server/auth.ts';
import { SocketPublisher, startHttp } from '../src/server/index.ts';
import type { OfferView } from '../src/shared/events.ts';
import { openStore } from '../src/store/index.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { startWorkers } from '../workers/index.ts';

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '100' },
    rate: { type: 'string', default: '20' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    cycles: { type: 'string', default: '2' },
    store: { type: 'string', default: 'pglite' },
    json: { type: 'boolean', default: false },
  },
});
const N_UNITS = Number(values.units);
const RATE = Number(values.rate);
const DURATION_S = Number(values.duration);
const WARMUP_S = Number(values.warmup);
const CYCLES = Number(values.cycles);
const SECRET = 'bench-webhook-outage-jwt-secret-0123456789';
const TYPES = [
  'illegal-parking',
  'noise-complaint',
  'street-vending',
  'burglary-report',
  'traffic-obstruction',
];
const CAPS = ['traffic', 'police', 'chengguan'];
const BBOX = { w: 113.425, e: 113.5, s: 23.075, n: 23.12 };
const GRID_LON = 0.0012; // ≈ 123 m at 23° N
const GRID_LAT = 0.0011; // ≈ 122 m

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the receiver

type Mode = 'up' | 'down' | 'hang';
type Phase = Mode | 'up again';

class Receiver {
  mode: Mode = 'up';
  delivered = 0;
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  constructor(readonly port: number) {}

  static async create(): Promise<Receiver> {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    return new Receiver(port);
  }

  async set(mode: Mode): Promise<void> {
    this.mode = mode;
    if (mode === 'down') {
      const s = this.server;
      this.server = undefined;
      for (const so of this.sockets) so.destroy();
      if (s) await new Promise<void>((r) => s.close(() => r()));
      return;
    }
    if (this.server) return;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (this.mode === 'hang') return; // never answers
        this.delivered++;
        res.writeHead(204).end();
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.server = server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/reporter`;
  }
}

// ---------------------------------------------------------------- figures

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const p = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil((q / 100) * s.length) - 1)] : NaN);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, p50: r(p(50)), p90: r(p(90)), p99: r(p(99)), max: r(s.at(-1) ?? NaN) };
}

async function main(): Promise<void> {
  // As `dispatch serve` opens it in embedded mode: PGlite in its worker thread (in memory here).
  const store = values.store === 'memory' ? new MemoryStore() : await openStore({});
  const queue = new MemoryQueue();
  const publisher = new SocketPublisher();
  const engine = new Engine({
    store,
    queue,
    publisher,
    clock: systemClock,
    catalog: defaultCatalog(),
    travel: new GreatCircleTravel(),
    // The bench's receiver is local and plain http; production refuses both.
    config: { callbackAllowHttp: true, callbackAllowPrivate: true, sweepIntervalMs: 0 },
    log: () => {},
  });
  await engine.start();
  const followUp = new FollowUp({
    store,
    engineConfig: engine.config,
    webhookSecret: 'bench-webhook-signing-secret-0123',
    // The production back-off schedule and limits; a shorter polling period than the default.
    webhooks: { pollMs: 200 },
    log: () => {},
  });
  const workers = await startWorkers(engine, queue, store, { relay: { pollMs: 20 }, followUp });
  followUp.start();
  const http = await startHttp({
    engine,
    store,
    auth: { secret: SECRET },
    publisher,
    port: 0,
    host: '127.0.0.1',
    followUp,
    ready: () => engine.running,
  });
  const rng = new Rng(1);
  const admin = { role: 'admin' as const, id: 'bench' };
  for (let i = 0; i < N_UNITS; i++) {
    const home: LonLat = [BBOX.w + rng.next() * (BBOX.e - BBOX.w), BBOX.s + rng.next() * (BBOX.n - BBOX.s)];
    await engine.upsertUnit(
      `B-${String(i + 1).padStart(4, '0')}`,
      { department: 'bench', capabilities: CAPS, home, speedKmh: 30, turnoutS: 30 },
      admin,
    );
  }
  const rx = await Receiver.create();
  await rx.set('up');

  // Units as socket.io clients. An offer may reach its unit before the POST's answer reaches
  // this process: offers are kept by incident id until the poster looks.
  const waiting = new Map<string, (t: number) => void>();
  const offeredAt = new Map<string, number>();
  const clients: ClientSocket[] = [];
  for (let i = 0; i < N_UNITS; i++) {
    const id = `B-${String(i + 1).padStart(4, '0')}`;
    const token = await mintToken({ role: 'unit', unitId: id }, SECRET);
    const c = connect(http.url, { transports: ['websocket'], auth: { token }, reconnection: false });
    clients.push(c);
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('connect_error', reject);
    });
    const send = (ev: string, payload: unknown) =>
      new Promise<void>((resolve) => {
        c.timeout(10_000).emit(ev, payload, () => resolve());
      });
    c.on('assignment:offer', (env: { data: OfferView }, received?: (ok: boolean) => void) => {
      const t = performance.now();
      if (typeof received === 'function') received(true);
      const offer = env.data;
      const w = waiting.get(offer.incident.id);
      if (w) w(t);
      else if (!offeredAt.has(offer.incident.id)) offeredAt.set(offer.incident.id, t);
      void (async () => {
        await send('ack', { assignmentId: offer.assignment.id, accept: true });
        await send('location', { position: offer.incident.location, at: Date.now() });
        await send('status', { status: 'on_scene', incidentId: offer.incident.id });
        await send('status', { status: 'available' });
      })();
    });
  }
  const dispatcher = await mintToken({ role: 'dispatcher', sub: 'bench' }, SECRET);

  let seq = 0;
  async function phase(name: Phase) {
    const mode: Mode = name === 'up again' ? 'up' : name;
    await rx.set(mode);
    const lat: number[] = [];
    let lost = 0;
    const total = Math.round((WARMUP_S + DURATION_S) * RATE);
    const warm = Math.round(WARMUP_S * RATE);
    const t0 = performance.now();
    const done: Promise<void>[] = [];
    const la = loadavg()[0];
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const k = seq++;
      // Per type, grid points ≥ 110 m apart (row-major): the engine never merges two posts as
      // duplicates (same type within 100 m and 300 s).
      const j = Math.floor(k / TYPES.length);
      const cols = Math.floor((BBOX.e - BBOX.w) / GRID_LON);
      const location: LonLat = [
        BBOX.w + (j % cols) * GRID_LON,
        BBOX.s + (Math.floor(j / cols) % 40) * GRID_LAT,
      ];
      const sent = performance.now();
      done.push(
        (async () => {
          const res = await fetch(`${http.url}/v1/incidents`, {
            method: 'POST',
            headers: { authorization: `Bearer ${dispatcher}`, 'content-type': 'application/json' },
            body: JSON.stringify({ type: TYPES[k % TYPES.length], location, callback: rx.url }),
          });
          const inc = (await res.json()) as { id: string };
          const early = offeredAt.get(inc.id);
          offeredAt.delete(inc.id);
          const offered =
            early ??
            (await new Promise<number>((resolve) => {
              waiting.set(inc.id, resolve);
              setTimeout(() => resolve(Number.NaN), 30_000);
            }));
          waiting.delete(inc.id);
          if (i >= warm && Number.isFinite(offered)) lat.push(offered - sent);
          else if (i >= warm) lost++;
        })(),
      );
    }
    await Promise.all(done);
    lag.disable();
    process.stderr.write(`  phase ${name}: ${lat.length} offers measured of ${total - warm} posts\n`);
    const lagMaxMs = Math.round(lag.max / 1e5) / 10;
    const pending = (await followUp.side.listDeliveries({ state: 'pending', limit: 1000 })).length;
    return {
      mode: name,
      samples: lat,
      ...stats(lat),
      lost,
      posted: total,
      lagMaxMs,
      loadAvg1m: [la, loadavg()[0]].map((x) => Math.round(x * 100) / 100),
      pendingDeliveriesAfter: pending,
    };
  }

  // A warm-up phase (not reported), then cycles of up / down / hang, each followed by the
  // receiver coming back and its backlog being delivered (timed).
  await phase('up');
  const results: Awaited<ReturnType<typeof phase>>[] = [];
  const drains: number[] = [];
  for (let c = 0; c < CYCLES; c++) {
    for (const m of ['up', 'down', 'hang'] as const) results.push(await phase(m));
    await rx.set('up');
    const t0 = performance.now();
    for (;;) {
      const pending = await followUp.side.listDeliveries({ state: 'pending', limit: 1 });
      if (pending.length === 0) break;
      if (performance.now() - t0 > 180_000) break;
      await sleep(200);
    }
    drains.push(Math.round((performance.now() - t0) / 100) / 10);
  }
  const drainS = Math.max(...drains);
  const dead = (await followUp.side.listDeliveries({ state: 'dead', limit: 1000 })).length;

  for (const c of clients) c.disconnect();
  await http.close();
  await engine.stop();
  await workers.stop();
  await followUp.stop();
  await queue.close();
  await store.close();
  await rx.set('down');

  const pooled = (['up', 'down', 'hang'] as const).map((m) => ({
    mode: m,
    ...stats(results.filter((r) => r.mode === m).flatMap((r) => r.samples)),
    lost: results.filter((r) => r.mode === m).reduce((n, r) => n + r.lost, 0),
  }));
  const out = {
    store: values.store,
    units: N_UNITS,
    ratePerS: RATE,
    measuredS: DURATION_S,
    pooled,
    phases: results.map(({ samples: _s, ...r }) => r),
    afterRecovery: { drainS, receiverGot: rx.delivered, dead },
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `webhook receiver outage vs dispatch latency — ${values.store}, ${N_UNITS} units, ${RATE} incidents/s, ${DURATION_S} s measured per phase\n` +
      'POST /v1/incidents sent → assignment:offer at a unit socket, ms\n\n' +
      'receiver   n      p50     p90     p99     max   event-loop lag max   pending deliveries after   load avg 1m\n',
  );
  for (const r of results) {
    process.stdout.write(
      `${r.mode.padEnd(9)}${String(r.n).padStart(4)} ${String(r.p50).padStart(8)} ${String(r.p90).padStart(7)} ${String(r.p99).padStart(7)} ${String(r.max).padStart(7)}   ${String(r.lagMaxMs).padStart(12)}         ${String(r.pendingDeliveriesAfter).padStart(10)}               ${r.loadAvg1m.join(' → ')}\n`,
    );
  }
  process.stdout.write(
    `\npooled over ${CYCLES} cycle(s)\nreceiver   n      p50     p90     p99     max   lost\n`,
  );
  for (const r of pooled) {
    process.stdout.write(
      `${r.mode.padEnd(9)}${String(r.n).padStart(4)} ${String(r.p50).padStart(8)} ${String(r.p90).padStart(7)} ${String(r.p99).padStart(7)} ${String(r.max).padStart(7)}   ${r.lost}\n`,
    );
  }
  process.stdout.write(
    `\nreceiver back up: every pending delivery sent within ${drainS} s; receiver got ${rx.delivered} deliveries; dead letters: ${dead}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
