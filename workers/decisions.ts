// Decision worker: one `decide` job = one decision round of the engine over all open
// incidents. Run with concurrency 1 (the engine serialises anyway).

import type { Engine } from '../src/engine/engine.ts';
import { JOBS } from '../src/engine/jobs.ts';
import type { JobHandler } from '../src/engine/ports.ts';

export function decisionHandlers(engine: Engine): Record<string, JobHandler> {
  return {
    [JOBS.decide.name]: async () => {
      await engine.runDecision();
    },
  };
}
