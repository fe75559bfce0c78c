// Exact minimum-cost rectangular assignment on a sparse cost graph, with an LP dual
// certificate. Every row must be assigned to exactly one column; every column takes at
// most one row.
//
// Algorithm: successive shortest augmenting paths (as in LAPJVsp and the rectangular
// algorithm behind scipy's linear_sum_assignment). A cheap start, Jonker–Volgenant's
// augmenting row reduction from v = 0 (two capped passes of "take your cheapest column at
// price c − v, raise its price to your second-best"), assigns most rows with tight edges;
// then, for every row left free, a Dijkstra search over columns (binary heap, reduced costs
// c − u − v ≥ 0) stops at the first free column popped, only the scanned columns' potentials
// move, and the path is augmented. Rows are processed in index order and all comparisons are
// strict with a total tie-break (distance, then free columns first, then column index), so
// the result is a deterministic function of the input.
//
// Duals (the LP dual of  min Σ c x,  Σ_j x_rj = 1 per row,  Σ_r x_rj ≤ 1 per column):
//   u_r + v_j ≤ c_rj on every edge, with equality on matched edges;
//   v_j ≤ 0 on every column, and v_j = 0 on every column left unmatched.
// They hold by construction at every step: v starts at 0 and only ever decreases, only on
// columns that are matched (a bid's column, or a scanned column: the search stops when it pops
// a free one, whose own update is zero), and a matched column never becomes free again. With
// integer costs all labels are integers, so the certificate is exact.

import { IndexedMinHeap } from './heap.ts';

export interface SparseLap {
  nRows: number;
  nCols: number;
  /** Row r's edges are rowStart[r] .. rowStart[r+1]-1; length nRows + 1. */
  rowStart: Int32Array;
  col: Int32Array;
  /** Finite edge costs (integers for an exact certificate). */
  cost: Float64Array;
}

export interface LapResult {
  rowToCol: Int32Array;
  /** -1 = free. */
  colToRow: Int32Array;
  u: Float64Array;
  v: Float64Array;
  total: number;
  /** Edge relaxations performed (deterministic). */
  work: number;
}

export interface LapBudget {
  /** Maximum edge relaxations; the solve returns null rather than exceed it. */
  maxWork?: number;
  /** Polled about every CHECK_INTERVAL relaxations; true aborts the solve (null). */
  expired?: () => boolean;
}

/** Relaxations between two calls of budget.expired(). */
export const CHECK_INTERVAL = 1024;

/**
 * Work counter with a deterministic cap and a polled deadline. Solvers add to `work` and call
 * `check()` whenever `work >= next`; a false answer means the budget is spent.
 */
export class WorkMeter {
  work = 0;
  next: number;
  readonly max: number;
  private readonly expired: (() => boolean) | undefined;

  constructor(budget: LapBudget | undefined) {
    const max = budget?.maxWork;
    this.max = max === undefined ? Number.POSITIVE_INFINITY : max;
    this.expired = budget?.expired;
    this.next = Math.min(CHECK_INTERVAL, this.max + 1);
  }

  check(): boolean {
    if (!(this.work <= this.max)) return false;
    if (this.expired?.()) return false;
    this.next = Math.min(this.work + CHECK_INTERVAL, this.max + 1);
    return true;
  }
}

function validate(p: SparseLap): void {
  const { nRows, nCols, rowStart, col, cost } = p;
  if (!(nRows >= 0 && nCols >= 0) || rowStart.length !== nRows + 1) {
    throw new RangeError('solveSparse: rowStart must have nRows + 1 entries');
  }
  const nEdges = rowStart[nRows];
  if (rowStart[0] !== 0 || col.length < nEdges || cost.length < nEdges) {
    throw new RangeError('solveSparse: rowStart does not match col/cost');
  }
  for (let r = 0; r < nRows; r++) {
    if (rowStart[r + 1] < rowStart[r]) throw new RangeError('solveSparse: rowStart must be non-decreasing');
  }
  for (let e = 0; e < nEdges; e++) {
    const j = col[e];
    if (!(j >= 0 && j < nCols)) throw new RangeError(`solveSparse: column ${j} out of range`);
    if (!Number.isFinite(cost[e])) throw new RangeError('solveSparse: costs must be finite');
  }
}

/**
 * Solves the sparse rectangular assignment problem exactly. Returns null when the budget is
 * exhausted (result.work never exceeds budget.maxWork) or the instance is infeasible (some row
 * cannot be given a column of its own). Throws RangeError on malformed input.
 */
