// The commit statement's builders (src/store/sql-flush.ts), without a database: what they
// send is checked end to end by the store contract (test/contract/store-suite.ts).

import { describe, expect, it, vi } from 'vitest';
import { mainStatement, messagesJson } from '../../src/store/sql-flush.ts';

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
