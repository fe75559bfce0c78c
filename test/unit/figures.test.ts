// The appraisal figures (src/kpi/figures.ts) on a small hand-made log whose every number is
// worked out below, on both clocks (scenario seconds and epoch seconds), and the mapping of
// the live store's events to the same records.

import { describe, expect, it } from 'vitest';
import { AreaIndex } from '../../src/core/areas.ts';
import { buildCatalog } from '../../src/core/catalog.ts';
import { routeDuty } from '../../src/core/duties.ts';
import type { LonLat } from '../../src/core/types.ts';
import {
  computeFigures,
  type FigureEvent,
  fromSimEvents,
  fromStoredEvents,
  onTimeSeries,
} from '../../src/kpi/figures.ts';
import { figuresCsv, renderFiguresReport } from '../../src/report/kpi-report.ts';
import type { SimEvent } from '../../src/sim/events.ts';
import type { IncidentRecord, StoredEvent } from '../../src/store/store.ts';

const catalog = buildCatalog([
  { type: 'fire', priority: 1, immediate: true, targetS: 480, requires: { 'fire-engine': 1 }, onSceneS: 600 },
  { type: 'noise', priority: 4, immediate: false, targetS: 1800, requires: { police: 1 }, onSceneS: 300 },
  { type: 'vending', priority: 3, immediate: false, targetS: 3600, requires: { police: 1 }, onSceneS: 300 },
]);

const square = (x0: number, y0: number): LonLat[][] => [
  [
    [x0, y0],
    [x0 + 1, y0],
    [x0 + 1, y0 + 1],
    [x0, y0 + 1],
    [x0, y0],
  ],
];
const areas = new AreaIndex({
  type: 'FeatureCollection',
  features: [
    {
      type: 'Feature',
      properties: { id: 'A', name: 'A', duties: ['vending'] },
      geometry: { type: 'Polygon', coordinates: square(0, 0) },
    },
    {
      type: 'Feature',
      properties: { id: 'B', name: 'B', duties: [] },
      geometry: { type: 'Polygon', coordinates: square(1, 0) },
    },
  ],
});
const units = [
  { id: 'P1', department: 'police' },
  { id: 'P2', department: 'police' },
  { id: 'F1', department: 'fire' },
];

const rep = (t: number, id: string, type: string, area: string): FigureEvent => ({
  t,
  kind: 'reported',
  incidentId: id,
  type,
  priority: 1,
  area,
});
const ev = (t: number, kind: string, incidentId: string, unitId: string, reason?: string): FigureEvent => ({
  t,
  kind,
  incidentId,
  unitId,
  ...(reason ? { reason } : {}),
});

/** Six incidents; see the test for what each contributes. */
const LOG: FigureEvent[] = [
  rep(0, 'I1', 'fire', 'A'),
  rep(5, 'I2', 'noise', 'B'),
  ev(10, 'assigned', 'I1', 'F1'),
  ev(15, 'assigned', 'I2', 'P1'),
  ev(20, 'en_route', 'I1', 'F1'),
  rep(30, 'I3', 'vending', 'A'),
  ev(40, 'assigned', 'I3', 'P1'),
  ev(45, 'declined', 'I2', 'P1', 'vehicle fault'),
  rep(50, 'I5', 'noise', 'B'),
  ev(50, 'assigned', 'I2', 'P2'),
  ev(60, 'en_route', 'I2', 'P2'),
  ev(70, 'ack_timeout', 'I3', 'P1'),
  ev(80, 'assigned', 'I3', 'P1'),
  rep(100, 'I4', 'fire', 'A'),
  ev(100, 'preempted', 'I3', 'P1'),
  ev(100, 'assigned', 'I4', 'P1'),
  ev(110, 'en_route', 'I4', 'P1'),
  ev(200, 'on_scene', 'I1', 'F1'),
  ev(300, 'on_scene', 'I4', 'P1'),
  ev(400, 'cleared', 'I4', 'P1'),
  ev(1000, 'cleared', 'I1', 'F1'),
  ev(2000, 'on_scene', 'I2', 'P2'),
  ev(2100, 'cleared', 'I2', 'P2'),
  ev(2200, 'assigned', 'I3', 'P2'),
  ev(2300, 'released', 'I3', 'P2'),
  { t: 2300, kind: 'cancelled', incidentId: 'I3' },
  rep(2900, 'I6', 'noise', 'B'),
];

const base = { catalog, units, areas, startT: 0, durationS: 3600, asOfT: 3000 };

