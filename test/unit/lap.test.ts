import fc from 'fast-check';
import lpSolverModule from 'javascript-lp-solver';
import { describe, expect, it } from 'vitest';
import { CHECK_INTERVAL, type LapResult, type SparseLap, solveSparse } from '../../src/core/solver/lap.ts';
import { type DenseLapResult, solveDense } from '../../src/core/solver/lap-dense.ts';

// javascript-lp-solver is CommonJS; under NodeNext its declarations type the default import as
// the module namespace, while at run time it is the solver itself. Go through a local type.
interface LpModel {
  optimize: string;
  opType: 'min' | 'max';
  constraints: Record<string, { equal?: number; max?: number; min?: number }>;
  variables: Record<string, Record<string, number>>;
}
interface LpResult {
  feasible: boolean;
  result: number;
  [name: string]: number | boolean | undefined;
}
const lp = lpSolverModule as unknown as { Solve(model: LpModel): LpResult };

// ---------------------------------------------------------------- instances and helpers

interface Edge {
  r: number;
  j: number;
  c: number;
}

function toSparse(nRows: number, nCols: number, edges: Edge[]): SparseLap {
  const sorted = edges.map((e, k) => ({ ...e, k })).sort((a, b) => a.r - b.r || a.k - b.k);
  const rowStart = new Int32Array(nRows + 1);
  for (const e of sorted) rowStart[e.r + 1]++;
  for (let r = 0; r < nRows; r++) rowStart[r + 1] += rowStart[r];
  return {
    nRows,
    nCols,
    rowStart,
    col: Int32Array.from(sorted.map((e) => e.j)),
    cost: Float64Array.from(sorted.map((e) => e.c)),
  };
}

/** The dense instance as a sparse one: column nCols + r is row r's private column. */
function denseToSparse(nRows: number, nCols: number, cost: Float64Array, unserved: Float64Array): SparseLap {
  const edges: Edge[] = [];
  for (let r = 0; r < nRows; r++) {
    for (let j = 0; j < nCols; j++) {
      const c = cost[r * nCols + j];
      if (c !== Number.POSITIVE_INFINITY) edges.push({ r, j, c });
    }
    if (unserved[r] !== Number.POSITIVE_INFINITY) edges.push({ r, j: nCols + r, c: unserved[r] });
  }
  return toSparse(nRows, nCols + nRows, edges);
}

function tol(x: number): number {
  return 1e-9 * Math.max(1, Math.abs(x));
}

/** Checks primal feasibility, the objective and the whole dual contract. */
function checkSparse(p: SparseLap, res: LapResult): void {
  const { nRows, nCols, rowStart, col, cost } = p;
  const { rowToCol, colToRow, u, v } = res;
  expect(rowToCol.length).toBe(nRows);
  expect(colToRow.length).toBe(nCols);
  let total = 0;
  for (let r = 0; r < nRows; r++) {
    const j = rowToCol[r];
    expect(j >= 0 && j < nCols).toBe(true);
    expect(colToRow[j]).toBe(r);
    let best = Number.POSITIVE_INFINITY;
    for (let e = rowStart[r]; e < rowStart[r + 1]; e++) {
      const c = cost[e];
      // dual feasibility on every edge
      expect(u[r] + v[col[e]]).toBeLessThanOrEqual(c + tol(c));
      if (col[e] === j) best = Math.min(best, c);
    }
    expect(best).toBeLessThan(Number.POSITIVE_INFINITY); // the edge exists
    expect(Math.abs(u[r] + v[j] - best)).toBeLessThanOrEqual(tol(best)); // tight
    total += best;
  }
  let matched = 0;
  for (let j = 0; j < nCols; j++) {
    expect(v[j]).toBeLessThanOrEqual(0);
    if (colToRow[j] < 0) expect(v[j]).toBe(0);
    else {
      matched++;
      expect(rowToCol[colToRow[j]]).toBe(j);
    }
  }
  expect(matched).toBe(nRows);
  expect(Math.abs(res.total - total)).toBeLessThanOrEqual(tol(total));
  // Strong duality: the certificate proves optimality.
  let dual = 0;
  for (let r = 0; r < nRows; r++) dual += u[r];
  for (let j = 0; j < nCols; j++) dual += v[j];
  expect(Math.abs(dual - total)).toBeLessThanOrEqual(tol(total) * (nRows + nCols));
}

