// Benchmark of the assignment solvers: npx tsx bench/lap.ts
// Prints the median wall time (ms) per instance family, fixed seed.

import { performance } from 'node:perf_hooks';
import { type SparseLap, solveSparse } from '../src/core/solver/lap.ts';
import { solveDense } from '../src/core/solver/lap-dense.ts';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WEIGHTS = [8, 4, 2, 1];
const AREA_M = 20_000;
const SPEED_MS = 13.9;

interface Points {
  x: Float64Array;
  y: Float64Array;
}

function points(rand: () => number, n: number, clustered: boolean): Points {
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (clustered && rand() < 0.6) {
      // a few hot spots
      const c = Math.floor(rand() * 5);
      x[i] = AREA_M * (0.2 + 0.15 * c) + (rand() - 0.5) * 2000;
      y[i] = AREA_M * (0.3 + 0.1 * c) + (rand() - 0.5) * 2000;
    } else {
      x[i] = rand() * AREA_M;
      y[i] = rand() * AREA_M;
    }
  }
  return { x, y };
}

/** ETA-like integer cost: weight × (turnout + travel seconds); unserved 10–100× a typical cost. */
function etaCosts(
  seed: number,
  nRows: number,
  nCols: number,
  clustered = false,
): {
  cost: Float64Array;
  unserved: Float64Array;
  rowWeight: Int32Array;
  inc: Points;
  units: Points;
  turnout: Float64Array;
} {
  const rand = mulberry32(seed);
  const inc = points(rand, nRows, clustered);
  const units = points(rand, nCols, false);
  const turnout = new Float64Array(nCols);
  for (let j = 0; j < nCols; j++) turnout[j] = 60 + Math.floor(rand() * 120);
  const rowWeight = new Int32Array(nRows);
  const unserved = new Float64Array(nRows);
  const typical = (0.5 * AREA_M) / SPEED_MS;
  for (let r = 0; r < nRows; r++) {
    rowWeight[r] = WEIGHTS[Math.floor(rand() * 4)];
    unserved[r] = rowWeight[r] * Math.round(typical * (10 + 90 * rand()));
  }
  const cost = new Float64Array(nRows * nCols);
  for (let r = 0; r < nRows; r++) {
    for (let j = 0; j < nCols; j++) {
      const dx = inc.x[r] - units.x[j];
      const dy = inc.y[r] - units.y[j];
      cost[r * nCols + j] = rowWeight[r] * (turnout[j] + Math.round(Math.hypot(dx, dy) / SPEED_MS));
    }
  }
  return { cost, unserved, rowWeight, inc, units, turnout };
}

/**
 * The engine's own cost model (src/core/objective.ts): rows in priority order, cost
 * w · (eta + 1000 · lateness), unserved w · 1e9.
 */
function engineCosts(
  seed: number,
  nRows: number,
  nCols: number,
): { cost: Float64Array; unserved: Float64Array } {
  const rand = mulberry32(seed);
  const inc = points(rand, nRows, true);
  const units = points(rand, nCols, false);
  const turnout = new Float64Array(nCols);
  for (let j = 0; j < nCols; j++) turnout[j] = 60 + Math.floor(rand() * 120);
  const w = Array.from({ length: nRows }, () => WEIGHTS[Math.floor(rand() * 4)]).sort((a, b) => b - a);
  const cost = new Float64Array(nRows * nCols);
  const unserved = new Float64Array(nRows);
  for (let r = 0; r < nRows; r++) {
    const slack = 300 + Math.floor(rand() * 900);
    unserved[r] = w[r] * 1e9;
    for (let j = 0; j < nCols; j++) {
      const dx = inc.x[r] - units.x[j];
      const dy = inc.y[r] - units.y[j];
      const eta = turnout[j] + Math.round(Math.hypot(dx, dy) / SPEED_MS);
      cost[r * nCols + j] = w[r] * (eta + 1000 * Math.max(0, eta - slack));
    }
  }
  return { cost, unserved };
}

