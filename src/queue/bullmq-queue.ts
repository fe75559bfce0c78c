// The BullMQ adapter of JobQueue (REDIS_URL set): one BullMQ Queue and, once `process` is
// called, one Worker per queue name, on one ioredis connection (maxRetriesPerRequest: null,
// as BullMQ requires; workers duplicate it for their blocking reads). Each instance has its
// own key prefix, so test files and districts sharing a Redis never see each other's jobs.
//
// Job ids: BullMQ refuses custom ids that are integers or contain ':' — the engine's ids
// (`ack:<assignmentId>`, `outbox:<n>`) do both — so ids are stored encoded ('j' + the id
// with '%' → '%25' and ':' → '%3A', an injective mapping) and handed back decoded.
// De-duplication: a job id already waiting, delayed, active, or completed within the
// removeOnComplete window (or failed within removeOnFail) is not added again.
//
// A worker process that dies (SIGKILL, OOM, a lost host) leaves its active jobs locked in
// Redis. BullMQ gives them back through its stalled-job check (moveStalledJobsToWait), which
// every Worker of the queue runs every `stalledIntervalMs`: a check first moves back to wait
// the active jobs marked at the previous check whose lock has expired (their worker stopped
// renewing it, every lockDurationMs / 2), then marks every active job. So a dead worker's job
// is handed out again within about lockDurationMs + stalledIntervalMs of the death (BullMQ's
// defaults: 30 s + 30 s). Each such return counts in the job's `stc`; above maxStalledCount
// the job is failed for good ("job stalled more than allowable limit") when next picked up —
// BullMQ's default of 1 fails a job on its second stall. `workers` sets these per instance,
// process() per queue; a job's attempts are not used up by stalls. Each Worker is named
// (default <host>:<pid>): the job's `processedBy` says which process took it last.

import { hostname } from 'node:os';
import { type JobsOptions, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobHandler, JobOptions, JobQueue } from '../engine/ports.ts';
import {
  DEFAULT_KEEP,
  DEFAULT_RETRY,
  type FailureListener,
  type KeepCompleted,
  logFailure,
  type RetryPolicy,
  toError,
  UnknownJobError,
} from './common.ts';

export interface BullmqQueueOptions {
  /** redis://… (default redis://127.0.0.1:6379). Ignored when `connection` is given. */
  url?: string;
  /** An existing connection (must have maxRetriesPerRequest: null); not closed by close(). */
  connection?: Redis;
  /** Key prefix of this instance's queues (default `dispatch`). */
  prefix?: string;
  retry?: Partial<RetryPolicy>;
  keepCompleted?: Partial<KeepCompleted>;
  /** Failed jobs are kept (and their ids de-duplicated) this long (default 24 h, 10 000). */
  keepFailed?: Partial<KeepCompleted>;
  onFailed?: FailureListener;
  /** Stalled-job recovery of this instance's workers (default 30 s, 30 s, 10: BULLMQ_RECOVERY). */
  workers?: Partial<WorkerRecovery>;
  /** Name of this process's workers, recorded on each job it takes (default <host>:<pid>). */
  workerName?: string;
}

/** How a Worker's jobs are given back when the worker dies (see the top of this file). */
export interface WorkerRecovery {
  /** A job's lock lasts this long, renewed every half of it while the job runs (ms). */
  lockDurationMs: number;
  /** Period of the stalled-job check each worker runs (ms). */
  stalledIntervalMs: number;
  /** Stalls a job survives (given back to wait); one more fails it for good. */
  maxStalledCount: number;
}

/**
 * BullMQ's lock and check periods; but a job survives 10 stalls, not 1: every handler here is
 * idempotent (job ids, state checks), so a job given back after its worker died must not be
 * failed for good because the engine was killed twice within one lock period. The bound still
 * stops a job that kills its worker every time.
 */
export const BULLMQ_RECOVERY: WorkerRecovery = {
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  maxStalledCount: 10,
};

export interface BullmqProcessOptions extends Partial<WorkerRecovery> {
  concurrency?: number;
}

export const encodeJobId = (id: string): string =>
  `j${id.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'))}`;

export const decodeJobId = (stored: string): string =>
  stored.startsWith('j') ? stored.slice(1).replace(/%3A|%25/g, (c) => (c === '%3A' ? ':' : '%')) : stored;

interface PendingAdd {
  job: { name: string; data: Record<string, unknown>; opts: JobsOptions };
  resolve(): void;
  reject(err: unknown): void;
}

