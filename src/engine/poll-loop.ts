// A background loop running one round at a time: every pollMs while idle, at once when kicked
// (a kick during a round runs another right after it), never two rounds together and at least
// minGapMs between two. The review scanner and the webhook sender run on it. pollMs 0: no
// loop (tests call the round by hand).

export interface PollLoopOptions {
  pollMs: number;
  /** Least time from the end of one round to the start of the next (default 0). */
  minGapMs?: number;
  onError(err: unknown): void;
}

export class PollLoop {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private again = false;
  private stopped = true;
  private lastEnd = 0;

  constructor(
    private readonly round: () => Promise<unknown>,
    private readonly o: PollLoopOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.o.pollMs > 0) this.schedule(0);
  }

  /** Runs a round soon (now, or right after the one in flight). */
  kick(): void {
    if (this.stopped || this.o.pollMs <= 0) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  /** Stops the loop; resolves once the round in flight is over. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(ms, this.lastEnd + (this.o.minGapMs ?? 0) - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.round()
        .catch((err) => this.o.onError(err))
        .finally(() => {
          this.running = undefined;
          this.lastEnd = performance.now();
          const again = this.again;
          this.again = false;
          this.schedule(again ? 0 : this.o.pollMs);
        });
    }, wait);
    this.timer.unref();
  }
}
