import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvError, csvField, parseCsv } from '../../src/scenario/csv.ts';
import { generateScenario } from '../../src/scenario/generate.ts';
import { importCalls, parseMapping } from '../../src/scenario/import-calls.ts';
import { ScenarioError } from '../../src/scenario/validate.ts';

const base = (() => {
  const s = generateScenario({ preset: 'demo', hours: 1, seed: 1, incidentsPerDay: 0 });
  return {
    areas: s.areas,
    catalog: s.catalog,
    units: s.units,
    name: 'demo-base',
    seed: 3,
    travel: s.travel,
    sim: s.sim,
  };
})();

const mapping = {
  columns: {
    id: 'call_id',
    receivedAt: 'received',
    type: 'category',
    priority: 'prio',
    lon: 'lng',
    lat: 'lat',
  },
  types: { 火灾: 'structure-fire', Noise: 'noise-complaint', 占道经营: 'street-vending' },
  timezone: '+08:00',
};

const HEADER = 'call_id,received,category,prio,lng,lat,address';

function run(rows: string[], m: object = mapping) {
  return importCalls([HEADER, ...rows].join('\r\n'), m, base);
}

function errorOf(f: () => unknown): ScenarioError {
  try {
    f();
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('parseCsv', () => {
  it('parses quoted fields, doubled quotes, CRLF and embedded newlines with line numbers', () => {
    const text = 'a,b,c\r\n1,"x, y","say ""hi"""\r\n2,"multi\r\nline\nfield",z\r\n3,,\r\n';
    const recs = parseCsv(text);
    expect(recs).toEqual([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['1', 'x, y', 'say "hi"'] },
      { line: 3, fields: ['2', 'multi\r\nline\nfield', 'z'] },
      { line: 6, fields: ['3', '', ''] },
    ]);
  });

  it('handles a BOM, LF, lone CR, no final newline, blank lines and empty quoted fields', () => {
    expect(parseCsv('\uFEFFa,b\nc,d')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['c', 'd'] },
    ]);
    expect(parseCsv('a\rb\r')).toEqual([
      { line: 1, fields: ['a'] },
      { line: 2, fields: ['b'] },
    ]);
    expect(parseCsv('a\n\nb')).toEqual([
      { line: 1, fields: ['a'] },
      { line: 2, fields: [''] },
      { line: 3, fields: ['b'] },
    ]);
    expect(parseCsv('"",""\n')).toEqual([{ line: 1, fields: ['', ''] }]);
    expect(parseCsv('')).toEqual([]);
    expect(parseCsv('x;"y;z"', { delimiter: ';' })).toEqual([{ line: 1, fields: ['x', 'y;z'] }]);
  });

  it('is lenient with stray quotes and strict with an unterminated one', () => {
    expect(parseCsv('ab"c,"d"e\n')).toEqual([{ line: 1, fields: ['ab"c', 'de'] }]);
    expect(() => parseCsv('a,b\n1,"open\n2,3\n')).toThrow(CsvError);
    try {
      parseCsv('a,b\n1,"open\n2,3\n');
    } catch (e) {
      expect((e as CsvError).line).toBe(2);
    }
  });

  it('round-trips any table written with csvField', () => {
    const table = fc.array(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 5 }), {
      minLength: 1,
      maxLength: 8,
    });
    fc.assert(
      fc.property(table, fc.constantFrom('\n', '\r\n'), (rows, eol) => {
        // A record of one empty field would be written as a blank line; quote it.
        const text = rows
          .map((r) => (r.length === 1 && r[0] === '' ? '""' : r.map((f) => csvField(f)).join(',')))
          .join(eol);
        expect(parseCsv(text).map((r) => r.fields)).toEqual(rows);
      }),
      { numRuns: 300 },
    );
  });
});

