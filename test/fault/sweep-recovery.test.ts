// Issue #6 item 3, the mechanism on its own: what the engine does when its queue's store loses
// jobs — the delayed ack timers and a queued `decide` job — as when Redis restarts empty.
// In process (Engine on a MemoryStore, the in-process queue behind a wrapper that can lose
// jobs), so each path is exercised deterministically:
//   - the periodic sweep (sweepIntervalMs) re-arms lost timers from the store and re-queues a
//     decision whose job was lost (without it no decision would ever run again);
//   - with the periodic sweep off, the queue's reconnect signal runs the same sweep at once.
// The end-to-end version with a real redis-server is redis-restart.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/core/catalog.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';
import type { Actor } from '../../src/engine/api.ts';
import type { EngineConfig } from '../../src/engine/config.ts';
import { Engine } from '../../src/engine/engine.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import { RecordingPublisher } from '../../src/engine/memory-publisher.ts';
import { type JobHandler, type JobOptions, type JobQueue, systemClock } from '../../src/engine/ports.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import type { OfferView } from '../../src/shared/events.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { startWorkers } from '../../workers/index.ts';
import { figures, sleep, waitFor } from './harness.ts';

const DISPATCHER: Actor = { role: 'dispatcher', id: 'd.fault' };
const ADMIN: Actor = { role: 'admin', id: 'root' };
const BASE: LonLat = [113.45, 23.1];
const at = (dxKm: number): LonLat => [BASE[0] + dxKm / 102.4, BASE[1]];

/**
 * The in-process queue, able to lose jobs as a Redis that restarted empty would: `wipe()`
 * drops every job not running; `loseNextDecide()` makes the next `decide` job vanish after its
 * add succeeded (it was in Redis when Redis died); `reconnected()` fires the reconnect signal.
 */
class LossyQueue implements JobQueue {
  readonly kind = 'memory' as const;
  private readonly ids = new Map<string, Set<string>>();
  private loseDecide = 0;
  lostDecides = 0;
  private readonly listeners = new Set<() => void>();
  onReconnect?: (listener: () => void) => () => void;
  constructor(
    readonly inner: MemoryQueue,
    signal: boolean,
  ) {
    if (signal)
      this.onReconnect = (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      };
  }

  async add(
    queue: string,
    name: string,
    data: Record<string, unknown>,
    opts: JobOptions = {},
  ): Promise<void> {
    if (queue === QUEUES.decisions && this.loseDecide > 0) {
      this.loseDecide--;
      this.lostDecides++;
      return;
    }
    if (opts.jobId) {
      const s = this.ids.get(queue) ?? new Set<string>();
      s.add(opts.jobId);
      this.ids.set(queue, s);
    }
    await this.inner.add(queue, name, data, opts);
  }
  remove(queue: string, jobId: string) {
    return this.inner.remove(queue, jobId);
  }
  process(queue: string, handlers: Record<string, JobHandler>, opts?: { concurrency?: number }) {
    return this.inner.process(queue, handlers, opts);
  }
  depth(queue: string) {
    return this.inner.depth(queue);
  }
  close() {
    return this.inner.close();
  }
  async wipe(): Promise<void> {
    for (const [queue, ids] of this.ids) for (const id of ids) await this.inner.remove(queue, id);
  }
  loseNextDecide(): void {
    this.loseDecide = 1;
  }
  reconnected(): void {
    for (const l of this.listeners) l();
  }
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length > 0) await stops.pop()!();
});