export function solveSparse(
  p: SparseLap,
  budget?: LapBudget,
  warm?: WarmStart,
  scratch: LapScratch = new LapScratch(),
): LapResult | null {
  validate(p);
  const { nRows, nCols, rowStart, col, cost } = p;
  const meter = new WorkMeter(budget);

  const rowToCol = new Int32Array(nRows).fill(-1);
  const colToRow = new Int32Array(nCols).fill(-1);
  const u = new Float64Array(nRows);
  const v = new Float64Array(nCols);

  const { free, dist, pred, label, scanned, heap } = scratch.prepare(nRows, nCols, colToRow);
  const nFree = warm
    ? warmStart(p, warm, meter, rowToCol, colToRow, u, v, free)
    : rowReduction(p, meter, rowToCol, colToRow, u, v, free);
  if (nFree < 0) return null;

  // Shortest augmenting paths. dist[j] is valid when label[j] === stamp; a column is final
  // (scanned) when label[j] === stamp + 1. Stamps advance by 2 per search.
  let stamp = 0;

  for (let f = 0; f < nFree; f++) {
    const root = free[f];
    u[root] = 0; // any base works: only the root's own edges may have negative reduced cost
    stamp += 2;
    const done = stamp + 1;
    let nScanned = 0;
    let row = root;
    let rowDist = 0;
    let sink = -1;
    for (;;) {
      const ur = u[row] - rowDist;
      const end = rowStart[row + 1];
      for (let e = rowStart[row]; e < end; e++) {
        const j = col[e];
        const lj = label[j];
        if (lj === done) continue;
        const nd = cost[e] - ur - v[j];
        if (lj !== stamp) {
          label[j] = stamp;
          dist[j] = nd;
          pred[j] = row;
          heap.push(j);
        } else if (nd < dist[j]) {
          dist[j] = nd;
          pred[j] = row;
          heap.decrease(j);
        }
      }
      meter.work += end - rowStart[row];
      if (meter.work >= meter.next && !meter.check()) return null;
      if (heap.size === 0) return null; // no augmenting path: infeasible
      const j = heap.pop();
      label[j] = done;
      const i = colToRow[j];
      if (i < 0) {
        sink = j;
        break;
      }
      scanned[nScanned++] = j;
      row = i;
      rowDist = dist[j];
    }
    heap.clear();

    // Potentials: only scanned columns (and their rows) move.
    const minDist = dist[sink];
    u[root] += minDist;
    for (let k = 0; k < nScanned; k++) {
      const j = scanned[k];
      const delta = minDist - dist[j];
      v[j] -= delta;
      u[colToRow[j]] += delta;
    }

    // Augment along the predecessor chain.
    let j = sink;
    for (;;) {
      const i = pred[j];
      colToRow[j] = i;
      const next = rowToCol[i];
      rowToCol[i] = j;
      if (i === root) break;
      j = next;
    }
  }
  if (meter.work > meter.max) return null;

  let total = 0;
  for (let r = 0; r < nRows; r++) {
    const j = rowToCol[r];
    // The cheapest (r, j) edge: duplicates are allowed and the tight one is the cheapest.
    let c = Number.POSITIVE_INFINITY;
    const end = rowStart[r + 1];
    for (let e = rowStart[r]; e < end; e++) if (col[e] === j && cost[e] < c) c = cost[e];
    total += c;
  }
  return { rowToCol, colToRow, u, v, total, work: meter.work };
}

/**
 * The working arrays of solveSparse, kept for the next solve: a caller that solves in rounds
 * saves their allocation and zeroing. Results are always fresh arrays.
 */
export class LapScratch {
  private free = new Int32Array(0);
  private dist = new Float64Array(0);
  private pred = new Int32Array(0);
  private label = new Int32Array(0);
  private scanned = new Int32Array(0);
  private heap: IndexedMinHeap | undefined;

  prepare(nRows: number, nCols: number, colToRow: Int32Array) {
    if (this.free.length < nRows) this.free = new Int32Array(nRows);
    if (this.dist.length < nCols || !this.heap) {
      this.dist = new Float64Array(nCols);
      this.pred = new Int32Array(nCols);
      this.label = new Int32Array(nCols);
      this.scanned = new Int32Array(nCols);
      this.heap = new IndexedMinHeap(nCols, this.dist, colToRow);
    } else {
      this.label.fill(0, 0, nCols);
      this.heap.reset(this.dist, colToRow);
    }
    const { free, dist, pred, label, scanned, heap } = this;
    return { free, dist, pred, label, scanned, heap };
  }
}

/**
 * A previous optimum on the same columns: when candidate lists grow between rounds, the
 * solve restarts from it and re-augments only the rows it no longer proves optimal.
 */
export interface WarmStart {
  rowToCol: Int32Array;
  v: Float64Array;
}

/**
 * Keeps every matched row whose edges all still have reduced cost ≥ 0 under the old column
 * duals (its match tight), frees the others, and resets a freed column's dual to 0 as the
 * contract requires of unmatched columns — which can make other rows prefer it, so they are
 * freed in turn (a cascade over the column → rows transpose). Returns the number of free rows.
 */
