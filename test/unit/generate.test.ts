import { beforeAll, describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/core/catalog.ts';
import { generateScenario, presetBox, profileAt } from '../../src/scenario/generate.ts';
import { Rng, WeightedSampler } from '../../src/scenario/rng.ts';
import type { Scenario } from '../../src/scenario/types.ts';
import { compareIncidents, parseScenario } from '../../src/scenario/validate.ts';

const SOURCES = new Set(['12345', '110', '119', '120', '122', 'sensor', 'dispatcher', 'grid-patrol']);

function localHour(s: Scenario, atS: number): number {
  const base = Number(s.start.slice(11, 13)) + Number(s.start.slice(14, 16)) / 60;
  return (base + atS / 3600) % 24;
}

function checkStructure(s: Scenario): void {
  // Valid by the scenario checker, and already in its canonical order.
  const parsed = parseScenario(JSON.parse(JSON.stringify(s)));
  expect(parsed.incidents.map((i) => i.id)).toEqual(s.incidents.map((i) => i.id));
  const unsorted = s.incidents.filter((inc, i) => i > 0 && compareIncidents(s.incidents[i - 1], inc) >= 0);
  expect(unsorted).toEqual([]);

  const [w, so, e, n] = presetBox(s.name.startsWith('demo') ? 'demo' : 'huangpu');
  const types = new Map(s.catalog.map((t) => [t.type, t]));
  const bad = s.incidents.filter(
    (inc) =>
      !types.has(inc.type) ||
      !(inc.location[0] >= w && inc.location[0] <= e && inc.location[1] >= so && inc.location[1] <= n) ||
      !(inc.atS >= 0 && inc.atS <= s.durationS) ||
      (inc.cancelAtS !== undefined && !(inc.cancelAtS > inc.atS)) ||
      !SOURCES.has(inc.source as string),
  );
  expect(bad).toEqual([]);

  // Areas: sub-districts with duties, cells pointing at them, everything inside the box.
  const subs = s.areas.features.filter((f) => f.properties.parent === undefined);
  const cells = s.areas.features.filter((f) => f.properties.parent !== undefined);
  const subIds = new Set(subs.map((f) => f.properties.id));
  for (const f of subs) expect(f.properties.duties?.length).toBeGreaterThan(0);
  for (const f of cells) expect(subIds.has(f.properties.parent as string)).toBe(true);
  const outside = s.areas.features.filter((f) =>
    (f.geometry.coordinates as [number, number][][]).some((ring) =>
      ring.some(([x, y]) => x < w - 1e-9 || x > e + 1e-9 || y < so - 1e-9 || y > n + 1e-9),
    ),
  );
  expect(outside).toEqual([]);
  // The cells tile the box exactly (rectangles: sum of areas = box area).
  const rectArea = (ring: [number, number][]) =>
    (Math.max(...ring.map((p) => p[0])) - Math.min(...ring.map((p) => p[0]))) *
    (Math.max(...ring.map((p) => p[1])) - Math.min(...ring.map((p) => p[1])));
  const cellArea = cells.reduce((a, f) => a + rectArea(f.geometry.coordinates[0] as [number, number][]), 0);
  const subArea = subs.reduce((a, f) => a + rectArea(f.geometry.coordinates[0] as [number, number][]), 0);
  expect(cellArea).toBeCloseTo((e - w) * (n - so), 8);
  expect(subArea).toBeCloseTo((e - w) * (n - so), 8);

  // Units: at home in their sub-district, every required capability staffed enough for a full package.
  const subRect = new Map(
    subs.map((f) => {
      const r = f.geometry.coordinates[0] as [number, number][];
      return [
        f.properties.id,
        [
          Math.min(...r.map((p) => p[0])),
          Math.min(...r.map((p) => p[1])),
          Math.max(...r.map((p) => p[0])),
          Math.max(...r.map((p) => p[1])),
        ],
      ];
    }),
  );
  const capCount = new Map<string, number>();
  const away = s.units.filter((u) => {
    const r = subRect.get(u.homeArea as string);
    return !r || u.home[0] < r[0] || u.home[0] > r[2] || u.home[1] < r[1] || u.home[1] > r[3];
  });
  expect(away).toEqual([]);
  for (const u of s.units) for (const c of u.capabilities) capCount.set(c, (capCount.get(c) ?? 0) + 1);
  for (const t of s.catalog) {
    for (const [c, k] of Object.entries(t.requires)) expect(capCount.get(c) ?? 0).toBeGreaterThanOrEqual(k);
  }
}

describe('generateScenario: huangpu 24 h', () => {
  let s: Scenario;
  beforeAll(() => {
    s = generateScenario({ preset: 'huangpu', hours: 24, seed: 1 });
  });

  it('has the advertised size', () => {
    expect(s.incidents.length).toBeGreaterThanOrEqual(30_000);
    expect(s.units.length).toBeGreaterThanOrEqual(1_000);
    expect(s.durationS).toBe(86_400);
    const subs = s.areas.features.filter((f) => f.properties.parent === undefined);
    const cells = s.areas.features.length - subs.length;
    expect(subs.length).toBeGreaterThanOrEqual(12);
    expect(cells).toBeGreaterThanOrEqual(200);
    expect(cells).toBeLessThanOrEqual(800);
    expect(subs.map((f) => f.properties.name).join(' ')).toMatch(/黄埔街.*鱼珠街|鱼珠街.*黄埔街/s);
  });

  it('is structurally sound (valid, inside the district, catalogue types, staffed)', () => {
    checkStructure(s);
  });

  it('uses the default catalogue and every type occurs', () => {
    expect(s.catalog).toEqual(defaultCatalog().list);
    const seen = new Set(s.incidents.map((i) => i.type));
    for (const t of s.catalog) expect(seen.has(t.type)).toBe(true);
  });

  it('has every department with plausible speeds and turnouts', () => {
    const byDept = new Map<string, { speeds: number[]; turnouts: number[] }>();
    for (const u of s.units) {
      const d = byDept.get(u.department) ?? { speeds: [], turnouts: [] };
      d.speeds.push(u.speedKmh);
      d.turnouts.push(u.turnoutS);
      byDept.set(u.department, d);
    }
    for (const d of ['fire', 'health', 'police', 'traffic', 'chengguan', 'market', 'environment', 'legal']) {
      expect(byDept.has(d)).toBe(true);
    }
    const range = (d: string, k: 'speeds' | 'turnouts') => [
      Math.min(...byDept.get(d)![k]),
      Math.max(...byDept.get(d)![k]),
    ];
    expect(range('fire', 'speeds')[0]).toBeGreaterThanOrEqual(40);
    expect(range('fire', 'speeds')[1]).toBeLessThanOrEqual(50);
    expect(range('fire', 'turnouts')[0]).toBeGreaterThanOrEqual(60);
    expect(range('fire', 'turnouts')[1]).toBeLessThanOrEqual(90);
    expect(range('health', 'speeds')).toEqual([45, 45]);
    expect(range('police', 'turnouts')).toEqual([30, 30]);
    expect(range('chengguan', 'speeds')[0]).toBeGreaterThanOrEqual(15);
    expect(range('chengguan', 'speeds')[1]).toBeLessThanOrEqual(20);
    expect(range('market', 'turnouts')[0]).toBeGreaterThanOrEqual(120);
    expect(range('market', 'turnouts')[1]).toBeLessThanOrEqual(300);
  });

  it('follows the time-of-day profiles: night low, collisions at rush hour, noise at night', () => {
    const count = (pred: (h: number, type: string) => boolean) =>
      s.incidents.filter((i) => pred(localHour(s, i.atS), i.type)).length;
    const at = (h0: number, h1: number) => (h: number) => h >= h0 && h < h1;
    expect(count((h) => at(3, 5)(h))).toBeLessThan(count((h) => at(9, 11)(h)) / 3);
    expect(count((h, t) => at(7.5, 9.5)(h) && t === 'traffic-collision')).toBeGreaterThan(
      1.25 * count((h, t) => at(12, 14)(h) && t === 'traffic-collision'),
    );
    expect(count((h, t) => (h >= 22 || h < 1) && t === 'noise-complaint')).toBeGreaterThan(
      3 * count((h, t) => at(9, 12)(h) && t === 'noise-complaint'),
    );
    expect(count((h, t) => at(9, 12)(h) && t === 'food-safety')).toBeGreaterThan(
      5 * count((h, t) => at(1, 4)(h) && t === 'food-safety'),
    );
  });

  it('concentrates incidents around hotspots (old town vs the northern towns)', () => {
    const inBox = (x0: number, y0: number, x1: number, y1: number) =>
      s.incidents.filter(
        (i) => i.location[0] >= x0 && i.location[0] < x1 && i.location[1] >= y0 && i.location[1] < y1,
      ).length;
    // Same-size boxes: around the old town by Huangpu port vs. the far north-east.
    expect(inBox(113.44, 23.07, 113.47, 23.1)).toBeGreaterThan(4 * inBox(113.56, 23.31, 113.59, 23.34));
  });

  it('draws on-scene times around the preset share of the typical time, some cancellations, a mix of sources', () => {
    // The Huangpu preset models short visits: half the catalogue's typical on-scene time.
    const scale = 0.5;
    const types = new Map(s.catalog.map((t) => [t.type, t]));
    const ratios = s.incidents.map(
      (i) => (i.onSceneS as number) / ((types.get(i.type)?.onSceneS as number) * scale),
    );
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    expect(mean).toBeGreaterThan(0.9);
    expect(mean).toBeLessThan(1.1);
    expect(Math.min(...ratios)).toBeGreaterThanOrEqual(0.25 - 1e-3);
    const low = s.incidents.filter(
      (i) => !types.get(i.type)?.immediate && (types.get(i.type)?.priority ?? 0) >= 3,
    );
    const cancelled = low.filter((i) => i.cancelAtS !== undefined).length / low.length;
    expect(cancelled).toBeGreaterThan(0.02);
    expect(cancelled).toBeLessThan(0.07);
    const sources = new Set(s.incidents.map((i) => i.source));
    for (const src of ['12345', '110', '119', '120', 'sensor', 'dispatcher'])
      expect(sources.has(src)).toBe(true);
  });
});

describe('generateScenario: determinism', () => {
  it('same options ⇒ byte-identical JSON', () => {
    const opts = { preset: 'huangpu' as const, hours: 3, seed: 42, surge: { startH: 1, hours: 1 } };
    expect(JSON.stringify(generateScenario(opts))).toBe(JSON.stringify(generateScenario({ ...opts })));
    expect(JSON.stringify(generateScenario({ preset: 'demo', hours: 2, seed: 7 }))).toBe(
      JSON.stringify(generateScenario({ preset: 'demo', hours: 2, seed: 7 })),
    );
  });

  it('another seed is another day in the same district', () => {
    const a = generateScenario({ preset: 'demo', hours: 2, seed: 1 });
    const b = generateScenario({ preset: 'demo', hours: 2, seed: 2 });
    expect(b.areas).toEqual(a.areas);
    expect(b.units).toEqual(a.units);
    expect(JSON.stringify(b.incidents)).not.toBe(JSON.stringify(a.incidents));
  });

  it('a longer scenario keeps the arrivals of a shorter one (only ids are renumbered)', () => {
    const a = generateScenario({ preset: 'demo', hours: 2, seed: 3 });
    const b = generateScenario({ preset: 'demo', hours: 4, seed: 3 });
    const strip = (s: Scenario) =>
      s.incidents.filter((i) => i.atS < 7200).map(({ id: _id, ...rest }) => rest);
    expect(strip(b)).toEqual(strip(a));
  });
});

describe('generateScenario: demo', () => {
  const s = generateScenario({ preset: 'demo', hours: 2, seed: 7 });

  it('is small: 2–3 sub-districts, ~40 units, ~150 incidents', () => {
    const subs = s.areas.features.filter((f) => f.properties.parent === undefined);
    expect(subs.length).toBeGreaterThanOrEqual(2);
    expect(subs.length).toBeLessThanOrEqual(3);
    expect(s.units.length).toBeGreaterThanOrEqual(35);
    expect(s.units.length).toBeLessThanOrEqual(45);
    expect(s.incidents.length).toBeGreaterThanOrEqual(100);
    expect(s.incidents.length).toBeLessThanOrEqual(200);
    expect(s.durationS).toBe(7200);
  });

  it('is structurally sound', () => {
    checkStructure(s);
  });
});

describe('generateScenario: surge', () => {
  const opts = { preset: 'huangpu' as const, hours: 6, seed: 5, incidentsPerDay: 6000, unitsScale: 0.3 };
  const base = generateScenario(opts);
  const surge = generateScenario({ ...opts, surge: { startH: 2, hours: 3 } });
  const inWindow = (s: Scenario, t0: number, t1: number, pred: (type: string) => boolean = () => true) =>
    s.incidents.filter((i) => i.atS >= t0 && i.atS < t1 && pred(i.type)).length;

  it('raises the arrival rate inside its window', () => {
    const w0 = 2.5 * 3600;
    const w1 = 4.5 * 3600;
    expect(inWindow(surge, w0, w1)).toBeGreaterThan(1.4 * inWindow(base, w0, w1));
    const collisions = (t: string) => t.startsWith('traffic-collision');
    expect(inWindow(surge, w0, w1, collisions)).toBeGreaterThan(3 * inWindow(base, w0, w1, collisions));
    expect(inWindow(surge, w0, w1, (t) => t === 'urban-waterlogging')).toBeGreaterThan(
      5 *
        Math.max(
          1,
          inWindow(base, w0, w1, (t) => t === 'urban-waterlogging'),
        ),
    );
  });

  it('leaves the hours before the surge alone', () => {
    expect(inWindow(surge, 0, 2 * 3600)).toBe(inWindow(base, 0, 2 * 3600));
  });

  it('scales units down with unitsScale', () => {
    const full = generateScenario({ preset: 'huangpu', hours: 1, seed: 5, incidentsPerDay: 0 });
    expect(full.incidents).toEqual([]);
    expect(base.units.length).toBeLessThan(full.units.length * 0.4);
    expect(base.units.length).toBeGreaterThan(full.units.length * 0.25);
    checkStructure(surge);
  });

  it('surge: true is a typhoon evening in local time', () => {
    const s = generateScenario({ preset: 'huangpu', hours: 24, seed: 2, incidentsPerDay: 4000, surge: true });
    const evening = s.incidents.filter(
      (i) => localHour(s, i.atS) >= 17.5 && localHour(s, i.atS) < 19.5,
    ).length;
    const b = generateScenario({ preset: 'huangpu', hours: 24, seed: 2, incidentsPerDay: 4000 });
    const eveningBase = b.incidents.filter(
      (i) => localHour(b, i.atS) >= 17.5 && localHour(b, i.atS) < 19.5,
    ).length;
    expect(evening).toBeGreaterThan(1.3 * eveningBase);
    expect(s.name).toContain('surge');
  });
});

describe('generateScenario: options', () => {
  it('refuses bad options with RangeError', () => {
    expect(() => generateScenario({ preset: 'nope' as 'demo', hours: 1, seed: 1 })).toThrow(RangeError);
    expect(() => generateScenario({ preset: 'demo', hours: 0, seed: 1 })).toThrow(/hours/);
    expect(() => generateScenario({ preset: 'demo', hours: 1, seed: 1.5 })).toThrow(/seed/);
    expect(() => generateScenario({ preset: 'demo', hours: 1, seed: 1, unitsScale: 0 })).toThrow(
      /unitsScale/,
    );
    expect(() => generateScenario({ preset: 'demo', hours: 1, seed: 1, start: '2026-01-01' })).toThrow(
      /start/,
    );
    expect(() =>
      generateScenario({ preset: 'demo', hours: 2, seed: 1, surge: { startH: 3, hours: 1 } }),
    ).toThrow(/surge/);
  });

  it('honours start and name', () => {
    const s = generateScenario({
      preset: 'demo',
      hours: 1,
      seed: 1,
      start: '2026-07-01T20:00:00+08:00',
      name: 'x',
    });
    expect(s.start).toBe('2026-07-01T20:00:00+08:00');
    expect(s.name).toBe('x');
  });
});

describe('rng', () => {
  it('is deterministic and roughly uniform', () => {
    const a = new Rng(1);
    const b = new Rng(1);
    const xs = Array.from({ length: 10_000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 10_000 }, () => b.next()));
    const mean = xs.reduce((x, y) => x + y, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
    expect(new Rng(2).next()).not.toBe(new Rng(1).next());
  });

  it('draws Poisson counts with the right mean in both regimes', () => {
    const r = new Rng(9);
    for (const lambda of [0.5, 4, 29, 31, 200, 5000]) {
      const n = 4000;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += r.poisson(lambda);
      const mean = sum / n;
      expect(Math.abs(mean - lambda)).toBeLessThan(5 * Math.sqrt(lambda / n) + 1e-9);
    }
    expect(r.poisson(0)).toBe(0);
  });

  it('normal, exponential, weighted choice and shuffle behave', () => {
    const r = new Rng(11);
    const ns = Array.from({ length: 20_000 }, () => r.normal(5, 2));
    const m = ns.reduce((a, b) => a + b, 0) / ns.length;
    const sd = Math.sqrt(ns.reduce((a, b) => a + (b - m) ** 2, 0) / ns.length);
    expect(m).toBeCloseTo(5, 1);
    expect(sd).toBeCloseTo(2, 1);
    const ex = Array.from({ length: 20_000 }, () => r.exponential(0.5));
    expect(ex.reduce((a, b) => a + b, 0) / ex.length).toBeCloseTo(2, 0);
    const counts = [0, 0, 0];
    const sampler = new WeightedSampler([1, 0, 3]);
    for (let i = 0; i < 8000; i++) counts[sampler.sample(r)]++;
    expect(counts[1]).toBe(0);
    expect(counts[2] / counts[0]).toBeGreaterThan(2.6);
    expect(counts[2] / counts[0]).toBeLessThan(3.4);
    expect(r.weightedIndex([0, 0, 5])).toBe(2);
    const sh = r.shuffle([1, 2, 3, 4, 5]);
    expect([...sh].sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('profiles average to 1 over the day', () => {
    for (const p of ['general', 'rush', 'daytime', 'market', 'night', 'evening', 'fire'] as const) {
      let sum = 0;
      for (let i = 0; i < 2400; i++) sum += profileAt(p, i / 100);
      expect(sum / 2400).toBeCloseTo(1, 2);
    }
  });
});
