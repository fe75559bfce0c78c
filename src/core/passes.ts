// The frame every policy runs in: validate, build the model, solve, and when a unit was
// pre-empted, solve once more so the incident it left is re-served in the same decision.

import { CapabilityIndex } from './capability-index.ts';
import { assemble, type Candidate, type Solved } from './decision.ts';
import { CoreError } from './errors.ts';
import { buildColumns, buildRows, type Column, type Row } from './model.ts';
import { unservedLateS } from './objective.ts';
import { DEFAULT_OPTIONS, type DecideContext, type DispatchOptions } from './policy.ts';
import type { Decision, DispatchState, Unit } from './types.ts';
import { validateState } from './validate.ts';

export interface PassInput {
  rows: Row[];
  cols: Column[];
  index: CapabilityIndex;
  options: DispatchOptions;
  ctx: DecideContext;
  now: number;
  /** Units with the capability that exist at all (any status), for unserved reasons. */
  capableTotal: (cap: string) => number;
}

export type SolvePass = (input: PassInput) => Solved;

/** The model of one pass; exported for the solver bench, which feeds identical models to other solvers. */
export function buildPassInput(
  state: DispatchState,
  now: number,
  ctx: DecideContext,
  options: DispatchOptions,
): PassInput {
  const rows = buildRows(state.incidents, state.units, ctx.catalog, now, options.maxEtaS);
  // No open slot, nothing to search: no columns, no index. The live engine runs such a round
  // after every unit freed while nobody waits, and building them over a thousand units was
  // most of its time.
  const cols =
    rows.length === 0 ? [] : buildColumns(state.units, state.incidents, ctx.catalog, options.preemption);
  const index = new CapabilityIndex(cols);
  // Counted on first need: only unserved slots ask.
  let counts: Map<string, number> | undefined;
  const capableTotal = (cap: string) => {
    if (!counts) {
      counts = new Map();
      for (const u of state.units) for (const c of u.capabilities) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    return counts.get(cap) ?? 0;
  };
  return { rows, cols, index, options, ctx, now, capableTotal };
}

function runPass(
  state: DispatchState,
  now: number,
  ctx: DecideContext,
  options: DispatchOptions,
  solve: SolvePass,
) {
  return solve(buildPassInput(state, now, ctx, options));
}

/** Units as they stand after a pass's pre-emptions: taken units move to their new incident. */
function applyPreemptions(units: Unit[], solved: Solved): Unit[] {
  const moved = new Map<string, { incidentId: string; role: string }>();
  solved.rows.forEach((r, i) => {
    const c: Candidate | null = solved.chosen[i];
    if (c?.col.boundFor) moved.set(c.col.unit.id, { incidentId: r.incident.id, role: r.capability });
  });
  // Units chosen in pass 1 are spoken for; pass 2 sees them as offered to their new incidents.
  solved.rows.forEach((r, i) => {
    const c = solved.chosen[i];
    if (c && !c.col.boundFor) moved.set(c.col.unit.id, { incidentId: r.incident.id, role: r.capability });
  });
  return units.map((u) => {
    const m = moved.get(u.id);
    return m ? { ...u, status: 'offered' as const, incidentId: m.incidentId, role: m.role } : u;
  });
}

export function decideInPasses(
  input: DispatchState,
  now: number,
  ctx: DecideContext,
  policy: string,
  solve: SolvePass,
): Decision {
  const state = validateState(input, ctx.catalog);
  if (!Number.isFinite(now))
    throw new CoreError('INVALID_FIELD', 'now', 'must be a finite number of seconds');
  const options = { ...DEFAULT_OPTIONS, ...ctx.options };
  const first = runPass(state, now, ctx, options, solve);
  const d1 = assemble(first, now, options.explainAlternatives, options.maxEtaS);
  if (d1.preemptions.length === 0) return d1;
  // Second pass: the pre-empted incidents' slots are open again; no further pre-emption.
  const units = applyPreemptions(state.units, first);
  const second = runPass(
    { units, incidents: state.incidents },
    now,
    ctx,
    { ...options, preemption: false },
    solve,
  );
  const d2 = assemble(second, now, options.explainAlternatives, options.maxEtaS);
  // Pass 1's unserved slots are all rows again in pass 2: count their lateness there only.
  let pass1UnservedLate = 0;
  first.rows.forEach((r, i) => {
    if (!first.chosen[i]) pass1UnservedLate += r.weight * unservedLateS(r.slackS, options.maxEtaS);
  });
  const objective = {
    unservedWeight: d2.objective.unservedWeight,
    weightedLateS: d1.objective.weightedLateS - pass1UnservedLate + d2.objective.weightedLateS,
    weightedEtaS: d1.objective.weightedEtaS + d2.objective.weightedEtaS,
  };
  const s1 = d1.stats;
  const s2 = d2.stats;
  return {
    now,
    assignments: [...d1.assignments, ...d2.assignments],
    preemptions: d1.preemptions,
    unserved: d2.unserved,
    objective,
    stats: {
      ...s1,
      policy,
      widenRounds: s1.widenRounds + s2.widenRounds,
      ipComponents: s1.ipComponents + s2.ipComponents,
      exact: s1.exact && s2.exact,
      work: s1.work + s2.work,
      dense: s1.dense || s2.dense,
    },
  };
}
