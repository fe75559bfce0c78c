// Solver bench: the same seeded instances solved by the core (optimal), by greedy, and by
// javascript-lp-solver on the identical candidate sets the core certified.
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

function lpOnCandidates(
  inst: Instance,
  ctx: DecideContext,
  lpRuns: number,
): { ms: number | null; objective: number | null; note?: string } {
  const input = buildPassInput(inst.state, inst.now, ctx, { ...DEFAULT_OPTIONS, ...ctx.options });
  const solved = solveOptimal(input);
  const edges: IlpProblem['edges'] = [];
  solved.candidates.forEach((list, row) => {
    for (const c of list) edges.push({ row, col: c.col.index, cost: c.cost });
  });
  const problem: IlpProblem = {
    rows: input.rows.map((r) => ({
      weightCost: r.unservedCost,
      ...(r.group >= 0 ? { group: r.group } : {}),
    })),
    nCols: input.cols.length,
    edges,
  };
  // A dense decision uses every (slot, unit) pair; its explanation lists are not the model.
  const vars = solved.stats.dense
    ? input.rows.length * (input.cols.length + 1)
    : edges.length + input.rows.length;
  if (vars > LP_MAX_VARIABLES) return { ms: null, objective: null, note: `not run: ${vars} variables` };
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
  return { spec, inst, ctx, opt, greedy };
});

for (const { spec, inst, ctx, opt, greedy } of timed) {
  const best = scalarObjective(opt.value.objective);
  const gap = (x: number | null) => (x === null ? null : best === 0 ? 0 : ((x - best) / best) * 100);
  const lp = lpOnCandidates(inst, ctx, spec.lpRuns ?? 3);
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
    'note',
  ];
  const lines = rows.map((r) => {
    const core = rows.find((c) => c.instance === r.instance && c.solver === 'core')!;
    const speedup =
      r.solver === 'core' || r.medianMs === null ? '' : `${(r.medianMs / (core.medianMs ?? 1)).toFixed(0)}×`;
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
      speedup,
      r.note ?? '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(line(l));
}
