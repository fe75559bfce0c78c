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

import { Queue, UnrecoverableError, Worker } from 'bullmq';
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
}

export const encodeJobId = (id: string): string =>
  `j${id.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'))}`;

export const decodeJobId = (stored: string): string =>
  stored.startsWith('j') ? stored.slice(1).replace(/%3A|%25/g, (c) => (c === '%3A' ? ':' : '%')) : stored;

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
  private closed = false;

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
    await q.add(name, data ?? {}, {
      ...(opts.jobId !== undefined ? { jobId: encodeJobId(opts.jobId) } : {}),
      ...(opts.delayMs && opts.delayMs > 0 ? { delay: Math.round(opts.delayMs) } : {}),
      attempts: Math.max(1, Math.floor(opts.attempts ?? this.retry.attempts)),
      backoff: { type: 'exponential', delay: this.retry.backoffMs },
      removeOnComplete: { age: this.keep.ageS, count: this.keep.count },
      removeOnFail: { age: this.keepFailed.ageS, count: this.keepFailed.count },
    });
  }

  async remove(queue: string, jobId: string): Promise<void> {
    // Removing a job that is active (locked) is refused by BullMQ and returns 0; it runs out.
    await this.queue(queue).remove(encodeJobId(jobId));
  }

  async process(
    queue: string,
    handlers: Record<string, JobHandler>,
    opts: { concurrency?: number } = {},
  ): Promise<void> {
    if (this.closed) throw new Error('queue is closed');
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
    await this.closeWorkers();
    this.closed = true;
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
    if (this.ownsConnection) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
