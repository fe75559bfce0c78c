import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type LpModel, solveLp } from '../../src/core/lp.ts';
import {
  evaluateAssignment,
  type IlpProblem,
  type IlpSolution,
  MAX_ABS_COST,
  solveAssignmentIlp,
} from '../../src/core/solver/ilp.ts';

/** Optimum by enumerating every assignment (each row: unserved or one of its edges). */
function bruteForce(p: IlpProblem): number {
  const options: number[][] = p.rows.map(() => []);
  const seen = new Set<string>();
  for (const e of p.edges) {
    const k = `${e.row}:${e.col}`;
    if (!seen.has(k)) options[e.row].push(e.col);
    seen.add(k);
  }
  const rowToCol = new Int32Array(p.rows.length).fill(-1);
  const used = new Uint8Array(p.nCols);
  let best = Number.POSITIVE_INFINITY;
  const visit = (r: number) => {
    if (r === p.rows.length) {
      const t = evaluateAssignment(p, rowToCol);
      if (t !== null && t < best) best = t;
      return;
    }
    rowToCol[r] = -1;
    visit(r + 1);
    for (const c of options[r]) {
      if (used[c]) continue;
      used[c] = 1;
      rowToCol[r] = c;
      visit(r + 1);
      used[c] = 0;
    }
    rowToCol[r] = -1;
  };
  visit(0);
  return best;
}

function groupsWhole(p: IlpProblem, rowToCol: Int32Array): boolean {
  const served = new Map<number, boolean>();
  return p.rows.every((row, r) => {
    if (row.group === undefined) return true;
    const s = rowToCol[r] !== -1;
    const prev = served.get(row.group);
    served.set(row.group, s);
    return prev === undefined || prev === s;
  });
}

/** Every returned solution must be feasible and its total exact. */
function checkSolution(p: IlpProblem, sol: IlpSolution): void {
  expect(sol.rowToCol.length).toBe(p.rows.length);
  expect(evaluateAssignment(p, sol.rowToCol)).toBe(sol.total);
  expect(groupsWhole(p, sol.rowToCol)).toBe(true);
}

/** Random instances: up to 8 × 8, 0–2 groups. */
function instanceArb(cost: fc.Arbitrary<number>, weightCost: fc.Arbitrary<number>): fc.Arbitrary<IlpProblem> {
  return fc
    .record({ nRows: fc.integer({ min: 1, max: 8 }), nCols: fc.integer({ min: 1, max: 8 }) })
    .chain(({ nRows, nCols }) =>
      fc.record({
        nRows: fc.constant(nRows),
        nCols: fc.constant(nCols),
        nGroups: fc.integer({ min: 0, max: 2 }),
        rows: fc.array(fc.record({ weightCost, group: fc.integer({ min: -1, max: 1 }) }), {
          minLength: nRows,
          maxLength: nRows,
        }),
        cells: fc.array(fc.option(cost, { nil: undefined, freq: 2 }), {
          minLength: nRows * nCols,
          maxLength: nRows * nCols,
        }),
      }),
    )
    .map(({ nRows, nCols, nGroups, rows, cells }) => ({
      nCols,
      rows: rows.map((r) =>
        r.group >= 0 && r.group < nGroups
          ? { weightCost: r.weightCost, group: r.group }
          : { weightCost: r.weightCost },
      ),
      edges: cells.flatMap((cost, i) =>
        cost === undefined ? [] : [{ row: Math.floor(i / nCols) % nRows, col: i % nCols, cost }],
      ),
    }));
}

const smallCosts = instanceArb(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 30 }));
// Dispatch scale: unserved = w·1e9 (w ∈ {1,2,4,8}); edges anywhere up to 1e10, or within a few
// units of the largest unserved cost so that one-unit differences decide.
const bigCosts = instanceArb(
  fc.oneof(
    fc.integer({ min: 0, max: 10_000_000_000 }),
    fc.integer({ min: 0, max: 60_000_000 }),
    fc.integer({ min: -3, max: 3 }).map((d) => 8e9 + d),
  ),
  fc.constantFrom(1e9, 2e9, 4e9, 8e9),
);

/** Deterministic pseudo-random instance (rows × cols, `deg` edges per row, `nGroups` groups of `size`). */
function sparseInstance(
  seed: number,
  nRows: number,
  nCols: number,
  deg: number,
  nGroups: number,
  size = 3,
): IlpProblem {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const rows = Array.from({ length: nRows }, (_, i) => ({
    weightCost: [1, 2, 4, 8][Math.floor(rand() * 4)] * 1e9,
    ...(i < nGroups * size ? { group: Math.floor(i / size) } : {}),
  }));
  const edges: IlpProblem['edges'] = [];
  rows.forEach((row, r) => {
    const cols = new Set<number>();
    while (cols.size < Math.min(deg, nCols)) cols.add(Math.floor(rand() * nCols));
    for (const c of [...cols].sort((a, b) => a - b)) {
      const w = row.weightCost / 1e9;
      const eta = Math.round(60 + rand() * 1200);
      edges.push({ row: r, col: c, cost: w * (eta + 1000 * Math.max(0, eta - 600)) });
    }
  });
  return { rows, nCols, edges };
}

