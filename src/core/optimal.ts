// The optimal policy: all open slots against all eligible units at once.
//  1. greedy first — a valid answer always exists if the budget runs out;
//  2. nearest candidates per slot from the spatial index, exact sparse assignment;
//  3. a dual certificate: slot r's dual u_r bounds what it would pay; every unit left off its
//     list costs at least the lower bound of the next-nearest one, and column duals are ≤ 0,
//     so if that bound ≥ u_r no left-off unit can improve the optimum. Rows that fail get
//     their lists doubled; when supply is scarce and many fail, the dense solver takes all;
//  4. joint forces that must be complete but came out half-served: their component is
//     solved exactly as an integer program (or, past its time limit, the package is held back
//     and the rest re-solved).

import type { Candidate, Solved } from './decision.ts';
import { solveGreedy } from './greedy.ts';
import { type Column, edgeCost, eligible, etaS, type Pool, type Row } from './model.ts';
import { LATE_FACTOR, slotCost } from './objective.ts';
import type { PassInput } from './passes.ts';
import { type IlpProblem, solveAssignmentIlp } from './solver/ilp.ts';
import { type LapBudget, solveSparse, type WarmStart } from './solver/lap.ts';
import { solveDense } from './solver/lap-dense.ts';
import { leastPrices } from './solver/prices.ts';

/** Failing-row and sparse-unserved shares above which the dense solver replaces widening. */
const DENSE_SWITCH_SHARE = 0.25;
const DENSE_SWITCH_UNSERVED = 0.05;
/** Free units per slot below which a capability counts as scarce. */
const SCARCE_RATIO = 1.5;
/** Candidate lists holding this share of all (slot, unit) pairs are dense already. */
const DENSE_SWITCH_FILL = 0.2;
/** Largest dense matrix (rows × columns) the dense path will allocate. */
const DENSE_MAX_CELLS = 25_000_000;
const MAX_WIDEN_ROUNDS = 12;
const IP_TIMEOUT_MS = 2000;

interface RowList {
  cands: Candidate[];
  /** Lower bound on the cost of sending r any eligible unit not in cands. */
  restCost: number;
  k: number;
}

/** Lists may be cut at this multiple of the slot's price, leaving room for prices to rise. */
const PRICE_MARGIN = 1.1;

class WorkBudget {
  used = 0;
  constructor(private readonly input: PassInput) {}
  forLap(): LapBudget {
    const b = this.input.ctx.budget;
    return {
      maxWork: b?.maxWork === undefined ? undefined : Math.max(0, b.maxWork - this.used),
      expired: b?.expired,
    };
  }
  expired(): boolean {
    const b = this.input.ctx.budget;
    return (b?.maxWork !== undefined && this.used >= b.maxWork) || !!b?.expired?.();
  }
}

const NONE_LEFT = Number.POSITIVE_INFINITY;

/** The cost bound of a slot for units whose ETA is at least etaLowerBoundS. */
function boundCost(r: Row, etaLowerBoundS: number, maxEtaS: number): number {
  // Units beyond the ETA cap are never candidates, so nothing is left to bound.
  return etaLowerBoundS > maxEtaS ? NONE_LEFT : slotCost(r.weight, etaLowerBoundS, r.slackS);
}

const FREE_ONLY: readonly Pool[] = ['free'];
const BOTH_POOLS: readonly Pool[] = ['free', 'preempt'];

function pools(r: Row, input: PassInput): readonly Pool[] {
  return r.immediate && input.index.count(r.capability, 'preempt') > 0 ? BOTH_POOLS : FREE_ONLY;
}

/** The k nearest units of each pool the slot may draw on. */
function listFor(r: Row, k: number, input: PassInput, forced: boolean): RowList {
  if (forced) return { cands: [], restCost: NONE_LEFT, k };
  const { index, options, ctx } = input;
  const cands: Candidate[] = [];
  let restCost = NONE_LEFT;
  for (const pool of pools(r, input)) {
    const filter = pool === 'preempt' ? (c: Column) => eligible(r, c) : undefined;
    const found = index.nearest(r.capability, pool, r.incident.location, k, ctx.travel, filter);
    const dists = ctx.travel.distanceOnly ? found.dists : undefined;
    for (let q = 0; q < found.cols.length; q++) {
      const c = found.cols[q];
      // Same value as etaS(): the search already has the great-circle distance.
      const eta = dists
        ? c.turnoutS + ctx.travel.lowerBoundS(dists[q], c.unit.speedKmh)
        : etaS(r, c, ctx.travel);
      if (eta <= options.maxEtaS) cands.push({ col: c, etaS: eta, cost: edgeCost(r, c, eta, options) });
    }
    restCost = Math.min(restCost, boundCost(r, found.restLowerBoundS, options.maxEtaS));
  }
  return { cands, restCost, k };
}

