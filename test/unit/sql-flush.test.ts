// The commit statement's builders (src/store/sql-flush.ts), without a database: what they
// send is checked end to end by the store contract (test/contract/store-suite.ts).

import { describe, expect, it, vi } from 'vitest';
import { mainStatement, messagesJson, movedJson } from '../../src/store/sql-flush.ts';
import type { AssignmentRecord } from '../../src/store/store.ts';

const AT = '2026-11-28T09:00:00.000Z';

describe('messagesJson', () => {
  it('is the messages as JSON, a payload shared by recipients serialised once', () => {
    const shared = { id: 'A-1', nested: { b: [2, null, 'ü "q"\n'], a: 1 } };
    const messages = [
      { recipient: 'consoles', k: 1, event: 'assignment:updated', payload: shared, at: AT },
      { recipient: 'unit:"B-1"', k: 1, event: 'assignment:updated', payload: shared, at: AT },
      { recipient: 'consoles', k: 2, event: 'alert', payload: null, at: AT },
      { recipient: 'consoles', k: 3, event: 'x', payload: undefined, at: AT },
    ];
    const stringify = vi.spyOn(JSON, 'stringify');
    const text = messagesJson(messages);
    expect(stringify.mock.calls.filter(([v]) => v === shared)).toHaveLength(1);
    stringify.mockRestore();
    expect(JSON.parse(text)).toEqual(messages.map((m) => ({ ...m, payload: m.payload ?? null })));
  });
});

describe('mainStatement', () => {
  it('keeps one text per shape, the parameters read from each flush', () => {
    const parts = (events: unknown[]) => ({
      events: events as Record<string, unknown>[],
      outbox: [],
      audits: [],
      messages: [],
      counts: [],
      units: [],
      incidents: [],
      newIncidents: [],
      moved: [],
      created: [],
    });
    const a = mainStatement(parts([{ kind: 'a' }]), true);
    const b = mainStatement(parts([{ kind: 'b' }, { kind: 'c' }]), false);
    expect(b.sql).toBe(a.sql); // the same string: no moved rows either way
    expect(a.params).toEqual([JSON.stringify([{ kind: 'a' }])]);
    expect(b.params).toEqual([JSON.stringify([{ kind: 'b' }, { kind: 'c' }])]);
  });
});

describe('movedJson', () => {
  it('sends an explanation only where the batch set it (null keeps the stored one)', () => {
    const rec = (id: string) =>
      ({
        id,
        incidentId: 'I-1',
        unitId: 'U-1',
        capability: 'police',
        status: 'accepted',
        offeredAt: 1_800_000_000,
        etaS: 60,
        crossesJurisdiction: false,
        explanation: { summary: `why ${id}` },
        payload: {},
        version: 2,
        updatedAt: 1_800_000_001,
      }) as unknown as AssignmentRecord;
    const rows = JSON.parse(
      movedJson([
        { rec: rec('A-1'), expect: 1, explanation: false },
        { rec: rec('A-2'), expect: 1, explanation: true },
      ]),
    );
    expect(rows.map((r: { explanation: unknown }) => r.explanation)).toEqual([null, { summary: 'why A-2' }]);
    expect(rows.map((r: { expect: number; status: string }) => [r.expect, r.status])).toEqual([
      [1, 'accepted'],
      [1, 'accepted'],
    ]);
  });
});
