// Hostile input over socket.io against the whole live stack listening on 127.0.0.1:0, with the
// real socket.io-client: forged handshakes and wrong Origins, other units' ids, mass assignment,
// prototype keys, bad numbers, malformed and oversized frames, events outside the contract and
// a flood of 1,000 events a second. For every case: a refusal with a code of the error table
// (connect_error `err.data.code`, the reply `{ ok: false, code }`, or an `error` event) or a
// dropped connection with a stable close code; NOTHING changed; the server still serves.

import { type Socket as ClientSocket, io as connect } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/server/errors.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../src/shared/events.ts';
import {
  at,
  type Fixture,
  forgedTokens,
  type Snapshot,
  type Stack,
  settle,
  sleep,
  startStack,
  Tally,
} from './harness.ts';

type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;
type Reply = { ok: boolean; code?: string; message?: string };

const ALLOWED_ORIGIN = 'https://console.example';
const RATE = { perSecond: 50, burst: 50 };

let s: Stack;
let forged: Record<string, string>;
let current: Snapshot;
let canary: Client;
const tally = new Tally();
const open = new Set<Client>();

beforeAll(async () => {
  s = await startStack({ origins: [ALLOWED_ORIGIN], rateLimit: RATE });
  forged = await forgedTokens();
  canary = await connected({ token: s.tokens.dispatcher });
  current = await settle(s);
}, 60_000);

afterAll(async () => {
  console.log(tally.summary('hostile sockets'));
  for (const c of open) c.disconnect();
  await s?.close();
});

function client(
  auth: Record<string, unknown>,
  opts: { origin?: string; transport?: 'websocket' | 'polling' } = {},
): Client {
  const c: Client = connect(s.base, {
    auth,
    transports: [opts.transport ?? 'websocket'],
    reconnection: false,
    forceNew: true,
    ...(opts.origin ? { extraHeaders: { origin: opts.origin } } : {}),
  });
  open.add(c);
  c.on('disconnect', () => open.delete(c));
  return c;
}

async function connected(auth: Record<string, unknown>, opts: { origin?: string } = {}): Promise<Client> {
  const c = client(auth, opts);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('connect_error', reject);
  });
  return c;
}

/** The server still serves: health over HTTP, a read through the stack, and the canary socket's resync. */
async function stillServes(): Promise<void> {
  expect((await fetch(`${s.base}/healthz`)).status).toBe(200);
  expect((await s.http('admin', 'GET', '/v1/units')).status).toBe(200);
  expect(canary.connected).toBe(true);
  const head = await s.store.lastMessageSeq('consoles');
  const r = await canary.timeout(5000).emitWithAck('resync', { lastSeq: head });
  expect(r).toEqual({ ok: true, replayed: 0 });
}

/** Runs a case and checks nothing changed and the server still serves. */
async function unchanged(label: string, run: () => Promise<void>): Promise<void> {
  const before = current;
  let after: Snapshot | undefined;
  try {
    await run();
  } finally {
    after = await settle(s);
    current = after;
  }
  expect(after, `${label} changed data`).toEqual(before);
  await stillServes();
}

const expectTableCode = (code: string | undefined, label: string) => {
  expect(Object.keys(ERRORS), `${label}: code ${code}`).toContain(code);
  const status = ERRORS[code as keyof typeof ERRORS].status;
  expect(status, label).toBeGreaterThanOrEqual(400);
  expect(status, label).toBeLessThan(500);
  return status;
};

// ---------------------------------------------------------------- handshakes

interface Handshake {
  name: string;
  auth: (t: Record<string, string>, forged: Record<string, string>) => Record<string, unknown>;
  origin?: (port: string) => string;
  transport?: 'websocket' | 'polling';
  code: string;
}

