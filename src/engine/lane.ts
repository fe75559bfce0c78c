// One lane of execution: tasks run one at a time in submission order. Every state change of
// the engine runs in it, so the in-memory mirror, the store and the push sequence stay in step.
// A task must never wait for another task of the same lane (it would wait for itself).

export class SerialLane {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  run<T>(task: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.tail.then(task);
    this.tail = result.then(
      () => this.pending--,
      () => this.pending--,
    );
    return result;
  }

  /** Tasks submitted and not finished. */
  get size(): number {
    return this.pending;
  }

  /** Resolves once every task submitted so far has finished. */
  async drain(): Promise<void> {
    while (this.pending > 0) await this.tail;
  }
}
