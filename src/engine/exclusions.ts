// Who is excluded from which incident after a decline or a missed acknowledgement, and until
// when. The live engine hands the exclusions in force to the core with each incident
// (Incident.excludedUnitIds), which never sends such a unit there, not even by pre-emption.

export class Exclusions {
  /** incident → unit → until (epoch seconds). */
  private readonly m = new Map<string, Map<string, number>>();

  /** Returns what it replaced (for restore()). */
  add(incidentId: string, unitId: string, until: number): number | undefined {
    let u = this.m.get(incidentId);
    if (!u) {
      u = new Map();
      this.m.set(incidentId, u);
    }
    const prev = u.get(unitId);
    u.set(unitId, Math.max(until, prev ?? 0));
    return prev;
  }

  /** Puts back what add() replaced (a rolled-back change). */
  restore(incidentId: string, unitId: string, prev: number | undefined): void {
    if (prev !== undefined) this.m.get(incidentId)?.set(unitId, prev);
    else this.clear(incidentId, unitId);
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