const HANDSHAKES: Handshake[] = [
  {
    name: 'foreign Origin (websocket)',
    auth: (t) => ({ token: t.dispatcher }),
    origin: () => 'http://evil.example',
    code: 'BAD_ORIGIN',
  },
  {
    name: 'foreign Origin (long polling)',
    auth: (t) => ({ token: t.dispatcher }),
    origin: () => 'http://evil.example',
    transport: 'polling',
    code: 'BAD_ORIGIN',
  },
  {
    name: 'Origin "null" (sandboxed frame)',
    auth: (t) => ({ token: t.P1 }),
    origin: () => 'null',
    code: 'BAD_ORIGIN',
  },
  {
    name: 'allowed origin as a prefix of another host',
    auth: (t) => ({ token: t.P1 }),
    origin: () => `${ALLOWED_ORIGIN}.evil.test`,
    code: 'BAD_ORIGIN',
  },
  {
    name: 'allowed host over http instead of https',
    auth: (t) => ({ token: t.P1 }),
    origin: () => 'http://console.example',
    code: 'BAD_ORIGIN',
  },
  {
    name: 'same host, another port',
    auth: (t) => ({ token: t.P1 }),
    origin: (port) => `http://127.0.0.1:${Number(port) === 1 ? 2 : 1}`,
    code: 'BAD_ORIGIN',
  },
  { name: 'no token', auth: () => ({}), code: 'UNAUTHENTICATED' },
  { name: 'token as an object', auth: () => ({ token: { role: 'admin' } }), code: 'UNAUTHENTICATED' },
  { name: 'alg none', auth: (_t, f) => ({ token: f.algNone }), code: 'UNAUTHENTICATED' },
  { name: 'alg none for a unit', auth: (_t, f) => ({ token: f.algNoneUnit }), code: 'UNAUTHENTICATED' },
  { name: 'signed with another key', auth: (_t, f) => ({ token: f.wrongKey }), code: 'UNAUTHENTICATED' },
  { name: 'HS512 with the right key', auth: (_t, f) => ({ token: f.hs512 }), code: 'UNAUTHENTICATED' },
  { name: 'expired', auth: (_t, f) => ({ token: f.expired }), code: 'TOKEN_EXPIRED' },
  { name: 'wrong audience', auth: (_t, f) => ({ token: f.wrongAudience }), code: 'UNAUTHENTICATED' },
  {
    name: 'unit token without a unit id',
    auth: (_t, f) => ({ token: f.unitWithoutUnitId }),
    code: 'UNAUTHENTICATED',
  },
  { name: 'role "system"', auth: (_t, f) => ({ token: f.roleSystem }), code: 'UNAUTHENTICATED' },
  {
    name: 'dispatcher token edited into admin',
    auth: (_t, f) => ({ token: f.tampered }),
    code: 'UNAUTHENTICATED',
  },
];

describe('hostile handshakes are refused with a stable code', () => {
  it('the page’s own origin, the configured one and non-browser clients (no Origin) connect', async () => {
    const port = new URL(s.base).port;
    for (const origin of [`http://127.0.0.1:${port}`, ALLOWED_ORIGIN, undefined]) {
      const c = await connected({ token: s.tokens.planner }, origin ? { origin } : {});
      expect(c.connected, String(origin)).toBe(true);
      c.disconnect();
    }
  });

  for (const h of HANDSHAKES) {
    it(h.name, async () => {
      await unchanged(h.name, async () => {
        const port = new URL(s.base).port;
        const c = client(h.auth(s.tokens, forged), {
          ...(h.origin ? { origin: h.origin(port) } : {}),
          ...(h.transport ? { transport: h.transport } : {}),
        });
        const err = await new Promise<{ data?: { code?: string } }>((resolve, reject) => {
          c.once('connect', () => reject(new Error(`${h.name}: connected`)));
          c.once('connect_error', (e) => resolve(e as never));
        });
        c.disconnect();
        expect(err.data?.code, h.name).toBe(h.code);
        tally.refusal(expectTableCode(err.data?.code, h.name), err.data!.code!);
      });
    });
  }
});

// ---------------------------------------------------------------- events

type Outcome =
  | { kind: 'reply'; reply: Reply }
  | { kind: 'error'; code: string; closed: boolean }
  | { kind: 'dropped'; wsCode: number };

