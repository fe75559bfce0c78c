// The whole live stack in one process: the real Engine on a MemoryStore and the in-process
// queue with its workers, the fastify app listening on a free port, socket.io attached, and
// REAL socket.io-client clients — wired as `dispatch serve` wires it.

import { type Socket as ClientSocket, io as connect } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/core/catalog.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';
import { Engine } from '../../src/engine/engine.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import { systemClock } from '../../src/engine/ports.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import { mintToken } from '../../src/server/auth.ts';
import { type HttpServer, startHttp } from '../../src/server/index.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { SocketPublisher } from '../../src/server/sockets.ts';
import type {
  AssignmentView,
  ClientToServerEvents,
  Envelope,
  IncidentView,
  OfferView,
  ServerToClientEvents,
} from '../../src/shared/events.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { startWorkers, type Workers } from '../../workers/index.ts';

type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;
type Got = { event: string; seq: number; data: unknown };

const secret = 'integration-secret-integration-secret-01';
const BASE: LonLat = [113.45, 23.1];
/** A point dxKm east and dyKm north of BASE (Huangpu, Guangzhou). */
const at = (dxKm: number, dyKm = 0): LonLat => [BASE[0] + dxKm / 102.4, BASE[1] + dyKm / 111.2];

let server: HttpServer;
let engine: Engine;
let store: MemoryStore;
let queue: MemoryQueue;
let workers: Workers;
let base: string;
const tokens: Record<string, string> = {};
const open: Client[] = [];

