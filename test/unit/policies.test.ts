import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeInstance } from '../../bench/instances.ts';
import { CapabilityIndex } from '../../src/core/capability-index.ts';
import { assemble, type Candidate } from '../../src/core/decision.ts';
import { CoreError } from '../../src/core/errors.ts';
import { bestByEta, solveGreedy } from '../../src/core/greedy.ts';
import { buildColumns, buildRows, type Column, edgeCost, eligible, etaS } from '../../src/core/model.ts';
import { scalarObjective } from '../../src/core/objective.ts';
import { solveOptimal } from '../../src/core/optimal.ts';
import { buildPassInput, type PassInput } from '../../src/core/passes.ts';
import { greedyPolicy, optimalPolicy } from '../../src/core/policies.ts';
import { DEFAULT_OPTIONS, type DecideContext } from '../../src/core/policy.ts';
import type { TravelTimes } from '../../src/core/ports.ts';
import { evaluateAssignment, type IlpProblem, solveAssignmentIlp } from '../../src/core/solver/ilp.ts';
import { solveDense } from '../../src/core/solver/lap-dense.ts';
import type { Decision, DispatchState, Unit } from '../../src/core/types.ts';

function ctxOf(inst: ReturnType<typeof makeInstance>, options = {}): DecideContext {
  return { catalog: inst.catalog, travel: inst.travel, options: { preemption: false, ...options } };
}

/** The full model over every eligible unit, solved as one integer program. */
function fullIlp(state: DispatchState, ctx: DecideContext, now: number): number {
  const options = { ...DEFAULT_OPTIONS, ...ctx.options };
  const rows = buildRows(state.incidents, state.units, ctx.catalog, now, options.maxEtaS);
  const cols = buildColumns(state.units, state.incidents, ctx.catalog, options.preemption);
  const edges: IlpProblem['edges'] = [];
  rows.forEach((r, i) => {
    for (const c of cols) {
      if (!eligible(r, c)) continue;
      const eta = etaS(r, c, ctx.travel);
      if (eta <= options.maxEtaS) edges.push({ row: i, col: c.index, cost: edgeCost(r, c, eta, options) });
    }
  });
  const problem: IlpProblem = {
    rows: rows.map((r) => ({ weightCost: r.unservedCost, ...(r.group >= 0 ? { group: r.group } : {}) })),
    nCols: cols.length,
    edges,
  };
  const sol = solveAssignmentIlp(problem, { timeoutMs: 20_000 });
  if (!sol?.optimal) throw new Error('reference ILP did not finish');
  return sol.total;
}

function checkInvariants(state: DispatchState, d: Decision, ctx: DecideContext) {
  const units = new Map(state.units.map((u) => [u.id, u]));
  const incidents = new Map(state.incidents.map((i) => [i.id, i]));
  const seen = new Set<string>();
  for (const a of d.assignments) {
    expect(seen.has(a.unitId), `unit ${a.unitId} assigned twice`).toBe(false);
    seen.add(a.unitId);
    const u = units.get(a.unitId)!;
    const inc = incidents.get(a.incidentId)!;
    const type = ctx.catalog.get(inc.type)!;
    expect(u.capabilities).toContain(a.capability);
    expect(type.requires[a.capability]).toBeGreaterThan(0);
    if (u.status !== 'available') {
      // Only a pre-emption may take a busy unit: immediate, higher priority, not yet on scene.
      expect(['offered', 'en_route']).toContain(u.status);
      const from = incidents.get(u.incidentId!)!;
      expect(type.immediate).toBe(true);
      expect(type.priority).toBeLessThan(ctx.catalog.get(from.type)!.priority);
      expect(d.preemptions.some((p) => p.unitId === u.id && p.toIncidentId === inc.id)).toBe(true);
    }
  }
  // No package over-filled; all-or-nothing packages whole or empty.
  for (const inc of state.incidents) {
    const type = ctx.catalog.get(inc.type)!;
    // Units that stay committed (not taken away by a pre-emption) plus the new assignments.
    const taken = new Set(d.preemptions.map((p) => p.unitId));
    const kept = state.units
      .filter((u) => u.incidentId === inc.id && !taken.has(u.id))
      .map((u) => ({ capability: u.role! }));
    const mine = [...kept, ...d.assignments.filter((a) => a.incidentId === inc.id)];
    for (const [cap, n] of Object.entries(type.requires)) {
      expect(mine.filter((a) => a.capability === cap).length).toBeLessThanOrEqual(n);
    }
    if (type.allOrNothing && kept.length === 0) {
      const need = Object.values(type.requires).reduce((a, b) => a + b, 0);
      expect([0, need]).toContain(mine.length);
    }
  }
}

