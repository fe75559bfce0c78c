// The in-process JobQueue: what `dispatch serve` runs on without REDIS_URL, and what the
// unit tests use. Same semantics as the BullMQ adapter: delayed jobs (timers), jobId
// de-duplication against queued jobs and, for a bounded window, completed or failed ones;
// retries with exponential back-off; per-queue concurrency; an unknown job name fails the job
// at once (no retry) and loudly. Jobs live in this process only: they are lost when it exits,
// which is why the engine re-arms its timers from the store on start.

import type { JobHandler, JobOptions, JobQueue } from '../engine/ports.ts';
import {
  backoffDelay,
  DEFAULT_KEEP,
  DEFAULT_RETRY,
  type FailureListener,
  type KeepCompleted,
  logFailure,
  type RetryPolicy,
  toError,
  UnknownJobError,
} from './common.ts';

export interface MemoryQueueOptions {
  retry?: Partial<RetryPolicy>;
  keepCompleted?: Partial<KeepCompleted>;
  /** Called for every failed attempt (default: logged to stderr). */
  onFailed?: FailureListener;
}

interface Job {
  id: string;
  name: string;
  /** JSON copy, as a Redis round trip would give. */
  data: Record<string, unknown>;
  attempts: number;
  attempt: number;
  state: 'delayed' | 'waiting' | 'active';
  timer?: NodeJS.Timeout;
}

interface Lane {
  /** Jobs not finished (delayed, waiting, active) by id. */
  jobs: Map<string, Job>;
  waiting: Job[];
  /** Finished job ids → finish time (ms), oldest first. */
  done: Map<string, number>;
  handlers?: Record<string, JobHandler>;
  concurrency: number;
  active: number;
}

let autoId = 0;

export class MemoryQueue implements JobQueue {
  readonly kind = 'memory' as const;
  private readonly lanes = new Map<string, Lane>();
  private readonly retry: RetryPolicy;
  private readonly keep: KeepCompleted;
  private readonly onFailed: FailureListener;
  private closed = false;
  private readonly running = new Set<Promise<void>>();
  private idleWaiters: (() => void)[] = [];

  constructor(opts: MemoryQueueOptions = {}) {
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.keep = { ...DEFAULT_KEEP, ...opts.keepCompleted };
    this.onFailed = opts.onFailed ?? logFailure;
  }

  private lane(queue: string): Lane {
    let l = this.lanes.get(queue);
    if (!l) {
      l = { jobs: new Map(), waiting: [], done: new Map(), concurrency: 1, active: 0 };
      this.lanes.set(queue, l);
    }
    return l;
  }

  async add(
    queue: string,
    name: string,
    data: Record<string, unknown>,
    opts: JobOptions = {},
  ): Promise<void> {
    if (this.closed) throw new Error('queue is closed');
    if (!queue || !name) throw new Error('queue and job name are required');
    const l = this.lane(queue);
    const id = opts.jobId ?? `auto-${++autoId}`;
    this.expireDone(l);
    if (l.jobs.has(id) || l.done.has(id)) return;
    const job: Job = {
      id,
      name,
      data: JSON.parse(JSON.stringify(data ?? {})),
      attempts: Math.max(1, Math.floor(opts.attempts ?? this.retry.attempts)),
      attempt: 0,
      state: 'waiting',
    };
    l.jobs.set(id, job);
    const delay = opts.delayMs ?? 0;
    if (delay > 0) this.delay(queue, l, job, delay);
    else this.enqueue(queue, l, job);
  }

  private delay(queue: string, l: Lane, job: Job, ms: number): void {
    job.state = 'delayed';
    job.timer = setTimeout(() => {
      job.timer = undefined;
      if (l.jobs.get(job.id) === job) this.enqueue(queue, l, job);
    }, ms);
  }

  private enqueue(queue: string, l: Lane, job: Job): void {
    job.state = 'waiting';
    l.waiting.push(job);
    // Asynchronously, like a real broker: add() never runs the handler in its own stack.
    setImmediate(() => this.pump(queue, l));
  }

