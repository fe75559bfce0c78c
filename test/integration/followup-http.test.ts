// The appraisal and follow-up HTTP surface on the live engine (memory store, the demo district):
// bad input answers 4xx with a stable code (unknown groupBy, inverted or unbounded window,
// a callback that is not HTTPS or points at a private address), the figures as JSON, CSV and a
// printable report, the duties lists and how incidents are routed by them, and the dead-letter
// list a dispatcher sees and retries from.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/cli/commands/replay.ts';
import { scenarioContext, seedUnits } from '../../src/engine/factory.ts';
import type { LiveKpis } from '../../src/engine/kpis.ts';
import { type App, buildApp } from '../../src/server/app.ts';
import { mintToken } from '../../src/server/auth.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { DISPATCHER, type Stack, stack, unit } from './followup-harness.ts';

const SECRET = 'followup-http-jwt-secret-0123456789abcdef';
const scenario = loadScenario('scenarios/demo.json');
const T0 = Date.parse(scenario.start) / 1000;
const iso = (s: number) => new Date(s * 1000).toISOString();
const WINDOW = `from=${encodeURIComponent(iso(T0 - 60))}&to=${encodeURIComponent(iso(T0 + 7200))}`;

let st: Stack;
let app: App;
let bare: App;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  // Production callback rules: https only, no private addresses.
  st = await stack({
    store: new MemoryStore(),
    t0: T0,
    context: scenarioContext(scenario),
    config: { callbackAllowHttp: false, callbackAllowPrivate: false },
  });
  await seedUnits(st.engine, scenario.units);
  await st.settle();
  app = buildApp({ engine: st.engine, store: st.store, auth: { secret: SECRET }, followUp: st.followUp });
  bare = buildApp({ engine: st.engine, store: st.store, auth: { secret: SECRET } });
  tokens.dispatcher = await mintToken({ role: 'dispatcher', sub: 'd.li' }, SECRET);
  tokens.planner = await mintToken({ role: 'planner', sub: 'p.wu' }, SECRET);
  tokens.unit = await mintToken({ role: 'unit', unitId: 'POL-001' }, SECRET);
});

afterAll(async () => {
  await app?.close();
  await bare?.close();
  await st?.stop();
});

function call(token: string, method: 'GET' | 'POST', url: string, payload?: unknown, on = app) {
  return on.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
    ...(payload ? { payload: JSON.stringify(payload) } : {}),
  });
}

async function expectError(
  res: Promise<{ statusCode: number; json(): { error: { code: string } } }>,
  status: number,
  code: string,
) {
  const r = await res;
  expect([r.statusCode, r.json().error.code]).toEqual([status, code]);
}

