// k6: incident-posting load on a running server (HTTP only).
//
//   DISPATCH_JWT_SECRET=$(cat .dispatch/jwt-secret) k6 run bench/k6/incidents.ts \
//     -e BASE_URL=http://127.0.0.1:3000 -e RATE=200 -e DURATION=30s
//
// POST /v1/incidents at a constant arrival rate (open model: k6 starts iterations on schedule
// whatever the answers), each with its own Idempotency-Key. Units must exist and answer for
// incidents to be served — run bench/k6/live.ts for that, or `npm run bench:live`, which also
// measures POST → offer latency. Thresholds: < 1 % failures, POST p99 < 1 s.

import { check } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import type { Options } from 'k6/options';
import { BASE_URL, incident, json, num, token } from './lib.ts';

const RATE = num(__ENV.RATE, 200);

export const options: Options = {
  scenarios: {
    incidents: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 4)),
      maxVUs: Math.max(50, RATE * 4),
    },
  },
  thresholds: {
    'http_req_failed{name:POST /v1/incidents}': ['rate<0.01'],
    'http_req_duration{name:POST /v1/incidents}': ['p(99)<1000'],
  },
};

const created = new Counter('incidents_created');
const merged = new Counter('incidents_merged');

export function setup(): { token: string; run: string } {
  const res = http.get(`${BASE_URL}/healthz`);
  if (res.status !== 200) throw new Error(`${BASE_URL}/healthz answered ${res.status}`);
  return { token: token('dispatcher'), run: String(Date.now()) };
}

export default function (data: { token: string; run: string }): void {
  const k = exec.scenario.iterationInTest;
  const params = json(data.token);
  const res = http.post(`${BASE_URL}/v1/incidents`, JSON.stringify(incident(k)), {
    headers: { ...params.headers, 'idempotency-key': `k6-${data.run}-${k}` },
    tags: { name: 'POST /v1/incidents' },
  });
  if (res.status === 201) created.add(1);
  else if (res.status === 200) merged.add(1);
  check(res, { 'incident created (201)': (r) => r.status === 201 });
}
