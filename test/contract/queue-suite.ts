// One contract for every JobQueue adapter (in-process and BullMQ): the semantics the engine
// and its workers rely on. Each test opens a fresh queue instance (its own key prefix on Redis).

import { afterEach, describe, expect, it } from 'vitest';
import type { JobQueue } from '../../src/engine/ports.ts';
import type { JobFailure } from '../../src/queue/common.ts';

export interface OpenedQueue {
  queue: JobQueue;
  /** Closes the instance and removes whatever it left behind. */
  dispose(): Promise<void>;
}

export type OpenQueue = (opts: {
  onFailed: (f: JobFailure) => void;
  backoffMs: number;
}) => Promise<OpenedQueue>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function queueContract(label: string, open: OpenQueue): void {
  describe(`JobQueue contract: ${label}`, () => {
    let opened: OpenedQueue | undefined;
    let failures: JobFailure[] = [];

    const make = async (backoffMs = 50) => {
      failures = [];
      opened = await open({ onFailed: (f) => failures.push(f), backoffMs });
      return opened.queue;
    };

    afterEach(async () => {
      await opened?.dispose();
      opened = undefined;
    });

    it('processes added jobs with their data, name and attempt', async () => {
      const q = await make();
      const seen: { data: Record<string, unknown>; name: string; attempt: number; id: string }[] = [];
      await q.process('work', {
        greet: async (data, meta) => {
          seen.push({ data, name: meta.name, attempt: meta.attempt, id: meta.id });
        },
      });
      await q.add('work', 'greet', { n: 1, nested: { at: [113.4, 23.1] } }, { jobId: 'outbox:1' });
      await q.add('work', 'greet', { n: 2 });
      await until(() => seen.length === 2, 5000, 'two jobs');
      const first = seen.find((s) => s.data.n === 1)!;
      expect(first).toMatchObject({ name: 'greet', attempt: 1, id: 'outbox:1' });
      expect(first.data).toEqual({ n: 1, nested: { at: [113.4, 23.1] } });
      expect(failures).toEqual([]);
    });

    it('jobs added together: each caller hears its own outcome; order and de-duplication hold', async () => {
      const q = await make();
      const seen: number[] = [];
      const circular: Record<string, unknown> = { n: -1 };
      circular.self = circular;
      // One turn of the event loop (BullMQ sends them as one pipeline): one job cannot be
      // serialised, one id comes twice.
      const outcomes = await Promise.allSettled([
        q.add('together', 'note', { n: 1 }, { jobId: 'outbox:1' }),
        q.add('together', 'note', { n: 2 }, { jobId: 'outbox:2' }),
        q.add('together', 'note', circular, { jobId: 'outbox:3' }),
        q.add('together', 'note', { n: 9 }, { jobId: 'outbox:1' }),
        q.add('together', 'note', { n: 4 }, { jobId: 'outbox:4' }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
        'fulfilled',
      ]);
      expect(await q.depth('together')).toBe(3);
      await q.process('together', {
        note: async (data) => {
          seen.push(Number(data.n));
        },
      });
      await until(() => seen.length === 3, 5000, 'three jobs');
      expect(seen).toEqual([1, 2, 4]);
      expect(failures).toEqual([]);
    });

    it('de-duplicates by jobId: queued, and completed within the window', async () => {
      const q = await make();
      let runs = 0;
      await q.add('dedup', 'count', { k: 1 }, { jobId: 'ack:a-1' });
      await q.add('dedup', 'count', { k: 2 }, { jobId: 'ack:a-1' });
      expect(await q.depth('dedup')).toBe(1);
      await q.process('dedup', {
        count: async () => {
          runs++;
        },
      });
      await until(() => runs === 1, 5000, 'first run');
      await sleep(100);
      await q.add('dedup', 'count', { k: 3 }, { jobId: 'ack:a-1' });
      await sleep(400);
      expect(runs).toBe(1);
      // A different id is a different job.
      await q.add('dedup', 'count', { k: 4 }, { jobId: 'ack:a-2' });
      await until(() => runs === 2, 5000, 'second id');
    });

    it('fires a delayed job not before its delay and within about a second after', async () => {
      const q = await make();
      let firedAt = 0;
      await q.process('timers', {
        tick: async () => {
          firedAt = Date.now();
        },
      });
      const t0 = Date.now();
      await q.add('timers', 'tick', {}, { jobId: 'target:i-1', delayMs: 700 });
      expect(await q.depth('timers')).toBe(1);
      await until(() => firedAt > 0, 5000, 'the delayed job');
      const elapsed = firedAt - t0;
      expect(elapsed).toBeGreaterThanOrEqual(695);
      expect(elapsed).toBeLessThanOrEqual(1700);
    });

    it('remove() cancels a pending delayed job', async () => {
      const q = await make();
      let fired = 0;
      await q.process('timers', {
        tick: async () => {
          fired++;
        },
      });
      await q.add('timers', 'tick', {}, { jobId: 'ack:x', delayMs: 400 });
      await q.add('timers', 'tick', {}, { jobId: 'ack:y', delayMs: 400 });
      await q.remove('timers', 'ack:x');
      await q.remove('timers', 'ack:never-added');
      await until(() => fired === 1, 5000, 'the kept timer');
      await sleep(500);
      expect(fired).toBe(1);
      expect(await q.depth('timers')).toBe(0);
    });

    it('retries a failing job with back-off, then reports the final failure', async () => {
      const q = await make(60);
      const attempts: { attempt: number; at: number }[] = [];
      const flakyAttempts: number[] = [];
      await q.process('push', {
        flaky: async (_d, meta) => {
          flakyAttempts.push(meta.attempt);
          if (meta.attempt < 3) throw new Error(`boom ${meta.attempt}`);
        },
        broken: async (_d, meta) => {
          attempts.push({ attempt: meta.attempt, at: Date.now() });
          throw new Error('always');
        },
      });
      await q.add('push', 'flaky', {}, { attempts: 3 });
      await q.add('push', 'broken', {}, { jobId: 'b-1', attempts: 2 });
      await until(() => flakyAttempts.length === 3, 8000, 'three flaky attempts');
      await until(() => failures.some((f) => f.name === 'broken' && f.final), 8000, 'final failure');
      expect(flakyAttempts).toEqual([1, 2, 3]);
      expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
      // Back-off: the retry waits at least the first back-off delay.
      expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(55);
      const final = failures.filter((f) => f.name === 'broken' && f.final);
      expect(final).toHaveLength(1);
      expect(final[0]).toMatchObject({ queue: 'push', id: 'b-1', attempt: 2 });
      expect(final[0].error.message).toBe('always');
      // The flaky job's two failed attempts were reported as retried, not final.
      expect(failures.filter((f) => f.name === 'flaky').every((f) => !f.final)).toBe(true);
      await sleep(200);
      expect(await q.depth('push')).toBe(0);
    });

    it('fails a job with an unknown name at once and loudly, without retries', async () => {
      const q = await make();
      let known = 0;
      await q.process('intake', {
        'incident.created': async () => {
          known++;
        },
      });
      await q.add('intake', 'incident.mystery', { x: 1 }, { jobId: 'outbox:9', attempts: 5 });
      await q.add('intake', 'incident.created', {});
      await until(() => failures.length > 0 && known === 1, 5000, 'the refusal');
      await sleep(300);
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({
        queue: 'intake',
        name: 'incident.mystery',
        attempt: 1,
        final: true,
      });
      expect(failures[0].error.message).toMatch(/unknown job name "incident\.mystery"/);
      expect(await q.depth('intake')).toBe(0);
    });

    it('reports depth: waiting, delayed and active jobs, and none once done', async () => {
      const q = await make();
      expect(await q.depth('idle')).toBe(0);
      await q.add('d', 'job', { i: 1 });
      await q.add('d', 'job', { i: 2 });
      await q.add('d', 'job', { i: 3 }, { delayMs: 300 });
      expect(await q.depth('d')).toBe(3);
      let done = 0;
      await q.process('d', {
        job: async () => {
          done++;
        },
      });
      await until(() => done === 3, 5000, 'all three');
      await sleep(100);
      expect(await q.depth('d')).toBe(0);
    });

    it('honours concurrency', async () => {
      const q = await make();
      let running = 0;
      let peak = 0;
      let done = 0;
      await q.process(
        'c',
        {
          slow: async () => {
            running++;
            peak = Math.max(peak, running);
            await sleep(120);
            running--;
            done++;
          },
        },
        { concurrency: 2 },
      );
      for (let i = 0; i < 5; i++) await q.add('c', 'slow', { i });
      await until(() => done === 5, 8000, 'five slow jobs');
      expect(peak).toBe(2);
    });
  });
}