export class BullmqQueue implements JobQueue {
  readonly kind = 'bullmq' as const;
  readonly prefix: string;
  private readonly redis: Redis;
  private readonly ownsConnection: boolean;
  private readonly queues = new Map<string, Queue>();
  private readonly workers = new Map<string, Worker>();
  private readonly retry: RetryPolicy;
  private readonly keep: KeepCompleted;
  private readonly keepFailed: KeepCompleted;
  private readonly onFailed: FailureListener;
  private readonly reconnectListeners = new Set<() => void>();
  private readonly recovery: WorkerRecovery;
  readonly workerName: string;
  private closed = false;
  /** Jobs added this turn of the event loop, by queue; whether their flush is due; flushes running. */
  private readonly pendingAdds = new Map<string, PendingAdd[]>();
  private flushScheduled = false;
  private readonly flushes = new Set<Promise<void>>();

  constructor(opts: BullmqQueueOptions = {}) {
    this.prefix = opts.prefix ?? 'dispatch';
    this.ownsConnection = !opts.connection;
    this.redis =
      opts.connection ??
      new Redis(opts.url ?? 'redis://127.0.0.1:6379', {
        maxRetriesPerRequest: null,
        lazyConnect: false,
        // Reconnect attempts at most 0.5 s apart (ioredis' default backs off to 2 s), so the
        // queue is back within 0.5 s of Redis; the workers' connections copy these options.
        retryStrategy: (times: number) => Math.min(times * 50, 500),
      });
    // Connection errors surface through the commands that fail; keep the process alive.
    this.redis.on('error', () => {});
    // ioredis reconnects by itself ('ready' again); a restarted Redis may have lost every job.
    let wasReady = this.redis.status === 'ready';
    this.redis.on('ready', () => {
      if (wasReady && !this.closed) {
        for (const l of this.reconnectListeners) {
          try {
            l();
          } catch (err) {
            console.error('[queue] reconnect listener threw', err);
          }
        }
      }
      wasReady = true;
    });
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.keep = { ...DEFAULT_KEEP, ...opts.keepCompleted };
    this.keepFailed = { ageS: 24 * 3600, count: 10_000, ...opts.keepFailed };
    this.onFailed = opts.onFailed ?? logFailure;
    this.recovery = { ...BULLMQ_RECOVERY, ...opts.workers };
    this.workerName = opts.workerName ?? `${hostname()}:${process.pid}`;
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** Fails loudly (with the address) when Redis does not answer within `timeoutMs`. */
  async ping(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.redis.ping(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private queue(name: string): Queue {
    if (this.closed) throw new Error('queue is closed');
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.redis, prefix: this.prefix });
      q.on('error', () => {});
      this.queues.set(name, q);
    }
    return q;
  }

  async add(
    queue: string,
    name: string,
    data: Record<string, unknown>,
    opts: JobOptions = {},
  ): Promise<void> {
    if (!queue || !name) throw new Error('queue and job name are required');
    const q = this.queue(queue);
    const job = {
      name,
      data: data ?? {},
      opts: {
        ...(opts.jobId !== undefined ? { jobId: encodeJobId(opts.jobId) } : {}),
        ...(opts.delayMs && opts.delayMs > 0 ? { delay: Math.round(opts.delayMs) } : {}),
        attempts: Math.max(1, Math.floor(opts.attempts ?? this.retry.attempts)),
        backoff: { type: 'exponential', delay: this.retry.backoffMs },
        removeOnComplete: { age: this.keep.ageS, count: this.keep.count },
        removeOnFail: { age: this.keepFailed.ageS, count: this.keepFailed.count },
      },
    };
    // Without an id a job could not be sent again safely after a failed batch (see flushAdds).
    if (opts.jobId === undefined) {
      await q.add(job.name, job.data, job.opts);
      return;
    }
    return new Promise<void>((resolve, reject) => {
      let list = this.pendingAdds.get(queue);
      if (!list) {
        list = [];
        this.pendingAdds.set(queue, list);
      }
      list.push({ job, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        const f = this.flushAdds();
        this.flushes.add(f);
        void f.finally(() => this.flushes.delete(f));
      });
    });
  }

  /**
   * Sends the jobs added during one turn of the event loop (a commit arms a timer per offer
   * and per incident; the outbox relay enqueues what it claimed) as one pipeline per queue:
   * one socket write and one round trip, where each add was a write of its own (those writes
   * were 8 % of the engine thread's busy time at 250 incidents/s). A batch that fails is sent
   * again job by job (each has an id, so what the batch did add is not added twice), and each
   * caller hears its own job.
   */
  private async flushAdds(): Promise<void> {
    const batches = [...this.pendingAdds];
    this.pendingAdds.clear();
    await Promise.all(
      batches.map(async ([queue, list]) => {
        const q = this.queues.get(queue);
        try {
          if (!q) throw new Error('queue is closed');
          await q.addBulk(list.map((p) => p.job));
          for (const p of list) p.resolve();
        } catch {
          for (const p of list) {
            try {
              if (!q || this.closed) throw new Error('queue is closed');
              await q.add(p.job.name, p.job.data, p.job.opts);
              p.resolve();
            } catch (err) {
              p.reject(err);
            }
          }
        }
      }),
    );
  }

