import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AuditRow,
  auditTime,
  ChainVerifier,
  canonicalJson,
  formatChainVerdict,
  GENESIS_HASH,
  hashAuditRow,
  jsonNormalise,
  nextAuditRow,
  verifyChain,
} from '../../src/store/audit-chain.ts';

function chain(n: number, key?: string): AuditRow[] {
  const rows: AuditRow[] = [];
  let head = { seq: 0, hash: GENESIS_HASH };
  for (let i = 1; i <= n; i++) {
    const row = nextAuditRow(
      head,
      {
        at: auditTime(1772380800 + i),
        actor: 'dispatcher:alice',
        action: 'override',
        subject: `I-${i}`,
        data: { i },
      },
      key,
    );
    rows.push(row);
    head = { seq: row.seq, hash: row.hash };
  }
  return rows;
}

describe('jsonNormalise', () => {
  const roundTrip = (v: unknown) => (v === undefined ? null : JSON.parse(JSON.stringify(v) ?? 'null'));
  // Same value, same key order, same own-property layout (a `__proto__` key stays a key).
  const same = (v: unknown) => {
    const got = jsonNormalise(v);
    expect(JSON.stringify(got)).toBe(JSON.stringify(roundTrip(v)));
    expect(got).toStrictEqual(roundTrip(v));
  };

  it('equals a JSON round trip on anything JSON.stringify takes', () => {
    const leaf = fc.oneof(
      fc.string(),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constantFrom(null, undefined, -0, Number.NaN, Number.POSITIVE_INFINITY, 1e21),
      fc.date({ noInvalidDate: true }),
      fc.constant(() => 1),
      fc.constant(Symbol('s')),
    );
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, leaf, tie('arr'), tie('obj')),
      arr: fc.array(tie('v'), { maxLength: 5 }),
      obj: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', '0', '10', 'toJSON')), tie('v'), {
        maxKeys: 5,
      }),
    })).v;
    fc.assert(fc.property(value, same), { numRuns: 2000 });
  });

  it('copies (the result shares nothing with its input) and handles the odd cases', () => {
    const input = { a: [1, { b: 2 }], c: { d: 'x' } };
    const out = jsonNormalise(input) as typeof input;
    expect(out).toEqual(input);
    expect(out.a).not.toBe(input.a);
    expect(out.c).not.toBe(input.c);
    same(JSON.parse('{"__proto__": {"polluted": true}, "k": 1}'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    same(Object.create(null));
    same(new Map([[1, 2]]));
    same({ toJSON: () => ({ x: 1 }) });
    same([undefined, () => 1, Symbol('s')]);
    let deep: unknown = 1;
    for (let i = 0; i < 500; i++) deep = { n: deep };
    same(deep);
    expect(jsonNormalise(undefined)).toBeNull();
    expect(() => jsonNormalise(10n)).toThrow(TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => jsonNormalise(cyclic)).toThrow(TypeError);
  });
});

describe('canonicalJson', () => {
  it('sorts keys recursively, drops undefined members and is whitespace-free', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: undefined }], c: null }, u: undefined })).toBe(
      '{"a":{"c":null,"d":[3,{"z":1}]},"b":1}',
    );
    expect(canonicalJson([undefined, Number.NaN, Number.POSITIVE_INFINITY, 'x'])).toBe(
      '[null,null,null,"x"]',
    );
    expect(canonicalJson(new Date(0))).toBe('"1970-01-01T00:00:00.000Z"');
    expect(canonicalJson('é\u2028"')).toBe(JSON.stringify('é\u2028"'));
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson(10n)).toBe('10');
  });

  it('is stable across key order and a JSON (jsonb) round trip', () => {
    const a = { x: 0.1 + 0.2, y: [1, 2, { q: 'w', p: true }], big: 1e21, neg: -0 };
    const b = { neg: 0, big: 1e21, y: [1, 2, { p: true, q: 'w' }], x: 0.30000000000000004 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(jsonNormalise(a))).toBe(canonicalJson(a));
  });

  it('refuses circular structures', () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    expect(() => canonicalJson(o)).toThrow(/circular/);
  });
});

