// The review-flag rules (src/kpi/review-rules.ts): for each flag, a log that raises it and one
// that must not, at the configured thresholds.

import { describe, expect, it } from 'vitest';
import { offsetM } from '../../src/core/geo.ts';
import type { LonLat } from '../../src/core/types.ts';
import {
  DEFAULT_REVIEW_CONFIG,
  LogReviewer,
  needsLookup,
  type ReviewConfig,
  type ReviewEvent,
  type ReviewLookup,
  resolveReviewConfig,
  reviewEvent,
} from '../../src/kpi/review-rules.ts';

const HERE: LonLat = [113.45, 23.1];
const H = 3600;

let nextId = 0;
const e = (
  t: number,
  kind: string,
  fields: Partial<ReviewEvent> = {},
  data: Record<string, unknown> = {},
): ReviewEvent => ({
  id: ++nextId,
  t,
  kind,
  data,
  ...fields,
});
const reported = (t: number, incidentId: string, location: LonLat = HERE) =>
  e(t, 'reported', { incidentId }, { type: 'burglary-report', location });

async function review(events: ReviewEvent[], cfg: Partial<ReviewConfig> = {}) {
  const r = new LogReviewer({ ...DEFAULT_REVIEW_CONFIG, ...cfg }, new Map([['P1', 40]]));
  for (const x of events) await r.feed(x);
  return r.flags;
}

