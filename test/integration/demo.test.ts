// The live demo end to end: `serve --demo` started in-process (embedded PGlite in a temp data
// dir, in-process queue, a free port), the bundled demo scenario at 100× on its first incidents.
// Everything is checked through the public API: each incident is assigned, its units go on
// scene and clear, it resolves; no unit is flagged on scene far from its incident (so the
// streamed positions brought them there).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeHandle, startServe } from '../../src/cli/commands/serve.ts';
import type { IncidentDetailView } from '../../src/engine/api.ts';
import type { AlertView } from '../../src/shared/events.ts';

const N = 8;
const dir = mkdtempSync(join(tmpdir(), 'dispatch-demo-'));
let serve: ServeHandle;
let token: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${serve.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

beforeAll(async () => {
  serve = await startServe({
    port: 0,
    dataDir: dir,
    demo: join(import.meta.dirname, '../../scenarios/demo.json'),
    speed: 100,
    demoOnce: true,
    demoLimit: N,
    env: { ...process.env, DATABASE_URL: '', REDIS_URL: '', DISPATCH_JWT_SECRET: '' },
    print: () => {},
    logLevel: 'warn',
  });
  token = await serve.token('dispatcher');
}, 240_000);

afterAll(async () => {
  await serve?.close();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('serve --demo', () => {
  it('posts the incidents through the API; simulated units take them to resolution', {
    timeout: 180_000,
  }, async () => {
    const demo = serve.demo!;
    expect(demo).toBeDefined();
    await demo.done;
    expect(demo.stats.failedPosts).toBe(0);
    expect(demo.incidents.size).toBe(N);

    const ids = [...new Set(demo.incidents.values())];
    const deadline = Date.now() + 120_000;
    let details: IncidentDetailView[] = [];
    for (;;) {
      details = await Promise.all(ids.map((id) => api<IncidentDetailView>(`/v1/incidents/${id}`)));
      if (details.every((d) => d.status === 'resolved')) break;
      if (Date.now() > deadline) {
        throw new Error(`not resolved in time: ${details.map((d) => `${d.id}=${d.status}`).join(', ')}`);
      }
      await sleep(250);
    }

    for (const d of details) {
      const kinds = d.timeline.map((e) => `${e.kind}:${String(e.data.to ?? e.data.status ?? '')}`);
      // Every incident went through assigned → on scene → resolved, by the units' own reports.
      expect(
        d.assignments.some((a) => a.status === 'cleared'),
        `${d.id} ${kinds.join(' ')}`,
      ).toBe(true);
      for (const a of d.assignments.filter((x) => x.status === 'cleared')) {
        expect(a.unitId).toMatch(/^[A-Z]+-\d+$/);
      }
      const seen = d.timeline.map((e) => e.kind);
      expect(seen, `${d.id} ${kinds.join(' ')}`).toEqual(
        expect.arrayContaining(['reported', 'assigned', 'en_route', 'on_scene', 'cleared', 'resolved']),
      );
      expect(seen.indexOf('assigned')).toBeLessThan(seen.indexOf('on_scene'));
      expect(seen.indexOf('on_scene')).toBeLessThan(seen.lastIndexOf('resolved'));
    }

    expect(demo.stats.offers).toBeGreaterThanOrEqual(N);
    expect(demo.stats.onScene).toBeGreaterThanOrEqual(N);
    expect(demo.stats.cleared).toBeGreaterThanOrEqual(N);
    const { alerts } = await api<{ alerts: AlertView[] }>('/v1/alerts');
    expect(alerts.filter((a) => a.kind === 'on_scene_far')).toEqual([]);
  });

  it('keys each post by the scenario incident id (a repeat is not a new incident)', async () => {
    const first = serve.demo!.incidents.get('I-000001')!;
    const res = await fetch(`${serve.url}/v1/incidents`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': 'I-000001',
      },
      body: JSON.stringify({
        type: 'illegal-parking',
        location: [113.490206, 23.105096],
        source: '12345',
        description: 'demo demo I-000001',
      }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(first);
  });
});