  async remove(queue: string, jobId: string): Promise<void> {
    // Removing a job that is active (locked) is refused by BullMQ and returns 0; it runs out.
    await this.queue(queue).remove(encodeJobId(jobId));
  }

  async process(
    queue: string,
    handlers: Record<string, JobHandler>,
    opts: BullmqProcessOptions = {},
  ): Promise<void> {
    if (this.closed) throw new Error('queue is closed');
    const r: WorkerRecovery = {
      lockDurationMs: opts.lockDurationMs ?? this.recovery.lockDurationMs,
      stalledIntervalMs: opts.stalledIntervalMs ?? this.recovery.stalledIntervalMs,
      maxStalledCount: opts.maxStalledCount ?? this.recovery.maxStalledCount,
    };
    if (!(r.lockDurationMs >= 1000 && r.stalledIntervalMs >= 100 && r.maxStalledCount >= 0)) {
      throw new RangeError(
        'worker recovery: lockDurationMs ≥ 1000, stalledIntervalMs ≥ 100, maxStalledCount ≥ 0',
      );
    }
    if (this.workers.has(queue)) throw new Error(`queue "${queue}" already has a processor`);
    const table = { ...handlers };
    const worker = new Worker(
      queue,
      async (job) => {
        const handler = Object.hasOwn(table, job.name) ? table[job.name] : undefined;
        if (!handler) {
          // Unrecoverable: BullMQ fails the job at once, without the remaining attempts.
          throw new UnrecoverableError(new UnknownJobError(queue, job.name, Object.keys(table)).message);
        }
        await handler((job.data ?? {}) as Record<string, unknown>, {
          id: decodeJobId(job.id ?? ''),
          name: job.name,
          attempt: job.attemptsMade + 1,
        });
      },
      {
        connection: this.redis,
        prefix: this.prefix,
        concurrency: Math.max(1, Math.floor(opts.concurrency ?? 1)),
        name: this.workerName,
        lockDuration: Math.round(r.lockDurationMs),
        stalledInterval: Math.round(r.stalledIntervalMs),
        maxStalledCount: Math.floor(r.maxStalledCount),
      },
    );
    worker.on('failed', (job, err) => {
      if (!job) return;
      const error = toError(err);
      const attempts = job.opts.attempts ?? 1;
      const final =
        error instanceof UnrecoverableError ||
        error.name === 'UnrecoverableError' ||
        job.attemptsMade >= attempts;
      const failure = {
        queue,
        id: decodeJobId(job.id ?? ''),
        name: job.name,
        attempt: job.attemptsMade,
        error,
        final,
      };
      try {
        this.onFailed(failure);
      } catch (e) {
        console.error('[queue] failure listener threw', e);
      }
    });
    worker.on('error', (err) => {
      if (!this.closed) console.error(`[queue] worker ${queue}: ${err.message}`);
    });
    this.workers.set(queue, worker);
    await worker.waitUntilReady();
  }

  async depth(queue: string): Promise<number> {
    const counts = await this.queue(queue).getJobCounts(
      'waiting',
      'delayed',
      'active',
      'prioritized',
      'waiting-children',
    );
    return Object.values(counts).reduce((s, n) => s + (n ?? 0), 0);
  }

  /**
   * Tests and resets: closes the workers, then deletes every job of the queues this instance
   * touched (BullMQ's obliterate; workers must be closed first, or it fails with
   * "Missing key for job").
   */
  async purge(): Promise<void> {
    await this.closeWorkers();
    for (const q of this.queues.values()) await q.obliterate({ force: true });
  }

  private async closeWorkers(): Promise<void> {
    const ws = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(ws.map((w) => w.close()));
  }

  /** Closes workers (waiting for running jobs), then queues, then the connection if owned. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Jobs already accepted go out first.
    while (this.flushScheduled || this.flushes.size > 0) {
      await (this.flushes.size > 0 ? Promise.all(this.flushes) : new Promise((r) => setImmediate(r)));
    }
    await this.closeWorkers();
    this.closed = true;
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
    if (this.ownsConnection) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