/** Sparse: each row keeps its k nearest (cheapest) units, k in [10, 30], plus a private column. */
function sparseInstance(seed: number, nRows: number, nUnits: number, clustered = false): SparseLap {
  const { cost, unserved } = etaCosts(seed, nRows, nUnits, clustered);
  const rand = mulberry32(seed ^ 0x9e3779b9);
  const rowStart = new Int32Array(nRows + 1);
  const cols: number[] = [];
  const costs: number[] = [];
  const topC = new Float64Array(31);
  const topJ = new Int32Array(31);
  for (let r = 0; r < nRows; r++) {
    const k = 10 + Math.floor(rand() * 21);
    let size = 0;
    for (let j = 0; j < nUnits; j++) {
      const c = cost[r * nUnits + j];
      if (size === k && c >= topC[size - 1]) continue;
      let p = size < k ? size++ : size - 1;
      while (p > 0 && topC[p - 1] > c) {
        topC[p] = topC[p - 1];
        topJ[p] = topJ[p - 1];
        p--;
      }
      topC[p] = c;
      topJ[p] = j;
    }
    for (let t = 0; t < size; t++) {
      cols.push(topJ[t]);
      costs.push(topC[t]);
    }
    cols.push(nUnits + r);
    costs.push(unserved[r]);
    rowStart[r + 1] = cols.length;
  }
  return {
    nRows,
    nCols: nUnits + nRows,
    rowStart,
    col: Int32Array.from(cols),
    cost: Float64Array.from(costs),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Runs `fn` `warmup` times, then `runs` timed times; prints the median and minimum wall time,
 * the median CPU time of this process (less sensitive to a busy machine) and the work count.
 */
function time(
  label: string,
  runs: number,
  warmup: number,
  fn: () => { total: number; work: number } | null,
): void {
  let out = fn();
  for (let w = 1; w < warmup; w++) out = fn();
  const ms: number[] = [];
  const cpu: number[] = [];
  for (let k = 0; k < runs; k++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    out = fn();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  if (!out) throw new Error(`${label}: no result`);
  const f = (x: number) => x.toFixed(2).padStart(8);
  console.log(
    `${label.padEnd(48)} median ${f(median(ms))} ms  min ${f(Math.min(...ms))} ms  cpu ${f(median(cpu))} ms  work ${String(out.work).padStart(10)}`,
  );
}

const SEED = 20240601;

console.log('headline targets: dense 1000 x 1000 <= 150 ms, sparse 1000 x 5000 <= 2 ms (median)');
{
  const { cost, unserved } = etaCosts(SEED, 1000, 1000);
  time('dense 1000 x 1000 (ETA-like, unserved 10-100x)', 21, 5, () => solveDense(1000, 1000, cost, unserved));
  const p = sparseInstance(SEED, 1000, 5000);
  time('sparse 1000 x 5000+1000 (10-30 nearest/row)', 201, 200, () => solveSparse(p));
}

console.log('other shapes');
for (const [nRows, nCols, clustered] of [
  [1000, 1000, true],
  [1000, 300, false],
  [300, 1000, false],
  [1000, 900, false],
] as const) {
  const { cost, unserved } = etaCosts(SEED, nRows, nCols, clustered);
  time(`dense ${nRows} x ${nCols}${clustered ? ' clustered' : ''}`, 7, 2, () =>
    solveDense(nRows, nCols, cost, unserved),
  );
}
for (const [nRows, nCols] of [
  [1000, 1000],
  [1000, 600],
  [1000, 300],
] as const) {
  const { cost, unserved } = engineCosts(SEED, nRows, nCols);
  time(`dense ${nRows} x ${nCols} engine costs, clustered`, 7, 2, () =>
    solveDense(nRows, nCols, cost, unserved),
  );
}
for (const [nRows, nUnits, clustered] of [
  [1000, 5000, true],
  [1000, 1200, false],
  [5000, 20000, false],
] as const) {
  const p = sparseInstance(SEED, nRows, nUnits, clustered);
  time(`sparse ${nRows} x ${nUnits}+${nRows}${clustered ? ' clustered' : ''}`, 31, 30, () => solveSparse(p));
}
