// Candidate lists of the optimal policy: per slot, the units it may be sent, with the lower
// bound on what any unit left off would cost. They live in one struct-of-arrays store (a
// slot's list is a slice of it), so rounds of widening and the sparse solver's input cost no
// object per (slot, unit) pair; Candidate objects are made only for the lists that certify
// the final answer.

import type { Pool } from './capability-index.ts';
import type { Candidate } from './decision.ts';
import { type Column, edgeCost, eligible, etaS, type Row } from './model.ts';
import { LATE_FACTOR, slotCost } from './objective.ts';
import type { PassInput } from './passes.ts';

/** A slot's list: store entries start .. start+len-1. */
export interface RowList {
  start: number;
  len: number;
  /** Lower bound on the cost of sending the slot any eligible unit not on the list. */
  restCost: number;
  /** The nearest-units count the list was searched with. */
  k: number;
}

export const NONE_LEFT = Number.POSITIVE_INFINITY;

/** Lists may be cut at this multiple of the slot's price, leaving room for prices to rise. */
const PRICE_MARGIN = 1.1;

/** Column index, ETA and cost of every listed (slot, unit) pair; appended to, never shrunk. */
export class CandidateStore {
  col: Int32Array;
  eta: Float64Array;
  cost: Float64Array;
  size = 0;

  constructor(capacity: number) {
    this.col = new Int32Array(Math.max(16, capacity));
    this.eta = new Float64Array(this.col.length);
    this.cost = new Float64Array(this.col.length);
  }

  add(j: number, eta: number, cost: number): void {
    if (this.size === this.col.length) this.grow();
    this.col[this.size] = j;
    this.eta[this.size] = eta;
    this.cost[this.size++] = cost;
  }

  private grow(): void {
    const col = new Int32Array(2 * this.col.length);
    const eta = new Float64Array(col.length);
    const cost = new Float64Array(col.length);
    col.set(this.col);
    eta.set(this.eta);
    cost.set(this.cost);
    this.col = col;
    this.eta = eta;
    this.cost = cost;
  }

  /** The list as Candidate objects, in list order. */
  candidates(l: RowList, cols: Column[]): Candidate[] {
    const out: Candidate[] = new Array(l.len);
    for (let q = 0; q < l.len; q++) {
      const e = l.start + q;
      out[q] = { col: cols[this.col[e]], etaS: this.eta[e], cost: this.cost[e] };
    }
    return out;
  }
}

/** The cost bound of a slot for units whose ETA is at least etaLowerBoundS. */
function boundCost(r: Row, etaLowerBoundS: number, maxEtaS: number): number {
  // Units beyond the ETA cap are never candidates, so nothing is left to bound.
  return etaLowerBoundS > maxEtaS ? NONE_LEFT : slotCost(r.weight, etaLowerBoundS, r.slackS);
}

const FREE_ONLY: readonly Pool[] = ['free'];
const BOTH_POOLS: readonly Pool[] = ['free', 'preempt'];

/** The pools a slot may draw on: pre-emptible units only for immediate-response work. */
export function pools(r: Row, input: PassInput): readonly Pool[] {
  return r.immediate && input.index.count(r.capability, 'preempt') > 0 ? BOTH_POOLS : FREE_ONLY;
}

/**
 * Appends the units the last search of the index found (with their great-circle distances)
 * that arrive within the ETA cap and cost less than `cut`; returns how many.
 */
function addFound(r: Row, n: number, cut: number, input: PassInput, store: CandidateStore): number {
  const { index, options, ctx } = input;
  const travel = ctx.travel;
  const { found, foundDist } = index;
  let added = 0;
  for (let q = 0; q < n; q++) {
    const c = found[q];
    // Same value as etaS(): the search already has the great-circle distance.
    const eta = travel.distanceOnly
      ? c.turnoutS + travel.lowerBoundS(foundDist[q], c.unit.speedKmh)
      : etaS(r, c, travel);
    if (eta > options.maxEtaS) continue;
    const cost = edgeCost(r, c, eta, options);
    if (cost >= cut) continue;
    store.add(c.index, eta, cost);
    added++;
  }
  return added;
}

/** The k nearest units of each pool the slot may draw on. */
export function listFor(
  r: Row,
  k: number,
  input: PassInput,
  store: CandidateStore,
  forced: boolean,
): RowList {
  const start = store.size;
  if (forced) return { start, len: 0, restCost: NONE_LEFT, k };
  const { index, options, ctx } = input;
  let restCost = NONE_LEFT;
  let len = 0;
  for (const pool of pools(r, input)) {
    const filter = pool === 'preempt' || r.excluded ? (c: Column) => eligible(r, c) : undefined;
    const n = index.nearestInto(r.capability, pool, r.incident.location, k, ctx.travel, filter);
    len += addFound(r, n, NONE_LEFT, input, store);
    restCost = Math.min(restCost, boundCost(r, index.restLowerBoundS, options.maxEtaS));
  }
  return { start, len, restCost, k };
}

/** Smallest ETA at which serving r costs at least `price` (slot costs rise with ETA). */
function etaForCost(r: Row, price: number): number {
  const perW = price / r.weight;
  const slack = Math.max(0, r.slackS);
  // cost/w = eta + LATE_FACTOR·max(0, eta − slack), inverted piecewise.
  if (perW <= slack) return perW;
  return (perW + LATE_FACTOR * slack) / (LATE_FACTOR + 1);
}

/**
 * The list that certifies slot r at price `price` with room to spare: every unit that costs
 * less than PRICE_MARGIN × price. One box query per pool reaches the distance at which the
 * pool's ETA lower bound makes any unit that expensive; units inside the box but above the
 * cut stay off the list, and the cut itself bounds them.
 */
export function widenFor(r: Row, price: number, input: PassInput, store: CandidateStore): RowList {
  const { index, options, ctx } = input;
  const cut = price * PRICE_MARGIN;
  // Any unit arriving at needEta or later costs at least the cut (or is past the ETA cap).
  const needEta = Math.min(etaForCost(r, cut), options.maxEtaS) + 1;
  const start = store.size;
  let len = 0;
  let restCost = cut;
  for (const pool of pools(r, input)) {
    const filter = pool === 'preempt' || r.excluded ? (c: Column) => eligible(r, c) : undefined;
    const n = index.reachableInto(r.capability, pool, r.incident.location, needEta, ctx.travel, filter);
    len += addFound(r, n, cut, input, store);
    restCost = Math.min(restCost, boundCost(r, index.restLowerBoundS, options.maxEtaS));
  }
  return { start, len, restCost, k: Math.max(options.initialK, len) };
}

/** Every eligible unit within the ETA cap, free or pre-emptible. */
export function allFor(r: Row, input: PassInput): Candidate[] {
  const { index, options, ctx } = input;
  const out: Candidate[] = [];
  for (const pool of ['free', 'preempt'] as const) {
    for (const c of index.all(r.capability, pool)) {
      if (!eligible(r, c)) continue;
      const eta = etaS(r, c, ctx.travel);
      if (eta <= options.maxEtaS) out.push({ col: c, etaS: eta, cost: edgeCost(r, c, eta, options) });
    }
  }
  return out;
}
