// The HTTP layer's own rules against a fake EngineApi: schemas, auth, role gates, error
// mapping, body limits, idempotency status codes, message replay, docs, health, metrics.

import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreError } from '../../src/core/errors.ts';
import { type App, buildApp } from '../../src/server/app.ts';
import { mintToken, type Role } from '../../src/server/auth.ts';
import { ApiError } from '../../src/server/errors.ts';
import { FakeEngine } from '../../src/server/fake-engine.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { StoreError } from '../../src/store/store.ts';

const secret = 'unit-test-secret-unit-test-secret-4242';
let app: App;
let engine: FakeEngine;
let store: MemoryStore;
const tokens: Record<string, string> = {};
const auth = (who: string) => ({ authorization: `Bearer ${tokens[who]}` });

const req = (who: string | undefined, method: string, url: string, payload?: unknown, headers = {}) =>
  app.inject({
    method,
    url,
    headers: { ...(who ? auth(who) : {}), ...headers },
    ...(payload === undefined ? {} : { payload }),
  } as InjectOptions);

beforeAll(async () => {
  engine = new FakeEngine();
  store = new MemoryStore();
  app = buildApp({ engine, store, auth: { secret }, metrics: createMetrics() });
  await app.ready();
  for (const role of ['dispatcher', 'planner', 'admin'] as const)
    tokens[role] = await mintToken({ role }, secret);
  tokens.unitA = await mintToken({ role: 'unit', unitId: 'UA' }, secret);
  tokens.unitB = await mintToken({ role: 'unit', unitId: 'UB' }, secret);
  tokens.expired = await mintToken({ role: 'admin', ttlS: 10 }, secret, { nowS: Date.now() / 1000 - 3600 });
  tokens.otherAud = await mintToken({ role: 'admin' }, secret, { audience: 'billing' });
  tokens.wrongKey = await mintToken({ role: 'admin' }, 'another-secret-another-secret-another-1');
  engine.addUnit('UA');
  engine.addUnit('UB');
});
afterAll(async () => {
  await app.close();
});

const fire = { type: 'structure-fire', location: [113.46, 23.11] };

describe('public routes', () => {
  it('GET /healthz needs no token', async () => {
    const res = await req(undefined, 'GET', '/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', store: 'memory' });
  });

  it('GET /docs serves the OpenAPI page and the spec lists the /v1 routes', async () => {
    const page = await req(undefined, 'GET', '/docs/');
    expect(page.statusCode).toBe(200);
    const spec = (await req(undefined, 'GET', '/docs/json')).json();
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining([
        '/v1/incidents',
        '/v1/incidents/{id}',
        '/v1/incidents/{id}/assign',
        '/v1/units/{id}',
        '/v1/assignments/{id}/ack',
        '/v1/kpis',
        '/v1/messages',
      ]),
    );
    expect(spec.components.securitySchemes.bearerAuth.scheme).toBe('bearer');
  });

  it('unknown routes answer ROUTE_NOT_FOUND in the error shape', async () => {
    const res = await req('admin', 'GET', '/v1/nothing-here');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: 'No such route' } });
  });
});

