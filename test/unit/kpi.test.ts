import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/core/catalog.ts';
import { computeKpis, type KpiEvent } from '../../src/kpi/compute.ts';
import { computeSeries } from '../../src/kpi/series.ts';
import { mean, percentile, round } from '../../src/kpi/stats.ts';

const catalog = buildCatalog([
  {
    type: 'fire',
    priority: 1,
    immediate: true,
    targetS: 600,
    requires: { 'fire-engine': 2 },
    onSceneS: 1000,
  },
  { type: 'noise', priority: 4, immediate: false, targetS: 3600, requires: { police: 1 }, onSceneS: 600 },
  { type: 'unused', priority: 3, immediate: false, targetS: 900, requires: { police: 1 }, onSceneS: 600 },
]);

/** A hand-built log: A (fire) on time, B (noise) late, C cancelled, D (fire) unserved. */
function log(offset = 0): KpiEvent[] {
  const ev = (t: number, kind: string, extra: Partial<KpiEvent> = {}): KpiEvent => ({
    t: t + offset,
    kind,
    ...extra,
  });
  return [
    ev(0, 'reported', { incidentId: 'A', type: 'fire', priority: 1 }),
    ev(0, 'decision'),
    ev(0, 'assigned', { incidentId: 'A', unitId: 'E1' }),
    ev(0, 'assigned', { incidentId: 'A', unitId: 'E2' }),
    ev(0, 'en_route', { incidentId: 'A', unitId: 'E1' }),
    ev(0, 'en_route', { incidentId: 'A', unitId: 'E2' }),
    ev(100, 'reported', { incidentId: 'B', type: 'noise', priority: 4 }),
    ev(100, 'decision'),
    ev(100, 'assigned', { incidentId: 'B', unitId: 'P1' }),
    ev(150, 'declined', { incidentId: 'B', unitId: 'P1' }),
    ev(200, 'reported', { incidentId: 'C', type: 'noise', priority: 4 }),
    ev(250, 'cancelled', { incidentId: 'C' }),
    ev(300, 'on_scene', { incidentId: 'A', unitId: 'E1' }),
    ev(400, 'on_scene', { incidentId: 'A', unitId: 'E2' }),
    ev(500, 'reported', { incidentId: 'D', type: 'fire', priority: 1 }),
    ev(1300, 'cleared', { incidentId: 'A', unitId: 'E1' }),
    ev(1300, 'cleared', { incidentId: 'A', unitId: 'E2' }),
    ev(1300, 'resolved', { incidentId: 'A' }),
    ev(3000, 'assigned', { incidentId: 'B', unitId: 'P2' }),
    ev(4000, 'on_scene', { incidentId: 'B', unitId: 'P2' }),
    ev(4600, 'cleared', { incidentId: 'B', unitId: 'P2' }),
    ev(4600, 'resolved', { incidentId: 'B' }),
    ev(5000, 'unserved', { incidentId: 'D' }),
  ];
}

describe('stats', () => {
  it('nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5], 90)).toBe(5);
    expect(percentile([4, 1, 3, 2], 50)).toBe(2); // ceil(0.5·4) = 2nd
    expect(percentile([4, 1, 3, 2], 51)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBe(9);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 91)).toBe(10);
    expect(percentile([3, 1, 2], 0)).toBe(1);
    expect(percentile([3, 1, 2], 100)).toBe(3);
    expect(mean([])).toBeNull();
    expect(mean([1, 2])).toBe(1.5);
    expect(round(-0.00001, 2)).toBe(0);
    expect(round(null, 1)).toBeNull();
  });
});

