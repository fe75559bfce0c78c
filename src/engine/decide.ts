// Pieces of the decision path that need no I/O: who is excluded from which incident after a
// decline or a missed acknowledgement, and which of a decision's assignments break that.
//
// The core knows nothing of exclusions (they are live-engine policy), so a decision round
// works around them: (1) decide over all open incidents; if an assignment sends an excluded
// unit to an incident, decide again with that incident left out ("deferred"), until no
// assignment breaks an exclusion; apply. (2) Then each deferred incident, highest priority
// first, is decided with its excluded units hidden (free ones left out of the state). A
// committed unit cannot be hidden without reopening its slot, so when that plan still
// pre-empts an excluded unit, the incident is decided alone, from the free units it may get
// (no pre-emption), rather than left waiting beside a free unit.

import type { AssignmentDecision } from '../core/types.ts';

export class Exclusions {
  /** incident → unit → until (epoch seconds). */
  private readonly m = new Map<string, Map<string, number>>();

  add(incidentId: string, unitId: string, until: number): void {
    let u = this.m.get(incidentId);
    if (!u) {
      u = new Map();
      this.m.set(incidentId, u);
    }
    u.set(unitId, Math.max(until, u.get(unitId) ?? 0));
  }

  clear(incidentId: string, unitId?: string): void {
    if (unitId === undefined) this.m.delete(incidentId);
    else this.m.get(incidentId)?.delete(unitId);
  }

  /** Exclusions in force at `now`: incident → excluded units. */
  active(now: number): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const [inc, units] of this.m) {
      for (const [unit, until] of units) {
        if (until <= now) continue;
        let s = out.get(inc);
        if (!s) {
          s = new Set();
          out.set(inc, s);
        }
        s.add(unit);
      }
    }
    return out;
  }

  prune(now: number, openIncidents: ReadonlySet<string>): void {
    for (const [inc, units] of this.m) {
      if (!openIncidents.has(inc)) {
        this.m.delete(inc);
        continue;
      }
      for (const [unit, until] of units) if (until <= now) units.delete(unit);
      if (units.size === 0) this.m.delete(inc);
    }
  }

  get size(): number {
    return this.m.size;
  }
}

export const breaksExclusion = (
  a: AssignmentDecision,
  excluded: ReadonlyMap<string, ReadonlySet<string>>,
): boolean => excluded.get(a.incidentId)?.has(a.unitId) ?? false;

/** Incidents of the decision whose assignments break an exclusion. */
export function offendingIncidents(
  assignments: readonly AssignmentDecision[],
  excluded: ReadonlyMap<string, ReadonlySet<string>>,
): string[] {
  return [...new Set(assignments.filter((a) => breaksExclusion(a, excluded)).map((a) => a.incidentId))];
}