let ackId = 9000;

/**
 * Sends one socket.io EVENT frame written by hand (`json` = the packet's JSON array text, so
 * it may hold NaN, 1e400, `__proto__` keys, 20,000 levels of nesting) with an ack id, and
 * waits for what comes back: the ack reply, an `error` event (with the connection closed or
 * not), or the transport closing.
 */
function rawCall(c: Client, json: string): Promise<Outcome> {
  const id = ackId++;
  // biome-ignore lint/suspicious/noExplicitAny: engine.io internals (raw frames, the ws close code)
  const engine = (c.io as any).engine;
  return new Promise<Outcome>((resolve, reject) => {
    let error: string | undefined;
    const timer = setTimeout(() => reject(new Error(`no answer to ${json.slice(0, 80)}`)), 10_000);
    const done = (o: Outcome) => {
      clearTimeout(timer);
      engine.off('packet', onPacket);
      resolve(o);
    };
    const onPacket = (p: { type: string; data?: unknown }) => {
      if (p.type !== 'message' || typeof p.data !== 'string') return;
      if (p.data.startsWith(`3${id}[`))
        done({ kind: 'reply', reply: JSON.parse(p.data.slice(`3${id}`.length))[0] });
      else if (p.data.startsWith('2["error",')) {
        error = JSON.parse(p.data.slice(1))[1].code;
        // An error without a close: the refusal of an event sent without a callback.
        setTimeout(() => {
          if (c.connected && error) done({ kind: 'error', code: error, closed: false });
        }, 200);
      }
    };
    engine.on('packet', onPacket);
    const ws = engine.transport?.ws as {
      addEventListener?: (e: string, f: (ev: { code: number }) => void) => void;
    };
    ws?.addEventListener?.('close', (ev) => {
      if (error) done({ kind: 'error', code: error, closed: true });
      else done({ kind: 'dropped', wsCode: ev.code });
    });
    engine.write(`2${id}${json}`);
  });
}

interface EventCase {
  group: string;
  name: string;
  who: string;
  json: (f: Fixture) => string;
  /** Codes of a refusal, or `dropped` with the WebSocket close code. */
  want: { code: string | string[]; closes?: boolean } | { dropped: number };
}

const ev = (event: string, payload: unknown) => JSON.stringify([event, payload]);