/** Smallest ETA at which serving r costs at least `price` (slot costs rise with ETA). */
function etaForCost(r: Row, price: number): number {
  const perW = price / r.weight;
  const slack = Math.max(0, r.slackS);
  // cost/w = eta + LATE_FACTOR·max(0, eta − slack), inverted piecewise.
  if (perW <= slack) return perW;
  return (perW + LATE_FACTOR * slack) / (LATE_FACTOR + 1);
}

/**
 * The list that certifies slot r at price `price` with room to spare: every unit that costs
 * less than PRICE_MARGIN × price. One box query per pool reaches the distance at which the
 * pool's ETA lower bound makes any unit that expensive; units inside the box but above the
 * cut stay off the list, and the cut itself bounds them.
 */
function widenFor(r: Row, price: number, input: PassInput): RowList {
  const { index, options, ctx } = input;
  const cut = price * PRICE_MARGIN;
  const needEta = Math.min(etaForCost(r, cut), options.maxEtaS) + 1;
  const cands: Candidate[] = [];
  let restCost = cut;
  for (const pool of pools(r, input)) {
    const hi = index.reachM(r.capability, pool, needEta, ctx.travel);
    const filter = pool === 'preempt' ? (c: Column) => eligible(r, c) : undefined;
    const found = index.within(r.capability, pool, r.incident.location, hi, ctx.travel, filter);
    for (const c of found.cols) {
      const eta = etaS(r, c, ctx.travel);
      if (eta > options.maxEtaS) continue;
      const cost = edgeCost(r, c, eta, options);
      if (cost < cut) cands.push({ col: c, etaS: eta, cost });
    }
    restCost = Math.min(restCost, boundCost(r, found.restLowerBoundS, options.maxEtaS));
  }
  return { cands, restCost, k: Math.max(options.initialK, cands.length) };
}

function allFor(r: Row, input: PassInput): Candidate[] {
  const { index, options, ctx } = input;
  const out: Candidate[] = [];
  for (const pool of ['free', 'preempt'] as const) {
    for (const c of index.all(r.capability, pool)) {
      if (!eligible(r, c)) continue;
      const eta = etaS(r, c, ctx.travel);
      if (eta <= options.maxEtaS) out.push({ col: c, etaS: eta, cost: edgeCost(r, c, eta, options) });
    }
  }
  return out;
}

interface LapOutcome {
  chosen: (Candidate | null)[];
  lists: Candidate[][];
  widenRounds: number;
  dense: boolean;
}

