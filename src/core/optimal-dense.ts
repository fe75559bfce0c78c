// The dense pass of the optimal policy, for scarce supply: every slot against every eligible
// unit, solved exactly by the dense assignment solver.

import { pools } from './candidate-lists.ts';
import { DISTANCE_EST_M, DISTANCE_EST_REL } from './capability-index.ts';
import type { Candidate } from './decision.ts';
import { edgeCost, eligible, etaS } from './model.ts';
import type { LapOutcome, WorkBudget } from './pass-outcome.ts';
import type { PassInput } from './passes.ts';
import { solveDense } from './solver/lap-dense.ts';

/** How many units a dense row keeps for its explanation: the nearest few and its own. */
const DENSE_KEEP = 6;

/**
 * Scarce supply: every row against every eligible unit. Exact by construction. Costs go
 * straight into the matrix; only the chosen unit and the nearest few per row (by ETA, then
 * column index) become Candidate objects (for explanations), not all rows × units of them.
 */
export function solveAllDense(
  input: PassInput,
  forced: Set<number>,
  budget: WorkBudget,
  rounds: number,
): LapOutcome | null {
  const { rows, cols, options, ctx, index } = input;
  const travel = ctx.travel;
  const nCols = cols.length;
  const cost = new Float64Array(rows.length * nCols).fill(Number.POSITIVE_INFINITY);
  const unserved = new Float64Array(rows.length);
  const est = new Float64Array(nCols);
  // Per row, the DENSE_KEEP nearest eligible units by ETA (ties: column index), by insertion.
  const keepJ = new Int32Array(rows.length * DENSE_KEEP);
  const keepEta = new Float64Array(rows.length * DENSE_KEEP);
  const kept = new Int32Array(rows.length);
  let edges = 0;
  for (let i = 0; i < rows.length; i++) {
    // A backlog of thousands against every unit takes seconds to lay out: past the caller's
    // budget, give up (the policy falls back to its greedy answer) rather than hold the caller.
    if ((i & 63) === 63 && budget.expired()) return null;
    const r = rows[i];
    unserved[i] = r.unservedCost;
    if (forced.has(r.index)) continue;
    const base = i * DENSE_KEEP;
    const worst = base + DENSE_KEEP - 1;
    let n = 0;
    for (const pool of pools(r, input)) {
      const members = index.distanceEstimates(r.capability, pool, r.incident.location, est);
      for (let id = 0; id < members.length; id++) {
        const c = members[id];
        if ((pool === 'preempt' || r.excluded) && !eligible(r, c)) continue;
        // A cost depends on the ETA only through its rounding (and the ETA cap), so the exact
        // great-circle distance is needed only where the estimate's error band straddles a
        // rounding or cap boundary, or the unit may be among the nearest kept.
        let e = Number.NaN; // the exact ETA, once known
        let eLo: number;
        let rounded: number;
        if (travel.distanceOnly) {
          const speed = c.unit.speedKmh;
          const slack = est[id] * DISTANCE_EST_REL + DISTANCE_EST_M;
          eLo = c.turnoutS + travel.lowerBoundS(Math.max(0, est[id] - slack), speed);
          if (eLo > options.maxEtaS) continue;
          const eHi = c.turnoutS + travel.lowerBoundS(est[id] + slack, speed);
          rounded = Math.round(eLo);
          if (eHi > options.maxEtaS || Math.round(eHi) !== rounded) {
            e = c.turnoutS + travel.lowerBoundS(index.exactDistance(id), speed);
            if (e > options.maxEtaS) continue;
            rounded = e;
          }
        } else {
          e = etaS(r, c, travel);
          if (e > options.maxEtaS) continue;
          eLo = e;
          rounded = e;
        }
        const j = c.index;
        cost[i * nCols + j] = edgeCost(r, c, rounded, options);
        edges++;
        if (n === DENSE_KEEP && eLo > keepEta[worst]) continue;
        if (Number.isNaN(e)) e = c.turnoutS + travel.lowerBoundS(index.exactDistance(id), c.unit.speedKmh);
        if (n === DENSE_KEEP && (e > keepEta[worst] || (e === keepEta[worst] && j > keepJ[worst]))) continue;
        let p = n < DENSE_KEEP ? n++ : DENSE_KEEP - 1;
        while (
          p > 0 &&
          (keepEta[base + p - 1] > e || (keepEta[base + p - 1] === e && keepJ[base + p - 1] > j))
        ) {
          keepEta[base + p] = keepEta[base + p - 1];
          keepJ[base + p] = keepJ[base + p - 1];
          p--;
        }
        keepEta[base + p] = e;
        keepJ[base + p] = j;
      }
    }
    kept[i] = n;
  }
  const res = solveDense(rows.length, nCols, cost, unserved, budget.forLap());
  if (!res) return null;
  budget.used += res.work + edges;
  const chosen: (Candidate | null)[] = new Array(rows.length);
  const lists: Candidate[][] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const j0 = res.rowToCol[i];
    const list: Candidate[] = [];
    for (let q = 0; q < kept[i]; q++) {
      const j = keepJ[i * DENSE_KEEP + q];
      if (j !== j0) list.push({ col: cols[j], etaS: keepEta[i * DENSE_KEEP + q], cost: cost[i * nCols + j] });
    }
    const mine =
      j0 >= 0 ? { col: cols[j0], etaS: etaS(rows[i], cols[j0], travel), cost: cost[i * nCols + j0] } : null;
    if (mine) list.push(mine);
    chosen[i] = mine;
    lists[i] = list;
  }
  return { chosen, lists, widenRounds: rounds, dense: true };
}
