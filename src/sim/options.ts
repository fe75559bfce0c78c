// Behaviour of the simulated units and of the dispatch loop, from the scenario's `sim`
// block with documented defaults. Besides the fields of SimulationConfig, the simulator
// reads three optional extras from the same block (scenario files may add fields):
//   noResponseProb   probability that an offer is never answered (default 0)
//   refuseCooldownS  seconds a unit that declined or did not answer stays out of dispatch
//                    (default 60, at least 1 so that a refusing unit cannot be re-offered
//                    in the same instant forever)
//   drainS           after the scenario's duration, how long the clock may run on to
//                    finish the work in hand (default 86 400 s); the replay stops earlier as
//                    soon as nothing is left to happen.

import type { SimulationConfig } from '../scenario/types.ts';
import { describeValue, ScenarioError } from '../scenario/validate.ts';

export interface SimOptions {
  /** Delay between an offer and its answer, seconds (default 0: answered at once). */
  ackDelayS: number;
  /** Probability that an answered offer is declined (default 0). */
  declineProb: number;
  /** An offer unanswered this long times out (default 30). */
  ackTimeoutS: number;
  /** Probability that an offer is never answered (default 0). */
  noResponseProb: number;
  /** Seconds a refusing unit stays out of dispatch (default 60, ≥ 1). */
  refuseCooldownS: number;
  /** After clearing (available at once either way): drive home (true) or stay at the scene. */
  returnHome: boolean;
  /** 0: decide as soon as anything changed; N > 0: decide at most every N seconds, on multiples of N. */
  cadenceS: number;
  /** Run-on time allowed after the scenario's duration. */
  drainS: number;
}

export const DEFAULT_SIM: SimOptions = {
  ackDelayS: 0,
  declineProb: 0,
  ackTimeoutS: 30,
  noResponseProb: 0,
  refuseCooldownS: 60,
  returnHome: true,
  cadenceS: 0,
  drainS: 86_400,
};

function num(o: Record<string, unknown>, k: string, lo: number, hi: number, dflt: number): number {
  const v = o[k];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    const range = hi === Number.POSITIVE_INFINITY ? `a number ≥ ${lo}` : `a number in [${lo}, ${hi}]`;
    throw new ScenarioError(`$.sim.${k}`, range, describeValue(v));
  }
  return v;
}

/** The scenario's sim block (already checked by parseScenario) with defaults, then overrides. */
export function resolveSimOptions(
  config: SimulationConfig | undefined,
  overrides: Partial<SimOptions> = {},
): SimOptions {
  const o = (config ?? {}) as Record<string, unknown>;
  const inf = Number.POSITIVE_INFINITY;
  const base: SimOptions = {
    ackDelayS: num(o, 'ackDelayS', 0, inf, DEFAULT_SIM.ackDelayS),
    declineProb: num(o, 'declineProb', 0, 1, DEFAULT_SIM.declineProb),
    ackTimeoutS: num(o, 'ackTimeoutS', 1e-9, inf, DEFAULT_SIM.ackTimeoutS),
    noResponseProb: num(o, 'noResponseProb', 0, 1, DEFAULT_SIM.noResponseProb),
    refuseCooldownS: num(o, 'refuseCooldownS', 1, inf, DEFAULT_SIM.refuseCooldownS),
    returnHome: typeof o.returnHome === 'boolean' ? o.returnHome : DEFAULT_SIM.returnHome,
    cadenceS: num(o, 'cadenceS', 0, inf, DEFAULT_SIM.cadenceS),
    drainS: num(o, 'drainS', 0, inf, DEFAULT_SIM.drainS),
  };
  const out = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  if (out.refuseCooldownS < 1) out.refuseCooldownS = 1;
  return out;
}
