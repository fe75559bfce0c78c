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

import { randomBytes } from 'node:crypto';
import type { Engine } from '../src/engine/engine.ts';
import { FollowUp } from '../src/engine/followup.ts';
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
  opts: { relay?: OutboxRelayOptions; handlers?: Partial<HandlerTable>; followUp?: FollowUp } = {},
): Promise<Workers> {
  const own = opts.followUp === undefined;
  const followUp =
    opts.followUp ??
    new FollowUp({ store, engineConfig: engine.config, webhookSecret: randomBytes(32).toString('hex') });
  const table = { ...handlerTable(engine, followUp), ...opts.handlers } as HandlerTable;
  checkHandlers(table);
  for (const [q, handlers] of Object.entries(table) as [QueueName, Record<string, JobHandler>][]) {
    await queue.process(q, handlers, { concurrency: CONCURRENCY[q] ?? 1 });
  }
  const relay = new OutboxRelay(store, queue, opts.relay);
  const off = engine.onOutbox(() => relay.kick());
  relay.start();
  if (own) followUp.webhooks.start();
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
