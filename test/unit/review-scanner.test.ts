// The review scanner's reads: a round reads the log in batches until one comes back short,
// and does not chase what is written meanwhile (that waits for the next poll).

import { describe, expect, it } from 'vitest';
import { Reviews } from '../../src/engine/reviews.ts';
import { DEFAULT_REVIEW_CONFIG } from '../../src/kpi/review-rules.ts';
import { MemoryFollowUpStore } from '../../src/store/followup-store-memory.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import type { EventFilter } from '../../src/store/store.ts';

function scanner(batch: number) {
  const store = new MemoryStore(undefined, { now: () => 1000 });
  const reads: EventFilter[] = [];
  const list = store.listEvents.bind(store);
  let onRead = async () => {};
  store.listEvents = async (f?: EventFilter) => {
    reads.push({ ...f });
    const out = await list(f);
    await onRead();
    return out;
  };
  const reviews = new Reviews({
    store,
    side: new MemoryFollowUpStore(store),
    clock: { now: () => 1000 },
    config: DEFAULT_REVIEW_CONFIG,
    options: { pollMs: 0, batch },
  });
  const append = (n: number) =>
    Promise.all(Array.from({ length: n }, () => store.appendEvent({ kind: 'note', actor: 'test' })));
  return {
    reviews,
    reads,
    append,
    set onRead(fn: () => Promise<void>) {
      onRead = fn;
    },
  };
}

describe('review scanner', () => {
  it('reads full batches, then stops at the first short one', async () => {
    const s = scanner(3);
    await s.append(7);
    await s.reviews.scanAll();
    expect(s.reads.map((r) => r.afterId)).toEqual([0, 3, 6]);
    // The cursor moved to the end: the next round reads from 7 and finds nothing.
    await s.reviews.scanAll();
    expect(s.reads.map((r) => r.afterId)).toEqual([0, 3, 6, 7]);
  });

  it('leaves events written during a round to the next round', async () => {
    const s = scanner(3);
    await s.append(4);
    // Each read is followed by two more events, as under a steady load.
    s.onRead = async () => {
      if (s.reads.length < 20) await s.append(2);
    };
    await s.reviews.scanAll();
    // 3 (of 4, then 6), 3 (of 8), 2 (short: stop). Chasing the writer read on to the 20th read.
    expect(s.reads.map((r) => r.afterId)).toEqual([0, 3, 6]);
    s.onRead = async () => {};
    await s.reviews.scanAll();
    expect(s.reads.length).toBeGreaterThan(2);
    expect(s.reads.at(-1)?.afterId).toBe(8);
  });
});