const sizes = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  incidents: fc.integer({ min: 1, max: 30 }),
  units: fc.integer({ min: 1, max: 60 }),
  allOrNothing: fc.boolean(),
  dense: fc.boolean(),
});

describe('dispatch policies', () => {
  it('optimal equals the integer-programming optimum of the full model (≤ 30 incidents)', () => {
    fc.assert(
      fc.property(sizes, (spec) => {
        const inst = makeInstance({ ...spec, multiShare: 0.3 });
        const ctx = ctxOf(inst);
        const d = optimalPolicy.decide(inst.state, inst.now, ctx);
        expect(d.stats.exact).toBe(true);
        expect(scalarObjective(d.objective)).toBe(fullIlp(inst.state, ctx, inst.now));
      }),
      { numRuns: 60, seed: 42 },
    );
  });

  it('excluded units are never sent to the incident that excludes them, and the optimum stays exact', () => {
    fc.assert(
      fc.property(sizes, fc.boolean(), (spec, preemption) => {
        const inst = makeInstance({ ...spec, multiShare: 0.3 });
        // Each incident excludes its 0–3 nearest units (the ones a solver would otherwise pick).
        const state: DispatchState = {
          units: inst.state.units,
          incidents: inst.state.incidents.map((inc, i) => {
            const nearest = [...inst.state.units]
              .map((u) => ({ id: u.id, d: inst.travel.travelS(u.position ?? u.home, inc.location, 60) }))
              .sort((a, b) => a.d - b.d || (a.id < b.id ? -1 : 1))
              .slice(0, i % 4)
              .map((u) => u.id);
            return nearest.length > 0 ? { ...inc, excludedUnitIds: nearest } : inc;
          }),
        };
        const excluded = new Map(state.incidents.map((i) => [i.id, new Set(i.excludedUnitIds ?? [])]));
        const ctx = ctxOf(inst, { preemption });
        for (const policy of [greedyPolicy, optimalPolicy]) {
          const d = policy.decide(state, inst.now, ctx);
          for (const a of d.assignments) {
            expect(
              excluded.get(a.incidentId)!.has(a.unitId),
              `${a.unitId} excluded from ${a.incidentId}`,
            ).toBe(false);
          }
          checkInvariants(state, d, ctx);
          if (policy === optimalPolicy)
            expect(scalarObjective(d.objective)).toBe(fullIlp(state, ctx, inst.now));
        }
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  it('the certified sparse optimum equals the dense optimum over every unit (up to 300 × 900)', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 1_000_000 }),
          incidents: fc.integer({ min: 20, max: 300 }),
          ratio: fc.constantFrom(0.8, 1.5, 3),
          backlogS: fc.constantFrom(0, 300, 900),
        }),
        ({ seed, incidents, ratio, backlogS }) => {
          const inst = makeInstance({
            seed,
            incidents,
            units: Math.round(incidents * ratio),
            backlogS,
            multiShare: 0.2,
          });
          const ctx = ctxOf(inst);
          const d = optimalPolicy.decide(inst.state, inst.now, ctx);
          const options = { ...DEFAULT_OPTIONS, ...ctx.options };
          const rows = buildRows(
            inst.state.incidents,
            inst.state.units,
            ctx.catalog,
            inst.now,
            options.maxEtaS,
          );
          const cols = buildColumns(inst.state.units, inst.state.incidents, ctx.catalog, false);
          const cost = new Float64Array(rows.length * cols.length).fill(Number.POSITIVE_INFINITY);
          rows.forEach((r, i) => {
            for (const c of cols) {
              if (!eligible(r, c)) continue;
              const eta = etaS(r, c, ctx.travel);
              if (eta <= options.maxEtaS) cost[i * cols.length + c.index] = edgeCost(r, c, eta, options);
            }
          });
          const dense = solveDense(
            rows.length,
            cols.length,
            cost,
            Float64Array.from(rows.map((r) => r.unservedCost)),
          );
          expect(scalarObjective(d.objective)).toBe(dense!.total);
        },
      ),
      { numRuns: 80, seed: 23 },
    );
  });

  it('optimal is never worse than greedy and both keep every invariant', () => {
    fc.assert(
      fc.property(sizes, (spec) => {
        const inst = makeInstance({ ...spec, multiShare: 0.3 });
        const ctx = ctxOf(inst);
        const g = greedyPolicy.decide(inst.state, inst.now, ctx);
        const o = optimalPolicy.decide(inst.state, inst.now, ctx);
        checkInvariants(inst.state, g, ctx);
        checkInvariants(inst.state, o, ctx);
        expect(scalarObjective(o.objective)).toBeLessThanOrEqual(scalarObjective(g.objective));
      }),
      { numRuns: 80, seed: 7 },
    );
  });

  it('pre-empts a unit bound for lower-priority work only for an immediate incident', () => {
    fc.assert(
      fc.property(sizes, fc.integer({ min: 0, max: 1_000 }), (spec, salt) => {
        const inst = makeInstance({ ...spec, seed: spec.seed + salt });
        const { units, incidents } = inst.state;
        // Half the units are already bound for (or offered to) the first incidents.
        units.forEach((u, i) => {
          if (i % 2 === 1 && incidents.length > 0) {
            const inc = incidents[i % incidents.length];
            const type = inst.catalog.get(inc.type)!;
            const used = (c: string) => units.filter((o) => o.incidentId === inc.id && o.role === c).length;
            const role = Object.keys(type.requires).find(
              (c) => u.capabilities.includes(c) && used(c) < type.requires[c],
            );
            if (!role) return;
            u.status = i % 4 === 1 ? 'en_route' : 'offered';
            u.incidentId = inc.id;
            u.role = role;
            inc.status = 'assigned';
          }
        });
        const ctx = ctxOf(inst, { preemption: true });
        for (const policy of [greedyPolicy, optimalPolicy]) {
          const d = policy.decide(inst.state, inst.now, ctx);
          checkInvariants(inst.state, d, ctx);
        }
      }),
      { numRuns: 60, seed: 3 },
    );
  });

  it('same input gives the same output, whatever the input order', () => {
    fc.assert(
      fc.property(sizes, (spec) => {
        const inst = makeInstance(spec);
        const ctx = ctxOf(inst);
        const a = optimalPolicy.decide(inst.state, inst.now, ctx);
        const shuffled: DispatchState = {
          units: [...inst.state.units].reverse(),
          incidents: [...inst.state.incidents].reverse(),
        };
        const b = optimalPolicy.decide(shuffled, inst.now, ctx);
        expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      }),
      { numRuns: 40, seed: 11 },
    );
  });

  it('decides the same with a travel model that offers no shortcuts', () => {
    // Same travel times, but not declared distance-only and without the inverse bound: the
    // optimiser takes its generic paths (a travel time per pair, bisection for search radii).
    const opaque = (t: TravelTimes): TravelTimes => ({
      name: 'opaque',
      travelS: (a, b, v) => t.travelS(a, b, v),
      lowerBoundS: (d, v) => t.lowerBoundS(d, v),
    });
    fc.assert(
      fc.property(sizes, fc.boolean(), (spec, preemption) => {
        const inst = makeInstance({ ...spec, multiShare: 0.3 });
        inst.state.units.forEach((u, i) => {
          const inc = inst.state.incidents[i % inst.state.incidents.length];
          const type = inst.catalog.get(inc.type)!;
          if (i % 3 !== 1 || !u.capabilities.some((c) => c in type.requires)) return;
          u.status = 'en_route';
          u.incidentId = inc.id;
          u.role = u.capabilities.find((c) => c in type.requires);
        });
        const ctx = ctxOf(inst, { preemption });
        const a = optimalPolicy.decide(inst.state, inst.now, ctx);
        const b = optimalPolicy.decide(inst.state, inst.now, { ...ctx, travel: opaque(ctx.travel) });
        expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      }),
      { numRuns: 80, seed: 23 },
    );
  });

  it('an overdue incident is not starved by fresh ones of the same priority', () => {
    const inst = makeInstance({ incidents: 2, units: 1, seed: 3, dense: true, hotspotShare: 0 });
    const [old, fresh] = inst.state.incidents;
    old.type = fresh.type = 'call-p3';
    // Same place, so the unit's ETA is the same; the old call has waited two hours.
    fresh.location = [...old.location];
    old.reportedAt = inst.now - 7200;
    fresh.reportedAt = inst.now - 10;
    for (const policy of [optimalPolicy, greedyPolicy]) {
      const d = policy.decide(inst.state, inst.now, ctxOf(inst));
      expect(d.assignments.map((a) => a.incidentId)).toEqual([old.id]);
    }
  });

  it('explains each assignment with its ETA and the alternatives that lost', () => {
    const inst = makeInstance({ incidents: 20, units: 40, seed: 5 });
    const d = optimalPolicy.decide(inst.state, inst.now, ctxOf(inst));
    expect(d.assignments.length).toBeGreaterThan(0);
    for (const a of d.assignments) {
      expect(a.explanation.summary).toContain(a.unitId);
      expect(a.explanation.etaS).toBe(a.etaS);
      for (const alt of a.explanation.alternatives) {
        expect(alt.unitId).not.toBe(a.unitId);
        expect(alt.reason.length).toBeGreaterThan(0);
      }
    }
    for (const u of d.unserved) expect(u.reason.length).toBeGreaterThan(0);
  });

  it('falls back to the greedy answer when the work budget runs out', () => {
    const inst = makeInstance({ incidents: 200, units: 400, seed: 9 });
    const ctx = { ...ctxOf(inst), budget: { maxWork: 10 } };
    const d = optimalPolicy.decide(inst.state, inst.now, ctx);
    expect(d.stats.exact).toBe(false);
    checkInvariants(inst.state, d, ctx);
    const g = greedyPolicy.decide(inst.state, inst.now, ctxOf(inst));
    expect(d.assignments.map((a) => a.unitId)).toEqual(g.assignments.map((a) => a.unitId));
  });

  it('the optimal total is what the integer-program evaluator says of its assignment', () => {
    const inst = makeInstance({ incidents: 25, units: 30, seed: 17, allOrNothing: true, multiShare: 0.5 });
    const ctx = ctxOf(inst);
    const d = optimalPolicy.decide(inst.state, inst.now, ctx);
    expect(typeof evaluateAssignment).toBe('function');
    expect(scalarObjective(d.objective)).toBe(fullIlp(inst.state, ctx, inst.now));
  });
});

