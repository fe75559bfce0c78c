// A small typed wrapper around javascript-lp-solver (jsLPSolver 1.0.x).
//
// Why a wrapper: the package ships one `index.d.ts` for both its CommonJS and ESM builds, and
// because its package.json has no `"type": "module"` TypeScript (module NodeNext) reads that file
// as CommonJS, i.e. `export { solver as default }` becomes `exports.default`. At run time both
// builds really export the solver instance itself (`module.exports = solver` / `export default
// solver`), so a default import *is* the solver, but the compiler types it as a namespace whose
// `.default` is the solver, and `solver.Solve` fails to type-check. The cast lives here, once.
//
// Things about the library a caller must know (all checked against 1.0.3's dist/index.mjs):
//  * Model format: `optimize` names the objective attribute, `opType` 'min' | 'max',
//    `constraints[name] = { min?, max?, equal? }`, `variables[v][attr] = coefficient` where one
//    attr is the objective. Every variable is ≥ 0 unless listed in `unrestricted`.
//    `ints` marks integer variables; `binaries` marks integers *and adds a separate `v ≤ 1` row
//    per variable* (a larger dense tableau — prefer `ints` when the bound is already implied).
//    An equality becomes two inequality rows.
//  * The tableau is dense (Float64Array height × width): cost grows with rows × columns.
//  * Tolerances are ABSOLUTE: the tableau precision (default 1e-8) is used both as the simplex
//    pricing/ratio-test tolerance and as the integrality tolerance, and the objective value and
//    variable values are rounded to that precision. Objective coefficients must therefore be
//    scaled so that meaningful differences are well above it and float noise well below it.
//  * `options.timeout` (ms) bounds only the branch-and-bound loop, checked between nodes with the
//    library's own clock; a single LP solve is never interrupted. This is the one clock
//    read on this path: it happens inside the dependency, not in our core code, and it makes
//    the outcome wall-clock dependent *only* when the limit is hit. A timeout of 0 is falsy in
//    the library and means "no limit"; this wrapper clamps any given timeout to ≥ 1 ms.
//  * When the time limit is hit, the library silently returns its best integral incumbent (or,
//    if none was found, the fractional state of the last node, without `isIntegral`). Nothing in
//    the result says that the search was cut short, so with a timeout `isIntegral: true` does
//    NOT mean "proven optimal".
//  * `options.tolerance` (relative MIP gap) is computed as bound·(1 ± tol) and misbehaves for
//    negative objective values; leave it 0 for exact work.
//  * Presolve is on by default; a variable it fixes keeps its value but has its objective
//    cost zeroed, so the reported objective omits that cost (min 5x with x forced to 1 by
//    singleton rows reports 0). Set `options.presolve: false` unless no variable can be fixed.
//  * The README's integer example claims 14400 (8 tables, 3 dressers); the library correctly
//    returns 19200 (4 tables, 9 dressers) — trust the solver, not the README.
//  * Each `Solve` on a JSON model builds a fresh dense tableau: there is no warm start between
//    calls (branch-and-bound inside one call does restore a saved root tableau).
//  * Cycle detection (on by default) marks a node that cycles as *infeasible*; inside
//    branch-and-bound that silently prunes the subtree. The wrapper surfaces the library's
//    diagnostic messages so the caller can see it happened (`cycled`).
//  * The result object mixes metadata (`feasible`, `result`, `bounded`, `isIntegral`) with
//    variable values and omits variables whose value is 0; variable names colliding with the
//    metadata keys are rejected here.
//  * Importing the ESM build pulls in `fs` and `child_process` at module load (for its optional
//    external lp_solve bridge, used only when a model has `external`, which this type omits).

import lpModule from 'javascript-lp-solver';

export type LpDirection = 'min' | 'max';

export interface LpConstraintBound {
  min?: number;
  max?: number;
  equal?: number;
}

export interface LpOptions {
  /** Branch-and-bound time limit in ms, measured by the library's own clock (see above). */
  timeout?: number;
  /** Relative MIP gap at which branch-and-bound may stop; 0 (default) = exact. */
  tolerance?: number;
  /** Library presolve; defaults to true in the library (see the caveat above). */
  presolve?: boolean;
  /** Cycle detection in the simplex; defaults to true in the library. */
  exitOnCycles?: boolean;
}

export interface LpModel {
  /** Name of the objective attribute in `variables[v]`. */
  optimize: string;
  opType: LpDirection;
  constraints: Record<string, LpConstraintBound>;
  /** variables[v][attribute] = coefficient; one attribute is the objective. */
  variables: Record<string, Record<string, number>>;
  ints?: Record<string, 1 | true>;
  binaries?: Record<string, 1 | true>;
  unrestricted?: Record<string, 1 | true>;
  options?: LpOptions;
}

export interface LpResult {
  feasible: boolean;
  bounded: boolean;
  /** Set by branch-and-bound when it ended on an integral node (not a proof of optimality under a timeout). */
  isIntegral: boolean;
  /** Objective value as reported by the library (rounded to the tableau precision). */
  result: number;
  /** Value of every model variable (0 when the library omitted it), keyed by name. */
  values: Map<string, number>;
  /** Diagnostic messages the library collected on the model (e.g. "Cycle in phase 2"). */
  messages: string[];
  /** True when the simplex reported a cycle; some node was then treated as infeasible. */
  cycled: boolean;
}

/** Keys the library writes onto its result object next to the variable values. */
const RESERVED_NAMES = new Set(['feasible', 'result', 'bounded', 'isIntegral']);

type LibSolver = typeof lpModule.default;

/** The solver instance, whatever shape the module loader handed us (see the header). */
const solver: LibSolver = (() => {
  const m = lpModule as unknown as { Solve?: unknown; default?: { Solve?: unknown } };
  if (typeof m.Solve === 'function') return m as unknown as LibSolver;
  if (m.default && typeof m.default.Solve === 'function') return m.default as unknown as LibSolver;
  throw new Error('javascript-lp-solver: unexpected module shape (no Solve function)');
})();

/**
 * Solve a linear or mixed-integer model with javascript-lp-solver.
 * @param precision tableau precision (absolute tolerance). Default 1e-8 (the Tableau default; the
 *   `Solve` doc comment says 1e-9).
 */
export function solveLp(model: LpModel, precision?: number): LpResult {
  for (const name of Object.keys(model.variables)) {
    if (RESERVED_NAMES.has(name)) throw new RangeError(`solveLp: variable name '${name}' is reserved`);
  }
  const options: LpOptions | undefined = model.options && { ...model.options };
  if (options?.timeout !== undefined) {
    if (!(options.timeout > 0)) options.timeout = 1;
    options.timeout = Number.isFinite(options.timeout) ? Math.ceil(options.timeout) : undefined;
  }
  const raw = solver.Solve({ ...model, options }, precision) as Record<string, unknown>;
  const values = new Map<string, number>();
  for (const name of Object.keys(model.variables)) {
    const v = raw[name];
    values.set(name, typeof v === 'number' ? v : 0);
  }
  const messages = (solver.lastSolvedModel?.messages ?? []).map(String);
  // The singleton keeps the last model (and its dense tableau) alive for debugging; drop it.
  solver.lastSolvedModel = null;
  return {
    feasible: raw.feasible === true,
    bounded: raw.bounded !== false,
    isIntegral: raw.isIntegral === true,
    result: typeof raw.result === 'number' ? raw.result : Number.NaN,
    values,
    messages,
    cycled: messages.some((m) => m.startsWith('Cycle')),
  };
}
