// Who may do what, enforced in the engine so that HTTP, sockets and the demo obey the same
// rules. A unit acts only for itself; another unit's assignment or incident is NOT_FOUND to
// it (ids do not leak), another unit's id it names explicitly is FORBIDDEN.

import { ApiError } from '../server/errors.ts';
import type { Actor } from './api.ts';

export type Role = Actor['role'];

const OPERATORS: readonly Role[] = ['dispatcher', 'admin', 'system'];

export function requireRole(actor: Actor, roles: readonly Role[], what: string): void {
  if (!roles.includes(actor.role)) {
    throw new ApiError('FORBIDDEN', `role ${actor.role} may not ${what}`);
  }
}

/** Dispatchers, admins and the system. */
export function requireOperator(actor: Actor, what: string): void {
  requireRole(actor, OPERATORS, what);
}

/** The unit itself, or an operator on its behalf. */
export function requireActFor(actor: Actor, unitId: string, what: string): void {
  if (actor.role === 'unit') {
    if (!actor.unitId) throw new ApiError('FORBIDDEN', 'this unit token is bound to no unit');
    if (actor.unitId !== unitId)
      throw new ApiError('FORBIDDEN', `unit ${actor.unitId} may only ${what} for itself`);
    return;
  }
  requireOperator(actor, what);
}

/** The actor string written to events and audit rows. */
export function actorTag(actor: Actor): string {
  if (actor.role === 'system') return actor.id.startsWith('system') ? actor.id : `system:${actor.id}`;
  if (actor.role === 'unit') return `unit:${actor.unitId ?? actor.id}`;
  return `${actor.role}:${actor.id}`;
}

export const SYSTEM: Actor = { role: 'system', id: 'system:engine' };
