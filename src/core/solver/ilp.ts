// Exact solver for one assignment component with all-or-nothing packages, as a 0-1 integer
// program solved with javascript-lp-solver (through the typed wrapper in ../lp.ts).
//
// The model is the textbook one — x_e ∈ {0,1} per edge e = (row, col) at cost(e); per row
// Σ_{e∈r} x_e + s_r = 1 with s_r "unserved" at weightCost(r); per column Σ_{e∈c} x_e ≤ 1; per
// all-or-nothing group g a binary y_g with Σ_{e∈r} x_e = y_g for every row r of g; minimise
// Σ cost·x + Σ weightCost·s — written in an equivalent, smaller form for the library's dense
// tableau (every equality costs it two rows, every `≥ 1` row a phase 1):
//   s_r = 1 − Σ_{e∈r} x_e is substituted out: x_e costs cost(e) − weightCost(r), plus the
//     constant Σ_r weightCost(r) (`offset`); an ungrouped row becomes  Σ_{e∈r} x_e ≤ 1  (R)
//   column c (only if it has ≥ 2 edges):  Σ_{e∈c} x_e ≤ 1                              (C)
//   group g with rows r ∈ g, m = |g|:     Σ_{e∈r} x_e − y_g ≤ 0  for each r ∈ g       (G)
//                                         Σ_{r∈g} Σ_{e∈r} x_e − m·y_g ≥ 0              (A)
//                                         y_g ≤ 1                                       (U)
//   (G and A together say Σ_{e∈r} x_e = y_g for every row of g — the same polytope as the
//   equalities, in m + 2 rows instead of 3m; U with G bounds those rows by 1.)
// Every constraint is then ≤ b with b ≥ 0 (A is stored as −Σx + m·y ≤ 0), so the all-slack
// basis is feasible and the relaxation needs no phase 1.
//
// Only y is integer. Without the y's the constraint matrix (bipartite incidence) is totally
// unimodular, and an LP vertex at which every y is integral is a vertex of the face
// {y = y*}, again a TU system: x is then integral too. So branching is needed on groups only —
// at most 2^(G+1) − 1 nodes. Declaring x integer too (let alone `binaries`, which adds one
// dense tableau row per variable) makes javascript-lp-solver branch on the most fractional x,
// best-first without diving; on a 30 × 20 instance with 8 groups it found no incumbent for
// minutes. x's integrality is still checked on every answer.
//
// Numerics. Costs are integers up to ~1e10 (an unserved priority-1 slot costs 8e9) while a
// one-unit difference must still decide the optimum; the library works in doubles with an
// ABSOLUTE tolerance of 1e-8 (pricing, ratio test, integrality, rounding of the reported
// objective). Every objective coefficient is scaled by 2^-k, chosen so the largest |coefficient|
// lands in (2^13, 2^14]. Scaling by a power of two is exact, so every scaled coefficient is
// still an exact multiple of the unit 2^-k; with |costs| ≤ MAX_ABS_COST = 2^35 (coefficients
// ≤ 2^36) the unit stays ≥ 2^-22 ≈ 2.4e-7, far above the tolerance, while float noise on
// magnitudes ≤ 2^14 · rows stays far below it. (With y fixed, reduced costs are integer
// multiples of the unit, so a basis the library accepts as optimal really is.) The returned
// `total` is never taken from the library: it is recomputed from the chosen edges by summing
// the integer costs (evaluateAssignment), after the chosen assignment has been checked
// (integral, one column per row, no column twice, no half-served group, existing edges only).
// An answer failing the check is not returned.
//
// Search, optimality and the time limit.
//  1. groupSearch: a deterministic best-first branch-and-bound over the y's, one
//     javascript-lp-solver LP per node (the root node is the LP relaxation; without groups, or
//     when the relaxation happens to be integral, it is the only node). It stops after
//     `searchLps` LP solves (default SEARCH_MAX_LPS, enough for the full tree of up to 5 groups)
//     and reports a proven lower bound: the least bound of its unexplored nodes. If it
//     exhausts the tree, its answer is optimal; nothing here reads a clock, and `timeoutMs`
//     does not bound this step — its cost is bounded by the LP count instead.
//  2. Only if it stopped early: the same model with y declared `ints` goes to the library's own
//     branch-and-bound, with `timeoutMs` passed as `options.timeout`. That limit is measured
//     with the library's own clock (inside the dependency; this module reads none)
//     and checked only between nodes, so a single LP can overrun it. The library returns its
//     best incumbent whether or not the clock stopped it and does not say which, and a simplex
//     cycle silently prunes a node, so its answer is proven optimal only if no time limit was
//     given, the search ended integral, no cycle was reported and the library's objective
//     matches our exact total — or if the exact total is within half a unit of step 1's lower
//     bound (costs are integers: nothing beats ⌈bound⌉).
//  The better of the two verified answers is returned, optimal: true only when proven as above;
//  a correct but unproven answer comes back with optimal: false. null means no verified answer
//  at all. The result is a pure function of the problem unless step 2 runs with a time limit
//  that is hit: names and order of rows, columns and variables follow the input's order.

