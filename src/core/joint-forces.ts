// Joint forces that must be complete (all-or-nothing packages) but came out of the assignment
// half-served: their component is re-solved exactly as an integer program.

import { allFor } from './candidate-lists.ts';
import type { Candidate } from './decision.ts';
import { type Column, eligible, etaS, type Row } from './model.ts';
import type { LapOutcome, WorkBudget } from './pass-outcome.ts';
import type { PassInput } from './passes.ts';
import { type IlpProblem, solveAssignmentIlp } from './solver/ilp.ts';

const IP_TIMEOUT_MS = 2000;

/** Groups (all-or-nothing packages) with some slots served and some not. */
export function partialGroups(rows: Row[], chosen: (Candidate | null)[]): Set<number> {
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

export function repairPackages(
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
