// Shared pieces of the two JobQueue adapters: the failure report, the "unknown job name"
// error and the retry back-off, so both behave alike under the contract suite.

/** A job that failed for good (attempts exhausted, or refused as unknown). */
export interface JobFailure {
  queue: string;
  id: string;
  name: string;
  /** The attempt that failed (1-based). */
  attempt: number;
  error: Error;
  /** True when no further attempt will be made. */
  final: boolean;
}

export type FailureListener = (f: JobFailure) => void;

/** Default listener: failures are loud, never silent. */
export const logFailure: FailureListener = (f) => {
  const when = f.final ? 'failed for good' : 'failed, will retry';
  console.error(
    `[queue] job ${f.queue}/${f.name} (${f.id}) attempt ${f.attempt} ${when}: ${f.error.message}`,
  );
};

/** Thrown (and never retried) when a job's name has no handler on its queue. */
export class UnknownJobError extends Error {
  override readonly name = 'UnknownJobError';
  constructor(queue: string, jobName: string, known: readonly string[]) {
    super(`unknown job name "${jobName}" on queue "${queue}" (handlers: ${known.join(', ') || 'none'})`);
  }
}

export interface RetryPolicy {
  /** Attempts per job when the caller gives none (default 3). */
  attempts: number;
  /** First retry delay; each further retry doubles it (default 1000 ms). */
  backoffMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, backoffMs: 1000 };

/** Exponential back-off before attempt `attempt + 1` (attempt is the one that failed, 1-based). */
export const backoffDelay = (policy: RetryPolicy, attempt: number): number =>
  policy.backoffMs * 2 ** Math.max(0, attempt - 1);

/** How long completed job ids are remembered for jobId de-duplication. */
export interface KeepCompleted {
  /** Seconds (default 3600). */
  ageS: number;
  /** Per queue (default 10 000). */
  count: number;
}

export const DEFAULT_KEEP: KeepCompleted = { ageS: 3600, count: 10_000 };

export const toError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));