const EVENTS: EventCase[] = [
  // Other units' ids
  {
    group: "another unit's id",
    name: "P2 accepts P1's assignment",
    who: 'P2',
    json: (f) => ev('ack', { assignmentId: f.asgP1, accept: true }),
    want: { code: 'NOT_FOUND' },
  },
  {
    group: "another unit's id",
    name: "P2 declines A1's open offer",
    who: 'P2',
    json: (f) => ev('ack', { assignmentId: f.asgA1, accept: false, reason: 'mine now' }),
    want: { code: 'NOT_FOUND' },
  },
  {
    group: "another unit's id",
    name: "T1 accepts A1's open offer",
    who: 'T1',
    json: (f) => ev('ack', { assignmentId: f.asgA1, accept: true }),
    want: { code: 'NOT_FOUND' },
  },
  {
    group: "another unit's id",
    name: "P2 en route to P1's incident",
    who: 'P2',
    json: (f) => ev('status', { status: 'en_route', incidentId: f.incP }),
    want: { code: 'INVALID_TRANSITION' },
  },
  {
    group: "another unit's id",
    name: "P1 on scene at T1's incident",
    who: 'P1',
    json: (f) => ev('status', { status: 'on_scene', incidentId: f.incT }),
    want: { code: 'INVALID_TRANSITION' },
  },
  // Impossible transitions
  {
    group: 'transition',
    name: 'A1 on scene before accepting',
    who: 'A1',
    json: (f) => ev('status', { status: 'on_scene', incidentId: f.incA }),
    want: { code: 'INVALID_TRANSITION' },
  },
  {
    group: 'transition',
    name: 'A1 en route before accepting',
    who: 'A1',
    json: () => ev('status', { status: 'en_route' }),
    want: { code: 'INVALID_TRANSITION' },
  },
  {
    group: 'transition',
    name: 'P1 cleared while en route',
    who: 'P1',
    json: () => ev('status', { status: 'available' }),
    want: { code: 'INVALID_TRANSITION' },
  },
  {
    group: 'transition',
    name: 'P1 declines after accepting',
    who: 'P1',
    json: (f) => ev('ack', { assignmentId: f.asgP1, accept: false, reason: 'no' }),
    want: { code: 'INVALID_TRANSITION' },
  },
  {
    group: 'transition',
    name: 'T1 back to en route from on scene',
    who: 'T1',
    json: () => ev('status', { status: 'en_route' }),
    want: { code: 'INVALID_TRANSITION' },
  },
  {
    group: 'transition',
    name: 'P2 on scene with no assignment',
    who: 'P2',
    json: () => ev('status', { status: 'on_scene' }),
    want: { code: 'INVALID_TRANSITION' },
  },
  {
    group: 'transition',
    name: 'a unit reports "offered"',
    who: 'P2',
    json: () => ev('status', { status: 'offered' }),
    want: { code: 'VALIDATION_FAILED' },
  },
  // Offers never sent
  {
    group: 'ack',
    name: 'ack of an offer never sent',
    who: 'A1',
    json: () => ev('ack', { assignmentId: 'asg_never_sent', accept: true }),
    want: { code: 'NOT_FOUND' },
  },
  {
    group: 'ack',
    name: 'decline without a reason',
    who: 'A1',
    json: (f) => ev('ack', { assignmentId: f.asgA1, accept: false }),
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'ack',
    name: 'accept as the string "true"',
    who: 'A1',
    json: (f) => ev('ack', { assignmentId: f.asgA1, accept: 'true' }),
    want: { code: 'VALIDATION_FAILED' },
  },
  // Mass assignment
  {
    group: 'mass assignment',
    name: 'status with a unit id',
    who: 'P2',
    json: () => ev('status', { status: 'out_of_service', unitId: 'P1' }),
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'mass assignment',
    name: 'location with a unit id',
    who: 'P2',
    json: () => ev('location', { position: at(3, 3), unitId: 'P1' }),
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'mass assignment',
    name: 'ack with a unit id',
    who: 'P2',
    json: (f) => ev('ack', { assignmentId: f.asgA1, accept: true, unitId: 'A1' }),
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'mass assignment',
    name: 'ack with a status',
    who: 'A1',
    json: (f) => ev('ack', { assignmentId: f.asgA1, accept: true, status: 'on_scene' }),
    want: { code: 'VALIDATION_FAILED' },
  },
  // Prototype keys
  {
    group: 'prototype',
    name: '__proto__ in an ack',
    who: 'P2',
    json: (f) => `["ack",{"assignmentId":"${f.asgA1}","accept":true,"__proto__":{"unitId":"A1"}}]`,
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'prototype',
    name: 'constructor.prototype in a status',
    who: 'P2',
    json: () => '["status",{"status":"available","constructor":{"prototype":{"role":"admin"}}}]',
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'prototype',
    name: '__proto__ as the position',
    who: 'P2',
    json: () => '["location",{"position":{"__proto__":[113.4,23.1]}}]',
    want: { code: 'VALIDATION_FAILED' },
  },
  // Numbers
  {
    group: 'numbers',
    name: 'position 1e400 (Infinity)',
    who: 'P2',
    json: () => '["location",{"position":[1e400,23.1]}]',
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'numbers',
    name: 'position NaN (not JSON)',
    who: 'P2',
    json: () => '["location",{"position":[NaN,23.1]}]',
    want: { code: 'MALFORMED_JSON', closes: true },
  },
  {
    group: 'numbers',
    name: 'position as strings',
    who: 'P2',
    json: () => '["location",{"position":["113.4","23.1"]}]',
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'numbers',
    name: 'latitude 95',
    who: 'P2',
    json: () => ev('location', { position: [113.4, 95] }),
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'numbers',
    name: 'fix time -5',
    who: 'P2',
    json: () => ev('location', { position: at(-10, -6), at: -5 }),
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'numbers',
    name: 'fix time a year ahead',
    who: 'P2',
    json: () => ev('location', { position: at(-10, -6), at: Date.now() + 365 * 86_400_000 }),
    want: { code: 'INVALID_FIELD' },
  },
  {
    group: 'numbers',
    name: 'accuracy 1e400',
    who: 'P2',
    json: () => `["location",{"position":[${at(-10, -6).join(',')}],"accuracyM":1e400}]`,
    want: { code: 'VALIDATION_FAILED' },
  },
  // Shapes
  {
    group: 'shape',
    name: 'payload is a string',
    who: 'P2',
    json: () => ev('status', 'available'),
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'shape',
    name: 'payload is null',
    who: 'P2',
    json: () => ev('ack', null),
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'shape',
    name: 'arrays nested 20,000 deep',
    who: 'P2',
    json: () => `["location",${'['.repeat(20_000)}${']'.repeat(20_000)}]`,
    want: { code: 'VALIDATION_FAILED' },
  },
  {
    group: 'shape',
    name: 'truncated frame',
    who: 'P2',
    json: () => '["location",{"position":[113.4,',
    want: { code: 'MALFORMED_JSON', closes: true },
  },
  {
    group: 'shape',
    name: 'frame of 70 kB (over the 64 KiB limit)',
    who: 'P2',
    json: () => ev('location', { position: at(-10, -6), pad: 'x'.repeat(70_000) }),
    want: { dropped: 1009 },
  },
  // Roles
  {
    group: 'role',
    name: 'a console reports a unit status',
    who: 'dispatcher',
    json: () => ev('status', { status: 'available' }),
    want: { code: 'FORBIDDEN' },
  },
  {
    group: 'role',
    name: 'a console accepts an offer',
    who: 'dispatcher',
    json: (f) => ev('ack', { assignmentId: f.asgA1, accept: true }),
    want: { code: 'FORBIDDEN' },
  },
  {
    group: 'role',
    name: 'a planner sends a position',
    who: 'planner',
    json: () => ev('location', { position: at(0, 0) }),
    want: { code: 'FORBIDDEN' },
  },
  {
    group: 'role',
    name: 'an admin declines an offer over the socket',
    who: 'admin',
    json: (f) => ev('ack', { assignmentId: f.asgA1, accept: false, reason: 'x' }),
    want: { code: 'FORBIDDEN' },
  },
  // Events outside the contract
  ...['error', 'assignment:offer', 'incident:created', '__proto__', 'toString'].map(
    (name): EventCase => ({
      group: 'unknown event',
      name: `"${name}" from a client`,
      who: 'P2',
      json: () => ev(name, { role: 'admin' }),
      want: { code: 'UNKNOWN_EVENT' },
    }),
  ),
  // Names socket.io reserves never reach a handler: the frame is invalid, the connection closes.
  ...['newListener', 'disconnecting', 'connect'].map(
    (name): EventCase => ({
      group: 'unknown event',
      name: `reserved "${name}" from a client`,
      who: 'P2',
      json: () => ev(name, { role: 'admin' }),
      want: { code: 'MALFORMED_JSON', closes: true },
    }),
  ),
  {
    group: 'unknown event',
    name: 'resync with a negative seq',
    who: 'P2',
    json: () => ev('resync', { lastSeq: -1 }),
    want: { code: 'VALIDATION_FAILED' },
  },
];