describe('solveLp', () => {
  it('solves the README integer example and reports every variable', () => {
    // The README prints 14400 (8 tables, 3 dressers); 4 tables and 9 dressers use exactly the
    // 300 wood and 110 labour for 19200, the true optimum, which is what the library returns.
    const model: LpModel = {
      optimize: 'profit',
      opType: 'max',
      constraints: { wood: { max: 300 }, labor: { max: 110 } },
      variables: {
        table: { wood: 30, labor: 5, profit: 1200 },
        dresser: { wood: 20, labor: 10, profit: 1600 },
        idle: { wood: 1, profit: -1 },
      },
      ints: { table: 1, dresser: 1 },
    };
    const r = solveLp(model);
    expect(r.feasible).toBe(true);
    expect(r.isIntegral).toBe(true);
    expect(r.result).toBe(19200);
    expect(r.values.get('table')).toBe(4);
    expect(r.values.get('dresser')).toBe(9);
    expect(r.values.get('idle')).toBe(0);
    expect(r.cycled).toBe(false);
  });

  it("reports the full objective with presolve off (presolve would drop a fixed variable's cost)", () => {
    const model: LpModel = {
      optimize: 'cost',
      opType: 'min',
      constraints: { lo: { max: -1 }, hi: { max: 1 }, both: { min: 1 } },
      variables: { x: { cost: 5, lo: -1, hi: 1, both: 1 }, z: { cost: 1, both: 1 } },
      ints: { x: 1 },
      options: { presolve: false },
    };
    const r = solveLp(model);
    expect(r.result).toBe(5);
    expect(r.values.get('x')).toBe(1);
  });

  it('reports infeasibility and rejects reserved variable names', () => {
    const infeasible = solveLp({
      optimize: 'c',
      opType: 'min',
      constraints: { a: { min: 2 }, b: { max: 1 } },
      variables: { x: { c: 1, a: 1, b: 1 } },
    });
    expect(infeasible.feasible).toBe(false);
    expect(() =>
      solveLp({ optimize: 'c', opType: 'min', constraints: {}, variables: { feasible: { c: 1 } } }),
    ).toThrow(RangeError);
  });
});

describe('evaluateAssignment', () => {
  const p: IlpProblem = {
    rows: [{ weightCost: 100, group: 7 }, { weightCost: 100, group: 7 }, { weightCost: 50 }],
    nCols: 2,
    edges: [
      { row: 0, col: 0, cost: 10 },
      { row: 1, col: 1, cost: 20 },
      { row: 1, col: 1, cost: 15 },
      { row: 2, col: 0, cost: 5 },
    ],
  };
  it('sums edge costs and unserved costs exactly (duplicate edges at their cheapest)', () => {
    expect(evaluateAssignment(p, [0, 1, -1])).toBe(10 + 15 + 50);
    expect(evaluateAssignment(p, [-1, -1, 0])).toBe(100 + 100 + 5);
    expect(evaluateAssignment(p, [-1, -1, -1])).toBe(250);
  });
  it('returns null for infeasible assignments', () => {
    expect(evaluateAssignment(p, [0, 1, 0])).toBeNull(); // column 0 twice
    expect(evaluateAssignment(p, [0, -1, -1])).toBeNull(); // group 7 half-served
    expect(evaluateAssignment(p, [1, 1, -1])).toBeNull(); // no edge (0, 1), and column 1 twice
    expect(evaluateAssignment(p, [-1, -1, 1])).toBeNull(); // no edge (2, 1)
    expect(evaluateAssignment(p, [-1, -1, 2])).toBeNull(); // column out of range
    expect(evaluateAssignment(p, [-1, -1])).toBeNull(); // wrong length
    expect(evaluateAssignment(p, [-2, -1, -1])).toBeNull();
  });
});

describe('solveAssignmentIlp: clock-free mode (replays)', () => {
  it('never claims more than it proved, and what it returns is feasible and at least optimal-valued', () => {
    fc.assert(
      fc.property(smallCosts, (p) => {
        const sol = solveAssignmentIlp(p, { clockFree: true });
        if (!sol) return;
        expect(evaluateAssignment(p, sol.rowToCol)).toBe(sol.total);
        expect(sol.total).toBeGreaterThanOrEqual(bruteForce(p));
        if (sol.optimal) expect(sol.total).toBe(bruteForce(p));
      }),
      { numRuns: 200, seed: 5 },
    );
  });
});

