// The optimal policy: all open slots against all eligible units at once.
//  1. greedy first — a valid answer always exists if the budget runs out;
//  2. nearest candidates per slot from the spatial index, exact sparse assignment;
//  3. a dual certificate: slot r's dual u_r bounds what it would pay; every unit left off its
//     list costs at least the lower bound of the next-nearest one, and column duals are ≤ 0,
//     so if that bound ≥ u_r no left-off unit can improve the optimum. Rows that fail get
//     every unit that could beat their price; when supply is scarce and many fail, the dense
//     solver takes all (optimal-dense.ts);
//  4. joint forces that must be complete but came out half-served: their component is
//     solved exactly as an integer program (joint-forces.ts; or, past its time limit, the
//     package is held back and the rest re-solved).

import { CandidateStore, listFor, type RowList, widenFor } from './candidate-lists.ts';
import type { Candidate, Solved } from './decision.ts';
import { solveGreedy } from './greedy.ts';
import { partialGroups, repairPackages } from './joint-forces.ts';
import { solveAllDense } from './optimal-dense.ts';
import { type LapOutcome, WorkBudget } from './pass-outcome.ts';
import type { PassInput } from './passes.ts';
import { LapScratch, solveSparse } from './solver/lap.ts';
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

/** Exact assignment of the rows (forced rows stay unserved), certified against all units. */
function solveCertified(input: PassInput, forced: Set<number>, budget: WorkBudget): LapOutcome | null {
  const { rows, cols, options } = input;
  const nCols = cols.length;
  const nRows = rows.length;
  const store = new CandidateStore(nRows * (options.initialK + 1));
  const lists: RowList[] = new Array(nRows);
  for (let i = 0; i < nRows; i++) {
    const r = rows[i];
    const p = rows[i - 1];
    // Slots of one incident and capability are adjacent and alike: one search serves them all.
    lists[i] =
      i > 0 &&
      p.incident === r.incident &&
      p.capability === r.capability &&
      !forced.has(p.index) &&
      !forced.has(r.index)
        ? lists[i - 1]
        : listFor(r, options.initialK, input, store, forced.has(r.index));
  }
  const rowStart = new Int32Array(nRows + 1);
  const scratch = new LapScratch();
  const unserved = new Float64Array(nRows);
  for (let i = 0; i < nRows; i++) unserved[i] = rows[i].unservedCost;
  // Each round solves from scratch: the cold start (row reduction) beats re-augmenting from
  // the previous optimum when lists grew in many places.
  for (let round = 0; round <= MAX_WIDEN_ROUNDS; round++) {
    let nnz = nRows;
    for (const l of lists) nnz += l.len;
    const col = new Int32Array(nnz);
    const cost = new Float64Array(nnz);
    const { col: sCol, cost: sCost } = store;
    let e = 0;
    for (let i = 0; i < nRows; i++) {
      rowStart[i] = e;
      const { start, len } = lists[i];
      for (let q = start; q < start + len; q++) {
        col[e] = sCol[q];
        cost[e++] = sCost[q];
      }
      col[e] = nCols + i; // the row's private "unserved" column
      cost[e++] = unserved[i];
    }
    rowStart[nRows] = e;
    const problem = { nRows, nCols: nCols + nRows, rowStart, col, cost };
    const res = solveSparse(problem, budget.forLap(), undefined, scratch);
    if (!res) return null;
    budget.used += res.work;
    // The least prices give the smallest row duals, hence the shortest lists that certify.
    const least = leastPrices(problem, res.rowToCol, res.colToRow, 50 * nnz);
    budget.used += least?.work ?? 0;
    const u = least?.u ?? res.u;
    const failing: number[] = [];
    for (let i = 0; i < nRows; i++) {
      // Every unit off the list costs at least restCost, and unit prices are ≥ 0.
      if (lists[i].restCost < u[i] - 1e-9 * Math.max(1, Math.abs(u[i]))) failing.push(i);
    }
    if (failing.length === 0) return certified(input, store, lists, res.rowToCol, round);
    // Scarce supply shows as many slots left unserved by the sparse lists: go dense at once.
    let unservedRows = 0;
    for (let i = 0; i < nRows; i++) if (res.rowToCol[i] >= nCols) unservedRows++;
    const manyFail = failing.length > DENSE_SWITCH_SHARE * nRows;
    const scarce =
      (manyFail &&
        (unservedRows > DENSE_SWITCH_UNSERVED * nRows || round >= 2 || scarceShare(input) >= 0.5)) ||
      nnz > DENSE_SWITCH_FILL * nRows * nCols;
    if (scarce && nRows * nCols <= DENSE_MAX_CELLS) return solveAllDense(input, forced, budget, round + 1);
    // Each failing slot gets every unit that could beat its current price; prices only fall
    // as lists grow, so a few rounds certify the whole assignment.
    // A slot left unserved inflates the prices of everyone chained to it (its price is the
    // unserved penalty): give those slots more of their nearest units first; once all are
    // served, widen the rest to every unit that could beat their price.
    const unservedFailing = failing.filter((i) => res.rowToCol[i] >= nCols);
    if (unservedFailing.length > 0) {
      for (const i of unservedFailing) lists[i] = listFor(rows[i], lists[i].k * 4, input, store, false);
    } else {
      for (let q = 0; q < failing.length; q++) {
        // Failing slots that share a list (one incident, one capability) share its widening too,
        // at the highest of their prices: one search certifies them all.
        const i = failing[q];
        let price = u[i];
        let last = q;
        while (last + 1 < failing.length && failing[last + 1] === failing[last] + 1) {
          if (lists[failing[last + 1]] !== lists[i]) break;
          last++;
          price = Math.max(price, u[failing[last]]);
        }
        const l = widenFor(rows[i], price, input, store);
        for (let t = q; t <= last; t++) lists[failing[t]] = l;
        q = last;
      }
    }
  }
  return solveAllDense(input, forced, budget, MAX_WIDEN_ROUNDS + 1);
}

/** Share of slots whose capability has fewer than SCARCE_RATIO free units per slot. */
function scarceShare(input: PassInput): number {
  const { rows, index } = input;
  const demand = new Map<string, number>();
  for (const r of rows) demand.set(r.capability, (demand.get(r.capability) ?? 0) + 1);
  let scarceRows = 0;
  for (const [cap, n] of demand) if (index.count(cap, 'free') < SCARCE_RATIO * n) scarceRows += n;
  return rows.length > 0 ? scarceRows / rows.length : 0;
}

/** The certified lists as Candidate objects (shared where the lists are), and each row's pick. */
function certified(
  input: PassInput,
  store: CandidateStore,
  lists: RowList[],
  rowToCol: Int32Array,
  rounds: number,
): LapOutcome {
  const { rows, cols } = input;
  const chosen: (Candidate | null)[] = new Array(rows.length);
  const out: Candidate[][] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const l = lists[i];
    const cands = i > 0 && lists[i - 1] === l ? out[i - 1] : store.candidates(l, cols);
    out[i] = cands;
    const j = rowToCol[i];
    let pick: Candidate | null = null;
    for (let q = 0; q < cands.length && j < cols.length; q++) {
      if (cands[q].col.index === j) {
        pick = cands[q];
        break;
      }
    }
    chosen[i] = pick;
  }
  return { chosen, lists: out, widenRounds: rounds, dense: false };
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