/** Exact assignment of the rows (forced rows stay unserved), certified against all units. */
function solveCertified(input: PassInput, forced: Set<number>, budget: WorkBudget): LapOutcome | null {
  const { rows, cols, options } = input;
  const nCols = cols.length;
  const lists: RowList[] = rows.map((r) => listFor(r, options.initialK, input, forced.has(r.index)));
  // Share of slots whose capability has fewer than SCARCE_RATIO free units per slot.
  const demand = new Map<string, number>();
  for (const r of rows) demand.set(r.capability, (demand.get(r.capability) ?? 0) + 1);
  let scarceRows = 0;
  for (const [cap, n] of demand) if (input.index.count(cap, 'free') < SCARCE_RATIO * n) scarceRows += n;
  const scarceShare = rows.length > 0 ? scarceRows / rows.length : 0;
  // Each round restarts from the previous optimum; only rows it no longer proves are re-solved.
  let warm: WarmStart | undefined;
  for (let round = 0; round <= MAX_WIDEN_ROUNDS; round++) {
    let nnz = 0;
    for (const l of lists) nnz += l.cands.length + 1;
    const rowStart = new Int32Array(rows.length + 1);
    const col = new Int32Array(nnz);
    const cost = new Float64Array(nnz);
    let e = 0;
    for (let i = 0; i < rows.length; i++) {
      rowStart[i] = e;
      const cands = lists[i].cands;
      for (let q = 0; q < cands.length; q++) {
        col[e] = cands[q].col.index;
        cost[e++] = cands[q].cost;
      }
      col[e] = nCols + i; // the row's private "unserved" column
      cost[e++] = rows[i].unservedCost;
    }
    rowStart[rows.length] = e;
    const problem = { nRows: rows.length, nCols: nCols + rows.length, rowStart, col, cost };
    const res = solveSparse(problem, budget.forLap(), warm);
    if (!res) return null;
    budget.used += res.work;
    // The least prices give the smallest row duals, hence the shortest lists that certify.
    const least = leastPrices(problem, res.rowToCol, res.colToRow, 50 * nnz);
    budget.used += least?.work ?? 0;
    const u = least?.u ?? res.u;
    warm = { rowToCol: res.rowToCol, v: res.v };
    const failing: number[] = [];
    for (let i = 0; i < rows.length; i++) {
      // Every unit off the list costs at least restCost, and unit prices are ≥ 0.
      if (lists[i].restCost < u[i] - 1e-9 * Math.max(1, Math.abs(u[i]))) failing.push(i);
    }
    if (failing.length === 0) {
      const chosen = rows.map((_, i) => {
        const j = res.rowToCol[i];
        return j < nCols ? (lists[i].cands.find((c) => c.col.index === j) ?? null) : null;
      });
      return { chosen, lists: lists.map((l) => l.cands), widenRounds: round, dense: false };
    }
    // Scarce supply shows as many slots left unserved by the sparse lists: go dense at once.
    let unservedRows = 0;
    for (let i = 0; i < rows.length; i++) if (res.rowToCol[i] >= nCols) unservedRows++;
    const manyFail = failing.length > DENSE_SWITCH_SHARE * rows.length;
    const scarce =
      (manyFail &&
        (unservedRows > DENSE_SWITCH_UNSERVED * rows.length || round >= 2 || scarceShare >= 0.5)) ||
      nnz > DENSE_SWITCH_FILL * rows.length * nCols;
    if (scarce && rows.length * nCols <= DENSE_MAX_CELLS)
      return solveAllDense(input, forced, budget, round + 1);
    // Each failing slot gets every unit that could beat its current price; prices only fall
    // as lists grow, so a few rounds certify the whole assignment.
    // A slot left unserved inflates the prices of everyone chained to it (its price is the
    // unserved penalty): give those slots more of their nearest units first; once all are
    // served, widen the rest to every unit that could beat their price.
    const unservedFailing = failing.filter((i) => res.rowToCol[i] >= nCols);
    if (unservedFailing.length > 0) {
      for (const i of unservedFailing) lists[i] = listFor(rows[i], lists[i].k * 4, input, false);
    } else {
      for (const i of failing) lists[i] = widenFor(rows[i], u[i], input);
    }
  }
  return solveAllDense(input, forced, budget, MAX_WIDEN_ROUNDS + 1);
}

/** How many units a dense row keeps for its explanation: the nearest few and its own. */
const DENSE_KEEP = 6;

/**
 * Scarce supply: every row against every eligible unit. Exact by construction. Costs go
 * straight into the matrix; only the chosen unit and the nearest few per row become
 * Candidate objects (for explanations), not all rows × units of them.
 */