describe('importCalls: good rows', () => {
  it('imports ISO and local times, maps categories, keeps priority overrides, sorts by time', () => {
    const { scenario, report } = run([
      'C-2,2026-03-02 08:15:00,Noise,,113.455,23.095,"Gangqian Rd 1, Huangpu"',
      'C-1,2026-03-02T08:00:30+08:00,火灾,1,113.46,23.09,',
      'C-3,2026/3/2 09:00,structure-fire,2,113.47,23.1,',
      'C-4,2026-03-02 09:30:00.5,占道经营,,113.44,23.08,"multi',
      'line address"',
    ]);
    expect(report).toEqual({ rows: 4, imported: 4, rejected: {} });
    expect(scenario.start).toBe('2026-03-02T00:00:00+08:00');
    expect(scenario.durationS).toBe(86400);
    expect(scenario.name).toBe('demo-base');
    expect(scenario.seed).toBe(3);
    expect(scenario.units).toEqual(base.units);
    expect(scenario.incidents).toEqual([
      { id: 'C-1', atS: 8 * 3600 + 30, type: 'structure-fire', location: [113.46, 23.09] },
      { id: 'C-2', atS: 8 * 3600 + 900, type: 'noise-complaint', location: [113.455, 23.095] },
      { id: 'C-3', atS: 9 * 3600, type: 'structure-fire', location: [113.47, 23.1], priority: 2 },
      { id: 'C-4', atS: 9.5 * 3600 + 0.5, type: 'street-vending', location: [113.44, 23.08] },
    ]);
  });

  it('uses the mapping start, durationS, source and onSceneS columns, default source and a time pattern', () => {
    const m = {
      columns: {
        id: 'id',
        receivedAt: 't',
        type: 'k',
        lon: 'x',
        lat: 'y',
        source: 'src',
        onSceneS: 'dur',
      },
      types: {},
      start: '2026-03-02T08:00:00+08:00',
      durationS: 7200,
      timezone: '+08:00',
      timeFormat: 'DD.MM.YYYY HH:mm:ss',
      defaultSource: 'import',
      delimiter: ';',
      name: 'replayed',
    };
    const csv = [
      'id;t;k;x;y;src;dur',
      'a;02.03.2026 08:10:00;noise-complaint;113.45;23.09;110;600',
      'b;02.03.2026 09:00:00;noise-complaint;113.45;23.09;;',
      'c;02.03.2026 07:59:59;noise-complaint;113.45;23.09;;',
      'd;02.03.2026 10:00:01;noise-complaint;113.45;23.09;;',
      'e;02.03.2026 09:10:00;noise-complaint;113.45;23.09;;-5',
    ].join('\n');
    const { scenario, report } = importCalls(csv, m, base);
    expect(scenario.name).toBe('replayed');
    expect(scenario.start).toBe('2026-03-02T08:00:00+08:00');
    expect(scenario.durationS).toBe(7200);
    expect(scenario.incidents).toEqual([
      { id: 'a', atS: 600, type: 'noise-complaint', location: [113.45, 23.09], onSceneS: 600, source: '110' },
      { id: 'b', atS: 3600, type: 'noise-complaint', location: [113.45, 23.09], source: 'import' },
    ]);
    expect(report.rejected).toEqual({
      'before start': { count: 1, rows: [4] },
      'after end': { count: 1, rows: [5] },
      'bad onSceneS': { count: 1, rows: [6] },
    });
  });

  it('reads epoch seconds and derives the start day in the mapping timezone', () => {
    const m = { ...mapping, timeFormat: 'epoch' };
    const t = Date.UTC(2026, 2, 1, 17, 0, 0) / 1000; // 2026-03-02 01:00 +08:00
    const { scenario } = run([`E1,${t},Noise,,113.45,23.09,`], m);
    expect(scenario.start).toBe('2026-03-02T00:00:00+08:00');
    expect(scenario.incidents[0].atS).toBe(3600);
  });

  it('gives whole days covering the last call', () => {
    const { scenario } = run([
      'A,2026-03-02 23:00:00,Noise,,113.45,23.09,',
      'B,2026-03-03 01:00:00,Noise,,113.45,23.09,',
    ]);
    expect(scenario.durationS).toBe(2 * 86400);
  });
});

