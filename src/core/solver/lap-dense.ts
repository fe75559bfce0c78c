// Exact minimum-cost rectangular assignment on a dense cost matrix (every row may take every
// column), Jonker–Volgenant style, with an LP dual certificate.
//
// The problem has nRows rows, nCols real columns and, implicitly, one private "unserved"
// column per row (an edge from that row only, cost unservedCost[r]); the private columns are
// never materialised. Every row is assigned to a real column or to its private column.
//
// Phases:
//  1. Augmenting row reduction (JV's ARR, two passes from v = 0): a free row bids for its
//     cheapest column j1 at reduced price c − v, lowering v[j1] by the gap to its second-best
//     option and evicting j1's holder, who bids again at once. v only ever decreases, and only
//     on columns that end up matched, so the dual contract below holds from the start. The
//     number of bids is capped (ARR_BIDS_PER_ROW · nRows) to rule out long price wars.
//  2. Shortest augmenting paths for the rows still free: Dijkstra with O(nCols) array scans
//     (one pass per scanned row relaxes the remaining columns and finds the next closest; a
//     free column reached at the current distance ends the search at once). The private
//     column of every scanned row is a candidate sink; only the best one is kept. Only scanned
//     columns' potentials move.
// Row duals are implicit during the solve (u_r = c_r,col(r) − v_col(r), or unservedCost[r]
// when unserved) and materialised at the end.
//
// Rows are taken in decreasing order of unservedCost (ties: index order): when columns are
// scarce, the rows that matter most claim them first and the searches of the rows that end up
// unserved stay short.
//
// Duals returned (LP dual of  min Σ c x,  Σ_j x_rj = 1 per row,  Σ_r x_rj ≤ 1 per column):
//   u_r + v_j ≤ c_rj for every finite c_rj, with equality when r is assigned to j;
//   v_j ≤ 0 for every real column, v_j = 0 when j is left unassigned;
//   the implicit private columns all have v = 0, so u_r ≤ unservedCost[r], with equality
//   when r is unserved.
// With integer costs every label is an integer and the certificate is exact.

import { type LapBudget, WorkMeter } from './lap.ts';

export interface DenseLapResult {
  /** Column of each row, -1 = unserved (its private column). */
  rowToCol: Int32Array;
  /** Row of each real column, -1 = free. */
  colToRow: Int32Array;
  u: Float64Array;
  /** Duals of the real columns; the private columns' duals are all 0. */
  v: Float64Array;
  total: number;
  /** Reduced-cost evaluations performed (deterministic). */
  work: number;
}

/** Cap on ARR bids, per row. */
const ARR_BIDS_PER_ROW = 8;

/** Internal assignment code of a row sitting on its private column. */
const UNSERVED = -2;

const INF = Number.POSITIVE_INFINITY;

/**
 * Solves the dense rectangular assignment problem with per-row private unserved columns.
 * cost is row-major nRows × nCols; Infinity marks a missing edge, and an unservedCost of
 * Infinity means the row must be served. NaN and −Infinity are not allowed anywhere (not
 * checked: the solve still terminates, with an unspecified answer). Returns
 * null when the budget is exhausted (result.work never exceeds budget.maxWork) or when no
 * assignment serves every row that must be served.
 */
export function solveDense(
  nRows: number,
  nCols: number,
  cost: Float64Array,
  unservedCost: Float64Array,
  budget?: LapBudget,
): DenseLapResult | null {
  if (!(nRows >= 0 && nCols >= 0) || cost.length !== nRows * nCols || unservedCost.length !== nRows) {
    throw new RangeError('solveDense: cost must be nRows × nCols and unservedCost nRows long');
  }
  const meter = new WorkMeter(budget);
  const asg = new Int32Array(nRows);
  const colToRow = new Int32Array(nCols);
  const v = new Float64Array(nCols);
  if (!solveCore(nRows, nCols, cost, unservedCost, meter, asg, colToRow, v)) return null;

  const u = new Float64Array(nRows);
  let total = 0;
  for (let r = 0; r < nRows; r++) {
    const j = asg[r];
    if (j >= 0) {
      const c = cost[r * nCols + j];
      u[r] = c - v[j];
      total += c;
    } else {
      asg[r] = -1;
      u[r] = unservedCost[r];
      total += unservedCost[r];
    }
  }
  return { rowToCol: asg, colToRow, u, v, total, work: meter.work };
}

