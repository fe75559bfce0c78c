// Issue #6 item 2: "SIGKILL a worker process every 10 s during load → 0 lost jobs; no unit sees
// a duplicate offer". Short version: `dispatch serve` with DISPATCH_WORKERS=core (services
// mode: its own PostgreSQL database and BullMQ prefix) and two `dispatch worker` processes
// running the notifications queue and the webhook sender; incidents with a reporter callback
// posted at a steady rate; a worker SIGKILLed every 4 s (3 kills), preferably while it holds a
// job, and replaced at once. The long version is bench/fault-worker-crash.ts; the run is
// described in test/fault/worker-crash-scenario.ts. Checked:
//   - 0 lost jobs: every `reporter.notify` outbox row was relayed and its job completed; none
//     failed (BullMQ's "stalled more than allowable limit" included), none left in the queue;
//     the jobs a killed worker held ran again (stalled check: lock 5 s, check every 1 s);
//   - every public update of every incident reached the receiver, in order per incident,
//     signed, with the recorded status; no dead letter, nothing pending;
//   - duplicates by Idempotency-Key are counted and printed; each must follow a kill (or an
//     attempt recorded as failed: at least once) — none may be a second send of an update
//     while the first could still be running (concurrent double sending);
//   - a POST in flight when its sender was killed goes out again once the claim lapses;
//   - units: no seq gap, no duplicate offer, no missed offer; nothing lost in the store.

import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import type { FollowUp } from '../../src/engine/followup.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import type { Store } from '../../src/store/store.ts';
import { checkDelegable, startDelegatedWorkers, startWorkers } from '../../workers/index.ts';
import { cleanupAll, figures } from './harness.ts';
import { runWorkerCrash, workerCrashFigures } from './worker-crash-scenario.ts';

afterAll(cleanupAll, 120_000);

describe('worker crash: SIGKILL a `dispatch worker` every few seconds under load', () => {
  it('0 lost jobs, every webhook update delivered in order, no duplicate offer', {
    timeout: 150_000,
  }, async () => {
    const r = await runWorkerCrash({
      units: 30,
      holdMs: 500,
      rate: 8,
      durationMs: 14_000,
      workers: 2,
      killEveryMs: 4000,
      maxKills: 3,
      leaseS: 5,
      callbackTimeoutMs: 2000,
      engineConfig: { ackTimeoutS: 10, ackTimeoutOtherS: 10 },
      drainTimeoutMs: 60_000,
    });
    figures('worker-crash', workerCrashFigures(r));
    if (r.duplicatesUnexplained.length > 0 || r.lostJobs.length > 0 || r.missingKeys.length > 0) {
      process.stdout.write(
        `[fault] worker-crash detail: ${JSON.stringify({
          unexplained: r.duplicatesUnexplained.slice(0, 10),
          lostJobs: r.lostJobs.slice(0, 10),
          missing: r.missingKeys.slice(0, 10),
          kills: r.kills,
        })}\n`,
      );
    }
    // The load and the kills happened.
    expect(r.refused).toEqual([]);
    expect(r.unanswered).toBe(0);
    expect(r.kills).toHaveLength(3);
    expect(r.workersStarted).toBe(2 + 3);
    expect(r.workerExitCodes).toEqual([0, 0]);
    expect(r.notifyRows).toBeGreaterThan(0);
    // 0 lost jobs.
    expect(r.notRelayed).toBe(0);
    expect(r.lostJobs).toEqual([]);
    expect(r.failedJobs).toBe(0);
    expect(r.leftInQueue).toBe(0);
    // The jobs a killed worker held ran again, elsewhere, within seconds (lock 5 s + check 1 s).
    for (const h of r.heldAtKill) {
      expect(h.state).toBe('completed');
      expect(h.stalled).toBeGreaterThanOrEqual(1);
      expect(h.redeliveredAfterMs).toBeLessThanOrEqual(15_000);
    }
    // Every update, in order, as recorded; at least once, never sent twice at the same time.
    expect(r.expectedUpdates).toBeGreaterThanOrEqual(r.accepted * 3);
    expect(r.missingKeys).toEqual([]);
    expect(r.unexpectedKeys).toEqual([]);
    expect(r.receivedKeys).toBe(r.expectedUpdates);
    expect(r.outOfOrder).toEqual([]);
    expect(r.wrongBody).toEqual([]);
    expect(r.badSignatures).toBe(0);
    expect(r.duplicatesUnexplained).toEqual([]);
    // A POST the killed sender never recorded goes out again once its claim lapses.
    expect(r.unrecordedResent).toBe(r.unrecordedAtKill);
    expect(r.deadLetters).toBe(0);
    expect(r.pendingDeliveries).toBe(0);
    // Units and store.
    expect(r.lostIncidents).toEqual([]);
    expect(r.neverAccepted).toEqual([]);
    expect(r.gaps).toBe(0);
    expect(r.reordered).toBe(0);
    expect(r.duplicateOffers).toBe(0);
    expect(r.missedOffers).toBe(0);
  });
});

describe('delegating queues to `dispatch worker` is an explicit, checked choice', () => {
  it('only the notifications queue may leave the engine process, and only on a shared queue', async () => {
    expect(() => checkDelegable(['notifications'])).not.toThrow();
    expect(() => checkDelegable(['decisions', 'timers'])).toThrow(/decisions, timers cannot run outside/);
    await expect(
      startWorkers({} as Engine, new MemoryQueue(), {} as Store, { delegate: ['intake'] }),
    ).rejects.toThrow(/intake cannot run outside the engine process/);
    await expect(
      startWorkers({} as Engine, new MemoryQueue(), {} as Store, { delegate: ['notifications'] }),
    ).rejects.toThrow(/shared \(BullMQ\) queue/);
  });

  it("the worker side checks its queues' handlers at start-up", async () => {
    const followUp = { webhooks: {} } as FollowUp;
    const q = new MemoryQueue();
    try {
      await expect(startDelegatedWorkers(q, followUp, { handlers: { notifications: {} } })).rejects.toThrow(
        /no handler for notifications\/reporter\.notify/,
      );
      await expect(startDelegatedWorkers(q, followUp, { queues: ['timers'] })).rejects.toThrow(
        /timers cannot run outside/,
      );
      expect(await startDelegatedWorkers(q, followUp)).toEqual(['notifications']);
    } finally {
      await q.close();
    }
  });
});
