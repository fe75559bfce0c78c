// Model-based test of the live engine's incident, assignment and unit state machines through
// its HTTP API (see machine.ts for the model, the commands and the checks after each step).
// MODEL_RUNS sets how many random command sequences run (default 200, about 20 s here);
// `npm run bench:model` runs the 10,000 of issue #6. MODEL_SEED replays a failing run.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runSequence, sequences, stats, summary } from './machine.ts';

const RUNS = Number(process.env.MODEL_RUNS ?? 200);
const SEED = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED);

describe('the incident, assignment and unit state machines against the live API', () => {
  it(`${RUNS} random command sequences keep every invariant and match the model`, async () => {
    await fc.assert(
      fc.asyncProperty(sequences(60), (cmds) => runSequence(cmds)),
      { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
    );
    console.log(`model: ${summary()}, 0 failures`);
    // The sequences exercised the machine, not just its refusals.
    expect(stats.steps).toBeGreaterThan(RUNS * 5);
    expect(stats.offersByDecision).toBeGreaterThan(0);
    expect(stats.refused).toBeGreaterThan(0);
  }, 600_000);
});
