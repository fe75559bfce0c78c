// The engine's lane (src/engine/lane.ts) with a scripted runner: batches, their order, the
// overlap of one batch's work with the commit before it, and what happens when that commit fails.

import { describe, expect, it } from 'vitest';
import { BatchLane, type BatchRunner, type Flight, type LaneTask } from '../../src/engine/lane.ts';

interface TestFlight extends Flight {
  id: number;
  tasks: LaneTask[];
  commit: Promise<boolean>;
}

/**
 * A lane over a runner that logs what happens. Each commit settles a moment after its work;
 * `fails(names)` makes the first commit of a batch of those tasks fail.
 */
function scripted(maxBatch: number, fails: (names: number[]) => boolean = () => false) {
  const log: string[] = [];
  const order: number[] = [];
  const label = new WeakMap<LaneTask['fn'], number>();
  const names = (tasks: LaneTask[]) => tasks.map((t) => label.get(t.fn)!);
  const failedOnce = new Set<string>();
  let flights = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const runner: BatchRunner<TestFlight> = {
    async work(tasks, prev) {
      const id = ++flights;
      log.push(`work ${id} [${names(tasks).join(',')}]${prev ? ` over ${prev.id}` : ''}`);
      for (const t of tasks) t.outcome = { ok: true, value: await t.fn() };
      const key = names(tasks).join(',');
      const fail = fails(names(tasks)) && !failedOnce.has(key);
      if (fail) failedOnce.add(key);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const commit = new Promise<boolean>((r) => setTimeout(() => r(!fail), 5));
      return { id, tasks, commit, overlappable: true };
    },
    async settle(f, next) {
      const ok = await f.commit;
      inFlight--;
      log.push(`settle ${f.id} ${ok ? 'ok' : 'failed'}${next ? ` (next ${next.id})` : ''}`);
      if (ok) return true;
      if (next) {
        await next.commit;
        inFlight--;
      }
      for (const t of f.tasks) t.outcome = { ok: false, error: new Error(`batch ${f.id} failed`) };
      return next === undefined;
    },
  };
  const lane = new BatchLane<TestFlight>(runner, maxBatch);
  const run = (name: number) => {
    const fn = async () => {
      order.push(name);
      return name * 10;
    };
    label.set(fn, name);
    return lane.run(fn);
  };
  return { lane, run, log, order, maxInFlight: () => maxInFlight };
}

describe('BatchLane', () => {
  it('runs tasks in submission order, the waiting ones as one batch over the commit in flight', async () => {
    const s = scripted(3);
    expect(await Promise.all([1, 2, 3, 4, 5, 6, 7].map(s.run))).toEqual([10, 20, 30, 40, 50, 60, 70]);
    expect(s.order).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(s.log).toEqual([
      'work 1 [1,2,3]',
      'work 2 [4,5,6] over 1',
      'settle 1 ok (next 2)',
      'work 3 [7] over 2',
      'settle 2 ok (next 3)',
      'settle 3 ok',
    ]);
    expect(s.maxInFlight()).toBe(2);
    expect(s.lane.size).toBe(0);
  });

  it('a failed commit fails its own tasks; the batch run over it runs again, before later ones', async () => {
    const s = scripted(2, (names) => names.includes(2));
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map(s.run));
    expect(results.map((r) => r.status)).toEqual([
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(s.log).toEqual([
      'work 1 [1,2]',
      'work 2 [3,4] over 1',
      'settle 1 failed (next 2)',
      'work 3 [3,4]',
      'work 4 [5] over 3',
      'settle 3 ok (next 4)',
      'settle 4 ok',
    ]);
    expect(s.order).toEqual([1, 2, 3, 4, 3, 4, 5]);
    expect(s.lane.size).toBe(0);
  });

  it('tasks that arrive while a commit is in flight wait for it unless they were already waiting', async () => {
    const s = scripted(10);
    const first = s.run(1);
    // Arrives during batch 1's commit (no task was waiting when its work ended).
    await new Promise((r) => setTimeout(r, 1));
    const second = s.run(2);
    await Promise.all([first, second]);
    expect(s.log).toEqual(['work 1 [1]', 'settle 1 ok', 'work 2 [2]', 'settle 2 ok']);
  });

  it('a batch that may not be overlapped is settled before the next one works', async () => {
    const log: string[] = [];
    const lane = new BatchLane<Flight & { n: number }>(
      {
        async work(tasks, prev) {
          log.push(`work ${tasks.length}${prev ? ' over' : ''}`);
          for (const t of tasks) t.outcome = { ok: true, value: await t.fn() };
          return { n: tasks.length, overlappable: false };
        },
        async settle(f, next) {
          log.push(`settle ${f.n}${next ? ' with next' : ''}`);
          return true;
        },
      },
      2,
    );
    expect(await Promise.all([1, 2, 3].map((n) => lane.run(async () => n)))).toEqual([1, 2, 3]);
    expect(log).toEqual(['work 2', 'settle 2', 'work 1', 'settle 1']);
  });

  it('callers of a batch that committed hear at once, while the next batch still works', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const log: string[] = [];
    const lane = new BatchLane<Flight>(
      {
        async work(tasks, prev) {
          // Batch 1 commits at once; batch 2's work goes on until released.
          if (prev) await held;
          for (const t of tasks) t.outcome = { ok: true, value: await t.fn() };
          return { overlappable: true, committed: Promise.resolve(true) };
        },
        async settle() {
          log.push('settle');
          return true;
        },
      },
      1,
    );
    const first = lane.run(async () => 'first').then((v) => log.push(v));
    const second = lane.run(async () => 'second').then((v) => log.push(v));
    await first;
    expect(log).toEqual(['first']);
    release();
    await second;
    expect(log).toEqual(['first', 'settle', 'second', 'settle']);
  });

  it('drain() waits for every task submitted', async () => {
    const s = scripted(64);
    for (let i = 1; i <= 5; i++) void s.run(i);
    await s.lane.drain();
    expect(s.order).toEqual([1, 2, 3, 4, 5]);
    expect(s.lane.size).toBe(0);
  });
});