function warmStart(
  p: SparseLap,
  warm: WarmStart,
  meter: WorkMeter,
  rowToCol: Int32Array,
  colToRow: Int32Array,
  u: Float64Array,
  v: Float64Array,
  free: Int32Array,
): number {
  const { nRows, nCols, rowStart, col, cost } = p;
  v.set(warm.v);
  const tol = (x: number) => 1e-9 * Math.max(1, Math.abs(x));
  const isFree = new Uint8Array(nRows);
  // Rows keep their match when it is still an edge and still their cheapest under v.
  for (let r = 0; r < nRows; r++) {
    const m = warm.rowToCol[r];
    let cm = Number.POSITIVE_INFINITY;
    let best = Number.POSITIVE_INFINITY;
    const end = rowStart[r + 1];
    for (let e = rowStart[r]; e < end; e++) {
      const h = cost[e] - v[col[e]];
      if (h < best) best = h;
      if (col[e] === m && cost[e] < cm) cm = cost[e];
    }
    meter.work += end - rowStart[r];
    if (
      m >= 0 &&
      m < nCols &&
      cm < Number.POSITIVE_INFINITY &&
      colToRow[m] < 0 &&
      cm - v[m] <= best + tol(best)
    ) {
      rowToCol[r] = m;
      colToRow[m] = r;
      u[r] = cm - v[m];
    } else isFree[r] = 1;
  }
  // Columns whose dual must return to 0 because no row holds them.
  const tStart = new Int32Array(nCols + 1);
  for (let e = 0; e < rowStart[nRows]; e++) tStart[col[e] + 1]++;
  for (let j = 0; j < nCols; j++) tStart[j + 1] += tStart[j];
  const tRow = new Int32Array(rowStart[nRows]);
  const fill = tStart.slice(0, nCols);
  for (let r = 0; r < nRows; r++)
    for (let e = rowStart[r]; e < rowStart[r + 1]; e++) tRow[fill[col[e]]++] = r;
  const stack: number[] = [];
  for (let j = 0; j < nCols; j++) if (colToRow[j] < 0 && v[j] !== 0) stack.push(j);
  while (stack.length > 0) {
    const j = stack.pop()!;
    if (colToRow[j] >= 0 || v[j] === 0) continue;
    v[j] = 0;
    for (let t = tStart[j]; t < tStart[j + 1]; t++) {
      const r = tRow[t];
      if (isFree[r]) continue;
      // Row r now finds j cheaper than its match (u_r = its cheapest): free it.
      let cj = Number.POSITIVE_INFINITY;
      for (let e = rowStart[r]; e < rowStart[r + 1]; e++) if (col[e] === j && cost[e] < cj) cj = cost[e];
      if (cj < u[r] - tol(u[r])) {
        isFree[r] = 1;
        const m = rowToCol[r];
        rowToCol[r] = -1;
        colToRow[m] = -1;
        stack.push(m);
      }
    }
    meter.work += tStart[j + 1] - tStart[j];
  }
  if (meter.work >= meter.next && !meter.check()) return -1;
  let nFree = 0;
  for (let r = 0; r < nRows; r++) if (isFree[r]) free[nFree++] = r;
  return nFree;
}

/** Cap on augmenting-row-reduction bids, per row. */
const ARR_BIDS_PER_ROW = 8;

/**
 * Jonker–Volgenant augmenting row reduction (two passes over the free rows, capped), from
 * v = 0: a free row takes its cheapest column j1 at reduced price c − v, lowering v[j1] by the
 * gap to its second-best option, and the evicted holder bids again at once (or in the next
 * pass on a tie). v only decreases, and only on columns that are then matched; every matched
 * row keeps u_r = c − v on its edge = min over its edges of c − v. Fills `free` with the rows
 * left free and returns their number, or -1 (budget exhausted, or a row without edges).
 */
function rowReduction(
  p: SparseLap,
  meter: WorkMeter,
  rowToCol: Int32Array,
  colToRow: Int32Array,
  u: Float64Array,
  v: Float64Array,
  free: Int32Array,
): number {
  const { nRows, rowStart, col, cost } = p;
  const INF = Number.POSITIVE_INFINITY;
  for (let r = 0; r < nRows; r++) free[r] = r;
  let nFree = nRows;
  let bidsLeft = ARR_BIDS_PER_ROW * nRows;
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
      const end = rowStart[i + 1];
      let u1 = INF;
      let u2 = INF;
      let j1 = -1;
      let j2 = -1;
      for (let e = rowStart[i]; e < end; e++) {
        const j = col[e];
        const h = cost[e] - v[j];
        if (h < u2) {
          if (h < u1) {
            if (j !== j1) {
              u2 = u1;
              j2 = j1;
            }
            u1 = h;
            j1 = j;
          } else if (j !== j1) {
            u2 = h;
            j2 = j;
          }
        }
      }
      meter.work += end - rowStart[i];
      if (meter.work >= meter.next && !meter.check()) return -1;
      if (j1 < 0) return -1; // a row without edges: infeasible

      let j = j1;
      let again = false;
      if (u1 < u2) {
        if (u2 !== INF) {
          v[j1] -= u2 - u1;
          u[i] = u2;
          again = true;
        } else {
          u[i] = u1; // the only column this row has
        }
      } else {
        u[i] = u1;
        if (colToRow[j1] >= 0) j = j2; // tie: take the second-best instead of evicting
      }
      const evicted = colToRow[j];
      colToRow[j] = i;
      rowToCol[i] = j;
      if (evicted >= 0) {
        rowToCol[evicted] = -1;
        if (again) free[--k] = evicted;
        else free[nFree++] = evicted;
      }
    }
  }
  return nFree;
}
