// Indexed binary min-heap over integer ids 0..capacity-1 with decrease-key.
// Ordering is total and deterministic: by key[id], then tie[id], then id. The key
// and tie arrays belong to the caller and are read on every comparison, so the
// caller must call `decrease` after lowering a key of an id that is in the heap.

export class IndexedMinHeap {
  readonly heap: Int32Array;
  /** Position of each id in `heap`, or -1 when absent. */
  readonly pos: Int32Array;
  size = 0;
  key: Float64Array;
  tie: Int32Array;

  constructor(capacity: number, key: Float64Array, tie: Int32Array) {
    this.heap = new Int32Array(capacity);
    this.pos = new Int32Array(capacity).fill(-1);
    this.key = key;
    this.tie = tie;
  }

  /** Empties the heap and points it at other key and tie arrays (reuse across solves). */
  reset(key: Float64Array, tie: Int32Array): void {
    this.clear();
    this.key = key;
    this.tie = tie;
  }

  /** Empties the heap in O(size). */
  clear(): void {
    const { heap, pos } = this;
    for (let k = 0; k < this.size; k++) pos[heap[k]] = -1;
    this.size = 0;
  }

  push(id: number): void {
    const k = this.size++;
    this.heap[k] = id;
    this.pos[id] = k;
    this.up(k);
  }

  /** Restores order after key[id] was lowered; id must be in the heap. */
  decrease(id: number): void {
    this.up(this.pos[id]);
  }

  /** Removes and returns the minimum id; the heap must be non-empty. */
  pop(): number {
    const { heap, pos } = this;
    const top = heap[0];
    pos[top] = -1;
    const n = --this.size;
    if (n > 0) {
      const last = heap[n];
      heap[0] = last;
      pos[last] = 0;
      this.down(0);
    }
    return top;
  }

  private less(a: number, b: number): boolean {
    const ka = this.key[a];
    const kb = this.key[b];
    if (ka !== kb) return ka < kb;
    const ta = this.tie[a];
    const tb = this.tie[b];
    return ta !== tb ? ta < tb : a < b;
  }

  private up(k: number): void {
    const { heap, pos } = this;
    const id = heap[k];
    while (k > 0) {
      const parent = (k - 1) >> 1;
      const p = heap[parent];
      if (!this.less(id, p)) break;
      heap[k] = p;
      pos[p] = k;
      k = parent;
    }
    heap[k] = id;
    pos[id] = k;
  }

  private down(k: number): void {
    const { heap, pos } = this;
    const n = this.size;
    const id = heap[k];
    for (;;) {
      let child = 2 * k + 1;
      if (child >= n) break;
      if (child + 1 < n && this.less(heap[child + 1], heap[child])) child++;
      const c = heap[child];
      if (!this.less(c, id)) break;
      heap[k] = c;
      pos[c] = k;
      k = child;
    }
    heap[k] = id;
    pos[id] = k;
  }
}
