// Each unit's recent non-responses (declines and missed acknowledgements), kept in memory so
// that counting them for `repeated_non_response` costs no query on the decision path: a
// backlog after a restart times out hundreds of offers in one batch, and a query per offer
// held every commit up. Loaded at start from the store (the refusals of the last window).

export class NonResponses {
  /** unit → times (epoch seconds), ascending. */
  private readonly m = new Map<string, number[]>();

  add(unitId: string, at: number): void {
    let l = this.m.get(unitId);
    if (!l) {
      l = [];
      this.m.set(unitId, l);
    }
    let i = l.length;
    while (i > 0 && l[i - 1] > at) i--;
    l.splice(i, 0, at);
  }

  /** Removes one recorded time (a rolled-back change). */
  remove(unitId: string, at: number): void {
    const l = this.m.get(unitId);
    const i = l?.lastIndexOf(at) ?? -1;
    if (l && i >= 0) l.splice(i, 1);
  }

  /** Non-responses at or after `since`; older ones are forgotten. */
  count(unitId: string, since: number): number {
    const l = this.m.get(unitId);
    if (!l) return 0;
    let k = 0;
    while (k < l.length && l[k] < since) k++;
    if (k > 0) l.splice(0, k);
    if (l.length === 0) this.m.delete(unitId);
    return l.length;
  }

  clear(): void {
    this.m.clear();
  }
}
