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
function scripted(maxBatch: number, fails: (names: number[]) => boolean = () => false, depth = 2) {
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
    async settle(f, later) {
      const ok = await f.commit;
      inFlight--;
      log.push(
        `settle ${f.id} ${ok ? 'ok' : 'failed'}${later.length ? ` (next ${later.map((n) => n.id)})` : ''}`,
      );
      if (ok) return true;
      for (const n of later) {
        await n.commit;
        inFlight--;
      }
      for (const t of f.tasks) t.outcome = { ok: false, error: new Error(`batch ${f.id} failed`) };
      return later.length === 0;
    },
  };
  const lane = new BatchLane<TestFlight>(runner, maxBatch, depth);
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

  it('with three alive, a failed commit undoes both batches over it; they run again in order', async () => {
    const s = scripted(2, (names) => names.includes(2), 3);
    const results = await Promise.allSettled([1, 2, 3, 4, 5, 6, 7].map(s.run));
    expect(results.map((r) => r.status)).toEqual([
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(s.log).toEqual([
      'work 1 [1,2]',
      'work 2 [3,4] over 1',
      'work 3 [5,6] over 2',
      'settle 1 failed (next 2,3)',
      'work 4 [3,4]',
      'work 5 [5,6] over 4',
      'work 6 [7] over 5',
      'settle 4 ok (next 5,6)',
      'settle 5 ok (next 6)',
      'settle 6 ok',
    ]);
    expect(s.order).toEqual([1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 7]);
    expect(s.maxInFlight()).toBe(3);
    expect(s.lane.size).toBe(0);
  });

  it('a task arriving while a commit is in flight starts the next batch over it at once', async () => {
    const log: string[] = [];
    let answer!: (ok: boolean) => void;
    const lane = new BatchLane<Flight & { n: number }>({
      async work(tasks, prev) {
        const n = log.filter((l) => l.startsWith('work')).length + 1;
        log.push(`work ${n}${prev ? ' over' : ''}`);
        for (const t of tasks) t.outcome = { ok: true, value: await t.fn() };
        // Batch 1's commit answers only when told; the others at once.
        const committed = n === 1 ? new Promise<boolean>((r) => (answer = r)) : Promise.resolve(true);
        return { n, overlappable: true, committed };
      },
      async settle(f) {
        await f.committed;
        log.push(`settle ${f.n}`);
        return true;
      },
    });
    const first = lane.run(async () => 1);
    await new Promise((r) => setTimeout(r, 1));
    const second = lane.run(async () => 2);
    await new Promise((r) => setTimeout(r, 1));
    // Batch 2 worked while batch 1's commit was in flight.
    expect(log).toEqual(['work 1', 'work 2 over']);
    answer(true);
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    await lane.drain();
    expect(log).toEqual(['work 1', 'work 2 over', 'settle 1', 'settle 2']);
  });

  it('without a commit promise to race, tasks arriving while a commit is in flight wait for it', async () => {
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
        async settle(f, later) {
          log.push(`settle ${f.n}${later.length ? ' with next' : ''}`);
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
    await lane.drain();
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