describe('hostile socket events: refused with a stable code, nothing changed', () => {
  it('has at least 40 socket cases', () => {
    expect(HANDSHAKES.length + EVENTS.length).toBeGreaterThanOrEqual(40);
  });

  for (const c of EVENTS) {
    it(`${c.group}: ${c.name}`, async () => {
      await unchanged(c.name, async () => {
        const sock = await connected({ token: s.tokens[c.who] });
        const out = await rawCall(sock, c.json(s.fx));
        sock.disconnect();
        if ('dropped' in c.want) {
          expect(out, c.name).toEqual({ kind: 'dropped', wsCode: c.want.dropped });
          tally.cases++;
          tally.dropped++;
          return;
        }
        const code =
          out.kind === 'reply' ? out.reply.code : out.kind === 'error' ? out.code : `dropped ${out.wsCode}`;
        if (out.kind === 'reply') expect(out.reply.ok, c.name).toBe(false);
        if (out.kind === 'error')
          expect(out.closed, `${c.name}: connection closed`).toBe(c.want.closes ?? false);
        if (out.kind === 'dropped')
          throw new Error(`${c.name}: connection dropped (${out.wsCode}) without a code`);
        const want = Array.isArray(c.want.code) ? c.want.code : [c.want.code];
        expect(want, `${c.name}: got ${JSON.stringify(out)}`).toContain(code);
        tally.refusal(expectTableCode(code, c.name), code!);
      });
    });
  }
});