/** Seeded instances with incidents and units in the given ranges, with or without pre-emption. */
const instanceSpecs = (incidents: { min: number; max: number }, units: { min: number; max: number }) =>
  fc.record({
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    incidents: fc.integer(incidents),
    units: fc.integer(units),
    allOrNothing: fc.boolean(),
    preemption: fc.boolean(),
  });

type InstanceSpecOf = ReturnType<typeof instanceSpecs> extends fc.Arbitrary<infer T> ? T : never;

/** The instance of a spec (a share of joint-force types), its context and options. */
function instanceOf({ preemption, ...spec }: InstanceSpecOf) {
  const inst = makeInstance({ ...spec, multiShare: 0.3 });
  const ctx = ctxOf(inst, { preemption });
  return { inst, ctx, options: { ...DEFAULT_OPTIONS, ...ctx.options } };
}

describe('greedy over a backlog', () => {
  /** solveGreedy as it was before it skipped searches of exhausted pools: every row searches. */
  function searchEveryRow(input: PassInput): (string | null)[] {
    const { rows } = input;
    const used = new Set<Column>();
    const out: (string | null)[] = rows.map(() => null);
    for (let i = 0; i < rows.length; ) {
      let j = i;
      while (j < rows.length && rows[j].incident === rows[i].incident) j++;
      const picks: (Candidate | null)[] = [];
      const taken = new Set<Column>();
      for (let k = i; k < j; k++) {
        const r = rows[k];
        const free = (c: Column) => !used.has(c) && !taken.has(c) && eligible(r, c);
        let pick = bestByEta(r, input, 'free', free, []);
        if (!pick && r.immediate && input.options.preemption) pick = bestByEta(r, input, 'preempt', free, []);
        picks.push(pick);
        if (pick) taken.add(pick.col);
      }
      if (rows[i].group < 0 || picks.every((p) => p !== null)) {
        picks.forEach((p, o) => {
          if (!p) return;
          out[i + o] = p.col.unit.id;
          used.add(p.col);
        });
      }
      i = j;
    }
    return out;
  }

  it('picks what searching every row picks, with more incidents than units', () => {
    fc.assert(
      fc.property(instanceSpecs({ min: 10, max: 80 }, { min: 1, max: 15 }), (spec) => {
        const { inst, ctx, options } = instanceOf(spec);
        const got = solveGreedy(buildPassInput(inst.state, inst.now, ctx, options));
        const want = searchEveryRow(buildPassInput(inst.state, inst.now, ctx, options));
        expect(got.chosen.map((c) => c?.col.unit.id ?? null)).toEqual(want);
      }),
      { numRuns: 1000, seed: 7 },
    );
  });
});