import { type LpModel, type LpResult, solveLp } from '../lp.ts';

export interface IlpRow {
  /** Cost of leaving this row unserved, = unservedCost(w). */
  weightCost: number;
  /** All-or-nothing group id: all rows of a group are served or none. */
  group?: number;
}

export interface IlpEdge {
  row: number;
  col: number;
  cost: number;
}

export interface IlpProblem {
  rows: IlpRow[];
  nCols: number;
  edges: IlpEdge[];
}

export interface IlpSolution {
  /** Column per row, -1 = unserved. */
  rowToCol: Int32Array;
  /** Exact objective: Σ edge cost of served rows + Σ weightCost of unserved rows. */
  total: number;
  /** True when the solution is proven optimal (see the header). */
  optimal: boolean;
}

export interface IlpOptions {
  /** Time limit of the library's branch-and-bound (step 2 only), measured by javascript-lp-solver's own clock. */
  timeoutMs?: number;
  /** LP solves the deterministic group search (step 1) may spend; default SEARCH_MAX_LPS. */
  searchLps?: number;
  /**
   * Skip the library's branch-and-bound (step 2), whose time limit reads a clock: replays must
   * give the same answer on any machine. The group search's best (or null) stands.
   */
  clockFree?: boolean;
}

/** Largest |cost| accepted; keeps the scaled unit ≥ 2^-22, far above the library's 1e-8 tolerance. */
export const MAX_ABS_COST = 2 ** 35;

/** The largest scaled |objective coefficient| is brought into (2^(TARGET_LOG2-1), 2^TARGET_LOG2]. */
const TARGET_LOG2 = 14;

/** A variable value within this of 0 or 1 counts as integral. */
const INTEGRAL_EPS = 1e-6;

/** Objective name in the LP model; constraint names start with R, C, G, A, U or Y. */
const OBJ = 'cost';

function checkCost(what: string, v: number): void {
  if (!Number.isSafeInteger(v) || Math.abs(v) > MAX_ABS_COST) {
    throw new RangeError(`solveAssignmentIlp: ${what} must be an integer with |v| ≤ 2^35, got ${v}`);
  }
}

/** Cheapest cost per existing (row, col) pair; duplicates keep the minimum. */
function edgeCosts(p: IlpProblem): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of p.edges) {
    const key = e.row * p.nCols + e.col;
    const prev = m.get(key);
    if (prev === undefined || e.cost < prev) m.set(key, e.cost);
  }
  return m;
}

/**
 * Exact objective of an assignment, or null when it is infeasible: wrong length, a column out of
 * range or used twice, a (row, col) pair with no edge, or an all-or-nothing group half-served.
 * Duplicate edges count at their cheapest cost.
 */
export function evaluateAssignment(p: IlpProblem, rowToCol: ArrayLike<number>): number | null {
  if (rowToCol.length !== p.rows.length) return null;
  const costs = edgeCosts(p);
  const used = new Uint8Array(p.nCols);
  const groupServed = new Map<number, boolean>();
  let total = 0;
  for (let r = 0; r < p.rows.length; r++) {
    const c = rowToCol[r];
    const row = p.rows[r];
    const served = c !== -1;
    if (served) {
      if (!Number.isInteger(c) || c < 0 || c >= p.nCols || used[c]) return null;
      const cost = costs.get(r * p.nCols + c);
      if (cost === undefined) return null;
      used[c] = 1;
      total += cost;
    } else {
      total += row.weightCost;
    }
    if (row.group !== undefined) {
      const prev = groupServed.get(row.group);
      if (prev === undefined) groupServed.set(row.group, served);
      else if (prev !== served) return null;
    }
  }
  return total;
}

