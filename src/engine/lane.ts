// One lane of execution: tasks run one at a time in submission order. Every state change of
// the engine runs in it, so the in-memory mirror, the store and the push sequence stay in step.
// A task must never wait for another task of the same lane (it would wait for itself).
//
// Group commit: the tasks waiting when the lane frees up run together as one batch (one
// store transaction, see Engine.runBatch); each task's caller hears its outcome only after
// the batch committed. Under load a batch holds many changes, so the per-transaction cost
// (BEGIN, COMMIT, the side rows' inserts, the fsync) is paid once for all of them.

export interface LaneTask {
  readonly fn: () => Promise<unknown>;
  /** Set by the batch runner. */
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
}

export type BatchRunner = (tasks: LaneTask[]) => Promise<void>;

interface Pending extends LaneTask {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export class BatchLane {
  private readonly queue: Pending[] = [];
  private active: Promise<void> | undefined;
  private pending = 0;

  constructor(
    private readonly runBatch: BatchRunner,
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

  private async loop(): Promise<void> {
    // Let the submitter's synchronous siblings join the first batch.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const tasks = this.queue.splice(0, this.maxBatch);
      try {
        await this.runBatch(tasks);
      } catch (err) {
        for (const t of tasks) t.outcome ??= { ok: false, error: err };
      }
      for (const t of tasks) {
        this.pending--;
        const o = t.outcome ?? { ok: false, error: new Error('lane: task was not run') };
        if (o.ok) t.resolve(o.value);
        else t.reject(o.error);
      }
    }
    this.active = undefined;
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