describe('bad input: 4xx with a stable code', () => {
  it('an unknown groupBy', async () => {
    await expectError(
      call(tokens.planner, 'GET', `/v1/kpis?${WINDOW}&groupBy=weather`),
      400,
      'VALIDATION_FAILED',
    );
    await expectError(
      call(tokens.planner, 'GET', `/v1/kpis/export.csv?${WINDOW}&groupBy=shift`),
      400,
      'VALIDATION_FAILED',
    );
    // The engine refuses it too, for callers that skip the HTTP schema.
    await expect(st.engine.kpis({ groupBy: 'weather' as never }, DISPATCHER)).rejects.toMatchObject({
      code: 'INVALID_FIELD',
    });
  });

  it('an inverted or empty window', async () => {
    const inverted = `from=${encodeURIComponent(iso(T0 + 3600))}&to=${encodeURIComponent(iso(T0))}`;
    const empty = `from=${encodeURIComponent(iso(T0))}&to=${encodeURIComponent(iso(T0))}`;
    await expectError(call(tokens.planner, 'GET', `/v1/kpis?${inverted}`), 400, 'INVALID_TIME_WINDOW');
    await expectError(call(tokens.planner, 'GET', `/v1/kpis?${empty}`), 400, 'INVALID_TIME_WINDOW');
    await expectError(
      call(tokens.planner, 'GET', `/v1/kpis/export.csv?${inverted}`),
      400,
      'INVALID_TIME_WINDOW',
    );
    await expectError(
      call(tokens.planner, 'GET', `/v1/kpis/report.html?${inverted}`),
      400,
      'INVALID_TIME_WINDOW',
    );
    await expect(st.engine.kpis({ from: iso(T0 + 60), to: iso(T0) }, DISPATCHER)).rejects.toMatchObject({
      code: 'INVALID_TIME_WINDOW',
    });
  });

  it('an unbounded window: an end without a start, or longer than 31 days', async () => {
    await expectError(
      call(tokens.planner, 'GET', `/v1/kpis?to=${encodeURIComponent(iso(T0))}`),
      400,
      'TIME_WINDOW_UNBOUNDED',
    );
    const long = `from=${encodeURIComponent(iso(T0 - 40 * 86_400))}&to=${encodeURIComponent(iso(T0))}`;
    await expectError(call(tokens.planner, 'GET', `/v1/kpis?${long}`), 400, 'TIME_WINDOW_UNBOUNDED');
    await expectError(
      call(tokens.planner, 'GET', `/v1/kpis/report.html?${long}`),
      400,
      'TIME_WINDOW_UNBOUNDED',
    );
    await expectError(call(tokens.planner, 'GET', '/v1/kpis?from=yesterday'), 400, 'VALIDATION_FAILED');
  });

  it('a callback that is not HTTPS, or points at a loopback, private or local address', async () => {
    let n = 0;
    const post = (callback: string) => {
      n++;
      return call(tokens.dispatcher, 'POST', '/v1/incidents', {
        type: 'noise-complaint',
        // 500 m apart: never merged into one another as duplicates
        location: [113.44 + n * 0.005, 23.08],
        callback,
      });
    };
    await expectError(post('http://hooks.example.com/r'), 400, 'CALLBACK_NOT_HTTPS');
    await expectError(post('ftp://hooks.example.com/r'), 400, 'CALLBACK_NOT_HTTPS');
    for (const u of [
      'https://127.0.0.1/r',
      'https://192.168.0.10/r',
      'https://[::1]/r',
      'https://localhost/r',
      'https://169.254.169.254/',
    ]) {
      await expectError(post(u), 400, 'CALLBACK_PRIVATE_ADDRESS');
    }
    const ok = await post('https://hooks.example.com/r/1');
    expect(ok.statusCode, ok.body).toBe(201);
    const ref = await post('+86 20 1234 5678');
    expect(ref.statusCode).toBe(201);
  });

  it('the review and webhook routes answer 503 where no follow-up side runs', async () => {
    await expectError(call(tokens.dispatcher, 'GET', '/v1/reviews', undefined, bare), 503, 'UNAVAILABLE');
    await expectError(
      call(tokens.dispatcher, 'GET', '/v1/webhooks/deliveries', undefined, bare),
      503,
      'UNAVAILABLE',
    );
  });
});