describe('on_scene_far (by the distance the engine measured from the unit’s last position)', () => {
  const onScene = (distanceM: number) => [
    reported(0, 'I1'),
    e(10, 'assigned', { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' }),
    e(200, 'on_scene', { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' }, { distanceM }),
  ];

  it('flags 350 m at the 300 m threshold, with the evidence', async () => {
    const flags = await review(onScene(350));
    expect(flags).toEqual([
      expect.objectContaining({
        kind: 'on_scene_far',
        key: 'on_scene_far:A1',
        incidentId: 'I1',
        unitId: 'P1',
        t: 200,
        evidence: expect.objectContaining({ distanceM: 350, thresholdM: 300, incidentLocation: HERE }),
      }),
    ]);
  });

  it('does not flag a unit 250 m away (or exactly at 300 m)', async () => {
    expect(await review(onScene(250))).toEqual([]);
    expect(await review(onScene(300))).toEqual([]);
  });

  it('follows the configured threshold', async () => {
    expect(await review(onScene(250), { onSceneFarM: 200 })).toHaveLength(1);
  });

  it('measures from a reported position when no distance was recorded', async () => {
    const flags = await review([
      reported(0, 'I1'),
      e(200, 'on_scene', { incidentId: 'I1', unitId: 'P1' }, { position: offsetM(HERE, 400, 0) }),
    ]);
    expect(flags.map((f) => [f.kind, f.evidence.distanceM])).toEqual([['on_scene_far', 400]]);
  });
});

describe('too_fast (on scene sooner than travel allows)', () => {
  const trip = (onSceneT: number, km = 3) => [
    reported(0, 'I1'),
    e(
      5,
      'assigned',
      { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' },
      { from: offsetM(HERE, km * 1000, 0) },
    ),
    e(
      10,
      'en_route',
      { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' },
      { position: offsetM(HERE, km * 1000, 0) },
    ),
    e(onSceneT, 'on_scene', { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' }, { distanceM: 10 }),
  ];

  it('flags 3 km in 30 s for a 40 km/h unit (at least 180 s at 1.5 × its speed)', async () => {
    const flags = await review(trip(40));
    expect(flags).toEqual([
      expect.objectContaining({
        kind: 'too_fast',
        key: 'too_fast:A1',
        evidence: expect.objectContaining({
          tripM: 3000,
          elapsedS: 30,
          minPlausibleS: 180,
          startVia: 'en_route',
        }),
      }),
    ]);
  });

  it('does not flag a plausible trip, nor a short one', async () => {
    expect(await review(trip(10 + 200))).toEqual([]);
    expect(await review(trip(11, 0.3))).toEqual([]);
  });

  it('counts from the offer when the unit never reported en route', async () => {
    const flags = await review([
      reported(0, 'I1'),
      e(
        5,
        'assigned',
        { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' },
        { from: offsetM(HERE, 2000, 0) },
      ),
      e(25, 'on_scene', { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' }, { distanceM: 5 }),
    ]);
    expect(flags.map((f) => [f.kind, f.evidence.startVia])).toEqual([['too_fast', 'offer']]);
  });
});

describe('on-scene facts recorded by the engine (no lookup)', () => {
  /** A lookup that must not be asked anything. */
  const noLookup: ReviewLookup = {
    incident: () => Promise.reject(new Error('incident looked up')),
    tripStart: () => Promise.reject(new Error('trip looked up')),
    unitSpeedKmh: () => Promise.reject(new Error('speed looked up')),
    refusals: () => Promise.reject(new Error('refusals looked up')),
    lastFlagAt: () => Promise.reject(new Error('flag looked up')),
  };
  const from = offsetM(HERE, 3000, 0);
  const facts = () => ({
    distanceM: 10,
    incidentLocation: HERE,
    trip: { t: 10, via: 'en_route', position: from },
    speedKmh: 40,
  });
  const onScene = (t: number, data: Record<string, unknown>) =>
    e(t, 'on_scene', { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' }, data);

  it('raises the same flags as the log lookups would, without any', async () => {
    for (const t of [40, 210]) {
      const fromLog = await review([
        reported(0, 'I1'),
        e(5, 'assigned', { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' }, { from }),
        e(10, 'en_route', { incidentId: 'I1', unitId: 'P1', assignmentId: 'A1' }, { position: from }),
        onScene(t, { distanceM: 10 }),
      ]);
      const ev = onScene(t, facts());
      const fromFacts = await reviewEvent(ev, noLookup, DEFAULT_REVIEW_CONFIG);
      expect(fromFacts.map((f) => ({ ...f, evidence: { ...f.evidence, eventId: 0 } }))).toEqual(
        fromLog.map((f) => ({ ...f, evidence: { ...f.evidence, eventId: 0 } })),
      );
    }
    expect(await reviewEvent(onScene(40, facts()), noLookup, DEFAULT_REVIEW_CONFIG)).toHaveLength(1);
  });

  it('tells which events need a lookup', () => {
    const on = (data: Record<string, unknown>, ofUnit = true) =>
      needsLookup({ kind: 'on_scene', incidentId: 'I1', ...(ofUnit ? { unitId: 'P1' } : {}), data });
    expect(on(facts())).toBe(false);
    expect(on({ distanceM: 10 })).toBe(true);
    // Partial or malformed facts are not trusted.
    expect(on({ ...facts(), speedKmh: 'fast' })).toBe(true);
    expect(on({ ...facts(), trip: { t: 10, via: 'teleport', position: from } })).toBe(true);
    expect(on({ ...facts(), incidentLocation: [500, 0] })).toBe(true);
    // The incident's own on-scene status event: no rule looks anything up.
    expect(on({}, false)).toBe(false);
    expect(needsLookup({ kind: 'closed', incidentId: 'I1', data: {} })).toBe(true);
    expect(needsLookup({ kind: 'closed', incidentId: 'I1', data: { withoutOnScene: true } })).toBe(false);
    expect(needsLookup({ kind: 'assigned', incidentId: 'I1', unitId: 'P1', data: {} })).toBe(false);
  });
});

describe('repeated_non_response (offers that timed out, per unit and shift)', () => {
  const timeouts = (...ts: number[]) =>
    ts.flatMap((t, i) => [
      reported(t - 40, `I${t}-${i}`),
      e(t, 'ack_timeout', { incidentId: `I${t}-${i}`, unitId: 'P1', assignmentId: `A${t}-${i}` }),
    ]);

  it('flags the third within a shift, once per shift', async () => {
    const flags = await review(timeouts(100, 2 * H, 5 * H, 6 * H));
    expect(flags).toHaveLength(1);
    expect(flags[0]).toMatchObject({
      kind: 'repeated_non_response',
      unitId: 'P1',
      t: 5 * H,
      evidence: { count: 3, threshold: 3, shiftS: 8 * H },
    });
    expect((flags[0].evidence.offers as unknown[]).length).toBe(3);
  });

  it('does not flag two, nor three spread over more than a shift', async () => {
    expect(await review(timeouts(100, 2 * H))).toEqual([]);
    expect(await review(timeouts(100, 5 * H, 9 * H))).toEqual([]);
  });

  it('flags again in a later shift', async () => {
    const flags = await review(timeouts(100, 200, 300, 9 * H, 9 * H + 100, 9 * H + 200));
    expect(flags.map((f) => f.t)).toEqual([300, 9 * H + 200]);
  });

  it('does not count declines as non-responses', async () => {
    const declines = [100, 200, 300].flatMap((t) => [
      reported(t - 10, `D${t}`),
      e(t, 'declined', { incidentId: `D${t}`, unitId: 'P1' }, { reason: 'meal break' }),
    ]);
    expect((await review(declines)).filter((f) => f.kind === 'repeated_non_response')).toEqual([]);
  });
});

describe('declines_above_threshold', () => {
  const declines = (n: number) =>
    Array.from({ length: n }, (_, i) => [
      reported(i * 600, `D${i}`),
      e(
        i * 600 + 30,
        'declined',
        { incidentId: `D${i}`, unitId: 'P1', assignmentId: `A${i}` },
        { reason: `r${i % 2}` },
      ),
    ]).flat();

  it('flags the fourth decline in a shift at threshold 3, with the reasons', async () => {
    const flags = await review(declines(4));
    expect(flags).toHaveLength(1);
    expect(flags[0]).toMatchObject({
      kind: 'declines_above_threshold',
      evidence: { count: 4, threshold: 3 },
    });
    expect((flags[0].evidence.offers as { reason: string }[]).map((o) => o.reason)).toEqual([
      'r0',
      'r1',
      'r0',
      'r1',
    ]);
  });

  it('does not flag three (not above the threshold)', async () => {
    expect(await review(declines(3))).toEqual([]);
  });
});

describe('closed_without_on_scene', () => {
  it('flags a close the engine recorded as without an on-scene report', async () => {
    const flags = await review([
      reported(0, 'I1'),
      e(
        600,
        'closed',
        { incidentId: 'I1', actor: 'dispatcher:d.li' },
        { from: 'assigned', withoutOnScene: true, note: 'by phone' },
      ),
    ]);
    expect(flags).toEqual([
      expect.objectContaining({
        kind: 'closed_without_on_scene',
        key: 'closed_without_on_scene:I1',
        evidence: expect.objectContaining({
          closedBy: 'dispatcher:d.li',
          note: 'by phone',
          statusBefore: 'assigned',
        }),
      }),
    ]);
  });

  it('does not flag an incident closed after a unit was on scene', async () => {
    expect(
      await review([
        reported(0, 'I1'),
        e(100, 'on_scene', { incidentId: 'I1', unitId: 'P1' }, { distanceM: 20 }),
        e(600, 'closed', { incidentId: 'I1' }, { from: 'resolved' }),
      ]),
    ).toEqual([]);
  });

  it('decides from the log when the close carries no flag (an older or replayed record)', async () => {
    const flags = await review([reported(0, 'I1'), e(600, 'closed', { incidentId: 'I1' })]);
    expect(flags.map((f) => f.kind)).toEqual(['closed_without_on_scene']);
  });
});

describe('configuration', () => {
  it('defaults, overrides, and refusals naming the field', () => {
    expect(resolveReviewConfig(undefined)).toEqual(DEFAULT_REVIEW_CONFIG);
    expect(resolveReviewConfig({ onSceneFarM: 250, declineThreshold: 5 })).toMatchObject({
      onSceneFarM: 250,
      declineThreshold: 5,
      nonResponseThreshold: 3,
    });
    expect(() => resolveReviewConfig({ onSceneFarM: -1 })).toThrow(/reviews\.onSceneFarM/);
    expect(() => resolveReviewConfig({ declineThreshold: 2.5 })).toThrow(
      /reviews\.declineThreshold: must be an integer/,
    );
    expect(() => resolveReviewConfig({ shiftS: 0 })).toThrow(/reviews\.shiftS/);
    expect(() => resolveReviewConfig({ onSceneFar: 300 })).toThrow(/reviews\.onSceneFar: unknown setting/);
    expect(() => resolveReviewConfig([])).toThrow(/reviews: must be an object/);
  });
});
