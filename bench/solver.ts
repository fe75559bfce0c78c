// Solver bench: the same seeded instances solved by the core (optimal), by greedy, and by
// javascript-lp-solver on the identical candidate sets the core certified.
// Two speed-ups are printed. "core speed-up": the core's whole decision (validation, model,
// candidates, solve, certificate, explanations) against each solver. "solver speed-up": the
// LP against the core's own exact solver given the very same 0-1 problem (core-solver row).
//   npm run bench:solver              readable table
//   npm run bench:solver -- --json    one JSON object per line
// Figures are wall-clock medians on this machine; ratios compare runs in this same process.

import { performance } from 'node:perf_hooks';
import { scalarObjective } from '../src/core/objective.ts';
import { solveOptimal } from '../src/core/optimal.ts';
import { buildPassInput } from '../src/core/passes.ts';
import { greedyPolicy, optimalPolicy } from '../src/core/policies.ts';
import { DEFAULT_OPTIONS, type DecideContext } from '../src/core/policy.ts';
import { evaluateAssignment, type IlpProblem, solveAssignmentIlp } from '../src/core/solver/ilp.ts';
import { LapScratch, solveSparse } from '../src/core/solver/lap.ts';
import { type Instance, type InstanceSpec, makeInstance } from './instances.ts';

const json = process.argv.includes('--json');
const LP_TIMEOUT_MS = 60_000;
/** javascript-lp-solver builds a dense tableau; past this many variables it cannot hold the model. */
const LP_MAX_VARIABLES = 60_000;

const SPECS: (InstanceSpec & { runs: number; lpRuns?: number })[] = [
  { incidents: 50, units: 200, seed: 101, multiShare: 0.2, allOrNothing: true, runs: 31, lpRuns: 15 },
  { incidents: 200, units: 1000, seed: 202, multiShare: 0.2, allOrNothing: true, runs: 31, lpRuns: 15 },
  {
    incidents: 1000,
    units: 5000,
    seed: 303,
    multiShare: 0.2,
    allOrNothing: true,
    runs: 21,
    lpRuns: 3,
    spanDeg: 0.3,
  },
  { incidents: 1000, units: 1000, seed: 404, dense: true, hotspotShare: 0, runs: 7 },
  // Not a target: the same scarce dense case with incidents clustered around hotspots.
  { incidents: 1000, units: 1000, seed: 404, dense: true, runs: 3 },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * The engine runs its core for hours, so the figure wanted is the optimised code's: warm up
 * (at least WARM_RUNS runs and WARM_MS) before timing, as benchmark tools do. The LP gets the same.
 */
const WARM_RUNS = 5;
const WARM_MS = 400;

function time<T>(runs: number, f: () => T): { ms: number; value: T } {
  let value = f();
  const w0 = performance.now();
  for (let i = 1; i < WARM_RUNS || performance.now() - w0 < WARM_MS; i++) value = f();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    value = f();
    ms.push(performance.now() - t0);
  }
  return { ms: median(ms), value };
}

interface Row {
  instance: string;
  solver: string;
  medianMs: number | null;
  /** The one objective as the solver minimises it (unserved, lateness and travel tiers stacked). */
  objective: number | null;
  gapPct: number | null;
  /** The tiers apart: priority-weighted unserved demand, lateness (s) and travel time (s). */
  tiers?: { unservedWeight: number; weightedLateS: number; weightedEtaS: number };
  note?: string;
}

/** Reused across runs, as the core reuses it across widening rounds. */
const scratch = new LapScratch();

/**
 * The core's assignment solver on the LP's problem, input conversion included as the LP's is:
 * each row's edges plus a private "unserved" column at the row's penalty. No certificate and no
 * explanations — the LP does neither. A half-served all-or-nothing group would need the core's
 * integer-program repair, so such an answer is reported as not comparable.
 */
function lapOn(problem: IlpProblem): { objective: number | null; note?: string } {
  const nRows = problem.rows.length;
  const nCols = problem.nCols;
  const rowStart = new Int32Array(nRows + 1);
  for (const e of problem.edges) rowStart[e.row + 1]++;
  for (let r = 0; r < nRows; r++) rowStart[r + 1] += rowStart[r] + 1;
  const col = new Int32Array(rowStart[nRows]);
  const cost = new Float64Array(rowStart[nRows]);
  const fill = rowStart.slice(0, nRows);
  for (const e of problem.edges) {
    col[fill[e.row]] = e.col;
    cost[fill[e.row]++] = e.cost;
  }
  for (let r = 0; r < nRows; r++) {
    col[fill[r]] = nCols + r;
    cost[fill[r]] = problem.rows[r].weightCost;
  }
  const res = solveSparse(
    { nRows, nCols: nCols + nRows, rowStart, col, cost },
    undefined,
    undefined,
    scratch,
  );
  if (!res) return { objective: null, note: 'no answer' };
  const rowToCol = res.rowToCol.map((c) => (c >= nCols ? -1 : c));
  const objective = evaluateAssignment(problem, rowToCol);
  return objective === null ? { objective, note: 'half-served package: needs the IP repair' } : { objective };
}

