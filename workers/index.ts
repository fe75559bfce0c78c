// Starts every worker of the live engine on one JobQueue: a handler map per queue (job name →
// a thin handler calling the Engine) and the outbox relay. Refuses to start when a job the
// engine emits, or an outbox topic's job, has no handler — a missing handler must fail at
// start-up, not when the first such job arrives.
//
// Reporter webhooks: the intake and notification handlers record updates through a FollowUp
// (src/engine/followup.ts). `dispatch serve` builds it (with the configured signing secret),
// starts its review scanner and webhook sender and passes it here; without one, a FollowUp
// with an ephemeral secret is made here and only its webhook sender is run (receivers cannot
// verify its signatures across restarts — pass your own).
//
// Delegation: the notifications queue needs no Engine (its handler records webhook updates from
// the store), so a deployment may leave it to `dispatch worker` processes
// (src/cli/commands/worker.ts) — `dispatch serve` with DISPATCH_WORKERS=core passes
// `delegate: ['notifications']` here. That is an explicit, checked choice: only DELEGABLE
// queues may be delegated, the start-up check then requires handlers for every other queue,
// and startDelegatedWorkers (the worker process) requires them for the delegated ones.

import { randomBytes } from 'node:crypto';
import type { Engine } from '../src/engine/engine.ts';
import { FollowUp } from '../src/engine/followup.ts';
import { emittedJobs, QUEUES, type QueueName } from '../src/engine/jobs.ts';
import type { JobHandler, JobQueue } from '../src/engine/ports.ts';
import type { BullmqProcessOptions } from '../src/queue/bullmq-queue.ts';
import type { Store } from '../src/store/store.ts';
import { decisionHandlers } from './decisions.ts';
import { intakeHandlers } from './intake.ts';
import { notificationHandlers } from './notifications.ts';
import { OutboxRelay, type OutboxRelayOptions } from './outbox-relay.ts';
import { timerHandlers } from './timers.ts';

export type HandlerTable = Record<QueueName, Record<string, JobHandler>>;

export const CONCURRENCY: Record<QueueName, number> = {
  [QUEUES.intake]: 4,
  [QUEUES.decisions]: 1,
  [QUEUES.timers]: 4,
  [QUEUES.notifications]: 4,
};

/** Queues whose handlers need no Engine: they may run in separate worker processes. */
export const DELEGABLE: readonly QueueName[] = [QUEUES.notifications];

/** The handlers of the queues that need no Engine (what `dispatch worker` runs). */
export function delegableHandlers(followUp: FollowUp): Record<string, Record<string, JobHandler>> {
  return { [QUEUES.notifications]: notificationHandlers(followUp.webhooks) };
}

/** The emitted jobs (emittedJobs()) of these queues only, or of all but these (`except`). */
export function requiredJobs(
  queues: readonly string[],
  opts: { except?: boolean } = {},
): Map<QueueName, Set<string>> {
  const out = new Map<QueueName, Set<string>>();
  for (const [q, names] of emittedJobs())
    if (queues.includes(q) !== (opts.except === true)) out.set(q, names);
  return out;
}

/** Throws unless every queue named is a known queue that may be delegated. */
export function checkDelegable(queues: readonly string[]): void {
  const bad = queues.filter((q) => !(DELEGABLE as readonly string[]).includes(q));
  if (bad.length > 0) {
    throw new Error(
      `workers: ${bad.join(', ')} cannot run outside the engine process (only ${DELEGABLE.join(', ')} can)`,
    );
  }
}

export function handlerTable(engine: Engine, followUp: FollowUp): HandlerTable {
  return {
    [QUEUES.intake]: intakeHandlers(engine, followUp.webhooks),
    [QUEUES.decisions]: decisionHandlers(engine),
    [QUEUES.timers]: timerHandlers(engine),
    [QUEUES.notifications]: notificationHandlers(followUp.webhooks),
  };
}

