// Two `dispatch serve` processes sharing one PostgreSQL database and one Redis (a queue prefix
// of their own): exactly one holds the core lease; the other forwards HTTP to it and relays its
// pushes through the socket.io Redis adapter. A console on the follower sees, in order and
// without gaps, an assignment decided by the leader for an incident posted to the follower;
// a unit connected to the follower gets the offer and accepts it through its own socket. Then
// the leader is SIGKILLed: the follower takes the lease within 5 s (measured and printed),
// nothing accepted is lost, no unit holds two active assignments, and it dispatches again.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { type Socket as ClientSocket, io as connect } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import type { LonLat } from '../../src/core/types.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import { BullmqQueue } from '../../src/queue/bullmq-queue.ts';
import { mintToken } from '../../src/server/auth.ts';
import type {
  ClientToServerEvents,
  Envelope,
  IncidentView,
  OfferView,
  ServerToClientEvents,
} from '../../src/shared/events.ts';
import { createDatabase, dropDatabase } from '../../src/store/pg-client.ts';

type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/dispatch.js');
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SPOT: LonLat = [113.4712, 23.1023];

const children = new Set<ChildProcess>();
const clients: Client[] = [];
let database: string | undefined;
let prefix: string | undefined;

afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const child of children) child.kill('SIGKILL');
  if (prefix) {
    const q = new BullmqQueue({ url: REDIS_URL, prefix });
    try {
      for (const name of Object.values(QUEUES)) await q.depth(name);
      await q.purge();
    } finally {
      await q.close();
    }
  }
  if (database) await dropDatabase(ADMIN_URL, database);
});

interface Node {
  child: ChildProcess;
  url: string;
  out: () => string;
}

function start(env: NodeJS.ProcessEnv): Promise<Node> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 150_000);
    const onData = () => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({ child, url: m[1], out: () => out });
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening:\n${out}`));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function health(url: string): Promise<{ status: number; role?: string }> {
  try {
    const res = await fetch(`${url}/healthz`);
    const body = (await res.json()) as { role?: string };
    return { status: res.status, ...(body.role ? { role: body.role } : {}) };
  } catch {
    return { status: 0 };
  }
}

async function waitRole(url: string, role: 'leader' | 'follower', ms: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const h = await health(url);
    if (h.status === 200 && h.role === role) return Date.now() - t0;
    if (Date.now() - t0 > ms)
      throw new Error(`${url} is not a ready ${role} after ${ms} ms (${JSON.stringify(h)})`);
    await sleep(50);
  }
}

async function call<T>(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  key?: string,
) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(key ? { 'idempotency-key': key } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

async function connected(url: string, token: string): Promise<Client> {
  const c: Client = connect(url, { transports: ['websocket'], auth: { token }, reconnection: false });
  clients.push(c);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('connect_error', (e) => reject(e));
  });
  return c;
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: nothing within ${ms} ms`)))]);