interface BuiltModel {
  lp: LpModel;
  /** Scale applied to every objective coefficient (a power of two ≤ 1). */
  scale: number;
  /** Edges in the model, in variable order: [row, col, variable name]. */
  xs: Array<[number, number, string]>;
  /** Group variables y0 … y(nGroups−1); y_g also carries a coefficient on the (absent unless fixed) row `Y<g>`. */
  nGroups: number;
  /** Σ weightCost over all rows: the constant the LP objective omits (units, not scaled). */
  offset: number;
}

function validate(p: IlpProblem): void {
  if (!Number.isInteger(p.nCols) || p.nCols < 0) throw new RangeError('solveAssignmentIlp: bad nCols');
  p.rows.forEach((r, i) => {
    checkCost(`rows[${i}].weightCost`, r.weightCost);
  });
  p.edges.forEach((e, i) => {
    if (!Number.isInteger(e.row) || e.row < 0 || e.row >= p.rows.length) {
      throw new RangeError(`solveAssignmentIlp: edges[${i}].row out of range`);
    }
    if (!Number.isInteger(e.col) || e.col < 0 || e.col >= p.nCols) {
      throw new RangeError(`solveAssignmentIlp: edges[${i}].col out of range`);
    }
    checkCost(`edges[${i}].cost`, e.cost);
  });
}

/**
 * Build the LP model. Reductions (all exact): duplicate edges keep the cheapest; a group with a
 * row that has no edge can never be served, so its rows lose their edges; rows without edges are
 * left out (they are unserved at weightCost); columns with at most one edge need no constraint;
 * a group with a single row needs no group variable.
 */
function buildModel(p: IlpProblem, costs: Map<number, number>): BuiltModel | null {
  const nRows = p.rows.length;
  const rowEdges: number[][] = Array.from({ length: nRows }, () => []);
  for (const key of costs.keys()) rowEdges[Math.floor(key / p.nCols)].push(key % p.nCols);
  for (const cols of rowEdges) cols.sort((a, b) => a - b);

  // Groups in order of first appearance; dead groups (a row with no edge) lose all edges.
  const groupRows = new Map<number, number[]>();
  for (let r = 0; r < nRows; r++) {
    const g = p.rows[r].group;
    if (g === undefined) continue;
    const list = groupRows.get(g);
    if (list) list.push(r);
    else groupRows.set(g, [r]);
  }
  const rowGroup = new Int32Array(nRows).fill(-1);
  let nGroups = 0;
  for (const rows of groupRows.values()) {
    if (rows.some((r) => rowEdges[r].length === 0)) {
      for (const r of rows) rowEdges[r] = [];
    } else if (rows.length > 1) {
      for (const r of rows) rowGroup[r] = nGroups;
      nGroups++;
    }
  }

  const colDegree = new Int32Array(p.nCols);
  for (const cols of rowEdges) for (const c of cols) colDegree[c]++;

  // With s_r substituted out (see the header) x_e costs cost(e) − weightCost(r), plus `offset`.
  const xs: Array<[number, number, string]> = [];
  const coef: number[] = [];
  let maxAbs = 0;
  let offset = 0;
  for (let r = 0; r < nRows; r++) {
    offset += p.rows[r].weightCost;
    for (const c of rowEdges[r]) {
      xs.push([r, c, `x${r}_${c}`]);
      const d = costs.get(r * p.nCols + c)! - p.rows[r].weightCost;
      coef.push(d);
      maxAbs = Math.max(maxAbs, Math.abs(d));
    }
  }
  if (xs.length === 0) return null;
  const k = maxAbs > 0 ? Math.max(0, Math.ceil(Math.log2(maxAbs)) - TARGET_LOG2) : 0;
  const scale = 2 ** -k;

  const constraints: LpModel['constraints'] = {};
  const variables: LpModel['variables'] = {};
  const ints: Record<string, 1> = {};
  for (let r = 0; r < nRows; r++) {
    if (rowEdges[r].length === 0) continue;
    if (rowGroup[r] >= 0) constraints[`G${rowGroup[r]}_${r}`] = { max: 0 };
    else constraints[`R${r}`] = { max: 1 };
  }
  for (let g = 0; g < nGroups; g++) {
    constraints[`U${g}`] = { max: 1 };
    constraints[`A${g}`] = { min: 0 };
  }
  for (let c = 0; c < p.nCols; c++) if (colDegree[c] > 1) constraints[`C${c}`] = { max: 1 };
  xs.forEach(([r, c, name], i) => {
    const v: Record<string, number> = { [OBJ]: coef[i] * scale };
    if (rowGroup[r] >= 0) {
      v[`G${rowGroup[r]}_${r}`] = 1;
      v[`A${rowGroup[r]}`] = 1;
    } else v[`R${r}`] = 1;
    if (colDegree[c] > 1) v[`C${c}`] = 1;
    variables[name] = v;
  });
  for (let g = 0; g < nGroups; g++) {
    // `Y<g>` is only a constraint in the nodes of the proof search (fixing y_g); elsewhere the
    // library ignores coefficients on names that are not constraints.
    const v: Record<string, number> = { [OBJ]: 0, [`Y${g}`]: 1, [`U${g}`]: 1 };
    let m = 0;
    for (let r = 0; r < nRows; r++) {
      if (rowGroup[r] === g) {
        v[`G${g}_${r}`] = -1;
        m++;
      }
    }
    v[`A${g}`] = -m;
    variables[`y${g}`] = v;
    ints[`y${g}`] = 1;
  }
  return {
    lp: { optimize: OBJ, opType: 'min', constraints, variables, ints, options: { presolve: false } },
    scale,
    xs,
    nGroups,
    offset,
  };
}

