// Small deterministic statistics used by the KPI object.

/**
 * Nearest-rank percentile: the smallest sample such that at least p % of the samples are
 * ≤ it, i.e. sorted[ceil(p/100 · n) − 1] (p = 0 gives the minimum). No interpolation, so
 * the answer is always one of the samples. Null for no samples.
 * `sorted` must be sorted ascending.
 */
export function percentileSorted(sorted: readonly number[], p: number): number | null {
  const n = sorted.length;
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(n, rank) - 1];
}

export function percentile(values: readonly number[], p: number): number | null {
  return percentileSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Rounds to `digits` decimals; null stays null; −0 becomes 0. */
export function round(x: number | null, digits: number): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  const r = Math.round(x * f) / f;
  return r === 0 ? 0 : r;
}
