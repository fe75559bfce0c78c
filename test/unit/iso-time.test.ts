// isoTime keeps its last answer: the answers must stay those of Date#toISOString, whatever
// the order of the instants asked.

import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/scenario/rng.ts';
import { isoTime } from '../../src/shared/iso-time.ts';

describe('isoTime', () => {
  it('gives the millisecond ISO text of every instant, repeated or not', () => {
    const rng = new Rng(7);
    const pool = Array.from({ length: 20 }, () => rng.uniform(0, 2e9));
    for (let i = 0; i < 2000; i++) {
      // Runs of one instant (as in a batch), then a jump.
      const t = pool[Math.floor(rng.uniform(0, pool.length))] + (i % 3 === 0 ? 0.0004 : 0);
      expect(isoTime(t)).toBe(new Date(Math.round(t * 1000)).toISOString());
    }
    expect(isoTime(1.0005)).toBe('1970-01-01T00:00:01.001Z');
    expect(isoTime(1.0004)).toBe('1970-01-01T00:00:01.000Z');
  });

  it('throws on a time that is not finite, even right after a valid one', () => {
    isoTime(100);
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(isoTime(100)).toBe('1970-01-01T00:01:40.000Z');
  });
});
