// One lane of execution: tasks run one at a time in submission order. Every state change of
// the engine runs in it, so the in-memory mirror, the store and the push sequence stay in step.
// A task must never wait for another task of the same lane (it would wait for itself).
//
// Group commit: the tasks waiting when the lane frees up run together as one batch (one
// store transaction, see Engine.workBatch); each task's caller hears its outcome only after
// the batch committed. Under load a batch holds many changes, so the per-transaction cost
// (BEGIN, COMMIT, the side rows' inserts, the fsync) is paid once for all of them.
//
// Pipelining: while batch n's commit is in flight (in the database, off this thread), the
// work of batch n+1 (the tasks that waited for n) runs on top of n's changes. n+1's writes go
// to the store only after n's commit succeeded. Should n fail, n+1 is undone first and runs
// again after n has been dealt with. At most two batches are alive at once. A batch's callers
// hear their outcomes as soon as its commit holds (Flight.committed).

export interface LaneTask {
  readonly fn: () => Promise<unknown>;
  /** Set by the batch runner. */
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
}

/** A batch whose work has run; its commit may still be in flight. */
export interface Flight {
  /** May the next batch's work run before this one's commit has settled? */
  readonly overlappable: boolean;
  /**
   * Resolves true once the batch committed: its tasks' outcomes are final, and their callers
   * hear them at once, while the next batch's work may still run.
   */
  readonly committed?: Promise<boolean>;
}

export interface BatchRunner<F extends Flight = Flight> {
  /**
   * Runs the tasks' work. `prev`: the batch whose commit is in flight; this batch's writes
   * must follow it, and are dropped if it fails.
   */
  work(tasks: LaneTask[], prev: F | undefined): Promise<F>;
  /**
   * Waits for the batch's commit and completes it: every task's outcome set, the changes
   * published. `next`: the batch whose work ran on top of this one. Returns false when
   * `next` was undone (this one failed) and its tasks must run again.
   */
  settle(flight: F, next: F | undefined): Promise<boolean>;
}

interface Pending extends LaneTask {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

interface Running<F> {
  tasks: Pending[];
  flight?: F;
  finished?: boolean;
}

export class BatchLane<F extends Flight = Flight> {
  private readonly queue: Pending[] = [];
  private active: Promise<void> | undefined;
  private pending = 0;

  constructor(
    private readonly runner: BatchRunner<F>,
    /** Most tasks in one batch (bounds one transaction's size and its callers' wait). */
    private readonly maxBatch = 64,
  ) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.active) this.active = this.loop();
    });
  }

  private async work(tasks: Pending[], prev: F | undefined): Promise<Running<F>> {
    try {
      const r: Running<F> = { tasks, flight: await this.runner.work(tasks, prev) };
      r.flight!.committed?.then((ok) => {
        if (ok) this.finish(r);
      });
      return r;
    } catch (err) {
      // The runner reports failures through outcomes; this is a bug, kept to this batch.
      for (const t of tasks) t.outcome ??= { ok: false, error: err };
      return { tasks };
    }
  }

  private async loop(): Promise<void> {
    // Let the submitter's synchronous siblings join the first batch.
    await Promise.resolve();
    let prev: Running<F> | undefined;
    for (;;) {
      if (!prev?.flight) {
        if (prev) this.finish(prev);
        if (this.queue.length === 0) break;
        prev = await this.work(this.queue.splice(0, this.maxBatch), undefined);
        continue;
      }
      const flight = prev.flight;
      // Only tasks already waiting start a batch over a commit in flight: one started by the
      // first arrival would be small, and each batch costs a decision round and a commit.
      let cur: Running<F> | undefined;
      if (flight.overlappable && this.queue.length > 0)
        cur = await this.work(this.queue.splice(0, this.maxBatch), flight);
      let keep = true;
      try {
        keep = await this.runner.settle(flight, cur?.flight);
      } catch (err) {
        for (const t of prev.tasks) t.outcome ??= { ok: false, error: err };
        keep = false;
      }
      this.finish(prev);
      if (cur && !keep) {
        cur.finished = true; // its tasks are finished by the batch they run in next
        for (const t of cur.tasks) t.outcome = undefined;
        this.queue.unshift(...cur.tasks);
        cur = undefined;
      }
      prev = cur;
    }
    this.active = undefined;
  }

  /** Tells the batch's callers their outcomes (once). */
  private finish(r: Running<F>): void {
    if (r.finished) return;
    r.finished = true;
    for (const t of r.tasks) {
      this.pending--;
      const o = t.outcome ?? { ok: false, error: new Error('lane: task was not run') };
      if (o.ok) t.resolve(o.value);
      else t.reject(o.error);
    }
  }

  /** Tasks submitted and not finished. */
  get size(): number {
    return this.pending;
  }

  /** Resolves once every task submitted so far has finished. */
  async drain(): Promise<void> {
    while (this.active) await this.active;
  }
}