describe('appraisal figures from an event log', () => {
  it('segments, on time, refusals, reassignments, pre-emptions, utilisation and routing over all incidents', () => {
    const f = computeFigures(LOG, base);
    expect(f.all).toEqual({
      incidents: 6,
      segments: {
        // report → first offer: I1 10, I2 10, I3 10, I4 0 (I5, I6 never offered)
        processing: { n: 4, p50: 10, p90: 10 },
        turnout: { n: 3, p50: 10, p90: 10 },
        // en route → on scene: F1 180, P1 190, P2 1940
        travel: { n: 3, p50: 190, p90: 1940 },
        onScene: { n: 3, p50: 100, p90: 800 },
        // report → first on scene: I1 200, I4 200, I2 1995
        response: { n: 3, p50: 200, p90: 1995 },
      },
      // I1, I4 on time; I2 late (1995 > 1800); I5 never reached and past its target by 3000;
      // I3 cancelled and I6 still inside its target are not measured.
      onTime: { measured: 4, onTime: 2, pct: 50 },
      immediate: { incidents: 2, measured: 2, onTime: 2, pct: 100 },
      nonResponses: 1,
      declines: 1,
      declinesByReason: { 'vehicle fault': 1 },
      // I2 after P1's decline; I3 after P1's timeout and after P1's pre-emption. P2's release at
      // the cancellation is followed by no offer.
      reassignments: 3,
      preemptions: 1,
      units: 3,
      // F1 990 + P1 30 + 30 + 20 + 300 + P2 2050 + 100
      busyS: 3520,
      utilisationPct: 32.59,
      // I1, I4 fire (immediate list); I3 vending on A's list; I2, I5, I6 noise on no list.
      routing: { immediate: 2, area: 1, district: 3 },
    });
  });

  it('per unit: each unit’s own offers, arrivals and refusals', () => {
    const f = computeFigures(LOG, { ...base, groupBy: 'unit' });
    expect(Object.keys(f.groups!)).toEqual(['F1', 'P1', 'P2']);
    const p1 = f.groups!.P1;
    expect(p1.incidents).toBe(3);
    expect(p1.segments.processing).toEqual({ n: 3, p50: 10, p90: 10 });
    expect(p1.segments.response).toEqual({ n: 1, p50: 200, p90: 200 });
    expect(p1.onTime).toEqual({ measured: 1, onTime: 1, pct: 100 });
    expect([p1.nonResponses, p1.declines, p1.preemptions, p1.reassignments]).toEqual([1, 1, 1, 3]);
    expect([p1.units, p1.busyS, p1.utilisationPct]).toEqual([1, 380, 10.56]);
    expect(p1.routing).toEqual({ immediate: 1, area: 1, district: 1 });
    const p2 = f.groups!.P2;
    expect(p2.segments.processing).toEqual({ n: 2, p50: 45, p90: 2170 });
    expect(p2.onTime).toEqual({ measured: 1, onTime: 0, pct: 0 });
    expect([p2.reassignments, p2.busyS, p2.utilisationPct]).toEqual([0, 2150, 59.72]);
  });

  it('per department: a department’s first offer and first arrival at each incident', () => {
    const f = computeFigures(LOG, { ...base, groupBy: 'department' });
    const police = f.groups!.police;
    expect(police.incidents).toBe(3);
    expect(police.units).toBe(2);
    expect(police.segments.processing).toEqual({ n: 3, p50: 10, p90: 10 });
    expect(police.segments.response).toEqual({ n: 2, p50: 200, p90: 1995 });
    expect(police.onTime).toMatchObject({ measured: 2, onTime: 1, pct: 50 });
    expect(f.groups!.fire.incidents).toBe(1);
  });

  it('per type and per sub-district: every incident in one group, fleet-wide utilisation share', () => {
    const byType = computeFigures(LOG, { ...base, groupBy: 'type' });
    expect(Object.keys(byType.groups!)).toEqual(['fire', 'noise', 'vending']);
    expect(byType.groups!.noise).toMatchObject({
      incidents: 3,
      onTime: { measured: 2, onTime: 0, pct: 0 },
      declines: 1,
      reassignments: 1,
      units: 3,
    });
    expect(byType.groups!.vending).toMatchObject({
      incidents: 1,
      nonResponses: 1,
      preemptions: 1,
      reassignments: 2,
    });
    const byArea = computeFigures(LOG, { ...base, groupBy: 'area' });
    expect(byArea.groups!.A.incidents + byArea.groups!.B.incidents).toBe(6);
    expect(byArea.groups!.B.routing).toEqual({ immediate: 0, area: 0, district: 3 });
  });

  it('gives the same numbers on the epoch clock as on the scenario clock', () => {
    const T0 = 1_772_409_600; // 2026-03-02T00:00:00Z
    const shifted = LOG.map((e) => ({ ...e, t: Math.round((T0 + e.t + 0.001) * 1000) / 1000 }));
    const ms = LOG.map((e) => ({ ...e, t: e.t + 0.001 }));
    for (const groupBy of [undefined, 'unit', 'department', 'type', 'area'] as const) {
      const a = computeFigures(ms, { ...base, asOfT: 3000.001, ...(groupBy ? { groupBy } : {}) });
      const b = computeFigures(shifted, {
        ...base,
        startT: T0,
        asOfT: T0 + 3000.001,
        ...(groupBy ? { groupBy } : {}),
      });
      expect({ ...b, startT: 0 }).toEqual(a);
    }
  });

  it('takes incidents reported inside the window only, with all their later events', () => {
    const f = computeFigures(LOG, { ...base, startT: 20, durationS: 2000, asOfT: 3000 });
    // I3 (30), I5 (50), I4 (100); I1, I2 before, I6 after.
    expect(f.all.incidents).toBe(3);
    expect(f.all.segments.response).toEqual({ n: 1, p50: 200, p90: 200 });
  });

  it('on time per type per week', () => {
    const DAY = 86_400;
    const log: FigureEvent[] = [
      rep(0, 'W1a', 'fire', 'A'),
      ev(50, 'assigned', 'W1a', 'F1'),
      ev(100, 'on_scene', 'W1a', 'F1'),
      rep(8 * DAY, 'W2a', 'fire', 'A'),
      ev(8 * DAY + 50, 'assigned', 'W2a', 'F1'),
      ev(8 * DAY + 1000, 'on_scene', 'W2a', 'F1'),
      rep(8 * DAY + 10, 'W2b', 'fire', 'A'),
      ev(8 * DAY + 60, 'assigned', 'W2b', 'F2'),
      ev(8 * DAY + 200, 'on_scene', 'W2b', 'F2'),
    ];
    const s = onTimeSeries(log, { catalog, areas, startT: 0, durationS: 14 * DAY, asOfT: 14 * DAY });
    expect(s.t).toEqual([0, 7 * DAY]);
    expect(s.byType).toEqual({ fire: [100, 50] });
    expect(s.immediate).toEqual([100, 50]);
  });
});

