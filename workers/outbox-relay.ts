// The outbox relay: claims outbox rows written in the same transaction as the state change
// they belong to, enqueues each as the job its topic routes to (jobId `outbox:<id>`, so a row
// relayed twice after a crash is still one job), then marks them done. A row whose enqueue
// fails is released and retried later; a topic with no route is refused loudly (and retried,
// in case a newer version of the engine knows it). Polls every `pollMs`; kick() wakes it.

import { OUTBOX_ROUTES, outboxJobId } from '../src/engine/jobs.ts';
import type { JobQueue } from '../src/engine/ports.ts';
import type { OutboxRecord, Store } from '../src/store/store.ts';

export interface OutboxRelayOptions {
  /** Idle polling period (default 250 ms). */
  pollMs?: number;
  /** Rows per claim (default 100). */
  batch?: number;
  /**
   * Least time from the end of one pass to the start of the next (default 50 ms): under load
   * a kick follows every commit, and a pass per kick cost two statements for a row or two.
   */
  minGapMs?: number;
  /** A claimed row not completed within this lease is claimed again (default 30 s). */
  leaseS?: number;
  /** Seconds before a failed row is retried (default 5; unknown topics 60). */
  retryS?: number;
  log?: (msg: string, err?: unknown) => void;
}

export class OutboxRelay {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = true;
  private loop?: Promise<void>;
  private wake = false;
  relayed = 0;
  private readonly pollMs: number;
  private readonly batch: number;
  private readonly minGapMs: number;
  private lastEnd = Number.NEGATIVE_INFINITY;
  private readonly leaseS: number;
  private readonly retryS: number;
  private readonly log: (msg: string, err?: unknown) => void;

  constructor(
    private readonly store: Store,
    private readonly queue: JobQueue,
    opts: OutboxRelayOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 250;
    this.batch = opts.batch ?? 100;
    this.minGapMs = opts.minGapMs ?? 50;
    this.leaseS = opts.leaseS ?? 30;
    this.retryS = opts.retryS ?? 5;
    this.log = opts.log ?? ((msg, err) => console.error(`[outbox-relay] ${msg}`, err ?? ''));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Runs a pass now (after a commit that wrote outbox rows). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wake = true;
      return;
    }
    this.schedule(0);
  }

  /** `spaced`: not before minGapMs after the last pass ended. */
  private schedule(ms: number, spaced = true): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.loop = this.pass();
      },
      spaced ? Math.max(ms, this.lastEnd + this.minGapMs - performance.now()) : ms,
    );
  }

  private async pass(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    let full = false;
    try {
      full = (await this.relayOnce()) >= this.batch;
    } catch (err) {
      this.log('relay pass failed', err);
    } finally {
      this.running = false;
      this.lastEnd = performance.now();
    }
    const again = this.wake;
    this.wake = false;
    // A full claim goes on at once: a backlog (after a restart) drains at full speed.
    if (full) this.schedule(0, false);
    else this.schedule(again ? 0 : this.pollMs);
  }

  /** One claim → enqueue → complete round; returns how many rows were claimed. */
  async relayOnce(): Promise<number> {
    const rows = await this.store.claimOutbox(this.batch, { leaseS: this.leaseS });
    // All at once, in order: a queue may send jobs added together as one batch (BullMQ: one
    // pipeline, where one at a time each waited for its own round trip).
    const relayed = await Promise.all(rows.map((row) => this.relay(row)));
    const done = rows.filter((_, i) => relayed[i]).map((row) => row.id);
    if (done.length > 0) {
      await this.store.completeOutbox(done);
      this.relayed += done.length;
    }
    return rows.length;
  }

  private async relay(row: OutboxRecord): Promise<boolean> {
    const route = Object.hasOwn(OUTBOX_ROUTES, row.topic) ? OUTBOX_ROUTES[row.topic] : undefined;
    if (!route) {
      const error = `no job route for outbox topic "${row.topic}" (row ${row.id})`;
      this.log(error);
      await this.store.releaseOutbox(row.id, { error, retryAt: Date.now() / 1000 + 60 });
      return false;
    }
    try {
      await this.queue.add(route.queue, route.name, row.payload, {
        jobId: outboxJobId(row.id),
        ...(route.attempts !== undefined ? { attempts: route.attempts } : {}),
      });
      return true;
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.log(`enqueueing outbox row ${row.id} (${row.topic}) failed`, err);
      await this.store
        .releaseOutbox(row.id, { error, retryAt: Date.now() / 1000 + this.retryS })
        .catch((e) => this.log(`releasing outbox row ${row.id} failed`, e));
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.loop;
  }
}
