// The socket layer against a fake engine and a MemoryStore, with real socket.io clients over
// a listening server: handshake auth and Origin, rooms, ordered gap-free delivery with
// store-backed replay, offer acknowledgements, unit events, rate limit, gauges, close.

import type { AddressInfo } from 'node:net';
import { type Socket as ClientSocket, io as connect } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Recipient } from '../../src/engine/ports.ts';
import { type App, buildApp } from '../../src/server/app.ts';
import { mintToken } from '../../src/server/auth.ts';
import { FakeEngine } from '../../src/server/fake-engine.ts';
import { createMetrics, type Metrics } from '../../src/server/metrics.ts';
import { attachSockets, SocketPublisher, type SocketsHandle } from '../../src/server/sockets.ts';
import type { ClientToServerEvents, Envelope, ServerToClientEvents } from '../../src/shared/events.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';

type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

const secret = 'socket-test-secret-socket-test-secret-77';
let app: App;
let engine: FakeEngine;
let store: MemoryStore;
let sockets: SocketsHandle;
let publisher: SocketPublisher;
let metrics: Metrics;
let url: string;
const open: Client[] = [];

beforeAll(async () => {
  engine = new FakeEngine();
  engine.addUnit('UA');
  engine.addUnit('UB');
  store = new MemoryStore();
  metrics = createMetrics();
  publisher = new SocketPublisher();
  app = buildApp({ engine, store, auth: { secret }, metrics });
  sockets = attachSockets(app, {
    engine,
    store,
    auth: { secret },
    publisher,
    metrics,
    origins: ['http://console.example'],
    offerAckTimeoutMs: 150,
    offerRetries: 2,
    rateLimit: { perSecond: 20, burst: 20 },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterEach(() => {
  for (const c of open.splice(0)) c.disconnect();
});
afterAll(async () => {
  await app.close();
});

const token = (role: 'dispatcher' | 'planner' | 'admin' | 'unit', unitId?: string, ttlS?: number) =>
  mintToken({ role, unitId, ttlS }, secret);

function client(auth: Record<string, unknown>, extraHeaders?: Record<string, string>): Client {
  const c: Client = connect(url, {
    auth,
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    extraHeaders,
  });
  open.push(c);
  return c;
}

async function connected(
  auth: Record<string, unknown>,
  extraHeaders?: Record<string, string>,
): Promise<Client> {
  const c = client(auth, extraHeaders);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('connect_error', reject);
  });
  return c;
}

function refused(auth: Record<string, unknown>, extraHeaders?: Record<string, string>) {
  const c = client(auth, extraHeaders);
  return new Promise<{ message: string; data?: { code: string } }>((resolve, reject) => {
    c.once('connect', () => reject(new Error('connected')));
    c.once('connect_error', (err) => resolve(err as never));
  });
}

/** Records every pushed message of a client, offers acknowledged. */
function record(c: Client, ackOffers = true) {
  const got: { event: string; seq: number; data: unknown }[] = [];
  c.onAny((event: string, env: Envelope<unknown>, ack?: (ok: boolean) => void) => {
    if (event === 'error') return;
    got.push({ event, seq: env.seq, data: env.data });
    if (event === 'assignment:offer' && ackOffers && typeof ack === 'function') ack(true);
  });
  return got;
}

async function push(recipient: Recipient, event: string, data: unknown, publish = true) {
  const m = await store.pushMessage(recipient, event, data);
  const env = { seq: m.seq, at: Math.round(m.at * 1000), data };
  if (publish) publisher.publish(recipient, event, env);
  return env;
}

async function until(cond: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const emitAck = <E extends 'ack' | 'status' | 'location'>(c: Client, ev: E, payload: unknown) =>
  new Promise<{ ok: boolean; code?: string; message?: string }>((resolve) =>
    (c.emit as (e: string, p: unknown, cb: (r: never) => void) => void)(ev, payload, resolve),
  );

describe('handshake', () => {
  it('refuses a missing, invalid or expired token with a stable code', async () => {
    expect((await refused({})).data?.code).toBe('UNAUTHENTICATED');
    expect((await refused({ token: 'x.y.z' })).data?.code).toBe('UNAUTHENTICATED');
    const wrongKey = await mintToken({ role: 'admin' }, 'another-secret-another-secret-another-1');
    expect((await refused({ token: wrongKey })).data?.code).toBe('UNAUTHENTICATED');
    const expired = await mintToken({ role: 'admin', ttlS: 5 }, secret, { nowS: Date.now() / 1000 - 600 });
    expect((await refused({ token: expired })).data?.code).toBe('TOKEN_EXPIRED');
  });

  it('refuses an Origin not on the allow-list with BAD_ORIGIN', async () => {
    const t = await token('dispatcher');
    const err = await refused({ token: t }, { origin: 'http://evil.example' });
    expect(err.data?.code).toBe('BAD_ORIGIN');
    const ok = await connected({ token: t }, { origin: 'http://console.example' });
    expect(ok.connected).toBe(true);
  });

  it('disconnects a socket when its token expires', async () => {
    const c = await connected({ token: await token('dispatcher', undefined, 1) });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.code));
    await new Promise<void>((resolve) => c.once('disconnect', () => resolve()));
    expect(errors).toContain('TOKEN_EXPIRED');
  });
});

describe('delivery', () => {
  it('consoles get console messages, each unit only its own', async () => {
    const consoleC = await connected({ token: await token('dispatcher') });
    const a = await connected({ token: await token('unit', 'UA') });
    const b = await connected({ token: await token('unit', 'UB') });
    const [gc, ga, gb] = [record(consoleC), record(a), record(b)];
    await push('consoles', 'incident:created', { id: 'i1' });
    await push('unit:UA', 'assignment:offer', { assignment: { id: 'x' } });
    await until(() => gc.length === 1 && ga.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(gc.map((m) => m.event)).toEqual(['incident:created']);
    expect(ga.map((m) => m.event)).toEqual(['assignment:offer']);
    expect(gb).toEqual([]);
  });

  it('delivers in seq order even when publishes arrive out of order or are missed', async () => {
    const c = await connected({ token: await token('planner') });
    const got = record(c);
    const base = await store.lastMessageSeq('consoles');
    const e1 = await push('consoles', 'unit:updated', { n: 1 }, false);
    const e2 = await push('consoles', 'unit:updated', { n: 2 }, false);
    const e3 = await push('consoles', 'unit:updated', { n: 3 }, false);
    await push('consoles', 'unit:updated', { n: 4 }, false); // never published live
    const e5 = await push('consoles', 'unit:updated', { n: 5 }, false);
    publisher.publish('consoles', 'unit:updated', e3);
    publisher.publish('consoles', 'unit:updated', e1);
    publisher.publish('consoles', 'unit:updated', e2);
    publisher.publish('consoles', 'unit:updated', e5);
    await until(() => got.length >= 5);
    await new Promise((r) => setTimeout(r, 50));
    expect(got.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5].map((i) => base + i));
  });

  it('a reconnecting client with lastSeq gets what it missed, then live messages, gap-free', async () => {
    const t = await token('unit', 'UA');
    const first = await connected({ token: t });
    const seen = record(first);
    await push('unit:UA', 'assignment:updated', { k: 'a' });
    await until(() => seen.length === 1);
    const lastSeq = seen[0].seq;
    first.disconnect();
    await push('unit:UA', 'assignment:updated', { k: 'b' });
    await push('unit:UA', 'assignment:updated', { k: 'c' });
    const again = client({ token: t, lastSeq });
    const got = record(again);
    await new Promise<void>((resolve) => again.once('connect', () => resolve()));
    await push('unit:UA', 'assignment:updated', { k: 'd' });
    await until(() => got.length === 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(got.map((m) => m.data)).toEqual([{ k: 'b' }, { k: 'c' }, { k: 'd' }]);
    expect(got.map((m) => m.seq)).toEqual([lastSeq + 1, lastSeq + 2, lastSeq + 3]);
  });

  it('replays live messages published during a long replay in order (buffered)', async () => {
    const start = await store.lastMessageSeq('consoles');
    for (let i = 0; i < 1200; i++) await push('consoles', 'incident:updated', { i }, false);
    const c = client({ token: await token('admin'), lastSeq: start });
    const got = record(c);
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    for (let i = 0; i < 20; i++) await push('consoles', 'incident:updated', { live: i });
    await until(() => got.length === 1220, 10_000);
    const seqs = got.map((m) => m.seq);
    expect(seqs).toEqual(Array.from({ length: 1220 }, (_, i) => start + 1 + i));
  });

  it('resync asks for everything after a seq again', async () => {
    const c = await connected({ token: await token('unit', 'UB') });
    const got = record(c);
    await push('unit:UB', 'assignment:updated', { n: 1 });
    await push('unit:UB', 'assignment:updated', { n: 2 });
    await until(() => got.length === 2);
    const from = got[0].seq - 1;
    const res = await new Promise<{ ok: boolean; replayed: number }>((r) =>
      c.emit('resync', { lastSeq: from }, r),
    );
    expect(res).toEqual({ ok: true, replayed: 2 });
    await until(() => got.length === 4);
    expect(got.slice(2).map((m) => m.seq)).toEqual(got.slice(0, 2).map((m) => m.seq));
  });

  it('lastSeq 0 replays the whole retained stream', async () => {
    await push('unit:UB', 'assignment:updated', { n: 'history' });
    const head = await store.lastMessageSeq('unit:UB');
    const c = client({ token: await token('unit', 'UB'), lastSeq: 0 });
    const got = record(c);
    await until(() => got.length === head);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
  });

  it('a client whose lastSeq is ahead of the store restarts from the head', async () => {
    const c = await connected({ token: await token('unit', 'UB'), lastSeq: 10_000_000 });
    const got = record(c);
    const e = await push('unit:UB', 'assignment:updated', { n: 'next' });
    await until(() => got.length === 1);
    expect(got[0].seq).toBe(e.seq);
  });

  it('re-sends an unacknowledged offer, at most offerRetries times', async () => {
    const c = await connected({ token: await token('unit', 'UA') });
    const got = record(c, false);
    await push('unit:UA', 'assignment:offer', { assignment: { id: 'asg_retry' } });
    await until(() => got.length === 3, 3000);
    await new Promise((r) => setTimeout(r, 400));
    expect(got).toHaveLength(3);
    expect(new Set(got.map((m) => m.seq)).size).toBe(1);

    const acking = await connected({ token: await token('unit', 'UB') });
    const got2 = record(acking, true);
    await push('unit:UB', 'assignment:offer', { assignment: { id: 'asg_ok' } });
    await until(() => got2.length === 1);
    await new Promise((r) => setTimeout(r, 400));
    expect(got2).toHaveLength(1);
  });
});

describe('unit events', () => {
  it('ack / status / location call the engine with the unit Actor and answer ok', async () => {
    const { incident } = await engine.reportIncident(
      { type: 'structure-fire', location: [113.46, 23.11] },
      undefined,
      { role: 'system', id: 't' },
    );
    const asg = engine.addAssignment(incident.id, 'UA');
    const c = await connected({ token: await token('unit', 'UA') });
    expect(await emitAck(c, 'ack', { assignmentId: asg.id, accept: true })).toEqual({ ok: true });
    expect(engine.calls.at(-1)).toMatchObject({
      method: 'acknowledge',
      args: [asg.id, true, undefined],
      actor: { role: 'unit', unitId: 'UA' },
    });
    expect(await emitAck(c, 'status', { status: 'en_route', incidentId: incident.id })).toEqual({ ok: true });
    expect(engine.calls.at(-1)).toMatchObject({
      method: 'reportStatus',
      args: ['UA', 'en_route', incident.id],
    });
    expect(await emitAck(c, 'location', { position: [113.45, 23.1], at: 1_700_000_000_000 })).toEqual({
      ok: true,
    });
    expect(engine.calls.at(-1)).toMatchObject({
      method: 'reportLocation',
      args: ['UA', [113.45, 23.1], 1_700_000_000_000],
    });
  });

  it("refuses another unit's assignment, bad payloads, declines without reason, and consoles", async () => {
    const { incident } = await engine.reportIncident(
      { type: 'structure-fire', location: [113.46, 23.11] },
      undefined,
      { role: 'system', id: 't' },
    );
    const other = engine.addAssignment(incident.id, 'UB');
    const a = await connected({ token: await token('unit', 'UA') });
    expect(await emitAck(a, 'ack', { assignmentId: other.id, accept: true })).toMatchObject({
      ok: false,
      code: 'FORBIDDEN',
    });
    expect(engine.assignments.get(other.id)?.status).toBe('offered');
    expect(await emitAck(a, 'location', { position: [200, 0] })).toMatchObject({
      ok: false,
      code: 'VALIDATION_FAILED',
    });
    expect(await emitAck(a, 'status', { status: 'on_scene', extra: 1 })).toMatchObject({
      ok: false,
      code: 'VALIDATION_FAILED',
    });
    expect(await emitAck(a, 'ack', { assignmentId: other.id, accept: false })).toMatchObject({
      ok: false,
      code: 'VALIDATION_FAILED',
    });
    const consoleC = await connected({ token: await token('dispatcher') });
    expect(await emitAck(consoleC, 'status', { status: 'available' })).toMatchObject({
      ok: false,
      code: 'FORBIDDEN',
    });
    const admin = await connected({ token: await token('admin') });
    expect(await emitAck(admin, 'ack', { assignmentId: other.id, accept: true })).toMatchObject({
      code: 'FORBIDDEN',
    });
    // Without a reply callback the refusal comes as an `error` event.
    const errs: { code: string; event?: string }[] = [];
    consoleC.on('error', (e) => errs.push(e));
    consoleC.emit('location', { position: [113, 23] });
    await until(() => errs.length === 1);
    expect(errs[0]).toMatchObject({ code: 'FORBIDDEN', event: 'location' });
  });

  it('rate-limits incoming events per socket and drops the excess', async () => {
    const c = await connected({ token: await token('unit', 'UB') });
    const before = engine.calls.filter((x) => x.method === 'reportLocation').length;
    const replies = await Promise.all(
      Array.from({ length: 60 }, () => emitAck(c, 'location', { position: [113.4, 23.1] })),
    );
    const limited = replies.filter((r) => r.code === 'RATE_LIMITED').length;
    expect(limited).toBeGreaterThan(20);
    const handled = engine.calls.filter((x) => x.method === 'reportLocation').length - before;
    expect(handled).toBe(60 - limited);
  });
});

describe('gauges and close', () => {
  it('counts connected consoles and units', async () => {
    // Earlier tests' clients were disconnected in afterEach; the server sees it shortly after.
    await until(() => sockets.clients().units === 0 && sockets.clients().consoles === 0);
    const base = sockets.clients();
    await connected({ token: await token('dispatcher') });
    await connected({ token: await token('unit', 'UA') });
    await connected({ token: await token('unit', 'UB') });
    expect(sockets.clients()).toEqual({ consoles: base.consoles + 1, units: base.units + 2 });
    const text = await metrics.registry.metrics();
    expect(text).toContain(`dispatch_connected_units ${base.units + 2}`);
    for (const c of open.splice(0)) c.disconnect();
    await until(() => sockets.clients().units === base.units && sockets.clients().consoles === base.consoles);
  });

  it('holds handshakes until the engine serves; refuses them with UNAVAILABLE past the wait', async () => {
    let ready = false;
    const other = buildApp({ engine, store, auth: { secret } });
    const h = attachSockets(other, { engine, store, auth: { secret }, ready: () => ready, admitWaitMs: 600 });
    await other.listen({ port: 0, host: '127.0.0.1' });
    const port = (other.server.address() as AddressInfo).port;
    const client = async () =>
      connect(`http://127.0.0.1:${port}`, {
        auth: { token: await token('admin') },
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
      }) as Client;
    try {
      const refused = await client();
      const why = await new Promise<unknown>((r) =>
        refused.once('connect_error', (e) => r((e as { data?: unknown }).data)),
      );
      expect(why).toMatchObject({ code: 'UNAVAILABLE' });
      refused.disconnect();

      const held = await client();
      let connectedAt = 0;
      const up = new Promise<void>((r) =>
        held.once('connect', () => {
          connectedAt = Date.now();
          r();
        }),
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(held.connected).toBe(false);
      const readyAt = Date.now();
      ready = true;
      await up;
      expect(connectedAt).toBeGreaterThanOrEqual(readyAt);
      held.disconnect();
    } finally {
      await other.close();
      await h.close();
    }
  });

  it('app.close() disconnects clients and stops (preClose hook)', async () => {
    const other = buildApp({ engine, store, auth: { secret } });
    const h = attachSockets(other, { engine, store, auth: { secret } });
    await other.listen({ port: 0, host: '127.0.0.1' });
    const port = (other.server.address() as AddressInfo).port;
    const c: Client = connect(`http://127.0.0.1:${port}`, {
      auth: { token: await token('admin') },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    await new Promise<void>((r) => c.once('connect', () => r()));
    const gone = new Promise<string>((r) => c.once('disconnect', (reason) => r(reason)));
    const t0 = Date.now();
    await other.close();
    expect(await gone).toBeTruthy();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(h.clients()).toEqual({ consoles: 0, units: 0 });
    await h.close(); // idempotent
  });
});