describe('replay records and stored events map to the same figure events', () => {
  it('keeps what the figures read from a replay log', () => {
    const sim: SimEvent[] = [
      {
        t: 0,
        kind: 'reported',
        incidentId: 'I1',
        type: 'fire',
        priority: 1,
        location: [0.5, 0.5],
        area: 'A',
        cell: 'c',
      },
      {
        t: 1,
        kind: 'decision',
        rows: 1,
        units: 1,
        assignments: 1,
        preemptions: 0,
        unserved: 0,
        work: 1,
        exact: true,
      },
      {
        t: 1,
        kind: 'assigned',
        incidentId: 'I1',
        unitId: 'F1',
        capability: 'fire-engine',
        etaS: 60,
        lateS: 0,
        crossesJurisdiction: false,
        summary: '',
        alternatives: [],
      },
      { t: 2, kind: 'declined', incidentId: 'I1', unitId: 'F1', reason: 'vehicle fault' },
      { t: 3, kind: 'returned', unitId: 'F1', position: [0, 0] },
    ];
    expect(fromSimEvents(sim)).toEqual([
      { t: 0, kind: 'reported', incidentId: 'I1', type: 'fire', priority: 1, area: 'A', cell: 'c' },
      { t: 1, kind: 'assigned', incidentId: 'I1', unitId: 'F1' },
      { t: 2, kind: 'declined', incidentId: 'I1', unitId: 'F1', reason: 'vehicle fault' },
    ]);
  });

  it('drops incident-status events, keeps unit events, takes area and duty from the incident', () => {
    const stored = (id: number, kind: string, at: number, extra: Partial<StoredEvent> = {}): StoredEvent => ({
      id,
      kind,
      at,
      actor: 'x',
      data: {},
      incidentId: 'inc_1',
      ...extra,
    });
    const inc = {
      id: 'inc_1',
      type: 'noise',
      priority: 4,
      area: 'B',
      cell: 'B-1',
      payload: { duty: { level: 'district', owner: 'district', why: 'on_no_list' } },
    } as unknown as IncidentRecord;
    const out = fromStoredEvents(
      [
        stored(1, 'reported', 100, { data: { type: 'noise', priority: 4, location: [1.5, 0.5] } }),
        stored(2, 'assigned', 101, { unitId: 'P1', data: { etaS: 50 } }),
        stored(3, 'assigned', 101, { data: { from: 'queued' } }),
        stored(4, 'on_scene', 150, { unitId: 'P1' }),
        stored(5, 'on_scene', 150),
        stored(6, 'assignment_cancelled', 160, { unitId: 'P2' }),
        stored(7, 'declined', 170, { unitId: 'P3', data: { reason: 'meal break' } }),
        stored(8, 'alert', 171, { unitId: 'P3' }),
        stored(9, 'cancelled', 180),
      ],
      new Map([['inc_1', inc]]),
    );
    expect(out).toEqual([
      {
        t: 100,
        kind: 'reported',
        incidentId: 'inc_1',
        type: 'noise',
        priority: 4,
        area: 'B',
        cell: 'B-1',
        duty: 'district',
      },
      { t: 101, kind: 'assigned', incidentId: 'inc_1', unitId: 'P1' },
      { t: 150, kind: 'on_scene', incidentId: 'inc_1', unitId: 'P1' },
      { t: 160, kind: 'released', incidentId: 'inc_1', unitId: 'P2' },
      { t: 170, kind: 'declined', incidentId: 'inc_1', unitId: 'P3', reason: 'meal break' },
      { t: 180, kind: 'cancelled', incidentId: 'inc_1' },
    ]);
  });
});