describe('solveAssignmentIlp: small instances', () => {
  it('serves a group when that beats serving a competing single row', () => {
    const p: IlpProblem = {
      rows: [{ weightCost: 100, group: 1 }, { weightCost: 100, group: 1 }, { weightCost: 150 }],
      nCols: 2,
      edges: [
        { row: 0, col: 0, cost: 10 },
        { row: 1, col: 0, cost: 10 },
        { row: 1, col: 1, cost: 20 },
        { row: 2, col: 1, cost: 5 },
      ],
    };
    const sol = solveAssignmentIlp(p)!;
    expect(Array.from(sol.rowToCol)).toEqual([0, 1, -1]);
    expect(sol.total).toBe(180);
    expect(sol.optimal).toBe(true);
    expect(bruteForce(p)).toBe(180);
  });

  it('drops a group when completing it costs more than the row it displaces', () => {
    const p: IlpProblem = {
      rows: [{ weightCost: 100, group: 1 }, { weightCost: 100, group: 1 }, { weightCost: 250 }],
      nCols: 2,
      edges: [
        { row: 0, col: 0, cost: 10 },
        { row: 1, col: 1, cost: 20 },
        { row: 2, col: 1, cost: 5 },
      ],
    };
    const sol = solveAssignmentIlp(p)!;
    expect(Array.from(sol.rowToCol)).toEqual([-1, -1, 1]);
    expect(sol.total).toBe(205);
    expect(sol.optimal).toBe(true);
  });

  it('never half-serves a group whose partial service would look cheaper', () => {
    // Rows 0 and 1 form a package but only one unit can reach either: all-or-nothing ⇒ none.
    const p: IlpProblem = {
      rows: [{ weightCost: 1000, group: 0 }, { weightCost: 1000, group: 0 }, { weightCost: 1 }],
      nCols: 2,
      edges: [
        { row: 0, col: 0, cost: 1 },
        { row: 1, col: 0, cost: 1 },
        { row: 2, col: 1, cost: 0 },
      ],
    };
    const sol = solveAssignmentIlp(p)!;
    expect(Array.from(sol.rowToCol)).toEqual([-1, -1, 1]);
    expect(sol.total).toBe(2000);
  });

  it('handles empty problems, rows without edges and dead groups', () => {
    expect(solveAssignmentIlp({ rows: [], nCols: 0, edges: [] })).toEqual({
      rowToCol: new Int32Array(0),
      total: 0,
      optimal: true,
    });
    const p: IlpProblem = {
      rows: [{ weightCost: 7 }, { weightCost: 9, group: 3 }, { weightCost: 9, group: 3 }, { weightCost: 4 }],
      nCols: 3,
      edges: [
        { row: 1, col: 0, cost: 1 }, // group 3 cannot be completed: row 2 has no edge
        { row: 3, col: 2, cost: 1 },
      ],
    };
    const sol = solveAssignmentIlp(p)!;
    expect(Array.from(sol.rowToCol)).toEqual([-1, -1, -1, 2]);
    expect(sol.total).toBe(7 + 9 + 9 + 1);
    expect(sol.optimal).toBe(true);
  });

  it('matches brute force on exhaustively generated 3 × 3 instances with a group', () => {
    // Rows 0 and 1 form a group; every subset of the 9 cells is an edge set; costs vary by cell.
    for (let mask = 0; mask < 1 << 9; mask++) {
      const edges: IlpProblem['edges'] = [];
      for (let i = 0; i < 9; i++)
        if (mask & (1 << i)) edges.push({ row: Math.floor(i / 3), col: i % 3, cost: (i * 7) % 11 });
      const p: IlpProblem = {
        rows: [{ weightCost: 12, group: 0 }, { weightCost: 6, group: 0 }, { weightCost: 9 }],
        nCols: 3,
        edges,
      };
      const sol = solveAssignmentIlp(p)!;
      checkSolution(p, sol);
      expect(sol.optimal).toBe(true);
      expect(sol.total).toBe(bruteForce(p));
    }
  });

  it('is deterministic', () => {
    const p = sparseInstance(5, 12, 10, 4, 3);
    const a = solveAssignmentIlp(p)!;
    const b = solveAssignmentIlp(p)!;
    expect(Array.from(a.rowToCol)).toEqual(Array.from(b.rowToCol));
    expect(a.total).toBe(b.total);
  });

  it('rejects malformed input', () => {
    const base: IlpProblem = { rows: [{ weightCost: 1 }], nCols: 1, edges: [{ row: 0, col: 0, cost: 1 }] };
    expect(() => solveAssignmentIlp({ ...base, edges: [{ row: 0, col: 0, cost: 1.5 }] })).toThrow(RangeError);
    expect(() => solveAssignmentIlp({ ...base, edges: [{ row: 1, col: 0, cost: 1 }] })).toThrow(RangeError);
    expect(() => solveAssignmentIlp({ ...base, edges: [{ row: 0, col: 1, cost: 1 }] })).toThrow(RangeError);
    expect(() => solveAssignmentIlp({ ...base, rows: [{ weightCost: MAX_ABS_COST * 2 }] })).toThrow(
      RangeError,
    );
  });
});

