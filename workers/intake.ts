// Intake worker: a new incident was stored (outbox `incident.created`) → the engine makes
// sure it is mirrored, arms its arrival-target timer and asks for a decision.

import type { Engine } from '../src/engine/engine.ts';
import { JOBS } from '../src/engine/jobs.ts';
import type { JobHandler } from '../src/engine/ports.ts';

export function intakeHandlers(engine: Engine): Record<string, JobHandler> {
  return {
    [JOBS.incidentCreated.name]: async (data) => {
      await engine.onIncidentCreated(requireString(data.incidentId, 'incidentId'));
    },
  };
}

export function requireString(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0)
    throw new Error(`job data: ${field} must be a non-empty string`);
  return v;
}
