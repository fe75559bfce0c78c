// Starts every worker of the live engine on one JobQueue: a handler map per queue (job name →
// a thin handler calling the Engine) and the outbox relay. Refuses to start when a job the
// engine emits, or an outbox topic's job, has no handler — a missing handler must fail at
// start-up, not when the first such job arrives.

import type { Engine } from '../src/engine/engine.ts';
import { emittedJobs, QUEUES, type QueueName } from '../src/engine/jobs.ts';
import type { JobHandler, JobQueue } from '../src/engine/ports.ts';
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

export function handlerTable(engine: Engine): HandlerTable {
  return {
    [QUEUES.intake]: intakeHandlers(engine),
    [QUEUES.decisions]: decisionHandlers(engine),
    [QUEUES.timers]: timerHandlers(engine),
    [QUEUES.notifications]: notificationHandlers(engine),
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
  /** Stops the relay (the queue's workers stop with queue.close()). */
  stop(): Promise<void>;
}

export async function startWorkers(
  engine: Engine,
  queue: JobQueue,
  store: Store,
  opts: { relay?: OutboxRelayOptions; handlers?: Partial<HandlerTable> } = {},
): Promise<Workers> {
  const table = { ...handlerTable(engine), ...opts.handlers } as HandlerTable;
  checkHandlers(table);
  for (const [q, handlers] of Object.entries(table) as [QueueName, Record<string, JobHandler>][]) {
    await queue.process(q, handlers, { concurrency: CONCURRENCY[q] ?? 1 });
  }
  const relay = new OutboxRelay(store, queue, opts.relay);
  const off = engine.onOutbox(() => relay.kick());
  relay.start();
  return {
    relay,
    async stop() {
      off();
      await relay.stop();
    },
  };
}