/**
 * Solves in place: asg (n) gets each row's column or UNSERVED, colToRow (m) each column's row
 * or -1, v (m) the column duals. Returns false when the budget ran out or the instance is
 * infeasible.
 */
function solveCore(
  n: number,
  m: number,
  cost: Float64Array,
  unservedCost: Float64Array,
  meter: WorkMeter,
  asg: Int32Array,
  colToRow: Int32Array,
  v: Float64Array,
): boolean {
  asg.fill(-1);
  colToRow.fill(-1);
  const free = new Int32Array(n);
  const nFree = rowReduction(n, m, cost, unservedCost, meter, asg, colToRow, v, free);
  if (nFree < 0) return false;
  const collist = new Int32Array(m);
  const d = new Float64Array(m);
  const pred = new Int32Array(m);
  for (let k = 0; k < nFree; k++) {
    if (!augment(free[k], m, cost, unservedCost, meter, asg, colToRow, v, collist, d, pred)) return false;
  }
  return meter.work <= meter.max;
}

/**
 * JV augmenting row reduction (two passes over the free rows, capped). Fills `free` with the
 * rows left free and returns their number, or -1 when the budget ran out or a row has no
 * option at all.
 */
function rowReduction(
  n: number,
  m: number,
  cost: Float64Array,
  unservedCost: Float64Array,
  meter: WorkMeter,
  asg: Int32Array,
  colToRow: Int32Array,
  v: Float64Array,
  free: Int32Array,
): number {
  for (let r = 0; r < n; r++) free[r] = r;
  free.sort((a, b) => unservedCost[b] - unservedCost[a] || a - b); // NaN (∞ − ∞) falls to the index
  let nFree = n;
  let bidsLeft = ARR_BIDS_PER_ROW * n;
  for (let pass = 0; pass < 2 && nFree > 0; pass++) {
    const prevFree = nFree;
    nFree = 0;
    let k = 0;
    while (k < prevFree) {
      const i = free[k++];
      if (bidsLeft <= 0) {
        free[nFree++] = i;
        continue;
      }
      bidsLeft--;
      const base = i * m;
      let u1 = INF;
      let u2 = INF;
      let j1 = -1;
      let j2 = -1;
      for (let j = 0; j < m; j++) {
        const h = cost[base + j] - v[j];
        if (h < u2) {
          if (h < u1) {
            u2 = u1;
            j2 = j1;
            u1 = h;
            j1 = j;
          } else {
            u2 = h;
            j2 = j;
          }
        }
      }
      const hp = unservedCost[i];
      if (hp < u1) {
        u2 = u1;
        j2 = j1;
        u1 = hp;
        j1 = UNSERVED;
      } else if (hp < u2) {
        u2 = hp;
        j2 = UNSERVED;
      }
      meter.work += m + 1;
      if (meter.work >= meter.next && !meter.check()) return -1;
      if (u1 === INF) return -1; // the row has no option at all

      let j = j1;
      let again = false;
      if (u1 < u2) {
        if (u2 !== INF && j1 !== UNSERVED) {
          v[j1] -= u2 - u1;
          again = true;
        }
      } else if (j1 !== UNSERVED && colToRow[j1] >= 0) {
        j = j2; // tie: take the second-best instead of evicting
      }
      if (j === UNSERVED) {
        asg[i] = UNSERVED;
        continue;
      }
      const evicted = colToRow[j];
      colToRow[j] = i;
      asg[i] = j;
      if (evicted >= 0) {
        asg[evicted] = -1;
        if (again) free[--k] = evicted;
        else free[nFree++] = evicted;
      }
    }
  }
  return nFree;
}