function solveAllDense(
  input: PassInput,
  forced: Set<number>,
  budget: WorkBudget,
  rounds: number,
): LapOutcome | null {
  const { rows, cols, options, ctx, index } = input;
  const nCols = cols.length;
  const cost = new Float64Array(rows.length * nCols).fill(Number.POSITIVE_INFINITY);
  const eta = new Float64Array(rows.length * nCols);
  const unserved = new Float64Array(rows.length);
  let edges = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    unserved[i] = r.unservedCost;
    if (forced.has(r.index)) continue;
    for (const pool of pools(r, input)) {
      for (const c of index.all(r.capability, pool)) {
        if (pool === 'preempt' && !eligible(r, c)) continue;
        const e = etaS(r, c, ctx.travel);
        if (e > options.maxEtaS) continue;
        const k = i * nCols + c.index;
        eta[k] = e;
        cost[k] = edgeCost(r, c, e, options);
        edges++;
      }
    }
  }
  const res = solveDense(rows.length, nCols, cost, unserved, budget.forLap());
  if (!res) return null;
  budget.used += res.work + edges;
  const cand = (i: number, j: number): Candidate => ({
    col: cols[j],
    etaS: eta[i * nCols + j],
    cost: cost[i * nCols + j],
  });
  const chosen: (Candidate | null)[] = [];
  const lists: Candidate[][] = [];
  const bestJ = new Int32Array(DENSE_KEEP);
  for (let i = 0; i < rows.length; i++) {
    const j0 = res.rowToCol[i];
    // The DENSE_KEEP nearest eligible units by ETA, by insertion.
    let n = 0;
    for (let j = 0; j < nCols; j++) {
      const k = i * nCols + j;
      if (cost[k] === Number.POSITIVE_INFINITY) continue;
      if (n === DENSE_KEEP && eta[k] >= eta[i * nCols + bestJ[n - 1]]) continue;
      let p = n < DENSE_KEEP ? n++ : DENSE_KEEP - 1;
      while (p > 0 && eta[i * nCols + bestJ[p - 1]] > eta[k]) {
        bestJ[p] = bestJ[p - 1];
        p--;
      }
      bestJ[p] = j;
    }
    const list: Candidate[] = [];
    for (let q = 0; q < n; q++) if (bestJ[q] !== j0) list.push(cand(i, bestJ[q]));
    const mine = j0 >= 0 ? cand(i, j0) : null;
    if (mine) list.push(mine);
    chosen.push(mine);
    lists.push(list);
  }
  return { chosen, lists, widenRounds: rounds, dense: true };
}

/** Groups (all-or-nothing packages) with some slots served and some not. */
function partialGroups(rows: Row[], chosen: (Candidate | null)[]): Set<number> {
  const served = new Map<number, [number, number]>();
  rows.forEach((r, i) => {
    if (r.group < 0) return;
    const s = served.get(r.group) ?? [0, 0];
    s[chosen[i] ? 0 : 1]++;
    served.set(r.group, s);
  });
  const out = new Set<number>();
  for (const [g, [yes, no]] of served) if (yes > 0 && no > 0) out.add(g);
  return out;
}

/**
 * The rows to re-optimise as an integer program: partial packages plus every row reachable
 * from them through shared units (`listOf` gives a row's units, `rowsOf` a unit's rows),
 * or null when it exceeds the variable limit.
 */
function component(
  input: PassInput,
  partial: Set<number>,
  listOf: (i: number) => Candidate[],
  rowsOf: (c: Column) => number[],
): number[] | null {
  const { rows, options } = input;
  const members = new Map<number, number[]>();
  for (const r of rows) {
    if (r.group < 0) continue;
    const m = members.get(r.group);
    if (m) m.push(r.index);
    else members.set(r.group, [r.index]);
  }
  const inComp = new Set<number>();
  const seenCols = new Set<Column>();
  const queue: number[] = [];
  const add = (i: number) => {
    if (inComp.has(i)) return;
    inComp.add(i);
    queue.push(i);
    // A package enters whole.
    for (const o of members.get(rows[i].group) ?? []) add(o);
  };
  for (const [g, m] of members) if (partial.has(g)) for (const i of m) add(i);
  let vars = 0;
  for (let head = 0; head < queue.length; head++) {
    const i = queue[head];
    const l = listOf(i);
    vars += l.length + 1;
    if (vars > options.ipMaxVariables) return null;
    for (const c of l) {
      if (seenCols.has(c.col)) continue;
      seenCols.add(c.col);
      for (const o of rowsOf(c.col)) add(o);
    }
  }
  return [...inComp].sort((a, b) => a - b);
}

