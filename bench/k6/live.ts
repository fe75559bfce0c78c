// k6: field units over websockets plus incident load, on a running server.
//
//   DISPATCH_JWT_SECRET=$(cat .dispatch/jwt-secret) k6 run bench/k6/live.ts \
//     -e BASE_URL=http://127.0.0.1:3000 -e UNITS=200 -e RATE=50 -e DURATION=30s
//
// setup() registers UNITS units (PUT /v1/units/K6-0001…, admin) spread over the demo district.
// Scenario `units`: one VU per unit holds a socket.io connection. k6 has no socket.io client,
// so the script speaks the wire protocol by hand over k6/ws (engine.io v4 + socket.io v5,
// text frames only):
//   server `0{…}` open        → client `40{"token":…}`  (socket.io CONNECT with the handshake auth)
//   server `40{"sid":…}`      connected;  `44{…}` refused (connect_error)
//   server `2` ping           → client `3` pong
//   server `42<id>["assignment:offer",{seq,at,data}]` → client `43<id>[true]` (delivery ack)
//   client `42<n>["ack",{…}]` → server `43<n>[{"ok":true}]` (the event's reply)
// On each offer the unit accepts, reports its position at the incident, on_scene, then
// available (each step after the previous reply), so units stay free.
// Scenario `incidents`: POST /v1/incidents at RATE per second after a 10 s ramp for connects.
// Metric `offer_latency`: offer arrival at the unit − the incident's reportedAt (the server's
// receipt time) — meaningful when k6 runs on the server's host (one clock).

import { check } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import ws from 'k6/ws';
import { BASE_URL, CAPABILITIES, incident, json, num, token, unitHome } from './lib.ts';

const UNITS = num(__ENV.UNITS, 200);
const RATE = num(__ENV.RATE, 50);
const DURATION = __ENV.DURATION || '30s';
const RAMP_S = 10;
const durationS = (() => {
  const m = /^(\d+)(s|m)?$/.exec(DURATION);
  return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : 30;
})();

export const options: Options = {
  setupTimeout: '300s',
  scenarios: {
    units: {
      executor: 'per-vu-iterations',
      exec: 'unit',
      vus: UNITS,
      iterations: 1,
      maxDuration: `${RAMP_S + durationS + 30}s`,
    },
    incidents: {
      executor: 'constant-arrival-rate',
      exec: 'incidents',
      startTime: `${RAMP_S}s`,
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 4)),
      maxVUs: Math.max(50, RATE * 4),
    },
  },
  thresholds: {
    'http_req_failed{name:POST /v1/incidents}': ['rate<0.01'],
    offer_latency: ['p(99)<2000'],
  },
};

const offers = new Counter('offers_received');
const connectErrors = new Counter('unit_connect_errors');
const offerLatency = new Trend('offer_latency', true);
const replyTime = new Trend('unit_event_reply', true);

/** The part of an `assignment:offer` envelope's data this script reads. */
interface Offer {
  assignment: { id: string };
  incident: { id: string; location: [number, number]; reportedAt: string };
}

const unitId = (i: number) => `K6-${String(i).padStart(4, '0')}`;

export function setup(): { dispatcher: string; run: string } {
  const admin = token('admin');
  for (let from = 1; from <= UNITS; from += 50) {
    const batch = [];
    for (let i = from; i < Math.min(from + 50, UNITS + 1); i++) {
      batch.push({
        method: 'PUT',
        url: `${BASE_URL}/v1/units/${unitId(i)}`,
        body: JSON.stringify({
          department: 'k6',
          capabilities: CAPABILITIES,
          home: unitHome(i),
          speedKmh: 40,
          turnoutS: 60,
        }),
        params: json(admin),
      });
    }
    for (const r of http.batch(batch)) {
      if (r.status !== 200) throw new Error(`PUT unit: ${r.status} ${String(r.body)}`);
    }
  }
  return { dispatcher: token('dispatcher'), run: String(Date.now()) };
}

export function unit(): void {
  const id = unitId(exec.vu.idInTest);
  const url = `${BASE_URL.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
  const auth = token('unit', id);
  const res = ws.connect(url, null, (socket) => {
    let nextAck = 1;
    const pending = new Map<number, { sent: number; then?: () => void }>();
    const emit = (event: string, payload: unknown, then?: () => void) => {
      const n = nextAck++;
      pending.set(n, { sent: Date.now(), then });
      socket.send(`42${n}${JSON.stringify([event, payload])}`);
    };
    socket.on('message', (msg: string) => {
      if (msg === '2') return socket.send('3');
      if (msg.startsWith('0')) return socket.send(`40${JSON.stringify({ token: auth })}`);
      if (msg.startsWith('44')) {
        connectErrors.add(1);
        return socket.close();
      }
      const ack = /^43(\d+)/.exec(msg);
      if (ack) {
        const p = pending.get(Number(ack[1]));
        pending.delete(Number(ack[1]));
        if (p) {
          replyTime.add(Date.now() - p.sent);
          p.then?.();
        }
        return;
      }
      const ev = /^42(\d*)(\[[\s\S]*)$/.exec(msg);
      if (!ev) return;
      if (ev[1]) socket.send(`43${ev[1]}[true]`);
      const [name, env] = JSON.parse(ev[2]) as [string, { data?: Offer }];
      if (name !== 'assignment:offer' || !env?.data) return;
      const { assignment, incident: inc } = env.data;
      offers.add(1);
      offerLatency.add(Date.now() - Date.parse(inc.reportedAt));
      emit('ack', { assignmentId: assignment.id, accept: true }, () =>
        emit('location', { position: inc.location, at: Date.now() }, () =>
          emit('status', { status: 'on_scene', incidentId: inc.id }, () =>
            emit('status', { status: 'available' }),
          ),
        ),
      );
    });
    socket.setTimeout(() => socket.close(), (RAMP_S + durationS + 5) * 1000);
  });
  check(res, { 'websocket upgraded (101)': (r) => r !== null && r.status === 101 });
}

export function incidents(data: { dispatcher: string; run: string }): void {
  const k = exec.scenario.iterationInTest;
  const params = json(data.dispatcher);
  const res = http.post(`${BASE_URL}/v1/incidents`, JSON.stringify(incident(k)), {
    headers: { ...params.headers, 'idempotency-key': `k6-live-${data.run}-${k}` },
    tags: { name: 'POST /v1/incidents' },
  });
  check(res, { 'incident created (201)': (r) => r.status === 201 });
}