/**
 * One shortest augmenting path from free row f (Dijkstra over columns by array scans), then
 * the potential update and the augmentation. collist holds [0, ready) scanned columns and
 * [ready, m) the rest. Returns false when the budget ran out or no free column is reachable.
 */
function augment(
  f: number,
  m: number,
  cost: Float64Array,
  unservedCost: Float64Array,
  meter: WorkMeter,
  asg: Int32Array,
  colToRow: Int32Array,
  v: Float64Array,
  collist: Int32Array,
  d: Float64Array,
  pred: Int32Array,
): boolean {
  // Relax row f and find the closest column (ties: a free column).
  const fb = f * m;
  let minD = INF;
  let minK = -1;
  for (let j = 0; j < m; j++) {
    collist[j] = j;
    const h = cost[fb + j] - v[j];
    d[j] = h;
    pred[j] = f;
    if (h <= minD && (h < minD || colToRow[j] < 0)) {
      minD = h;
      minK = j;
    }
  }
  meter.work += m + 1;
  if (meter.work >= meter.next && !meter.check()) return false;
  let bestPriv = unservedCost[f]; // distance to the best private column of a scanned row
  let privRow = f;
  let ready = 0;
  let sink = -1; // a free real column, or -1 for privRow's private column
  let dist = 0;

  for (;;) {
    // minK is the closest unscanned column at distance minD (-1: none reachable).
    if (bestPriv <= minD) {
      if (bestPriv === INF) return false; // nothing reachable: infeasible
      if (bestPriv < minD || colToRow[collist[minK]] >= 0) {
        dist = bestPriv;
        break;
      }
    }
    if (minK < 0) return false; // only with NaN costs: give up rather than loop
    const j1 = collist[minK];
    collist[minK] = collist[ready];
    collist[ready++] = j1;
    const i = colToRow[j1];
    if (i < 0) {
      sink = j1;
      dist = minD;
      break;
    }
    // Scan row i: its distance is minD, its implicit dual c_i,j1 − v_j1.
    const ib = i * m;
    const h = minD - (cost[ib + j1] - v[j1]);
    const rowDist = minD;
    minD = INF;
    minK = -1;
    for (let k = ready; k < m; k++) {
      const j = collist[k];
      let dj = d[j];
      const nd = h + cost[ib + j] - v[j];
      if (nd < dj) {
        d[j] = nd;
        pred[j] = i;
        dj = nd;
        if (nd === rowDist && colToRow[j] < 0) {
          // a free column at the current distance: nothing can be closer
          meter.work += k - ready + 1;
          collist[k] = collist[ready];
          collist[ready++] = j;
          sink = j;
          break;
        }
      }
      if (dj <= minD && (dj < minD || colToRow[j] < 0)) {
        minD = dj;
        minK = k;
      }
    }
    if (sink >= 0) {
      dist = rowDist;
      break;
    }
    meter.work += m - ready + 1;
    if (meter.work >= meter.next && !meter.check()) return false;
    const hp = h + unservedCost[i];
    if (hp < bestPriv) {
      bestPriv = hp;
      privRow = i;
    }
  }

  // Potentials of the scanned columns (rows follow implicitly).
  for (let k = 0; k < ready; k++) {
    const j = collist[k];
    v[j] += d[j] - dist;
  }

  // Augment.
  let j = sink;
  if (sink < 0) {
    j = asg[privRow];
    asg[privRow] = UNSERVED;
    if (privRow === f) return true;
  }
  for (;;) {
    const i = pred[j];
    colToRow[j] = i;
    const next = asg[i];
    asg[i] = j;
    if (i === f) return true;
    j = next;
  }
}