describe('solveAssignmentIlp: properties against brute force', () => {
  const agrees = (p: IlpProblem, opts?: Parameters<typeof solveAssignmentIlp>[1]) => {
    const sol = solveAssignmentIlp(p, opts);
    expect(sol).not.toBeNull();
    checkSolution(p, sol!);
    expect(sol!.optimal).toBe(true);
    expect(sol!.total).toBe(bruteForce(p));
  };

  it('small integer costs (many ties)', () => {
    fc.assert(
      fc.property(smallCosts, (p) => agrees(p)),
      { numRuns: 200 },
    );
  });

  it('dispatch-scale costs (1e9–1e10, one-unit differences) stay exact', () => {
    fc.assert(
      fc.property(bigCosts, (p) => agrees(p)),
      { numRuns: 200 },
    );
  });

  it("the library's own branch-and-bound (group search skipped) is exact too", () => {
    fc.assert(
      fc.property(fc.oneof(smallCosts, bigCosts), (p) => agrees(p, { searchLps: 0 })),
      { numRuns: 150 },
    );
  });

  it('one-unit differences at 1e10 decide', () => {
    // Serving the group (rows 0, 1) costs exactly one unit less than serving row 2.
    const big = 9_999_999_000;
    const p: IlpProblem = {
      rows: [{ weightCost: 8e9, group: 0 }, { weightCost: 8e9, group: 0 }, { weightCost: 8e9 }],
      nCols: 2,
      edges: [
        { row: 0, col: 0, cost: big },
        { row: 1, col: 1, cost: 6_000_000_000 },
        { row: 2, col: 1, cost: big - 1 },
        { row: 2, col: 0, cost: 8e9 + 1 },
      ],
    };
    // group: big + 6e9 + 8e9 = 23_999_999_000; row 2 on col 1: 16e9 + big − 1 = 25_999_998_999
    const sol = solveAssignmentIlp(p)!;
    expect(sol.total).toBe(bruteForce(p));
    expect(sol.total).toBe(23_999_999_000);
    for (const delta of [-1, 0, 1]) {
      const q = { ...p, edges: p.edges.map((e, i) => (i === 1 ? { ...e, cost: e.cost + delta } : e)) };
      expect(solveAssignmentIlp(q)!.total).toBe(bruteForce(q));
    }
  });
});

describe('solveAssignmentIlp: time limit', () => {
  it('returns null or a correct solution, and optimal only when it is', () => {
    fc.assert(
      fc.property(fc.oneof(smallCosts, bigCosts), (p) => {
        const sol = solveAssignmentIlp(p, { timeoutMs: 1, searchLps: 0 });
        if (sol === null) return;
        checkSolution(p, sol);
        const opt = bruteForce(p);
        expect(sol.total).toBeGreaterThanOrEqual(opt);
        if (sol.optimal) expect(sol.total).toBe(opt);
      }),
      { numRuns: 150 },
    );
  });

  it('a hard instance under a 1 ms limit: null or correct, never a wrong optimum', () => {
    const p = sparseInstance(1, 30, 20, 10, 8);
    const exact = solveAssignmentIlp(p)!;
    expect(exact.optimal).toBe(true);
    checkSolution(p, exact);
    for (const searchLps of [0, 2]) {
      const sol = solveAssignmentIlp(p, { timeoutMs: 1, searchLps });
      if (sol === null) continue;
      checkSolution(p, sol);
      expect(sol.total).toBeGreaterThanOrEqual(exact.total);
      if (sol.optimal) expect(sol.total).toBe(exact.total);
    }
  });

  it('30 rows × 60 columns, 10 edges per row: proven optimal, quickly', () => {
    for (const groups of [0, 4, 8]) {
      for (let seed = 1; seed <= 3; seed++) {
        const p = sparseInstance(seed, 30, 60, 10, groups);
        const t0 = performance.now();
        const sol = solveAssignmentIlp(p, { timeoutMs: 2000 })!;
        const ms = performance.now() - t0;
        checkSolution(p, sol);
        expect(sol.optimal).toBe(true);
        expect(ms).toBeLessThan(5000); // generous: CI machines and parallel test files
      }
    }
  });
});