describe('two engine nodes on one PostgreSQL and one Redis', () => {
  it('the follower forwards and relays; the leader dies; the follower takes over', {
    timeout: 400_000,
  }, async () => {
    const created = await createDatabase(ADMIN_URL);
    database = created.name;
    const dbUrl = created.url;
    prefix = `cluster-${randomBytes(4).toString('hex')}`;
    const secret = randomBytes(32).toString('base64url');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: dbUrl,
      REDIS_URL,
      DISPATCH_QUEUE_PREFIX: prefix,
      DISPATCH_JWT_SECRET: secret,
      DISPATCH_ENGINE_CONFIG: JSON.stringify({ sweepIntervalMs: 1000 }),
      LOG_LEVEL: 'warn',
    };
    delete env.DISPATCH_DATA_DIR;

    const leader = await start(env);
    await waitRole(leader.url, 'leader', 60_000);
    const follower = await start(env);
    await waitRole(follower.url, 'follower', 60_000);

    const dispatcher = await mintToken({ role: 'dispatcher' }, secret);
    const admin = await mintToken({ role: 'admin' }, secret);

    // A console and a unit, both on the follower.
    const console = await connected(follower.url, dispatcher);
    const seen: { event: string; seq: number; data: unknown }[] = [];
    for (const ev of [
      'incident:created',
      'incident:updated',
      'assignment:created',
      'assignment:updated',
      'unit:updated',
      'alert',
      'alert:updated',
    ] as const) {
      console.on(ev, (m: Envelope<unknown>) => seen.push({ event: ev, seq: m.seq, data: m.data }));
    }
    // Registered through the follower (forwarded to the leader's core).
    const put = await call(follower.url, admin, 'PUT', '/v1/units/CL-1', {
      department: 'traffic',
      capabilities: ['traffic', 'police'],
      home: SPOT,
      speedKmh: 60,
      turnoutS: 0,
    });
    expect(put.status).toBe(200);
    const unit = await connected(follower.url, await mintToken({ role: 'unit', unitId: 'CL-1' }, secret));
    const offers: OfferView[] = [];
    let onOffer: ((o: OfferView) => void) | undefined;
    unit.on('assignment:offer', (m, received) => {
      received?.(true);
      offers.push(m.data);
      onOffer?.(m.data);
    });
    const nextOffer = () => new Promise<OfferView>((r) => (onOffer = r));

    // An incident posted to the follower is decided by the leader and offered over the follower.
    const offer1 = nextOffer();
    const post = await call<IncidentView>(
      follower.url,
      dispatcher,
      'POST',
      '/v1/incidents',
      { type: 'illegal-parking', location: SPOT, source: 'test' },
      'cluster-1',
    );
    expect(post.status).toBe(201);
    const o1 = await within(offer1, 20_000, 'offer on the follower');
    expect(o1.incident.id).toBe(post.body.id);
    const reply = await unit
      .timeout(10_000)
      .emitWithAck('ack', { assignmentId: o1.assignment.id, accept: true } as never);
    expect(reply).toEqual({ ok: true });
    for (let i = 0; i < 200; i++) {
      if (
        seen.some(
          (s) => s.event === 'assignment:updated' && (s.data as { status: string }).status === 'accepted',
        )
      )
        break;
      await sleep(50);
    }
    const kinds = seen.map((s) => s.event);
    expect(kinds).toContain('incident:created');
    expect(kinds).toContain('assignment:created');
    expect(
      seen.some(
        (s) => s.event === 'assignment:updated' && (s.data as { status: string }).status === 'accepted',
      ),
    ).toBe(true);
    // In order and without gaps.
    const seqs = seen.map((s) => s.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1);

    // Free the unit (via its socket on the follower), then kill the leader.
    const r1 = await unit
      .timeout(10_000)
      .emitWithAck('status', { status: 'on_scene', incidentId: post.body.id } as never);
    expect(r1).toEqual({ ok: true });
    const r2 = await unit.timeout(10_000).emitWithAck('status', { status: 'available' } as never);
    expect(r2).toEqual({ ok: true });
    const accepted: string[] = [post.body.id];
    // Accepted posts right before the kill (some may still be waiting for a decision).
    for (let i = 0; i < 3; i++) {
      const r = await call<IncidentView>(
        follower.url,
        dispatcher,
        'POST',
        '/v1/incidents',
        { type: 'food-safety', location: [SPOT[0] + 0.002 * (i + 1), SPOT[1]], source: 'test' },
        `cluster-pre-${i}`,
      );
      expect(r.status).toBe(201);
      accepted.push(r.body.id);
    }
    leader.child.kill('SIGKILL');
    const t0 = Date.now();
    const tookOver = await waitRole(follower.url, 'leader', 15_000);
    const takeoverMs = Date.now() - t0;
    console.disconnect();
    process.stdout.write(
      `cluster: fail-over to the follower in ${takeoverMs} ms (ready leader after ${tookOver} ms of polling)\n`,
    );
    expect(takeoverMs).toBeLessThanOrEqual(5000 + 1000); // the 5 s, plus the poll's own step

    // Nothing accepted is lost; it dispatches again.
    for (const id of accepted) {
      const r = await call<IncidentView>(follower.url, dispatcher, 'GET', `/v1/incidents/${id}`);
      expect(r.status, id).toBe(200);
    }
    // Every incident accepted before the kill is decided (offered) by the new leader.
    for (const id of accepted) {
      let status = 'queued';
      for (let i = 0; i < 200 && status === 'queued'; i++) {
        status = (await call<IncidentView>(follower.url, dispatcher, 'GET', `/v1/incidents/${id}`)).body
          .status;
        if (status === 'queued') await sleep(100);
      }
      expect(status, id).not.toBe('queued');
    }
    const offer2 = nextOffer();
    const post2 = await call<IncidentView>(
      follower.url,
      dispatcher,
      'POST',
      '/v1/incidents',
      { type: 'illegal-parking', location: [SPOT[0], SPOT[1] + 0.003], source: 'test' },
      'cluster-2',
    );
    expect(post2.status).toBe(201);
    // The unit's socket was on the follower all along: it gets offers from the new leader.
    const o2 = await within(offer2, 20_000, 'offer after the fail-over').catch(async (e) => {
      const d = await call(follower.url, dispatcher, 'GET', `/v1/incidents/${post2.body.id}`);
      throw new Error(
        `${e.message}: ${JSON.stringify(d.body).slice(0, 1500)}\n${follower.out().slice(-3000)}`,
      );
    });
    expect([post2.body.id, ...accepted]).toContain(o2.incident.id);

    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    try {
      const dup = await db.query(
        `SELECT unit_id, count(*) FROM assignments WHERE status IN ('offered','accepted','en_route','on_scene')
           GROUP BY unit_id HAVING count(*) > 1`,
      );
      expect(dup.rows).toEqual([]);
      const n = await db.query<{ n: string }>('SELECT count(*) AS n FROM incidents');
      expect(Number(n.rows[0].n)).toBe(accepted.length + 1);
    } finally {
      await db.end();
    }
  });
});
