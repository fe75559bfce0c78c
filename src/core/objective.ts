// The one objective of the optimiser, lexicographic:
//   1. serve the most priority-weighted demand      (minimise unservedWeight)
//   2. then minimise priority-weighted lateness      (weightedLateS: w · max(0, eta − time left to target));
//      a slot left unserved counts as arriving at the ETA cap (maxEtaS) — it will be at least
//      that late — so an overdue incident keeps its claim and is never starved by fresh ones
//   3. then minimise priority-weighted travel time   (weightedEtaS: w · eta)
//   4. then a deterministic tie-break: rows in canonical order (priority, report time,
//      incident id, capability), units by id; the solver scans in that order with strict
//      comparisons, so equal-cost alternatives always resolve the same way.
// The assignment solver works on one integer cost per (slot, unit), built from these tiers
// with separations chosen so that a higher tier dominates: one weighted second late costs
// more than LATE_FACTOR − 1 weighted seconds of travel, and one unit of unserved weight more
// than any served slot can cost (ETAs are capped at maxEtaS). ETAs enter costs rounded to
// whole seconds so that sums are exact in double arithmetic.

import type { ObjectiveValue, Priority } from './types.ts';

/** Priority weight: a priority-1 slot counts 8 times a priority-4 slot. */
export const PRIORITY_WEIGHT: Record<Priority, number> = { 1: 8, 2: 4, 3: 2, 4: 1 };

/** Weighted travel seconds one weighted second of lateness is worth. */
export const LATE_FACTOR = 1000;

/** Default cap on a candidate's ETA; farther units are not considered (the slot waits). */
export const DEFAULT_MAX_ETA_S = 7200;

/** Cost of leaving one unit of priority weight unserved; dominates any served cost. */
export const UNSERVED_COST_PER_WEIGHT = 1e9;

/** Integer cost of serving a slot of weight w with a unit arriving in etaS, with slackS left to target. */
export function slotCost(w: number, etaS: number, slackS: number): number {
  const eta = Math.round(etaS);
  const late = Math.max(0, eta - Math.floor(slackS));
  return w * (eta + LATE_FACTOR * late);
}

/** Lateness (s) charged to a slot left unserved: as if served at the horizon (the ETA cap). */
export function unservedLateS(slackS: number, horizonS: number): number {
  return Math.max(0, Math.round(horizonS) - Math.floor(slackS));
}

export function unservedCost(w: number, slackS: number, horizonS: number): number {
  return w * (UNSERVED_COST_PER_WEIGHT + LATE_FACTOR * unservedLateS(slackS, horizonS));
}

export function emptyObjective(): ObjectiveValue {
  return { unservedWeight: 0, weightedLateS: 0, weightedEtaS: 0 };
}

export function addServed(o: ObjectiveValue, w: number, etaS: number, slackS: number): void {
  const eta = Math.round(etaS);
  o.weightedLateS += w * Math.max(0, eta - Math.floor(slackS));
  o.weightedEtaS += w * eta;
}

/** Lexicographic comparison: negative when a is better than b. */
export function compareObjective(a: ObjectiveValue, b: ObjectiveValue): number {
  return (
    a.unservedWeight - b.unservedWeight ||
    a.weightedLateS - b.weightedLateS ||
    a.weightedEtaS - b.weightedEtaS
  );
}

/** The scalar the assignment solver minimises; equal to the sum of slotCost/unservedCost. */
export function scalarObjective(o: ObjectiveValue): number {
  return o.unservedWeight * UNSERVED_COST_PER_WEIGHT + LATE_FACTOR * o.weightedLateS + o.weightedEtaS;
}