describe('figures, exports and duties lists', () => {
  it('routes incidents by the duties lists and counts the district level', async () => {
    const duties = await call(tokens.planner, 'GET', '/v1/duties');
    expect(duties.statusCode).toBe(200);
    const d = duties.json();
    expect(d.areas.map((a: { area: string }) => a.area)).toEqual(['yuzhu', 'huangpu', 'dasha']);
    expect(d.areas[0].types).toContain('street-vending');
    expect(d.immediate).toContain('structure-fire');
    expect(d.districtLevel).toContain('noise-complaint');
    expect(d.districtLevel).not.toContain('street-vending');
    expect((await call(tokens.unit, 'GET', '/v1/duties')).statusCode).toBe(403);
  });

  it('the same figures as JSON, CSV and a printable report', async () => {
    // A street-vending report (on the sub-district lists) and a noise complaint (on none).
    const v = await st.engine.reportIncident(
      { type: 'street-vending', location: [113.455, 23.1] },
      undefined,
      DISPATCHER,
    );
    const n = await st.engine.reportIncident(
      { type: 'noise-complaint', location: [113.47, 23.105] },
      undefined,
      DISPATCHER,
    );
    for (const inc of [v.incident, n.incident]) {
      const o = st.pub
        .for('consoles', 'assignment:created')
        .map((m) => m.envelope.data as { id: string; unitId: string; incidentId: string })
        .find((a) => a.incidentId === inc.id);
      const offer =
        o ??
        (await (async () => {
          await st.settle();
          return st.pub
            .for('consoles', 'assignment:created')
            .map((m) => m.envelope.data as { id: string; unitId: string; incidentId: string })
            .find((a) => a.incidentId === inc.id)!;
        })());
      await st.engine.acknowledge(offer.id, true, unit(offer.unitId));
      await st.engine.reportStatus(offer.unitId, 'en_route', unit(offer.unitId));
    }
    st.clock.advance(600);
    await st.settle();

    const json = await call(tokens.planner, 'GET', `/v1/kpis?${WINDOW}&groupBy=department`);
    expect(json.statusCode).toBe(200);
    const k = json.json() as LiveKpis;
    expect(k.figures.incidents).toBeGreaterThanOrEqual(2);
    expect(k.figures.routing.area).toBeGreaterThanOrEqual(1);
    expect(k.figures.routing.district).toBeGreaterThanOrEqual(1);
    expect(Object.keys(k.groups!)).toEqual(expect.arrayContaining(['chengguan', 'police']));

    const csv = await call(tokens.planner, 'GET', `/v1/kpis/export.csv?${WINDOW}&groupBy=department`);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toMatch(/^attachment; filename="kpis_.*_department\.csv"$/);
    const rows = csv.body
      .trimEnd()
      .split('\r\n')
      .map((l) => l.split(','));
    expect(rows[0].slice(0, 3)).toEqual(['group', 'incidents', 'processing_n']);
    const all = rows.find((r) => r[0] === 'ALL')!;
    expect(Number(all[1])).toBe(k.figures.incidents);
    const police = rows.find((r) => r[0] === 'police')!;
    expect(Number(police[1])).toBe(k.groups!.police.incidents);

    const html = await call(tokens.dispatcher, 'GET', `/v1/kpis/report.html?${WINDOW}`);
    expect(html.statusCode).toBe(200);
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.body).toContain('Response segments per department');
    expect(html.body).toContain('On time per incident type, week by week');
    expect(html.body).not.toMatch(/<script/);
    expect((await call(tokens.unit, 'GET', `/v1/kpis/report.html?${WINDOW}`)).statusCode).toBe(403);

    // The routing recorded on the incidents.
    const routed = (id: string) => st.store.getIncident(id).then((x) => x?.payload.duty);
    expect(await routed(v.incident.id)).toMatchObject({ level: 'area' });
    expect(await routed(n.incident.id)).toEqual({ level: 'district', owner: 'district', why: 'on_no_list' });
  });
});

describe('the dead-letter list', () => {
  it('a dispatcher sees dead deliveries and sends one again', async () => {
    const side = st.followUp.side;
    await side.addDeliveries([
      {
        incidentId: 'inc_dead',
        seq: 1,
        status: 'received',
        url: 'https://hooks.example.com/r?token=abc',
        origin: 'https://hooks.example.com',
        body: '{}',
        idempotencyKey: 'inc_dead:1',
        createdAt: st.clock.now(),
      },
    ]);
    const d = (await side.claimDueDeliveries(st.clock.now(), st.clock.now() + 60, 100)).find(
      (x) => x.incidentId === 'inc_dead',
    )!;
    await side.finishDelivery(d.id, {
      state: 'dead',
      at: st.clock.now(),
      error: 'HTTP 410',
      httpStatus: 410,
    });

    const list = await call(tokens.dispatcher, 'GET', '/v1/webhooks/deliveries');
    expect(list.statusCode).toBe(200);
    expect(list.json().deliveries).toEqual([
      expect.objectContaining({
        id: d.id,
        incidentId: 'inc_dead',
        state: 'dead',
        attempts: 1,
        lastError: 'HTTP 410',
        url: 'https://hooks.example.com/r', // the query string (a token, perhaps) is not shown
      }),
    ]);
    expect((await call(tokens.planner, 'GET', '/v1/webhooks/deliveries')).statusCode).toBe(403);
    const retried = await call(tokens.dispatcher, 'POST', `/v1/webhooks/deliveries/${d.id}/retry`);
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ id: d.id, state: 'pending', attempts: 0 });
    await expectError(
      call(tokens.dispatcher, 'POST', `/v1/webhooks/deliveries/${d.id}/retry`),
      409,
      'NOT_DEAD_LETTER',
    );
    await expectError(
      call(tokens.dispatcher, 'POST', '/v1/webhooks/deliveries/999999/retry'),
      404,
      'NOT_FOUND',
    );
    await expectError(
      call(tokens.dispatcher, 'POST', '/v1/webhooks/deliveries/abc/retry'),
      400,
      'VALIDATION_FAILED',
    );
    expect((await call(tokens.dispatcher, 'GET', '/v1/webhooks/deliveries')).json().deliveries).toEqual([]);
  });
});
