// Notification worker: pushes incident status changes to the reporter's callback URL. A
// failed push throws, so the queue retries it with exponential back-off (JOBS.reporterNotify
// attempts); the final failure is reported loudly by the queue.

import type { Engine } from '../src/engine/engine.ts';
import { JOBS } from '../src/engine/jobs.ts';
import type { JobHandler } from '../src/engine/ports.ts';

export function notificationHandlers(engine: Engine): Record<string, JobHandler> {
  return {
    [JOBS.reporterNotify.name]: async (data) => {
      await engine.notifyReporter(data);
    },
  };
}