describe('computeKpis', () => {
  const opts = { durationS: 5000, unitCount: 4 };

  it('counts, response percentiles, priority weighting, on-time shares', () => {
    const k = computeKpis(log(), catalog, opts);
    expect(k.incidents).toEqual({ total: 4, served: 2, unserved: 1, cancelled: 1, open: 0 });
    // responses: A 300 (first of its two units), B 3900
    expect(k.responseS).toEqual({ p50: 300, p90: 3900, mean: 2100 });
    // (8·300 + 1·3900) / 9
    expect(k.priorityWeightedMeanResponseS).toBe(700);
    expect(Object.keys(k.byType)).toEqual(['fire', 'noise']);
    // fire: A on time, D unserved (late) → 50 %
    expect(k.byType.fire).toEqual({ count: 2, served: 1, p50: 300, p90: 300, onTimePct: 50 });
    // noise: B late (3900 > 3600), C cancelled (left out) → 0 %
    expect(k.byType.noise).toEqual({ count: 2, served: 1, p50: 3900, p90: 3900, onTimePct: 0 });
    expect(k.immediate).toEqual({ count: 2, served: 1, p50: 300, p90: 300, onTimePct: 50 });
    expect(k.solver).toEqual({ calls: 2 });
    expect(k.wallMs).toBeUndefined();
  });

  it('utilisation: busy from assigned to cleared/declined, over units × duration', () => {
    // E1 0–1300, E2 0–1300, P1 100–150, P2 3000–4600 → 4250 of 4 × 5000
    const k = computeKpis(log(), catalog, opts);
    expect(k.units).toEqual({ count: 4, utilisationPct: 21.25 });
    // clipped to the period
    const short = computeKpis(log(), catalog, { durationS: 1000, unitCount: 4 });
    expect(short.units.utilisationPct).toBe(round((100 * (1000 + 1000 + 50)) / 4000, 2));
  });

  it('a pre-emption keeps the unit busy; an open incident is neither served nor unserved', () => {
    const events: KpiEvent[] = [
      { t: 0, kind: 'reported', incidentId: 'X', type: 'noise', priority: 4 },
      { t: 0, kind: 'assigned', incidentId: 'X', unitId: 'P1' },
      { t: 50, kind: 'reported', incidentId: 'Y', type: 'fire', priority: 1 },
      { t: 50, kind: 'preempted', incidentId: 'X', unitId: 'P1' },
      { t: 50, kind: 'assigned', incidentId: 'Y', unitId: 'P1' },
      { t: 200, kind: 'on_scene', incidentId: 'Y', unitId: 'P1' },
    ];
    const k = computeKpis(events, catalog, { durationS: 400, unitCount: 1 });
    expect(k.units.utilisationPct).toBe(100);
    expect(k.incidents).toEqual({ total: 2, served: 1, unserved: 0, cancelled: 0, open: 1 });
    expect(k.responseS.p50).toBe(150);
  });

  it('epoch-second clocks give the same figures', () => {
    const epoch = 1_772_380_800; // 2026-03-02T00:00:00+08:00
    expect(computeKpis(log(epoch), catalog, { ...opts, startT: epoch })).toEqual(
      computeKpis(log(), catalog, opts),
    );
  });

  it('wall-clock figures only when timing is given', () => {
    const k = computeKpis(log(), catalog, { ...opts, timing: { solverMs: [1, 2, 3, 40], wallMs: 1234.4 } });
    expect(k.solver).toEqual({ calls: 2, p50Ms: 2, p99Ms: 40 });
    expect(k.wallMs).toBe(1234);
  });

  it('empty logs give nulls, not NaN', () => {
    const k = computeKpis([], catalog, opts);
    expect(k.responseS).toEqual({ p50: null, p90: null, mean: null });
    expect(k.priorityWeightedMeanResponseS).toBeNull();
    expect(k.immediate.onTimePct).toBeNull();
    expect(k.byType).toEqual({});
    expect(JSON.stringify(k)).not.toContain('NaN');
  });
});

describe('computeSeries', () => {
  it('time-weighted busy units and waiting incidents per bucket', () => {
    const s = computeSeries(log(), catalog, { durationS: 5000, unitCount: 4, bucketS: 1000 });
    expect(s.t).toEqual([0, 1000, 2000, 3000, 4000]);
    // busy: bucket 0: E1 1000 + E2 1000 + P1 50 → 2.05; bucket 1: 300 + 300 → 0.6; bucket 3: P2 1000; bucket 4: 600
    expect(s.busyUnits).toEqual([2.05, 0.6, 0, 1, 0.6]);
    expect(s.utilisationPct).toEqual([51.25, 15, 0, 25, 15]);
    // waiting: B 100–100 (assigned at once), 150–3000; C 200–250; D 500–5000 (unserved)
    expect(s.waiting).toEqual([0.85 + 0.05 + 0.5, 2, 2, 1, 1]);
    expect(s.responses).toEqual([300, 3900]);
    expect(s.responsesByType).toEqual({ fire: [300], noise: [3900] });
  });
});