beforeAll(async () => {
  store = new MemoryStore();
  queue = new MemoryQueue({ retry: { backoffMs: 50 } });
  const metrics = createMetrics();
  const publisher = new SocketPublisher();
  engine = new Engine({
    store,
    queue,
    publisher,
    clock: systemClock,
    catalog: defaultCatalog(),
    travel: new GreatCircleTravel(),
    config: { decideDebounceMs: 2, sweepIntervalMs: 0 },
    onDecision: (ms, policy) => metrics.observeDecision(ms, policy),
    onBatch: (b) => metrics.observeBatch(b),
  });
  metrics.setIncidentCountSource(() => engine.openIncidentCounts());
  metrics.setQueueDepthSource(async () => {
    const out: Record<string, number> = {};
    for (const q of Object.values(QUEUES)) out[q] = await queue.depth(q);
    return out;
  });
  await engine.start();
  workers = await startWorkers(engine, queue, store, { relay: { pollMs: 20 } });
  // The HTTP + socket half exactly as `dispatch serve` starts it.
  server = await startHttp({
    engine,
    store,
    auth: { secret },
    metrics,
    publisher,
    port: 0,
    host: '127.0.0.1',
    ready: () => engine.running,
  });
  base = server.url;

  tokens.admin = await mintToken({ role: 'admin', sub: 'root' }, secret);
  tokens.dispatcher = await mintToken({ role: 'dispatcher', sub: 'd.li' }, secret);
  tokens.planner = await mintToken({ role: 'planner' }, secret);
  for (const u of ['A1', 'A2', 'P1', 'P2', 'T1'])
    tokens[u] = await mintToken({ role: 'unit', unitId: u }, secret);

  // Units registered over HTTP by the admin.
  const units: [string, string, string[], LonLat][] = [
    ['A1', 'health', ['ambulance'], at(0.5)],
    ['A2', 'health', ['ambulance'], at(12, 8)],
    ['P1', 'police', ['police'], at(3, 3)],
    ['P2', 'police', ['police'], at(-10, -6)],
    ['T1', 'traffic', ['traffic'], at(-3, 4)],
  ];
  for (const [id, department, capabilities, home] of units) {
    const res = await http('admin', 'PUT', `/v1/units/${id}`, {
      department,
      capabilities,
      home,
      speedKmh: 40,
      turnoutS: 60,
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }
});

afterEach(() => {
  for (const c of open.splice(0)) c.disconnect();
});

afterAll(async () => {
  for (const c of open.splice(0)) c.disconnect();
  await server.close();
  await engine.stop();
  await workers.stop();
  await queue.close();
});

function http(
  who: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${tokens[who]}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function client(who: string, lastSeq?: number): Promise<{ c: Client; got: Got[] }> {
  const c: Client = connect(base, {
    auth: { token: tokens[who], ...(lastSeq === undefined ? {} : { lastSeq }) },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  open.push(c);
  const got: Got[] = [];
  c.onAny((event: string, env: Envelope<unknown>, ack?: (ok: boolean) => void) => {
    if (event === 'error') return;
    got.push({ event, seq: env.seq, data: env.data });
    if (typeof ack === 'function') ack(true);
  });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('connect_error', reject);
  });
  return { c, got };
}

async function until<T>(fn: () => T | undefined | false, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const send = (c: Client, ev: 'ack' | 'status' | 'location', payload: unknown) =>
  new Promise<{ ok: boolean; code?: string; message?: string }>((resolve) =>
    (c.emit as (e: string, p: unknown, cb: (r: never) => void) => void)(ev, payload, resolve),
  );

const offerOf = (got: Got[], incidentId: string) =>
  got.find((m) => m.event === 'assignment:offer' && (m.data as OfferView).incident.id === incidentId)?.data as
    | OfferView
    | undefined;

function expectGapFree(got: Got[]) {
  const seqs = got.map((m) => m.seq);
  expect(seqs.length).toBeGreaterThan(0);
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
}

describe('a call from report to on scene', () => {
  it('a unit receives the offer, accepts, goes en route and on scene; the console sees every step in order', async () => {
    const consoleC = await client('dispatcher');
    const a1 = await client('A1');

    const res = await http('dispatcher', 'POST', '/v1/incidents', {
      type: 'medical-emergency',
      location: at(0.8),
      source: 'hotline-120',
    });
    expect(res.status).toBe(201);
    const incident = (await res.json()) as IncidentView;

    const offer = await until(() => offerOf(a1.got, incident.id), 'the offer to A1');
    expect(offer.assignment).toMatchObject({ unitId: 'A1', status: 'offered', capability: 'ambulance' });
    const asgId = offer.assignment.id;

    expect(await send(a1.c, 'ack', { assignmentId: asgId, accept: true })).toEqual({ ok: true });
    expect(await send(a1.c, 'status', { status: 'en_route', incidentId: incident.id })).toEqual({ ok: true });
    expect(await send(a1.c, 'location', { position: at(0.7), at: Date.now() })).toEqual({ ok: true });
    expect(await send(a1.c, 'status', { status: 'on_scene', incidentId: incident.id })).toEqual({ ok: true });

    const statusesOf = () =>
      consoleC.got
        .filter((m) => m.event === 'assignment:created' || m.event === 'assignment:updated')
        .map((m) => m.data as AssignmentView)
        .filter((a) => a.id === asgId)
        .map((a) => a.status);
    await until(() => statusesOf().includes('on_scene'), 'on_scene on the console');
    // Every step, in order (a repeated status from a unit:updated-driven re-send is allowed).
    const steps = statusesOf().filter((s, i, all) => i === 0 || all[i - 1] !== s);
    expect(steps).toEqual(['offered', 'accepted', 'en_route', 'on_scene']);

    const incidentSteps = consoleC.got
      .filter(
        (m) =>
          (m.event === 'incident:created' || m.event === 'incident:updated') &&
          (m.data as IncidentView).id === incident.id,
      )
      .map((m) => (m.data as IncidentView).status)
      .filter((s, i, all) => i === 0 || all[i - 1] !== s);
    expect(incidentSteps[0]).toBe('queued');
    expect(incidentSteps).toEqual(expect.arrayContaining(['assigned', 'en_route', 'on_scene']));
    expect(incidentSteps.indexOf('assigned')).toBeLessThan(incidentSteps.indexOf('en_route'));
    expect(incidentSteps.indexOf('en_route')).toBeLessThan(incidentSteps.indexOf('on_scene'));
    expect(consoleC.got.some((m) => m.event === 'assignment:offer')).toBe(false);
    expect(consoleC.got.some((m) => m.event === 'unit:updated')).toBe(true);

    // Gap-free seqs on both streams, and exactly what the store replays.
    expectGapFree(consoleC.got);
    expectGapFree(a1.got);
    const replay = (await (
      await http('dispatcher', 'GET', `/v1/messages?after=${consoleC.got[0].seq - 1}`)
    ).json()) as {
      messages: Got[];
    };
    expect(replay.messages.slice(0, consoleC.got.length).map((m) => [m.event, m.seq])).toEqual(
      consoleC.got.map((m) => [m.event, m.seq]),
    );

    // The unit reads its incident with the timeline; the dispatcher too.
    const mine = await http('A1', 'GET', `/v1/incidents/${incident.id}`);
    expect(mine.status).toBe(200);
    const detail = await mine.json();
    expect(detail.status).toBe('on_scene');
    expect(detail.timeline.map((e: { kind: string }) => e.kind)).toEqual(
      expect.arrayContaining(['reported', 'assigned', 'accepted', 'en_route', 'on_scene']),
    );

    // Cleared, then closed by the dispatcher.
    expect(await send(a1.c, 'status', { status: 'available' })).toEqual({ ok: true });
    await until(
      () =>
        consoleC.got.some(
          (m) =>
            m.event === 'incident:updated' &&
            (m.data as IncidentView).id === incident.id &&
            (m.data as IncidentView).status === 'resolved',
        ),
      'resolved on the console',
    );
    const closed = await http('dispatcher', 'POST', `/v1/incidents/${incident.id}/close`, {
      note: 'patient transported',
    });
    expect(closed.status).toBe(200);
    expect((await closed.json()).status).toBe('closed');

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/dispatch_decision_duration_seconds_count\{policy="[^"]+"\} [1-9]/);
    expect(metrics).toMatch(
      /dispatch_http_requests_total\{method="POST",route="\/v1\/incidents",status="201"\} 1/,
    );
    expect(metrics).toContain('dispatch_queue_depth{queue="decisions"}');
    // Every state change above ran in a lane batch: counted, timed, and its tasks summed.
    const count = Number(/^dispatch_lane_batch_tasks_count (\d+)/m.exec(metrics)?.[1]);
    const tasks = Number(/^dispatch_lane_batch_tasks_sum (\d+)/m.exec(metrics)?.[1]);
    expect(count).toBeGreaterThanOrEqual(5);
    expect(tasks).toBeGreaterThanOrEqual(count);
    expect(metrics).toMatch(new RegExp(`^dispatch_lane_commit_seconds_count ${count}$`, 'm'));
    expect(Number(/^dispatch_lane_busy_seconds_total (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toContain('dispatch_incidents{status="queued"}');
  });
});

describe('reconnection', () => {
  it('a client reconnecting with lastSeq receives what it missed, in order, then live messages', async () => {
    const first = await client('planner');
    await http('dispatcher', 'POST', '/v1/incidents', { type: 'food-safety', location: at(5, -5) });
    await until(() => first.got.find((m) => m.event === 'incident:created'), 'the first incident');
    const lastSeq = first.got.at(-1)!.seq;
    first.c.disconnect();

    const missedRes = await http('dispatcher', 'POST', '/v1/incidents', {
      type: 'noise-complaint',
      location: at(-6, 2),
    });
    const missed = (await missedRes.json()) as IncidentView;
    await until(() => engine.mirror.assignedUnitIds(missed.id).length > 0, 'the missed incident assigned');
    const storedNow = await store.lastMessageSeq('consoles');
    expect(storedNow).toBeGreaterThan(lastSeq);

    const again = await client('planner', lastSeq);
    await until(() => again.got.length >= storedNow - lastSeq, 'the replay');
    expect(again.got[0].seq).toBe(lastSeq + 1);
    expect(
      again.got.some((m) => m.event === 'incident:created' && (m.data as IncidentView).id === missed.id),
    ).toBe(true);

    const liveRes = await http('dispatcher', 'POST', '/v1/incidents', {
      type: 'pollution-complaint',
      location: at(7, 7),
    });
    const live = (await liveRes.json()) as IncidentView;
    await until(
      () => again.got.find((m) => m.event === 'incident:created' && (m.data as IncidentView).id === live.id),
      'the live incident after the replay',
    );
    expectGapFree(again.got);
  });

  it('a unit reconnecting with lastSeq gets an offer made while it was away', async () => {
    const first = await client('T1');
    const seen = await store.lastMessageSeq('unit:T1');
    first.c.disconnect();
    const res = await http('dispatcher', 'POST', '/v1/incidents', {
      type: 'illegal-parking',
      location: at(-3, 4.2),
    });
    const inc = (await res.json()) as IncidentView;
    await until(() => engine.mirror.assignedUnitIds(inc.id).includes('T1'), 'the offer to T1');
    const back = await client('T1', seen);
    const offer = await until(() => offerOf(back.got, inc.id), 'the replayed offer');
    expect(offer.assignment.unitId).toBe('T1');
    expectGapFree(back.got);
    expect(back.got[0].seq).toBe(seen + 1);
    // Decline it (a reason is required) so T1 is free again.
    expect(await send(back.c, 'ack', { assignmentId: offer.assignment.id, accept: false })).toMatchObject({
      ok: false,
      code: 'VALIDATION_FAILED',
    });
    expect(
      await send(back.c, 'ack', { assignmentId: offer.assignment.id, accept: false, reason: 'flat tyre' }),
    ).toEqual({
      ok: true,
    });
  });
});

describe('a unit acts only on its own work', () => {
  it("refuses another unit's assignment and incident over HTTP and over the socket", async () => {
    const p1 = await client('P1');
    const res = await http('dispatcher', 'POST', '/v1/incidents', {
      type: 'burglary-report',
      location: at(3.2, 3),
    });
    const inc = (await res.json()) as IncidentView;
    const offer = await until(() => offerOf(p1.got, inc.id), 'the offer to P1');
    const asg = offer.assignment.id;

    // HTTP, as P2.
    for (const [method, path, body] of [
      ['POST', `/v1/assignments/${asg}/ack`, { accept: true }],
      ['POST', `/v1/assignments/${asg}/ack`, { accept: false, reason: 'not mine' }],
      ['GET', `/v1/incidents/${inc.id}`, undefined],
      ['GET', '/v1/assignments?unitId=P1', undefined],
      ['POST', '/v1/units/P1/status', { status: 'en_route', incidentId: inc.id }],
      ['POST', '/v1/units/P1/location', { position: at(3, 3) }],
      ['GET', '/v1/incidents', undefined],
      ['POST', `/v1/incidents/${inc.id}/cancel`, {}],
    ] as const) {
      const r = await http('P2', method, path, body);
      expect([403, 404], `${method} ${path}`).toContain(r.status);
    }
    const own = (await (await http('P2', 'GET', '/v1/assignments')).json()) as {
      assignments: AssignmentView[];
    };
    expect(own.assignments.every((a) => a.unitId === 'P2')).toBe(true);
    const msgs = (await (await http('P2', 'GET', '/v1/messages?after=0')).json()) as {
      recipient: string;
      messages: Got[];
    };
    expect(msgs.recipient).toBe('unit:P2');
    expect(
      msgs.messages.some(
        (m) => m.event === 'assignment:offer' && (m.data as OfferView).assignment.id === asg,
      ),
    ).toBe(false);

    // Socket, as P2.
    const p2 = await client('P2');
    const r1 = await send(p2.c, 'ack', { assignmentId: asg, accept: true });
    expect(r1.ok).toBe(false);
    expect(['FORBIDDEN', 'NOT_FOUND']).toContain(r1.code);
    const r2 = await send(p2.c, 'status', { status: 'en_route', incidentId: inc.id });
    expect(r2.ok).toBe(false);
    expect(p2.got.some((m) => m.event === 'assignment:offer')).toBe(false);

    // Still P1's, still offered; P1 can accept it.
    const stillOffered = (await (await http('dispatcher', 'GET', `/v1/incidents/${inc.id}`)).json()) as {
      assignments: AssignmentView[];
    };
    expect(stillOffered.assignments.find((a) => a.id === asg)?.status).toBe('offered');
    expect(await send(p1.c, 'ack', { assignmentId: asg, accept: true })).toEqual({ ok: true });
  });
});

describe('idempotency', () => {
  it('the same Idempotency-Key posted 100 times concurrently makes one incident', async () => {
    const body = {
      type: 'illegal-construction',
      location: at(-8, -8),
      description: 'third floor added overnight',
    };
    const responses = await Promise.all(
      Array.from({ length: 100 }, () =>
        http('dispatcher', 'POST', '/v1/incidents', body, { 'idempotency-key': 'hotline-12345-0001' }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as IncidentView[];
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(99);
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    const all = (await (await http('planner', 'GET', '/v1/incidents?limit=1000')).json()) as {
      incidents: IncidentView[];
    };
    expect(all.incidents.filter((i) => i.type === 'illegal-construction')).toHaveLength(1);
    // The same key with another body is refused.
    const other = await http(
      'dispatcher',
      'POST',
      '/v1/incidents',
      { ...body, location: at(-8.5, -8) },
      {
        'idempotency-key': 'hotline-12345-0001',
      },
    );
    expect(other.status).toBe(422);
    expect((await other.json()).error.code).toBe('IDEMPOTENCY_MISMATCH');
  });
});

describe('operations', () => {
  it('/healthz is ready while the engine runs; the console gauge counts sockets', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', store: 'memory' });
    await client('dispatcher');
    await until(() => server.sockets.clients().consoles === 1, 'one console');
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('dispatch_connected_consoles 1');
  });
});

describe('the engine behind the HTTP error table', () => {
  it('maps engine refusals to the table', async () => {
    const unknownType = await http('dispatcher', 'POST', '/v1/incidents', {
      type: 'alien-landing',
      location: at(1, 1),
    });
    expect(unknownType.status).toBe(400);
    expect((await unknownType.json()).error.code).toBe('UNKNOWN_INCIDENT_TYPE');
    const missing = await http('dispatcher', 'GET', '/v1/incidents/inc_nope');
    expect(missing.status).toBe(404);
    const assignMissing = await http('dispatcher', 'POST', '/v1/incidents/inc_nope/assign', { unitId: 'A1' });
    expect(assignMissing.status).toBe(404);
    const kpis = await http('planner', 'GET', '/v1/kpis');
    expect(kpis.status).toBe(200);
    const alerts = await http('dispatcher', 'GET', '/v1/alerts');
    expect(alerts.status).toBe(200);
    expect(Array.isArray((await alerts.json()).alerts)).toBe(true);
  });
});
