// Ports the live engine needs, each with a first-class in-process implementation:
// a clock, a job queue (in-process or BullMQ) and a publisher (socket.io or in-memory).

/** Wall clock in epoch seconds; the only place the live engine reads time. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() / 1000 };

export interface JobOptions {
  /** Idempotency: a job with an id already queued or done is not added again. */
  jobId?: string;
  /** Run no earlier than this many milliseconds from now (timers). */
  delayMs?: number;
  attempts?: number;
}

export type JobHandler = (
  data: Record<string, unknown>,
  meta: { id: string; name: string; attempt: number },
) => Promise<void>;

/** Named queues of jobs processed by thin workers; at-least-once delivery. */
export interface JobQueue {
  readonly kind: 'memory' | 'bullmq';
  add(queue: string, name: string, data: Record<string, unknown>, opts?: JobOptions): Promise<void>;
  /** Removes a pending delayed job (a timer that is no longer needed). */
  remove(queue: string, jobId: string): Promise<void>;
  /** Registers the handlers of one queue; an unknown job name fails the job loudly. */
  process(
    queue: string,
    handlers: Record<string, JobHandler>,
    opts?: { concurrency?: number },
  ): Promise<void>;
  depth(queue: string): Promise<number>;
  close(): Promise<void>;
  /**
   * Calls `listener` each time the queue's connection to its store is back after a loss (the
   * store may have lost jobs meanwhile, e.g. Redis restarted empty). Returns the unsubscribe.
   * In-process queues never lose their connection and need not implement it.
   */
  onReconnect?(listener: () => void): () => void;
}

/** Recipients: the whole district's consoles, or one unit. */
export type Recipient = 'consoles' | `unit:${string}`;

/** Delivers a recorded message to connected clients (socket.io rooms, or nothing headless). */
export interface Publisher {
  publish(recipient: Recipient, event: string, envelope: { seq: number; at: number; data: unknown }): void;
}