/** The candidate sets the core certified, as the 0-1 program both solvers get; or why the LP cannot take it. */
function candidateProblem(inst: Instance, ctx: DecideContext): { problem: IlpProblem } | { skip: string } {
  const input = buildPassInput(inst.state, inst.now, ctx, { ...DEFAULT_OPTIONS, ...ctx.options });
  const solved = solveOptimal(input);
  const edges: IlpProblem['edges'] = [];
  solved.candidates.forEach((list, row) => {
    for (const c of list) edges.push({ row, col: c.col.index, cost: c.cost });
  });
  // A dense decision uses every (slot, unit) pair; its explanation lists are not the model.
  const vars = solved.stats.dense
    ? input.rows.length * (input.cols.length + 1)
    : edges.length + input.rows.length;
  if (vars > LP_MAX_VARIABLES) return { skip: `not run: ${vars} variables` };
  const rows = input.rows.map((r) => ({
    weightCost: r.unservedCost,
    ...(r.group >= 0 ? { group: r.group } : {}),
  }));
  return { problem: { rows, nCols: input.cols.length, edges } };
}

function lpOn(
  problem: IlpProblem,
  lpRuns: number,
): { ms: number | null; objective: number | null; note?: string } {
  // The LP takes ~1 s per run at 1000×5000, so fewer runs there; its run times vary more.
  const first = solveAssignmentIlp(problem, { timeoutMs: LP_TIMEOUT_MS });
  if (!first) return { ms: null, objective: null, note: `no proven optimum in ${LP_TIMEOUT_MS / 1000} s` };
  const { ms, value: sol } = time(lpRuns, () => solveAssignmentIlp(problem, { timeoutMs: LP_TIMEOUT_MS }));
  if (!sol) return { ms: null, objective: null, note: `no proven optimum in ${LP_TIMEOUT_MS / 1000} s` };
  const objective = evaluateAssignment(problem, sol.rowToCol);
  return { ms, objective, note: sol.optimal ? undefined : 'not proven optimal' };
}

const rows: Row[] = [];
const emit = (r: Row) => {
  rows.push(r);
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
};

// The core and greedy are timed on every instance first, then the LP: its runs leave a
// large heap behind, and timing the core after them measured the garbage collector (×1.8).
const timed = SPECS.map((spec) => {
  const inst = makeInstance(spec);
  const ctx: DecideContext = { catalog: inst.catalog, travel: inst.travel, options: { preemption: false } };
  const opt = time(spec.runs, () => optimalPolicy.decide(inst.state, inst.now, ctx));
  const greedy = time(spec.runs, () => greedyPolicy.decide(inst.state, inst.now, ctx));
  const cand = candidateProblem(inst, ctx);
  const lap = 'problem' in cand ? time(spec.runs, () => lapOn(cand.problem)) : null;
  return { spec, inst, opt, greedy, cand, lap };
});

for (const { spec, inst, opt, greedy, cand, lap } of timed) {
  const best = scalarObjective(opt.value.objective);
  const gap = (x: number | null) => (x === null ? null : best === 0 ? 0 : ((x - best) / best) * 100);
  const lp =
    'problem' in cand ? lpOn(cand.problem, spec.lpRuns ?? 3) : { ms: null, objective: null, note: cand.skip };
  const optStats = opt.value.stats;
  emit({
    instance: inst.name,
    solver: 'core',
    medianMs: opt.ms,
    objective: best,
    gapPct: 0,
    tiers: opt.value.objective,
    note: `rows ${optStats.rows}, candidates ${optStats.candidates}, widen ${optStats.widenRounds}, ${optStats.dense ? 'dense' : 'sparse'}, ip ${optStats.ipComponents}`,
  });
  if (lap) {
    emit({
      instance: inst.name,
      solver: 'core-solver',
      medianMs: lap.ms,
      objective: lap.value.objective,
      gapPct: lap.value.objective === null ? null : gap(lap.value.objective),
      note: lap.value.note ?? "the core's exact solver alone, on the LP's problem",
    });
  }
  emit({
    instance: inst.name,
    solver: 'greedy',
    medianMs: greedy.ms,
    objective: scalarObjective(greedy.value.objective),
    gapPct: gap(scalarObjective(greedy.value.objective)),
    tiers: greedy.value.objective,
  });
  emit({
    instance: inst.name,
    solver: 'lp-solver',
    medianMs: lp.ms,
    objective: lp.objective,
    gapPct: lp.objective === null ? null : gap(lp.objective),
    ...(lp.note ? { note: lp.note } : {}),
  });
}

if (!json) {
  const fmt = (x: number | null, d = 2) => (x === null ? '—' : x.toFixed(d));
  const header = [
    'instance',
    'solver',
    'median ms',
    'objective',
    'gap %',
    'unserved w',
    'w·late s',
    'w·ETA s',
    'core speed-up',
    'solver speed-up',
    'note',
  ];
  const lines = rows.map((r) => {
    const core = rows.find((c) => c.instance === r.instance && c.solver === 'core')!;
    const speedup =
      r.solver === 'core' || r.medianMs === null ? '' : `${(r.medianMs / (core.medianMs ?? 1)).toFixed(0)}×`;
    // The LP against the core's solver on the identical problem.
    const lap = rows.find((c) => c.instance === r.instance && c.solver === 'core-solver');
    const solverSpeedup =
      r.solver === 'lp-solver' && r.medianMs !== null && lap?.medianMs
        ? `${(r.medianMs / lap.medianMs).toFixed(0)}×`
        : '';
    const t = r.tiers;
    return [
      r.instance,
      r.solver,
      fmt(r.medianMs),
      fmt(r.objective, 0),
      fmt(r.gapPct, 6),
      t ? String(t.unservedWeight) : '',
      t ? String(t.weightedLateS) : '',
      t ? String(t.weightedEtaS) : '',
      r.solver === 'core-solver' ? '' : speedup,
      solverSpeedup,
      r.note ?? '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(line(l));
}