function checkDense(
  nRows: number,
  nCols: number,
  cost: Float64Array,
  unserved: Float64Array,
  res: DenseLapResult,
): void {
  const { rowToCol, colToRow, u, v } = res;
  expect(rowToCol.length).toBe(nRows);
  expect(colToRow.length).toBe(nCols);
  expect(u.length).toBe(nRows);
  expect(v.length).toBe(nCols);
  let total = 0;
  for (let r = 0; r < nRows; r++) {
    const j = rowToCol[r];
    for (let k = 0; k < nCols; k++) {
      const c = cost[r * nCols + k];
      if (c !== Number.POSITIVE_INFINITY) expect(u[r] + v[k]).toBeLessThanOrEqual(c + tol(c));
    }
    // private column: v = 0
    expect(u[r]).toBeLessThanOrEqual(unserved[r] + tol(unserved[r]));
    if (j < 0) {
      expect(u[r]).toBe(unserved[r]);
      total += unserved[r];
    } else {
      expect(j).toBeLessThan(nCols);
      expect(colToRow[j]).toBe(r);
      const c = cost[r * nCols + j];
      expect(c).toBeLessThan(Number.POSITIVE_INFINITY);
      expect(Math.abs(u[r] + v[j] - c)).toBeLessThanOrEqual(tol(c));
      total += c;
    }
  }
  for (let j = 0; j < nCols; j++) {
    expect(v[j]).toBeLessThanOrEqual(0);
    if (colToRow[j] < 0) expect(v[j]).toBe(0);
    else expect(rowToCol[colToRow[j]]).toBe(j);
  }
  expect(Math.abs(res.total - total)).toBeLessThanOrEqual(tol(total));
}

/** Exhaustive optimum over injective row → column maps using only existing edges; null if none. */
function bruteForce(p: SparseLap): number | null {
  const used = new Uint8Array(p.nCols);
  let best = Number.POSITIVE_INFINITY;
  const go = (r: number, acc: number): void => {
    if (r === p.nRows) {
      best = Math.min(best, acc);
      return;
    }
    for (let e = p.rowStart[r]; e < p.rowStart[r + 1]; e++) {
      const j = p.col[e];
      if (used[j]) continue;
      used[j] = 1;
      go(r + 1, acc + p.cost[e]);
      used[j] = 0;
    }
  };
  go(0, 0);
  return best === Number.POSITIVE_INFINITY ? null : best;
}

