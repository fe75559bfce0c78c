// The baseline policy of CAD systems in use: incidents in priority then arrival order, each
// slot gets the capable free unit with the shortest ETA; an immediate incident with no free
// unit takes the nearest pre-emptible one; a joint force that must be complete is sent only
// when every slot can be filled.

import type { Pool } from './capability-index.ts';
import type { Candidate, Solved } from './decision.ts';
import { type Column, edgeCost, eligible, etaS, type Row } from './model.ts';
import type { PassInput } from './passes.ts';
import type { TravelTimes } from './ports.ts';

/**
 * The eligible column with the least ETA among those accepted by `ok`, found by widening
 * the nearest-by-distance search until the ETA lower bound of the rest cannot beat it.
 */
export function bestByEta(
  r: Row,
  input: PassInput,
  pool: Pool,
  ok: (c: Column) => boolean,
  seen: Candidate[],
): Candidate | null {
  const { index, options, ctx } = input;
  const travel: TravelTimes = ctx.travel;
  let k = options.initialK;
  const total = index.count(r.capability, pool);
  for (;;) {
    const { cols, restLowerBoundS } = index.nearest(r.capability, pool, r.incident.location, k, travel, ok);
    let best: Candidate | null = null;
    seen.length = 0;
    for (const c of cols) {
      const eta = etaS(r, c, travel);
      if (eta > options.maxEtaS) continue;
      const cand = { col: c, etaS: eta, cost: edgeCost(r, c, eta, options) };
      seen.push(cand);
      if (!best || eta < best.etaS || (eta === best.etaS && c.index < best.col.index)) best = cand;
    }
    if (restLowerBoundS > options.maxEtaS || (best && best.etaS <= restLowerBoundS) || k >= total)
      return best;
    k *= 2;
  }
}

export function solveGreedy(input: PassInput): Solved {
  const { rows } = input;
  const used = new Set<Column>();
  // Columns not used yet, per pool and capability. Once none is left, a search could only walk
  // the whole grid to find nothing: after a restart with a backlog of thousands of incidents,
  // that was nearly all of a decision's time (the rows beyond the units went unserved anyway).
  const left: Record<Pool, Map<string, number>> = { free: new Map(), preempt: new Map() };
  const leftOf = (pool: Pool, cap: string) => left[pool].get(cap) ?? input.index.count(cap, pool);
  const search = (r: Row, pool: Pool, ok: (c: Column) => boolean, seen: Candidate[]) => {
    if (leftOf(pool, r.capability) > 0) return bestByEta(r, input, pool, ok, seen);
    seen.length = 0;
    return null;
  };
  const chosen: (Candidate | null)[] = rows.map(() => null);
  const candidates: Candidate[][] = rows.map(() => []);
  let work = 0;
  let i = 0;
  while (i < rows.length) {
    // Rows of one incident are contiguous in canonical order.
    let j = i;
    while (j < rows.length && rows[j].incident === rows[i].incident) j++;
    const picks: (Candidate | null)[] = [];
    const taken = new Set<Column>();
    for (let k = i; k < j; k++) {
      const r = rows[k];
      const free = (c: Column) => !used.has(c) && !taken.has(c) && eligible(r, c);
      let pick = search(r, 'free', free, candidates[k]);
      if (!pick && r.immediate && input.options.preemption) {
        pick = search(r, 'preempt', free, candidates[k]);
      }
      work += candidates[k].length + 1;
      picks.push(pick);
      if (pick) taken.add(pick.col);
    }
    const whole = picks.every((p) => p !== null);
    if (rows[i].group < 0 || whole) {
      picks.forEach((p, o) => {
        chosen[i + o] = p;
        if (!p) return;
        used.add(p.col);
        const pool: Pool = p.col.boundFor ? 'preempt' : 'free';
        for (const cap of p.col.unit.capabilities) left[pool].set(cap, leftOf(pool, cap) - 1);
      });
    }
    i = j;
  }
  return {
    rows,
    chosen,
    candidates,
    capableTotal: input.capableTotal,
    stats: {
      policy: 'greedy',
      rows: rows.length,
      candidates: candidates.reduce((s, c) => s + c.length, 0),
      widenRounds: 0,
      dense: false,
      ipComponents: 0,
      exact: true,
      work,
    },
  };
}
