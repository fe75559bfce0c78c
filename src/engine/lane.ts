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
// work of batch n+1 runs on top of n's changes, and so on up to `depth` batches alive. Each
// batch's writes follow the one before (held back until it committed, or sent at once to a
// database that runs them only if it held: TransactionOptions.afterLink). Should n fail, the
// batches over it are undone first, newest first, and run again after n has been dealt with.
// A batch's callers hear their outcomes as soon as its commit holds (Flight.committed).

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
   * published. `later`: the batches whose work ran on top of this one, oldest first. Returns
   * false when they were undone (this one failed) and their tasks must run again.
   */
  settle(flight: F, later: F[]): Promise<boolean>;
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
  private wake?: () => void;

  constructor(
    private readonly runner: BatchRunner<F>,
    /** Most tasks in one batch (bounds one transaction's size and its callers' wait). */
    private readonly maxBatch = 64,
    /** Most batches alive at once: one working, the others' commits in flight. */
    private readonly depth = 2,
  ) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.active) this.active = this.loop();
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
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
    /** Batches whose work ran and whose commit is in flight, oldest first. */
    const flying: Running<F>[] = [];
    for (;;) {
      const newest = flying.at(-1);
      // Another batch may start over the newest while its commit is in flight.
      const room = !newest || (newest.flight?.overlappable === true && flying.length < this.depth);
      if (this.queue.length > 0 && room) {
        const r = await this.work(this.queue.splice(0, this.maxBatch), newest?.flight);
        if (r.flight) flying.push(r);
        else this.finish(r);
        continue;
      }
      const oldest = flying[0];
      if (!oldest?.flight) break;
      if (room && oldest.flight.committed) {
        // Nothing waits yet: the first task to arrive before the oldest commit answers starts
        // the next batch (waiting for that answer left the database idle while the next batch
        // worked: the two threads took turns instead of overlapping).
        if ((await Promise.race([oldest.flight.committed.then(() => false), this.arrival()])) === true)
          continue;
      }
      flying.shift();
      const later = flying.map((r) => r.flight!);
      let keep = true;
      try {
        keep = await this.runner.settle(oldest.flight, later);
      } catch (err) {
        for (const t of oldest.tasks) t.outcome ??= { ok: false, error: err };
        keep = false;
      }
      this.finish(oldest);
      if (!keep) {
        // Their tasks are finished by the batches they run in next, first in the queue.
        const again = flying.splice(0).flatMap((r) => {
          r.finished = true;
          return r.tasks;
        });
        for (const t of again) t.outcome = undefined;
        this.queue.unshift(...again);
      }
    }
    this.active = undefined;
  }

  /** Resolves true at the next run(), once the submitter's synchronous siblings joined it. */
  private arrival(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.wake = () => queueMicrotask(() => resolve(true));
    });
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