/** LP optimum (the assignment polytope is integral), null when infeasible. */
function lpOptimum(p: SparseLap): number | null {
  const model: LpModel = { optimize: 'cost', opType: 'min', constraints: {}, variables: {} };
  for (let r = 0; r < p.nRows; r++) {
    model.constraints[`r${r}`] = { equal: 1 };
    for (let e = p.rowStart[r]; e < p.rowStart[r + 1]; e++) {
      const j = p.col[e];
      model.constraints[`c${j}`] = { max: 1 };
      model.variables[`x${e}`] = { cost: p.cost[e], [`r${r}`]: 1, [`c${j}`]: 1 };
    }
  }
  const res = lp.Solve(model);
  return res.feasible ? res.result : null;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random dense instance; `holes` is the share of missing edges (Infinity). */
function randomDense(
  seed: number,
  nRows: number,
  nCols: number,
  maxCost: number,
  unservedLo: number,
  unservedHi: number,
  holes = 0,
): { cost: Float64Array; unserved: Float64Array } {
  const rand = mulberry32(seed);
  const cost = new Float64Array(nRows * nCols);
  for (let k = 0; k < cost.length; k++) {
    cost[k] = rand() < holes ? Number.POSITIVE_INFINITY : Math.floor(rand() * (maxCost + 1));
  }
  const unserved = new Float64Array(nRows);
  for (let r = 0; r < nRows; r++)
    unserved[r] = unservedLo + Math.floor(rand() * (unservedHi - unservedLo + 1));
  return { cost, unserved };
}

/** Random sparse instance with a private column per row (columns nUnits..nUnits+nRows-1). */
function randomSparse(
  seed: number,
  nRows: number,
  nUnits: number,
  degree: number,
  maxCost: number,
): SparseLap {
  const rand = mulberry32(seed);
  const edges: Edge[] = [];
  for (let r = 0; r < nRows; r++) {
    for (let k = 0; k < degree; k++)
      edges.push({ r, j: Math.floor(rand() * nUnits), c: Math.floor(rand() * maxCost) });
    edges.push({ r, j: nUnits + r, c: maxCost * (10 + Math.floor(rand() * 90)) });
  }
  return toSparse(nRows, nUnits + nRows, edges);
}

// ---------------------------------------------------------------- arbitraries

const costArb = fc.integer({ min: 0, max: 1000 });

/** Sparse instance; with `privateCols` every row gets a private column (always feasible). */
const sparseArb = (maxRows: number, maxCols: number, privateCols: boolean) =>
  fc
    .record({
      nRows: fc.integer({ min: 0, max: maxRows }),
      nUnits: fc.integer({ min: 1, max: maxCols }),
      density: fc.double({ min: 0.05, max: 1, noNaN: true }),
      costs: fc.array(costArb, { minLength: maxRows * maxCols, maxLength: maxRows * maxCols }),
      picks: fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), {
        minLength: maxRows * maxCols,
        maxLength: maxRows * maxCols,
      }),
      unserved: fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: maxRows, maxLength: maxRows }),
      dup: fc.boolean(),
    })
    .map(({ nRows, nUnits, density, costs, picks, unserved, dup }) => {
      const edges: Edge[] = [];
      for (let r = 0; r < nRows; r++) {
        for (let j = 0; j < nUnits; j++) {
          const k = r * maxCols + j;
          if (picks[k] < density) edges.push({ r, j, c: costs[k] });
        }
        // a duplicate edge now and then (the cheaper one counts)
        const last = edges[edges.length - 1];
        if (dup && last !== undefined && last.r === r) edges.push({ ...last, c: costs[r] });
        if (privateCols) edges.push({ r, j: nUnits + r, c: unserved[r] });
      }
      return toSparse(nRows, nUnits + (privateCols ? nRows : 0), edges);
    });

const denseArb = (maxRows: number, maxCols: number) =>
  fc
    .record({
      nRows: fc.integer({ min: 0, max: maxRows }),
      nCols: fc.integer({ min: 0, max: maxCols }),
      costs: fc.array(
        fc.oneof(costArb, fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 0, max: 5 })),
        {
          minLength: maxRows * maxCols,
          maxLength: maxRows * maxCols,
        },
      ),
      unserved: fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: maxRows, maxLength: maxRows }),
    })
    .map(({ nRows, nCols, costs, unserved }) => {
      const cost = new Float64Array(nRows * nCols);
      for (let r = 0; r < nRows; r++)
        for (let j = 0; j < nCols; j++) cost[r * nCols + j] = costs[r * maxCols + j];
      return { nRows, nCols, cost, unserved: Float64Array.from(unserved.slice(0, nRows)) };
    });

// ---------------------------------------------------------------- tests

