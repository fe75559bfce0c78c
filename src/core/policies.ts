// The dispatch policies, by name, behind one interface.

import { solveGreedy } from './greedy.ts';
import { solveOptimal } from './optimal.ts';
import { decideInPasses } from './passes.ts';
import type { DispatchPolicy } from './policy.ts';

export const greedyPolicy: DispatchPolicy = {
  name: 'greedy',
  decide: (state, now, ctx) => decideInPasses(state, now, ctx, 'greedy', solveGreedy),
};

export const optimalPolicy: DispatchPolicy = {
  name: 'optimal',
  decide: (state, now, ctx) => decideInPasses(state, now, ctx, 'optimal', solveOptimal),
};

export const POLICIES: Record<string, DispatchPolicy> = { greedy: greedyPolicy, optimal: optimalPolicy };

export function policyByName(name: string): DispatchPolicy {
  const p = POLICIES[name];
  if (!p) throw new RangeError(`unknown policy "${name}" (known: ${Object.keys(POLICIES).join(', ')})`);
  return p;
}