describe('authentication', () => {
  it('no token, a garbage token, a wrong key, a wrong audience → 401 UNAUTHENTICATED', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer nonsense' },
      { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      auth('wrongKey'),
      auth('otherAud'),
    ]) {
      const res = await req(undefined, 'GET', '/v1/incidents', undefined, headers);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('UNAUTHENTICATED');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
  });

  it('alg none → 401', async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64({ alg: 'none' })}.${b64({ role: 'admin', iss: 'dispatch', aud: 'dispatch', exp: 4e9 })}.`;
    const res = await req(undefined, 'GET', '/v1/units', undefined, { authorization: `Bearer ${token}` });
    expect(res.statusCode).toBe(401);
  });

  it('an expired token → 401 TOKEN_EXPIRED', async () => {
    const res = await req('expired', 'GET', '/v1/units');
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('TOKEN_EXPIRED');
  });

  it('refuses before parsing the body (401 beats 400)', async () => {
    const res = await req(undefined, 'POST', '/v1/incidents', '{not json', {
      'content-type': 'application/json',
    });
    expect(res.statusCode).toBe(401);
  });

  it('passes the Actor built from the token to the engine', async () => {
    await req('planner', 'GET', '/v1/units');
    expect(engine.calls.at(-1)).toMatchObject({
      method: 'listUnits',
      actor: { role: 'planner', id: 'planner' },
    });
    await req('unitA', 'POST', '/v1/units/UA/location', { position: [113.4, 23.1] });
    expect(engine.calls.at(-1)).toMatchObject({
      method: 'reportLocation',
      actor: { role: 'unit', id: 'unit:UA', unitId: 'UA' },
    });
  });
});

describe('role gates', () => {
  // [method, url, body, roles allowed through the gate]
  const routes: [string, string, unknown, Role[]][] = [
    ['POST', '/v1/incidents', fire, ['dispatcher', 'admin']],
    ['GET', '/v1/incidents', undefined, ['dispatcher', 'planner', 'admin']],
    ['POST', '/v1/incidents/inc_x/assign', { unitId: 'UA' }, ['dispatcher', 'admin']],
    ['POST', '/v1/incidents/inc_x/cancel', {}, ['dispatcher', 'admin']],
    ['POST', '/v1/incidents/inc_x/close', {}, ['dispatcher', 'admin']],
    ['GET', '/v1/units', undefined, ['dispatcher', 'planner', 'admin', 'unit']],
    [
      'PUT',
      '/v1/units/NEW-1',
      { department: 'fire', capabilities: ['fire-engine'], home: [113.4, 23.1], speedKmh: 40, turnoutS: 60 },
      ['admin'],
    ],
    ['POST', '/v1/units/UA/location', { position: [113.4, 23.1] }, ['unit', 'admin']],
    ['POST', '/v1/units/UA/status', { status: 'off_duty' }, ['unit', 'admin']],
    ['POST', '/v1/assignments/asg_x/ack', { accept: true }, ['unit', 'admin']],
    ['GET', '/v1/assignments', undefined, ['dispatcher', 'planner', 'admin', 'unit']],
    ['GET', '/v1/alerts', undefined, ['dispatcher', 'planner', 'admin']],
    ['POST', '/v1/alerts/al_x/ack', {}, ['dispatcher', 'admin']],
    ['GET', '/v1/kpis', undefined, ['dispatcher', 'planner', 'admin']],
    ['GET', '/v1/messages?after=0', undefined, ['dispatcher', 'planner', 'admin', 'unit']],
  ];
  for (const [method, url, body, allowed] of routes) {
    it(`${method} ${url}: ${allowed.join(', ')}`, async () => {
      for (const role of ['dispatcher', 'planner', 'admin', 'unit'] as const) {
        const res = await req(role === 'unit' ? 'unitA' : role, method, url, body);
        if (allowed.includes(role)) {
          expect([200, 201, 204, 404, 409], `${role} ${res.body}`).toContain(res.statusCode);
        } else {
          expect(res.statusCode, `${role} should be refused`).toBe(403);
          expect(res.json().error.code).toBe('FORBIDDEN');
        }
      }
    });
  }

  it('a unit acts only for itself (path unit id)', async () => {
    for (const [url, body] of [
      ['/v1/units/UB/location', { position: [113.4, 23.1] }],
      ['/v1/units/UB/status', { status: 'en_route' }],
    ] as const) {
      const res = await req('unitA', 'POST', url, body);
      expect(res.statusCode).toBe(403);
    }
    expect((await req('unitB', 'POST', '/v1/units/UB/status', { status: 'en_route' })).statusCode).toBe(200);
  });

  it("a unit cannot acknowledge another unit's offer (engine check) nor list or read its work", async () => {
    const { incident } = await engine.reportIncident(fire as never, undefined, { role: 'system', id: 't' });
    const a = engine.addAssignment(incident.id, 'UB');
    expect((await req('unitA', 'POST', `/v1/assignments/${a.id}/ack`, { accept: true })).statusCode).toBe(
      403,
    );
    expect((await req('unitA', 'GET', '/v1/assignments?unitId=UB')).statusCode).toBe(403);
    const mine = await req('unitA', 'GET', '/v1/assignments');
    expect(mine.json().assignments.every((x: { unitId: string }) => x.unitId === 'UA')).toBe(true);
    expect(engine.calls.at(-1)?.args[0]).toEqual({ unitId: 'UA' });
    expect((await req('unitA', 'GET', `/v1/incidents/${incident.id}`)).statusCode).toBe(404);
    const b = await req('unitB', 'GET', `/v1/incidents/${incident.id}`);
    expect(b.statusCode).toBe(200);
    expect(b.json().assignments[0].unitId).toBe('UB');
    expect((await req('unitB', 'POST', `/v1/assignments/${a.id}/ack`, { accept: true })).statusCode).toBe(
      200,
    );
  });
});

describe('schemas', () => {
  const bad: [string, string, unknown, string][] = [
    ['POST', '/v1/incidents', { ...fire, colour: 'red' }, 'body.colour'],
    ['POST', '/v1/incidents', { type: 'x', location: [181, 0] }, 'body.location[0]'],
    ['POST', '/v1/incidents', { type: 'x', location: [0, -90.5] }, 'body.location[1]'],
    ['POST', '/v1/incidents', { type: 'x', location: [0] }, 'body.location'],
    ['POST', '/v1/incidents', { type: 'x', location: [0, 0, 0] }, 'body.location[2]'],
    ['POST', '/v1/incidents', { type: 'x', location: ['0', '0'] }, 'body.location[0]'],
    ['POST', '/v1/incidents', { location: [0, 0] }, 'body.type'],
    ['POST', '/v1/incidents', { ...fire, priority: 5 }, 'body.priority'],
    ['POST', '/v1/incidents', { ...fire, reportedAt: 'yesterday' }, 'body.reportedAt'],
    ['POST', '/v1/incidents/inc_1/assign', { unitId: 'UA', force: true }, 'body.force'],
    ['POST', '/v1/units/UA/location', { position: [0, 0], speed: 3 }, 'body.speed'],
    ['POST', '/v1/units/UA/status', { status: 'flying' }, 'body.status'],
    ['POST', '/v1/assignments/a1/ack', { accept: 'yes' }, 'body.accept'],
    ['GET', '/v1/incidents?limit=0', undefined, 'querystring.limit'],
    ['GET', '/v1/incidents?sort=asc', undefined, 'querystring.sort'],
    ['GET', '/v1/incidents?status=lost', undefined, 'querystring.status'],
    ['GET', '/v1/kpis?groupBy=weather', undefined, 'querystring.groupBy'],
    ['GET', '/v1/messages', undefined, 'querystring.after'],
    ['GET', '/v1/incidents/bad%20id', undefined, 'params.id'],
  ];
  for (const [method, url, body, path] of bad) {
    it(`${method} ${url} ${JSON.stringify(body) ?? ''} → 400 at ${path}`, async () => {
      const res = await req('admin', method, url, body);
      expect(res.statusCode).toBe(400);
      const e = res.json().error;
      expect(e.code).toBe('VALIDATION_FAILED');
      expect(e.details.errors.map((x: { path: string }) => x.path)).toContain(path);
    });
  }

  it('non-finite coordinates (1e999 parses to Infinity) → 400', async () => {
    const res = await req('admin', 'POST', '/v1/incidents', '{"type":"x","location":[1e999,0]}', {
      'content-type': 'application/json',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
  });

  it('bad JSON, empty JSON, prototype poisoning → 400 MALFORMED_JSON', async () => {
    for (const payload of ['{"type":', '', '{"__proto__":{"x":1},"type":"a","location":[0,0]}']) {
      const res = await req('admin', 'POST', '/v1/incidents', payload, {
        'content-type': 'application/json',
      });
      expect(res.statusCode, payload).toBe(400);
      expect(res.json().error.code).toBe('MALFORMED_JSON');
    }
  });

  it('a body that is not JSON → 415', async () => {
    const res = await req('admin', 'POST', '/v1/incidents', 'type=fire', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const text = await req('admin', 'POST', '/v1/incidents', 'fire', { 'content-type': 'text/plain' });
    expect(text.statusCode).toBe(415);
  });

  it('a body over 64 KiB → 413 BODY_TOO_LARGE', async () => {
    const res = await req('admin', 'POST', '/v1/incidents', { ...fire, description: 'x'.repeat(70_000) });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('BODY_TOO_LARGE');
  });

  it('declining needs a reason', async () => {
    const res = await req('unitA', 'POST', '/v1/assignments/a1/ack', { accept: false });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details.errors[0].path).toBe('body.reason');
  });

  it('cancel / close / alert ack accept no body at all', async () => {
    const { incident } = await engine.reportIncident(fire as never, undefined, { role: 'system', id: 't' });
    expect((await req('dispatcher', 'POST', `/v1/incidents/${incident.id}/cancel`)).statusCode).toBe(200);
    expect((await req('dispatcher', 'POST', `/v1/incidents/${incident.id}/close`)).statusCode).toBe(200);
    engine.alerts.set('al_1', { id: 'al_1', kind: 'no_ack', severity: 'warning', message: 'm', at: 'x' });
    expect((await req('dispatcher', 'POST', '/v1/alerts/al_1/ack')).statusCode).toBe(204);
  });

  it('query strings are converted (open=true, limit=5) before they reach the engine', async () => {
    const res = await req('planner', 'GET', '/v1/incidents?open=true&limit=5&offset=2');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ limit: 5, offset: 2 });
    expect(engine.calls.at(-1)?.args[0]).toEqual({ open: true, limit: 5, offset: 2 });
  });

  it('location `at` may be ISO or epoch ms', async () => {
    await req('unitA', 'POST', '/v1/units/UA/location', {
      position: [113.4, 23.1],
      at: '2026-03-02T08:00:00+08:00',
    });
    expect(engine.calls.at(-1)?.args[2]).toBe(Date.parse('2026-03-02T00:00:00Z'));
    await req('unitA', 'POST', '/v1/units/UA/location', { position: [113.4, 23.1], at: 1_700_000_000_000 });
    expect(engine.calls.at(-1)?.args[2]).toBe(1_700_000_000_000);
  });
});

describe('incidents and idempotency', () => {
  it('201 when created, 200 with the same incident when the key was seen, 422 on a different body', async () => {
    const h = { 'idempotency-key': 'call-0001' };
    const first = await req('dispatcher', 'POST', '/v1/incidents', fire, h);
    expect(first.statusCode).toBe(201);
    expect(first.headers.location).toBe(`/v1/incidents/${first.json().id}`);
    const again = await req('dispatcher', 'POST', '/v1/incidents', fire, h);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    const other = await req('dispatcher', 'POST', '/v1/incidents', { ...fire, location: [113, 23] }, h);
    expect(other.statusCode).toBe(422);
    expect(other.json().error.code).toBe('IDEMPOTENCY_MISMATCH');
    expect(engine.calls.at(-1)?.args[1]).toBe('call-0001');
  });

  it('refuses an idempotency key with spaces or over 200 characters', async () => {
    expect(
      (await req('dispatcher', 'POST', '/v1/incidents', fire, { 'idempotency-key': 'a b' })).statusCode,
    ).toBe(400);
    const long = 'k'.repeat(201);
    expect(
      (await req('dispatcher', 'POST', '/v1/incidents', fire, { 'idempotency-key': long })).statusCode,
    ).toBe(400);
  });
});

describe('error mapping', () => {
  const cases: [unknown, number, string][] = [
    [new CoreError('UNKNOWN_INCIDENT_TYPE', 'type', 'not in the catalogue'), 400, 'UNKNOWN_INCIDENT_TYPE'],
    [new CoreError('INVALID_FIELD', 'location', 'outside the district'), 400, 'INVALID_FIELD'],
    [new StoreError('CONFLICT', 'busy', { reason: 'unit_busy' }), 409, 'UNIT_BUSY'],
    [new StoreError('CONFLICT', 'no', { reason: 'invalid_transition' }), 409, 'INVALID_TRANSITION'],
    [new StoreError('CONFLICT', 'stale', { reason: 'stale' }), 409, 'CONFLICT'],
    [new StoreError('NOT_FOUND', 'gone', { entity: 'incident', id: 'x' }), 404, 'NOT_FOUND'],
    [new StoreError('IDEMPOTENCY_MISMATCH', 'other body'), 422, 'IDEMPOTENCY_MISMATCH'],
    [new StoreError('INVALID', 'bad'), 400, 'INVALID_FIELD'],
    [new ApiError('UNAVAILABLE'), 503, 'UNAVAILABLE'],
    [new Error('db password is hunter2'), 500, 'INTERNAL'],
  ];
  for (const [err, status, code] of cases) {
    it(`${(err as Error).name} ${(err as { code?: string }).code ?? ''} → ${status} ${code}`, async () => {
      engine.failNext('reportIncident', err);
      const res = await req('dispatcher', 'POST', '/v1/incidents', fire);
      expect(res.statusCode).toBe(status);
      expect(res.json().error.code).toBe(code);
      if (status === 500) expect(res.body).not.toContain('hunter2');
    });
  }

  it('CoreError keeps the field path in details', async () => {
    engine.failNext('assign', new CoreError('INVALID_FIELD', 'unitId', 'unit is off duty'));
    const res = await req('dispatcher', 'POST', '/v1/incidents/i1/assign', { unitId: 'UA' });
    expect(res.json().error).toMatchObject({ code: 'INVALID_FIELD', details: { field: 'unitId' } });
  });
});

describe('GET /v1/messages', () => {
  it("replays the caller's own stream after a seq", async () => {
    for (let i = 1; i <= 3; i++) await store.pushMessage('consoles', 'incident:updated', { n: i });
    await store.pushMessage('unit:UA', 'assignment:offer', { a: 1 });
    await store.pushMessage('unit:UB', 'assignment:offer', { b: 1 });
    const c = (await req('dispatcher', 'GET', '/v1/messages?after=1')).json();
    expect(c.recipient).toBe('consoles');
    expect(c.lastSeq).toBe(3);
    expect(c.messages.map((m: { seq: number }) => m.seq)).toEqual([2, 3]);
    expect(c.messages[0]).toMatchObject({ event: 'incident:updated', seq: 2, data: { n: 2 } });
    expect(Math.abs(c.messages[0].at - Date.now())).toBeLessThan(60_000);
    const u = (await req('unitA', 'GET', '/v1/messages?after=0')).json();
    expect(u).toMatchObject({ recipient: 'unit:UA', lastSeq: 1, messages: [{ data: { a: 1 } }] });
    const paged = (await req('planner', 'GET', '/v1/messages?after=0&limit=2')).json();
    expect(paged.messages).toHaveLength(2);
    expect(paged.lastSeq).toBe(3);
  });
});

describe('metrics', () => {
  it('exposes Prometheus text with HTTP counters by route and status and the engine gauges', async () => {
    app.metrics.observeDecision(12, 'optimal');
    app.metrics.setQueueDepthSource(() => ({ decide: 2, timers: 5 }));
    await req('planner', 'GET', '/v1/units');
    await req('unitA', 'GET', '/v1/alerts');
    const res = await req(undefined, 'GET', '/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toMatch(
      /dispatch_http_requests_total\{method="GET",route="\/v1\/units",status="200"\} \d+/,
    );
    expect(res.body).toMatch(
      /dispatch_http_requests_total\{method="GET",route="\/v1\/alerts",status="403"\} \d+/,
    );
    expect(res.body).toContain('dispatch_decision_duration_seconds_count{policy="optimal"} 1');
    expect(res.body).toContain('dispatch_queue_depth{queue="timers"} 5');
    expect(res.body).toContain('dispatch_incidents{status="queued"} 0');
    expect(res.body).toContain('dispatch_connected_units 0');
  });

  it('each app has its own registry', async () => {
    const other = buildApp({ engine, store, auth: { secret } });
    const res = await other.inject({ method: 'GET', url: '/metrics' });
    expect(res.body).not.toContain('route="/v1/units"');
    await other.close();
  });
});

describe('options', () => {
  it('serves a console directory at / and keeps JSON 404s for unknown API routes', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'dispatch-console-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
    const withConsole = buildApp({ engine, store, auth: { secret }, consoleDir: dir });
    const index = await withConsole.inject({ method: 'GET', url: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.body).toContain('<title>console</title>');
    const missing = await withConsole.inject({ method: 'GET', url: '/v1/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('ROUTE_NOT_FOUND');
    await withConsole.close();
  });

  it('an HTTP rate limit answers 429 RATE_LIMITED', async () => {
    const limited = buildApp({
      engine,
      store,
      auth: { secret },
      rateLimit: { max: 3, timeWindowMs: 60_000 },
    });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      codes.push(
        (await limited.inject({ method: 'GET', url: '/v1/units', headers: auth('planner') })).statusCode,
      );
    }
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    const res = await limited.inject({ method: 'GET', url: '/v1/units', headers: auth('planner') });
    expect(res.json().error.code).toBe('RATE_LIMITED');
    await limited.close();
  });

  it('/healthz answers 503 UNAVAILABLE while not ready', async () => {
    let ready = false;
    const a = buildApp({ engine, store, auth: { secret }, ready: () => ready });
    const down = await a.inject({ method: 'GET', url: '/healthz' });
    expect(down.statusCode).toBe(503);
    expect(down.json().error.code).toBe('UNAVAILABLE');
    ready = true;
    expect((await a.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await a.close();
  });

  it('refuses a weak secret at build time', () => {
    expect(() => buildApp({ engine, store, auth: { secret: 'short' } })).toThrow(/32 bytes/);
  });
});