function repairPackages(
  input: PassInput,
  outcome: LapOutcome,
  budget: WorkBudget,
): { ok: boolean; ip: number; proven: boolean } {
  const { rows, options, ctx } = input;
  const partial = partialGroups(rows, outcome.chosen);
  if (partial.size === 0) return { ok: true, ip: 0, proven: true };
  // Over full eligibility the component is exact; if that is too large, use the certified lists.
  const fullCache = new Map<number, Candidate[]>();
  const fullOf = (i: number) => {
    let l = fullCache.get(i);
    if (!l) {
      l = allFor(rows[i], input);
      fullCache.set(i, l);
    }
    return l;
  };
  const rowsByCap = new Map<string, Row[]>();
  for (const r of rows) {
    const g = rowsByCap.get(r.capability);
    if (g) g.push(r);
    else rowsByCap.set(r.capability, [r]);
  }
  const fullRowsOf = (c: Column) =>
    c.unit.capabilities.flatMap((cap) =>
      (rowsByCap.get(cap) ?? [])
        .filter((r) => eligible(r, c) && etaS(r, c, ctx.travel) <= options.maxEtaS)
        .map((r) => r.index),
    );
  const listRows = new Map<Column, number[]>();
  outcome.lists.forEach((l, i) => {
    for (const c of l) {
      const g = listRows.get(c.col);
      if (g) g.push(i);
      else listRows.set(c.col, [i]);
    }
  });
  let listOf = fullOf;
  let comp = component(input, partial, fullOf, fullRowsOf);
  if (!comp) {
    listOf = (i) => outcome.lists[i];
    comp = component(input, partial, listOf, (c) => listRows.get(c) ?? []);
  }
  if (!comp) return { ok: false, ip: 0, proven: false };
  const inComp = new Set(comp);
  const fixedCols = new Set<Column>();
  outcome.chosen.forEach((c, i) => {
    if (c && !inComp.has(i)) fixedCols.add(c.col);
  });
  const colIds = new Map<Column, number>();
  const edges: IlpProblem['edges'] = [];
  const edgeCand: Candidate[] = [];
  comp.forEach((ri, local) => {
    for (const c of listOf(ri)) {
      if (fixedCols.has(c.col)) continue;
      let id = colIds.get(c.col);
      if (id === undefined) {
        id = colIds.size;
        colIds.set(c.col, id);
      }
      edges.push({ row: local, col: id, cost: c.cost });
      edgeCand.push(c);
    }
  });
  const problem: IlpProblem = {
    rows: comp.map((ri) => ({
      weightCost: rows[ri].unservedCost,
      ...(rows[ri].group >= 0 ? { group: rows[ri].group } : {}),
    })),
    nCols: colIds.size,
    edges,
  };
  budget.used += edges.length;
  // Only a caller with a clock (live) lets the library's timed search run; replays stay clock-free.
  const sol = solveAssignmentIlp(
    problem,
    input.ctx.budget?.expired ? { timeoutMs: IP_TIMEOUT_MS } : { clockFree: true },
  );
  if (!sol) return { ok: false, ip: 1, proven: false };
  const pick = new Map<string, Candidate>();
  for (let k = 0; k < edges.length; k++) pick.set(`${edges[k].row}:${edges[k].col}`, edgeCand[k]);
  comp.forEach((ri, local) => {
    const j = sol.rowToCol[local];
    outcome.chosen[ri] = j < 0 ? null : (pick.get(`${local}:${j}`) ?? null);
    outcome.lists[ri] = listOf(ri);
  });
  return { ok: true, ip: 1, proven: sol.optimal };
}

export function solveOptimal(input: PassInput): Solved {
  const budget = new WorkBudget(input);
  // Anytime: with a deadline, a valid greedy answer is ready before the exact search starts.
  const greedy = input.ctx.budget ? solveGreedy(input) : null;
  budget.used = greedy?.stats.work ?? 0;
  const fallback = (): Solved => {
    const g = greedy ?? solveGreedy(input);
    return { ...g, stats: { ...g.stats, policy: 'optimal', exact: false } };
  };
  const forced = new Set<number>();
  let ipComponents = 0;
  let widenRounds = 0;
  let dense = false;
  // Exact unless a joint-force program was cut short or a package had to be held back.
  let proven = true;
  // Each round holds back at least one more package, so this terminates.
  for (;;) {
    if (budget.expired()) return fallback();
    const outcome = solveCertified(input, forced, budget);
    if (!outcome) return fallback();
    widenRounds += outcome.widenRounds;
    dense ||= outcome.dense;
    const repair = repairPackages(input, outcome, budget);
    ipComponents += repair.ip;
    proven &&= repair.proven;
    if (!repair.ok) {
      for (const g of partialGroups(input.rows, outcome.chosen)) {
        for (const r of input.rows) if (r.group === g) forced.add(r.index);
      }
      continue;
    }
    return {
      rows: input.rows,
      chosen: outcome.chosen,
      candidates: outcome.lists,
      capableTotal: input.capableTotal,
      stats: {
        policy: 'optimal',
        rows: input.rows.length,
        candidates: outcome.lists.reduce((s, l) => s + l.length, 0),
        widenRounds,
        dense,
        ipComponents,
        exact: proven,
        work: budget.used,
      },
    };
  }
}