/** Throws naming every job the engine emits that has no handler. */
export function checkHandlers(
  table: Partial<Record<string, Record<string, JobHandler>>>,
  required: Map<string, Set<string>> = emittedJobs(),
): void {
  const missing: string[] = [];
  for (const [queue, names] of required) {
    for (const name of names) {
      const h = table[queue];
      if (!h || !Object.hasOwn(h, name) || typeof h[name] !== 'function') missing.push(`${queue}/${name}`);
    }
  }
  if (missing.length > 0) throw new Error(`workers: no handler for ${missing.join(', ')}`);
}

export interface Workers {
  relay: OutboxRelay;
  /** The follow-up side the handlers record reporter updates through. */
  followUp: FollowUp;
  /** Stops the relay (the queue's workers stop with queue.close()) and a FollowUp made here. */
  stop(): Promise<void>;
}

export async function startWorkers(
  engine: Engine,
  queue: JobQueue,
  store: Store,
  opts: {
    relay?: OutboxRelayOptions;
    handlers?: Partial<HandlerTable>;
    followUp?: FollowUp;
    /**
     * Queues left to `dispatch worker` processes (DELEGABLE only): not processed here, and
     * not required by the start-up check. Needs a queue other processes share (BullMQ).
     */
    delegate?: readonly QueueName[];
  } = {},
): Promise<Workers> {
  const delegate = opts.delegate ?? [];
  checkDelegable(delegate);
  if (delegate.length > 0 && queue.kind !== 'bullmq') {
    throw new Error(`workers: ${delegate.join(', ')} can only be delegated on a shared (BullMQ) queue`);
  }
  const own = opts.followUp === undefined;
  const followUp =
    opts.followUp ??
    new FollowUp({ store, engineConfig: engine.config, webhookSecret: randomBytes(32).toString('hex') });
  const table: Partial<HandlerTable> = { ...handlerTable(engine, followUp), ...opts.handlers };
  for (const q of delegate) delete table[q];
  checkHandlers(table, requiredJobs(delegate, { except: true }));
  for (const [q, handlers] of Object.entries(table) as [QueueName, Record<string, JobHandler>][]) {
    await queue.process(q, handlers, { concurrency: CONCURRENCY[q] ?? 1 });
  }
  const relay = new OutboxRelay(store, queue, opts.relay);
  const off = engine.onOutbox(() => relay.kick());
  relay.start();
  if (own && !delegate.includes(QUEUES.notifications)) followUp.webhooks.start();
  return {
    relay,
    followUp,
    async stop() {
      off();
      await relay.stop();
      if (own) await followUp.webhooks.stop();
    },
  };
}

/**
 * The worker-process side (`dispatch worker`): processes `queues` (DELEGABLE; default all of
 * them) with the Engine-free handlers, after the same start-up check for those queues.
 * `process` options (BullMQ: lock duration, stalled-check period…) are passed through. The
 * workers stop with queue.close() (which waits for the running jobs). Returns the queues.
 */
export async function startDelegatedWorkers(
  queue: JobQueue,
  followUp: FollowUp,
  opts: {
    queues?: readonly QueueName[];
    concurrency?: number;
    /** Passed to queue.process (a BullMQ queue: lock duration, stalled check). */
    process?: Omit<BullmqProcessOptions, 'concurrency'>;
    handlers?: Partial<HandlerTable>;
  } = {},
): Promise<QueueName[]> {
  const queues = [...(opts.queues ?? DELEGABLE)];
  checkDelegable(queues);
  const all = { ...delegableHandlers(followUp), ...opts.handlers } as Record<
    string,
    Record<string, JobHandler>
  >;
  const table: Record<string, Record<string, JobHandler>> = {};
  for (const q of queues) if (all[q]) table[q] = all[q];
  checkHandlers(table, requiredJobs(queues));
  for (const q of queues) {
    const o: BullmqProcessOptions = { concurrency: opts.concurrency ?? CONCURRENCY[q] ?? 1, ...opts.process };
    await queue.process(q, table[q], o);
  }
  return queues;
}
