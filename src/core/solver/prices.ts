// Least unit prices that prove an assignment optimal, for the sparse-to-full certificate.
//
// Any optimal assignment has many dual solutions; the solver's own duals can overstate what a
// slot would pay, which makes the certificate ask for far longer candidate lists than needed.
// With prices p_j = −v_j ≥ 0, optimality requires every row r to prefer its match m(r):
//     c_rj + p_j ≥ c_r,m(r) + p_m(r)   for every edge (r, j),
// and p_j = 0 for unmatched columns. The componentwise least such p is the least fixpoint of
//     p_j = max(0, max_{r,(r,j)} p_m(r) + c_r,m(r) − c_rj),
// a longest-path problem with no positive cycle (the assignment is optimal), computed by
// label correcting. The row dual u_r = c_r,m(r) + p_m(r) is then the smallest possible.

import type { SparseLap } from './lap.ts';

/**
 * Least prices for an optimal assignment, or null when label correcting exceeds
 * `maxWork` relaxations (the caller keeps the solver's duals) or finds the assignment not
 * optimal (a price would have to rise on an unmatched column).
 */
export function leastPrices(
  p: SparseLap,
  rowToCol: Int32Array,
  colToRow: Int32Array,
  maxWork: number,
): { prices: Float64Array; u: Float64Array; work: number } | null {
  const { nRows, nCols, rowStart, col, cost } = p;
  const prices = new Float64Array(nCols);
  const matchCost = new Float64Array(nRows);
  for (let r = 0; r < nRows; r++) {
    const m = rowToCol[r];
    for (let e = rowStart[r]; e < rowStart[r + 1]; e++) {
      if (col[e] === m) {
        matchCost[r] = cost[e];
        break;
      }
    }
  }
  const queue = new Int32Array(nRows + 1);
  const inQueue = new Uint8Array(nRows);
  let head = 0;
  let tail = 0;
  for (let r = 0; r < nRows; r++) {
    queue[tail++] = r;
    inQueue[r] = 1;
  }
  let size = nRows;
  let work = 0;
  while (size > 0) {
    const r = queue[head];
    head = head === nRows ? 0 : head + 1;
    size--;
    inQueue[r] = 0;
    const m = rowToCol[r];
    const base = prices[m] + matchCost[r];
    for (let e = rowStart[r]; e < rowStart[r + 1]; e++) {
      const j = col[e];
      if (j === m) continue;
      const need = base - cost[e];
      if (need > prices[j] + 1e-9 * Math.max(1, Math.abs(need))) {
        const owner = colToRow[j];
        // An unmatched column must stay at price 0: the assignment would not be optimal.
        if (owner < 0) return null;
        prices[j] = need;
        if (!inQueue[owner]) {
          queue[tail] = owner;
          tail = tail === nRows ? 0 : tail + 1;
          size++;
          inQueue[owner] = 1;
        }
      }
      if (++work > maxWork) return null;
    }
  }
  const u = new Float64Array(nRows);
  for (let r = 0; r < nRows; r++) u[r] = matchCost[r] + prices[rowToCol[r]];
  return { prices, u, work };
}