describe('a round with no open slot', () => {
  /** Units as they stand once a decision's offers are made. */
  function offered(units: Unit[], d: Decision, now: number): Unit[] {
    const by = new Map(d.assignments.map((a) => [a.unitId, a]));
    return units.map((u) => {
      const a = by.get(u.id);
      return a
        ? { ...u, status: 'offered' as const, incidentId: a.incidentId, role: a.capability, since: now }
        : u;
    });
  }

  it('decides what it decides with every column and the index built', () => {
    let checked = 0;
    fc.assert(
      fc.property(instanceSpecs({ min: 0, max: 12 }, { min: 60, max: 120 }), (spec) => {
        const { inst, ctx, options } = instanceOf(spec);
        const first = optimalPolicy.decide(inst.state, inst.now, ctx);
        const state = {
          units: offered(inst.state.units, first, inst.now),
          incidents: inst.state.incidents,
        };
        const rows = buildRows(state.incidents, state.units, ctx.catalog, inst.now, options.maxEtaS);
        fc.pre(rows.length === 0);
        checked++;
        for (const [policy, solve] of [
          [greedyPolicy, solveGreedy],
          [optimalPolicy, solveOptimal],
        ] as const) {
          const cols = buildColumns(state.units, state.incidents, ctx.catalog, options.preemption);
          const full: PassInput = {
            rows,
            cols,
            index: new CapabilityIndex(cols),
            options,
            ctx,
            now: inst.now,
            capableTotal: (cap) => state.units.filter((u) => u.capabilities.includes(cap)).length,
          };
          const want = assemble(solve(full), inst.now, options.explainAlternatives, options.maxEtaS);
          expect(policy.decide(state, inst.now, ctx)).toEqual(want);
        }
      }),
      { numRuns: 200, seed: 11 },
    );
    expect(checked).toBeGreaterThan(50);
  });
});

