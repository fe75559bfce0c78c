// Intake worker: a new incident was stored (outbox `incident.created`) → the engine makes
// sure it is mirrored, arms its arrival-target timer and asks for a decision; a reporter with
// a callback URL is then told it was received (the webhook side records the update). The
// engine's own intake writes this job only for such reporters (see Engine.reportIncident).

import type { Engine } from '../src/engine/engine.ts';
import { callsBack, JOBS } from '../src/engine/jobs.ts';
import type { JobHandler } from '../src/engine/ports.ts';
import type { Webhooks } from '../src/engine/webhooks.ts';

export function intakeHandlers(engine: Engine, webhooks?: Webhooks): Record<string, JobHandler> {
  return {
    [JOBS.incidentCreated.name]: async (data) => {
      const id = requireString(data.incidentId, 'incidentId');
      await engine.onIncidentCreated(id);
      // Only a reporter with a callback URL hears back; the mirror tells without a read.
      const inc = engine.mirror.incidents.get(id);
      if (webhooks && (!inc || callsBack(inc.payload))) await webhooks.sync(id);
    },
  };
}

export function requireString(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0)
    throw new Error(`job data: ${field} must be a non-empty string`);
  return v;
}
