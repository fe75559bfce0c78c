// Timer worker: acknowledgement deadlines of offers and arrival targets of incidents. The
// handlers re-check the engine's state, so a timer that is late, early or repeated is harmless.

import type { Engine } from '../src/engine/engine.ts';
import { JOBS } from '../src/engine/jobs.ts';
import type { JobHandler } from '../src/engine/ports.ts';
import { requireString } from './intake.ts';

export function timerHandlers(engine: Engine): Record<string, JobHandler> {
  return {
    [JOBS.ackDeadline.name]: async (data) => {
      await engine.onAckDeadline(requireString(data.assignmentId, 'assignmentId'));
    },
    [JOBS.targetBreach.name]: async (data) => {
      await engine.onTargetBreach(requireString(data.incidentId, 'incidentId'));
    },
  };
}
