// Shared by the hostile-input suites: the whole live stack in one process (the real Engine
// on a MemoryStore, the in-process queue with its workers, the fastify app listening on a
// free port with socket.io attached — wired as `dispatch serve` wires it), a district with
// units in every state, hand-made tokens (good and forged), a snapshot of everything a
// request could change, and the tally of refusals behind the summary line.

import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { expect } from 'vitest';
import { defaultCatalog } from '../../src/core/catalog.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';
import { Engine } from '../../src/engine/engine.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import { systemClock } from '../../src/engine/ports.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import { mintToken } from '../../src/server/auth.ts';
import { ERRORS } from '../../src/server/errors.ts';
import { type HttpServer, type SocketDeps, SocketPublisher, startHttp } from '../../src/server/index.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import type { AssignmentView, IncidentView } from '../../src/shared/events.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { startWorkers, type Workers } from '../../workers/index.ts';

export const SECRET = 'hostile-suite-secret-hostile-suite-secret-0001';
export const OTHER_SECRET = 'not-the-server-secret-not-the-server-secret-99';
const BASE: LonLat = [113.45, 23.1];
/** A point dxKm east and dyKm north of BASE. */
export const at = (dxKm: number, dyKm = 0): LonLat => [BASE[0] + dxKm / 102.4, BASE[1] + dyKm / 111.2];
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the district looks like once set up (ids the hostile cases aim at). */
export interface Fixture {
  /** medical-emergency: A1 offered, not yet accepted. */
  incA: string;
  asgA1: string;
  /** burglary-report: P1 accepted and en route. */
  incP: string;
  asgP1: string;
  /** illegal-parking: T1 on scene. */
  incT: string;
  asgT1: string;
  /** food-safety: queued (no market unit in the district). */
  incQ: string;
  /** pollution-complaint: closed. */
  incX: string;
}

