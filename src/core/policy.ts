// The dispatch-policy interface: one pure function of (state, now, context) → decision.
// `greedy` is the baseline of CAD systems in use; `optimal` solves all open incidents together.

import type { CatalogIndex } from './catalog.ts';
import type { Budget, TravelTimes } from './ports.ts';
import type { Decision, DispatchState } from './types.ts';

export interface DispatchOptions {
  /** Candidates farther than this ETA are not considered; the slot waits. */
  maxEtaS: number;
  /** Seconds added to the cost (not the ETA) of a unit leaving its home sub-district. */
  jurisdictionPenaltyS: number;
  /** Immediate-response incidents may take units bound for lower-priority incidents not yet on scene. */
  preemption: boolean;
  /** Seconds added to the cost of a pre-emption, times the pre-empted slot's weight. */
  preemptionPenaltyS: number;
  /** First candidate-list length per slot; widened where the optimality certificate fails. */
  initialK: number;
  /** Alternatives listed in each explanation. */
  explainAlternatives: number;
  /** Variable limit of a joint-force integer program; larger components are solved on their neighbourhood. */
  ipMaxVariables: number;
}

export const DEFAULT_OPTIONS: DispatchOptions = {
  maxEtaS: 7200,
  jurisdictionPenaltyS: 120,
  preemption: true,
  preemptionPenaltyS: 600,
  initialK: 8,
  explainAlternatives: 3,
  ipMaxVariables: 4000,
};

export interface DecideContext {
  catalog: CatalogIndex;
  travel: TravelTimes;
  options?: Partial<DispatchOptions>;
  budget?: Budget;
}

export interface DispatchPolicy {
  readonly name: string;
  decide(state: DispatchState, now: number, ctx: DecideContext): Decision;
}