/** Integral assignment read from a library result, or null if any x is fractional or a row doubles up. */
function decode(nRows: number, xs: BuiltModel['xs'], res: LpResult): Int32Array | null {
  const rowToCol = new Int32Array(nRows).fill(-1);
  for (const [r, c, name] of xs) {
    const v = res.values.get(name) ?? 0;
    if (Math.abs(v - 1) <= INTEGRAL_EPS) {
      if (rowToCol[r] !== -1) return null;
      rowToCol[r] = c;
    } else if (Math.abs(v) > INTEGRAL_EPS) {
      return null;
    }
  }
  return rowToCol;
}

interface Assignment {
  rowToCol: Int32Array;
  total: number;
}

/** Default LP budget of the group search: the full tree of up to 5 groups has 63 nodes. */
export const SEARCH_MAX_LPS = 64;

/** Whether `a` is proven optimal given a lower bound on every solution not yet seen. */
const provenBy = (a: Assignment, lowerBound: number) => a.total - lowerBound <= 0.5;

/**
 * Deterministic best-first branch-and-bound over the group variables (the rest is TU, see the
 * header), within `maxLps` LP solves. Returns the best verified assignment found and a proven
 * lower bound on the cost of any assignment it did not examine (+∞ when the tree was
 * exhausted): the optimum is ≥ min(best.total, lowerBound).
 */