describe('solveSparse', () => {
  it('solves a small example with its certificate', () => {
    // rows 0, 1 both prefer column 0; private columns 2, 3
    const p = toSparse(2, 4, [
      { r: 0, j: 0, c: 1 },
      { r: 0, j: 1, c: 5 },
      { r: 0, j: 2, c: 100 },
      { r: 1, j: 0, c: 2 },
      { r: 1, j: 1, c: 3 },
      { r: 1, j: 3, c: 100 },
    ]);
    const res = solveSparse(p)!;
    expect(Array.from(res.rowToCol)).toEqual([0, 1]);
    expect(res.total).toBe(4);
    checkSparse(p, res);
  });

  it('handles empty instances', () => {
    const res = solveSparse(toSparse(0, 3, []))!;
    expect(res.total).toBe(0);
    expect(Array.from(res.colToRow)).toEqual([-1, -1, -1]);
    expect(Array.from(res.v)).toEqual([0, 0, 0]);
  });

  it('matches brute force on tiny instances (with and without private columns)', () => {
    fc.assert(
      fc.property(sparseArb(4, 5, false), (p) => {
        const expected = bruteForce(p);
        const res = solveSparse(p);
        if (expected === null) expect(res).toBeNull();
        else {
          expect(res).not.toBeNull();
          expect(res!.total).toBe(expected);
          checkSparse(p, res!);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('matches brute force with large integer costs (exact arithmetic up to 1e10)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 10_000_000_000 }), { minLength: 30, maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 10_000_000_000 }), { minLength: 5, maxLength: 5 }),
        (nRows, nUnits, costs, unserved) => {
          const edges: Edge[] = [];
          for (let r = 0; r < nRows; r++) {
            for (let j = 0; j < nUnits; j++)
              if ((costs[r * 6 + j] & 3) !== 0) edges.push({ r, j, c: costs[r * 6 + j] });
            edges.push({ r, j: nUnits + r, c: unserved[r] });
          }
          const p = toSparse(nRows, nUnits + nRows, edges);
          const res = solveSparse(p)!;
          expect(res.total).toBe(bruteForce(p));
          checkSparse(p, res);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('matches the LP optimum on random instances up to 15 x 25', () => {
    fc.assert(
      fc.property(sparseArb(15, 25, true), (p) => {
        const res = solveSparse(p)!;
        expect(res).not.toBeNull();
        checkSparse(p, res);
        const opt = lpOptimum(p)!;
        expect(Math.abs(res.total - opt)).toBeLessThanOrEqual(1e-6 * Math.max(1, opt));
      }),
      { numRuns: 150 },
    );
  });

  it('agrees with the LP on feasibility when there are no private columns', () => {
    fc.assert(
      fc.property(sparseArb(8, 10, false), (p) => {
        const res = solveSparse(p);
        const opt = lpOptimum(p);
        if (opt === null) expect(res).toBeNull();
        else {
          expect(res).not.toBeNull();
          checkSparse(p, res!);
          expect(Math.abs(res!.total - opt)).toBeLessThanOrEqual(1e-6 * Math.max(1, opt));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('returns null on infeasible instances', () => {
    expect(solveSparse(toSparse(2, 3, [{ r: 0, j: 0, c: 1 }]))).toBeNull(); // row 1 has no edge
    const twoForOne = toSparse(3, 3, [
      { r: 0, j: 0, c: 1 },
      { r: 0, j: 2, c: 1 },
      { r: 1, j: 0, c: 1 },
      { r: 2, j: 0, c: 1 },
    ]);
    expect(solveSparse(twoForOne)).toBeNull();
  });

  it('rejects malformed input', () => {
    expect(() => solveSparse({ ...toSparse(1, 1, [{ r: 0, j: 0, c: 1 }]), nCols: 0 })).toThrow(RangeError);
    expect(() => solveSparse(toSparse(1, 1, [{ r: 0, j: 0, c: Number.NaN }]))).toThrow(RangeError);
    expect(() =>
      solveSparse({
        nRows: 2,
        nCols: 1,
        rowStart: new Int32Array(2),
        col: new Int32Array(0),
        cost: new Float64Array(0),
      }),
    ).toThrow(RangeError);
  });

  it('certifies larger random instances', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const p = randomSparse(seed, 300, 900, 12, 5000);
      const res = solveSparse(p)!;
      checkSparse(p, res);
    }
  });

  it('a warm start after lists grow gives the cold optimum and a valid certificate', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = mulberry32(seed * 7919);
      // A first round on a subset of each row's edges, then the full lists (a superset).
      const full = randomSparse(seed, 120, 200, 14, 5000);
      const keep = (e: number) => e === full.rowStart[0] || rnd() < 0.5;
      const edges: Edge[] = [];
      for (let r = 0; r < full.nRows; r++) {
        for (let e = full.rowStart[r]; e < full.rowStart[r + 1]; e++) {
          if (e === full.rowStart[r + 1] - 1 || keep(e)) edges.push({ r, j: full.col[e], c: full.cost[e] });
        }
      }
      const first = toSparse(full.nRows, full.nCols, edges);
      const r1 = solveSparse(first);
      if (!r1) continue;
      const cold = solveSparse(full);
      const warm = solveSparse(full, undefined, { rowToCol: r1.rowToCol, v: r1.v });
      expect(warm === null).toBe(cold === null);
      if (!warm || !cold) continue;
      expect(warm.total).toBe(cold.total);
      checkSparse(full, warm);
    }
  });

  it('is deterministic, including on massive ties', () => {
    const p = randomSparse(7, 200, 300, 10, 3); // costs 0..2: ties everywhere
    const a = solveSparse(p)!;
    const b = solveSparse(p)!;
    checkSparse(p, a);
    expect(Array.from(b.rowToCol)).toEqual(Array.from(a.rowToCol));
    expect(Array.from(b.u)).toEqual(Array.from(a.u));
    expect(Array.from(b.v)).toEqual(Array.from(a.v));
    expect(b.work).toBe(a.work);
  });

  it('honours maxWork exactly and polls expired() sparingly', () => {
    const p = randomSparse(11, 400, 500, 15, 1000);
    const full = solveSparse(p)!;
    expect(full.work).toBeGreaterThan(5 * CHECK_INTERVAL);
    expect(solveSparse(p, { maxWork: full.work })).not.toBeNull();
    expect(solveSparse(p, { maxWork: full.work - 1 })).toBeNull();
    expect(solveSparse(p, { maxWork: 0 })).toBeNull();
    let calls = 0;
    const res = solveSparse(p, {
      expired: () => {
        calls++;
        return false;
      },
    })!;
    expect(Array.from(res.rowToCol)).toEqual(Array.from(full.rowToCol));
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(full.work / CHECK_INTERVAL + 1);
    calls = 0;
    expect(solveSparse(p, { expired: () => ++calls >= 3 })).toBeNull();
    expect(calls).toBe(3);
  });
});

describe('solveDense', () => {
  it('solves a small example with its certificate', () => {
    const cost = Float64Array.from([1, 2, 3, 1, 9, 9]); // 2 x 3
    const unserved = Float64Array.from([50, 50]);
    const res = solveDense(2, 3, cost, unserved)!;
    expect(res.total).toBe(3);
    checkDense(2, 3, cost, unserved, res);
  });

  it('leaves rows unserved when columns are scarce or expensive', () => {
    const cost = Float64Array.from([10, 1, 12, 2, 11, 3]); // 3 x 2
    const unserved = Float64Array.from([5, 100, 100]);
    const res = solveDense(3, 2, cost, unserved)!;
    expect(Array.from(res.rowToCol)).toEqual([-1, 1, 0]);
    expect(res.total).toBe(5 + 2 + 11);
    checkDense(3, 2, cost, unserved, res);
  });

  it('matches brute force on tiny instances', () => {
    fc.assert(
      fc.property(denseArb(4, 4), ({ nRows, nCols, cost, unserved }) => {
        const res = solveDense(nRows, nCols, cost, unserved)!;
        checkDense(nRows, nCols, cost, unserved, res);
        expect(res.total).toBe(bruteForce(denseToSparse(nRows, nCols, cost, unserved)));
      }),
      { numRuns: 400 },
    );
  });

  it('matches the LP optimum and the sparse solver on random instances up to 15 x 25', () => {
    fc.assert(
      fc.property(denseArb(15, 25), ({ nRows, nCols, cost, unserved }) => {
        const res = solveDense(nRows, nCols, cost, unserved)!;
        checkDense(nRows, nCols, cost, unserved, res);
        const sp = denseToSparse(nRows, nCols, cost, unserved);
        const sres = solveSparse(sp)!;
        checkSparse(sp, sres);
        expect(res.total).toBe(sres.total);
        const opt = lpOptimum(sp)!;
        expect(Math.abs(res.total - opt)).toBeLessThanOrEqual(1e-6 * Math.max(1, opt));
      }),
      { numRuns: 150 },
    );
  });

  it('agrees with the sparse solver on larger instances of every shape', () => {
    const shapes: [number, number, number, number, number, number][] = [
      // nRows, nCols, maxCost, unserved lo/hi, holes
      [120, 120, 1000, 10_000, 100_000, 0],
      [150, 60, 1000, 500, 3000, 0],
      [60, 150, 1000, 10_000, 100_000, 0.3],
      [100, 100, 3, 2, 8, 0], // ties everywhere
      [80, 90, 1_000_000_000, 1e10, 1e10, 0.1], // large costs
    ];
    let seed = 100;
    for (const [nRows, nCols, maxCost, lo, hi, holes] of shapes) {
      const { cost, unserved } = randomDense(seed++, nRows, nCols, maxCost, lo, hi, holes);
      const res = solveDense(nRows, nCols, cost, unserved)!;
      checkDense(nRows, nCols, cost, unserved, res);
      const sp = denseToSparse(nRows, nCols, cost, unserved);
      const sres = solveSparse(sp)!;
      checkSparse(sp, sres);
      expect(res.total).toBe(sres.total);
    }
  });

  it('agrees with the sparse solver on scarce instances with tiered unserved costs', () => {
    // As the engine builds them: unserved = w · 1e9 for w in {8, 4, 2, 1}, served costs ≤ ~1e7.
    for (const [seed, nRows, nCols] of [
      [1, 200, 60],
      [2, 150, 120],
      [3, 100, 100],
    ]) {
      const rand = mulberry32(seed);
      const { cost } = randomDense(seed, nRows, nCols, 10_000_000, 0, 0, 0.2);
      const unserved = Float64Array.from({ length: nRows }, () => [8, 4, 2, 1][Math.floor(rand() * 4)] * 1e9);
      const res = solveDense(nRows, nCols, cost, unserved)!;
      checkDense(nRows, nCols, cost, unserved, res);
      const sp = denseToSparse(nRows, nCols, cost, unserved);
      const sres = solveSparse(sp)!;
      checkSparse(sp, sres);
      expect(res.total).toBe(sres.total);
    }
  });

  it('is deterministic', () => {
    const { cost, unserved } = randomDense(5, 150, 140, 4, 3, 9);
    const a = solveDense(150, 140, cost, unserved)!;
    const b = solveDense(150, 140, cost, unserved)!;
    expect(Array.from(b.rowToCol)).toEqual(Array.from(a.rowToCol));
    expect(Array.from(b.v)).toEqual(Array.from(a.v));
    expect(b.work).toBe(a.work);
  });

  it('returns null when a row has no option at all', () => {
    const inf = Number.POSITIVE_INFINITY;
    expect(solveDense(2, 2, Float64Array.from([1, 2, inf, inf]), Float64Array.from([9, inf]))).toBeNull();
    // two rows whose only option is column 0
    expect(solveDense(2, 2, Float64Array.from([1, inf, 1, inf]), Float64Array.from([inf, inf]))).toBeNull();
  });

  it('rejects mismatched sizes', () => {
    expect(() => solveDense(2, 2, new Float64Array(3), new Float64Array(2))).toThrow(RangeError);
  });

  it('honours maxWork exactly and the expired() predicate', () => {
    const { cost, unserved } = randomDense(9, 120, 120, 1000, 10_000, 50_000);
    const full = solveDense(120, 120, cost, unserved)!;
    expect(solveDense(120, 120, cost, unserved, { maxWork: full.work })).not.toBeNull();
    expect(solveDense(120, 120, cost, unserved, { maxWork: full.work - 1 })).toBeNull();
    let calls = 0;
    expect(solveDense(120, 120, cost, unserved, { expired: () => ++calls >= 2 })).toBeNull();
    expect(calls).toBe(2);
  });
});