export interface Stack {
  server: HttpServer;
  engine: Engine;
  store: MemoryStore;
  queue: MemoryQueue;
  base: string;
  tokens: Record<string, string>;
  fx: Fixture;
  http(
    who: string | undefined,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>;
  close(): Promise<void>;
}

export const UNITS: [string, string, string[], LonLat][] = [
  ['A1', 'health', ['ambulance'], at(0.5)],
  ['A2', 'health', ['ambulance'], at(12, 8)],
  ['P1', 'police', ['police'], at(3, 3)],
  ['P2', 'police', ['police'], at(-10, -6)],
  ['T1', 'traffic', ['traffic'], at(-3, 4)],
  ['F1', 'fire', ['fire-engine'], at(6, -6)],
];

export async function startStack(
  sockets: Omit<SocketDeps, 'engine' | 'store' | 'auth' | 'metrics' | 'publisher'> = {},
): Promise<Stack> {
  const store = new MemoryStore();
  const queue = new MemoryQueue({ retry: { backoffMs: 50 } });
  const metrics = createMetrics();
  const publisher = new SocketPublisher();
  const engine = new Engine({
    store,
    queue,
    publisher,
    clock: systemClock,
    catalog: defaultCatalog(),
    travel: new GreatCircleTravel(),
    // Offers stay open for the whole file: an ack deadline must not move state under a case.
    config: { decideDebounceMs: 2, sweepIntervalMs: 0, ackTimeoutS: 3600, ackTimeoutOtherS: 3600 },
    log: () => {},
  });
  await engine.start();
  const workers: Workers = await startWorkers(engine, queue, store, { relay: { pollMs: 20 } });
  const server = await startHttp({
    engine,
    store,
    auth: { secret: SECRET },
    metrics,
    publisher,
    port: 0,
    host: '127.0.0.1',
    ready: () => engine.running,
    sockets,
  });
  const base = server.url;
  const tokens: Record<string, string> = {
    admin: await mintToken({ role: 'admin', sub: 'root' }, SECRET),
    dispatcher: await mintToken({ role: 'dispatcher', sub: 'd.li' }, SECRET),
    planner: await mintToken({ role: 'planner', sub: 'p.wu' }, SECRET),
  };
  for (const [id] of UNITS) tokens[id] = await mintToken({ role: 'unit', unitId: id }, SECRET);

  const http = (
    who: string | undefined,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        ...(who ? { authorization: `Bearer ${tokens[who] ?? who}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });

  const ok = async (res: Response | Promise<Response>, status = [200, 201, 204]) => {
    const r = await res;
    const text = await r.text();
    if (!status.includes(r.status)) throw new Error(`set-up request failed: ${r.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };

  for (const [id, department, capabilities, home] of UNITS) {
    await ok(
      http('admin', 'PUT', `/v1/units/${id}`, { department, capabilities, home, speedKmh: 40, turnoutS: 60 }),
    );
  }
  await ok(
    http('admin', 'PUT', '/v1/units/F1', {
      department: 'fire',
      capabilities: ['fire-engine'],
      home: at(6, -6),
      speedKmh: 40,
      turnoutS: 60,
      status: 'off_duty',
    }),
  );

  const report = async (type: string, location: LonLat) =>
    ((await ok(http('dispatcher', 'POST', '/v1/incidents', { type, location }))) as IncidentView).id;
  const offerOf = async (unitId: string, incidentId: string) => {
    const end = Date.now() + 10_000;
    for (;;) {
      const list = (await ok(http('admin', 'GET', `/v1/assignments?unitId=${unitId}&active=true`))) as {
        assignments: AssignmentView[];
      };
      const a = list.assignments.find((x) => x.incidentId === incidentId);
      if (a) return a.id;
      if (Date.now() > end) throw new Error(`no offer to ${unitId} for ${incidentId}`);
      await sleep(10);
    }
  };

  const incA = await report('medical-emergency', at(0.6));
  const asgA1 = await offerOf('A1', incA);
  const incP = await report('burglary-report', at(3.1, 3));
  const asgP1 = await offerOf('P1', incP);
  await ok(http('P1', 'POST', `/v1/assignments/${asgP1}/ack`, { accept: true }));
  await ok(http('P1', 'POST', '/v1/units/P1/status', { status: 'en_route', incidentId: incP }));
  const incT = await report('illegal-parking', at(-3, 4.1));
  const asgT1 = await offerOf('T1', incT);
  await ok(http('T1', 'POST', `/v1/assignments/${asgT1}/ack`, { accept: true }));
  await ok(http('T1', 'POST', '/v1/units/T1/status', { status: 'on_scene', incidentId: incT }));
  const incQ = await report('food-safety', at(5, -5));
  const incX = await report('pollution-complaint', at(-7, 7));
  await ok(
    http('dispatcher', 'POST', `/v1/incidents/${incX}/close`, { note: 'duplicate of a hotline call' }),
  );

  const stack: Stack = {
    server,
    engine,
    store,
    queue,
    base,
    tokens,
    fx: { incA, asgA1, incP, asgP1, incT, asgT1, incQ, incX },
    http,
    async close() {
      await server.close();
      await engine.stop();
      await workers.stop();
      await queue.close();
    },
  };
  await settle(stack);
  return stack;
}

// ---------------------------------------------------------------- snapshots

/** Everything a request could change: records with their versions, audit, events, push streams. */
export async function snapshot(s: Pick<Stack, 'store'>) {
  const { store } = s;
  const incidents = (await store.listIncidents({ limit: 1000 }))
    .map((i) => ({
      id: i.id,
      status: i.status,
      version: i.version,
      priority: i.priority,
      location: i.location,
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const units = (await store.listUnits())
    .map((u) => ({
      id: u.id,
      status: u.status,
      version: u.version,
      incidentId: u.incidentId,
      position: u.position,
      capabilities: u.capabilities,
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const assignments = (await store.listAssignments({ limit: 100_000 }))
    .map((a) => ({
      id: a.id,
      status: a.status,
      unitId: a.unitId,
      incidentId: a.incidentId,
      version: a.version,
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const audit = (await store.listAudit({ limit: 100_000 })).length;
  const events = (await store.listEvents({ limit: 100_000 })).length;
  const streams: Record<string, number> = { consoles: await store.lastMessageSeq('consoles') };
  for (const [id] of UNITS) streams[id] = await store.lastMessageSeq(`unit:${id}`);
  return { incidents, units, assignments, audit, events, streams };
}
export type Snapshot = Awaited<ReturnType<typeof snapshot>>;

/** Waits until the engine, its queues and its outbox are idle and two snapshots agree. */
export async function settle(
  s: Pick<Stack, 'store' | 'engine' | 'queue'>,
  timeoutMs = 10_000,
): Promise<Snapshot> {
  const end = Date.now() + timeoutMs;
  let prev = await snapshot(s);
  for (;;) {
    await sleep(25);
    // Timers are delayed jobs (ack deadlines an hour out, arrival targets): not counted.
    const queues = [QUEUES.intake, QUEUES.decisions, QUEUES.notifications];
    const depth = (await Promise.all(queues.map((q) => s.queue.depth(q)))).reduce((a, b) => a + b, 0);
    const backlog = await s.store.outboxBacklog();
    const idle = !s.engine.busy && depth === 0 && backlog === 0;
    const cur = await snapshot(s);
    if (idle && JSON.stringify(cur) === JSON.stringify(prev)) return cur;
    if (Date.now() > end) {
      throw new Error(
        `the engine did not settle (busy ${s.engine.busy}, queued jobs ${depth}, outbox ${backlog})`,
      );
    }
    prev = cur;
  }
}

// ---------------------------------------------------------------- tokens

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** Signs arbitrary claims (HS256 by default) — the forgeries a client might try. */
export async function forge(
  claims: Record<string, unknown>,
  opts: {
    key?: string;
    alg?: 'HS256' | 'HS384' | 'HS512';
    exp?: number | null;
    iss?: string;
    aud?: string;
    nbf?: number;
  } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' })
    .setIssuer(opts.iss ?? 'dispatch')
    .setAudience(opts.aud ?? 'dispatch')
    .setIssuedAt(now);
  if (opts.exp !== null) jwt = jwt.setExpirationTime(opts.exp ?? now + 3600);
  if (opts.nbf !== undefined) jwt = jwt.setNotBefore(opts.nbf);
  return jwt.sign(new TextEncoder().encode(opts.key ?? SECRET));
}

/** An unsigned token (`alg: none`). */
export const algNone = (claims: Record<string, unknown>) =>
  `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'dispatch', aud: 'dispatch', exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}.`;

export async function forgedTokens(): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  return {
    algNone: algNone({ role: 'admin' }),
    algNoneUnit: algNone({ role: 'unit', unitId: 'P1' }),
    wrongKey: await forge({ role: 'admin' }, { key: OTHER_SECRET }),
    hs512: await forge({ role: 'admin' }, { alg: 'HS512' }),
    expired: await mintToken({ role: 'admin', ttlS: 60 }, SECRET, { nowS: now - 3600 }),
    wrongAudience: await forge({ role: 'admin' }, { aud: 'billing' }),
    wrongIssuer: await forge({ role: 'admin' }, { iss: 'someone-else' }),
    noRole: await forge({}),
    roleSystem: await forge({ role: 'system' }),
    roleRoot: await forge({ role: 'root' }),
    unitWithoutUnitId: await forge({ role: 'unit' }),
    unitBadUnitId: await forge({ role: 'unit', unitId: '../P1' }),
    noExp: await forge({ role: 'admin' }, { exp: null }),
    notYetValid: await forge({ role: 'admin' }, { nbf: now + 3600 }),
    tampered: await tamperedToken(),
    huge: `${b64({ alg: 'HS256' })}.${'A'.repeat(5000)}.sig`,
  };
}

/** A valid token whose payload was edited after signing (the signature no longer matches). */
export async function tamperedToken(): Promise<string> {
  const t = await mintToken({ role: 'dispatcher' }, SECRET);
  const [h, p, sig] = t.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  return `${h}.${b64({ ...claims, role: 'admin' })}.${sig}`;
}

// ---------------------------------------------------------------- the tally

/** Counts answers by status and code; every refusal must carry a code of the error table. */
export class Tally {
  cases = 0;
  readonly byCode = new Map<string, number>();
  readonly byStatus = new Map<number, number>();
  fivexx = 0;
  dropped = 0;
  noop = 0;

  refusal(status: number, code: string): void {
    this.cases++;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
    if (status >= 500) this.fivexx++;
  }

  summary(label: string): string {
    const codes = [...this.byCode].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const fourxx = [...this.byStatus].filter(([s]) => s >= 400 && s < 500).reduce((n, [, c]) => n + c, 0);
    return (
      `${label}: ${this.cases} cases — 4xx ${fourxx} (${codes.map(([c, n]) => `${c} ${n}`).join(', ')})` +
      `${this.dropped ? `, dropped ${this.dropped}` : ''}${this.noop ? `, no-op replays ${this.noop}` : ''}, 5xx = ${this.fivexx}`
    );
  }
}

/** Checks one HTTP refusal: 4xx, the error shape, a code of the table with its status. */
export async function expectRefusal(
  res: Response,
  want: { status?: number | number[]; code: string | string[] },
  label: string,
): Promise<{ status: number; code: string }> {
  const text = await res.text();
  expect(res.status, `${label}: ${text}`).toBeGreaterThanOrEqual(400);
  expect(res.status, `${label}: ${text}`).toBeLessThan(500);
  let code = '';
  if (text.length === 0) {
    // HEAD answers carry no body; the status alone is the answer.
    expect(res.headers.get('content-type') ?? '', label).toContain('application/json');
    code = Object.entries(ERRORS).find(([, e]) => e.status === res.status)?.[0] ?? '';
  } else {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    expect(body.error?.code, `${label}: ${text}`).toBeTypeOf('string');
    expect(body.error?.message, label).toBeTypeOf('string');
    code = body.error!.code!;
    expect(Object.keys(ERRORS), `${label}: unknown code ${code}`).toContain(code);
    expect(ERRORS[code as keyof typeof ERRORS].status, label).toBe(res.status);
  }
  const codes = Array.isArray(want.code) ? want.code : [want.code];
  expect(codes, `${label}: got ${res.status} ${code} ${text.slice(0, 300)}`).toContain(code);
  if (want.status !== undefined) {
    const statuses = Array.isArray(want.status) ? want.status : [want.status];
    expect(statuses, `${label}: status`).toContain(res.status);
  }
  return { status: res.status, code };
}

export const newKey = () => `hostile-${randomUUID()}`;