describe('bad input is refused with a typed error naming the field', () => {
  const inst = makeInstance({ incidents: 3, units: 3, seed: 1 });
  const ctx = ctxOf(inst);
  const cases: [string, (s: DispatchState) => unknown, string][] = [
    [
      'unknown incident type',
      (s) => ({ ...s, incidents: [{ ...s.incidents[0], type: 'nope' }] }),
      'incidents[0].type',
    ],
    [
      'NaN coordinate',
      (s) => ({ ...s, incidents: [{ ...s.incidents[0], location: [Number.NaN, 23] }] }),
      'location',
    ],
    [
      'latitude out of range',
      (s) => ({ ...s, units: [{ ...s.units[0], home: [113, 95] }] }),
      'units[0].home',
    ],
    [
      'unit without capabilities',
      (s) => ({ ...s, units: [{ ...s.units[0], capabilities: [] }] }),
      'capabilities',
    ],
    ['duplicate unit id', (s) => ({ ...s, units: [s.units[0], s.units[0]] }), 'units[1].id'],
    [
      'duplicate incident id',
      (s) => ({ ...s, incidents: [s.incidents[0], s.incidents[0]] }),
      'incidents[1].id',
    ],
    ['state not an object', () => 'junk', 'state'],
  ];
  for (const [name, mutate, field] of cases) {
    it(name, () => {
      for (const policy of [greedyPolicy, optimalPolicy]) {
        let err: unknown;
        try {
          policy.decide(mutate(inst.state) as DispatchState, inst.now, ctx);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(CoreError);
        expect((err as CoreError).field).toContain(field);
      }
    });
  }

  it('an empty catalogue is refused', async () => {
    const { buildCatalog } = await import('../../src/core/catalog.ts');
    expect(() => buildCatalog([])).toThrowError(CoreError);
  });

  it('never throws anything but CoreError on arbitrary state', () => {
    fc.assert(
      fc.property(fc.anything(), (junk) => {
        try {
          optimalPolicy.decide(junk as DispatchState, inst.now, ctx);
        } catch (e) {
          expect(e).toBeInstanceOf(CoreError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