describe('duty routing', () => {
  it('immediate list, the sub-district’s own list, else the district level (and why)', () => {
    expect(routeDuty('fire', { area: 'A' }, catalog, areas)).toEqual({
      level: 'immediate',
      owner: 'immediate',
    });
    expect(routeDuty('vending', { area: 'A' }, catalog, areas)).toEqual({ level: 'area', owner: 'A' });
    expect(routeDuty('vending', { area: 'B' }, catalog, areas)).toEqual({
      level: 'district',
      owner: 'district',
      why: 'not_on_area_list',
    });
    expect(routeDuty('vending', {}, catalog, areas)).toMatchObject({
      level: 'district',
      why: 'outside_every_area',
    });
    expect(routeDuty('noise', { area: 'A' }, catalog, areas)).toMatchObject({
      level: 'district',
      why: 'on_no_list',
    });
    expect(routeDuty('noise', { area: 'A' }, catalog, undefined)).toMatchObject({ level: 'district' });
  });
});

describe('exports', () => {
  it('CSV: a row per group then ALL, quoted and formula-safe', () => {
    const f = computeFigures(
      [
        ...LOG,
        ev(2950, 'assigned', 'I6', 'P1'),
        ev(2955, 'declined', 'I6', 'P1', '=HYPERLINK("x"), "quoted"'),
      ],
      { ...base, groupBy: 'unit' },
    );
    const csv = figuresCsv({ groups: f.groups!, all: f.all });
    const lines = csv.split('\r\n');
    expect(lines[0].split(',')).toHaveLength(35);
    expect(lines.map((l) => l.split(',')[0])).toEqual(['group', 'F1', 'P1', 'P2', 'ALL', '']);
    expect(csv).toContain(`"'=HYPERLINK(""x""), ""quoted""=1; vehicle fault=1"`);
    expect(lines[4]).toMatch(/^ALL,6,5,10,50,/);
  });

  it('HTML report: self-contained, deterministic, with both charts', () => {
    const input = {
      title: 'Report',
      period: 'p',
      catalog,
      all: computeFigures(LOG, base).all,
      byDepartment: computeFigures(LOG, { ...base, groupBy: 'department' }).groups!,
      byType: computeFigures(LOG, { ...base, groupBy: 'type' }).groups!,
      series: onTimeSeries(LOG, { ...base, bucketS: 1200 }),
    };
    const html = renderFiguresReport(input);
    expect(renderFiguresReport(input)).toBe(html);
    expect(html).toContain('Response segments per department');
    expect(html).toContain('On time per incident type, week by week');
    expect(html).not.toMatch(/<script|\ssrc=|\shref=|url\(/);
  });
});
