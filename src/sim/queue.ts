// The simulator's agenda: a binary min-heap of scheduled events ordered by
// (time, priority, sequence). The sequence number is the insertion order, so events with
// equal time and priority run first-scheduled first, and the order is total and
// deterministic whatever the heap's internal layout.

export interface Scheduled<T> {
  t: number;
  prio: number;
  seq: number;
  item: T;
}

function before<T>(a: Scheduled<T>, b: Scheduled<T>): boolean {
  return a.t < b.t || (a.t === b.t && (a.prio < b.prio || (a.prio === b.prio && a.seq < b.seq)));
}

export class EventQueue<T> {
  private readonly heap: Scheduled<T>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(t: number, prio: number, item: T): void {
    if (!Number.isFinite(t)) throw new RangeError(`event time must be finite, got ${t}`);
    const h = this.heap;
    const e: Scheduled<T> = { t, prio, seq: this.seq++, item };
    let k = h.length;
    h.push(e);
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (!before(e, h[p])) break;
      h[k] = h[p];
      k = p;
    }
    h[k] = e;
  }

  peek(): Scheduled<T> | undefined {
    return this.heap[0];
  }

  pop(): Scheduled<T> | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      const n = h.length;
      let k = 0;
      for (;;) {
        const l = 2 * k + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r], h[l]) ? r : l;
        if (!before(h[c], last)) break;
        h[k] = h[c];
        k = c;
      }
      h[k] = last;
    }
    return top;
  }
}