function groupSearch(
  p: IlpProblem,
  built: BuiltModel,
  maxLps: number,
): { best: Assignment | null; lowerBound: number } {
  const { lp, scale, xs, nGroups, offset } = built;
  let best: Assignment | null = null;
  let lps = 0;
  // Bounds of subtrees given up on numerically (their parent's bound still holds for them).
  let lost = Number.POSITIVE_INFINITY;
  // Open nodes: the parent's LP bound (units) and the fixed y values (-1 = free).
  const open: Array<{ bound: number; seq: number; fixed: Int8Array }> = [
    { bound: Number.NEGATIVE_INFINITY, seq: 0, fixed: new Int8Array(nGroups).fill(-1) },
  ];
  let seq = 1;
  // An improving integer solution costs ≤ best − 1, so a bound ≥ best − 0.5 cannot hold one.
  const pruned = (bound: number) => best !== null && bound >= best.total - 0.5;
  while (open.length > 0) {
    open.sort((a, b) => a.bound - b.bound || a.seq - b.seq);
    const node = open[0];
    if (pruned(node.bound)) {
      open.shift();
      continue;
    }
    if (lps >= maxLps) break;
    open.shift();
    lps++;
    const constraints = { ...lp.constraints };
    node.fixed.forEach((v, g) => {
      if (v >= 0) constraints[`Y${g}`] = { equal: v };
    });
    const res = solveLp({ ...lp, constraints, ints: undefined });
    if (res.cycled || !res.bounded) {
      lost = Math.min(lost, node.bound);
      continue;
    }
    if (!res.feasible) continue;
    const bound = res.result / scale + offset;
    if (pruned(bound)) continue;
    let branchOn = -1;
    let dist = 1;
    for (let g = 0; g < nGroups; g++) {
      const y = res.values.get(`y${g}`) ?? 0;
      const d = Math.abs(y - 0.5);
      if (Math.abs(y - Math.round(y)) > INTEGRAL_EPS && d < dist) {
        dist = d;
        branchOn = g;
      }
    }
    if (branchOn < 0) {
      const rowToCol = decode(p.rows.length, xs, res);
      const total = rowToCol && evaluateAssignment(p, rowToCol);
      // The library's objective must match the exact cost, else its bound is not trusted either.
      if (!rowToCol || total === null || Math.abs(bound - total) > 0.5) lost = Math.min(lost, node.bound);
      else if (best === null || total < best.total) best = { rowToCol, total };
      continue;
    }
    for (const v of [1, 0]) {
      const fixed = node.fixed.slice();
      fixed[branchOn] = v;
      open.push({ bound, seq: seq++, fixed });
    }
  }
  const lowerBound = open.reduce((m, n) => Math.min(m, n.bound), lost);
  return { best, lowerBound };
}

/**
 * Exact minimum-cost assignment of a component with all-or-nothing groups (see the header).
 * Returns null when no verified solution was obtained (the time limit was hit before the
 * library found an integral solution and the group search found none, or the library returned
 * only infeasible/fractional answers). Throws RangeError on malformed input (indices out of
 * range, costs not integers within ±2^35).
 */
export function solveAssignmentIlp(p: IlpProblem, opts?: IlpOptions): IlpSolution | null {
  validate(p);
  const built = buildModel(p, edgeCosts(p));
  const nRows = p.rows.length;
  if (!built) {
    // Nothing can be served (no edges, or only edges of groups that cannot be completed).
    const rowToCol = new Int32Array(nRows).fill(-1);
    const total = evaluateAssignment(p, rowToCol);
    return total === null ? null : { rowToCol, total, optimal: true };
  }

  // 1. Deterministic search over the groups.
  const search = groupSearch(p, built, opts?.searchLps ?? SEARCH_MAX_LPS);
  if (search.best && provenBy(search.best, search.lowerBound)) return { ...search.best, optimal: true };

  if (opts?.clockFree) return search.best ? { ...search.best, optimal: false } : null;

  // 2. The library's branch-and-bound (branching on y only), under the optional time limit.
  const { lp, scale, xs, nGroups, offset } = built;
  const timeoutMs = opts?.timeoutMs;
  const res = solveLp(
    timeoutMs === undefined ? lp : { ...lp, options: { ...lp.options, timeout: timeoutMs } },
  );
  let found: Assignment | null = null;
  if (res.feasible && res.bounded) {
    const rowToCol = decode(nRows, xs, res);
    const total = rowToCol && evaluateAssignment(p, rowToCol);
    if (rowToCol && total !== null) found = { rowToCol, total };
  }
  const exhaustive =
    found !== null &&
    timeoutMs === undefined &&
    (res.isIntegral || nGroups === 0) && // no ints: a plain simplex, TU ⇒ its vertex is the optimum
    !res.cycled &&
    Math.abs(res.result / scale + offset - found.total) <= 0.5 &&
    (search.best === null || found.total <= search.best.total);
  const best = found && (search.best === null || found.total < search.best.total) ? found : search.best;
  if (!best) return null;
  // If the library's search was exhaustive, `found` is optimal and `best` costs no more.
  return { ...best, optimal: exhaustive || provenBy(best, search.lowerBound) };
}