  private pump(queue: string, l: Lane): void {
    while (!this.closed && l.handlers && l.active < l.concurrency && l.waiting.length > 0) {
      const job = l.waiting.shift()!;
      if (l.jobs.get(job.id) !== job) continue;
      job.state = 'active';
      job.attempt++;
      l.active++;
      const p = this.run(queue, l, job).finally(() => {
        l.active--;
        this.running.delete(p);
        this.pump(queue, l);
        this.checkIdle();
      });
      this.running.add(p);
    }
    this.checkIdle();
  }

  private async run(queue: string, l: Lane, job: Job): Promise<void> {
    const handlers = l.handlers!;
    const handler = Object.hasOwn(handlers, job.name) ? handlers[job.name] : undefined;
    try {
      if (!handler) throw new UnknownJobError(queue, job.name, Object.keys(handlers));
      await handler(job.data, { id: job.id, name: job.name, attempt: job.attempt });
      this.finish(l, job);
    } catch (e) {
      const error = toError(e);
      const final = error instanceof UnknownJobError || job.attempt >= job.attempts || this.closed;
      this.report({ queue, id: job.id, name: job.name, attempt: job.attempt, error, final });
      if (final) this.finish(l, job);
      else this.delay(queue, l, job, backoffDelay(this.retry, job.attempt));
    }
  }

  private report(f: Parameters<FailureListener>[0]): void {
    try {
      this.onFailed(f);
    } catch (err) {
      console.error('[queue] failure listener threw', err);
    }
  }

  private finish(l: Lane, job: Job): void {
    l.jobs.delete(job.id);
    l.done.delete(job.id);
    l.done.set(job.id, Date.now());
    this.expireDone(l);
  }

  private expireDone(l: Lane): void {
    const cut = Date.now() - this.keep.ageS * 1000;
    for (const [id, at] of l.done) {
      if (at >= cut && l.done.size <= this.keep.count) break;
      l.done.delete(id);
    }
  }

  async remove(queue: string, jobId: string): Promise<void> {
    const l = this.lanes.get(queue);
    const job = l?.jobs.get(jobId);
    // An active job cannot be taken back (BullMQ holds its lock too); it simply runs out.
    if (!l || !job || job.state === 'active') return;
    if (job.timer) clearTimeout(job.timer);
    l.jobs.delete(jobId);
    if (job.state === 'waiting') l.waiting = l.waiting.filter((j) => j !== job);
    this.checkIdle();
  }

  async process(
    queue: string,
    handlers: Record<string, JobHandler>,
    opts: { concurrency?: number } = {},
  ): Promise<void> {
    if (this.closed) throw new Error('queue is closed');
    const l = this.lane(queue);
    if (l.handlers) throw new Error(`queue "${queue}" already has a processor`);
    l.handlers = { ...handlers };
    l.concurrency = Math.max(1, Math.floor(opts.concurrency ?? 1));
    setImmediate(() => this.pump(queue, l));
  }

  async depth(queue: string): Promise<number> {
    return this.lanes.get(queue)?.jobs.size ?? 0;
  }

  /** Resolves when no job is waiting or running (delayed ones may remain). Tests and drains. */
  whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.checkIdle();
    });
  }

  private isIdle(): boolean {
    for (const l of this.lanes.values()) {
      if (l.active > 0) return false;
      if (l.handlers && l.waiting.length > 0) return false;
    }
    return true;
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    // After the current tick, so that a job added by a finishing handler is seen.
    setImmediate(() => {
      if (this.isIdle()) for (const w of waiters) w();
      else this.idleWaiters.push(...waiters);
    });
  }

  /** Stops taking jobs, cancels every timer and waits for running handlers to finish. */
  async close(): Promise<void> {
    if (this.closed) {
      await Promise.allSettled([...this.running]);
      return;
    }
    this.closed = true;
    for (const l of this.lanes.values()) {
      for (const job of l.jobs.values()) if (job.timer) clearTimeout(job.timer);
      l.waiting = [];
    }
    await Promise.allSettled([...this.running]);
    for (const l of this.lanes.values()) l.jobs.clear();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