describe('hashAuditRow', () => {
  const row = {
    seq: 1,
    at: '2026-03-01T16:00:00.123Z',
    actor: 'a',
    action: 'b',
    subject: 'c',
    data: { k: 1 },
  };

  it('is sha256 over the canonical row with its prev hash', () => {
    const text = canonicalJson({ ...row, prevHash: GENESIS_HASH });
    expect(hashAuditRow(GENESIS_HASH, row)).toBe(createHash('sha256').update(text).digest('hex'));
    expect(hashAuditRow(GENESIS_HASH, row)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes with any field, the previous hash or the key', () => {
    const h = hashAuditRow(GENESIS_HASH, row);
    expect(hashAuditRow('1'.repeat(64), row)).not.toBe(h);
    for (const change of [
      { seq: 2 },
      { at: '2026-03-01T16:00:00.124Z' },
      { actor: 'x' },
      { data: { k: 2 } },
    ]) {
      expect(hashAuditRow(GENESIS_HASH, { ...row, ...change })).not.toBe(h);
    }
    expect(hashAuditRow(GENESIS_HASH, row, 'secret')).not.toBe(h);
    expect(hashAuditRow(GENESIS_HASH, { ...row, data: { k: 1 } })).toBe(h);
  });
});

describe('auditTime', () => {
  it('normalises dates, ISO strings and epoch seconds to ISO with milliseconds', () => {
    expect(auditTime(1772380800.123)).toBe('2026-03-01T16:00:00.123Z');
    expect(auditTime('2026-03-02T00:00:00.123+08:00')).toBe('2026-03-01T16:00:00.123Z');
    expect(auditTime(new Date(Date.UTC(2026, 2, 1, 16)))).toBe('2026-03-01T16:00:00.000Z');
    expect(() => auditTime('not a date')).toThrow(RangeError);
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain (in any input order) and reports its head', () => {
    const rows = chain(5);
    expect(verifyChain(rows)).toEqual({ ok: true, rows: 5, headSeq: 5, headHash: rows[4].hash });
    expect(verifyChain([...rows].reverse())).toMatchObject({ ok: true, rows: 5 });
    expect(verifyChain([])).toEqual({ ok: true, rows: 0, headSeq: 0, headHash: GENESIS_HASH });
    expect(verifyChain(rows, { head: { seq: 5, hash: rows[4].hash } })).toMatchObject({ ok: true });
  });

  it('names an edited row', () => {
    const rows = chain(5);
    rows[2] = { ...rows[2], data: { i: 999 } };
    expect(verifyChain(rows)).toMatchObject({ ok: false, brokenAt: 3, rows: 2 });
    const actor = chain(5);
    actor[3] = { ...actor[3], actor: 'mallory' };
    expect(verifyChain(actor)).toMatchObject({ ok: false, brokenAt: 4 });
  });

  it('names the link after a row rewritten with a fresh hash', () => {
    const rows = chain(5);
    const forged = { ...rows[1], data: { i: -1 } };
    forged.hash = hashAuditRow(forged.prevHash, forged);
    rows[1] = forged;
    const v = verifyChain(rows);
    expect(v).toMatchObject({ ok: false, brokenAt: 3 });
    if (!v.ok) expect(v.reason).toMatch(/prev_hash/);
  });

  it('names a deleted row (a gap in seq), a duplicate and a forged first link', () => {
    const rows = chain(6);
    const gap = verifyChain(rows.filter((r) => r.seq !== 4));
    expect(gap).toMatchObject({ ok: false, brokenAt: 4, rows: 3 });
    if (!gap.ok) expect(gap.reason).toMatch(/row 4 missing/);
    const gap2 = verifyChain(rows.filter((r) => r.seq !== 2 && r.seq !== 3));
    if (!gap2.ok) expect(gap2.reason).toMatch(/row 2\.\.3 missing/);
    expect(verifyChain(rows.slice(1))).toMatchObject({ ok: false, brokenAt: 1 });
    expect(verifyChain([...rows, rows[5]])).toMatchObject({ ok: false, brokenAt: 6 });
    const first = { ...rows[0], prevHash: 'f'.repeat(64) };
    expect(verifyChain([first, ...rows.slice(1)])).toMatchObject({ ok: false, brokenAt: 1 });
  });

  it('catches a truncated tail, a row beyond the head and a forged last row against the head', () => {
    const rows = chain(5);
    const head = { seq: 5, hash: rows[4].hash };
    expect(verifyChain(rows.slice(0, 3), { head })).toMatchObject({ ok: false, brokenAt: 4 });
    expect(verifyChain(rows, { head: { seq: 4, hash: rows[3].hash } })).toMatchObject({
      ok: false,
      brokenAt: 5,
    });
    const last = { ...rows[4], data: { i: 'x' } };
    last.hash = hashAuditRow(last.prevHash, last);
    expect(verifyChain([...rows.slice(0, 4), last], { head })).toMatchObject({ ok: false, brokenAt: 5 });
  });

  it('uses HMAC when keyed: a chain rebuilt without the key fails', () => {
    const keyed = chain(3, 'k1');
    expect(verifyChain(keyed, { key: 'k1' })).toMatchObject({ ok: true, rows: 3 });
    expect(verifyChain(keyed)).toMatchObject({ ok: false, brokenAt: 1 });
    expect(verifyChain(chain(3), { key: 'k1' })).toMatchObject({ ok: false, brokenAt: 1 });
  });

  it('ChainVerifier streams pages and keeps its first failure', () => {
    const rows = chain(4);
    const v = new ChainVerifier();
    expect(v.push(rows[0])).toBeUndefined();
    const f = v.push(rows[2]);
    expect(f).toMatchObject({ ok: false, brokenAt: 2 });
    expect(v.push(rows[3])).toBe(f);
    expect(v.finish()).toBe(f);
    expect(v.rows).toBe(1);
  });
});

describe('formatChainVerdict', () => {
  it('names the first broken link', () => {
    const rows = chain(3);
    expect(formatChainVerdict(verifyChain(rows))).toMatch(/^audit chain OK: 3 rows, head seq 3 /);
    expect(formatChainVerdict(verifyChain(rows.slice(1)))).toBe(
      'audit chain BROKEN at seq 1: row 1 missing (next row present is 2) (0 rows verified before it)',
    );
  });
});
