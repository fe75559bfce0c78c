// Notification worker: a `reporter.notify` outbox job (an incident's status changed) makes the
// webhook side record the incident's public updates not recorded yet (src/engine/webhooks.ts);
// its sender delivers them, signed, in order, with retries and a dead-letter list. Recording
// reads the incident's timeline, so a late or repeated job records nothing twice.

import { JOBS } from '../src/engine/jobs.ts';
import type { JobHandler } from '../src/engine/ports.ts';
import type { Webhooks } from '../src/engine/webhooks.ts';
import { requireString } from './intake.ts';

export function notificationHandlers(webhooks: Webhooks): Record<string, JobHandler> {
  return {
    [JOBS.reporterNotify.name]: async (data) => {
      await webhooks.sync(requireString(data.incidentId, 'incidentId'));
    },
  };
}
