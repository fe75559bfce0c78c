// A unit reports `en_route` or `on_scene` only for work it has accepted: while its assignment
// is still `offered`, the report is refused with INVALID_TRANSITION ("on scene before accept"),
// over HTTP and over the socket alike. The field-unit page offers those buttons only after an
// accept, and the timeline keeps an explicit `accepted` step for every unit that went out.
//
// The check reads the engine's view before the engine applies the report in its lane. So that
// nothing can slip in between, the incident the check saw is pinned: the report goes to the
// engine with that incidentId, and the engine refuses it if the unit's assignment is by then
// for another incident.

import type { UnitStatus } from '../core/types.ts';
import type { Actor, EngineApi } from '../engine/api.ts';
import { ApiError } from './errors.ts';

const ACTIVE: ReadonlySet<string> = new Set(['offered', 'accepted', 'en_route', 'on_scene']);

/** Returns the incidentId to hand to engine.reportStatus; throws INVALID_TRANSITION on an open offer. */
export async function guardStatusReport(
  engine: Pick<EngineApi, 'listAssignments'>,
  unitId: string,
  status: UnitStatus,
  actor: Actor,
  incidentId: string | undefined,
): Promise<string | undefined> {
  if (status !== 'en_route' && status !== 'on_scene') return incidentId;
  const active = await engine.listAssignments({ unitId, active: true }, actor);
  const cur = active.find((a) => a.unitId === unitId && ACTIVE.has(a.status));
  // No assignment, or one for another incident: the engine refuses with its own message.
  if (!cur || (incidentId !== undefined && incidentId !== cur.incidentId)) return incidentId;
  if (cur.status === 'offered') {
    throw new ApiError(
      'INVALID_TRANSITION',
      `unit ${unitId} has not accepted its offer for ${cur.incidentId}: accept it before reporting ${status.replace('_', ' ')}`,
      { assignmentId: cur.id, status: cur.status },
    );
  }
  return cur.incidentId;
}