describe('1,000 events a second from one socket', () => {
  it('are rate-limited with RATE_LIMITED; another unit and HTTP are served meanwhile', async () => {
    await unchanged('flood', async () => {
      const attacker = await connected({ token: s.tokens.P2 });
      const victim = await connected({ token: s.tokens.P1 });
      const errors: string[] = [];
      attacker.on('error', (e) => errors.push(e.code));
      const replies: Promise<Reply>[] = [];
      const victimReplies: Promise<Reply>[] = [];
      const health: Promise<number>[] = [];
      const t0 = performance.now();
      // 10 events every 10 ms for 2 s: ~1,000 a second, 2,000 in all (slower if the machine is).
      for (let tick = 0; tick < 200; tick++) {
        for (let i = 0; i < 10; i++) {
          replies.push(
            attacker.timeout(20_000).emitWithAck('ack', { assignmentId: 'asg_flood', accept: true }),
          );
        }
        if (tick % 10 === 0) {
          // The victim repeats its (idempotent) accept: answered ok, nothing changes.
          victimReplies.push(
            victim.timeout(20_000).emitWithAck('ack', { assignmentId: s.fx.asgP1, accept: true }),
          );
          health.push(fetch(`${s.base}/healthz`).then((r) => r.status));
        }
        await sleep(10);
      }
      const got = await Promise.all(replies);
      const elapsedS = (performance.now() - t0) / 1000;
      const byCode = new Map<string, number>();
      for (const r of got) byCode.set(String(r.code), (byCode.get(String(r.code)) ?? 0) + 1);
      // Admitted events reach the engine (an offer never sent: NOT_FOUND); the rest are refused.
      expect([...byCode.keys()].sort()).toEqual(['NOT_FOUND', 'RATE_LIMITED']);
      const admitted = byCode.get('NOT_FOUND')!;
      const limited = byCode.get('RATE_LIMITED')!;
      expect(admitted + limited).toBe(2000);
      expect(got.every((r) => r.ok === false)).toBe(true);
      // The bucket admits at most its burst plus the rate over the time the flood lasted.
      expect(admitted).toBeLessThanOrEqual(RATE.burst + Math.ceil(RATE.perSecond * elapsedS) + 1);
      expect(limited).toBeGreaterThan(0);
      // One `error` RATE_LIMITED a second at most, not one per dropped event.
      expect(errors.every((c) => c === 'RATE_LIMITED')).toBe(true);
      expect(errors.length).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
      // Nobody else starved: every victim event and every health check answered.
      expect(await Promise.all(victimReplies)).toEqual(victimReplies.map(() => ({ ok: true })));
      expect(await Promise.all(health)).toEqual(health.map(() => 200));
      tally.refusal(ERRORS.RATE_LIMITED.status, 'RATE_LIMITED');
      console.log(
        `flood: ${got.length} events in ${elapsedS.toFixed(2)} s from one socket — ${admitted} admitted (NOT_FOUND), ${limited} RATE_LIMITED; victim ${victimReplies.length}/${victimReplies.length} ok`,
      );
      attacker.disconnect();
      victim.disconnect();
    });
  });
});