async function stack(config: Partial<EngineConfig>, signal: boolean) {
  const store = new MemoryStore();
  const queue = new LossyQueue(new MemoryQueue({ retry: { backoffMs: 50 } }), signal);
  const pub = new RecordingPublisher();
  const engine = new Engine({
    store,
    queue,
    publisher: pub,
    clock: systemClock,
    catalog: defaultCatalog(),
    travel: new GreatCircleTravel(),
    // Decisions through the queue only (not inline with the change that asks for them), so
    // that a lost `decide` job is the only way incident B could be decided.
    config: { decideDebounceMs: 2, decideInline: false, ...config },
  });
  await engine.start();
  const workers = await startWorkers(engine, queue, store, { relay: { pollMs: 20 } });
  stops.push(async () => {
    await engine.stop();
    await workers.stop();
    await queue.close();
  });
  for (const [id, km] of [
    ['P1', 0.5],
    ['P2', 3],
  ] as const) {
    await engine.upsertUnit(
      id,
      { department: 'police', capabilities: ['police'], home: at(km), speedKmh: 40, turnoutS: 60 },
      ADMIN,
    );
  }
  const offer = (unitId: string, incidentId: string) =>
    waitFor(
      `an offer of ${incidentId} to ${unitId}`,
      () =>
        pub
          .for(`unit:${unitId}`, 'assignment:offer')
          .map((m) => m.envelope.data as OfferView)
          .find((o) => o.incident.id === incidentId),
      10_000,
      5,
    );
  const report = async (dxKm: number) =>
    (
      await engine.reportIncident(
        { type: 'noise-complaint', location: at(dxKm), source: 'fault' },
        undefined,
        DISPATCHER,
      )
    ).incident.id;
  return { engine, queue, store, offer, report };
}

/**
 * P1 holds an offer of incident A (no ack); Redis "restarts empty": A's ack timer is lost, and
 * the decide job queued for incident B, reported meanwhile, is lost too. Returns when B was
 * offered (to P2) and A's offer timed out, with the delays.
 */
async function loseEverything(s: Awaited<ReturnType<typeof stack>>, after?: () => void) {
  const a = await s.report(0.4);
  const offerA = await s.offer('P1', a);
  await sleep(50);
  await s.queue.wipe();
  s.queue.loseNextDecide();
  const b = await s.report(3.2);
  const lostAt = Date.now();
  await waitFor('the decide job to be lost', () => s.queue.lostDecides > 0, 5000, 2);
  after?.();
  const offerB = await s.offer('P2', b);
  const decisionMs = Date.parse(offerB.assignment.offeredAt) - lostAt;
  const deadline = Date.parse(offerA.assignment.ackDeadline!);
  const ended = await waitFor(
    `the lost ack timer of ${offerA.assignment.id}`,
    async () => {
      const d = await s.store.getAssignment(offerA.assignment.id);
      return d?.status === 'timed_out' ? d : undefined;
    },
    15_000,
    10,
  );
  return { decisionMs, latenessMs: ended.endedAt! * 1000 - deadline, lost: s.queue.lostDecides };
}

describe('lost queue jobs are rebuilt from the store', () => {
  it('the periodic sweep re-arms a lost ack timer and re-queues a lost decision', async () => {
    const sweepMs = 400;
    const s = await stack({ ackTimeoutS: 2, ackTimeoutOtherS: 2, sweepIntervalMs: sweepMs }, false);
    const r = await loseEverything(s);
    figures('sweep-recovery periodic', { sweepIntervalMs: sweepMs, ...r });
    expect(r.lost).toBe(1);
    // A request is dropped once it survived a whole sweep period: within two periods.
    expect(r.decisionMs).toBeGreaterThanOrEqual(sweepMs / 2);
    expect(r.decisionMs).toBeLessThanOrEqual(2 * sweepMs + 1000);
    expect(r.latenessMs).toBeLessThanOrEqual(sweepMs + 1000);
  });

  it('with the periodic sweep off, the reconnect signal rebuilds them at once', async () => {
    const s = await stack({ ackTimeoutS: 2, ackTimeoutOtherS: 2, sweepIntervalMs: 0 }, true);
    const r = await loseEverything(s, () => s.queue.reconnected());
    figures('sweep-recovery on reconnect', r);
    expect(r.lost).toBe(1);
    expect(r.decisionMs).toBeGreaterThanOrEqual(0);
    expect(r.decisionMs).toBeLessThanOrEqual(1000);
    expect(r.latenessMs).toBeLessThanOrEqual(1000);
  });
});