describe('importCalls: every rejected row is reported by reason with its line', () => {
  it('covers each reason', () => {
    const rows = [
      /* 2 */ 'ok-1,2026-03-02 08:00:00,Noise,,113.45,23.09,',
      /* 3 */ 'short,2026-03-02 08:00:00,Noise',
      /* 4 */ 'extra,2026-03-02 08:00:00,Noise,,113.45,23.09,addr,shifted',
      /* 5 */ ',2026-03-02 08:00:00,Noise,,113.45,23.09,',
      /* 6 */ 'nt,,Noise,,113.45,23.09,',
      /* 7 */ 'bt,2026-02-30 08:00:00,Noise,,113.45,23.09,',
      /* 8 */ 'bt2,yesterday,Noise,,113.45,23.09,',
      /* 9 */ 'mt,2026-03-02 08:00:00,,,113.45,23.09,',
      /* 10 */ 'ut,2026-03-02 08:00:00,UFO,,113.45,23.09,',
      /* 11 */ 'mc,2026-03-02 08:00:00,Noise,,,23.09,',
      /* 12 */ 'bc,2026-03-02 08:00:00,Noise,,abc,23.09,',
      /* 13 */ 'bc2,2026-03-02 08:00:00,Noise,,23.09,113.45,',
      /* 14 */ 'od,2026-03-02 08:00:00,Noise,,0,0,',
      /* 15 */ 'bp,2026-03-02 08:00:00,Noise,9,113.45,23.09,',
      /* 16 */ 'ok-1,2026-03-02 09:00:00,Noise,,113.45,23.09,',
      /* 17 */ 'ok-2,2026-03-02T09:00:00,Noise,,113.45,23.09,',
      /* 18 */ '',
      /* 19 */ 'ok-3,2026-03-02 10:00:00,Noise,4,113.45,23.09,"quoted, with comma"',
    ];
    const { scenario, report } = run(rows);
    expect(report.rejected).toEqual({
      'missing column': { count: 1, rows: [3] },
      'extra columns': { count: 1, rows: [4] },
      'missing id': { count: 1, rows: [5] },
      'missing time': { count: 1, rows: [6] },
      'bad time': { count: 2, rows: [7, 8] },
      'missing type': { count: 1, rows: [9] },
      'unknown type': { count: 1, rows: [10] },
      'missing coordinates': { count: 1, rows: [11] },
      'bad coordinates': { count: 2, rows: [12, 13] },
      'outside district': { count: 1, rows: [14] },
      'bad priority': { count: 1, rows: [15] },
      'duplicate id': { count: 1, rows: [16] },
    });
    expect(report.rows).toBe(17); // 18 rows after the header, one of them blank
    expect(report.imported).toBe(3);
    const rejected = Object.values(report.rejected).reduce((a, g) => a + g.count, 0);
    expect(report.imported + rejected).toBe(report.rows);
    expect(scenario.incidents.map((i) => i.id)).toEqual(['ok-1', 'ok-2', 'ok-3']);
    // ISO without offset falls back to the mapping timezone (a local time).
    expect(scenario.incidents[1].atS).toBe(9 * 3600);
  });

  it('reports a local time without any timezone', () => {
    const { report } = run(['x,2026-03-02 08:00:00,Noise,,113.45,23.09,'], {
      ...mapping,
      timezone: undefined,
    });
    expect(report.rejected).toEqual({ 'time without offset': { count: 1, rows: [2] } });
  });

  it('keeps only the first 20 line numbers per reason, but counts all', () => {
    const rows = Array.from({ length: 30 }, (_, i) => `u${i},2026-03-02 08:00:00,UFO,,113.45,23.09,`);
    const { report } = run(rows);
    expect(report.rejected['unknown type'].count).toBe(30);
    expect(report.rejected['unknown type'].rows).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
  });

  it('produces a valid scenario with no incidents when nothing is usable', () => {
    const { scenario, report } = run(['x,bad,Noise,,113.45,23.09,']);
    expect(scenario.incidents).toEqual([]);
    expect(report).toEqual({ rows: 1, imported: 0, rejected: { 'bad time': { count: 1, rows: [2] } } });
  });
});

describe('importCalls: refusals', () => {
  it('names a mapped column missing from the header', () => {
    const e = errorOf(() => run([], { ...mapping, columns: { ...mapping.columns, lat: 'latitude' } }));
    expect(e.path).toBe('mapping.columns.lat');
    expect(e.got).toBe('"latitude"');
    expect(e.message).toContain('call_id, received, category, prio, lng, lat, address');
  });

  it('validates the mapping, naming the field', () => {
    const cases: [unknown, string][] = [
      [null, 'mapping'],
      [{ types: {} }, 'mapping.columns'],
      [{ columns: { receivedAt: 'a', type: 'b', lon: 'c', lat: 'd' } }, 'mapping.columns.id'],
      [{ columns: { ...mapping.columns, priority: 3 } }, 'mapping.columns.priority'],
      [{ ...mapping, types: { 火灾: 'arson' } }, 'mapping.types["火灾"]'],
      [{ ...mapping, types: [] }, 'mapping.types'],
      [{ ...mapping, start: '2026-03-02 00:00' }, 'mapping.start'],
      [{ ...mapping, timezone: 'CST' }, 'mapping.timezone'],
      [{ ...mapping, timeFormat: 'whenever' }, 'mapping.timeFormat'],
      [{ ...mapping, delimiter: ';;' }, 'mapping.delimiter'],
      [{ ...mapping, durationS: 0 }, 'mapping.durationS'],
    ];
    for (const [m, path] of cases) expect(errorOf(() => importCalls(`${HEADER}\n`, m, base)).path).toBe(path);
  });

  it('refuses an empty file and an unterminated quote', () => {
    expect(errorOf(() => importCalls('\n\n', mapping, base)).path).toBe('csv');
    const e = errorOf(() => run(['a,"open']));
    expect(e.path).toBe('csv');
    expect(e.got).toContain('line 2');
  });

  it('never throws anything but ScenarioError for arbitrary mappings', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (m) => {
        try {
          importCalls(`${HEADER}\nA,2026-03-02 08:00:00,Noise,,113.45,23.09,\n`, m, base);
        } catch (e) {
          expect(e).toBeInstanceOf(ScenarioError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('parseMapping accepts a full mapping', () => {
    expect(parseMapping(mapping).columns.priority).toBe('prio');
  });
});
