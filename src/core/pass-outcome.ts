// What one exact solve of the optimal policy produces, and the work budget it draws on.

import type { Candidate } from './decision.ts';
import type { PassInput } from './passes.ts';
import type { LapBudget } from './solver/lap.ts';

export interface LapOutcome {
  chosen: (Candidate | null)[];
  lists: Candidate[][];
  widenRounds: number;
  dense: boolean;
}

/** Deterministic work spent so far against the caller's budget (work units or a deadline). */
export class WorkBudget {
  used = 0;
  constructor(private readonly input: PassInput) {}
  forLap(): LapBudget {
    const b = this.input.ctx.budget;
    return {
      maxWork: b?.maxWork === undefined ? undefined : Math.max(0, b.maxWork - this.used),
      expired: b?.expired,
    };
  }
  expired(): boolean {
    const b = this.input.ctx.budget;
    return (b?.maxWork !== undefined && this.used >= b.maxWork) || !!b?.expired?.();
  }
}
